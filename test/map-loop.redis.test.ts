/**
 * `map` and `loop` beyond the shared semantics suite (test/integration/semantics.redis.test.ts runs both
 * kinds on both executors): a map of 200 items at concurrency 10, its children in flight measured while
 * they run; and durability: every worker process killed (SIGKILL) while a run maps and loops, a new
 * worker carries it to the same result.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { waitForRunEvents } from '../src/store/run-events.js';
import { indexedChildRunId } from '../src/types/ids.js';
import type { NodeKind } from '../src/types/node-kind.js';
import { NonRetryableError } from '../src/errors.js';
import { isTerminalRunStatus } from '../src/types/statuses.js';
import type { SwitchyardClient } from '../src/index.js';
import { openScope, startHarness, type Harness, type TestScope } from './support/harness.js';
import { killStarted, startCli } from './support/processes.js';

/**
 * A `gate` node kind for the children of a map: each waits until as many gates wait as can be in flight
 * (the map's concurrency, or the items not yet let through), then all of them pass together. So the map
 * must really keep `limit` children in flight to make progress, and every start is measured against it.
 * The item "bad" fails at once instead (its siblings in flight stay at the gate).
 */
class Gates {
  inFlight = 0;
  maxInFlight = 0;
  passed = 0;
  private waiting: Array<() => void> = [];
  private idle: Array<() => void> = [];

  constructor(private readonly limit: number, private readonly total: number) {}

  /** Resolves once no gate is waiting (every one passed or saw its abort). */
  whenIdle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.idle.push(resolve));
  }

  private left(): void {
    if (--this.inFlight === 0) for (const wake of this.idle.splice(0)) wake();
  }

  kind(): NodeKind<Record<string, never>> {
    return {
      name: 'gate',
      params: z.object({}).strict(),
      reads: () => ({ context: ['item'], outputs: [] }),
      run: (ctx) =>
        new Promise((resolve, reject) => {
          if (ctx.context.item === 'bad') {
            this.passed++;
            throw new NonRetryableError('bad item');
          }
          this.inFlight++;
          this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
          this.waiting.push(() => {
            this.passed++;
            this.left();
            resolve({});
          });
          ctx.signal.addEventListener('abort', () => {
            this.left();
            reject(new Error('aborted at the gate'));
          }, { once: true });
          if (this.waiting.length >= Math.min(this.limit, this.total - this.passed)) {
            const batch = this.waiting;
            this.waiting = [];
            for (const pass of batch) pass();
          }
        }),
    };
  }
}

const ITEMS = Array.from({ length: 200 }, (_, i) => (i === 137 ? 'bad' : `item${i}`));
const BAD = 137;

describe('a map of 200 items at concurrency 10', () => {
  let h: Harness;
  let gates: Gates;
  const gateKind: NodeKind<Record<string, never>> = {
    name: 'gate',
    params: z.object({}).strict(),
    reads: () => ({ context: ['item'], outputs: [] }),
    run: (ctx) => gates.kind().run(ctx),
  };

  beforeAll(async () => {
    h = await startHarness({ kinds: [gateKind], workers: 2, concurrency: 8 });
    h.registry.add({
      id: 'gated-item',
      nodes: [{ id: 'gate', uses: 'gate' }, { id: 'fine', uses: 'output', params: { template: 'done {{item}}', inputs: { item: 'item' } } }],
      edges: [{ source: 'gate', target: 'fine' }],
    });
  });
  afterAll(() => h.close());

  const mapOf = (continueOnError: boolean) => ({
    id: `map200-${continueOnError}`,
    nodes: [{ id: 'fan', uses: 'map', params: { items: 'list', blueprintId: 'gated-item', concurrency: 10, continueOnError } }],
  });

  it('keeps at most 10 children in flight (measured), keeps order, and holds the failing item\'s error', async () => {
    gates = new Gates(10, ITEMS.length);
    const run = await h.client.start(mapOf(true), { list: ITEMS });
    const view = await run.result({ timeoutMs: 60_000 });
    expect(view.status).toBe('completed');
    expect(gates.maxInFlight).toBe(10);
    const values = view.outputs.fan as unknown[];
    expect(values).toHaveLength(200);
    expect(values[BAD]).toEqual({ error: { code: 'NODE_FAILED', message: 'failed at node "gate": bad item' } });
    expect(values.filter((_, i) => i !== BAD)).toEqual(ITEMS.filter((_, i) => i !== BAD).map((item) => `done ${item}`));
    expect(view.nodes.fan!.fanOut).toEqual({ total: 200, completed: 199, failed: 1, running: 0 });
    // The progress events never saw more than 10 children in flight either.
    const progress = (await h.client.events(run.runId)).filter((e) => e.type === 'node.progress') as Array<{ running?: string }>;
    expect(progress.length).toBeGreaterThan(10);
    expect(Math.max(...progress.map((e) => Number(e.running)))).toBe(10);
  });

  it('without continueOnError the failing item fails the node, the rest are cancelled and no more start', async () => {
    gates = new Gates(10, ITEMS.length);
    const run = await h.client.start(mapOf(false), { list: ITEMS });
    const view = await run.result({ timeoutMs: 60_000 });
    expect(view.status).toBe('failed');
    expect(view.error).toMatchObject({ nodeId: 'fan' });
    expect(view.error!.message).toMatch(/^map item 137 of "gated-item" \(run [\w-]+\) failed at node "gate": bad item$/);
    expect(gates.maxInFlight).toBe(10);
    // Children exist up to at most 10 past the failing one, and every one of them has ended: those
    // waiting at the gate beside the failing one were cancelled and saw their abort.
    const ids = ITEMS.map((_, i) => indexedChildRunId(run.runId, 'fan', 1, i));
    const started = (await Promise.all(ids.map((id) => h.client.get(id)))).filter((child) => child !== undefined);
    expect(started.length).toBeGreaterThan(BAD);
    expect(started.length).toBeLessThanOrEqual(BAD + 10);
    const ended = await Promise.all(started.map((child) => h.client.result(child!.runId, { timeoutMs: 20_000 })));
    expect(ended.every((child) => isTerminalRunStatus(child.status))).toBe(true);
    expect(ended.filter((child) => child.status === 'cancelled').length).toBeGreaterThan(0);
    await gates.whenIdle();
    expect(gates.passed).toBeLessThan(BAD + 10);
  });
});

