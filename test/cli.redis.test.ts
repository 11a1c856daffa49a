import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Redis } from 'ioredis';
import { startLocalRedis } from '../src/local/redis-server.js';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import type { SwitchyardClient } from '../src/index.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { createTestClient, openScope, type TestScope } from './support/harness.js';
import { killStarted, runCli, startCli } from './support/processes.js';
import { waitForRunEvents, type RunEvent } from '../src/store/run-events.js';

describe('switchyard CLI', () => {
  it('validate exits 0 on valid blueprints', async () => {
    const { code, stdout } = await runCli(['validate', 'workflows']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/blueprint files? valid/);
  });

  it('validate prints every problem as <file>: <json-path>: <message> and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-cli-'));
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({
      nodes: [{ id: 'a', uses: 'nope' }, { id: 'b', uses: 'template', params: {} }],
      edges: [{ source: 'a', target: 'zz' }],
    }));
    const { code, stdout } = await runCli(['validate', dir]);
    expect(code).toBe(1);
    const file = join(dir, 'bad.json');
    expect(stdout).toContain(`${file}: $.nodes[0].uses: unknown node kind "nope"`);
    expect(stdout).toContain(`${file}: $.nodes[1].params: needs "template" (or "promptTemplate")`);
    expect(stdout).toContain(`${file}: $.edges[0].target: edge target "zz" is not a node`);
  });

  it('run --local --json runs in process without Redis', async () => {
    const { code, stdout } = await runCli(
      ['run', 'triage', '--blueprints', 'workflows', '--input', '{"priority":9,"title":"db down"}', '--local', '--json'],
      { REDIS_URL: 'redis://127.0.0.1:1' },
    );
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result).toMatchObject({
      blueprintId: 'triage',
      status: 'completed',
      context: { final_output: 'PAGE on-call: db down (priority 9)' },
      nodes: { classify: { status: 'done', attempts: 1 }, open_ticket: { status: 'skipped', attempts: 0 } },
    });
  });

  it('gives one clear line for bad usage', async () => {
    const missing = await runCli(['run', 'nope', '--blueprints', 'workflows', '--local']);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toMatch(/^switchyard run: no blueprint "nope" in workflows \(known: .*greeting.*\)$/);
    const badInput = await runCli(['run', 'greeting', '--blueprints', 'workflows', '--input', '{oops', '--local']);
    expect(badInput.stderr.trim().split('\n')).toHaveLength(1);
    expect(badInput.stderr).toMatch(/--input is not valid JSON/);
    expect((await runCli(['frobnicate'])).stderr).toMatch(/unknown command "frobnicate"/);
  });
});

