import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { createLogger } from '../src/logger.js';
import { createNodeKinds } from '../src/nodes/index.js';
import type { NodeKind } from '../src/types/node-kind.js';
import type { SwitchyardClient } from '../src/index.js';
import { OFF, ON, PROTECTION_PATH, startFakeAgent } from './support/fake-ecs-agent.js';
import { openScope, type TestScope } from './support/harness.js';
import { killStarted, startCli } from './support/processes.js';
import { Probe, testKinds } from './support/test-kinds.js';


/** A node that waits for the test to open its gate. */
function gatedKind(probe: Probe) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const kind: NodeKind = {
    name: 'gated',
    reads: () => ({ context: [], outputs: [] }),
    async run(ctx) {
      probe.hit(ctx.idempotencyKey);
      await gate;
      return { output: 'through' };
    },
  };
  return { kind, open };
}

/** Blocks until aborted the first time it runs (per idempotency key); returns at once after that. */
function holdOnceKind(probe: Probe): NodeKind {
  return {
    name: 'hold-once',
    reads: () => ({ context: [], outputs: [] }),
    run(ctx) {
      const n = probe.hit(ctx.idempotencyKey);
      if (n > 1) return { output: `ran ${n} times` };
      return new Promise((_, reject) => {
        ctx.signal.addEventListener('abort', () => {
          probe.abort(ctx.idempotencyKey);
          reject(new Error('aborted'));
        }, { once: true });
      });
    },
  };
}

/** The jobs waiting on the scope's node queue. */
async function waitingJobs(scope: TestScope) {
  const queue = new Queue(scope.prefix, { connection: scope.redis, prefix: `{${scope.prefix}q}` });
  try {
    return await queue.getWaiting();
  } finally {
    await queue.close();
  }
}

/** Blocks on the run's event stream (XREAD BLOCK) until an event matches: no polling, no sleeps. */
async function waitForEvent(redis: Redis, stream: string, match: (e: Record<string, string>) => boolean): Promise<Record<string, string>> {
  let last = '0';
  const reader = redis.duplicate();
  try {
    for (;;) {
      const reply = await reader.xread('BLOCK', 20_000, 'STREAMS', stream, last);
      if (!reply) throw new Error(`no matching event on ${stream} within 20 s`);
      for (const [, entries] of reply) {
        for (const [id, fields] of entries) {
          last = id;
          const event: Record<string, string> = {};
          for (let i = 0; i < fields.length; i += 2) event[fields[i]!] = fields[i + 1]!;
          if (match(event)) return event;
        }
      }
    }
  } finally {
    reader.disconnect();
  }
}