describe('killing every worker while a run maps and loops loses nothing', () => {
  const prefix = `ml${randomBytes(3).toString('hex')}`;
  const env = { REDIS_URL: inject('redisUrl'), SWITCHYARD_PREFIX: prefix, SWITCHYARD_QUEUE: prefix, SWITCHYARD_LOG_LEVEL: 'info' };
  const dir = mkdtempSync(join(tmpdir(), 'sy-map-loop-'));
  let scope: TestScope;
  let client: SwitchyardClient;

  beforeAll(async () => {
    const write = (id: string, blueprint: object) => writeFileSync(join(dir, `${id}.json`), JSON.stringify(blueprint));
    write('nap-item', {
      nodes: [{ id: 'nap', uses: 'sleep', params: { ms: 150 } }, { id: 'say', uses: 'output', params: { template: '<{{item}}>', inputs: { item: 'item' } } }],
      edges: [{ source: 'nap', target: 'say' }],
    });
    write('nap-body', {
      nodes: [{ id: 'nap', uses: 'sleep', params: { ms: 150 } }, { id: 'grow', uses: 'output', params: { template: '{{acc}}+', inputs: { acc: 'acc' }, outputKey: 'acc' } }],
      edges: [{ source: 'nap', target: 'grow' }],
    });
    write('fan-and-loop', {
      nodes: [
        { id: 'fan', uses: 'map', params: { items: 'list', blueprintId: 'nap-item', concurrency: 3 } },
        { id: 'again', uses: 'loop', params: { blueprintId: 'nap-body', carry: { acc: 'acc' }, until: 'context.acc == "+++++"', maxIterations: 10, outputs: { acc: 'acc' } } },
      ],
    });
    scope = openScope({ prefix });
    client = scope.createClient({ blueprints: await BlueprintRegistry.load([dir], createNodeKinds()) });
  });
  afterAll(async () => {
    await killStarted();
    await scope.close();
  });

  it('SIGKILL of both workers mid-map and mid-loop: a new worker finishes the run with every value in order', async () => {
    const args = ['worker', '--blueprints', dir, '--lock-duration', '1000'];
    const doomed = await Promise.all([1, 2].map(() => startCli(args, env, /worker ready/)));
    const list = Array.from({ length: 12 }, (_, i) => `n${i}`);
    const run = await client.start('fan-and-loop', { list });
    // Wait (on the run's events) until the map has collected some children and the loop is past its first iteration.
    const reader = scope.redis.duplicate();
    try {
      let last = '0';
      let mapped = false;
      let looped = false;
      while (!(mapped && looped)) {
        const events = await waitForRunEvents(reader, client.store.keys.runKeys(run.runId).events, last, 20_000);
        if (events.length === 0) throw new Error('no progress within 20 s');
        for (const event of events) {
          last = event.id;
          if (event.type === ('node.progress' as string) && Number((event as unknown as { completed: string }).completed) >= 3) mapped = true;
          if (event.type === 'node.waiting' && event.node === 'again' && (event as { index?: string }).index === '2') looped = true;
        }
      }
    } finally {
      reader.disconnect();
    }
    for (const worker of doomed) worker.child.kill('SIGKILL');
    expect(await Promise.all(doomed.map((w) => w.exited))).toEqual([null, null]);
    const during = await run.get();
    expect(during!.status).toBe('running');

    const rescuer = await startCli(args, env, /worker ready/);
    const view = await run.result({ timeoutMs: 60_000 });
    expect(view.status).toBe('completed');
    expect(view.outputs.fan).toEqual(list.map((n) => `<${n}>`));
    expect(view.outputs.again).toMatchObject({ iterations: 5 });
    expect(view.context.acc).toBe('+++++');
    expect(view.nodes.fan!.fanOut).toEqual({ total: 12, completed: 12, failed: 0, running: 0 });
    expect(view.nodes.again!.children).toHaveLength(5);
    rescuer.child.kill('SIGTERM');
    expect(await rescuer.exited).toBe(0);
  });
});