describe('switchyard worker processes', () => {
  const prefix = `cli${randomBytes(3).toString('hex')}`;
  const env = { REDIS_URL: inject('redisUrl'), SWITCHYARD_PREFIX: prefix, SWITCHYARD_QUEUE: prefix, SWITCHYARD_LOG_LEVEL: 'info' };
  let scope: TestScope;
  let redis: Redis;
  let client: SwitchyardClient;
  let registry: BlueprintRegistry;

  beforeAll(async () => {
    scope = openScope({ prefix });
    redis = scope.redis;
    registry = await BlueprintRegistry.load(['workflows'], createNodeKinds());
    registry.add({ id: 'nap', nodes: [{ id: 'nap', uses: 'sleep', params: { ms: 300 } }, { id: 'after', uses: 'output', params: { template: 'rested' } }], edges: [{ source: 'nap', target: 'after' }] });
    client = scope.createClient({ blueprints: registry });
  });
  afterAll(async () => {
    await killStarted();
    await scope.close();
  });

  it('distributes runs over two worker processes; run --wait --json reports the result', async () => {
    const workers = await Promise.all(
      [1, 2].map(() => startCli(['worker', '--blueprints', 'workflows', '--concurrency', '1'], env, /worker ready/)),
    );
    // Each worker takes one node at a time, so ten runs whose first node sleeps keep both busy.
    const naps = await Promise.all(Array.from({ length: 10 }, () => client.start('nap')));
    const views = await Promise.all(naps.map((run) => run.result({ timeoutMs: 30_000 })));
    const ranOn = new Set(views.map((v) => v.nodes.nap!.worker));
    expect(views.every((v) => v.status === 'completed')).toBe(true);
    expect(ranOn.size).toBe(2);

    const { code, stdout } = await runCli(['run', 'greeting', '--blueprints', 'workflows', '--input', '{"name":"Ada"}', '--wait', '--json'], env);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ status: 'completed', context: { final_output: 'Hello, Ada! Welcome to Switchyard.' } });

    for (const w of workers) w.child.kill('SIGTERM');
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);
  });

  it('on SIGTERM a worker finishes its running node before it exits, and a new worker carries the run on', async () => {
    const worker = await startCli(['worker', '--blueprints', 'workflows'], env, /worker ready/);
    const run = await client.start('nap');
    const events = client.store.keys.runKeys(run.runId).events;
    await waitForEvent(redis, events, (e) => e.type === 'node.started' && e.node === 'nap');
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(worker.log()).toMatch(/draining/);
    const afterDrain = await run.get();
    expect(afterDrain!.nodes.nap!.status).toBe('done');
    expect(afterDrain!.status).toBe('running');

    const next = await startCli(['worker', '--blueprints', 'workflows'], env, /worker ready/);
    const view = await run.result({ timeoutMs: 30_000 });
    expect(view.status).toBe('completed');
    expect(view.context.final_output).toBe('rested');
    next.child.kill('SIGTERM');
    expect(await next.exited).toBe(0);
  });

  it('when a worker dies mid-node (SIGKILL), another worker runs the node again and the run completes', async () => {
    // A queue of its own: earlier workers here used the default 30 s stall-check interval, which BullMQ
    // records per queue and which would delay the rescue.
    const own = `kill${randomBytes(3).toString('hex')}`;
    const ownEnv = { ...env, SWITCHYARD_PREFIX: own, SWITCHYARD_QUEUE: own };
    const ownClient = scope.createClient({ prefix: own, blueprints: registry });
    try {
      const doomed = await startCli(['worker', '--blueprints', 'workflows', '--lock-duration', '1000'], ownEnv, /worker ready/);
      const run = await ownClient.start('nap');
      await waitForEvent(redis, ownClient.store.keys.runKeys(run.runId).events, (e) => e.type === 'node.started' && e.node === 'nap');
      doomed.child.kill('SIGKILL');
      expect(await doomed.exited).toBe(null);
      const rescuer = await startCli(['worker', '--blueprints', 'workflows', '--lock-duration', '1000'], ownEnv, /worker ready/);
      const view = await run.result({ timeoutMs: 30_000 });
      expect(view.status).toBe('completed');
      expect(view.nodes.nap).toMatchObject({ status: 'done', attempts: 2 });
      expect(view.context.final_output).toBe('rested');
      rescuer.child.kill('SIGTERM');
      expect(await rescuer.exited).toBe(0);
    } finally {
      await ownClient.close();
    }
  });

  it('run --wait --timeout exits 1 and says the run goes on', async () => {
    const { code, stderr } = await runCli(['run', 'greeting', '--blueprints', 'workflows', '--wait', '--timeout', '0.2'], env);
    expect(code).toBe(1);
    expect(stderr).toMatch(/still running after 0.2 s \(it goes on\)/);
  });
});

/** Blocks on the run's event stream (XREAD BLOCK) until an event matches: no polling, no sleeps. */
async function waitForEvent(redis: Redis, stream: string, match: (e: RunEvent) => boolean): Promise<void> {
  let last = '0';
  const reader = redis.duplicate();
  try {
    for (;;) {
      const events = await waitForRunEvents(reader, stream, last, 10_000);
      if (events.length === 0) throw new Error(`no matching event on ${stream} within 10 s`);
      for (const event of events) {
        last = event.id;
        if (match(event)) return;
      }
    }
  } finally {
    reader.disconnect();
  }
}

describe('switchyard worker against an ElastiCache-style endpoint', () => {
  it('connects with REDIS_HOST, REDIS_PORT and the AUTH token ECS injects (REDIS_AUTH_TOKEN), and runs nodes', async () => {
    const token = 'Secr3t-token-from-secrets-manager';
    const server = await startLocalRedis();
    const admin = new Redis(server.url);
    await admin.config('SET', 'requirepass', token);
    await admin.auth(token);
    const prefix = `ep${randomBytes(3).toString('hex')}`;
    const registry = await BlueprintRegistry.load(['workflows'], createNodeKinds());
    const client = createTestClient({ redis: new Redis({ port: server.port, password: token, maxRetriesPerRequest: null }), prefix, blueprints: registry });
    const env = { REDIS_URL: '', REDIS_HOST: '127.0.0.1', REDIS_PORT: String(server.port), REDIS_TLS: 'false', REDIS_AUTH_TOKEN: token, SWITCHYARD_PREFIX: prefix, SWITCHYARD_QUEUE: prefix };
    try {
      const worker = await startCli(['worker', '--blueprints', 'workflows'], env, /worker ready/);
      expect(worker.log()).not.toContain(token);
      const view = await (await client.start('greeting', { name: 'Ada' })).result({ timeoutMs: 30_000 });
      expect(view.status).toBe('completed');
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
      expect(worker.log()).not.toContain(token);
    } finally {
      await killStarted();
      await client.close();
      admin.disconnect();
      await server.stop();
    }
  });
});