describe('task scale-in protection (worker in process, fake ECS agent)', () => {
  let scope: TestScope;
  afterEach(async () => scope?.close());

  it('sets protection while the worker holds a job and clears it once it is idle', async () => {
    const agent = await startFakeAgent();
    try {
      scope = openScope();
      const probe = new Probe();
      const { kind, open } = gatedKind(probe);
      const registry = new BlueprintRegistry(createNodeKinds().with(kind, ...testKinds(probe)));
      registry.add({ id: 'gated', nodes: [{ id: 'g', uses: 'gated' }, { id: 'after', uses: 'count' }], edges: [{ source: 'g', target: 'after' }] });
      const client = scope.createClient({ blueprints: registry });
      await scope.startWorker({ blueprints: registry, workerId: 'w1', taskProtection: { agentUri: agent.agentUri, clearAfterIdleMs: 50 } });
      expect(agent.requests).toEqual([]); // idle at start: nothing to say

      const run = await client.start('gated');
      await probe.started(`${run.runId}:g`);
      await agent.until((r) => r.length >= 1);
      expect(agent.requests).toEqual([{ method: 'PUT', path: PROTECTION_PATH, body: ON }]);

      open();
      expect((await run.result({ timeoutMs: 20_000 })).status).toBe('completed');
      await agent.until((r) => r.length >= 2);
      expect(agent.requests.map((r) => r.body)).toEqual([ON, OFF]);
    } finally {
      await agent.close();
    }
  });

  it('an agent that fails never blocks or fails the work: runs complete, a warning is logged', async () => {
    const agent = await startFakeAgent({ fail: true });
    const lines: string[] = [];
    try {
      scope = openScope();
      const probe = new Probe();
      const registry = new BlueprintRegistry(createNodeKinds().with(...testKinds(probe)));
      registry.add({ id: 'two', nodes: [{ id: 'a', uses: 'count' }, { id: 'b', uses: 'count' }], edges: [{ source: 'a', target: 'b' }] });
      const client = scope.createClient({ blueprints: registry });
      const logger = createLogger({ level: 'warn', write: (line) => lines.push(line) });
      await scope.startWorker({ blueprints: registry, logger, taskProtection: { agentUri: agent.agentUri, clearAfterIdleMs: 0 } });
      const views = await Promise.all(Array.from({ length: 3 }, async () => (await client.start('two')).result({ timeoutMs: 20_000 })));
      expect(views.map((v) => v.status)).toEqual(['completed', 'completed', 'completed']);
      await agent.until((r) => r.length >= 1);
      const warnings = lines.map((l) => JSON.parse(l)).filter((l) => /task scale-in protection request failed/.test(l.msg));
      expect(warnings).toHaveLength(1); // rate-limited: one line, however many requests failed
      expect(warnings[0].error).toMatch(/500: ServerException: agent unavailable/);
    } finally {
      await agent.close();
    }
  });
});

describe('graceful stop: drain, then hand back (worker in process)', () => {
  let scope: TestScope;
  afterEach(async () => scope?.close());

  it('past the drain timeout, running and claimed nodes are aborted and handed back; another worker finishes the run at once', async () => {
    scope = openScope();
    const probe = new Probe();
    const registry = new BlueprintRegistry(createNodeKinds().with(holdOnceKind(probe), ...testKinds(probe)));
    // One start job carries h1 and pre (siblings); pre's completion claims h2 in that job; both h1 and h2 hold.
    registry.add({
      id: 'held',
      nodes: [{ id: 'h1', uses: 'hold-once' }, { id: 'pre', uses: 'count' }, { id: 'h2', uses: 'hold-once' }, { id: 'end', uses: 'count' }],
      edges: [{ source: 'pre', target: 'h2' }, { source: 'h1', target: 'end' }, { source: 'h2', target: 'end' }],
    });
    const client = scope.createClient({ blueprints: registry });
    // Locks of a minute: a rescue by lock expiry could not finish the run within the result's 30 s.
    const first = await scope.startWorker({ blueprints: registry, workerId: 'first', lockDurationMs: 60_000, drainTimeoutMs: 100 });
    const run = await client.start('held');
    await Promise.all([probe.started(`${run.runId}:h1`), probe.started(`${run.runId}:h2`)]);
    const before = await run.get();
    expect(before!.nodes.h1).toMatchObject({ status: 'running', worker: 'first', attempts: 1 });
    expect(before!.nodes.h2).toMatchObject({ status: 'running', worker: 'first', attempts: 1 });

    await scope.startWorker({ blueprints: registry, workerId: 'second', lockDurationMs: 60_000 });
    await first.close();
    expect(probe.aborted).toEqual(new Set([`${run.runId}:h1`, `${run.runId}:h2`]));

    const view = await run.result({ timeoutMs: 30_000 });
    expect(view.status).toBe('completed');
    for (const id of ['h1', 'h2']) {
      // Run again by the second worker as the same attempt: the hand-back released it (no failure, no retry used).
      expect(view.nodes[id]).toMatchObject({ status: 'done', worker: 'second', attempts: 1 });
      expect(view.nodes[id]!.error).toBeUndefined();
      expect(probe.count(`${run.runId}:${id}`)).toBe(2);
    }
    expect(Object.values(view.nodes).map((n) => n.status)).toEqual(['done', 'done', 'done', 'done']);
    const events = await client.store.getEvents(run.runId);
    expect(events.filter((e) => e.type === 'node.retrying' || e.type === 'node.failed')).toEqual([]);
    expect(events.flatMap((e) => (e.type === 'node.started' && e.node === 'h1' ? [e.worker] : []))).toEqual(['first', 'second']);
    expect(events.flatMap((e) => (e.type === 'node.released' ? [`${e.node}@${e.worker}`] : [])).sort()).toEqual(['h1@first', 'h2@first']);
  });

  it('a node that ends within the drain timeout finishes on the closing worker (nothing handed back)', async () => {
    scope = openScope();
    const probe = new Probe();
    const { kind, open } = gatedKind(probe);
    const registry = new BlueprintRegistry(createNodeKinds().with(kind, ...testKinds(probe)));
    registry.add({ id: 'gated', nodes: [{ id: 'g', uses: 'gated' }, { id: 'after', uses: 'count' }], edges: [{ source: 'g', target: 'after' }] });
    const client = scope.createClient({ blueprints: registry });
    const worker = await scope.startWorker({ blueprints: registry, workerId: 'only', drainTimeoutMs: 60_000 });
    const run = await client.start('gated');
    await probe.started(`${run.runId}:g`);
    const closed = worker.close();
    open();
    await closed;
    const view = await run.get();
    // Done on the closing worker; its successor was not claimed (closing) but queued for another worker.
    expect(view!.nodes.g).toMatchObject({ status: 'done', worker: 'only', attempts: 1 });
    expect(view!.nodes.after!.status).toBe('queued');
    expect(probe.aborted.size).toBe(0);
    expect((await waitingJobs(scope)).map((j) => j.id)).toEqual([`${run.runId}.after`]);
  });
});

describe('switchyard worker process: task protection, SIGTERM hand-back, RunsFailed metric', () => {
  const prefix = `wo${randomBytes(3).toString('hex')}`;
  const env = { REDIS_URL: inject('redisUrl'), SWITCHYARD_PREFIX: prefix, SWITCHYARD_QUEUE: prefix, SWITCHYARD_LOG_LEVEL: 'info', SWITCHYARD_LOG_FORMAT: 'json' };
  let scope: TestScope;
  let client: SwitchyardClient;
  let registry: BlueprintRegistry;

  beforeAll(async () => {
    scope = openScope({ prefix });
    registry = await BlueprintRegistry.load(['workflows'], createNodeKinds());
    registry.add({ id: 'nap', nodes: [{ id: 'nap', uses: 'sleep', params: { ms: 300 } }, { id: 'after', uses: 'output', params: { template: 'rested' } }], edges: [{ source: 'nap', target: 'after' }] });
    registry.add({ id: 'long-nap', nodes: [{ id: 'nap', uses: 'sleep', params: { ms: 600_000 } }, { id: 'after', uses: 'output', params: { template: 'rested' } }], edges: [{ source: 'nap', target: 'after' }] });
    // Times out at once and has no retries: the worker fails the run.
    registry.add({ id: 'doomed', nodes: [{ id: 'slow', uses: 'sleep', params: { ms: 600_000 }, config: { timeout: 1 } }, { id: 'after', uses: 'output', params: { template: 'never' } }], edges: [{ source: 'slow', target: 'after' }] });
    client = scope.createClient({ blueprints: registry });
  });
  afterAll(async () => {
    await killStarted();
    await scope.close();
  });

  it('SWITCHYARD_TASK_PROTECTION=true with ECS_AGENT_URI: protected while busy, cleared by the time it exits', async () => {
    const agent = await startFakeAgent();
    try {
      const worker = await startCli(['worker', '--blueprints', 'workflows'], { ...env, SWITCHYARD_TASK_PROTECTION: 'true', ECS_AGENT_URI: agent.agentUri }, /worker ready/);
      const run = await client.start('nap');
      await agent.until((r) => r.length >= 1);
      expect(agent.requests[0]).toEqual({ method: 'PUT', path: PROTECTION_PATH, body: ON });
      expect((await run.result({ timeoutMs: 20_000 })).status).toBe('completed');
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
      // Cleared after the idle debounce or, at the latest, as the worker stops; never left on.
      expect(agent.requests.map((r) => r.body)).toEqual([ON, OFF]);
      expect(agent.requests.every((r) => r.method === 'PUT' && r.path === PROTECTION_PATH)).toBe(true);
    } finally {
      await agent.close();
    }
  });

  it('on SIGTERM past SWITCHYARD_DRAIN_TIMEOUT_MS the running node goes back to the queue at once and another worker finishes it', async () => {
    const worker = await startCli(['worker', '--blueprints', 'workflows', '--lock-duration', '60000'], { ...env, SWITCHYARD_DRAIN_TIMEOUT_MS: '200' }, /worker ready/);
    const run = await client.start('long-nap');
    const events = client.store.keys.runKeys(run.runId).events;
    const started = await waitForEvent(scope.redis, events, (e) => e.type === 'node.started' && e.node === 'nap');
    worker.child.kill('SIGTERM');
    // Without the hand-back it would sleep its ten minutes first (the test's own timeout is one).
    expect(await worker.exited).toBe(0);
    expect(worker.log()).toMatch(/drain timeout: aborting running nodes and handing them back to the queue/);
    expect(worker.log()).toMatch(/node handed back to the queue/);
    expect((await waitingJobs(scope)).map((j) => j.data)).toEqual([{ runId: run.runId, nodeId: 'nap', version: expect.any(String) }]);

    // A worker whose `sleep` returns at once takes it over now, not after the stopped worker's 60 s lock.
    const probe = new Probe();
    const quickSleep: NodeKind = { name: 'sleep', reads: () => ({ context: [], outputs: [] }), run: (ctx) => (probe.hit(ctx.idempotencyKey), {}) };
    const rescuer = await scope.startWorker({ blueprints: registry, kinds: registry.kinds.with(quickSleep), workerId: 'rescuer', lockDurationMs: 60_000 });
    const view = await run.result({ timeoutMs: 30_000 });
    await rescuer.close(); // its quick `sleep` must not take the next tests' nodes
    expect(view.status).toBe('completed');
    expect(view.nodes.nap).toMatchObject({ status: 'done', worker: 'rescuer', attempts: 1 });
    expect(view.nodes.nap!.error).toBeUndefined();
    const all = await client.store.getEvents(run.runId);
    expect(all.filter((e) => e.type === 'node.retrying' || e.type === 'node.failed')).toEqual([]);
    expect(all.flatMap((e) => (e.type === 'node.started' && e.node === 'nap' ? [e.worker] : []))).toEqual([started.worker, 'rescuer']);
  });

  it('SWITCHYARD_METRIC_SERVICE: a failed run prints exactly one RunsFailed EMF line on stdout; a completed one none', async () => {
    // Task protection asked for off ECS: skipped with one line, the worker runs as usual.
    const worker = await startCli(
      ['worker', '--blueprints', 'workflows'],
      { ...env, SWITCHYARD_METRIC_SERVICE: 'switchyard-test', SWITCHYARD_TASK_PROTECTION: 'true', ECS_AGENT_URI: '' },
      /worker ready/,
    );
    expect(worker.log().match(/task scale-in protection skipped: ECS_AGENT_URI is not set/g)).toHaveLength(1);
    const failed = await (await client.start('doomed')).result({ timeoutMs: 20_000 });
    expect(failed.status).toBe('failed');
    const completed = await (await client.start('greeting', { name: 'Ada' })).result({ timeoutMs: 20_000 });
    expect(completed.status).toBe('completed');
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);

    const lines = worker.stdout().split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toEqual({
      _aws: {
        Timestamp: expect.any(Number),
        CloudWatchMetrics: [{ Namespace: 'Switchyard', Dimensions: [['Service']], Metrics: [{ Name: 'RunsFailed', Unit: 'Count' }] }],
      },
      Service: 'switchyard-test',
      RunsFailed: 1,
      RunId: failed.runId,
      NodeId: 'slow',
    });
  });
});
