import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { compileGraph } from '../../src/engine/graph.js';
import { NodeNotWaitingError } from '../../src/errors.js';
import { MemorySignals, runInMemory } from '../../src/executor/memory-executor.js';
import { waitForRunEvents } from '../../src/store/run-events.js';
import type { NodeSignal } from '../../src/types/node-kind.js';
import type { RunView, SignalOutcome, WaitingNode } from '../../src/types/run-view.js';
import { indexedChildRunId } from '../../src/types/ids.js';
import { startHarness, type Harness } from '../support/harness.js';
import { Probe, testKinds } from '../support/test-kinds.js';

/**
 * One conformance suite, run against the in-memory executor and the distributed engine (2 workers): the
 * run semantics must not depend on where a run executes. The rules are those the README states under
 * "Blueprints" (edges, dead-path elimination, joins, retries, timeouts, fallbacks) and in the `subflow`
 * row of "Node kinds"; the pure transitions in src/engine/transitions.ts decide them for both executors.
 */
interface Started {
  runId: string;
  result(): Promise<RunView>;
  cancel(): Promise<unknown>;
  /** Answers a waiting node, as POST /runs/{runId}/signals/{nodeId} does (in memory: MemorySignals). */
  signal(nodeId: string, signal?: NodeSignal): Promise<SignalOutcome>;
  /** Resolves once the node parked (`waiting` or `sleeping`); for a waiting node, what the run view lists. */
  parked(nodeId: string): Promise<WaitingNode | undefined>;
  /** Redrives the ended run (in memory: runInMemory's `redriveFrom` its last view); result() then awaits the redriven run. */
  redrive(): Promise<void>;
}
interface Runner {
  start(blueprint: object, input?: Record<string, unknown>, options?: { timeoutMs?: number }): Promise<Started>;
}

const probe = new Probe();
let h: Harness;
let seq = 0;
const memorySignals = new MemorySignals();
/** A connection of its own for blocking reads of run events. */
let reader: Redis;

beforeAll(async () => {
  h = await startHarness({ kinds: testKinds(probe), workers: 2, concurrency: 8 });
  // Child blueprints the subflow cases call.
  h.registry.add({ id: 'child-ok', nodes: [{ id: 'make', uses: 'output', params: { template: 'made from {{seed}}', inputs: { seed: 'seed' }, outputKey: 'result' } }] });
  h.registry.add({ id: 'child-fails', nodes: [{ id: 'explode', uses: 'boom', params: { message: 'child exploded', retryable: false } }] });
  h.registry.add({ id: 'child-blocks', nodes: [{ id: 'child_block', uses: 'block' }, { id: 'child_after', uses: 'count' }], edges: [{ source: 'child_block', target: 'child_after' }] });
  h.registry.add({
    id: 'middle',
    nodes: [
      { id: 'inner', uses: 'subflow', params: { blueprintId: 'child-ok', inputs: { seed: 'seed' }, outputs: { innerResult: 'result' } } },
      { id: 'wrap', uses: 'output', params: { template: '[{{r}}]', inputs: { r: 'innerResult' }, outputKey: 'wrapped' } },
    ],
    edges: [{ source: 'inner', target: 'wrap' }],
  });
  reader = h.redis.duplicate();
  // Children of the map and loop cases.
  h.registry.add({ id: 'item-echo', nodes: [{ id: 'echo', uses: 'output', params: { template: '{{item}}{{suffix}}', inputs: { item: 'item', suffix: 'suffix' } } }] });
  h.registry.add({
    id: 'item-picky',
    nodes: [
      { id: 'check', uses: 'route', params: { rules: [{ when: 'context.item == "bad"', action: 'bad' }], default: 'ok' } },
      { id: 'explode', uses: 'boom', params: { message: 'bad item', retryable: false } },
      { id: 'fine', uses: 'output', params: { template: 'ok {{item}}', inputs: { item: 'item' } } },
    ],
    edges: [{ source: 'check', target: 'explode', action: 'bad' }, { source: 'check', target: 'fine', action: 'ok' }],
  });
  h.registry.add({ id: 'item-blocks', nodes: [{ id: 'item_block', uses: 'block' }] });
  h.registry.add({ id: 'counter', nodes: [{ id: 'step', uses: 'inc' }] });
  // Children of the redrive cases: each fails the first time it runs (per child run), then succeeds.
  h.registry.add({ id: 'redrive-child', nodes: [{ id: 'first', uses: 'count' }, { id: 'shaky', uses: 'flaky', params: { failTimes: 1 } }], edges: [{ source: 'first', target: 'shaky' }] });
  h.registry.add({
    id: 'redrive-item',
    nodes: [
      { id: 'seen', uses: 'count' },
      { id: 'check', uses: 'route', params: { rules: [{ when: 'context.item == "bad"', action: 'bad' }], default: 'ok' } },
      { id: 'once', uses: 'flaky', params: { failTimes: 1 } },
      { id: 'fine', uses: 'output', params: { template: 'ok {{item}}', inputs: { item: 'item' } } },
    ],
    edges: [{ source: 'seen', target: 'check' }, { source: 'check', target: 'once', action: 'bad' }, { source: 'check', target: 'fine', action: 'ok' }],
  });
});
afterAll(async () => {
  reader.disconnect();
  await h.close();
});

/** Blocks on the run's event stream (XREAD BLOCK) until the node parked: no polling, no sleeps. */
async function parkedEvent(runId: string, nodeId: string): Promise<void> {
  const stream = h.client.store.keys.runKeys(runId).events;
  let after: string | undefined;
  for (;;) {
    const events = await waitForRunEvents(reader, stream, after, 10_000);
    for (const e of events) if ((e.type === 'node.waiting' || e.type === 'node.sleeping') && e.node === nodeId) return;
    after = events.at(-1)?.id ?? after;
  }
}

const runners: Record<string, () => Runner> = {
  memory: () => ({
    async start(blueprint, input = {}, options = {}) {
      const loaded = h.registry.add({ ...blueprint, id: `m${++seq}` });
      let controller = new AbortController();
      const runId = `mem-${seq}`;
      const graph = compileGraph(loaded, h.kinds);
      let done = runInMemory(graph, { kinds: h.kinds, blueprints: h.registry, input, runId, signal: controller.signal, signals: memorySignals, ...options });
      return {
        runId,
        result: () => done,
        cancel: async () => controller.abort(),
        async redrive() {
          const last = await done;
          controller = new AbortController();
          done = runInMemory(graph, { kinds: h.kinds, blueprints: h.registry, signal: controller.signal, signals: memorySignals, redriveFrom: last });
        },
        signal: async (nodeId, signal) => memorySignals.signal(runId, nodeId, signal),
        parked: async (nodeId) => (await memorySignals.whenParked(runId, nodeId)).waiting,
      };
    },
  }),
  distributed: () => ({
    async start(blueprint, input = {}, options = {}) {
      const handle = await h.client.start({ ...blueprint, id: `d${++seq}` }, input, options);
      return {
        runId: handle.runId,
        result: () => handle.result({ timeoutMs: 20_000 }),
        cancel: () => handle.cancel(),
        signal: (nodeId, signal) => handle.signal(nodeId, signal),
        async redrive() {
          expect(await handle.redrive()).toMatchObject({ redriven: true });
        },
        async parked(nodeId) {
          await parkedEvent(handle.runId, nodeId);
          return (await handle.get())?.waiting?.find((w) => w.nodeId === nodeId);
        },
      };
    },
  }),
};

const node = (id: string, uses: string, params: Record<string, unknown> = {}, config?: Record<string, unknown>) => ({
  id,
  uses,
  params,
  ...(config ? { config } : {}),
});
const statusesOf = (view: RunView) => Object.fromEntries(Object.entries(view.nodes).map(([id, n]) => [id, n.status]));

describe.each(Object.keys(runners))('semantics (%s)', (name) => {
  const runner = () => runners[name]!();

  it('completes a join after mutually exclusive branches, skipping the branch not taken', async () => {
    const run = await runner().start({
      nodes: [
        node('decide', 'route', { rules: [{ when: 'context.score > 5', action: 'high' }], default: 'low' }),
        node('high', 'count'),
        node('low', 'count'),
        node('join', 'output', { template: '{{h}}{{l}}', inputs: { h: 'high', l: 'low' } }),
      ],
      edges: [
        { source: 'decide', target: 'high', action: 'high' },
        { source: 'decide', target: 'low', action: 'low' },
        { source: 'high', target: 'join' },
        { source: 'low', target: 'join' },
      ],
    }, { score: 9 });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(statusesOf(view)).toEqual({ decide: 'done', high: 'done', low: 'skipped', join: 'done' });
    expect(view.context.final_output).toBe('high');
  });

  it('runs an `any` join exactly once, on the first taken arrival', async () => {
    const run = await runner().start({
      nodes: [node('a', 'count'), node('b', 'count'), node('c', 'count'), node('j', 'count', {}, { joinStrategy: 'any' })],
      edges: [{ source: 'a', target: 'j' }, { source: 'b', target: 'j' }, { source: 'c', target: 'j' }],
    });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(probe.count(`${run.runId}:j`)).toBe(1);
    expect(view.nodes.j).toMatchObject({ status: 'done', attempts: 1 });
  });

  it('propagates skips through chains and conditions', async () => {
    const run = await runner().start({
      nodes: [node('a', 'count', { value: 'x' }), node('b', 'count'), node('c', 'count'), node('d', 'count'), node('e', 'count')],
      edges: [
        { source: 'a', target: 'b', condition: 'output == "y"' },
        { source: 'b', target: 'c' },
        { source: 'c', target: 'd' },
        { source: 'a', target: 'e', condition: 'output == "x" && context.flag == true' },
      ],
    }, { flag: true });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(statusesOf(view)).toEqual({ a: 'done', b: 'skipped', c: 'skipped', d: 'skipped', e: 'done' });
    expect(probe.count(`${run.runId}:b`) + probe.count(`${run.runId}:d`)).toBe(0);
  });

  it('retries a failing node with backoff until it succeeds', async () => {
    const run = await runner().start({ nodes: [node('f', 'flaky', { failTimes: 2 }, { maxRetries: 3, retryDelay: 20 })], edges: [] });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(view.nodes.f).toMatchObject({ status: 'done', attempts: 3 });
    expect(view.outputs.f).toBe('ok after 3');
  });

  it('fails the run with the node and the reason when retries are exhausted, and stops scheduling', async () => {
    const run = await runner().start({
      nodes: [node('start', 'count'), node('bad', 'boom', { message: 'disk on fire' }, { maxRetries: 1, retryDelay: 10 }), node('slow', 'block'), node('after', 'count')],
      edges: [{ source: 'start', target: 'bad' }, { source: 'start', target: 'slow' }, { source: 'bad', target: 'after' }, { source: 'slow', target: 'after' }],
    });
    const view = await run.result();
    expect(view.status).toBe('failed');
    expect(view.error).toMatchObject({ nodeId: 'bad', message: 'disk on fire' });
    expect(view.nodes.bad).toMatchObject({ status: 'failed', attempts: 2 });
    expect(view.nodes.after!.status).toBe('cancelled');
    expect(probe.count(`${run.runId}:after`)).toBe(0);
    // The running sibling sees its AbortSignal fire (by the worker's abort subscription: awaited, as the
    // client may hear the run end first).
    expect(view.nodes.slow!.status).toBe('cancelled');
    await probe.whenAborted(`${run.runId}:slow`);
  });

  it('does not retry a non-retryable error', async () => {
    const run = await runner().start({ nodes: [node('bad', 'boom', { retryable: false }, { maxRetries: 5, retryDelay: 10 })], edges: [] });
    const view = await run.result();
    expect(view.status).toBe('failed');
    expect(view.nodes.bad).toMatchObject({ status: 'failed', attempts: 1 });
  });

  it('times a node out through its AbortSignal and counts it as a failure', async () => {
    const run = await runner().start({ nodes: [node('slow', 'block', {}, { timeout: 50 })], edges: [] });
    const view = await run.result();
    expect(view.status).toBe('failed');
    expect(view.error).toMatchObject({ nodeId: 'slow', code: 'NODE_TIMEOUT' });
    expect(probe.aborted.has(`${run.runId}:slow`)).toBe(true);
  });

  it('runs the fallback when retries are exhausted', async () => {
    const run = await runner().start({
      nodes: [
        node('primary', 'boom', {}, { maxRetries: 1, retryDelay: 10, fallback: 'backup' }),
        node('backup', 'count', { value: 'from backup', action: 'fine' }),
        node('next', 'count'),
      ],
      edges: [{ source: 'primary', target: 'next', action: 'fine' }],
    });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(view.outputs.primary).toBe('from backup');
    expect(statusesOf(view)).toEqual({ primary: 'done', next: 'done' });
  });

  it('runs a subflow as a child run and maps its outputs into the parent context', async () => {
    const run = await runner().start({
      nodes: [
        node('sub', 'subflow', { blueprintId: 'child-ok', inputs: { seed: 'seed' }, outputs: { fromChild: 'result' } }),
        node('after', 'output', { template: 'got {{x}}', inputs: { x: 'fromChild' } }),
      ],
      edges: [{ source: 'sub', target: 'after' }],
    }, { seed: 'S' });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(view.context).toMatchObject({ fromChild: 'made from S', final_output: 'got made from S' });
    expect(view.nodes.sub!.childRunId).toBeTruthy();
  });

  it('runs nested subflows', async () => {
    const run = await runner().start({ nodes: [node('outer', 'subflow', { blueprintId: 'middle', inputs: { seed: 'seed' }, outputs: { top: 'wrapped' } })] }, { seed: 'N' });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(view.context.top).toBe('[made from N]');
  });

  it('fails the parent when its child run fails, with the child\'s reason', async () => {
    const run = await runner().start({ nodes: [node('sub', 'subflow', { blueprintId: 'child-fails' }), node('after', 'count')], edges: [{ source: 'sub', target: 'after' }] });
    const view = await run.result();
    expect(view.status).toBe('failed');
    expect(view.error!.nodeId).toBe('sub');
    expect(view.error!.message).toMatch(/subflow "child-fails" \(run [\w-]+\) failed at node "explode": child exploded/);
    expect(view.nodes.after!.status).toBe('cancelled');
  });

  it('cancelling the parent cancels its child run; the child\'s running node sees the abort', async () => {
    const run = await runner().start({ nodes: [node('sub', 'subflow', { blueprintId: 'child-blocks' })] });
    const key = await probe.startedNode('child_block');
    const childRunId = key.slice(0, key.lastIndexOf(':'));
    await run.cancel();
    const view = await run.result();
    expect(view.status).toBe('cancelled');
    expect(view.nodes.sub!.status).toBe('cancelled');
    await probe.whenAborted(key);
    expect(probe.count(`${childRunId}:child_after`)).toBe(0);
    if (name === 'distributed') {
      const child = await h.client.result(childRunId, { timeoutMs: 10_000 });
      expect(child.status).toBe('cancelled');
      expect(child.nodes.child_block!.status).toBe('cancelled');
    }
    probe.calls.delete(key); // later cases wait for this node id again
  });

  it('maps a list to one child run per item, values in input order, with shared inputs', async () => {
    const run = await runner().start({
      nodes: [
        node('fan', 'map', { items: 'list', blueprintId: 'item-echo', inputs: { suffix: 'tail' }, concurrency: 3 }),
        node('after', 'output', { template: '{{fan}}' }),
      ],
      // The edge's condition reads the context when the last child is in.
      edges: [{ source: 'fan', target: 'after', condition: 'context.tail == "!" && output[6] == "g!"' }],
    }, { list: ['a', 'b', 'c', 'd', 'e', 'f', 'g'], tail: '!' });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(view.outputs.fan).toEqual(['a!', 'b!', 'c!', 'd!', 'e!', 'f!', 'g!']);
    expect(view.context.final_output).toBe('["a!","b!","c!","d!","e!","f!","g!"]');
    expect(view.nodes.fan!.fanOut).toEqual({ total: 7, completed: 7, failed: 0, running: 0 });
  });

  it('maps a list held as JSON text by a node, and an empty list to [] at once', async () => {
    const run = await runner().start({
      nodes: [
        node('list', 'output', { template: '[1, {"x": 2}, "three"]', outputKey: 'listText' }),
        node('fan', 'map', { items: 'list', blueprintId: 'item-echo', itemKey: 'item' }),
        node('none', 'map', { items: 'empty', blueprintId: 'item-echo' }),
      ],
      edges: [{ source: 'list', target: 'fan' }],
    }, { empty: [] });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(view.outputs.fan).toEqual(['1', '{"x":2}', 'three']);
    expect(view.outputs.none).toEqual([]);
  });

  it('fails a map on the first failing item, with the item and the reason, and starts no more', async () => {
    const run = await runner().start({
      nodes: [node('fan', 'map', { items: 'list', blueprintId: 'item-picky', concurrency: 1 }), node('after', 'count')],
      edges: [{ source: 'fan', target: 'after' }],
    }, { list: ['a', 'bad', 'c'] });
    const view = await run.result();
    expect(view.status).toBe('failed');
    expect(view.error!.nodeId).toBe('fan');
    expect(view.error!.message).toMatch(/^map item 1 of "item-picky" \(run [\w-]+\) failed at node "explode": bad item$/);
    expect(view.nodes.after!.status).toBe('cancelled');
    expect(probe.count(`${indexedChildRunId(run.runId, 'fan', 1, 2)}:check`)).toBe(0);
  });

  it('keeps going past failing items with continueOnError, each holding its error', async () => {
    const run = await runner().start({ nodes: [node('fan', 'map', { items: 'list', blueprintId: 'item-picky', continueOnError: true, concurrency: 2 })] }, { list: ['a', 'bad', 'c'] });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(view.outputs.fan).toEqual(['ok a', { error: { code: 'NODE_FAILED', message: 'failed at node "explode": bad item' } }, 'ok c']);
    expect(view.nodes.fan!.fanOut).toEqual({ total: 3, completed: 2, failed: 1, running: 0 });
  });

  it('loops until its condition holds on an iteration, carrying values, and takes the "done" edge', async () => {
    const run = await runner().start({
      nodes: [
        node('again', 'loop', { blueprintId: 'counter', inputs: { n: 'start' }, carry: { n: 'n' }, until: 'context.n >= 3', maxIterations: 10, outputs: { total: 'n' } }),
        node('finished', 'count'),
        node('gave_up', 'count'),
      ],
      edges: [{ source: 'again', target: 'finished', action: 'done' }, { source: 'again', target: 'gave_up', action: 'exhausted' }],
    }, { start: 0 });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(view.outputs.again).toEqual({ iterations: 3, last: { n: 3 } });
    expect(view.context.total).toBe(3);
    expect(statusesOf(view)).toEqual({ again: 'done', finished: 'done', gave_up: 'skipped' });
    expect(view.nodes.again!.children).toEqual([1, 2, 3].map((i) => indexedChildRunId(run.runId, 'again', 1, i)));
    expect(view.nodes.again!.childRunId).toBe(indexedChildRunId(run.runId, 'again', 1, 3));
  });

  it('ends a loop "exhausted" after maxIterations', async () => {
    const run = await runner().start({
      nodes: [
        node('again', 'loop', { blueprintId: 'counter', carry: { n: 'n' }, until: 'context.n > 100', maxIterations: 4 }),
        node('finished', 'count'),
        node('gave_up', 'count'),
      ],
      edges: [{ source: 'again', target: 'finished', action: 'done' }, { source: 'again', target: 'gave_up', action: 'exhausted' }],
    });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(view.outputs.again).toEqual({ iterations: 4, last: { n: 4 } });
    expect(statusesOf(view)).toEqual({ again: 'done', finished: 'skipped', gave_up: 'done' });
  });

  it('cancelling a run that is mapping and looping cancels every child in flight; no more start', async () => {
    const run = await runner().start({
      nodes: [
        node('fan', 'map', { items: 'list', blueprintId: 'item-blocks', concurrency: 2 }),
        node('again', 'loop', { blueprintId: 'item-blocks', until: 'true', maxIterations: 3 }),
      ],
    }, { list: ['a', 'b', 'c'] });
    const inFlight = [indexedChildRunId(run.runId, 'fan', 1, 0), indexedChildRunId(run.runId, 'fan', 1, 1), indexedChildRunId(run.runId, 'again', 1, 1)];
    await probe.allStarted(inFlight.map((id) => `${id}:item_block`));
    await run.cancel();
    const view = await run.result();
    expect(view.status).toBe('cancelled');
    expect(statusesOf(view)).toEqual({ fan: 'cancelled', again: 'cancelled' });
    await Promise.all(inFlight.map((id) => probe.whenAborted(`${id}:item_block`)));
    expect(probe.count(`${indexedChildRunId(run.runId, 'fan', 1, 2)}:item_block`)).toBe(0);
    if (name === 'distributed') {
      for (const id of inFlight) expect((await h.client.result(id, { timeoutMs: 10_000 })).status).toBe('cancelled');
    }
  });

  it('cancels: running nodes see the abort and queued nodes never run', async () => {
    const r = runner();
    const run = await r.start({
      nodes: [node('wait', 'block'), node('later', 'count')],
      edges: [{ source: 'wait', target: 'later' }],
    });
    await probe.started(`${run.runId}:wait`);
    await run.cancel();
    const view = await run.result();
    expect(view.status).toBe('cancelled');
    expect(statusesOf(view)).toEqual({ wait: 'cancelled', later: 'cancelled' });
    // The abort reaches the worker by its own subscription, which may hear it after the client heard the
    // run end (on a Cluster the two messages can come through different masters): awaited, not assumed.
    await probe.whenAborted(`${run.runId}:wait`);
    expect(probe.count(`${run.runId}:later`)).toBe(0);
  });

  it('a redrive after a node failed on its last attempt runs it and what it blocked again; done nodes do not run again', async () => {
    const run = await runner().start({
      nodes: [node('start', 'count'), node('side', 'count'), node('bad', 'flaky', { failTimes: 2 }, { maxRetries: 1, retryDelay: 10 }), node('after', 'count'), node('join', 'count')],
      edges: [
        { source: 'start', target: 'side' },
        { source: 'start', target: 'bad' },
        { source: 'bad', target: 'after' },
        { source: 'side', target: 'join' },
        { source: 'after', target: 'join' },
      ],
    });
    const failed = await run.result();
    expect(failed.status).toBe('failed');
    expect(statusesOf(failed)).toEqual({ start: 'done', side: 'done', bad: 'failed', after: 'cancelled', join: 'cancelled' });
    await run.redrive();
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(view.redrives).toBe(1);
    expect(view.error).toBeUndefined();
    expect(view.nodes.bad).toMatchObject({ status: 'done', attempts: 1 });
    expect(view.outputs).toMatchObject({ start: 'start', side: 'side', bad: 'ok after 3', after: 'after', join: 'join' });
    const counts = ['start', 'side', 'bad', 'after', 'join'].map((id) => probe.count(`${run.runId}:${id}`));
    expect(counts).toEqual([1, 1, 3, 1, 1]);
  });

  it('a redrive runs a loop\'s failed iteration again in place and goes on from there', async () => {
    // Each iteration's child fails the first time it runs: one redrive per iteration.
    const run = await runner().start({
      nodes: [node('again', 'loop', { blueprintId: 'redrive-child', until: 'false', maxIterations: 2 }), node('after', 'count')],
      edges: [{ source: 'again', target: 'after', action: 'exhausted' }],
    });
    expect((await run.result()).status).toBe('failed');
    await run.redrive();
    const halfway = await run.result();
    expect(halfway.status).toBe('failed');
    expect(halfway.nodes.again!.children).toHaveLength(2);
    await run.redrive();
    const view = await run.result();
    expect(view).toMatchObject({ status: 'completed', redrives: 2 });
    expect(view.nodes.again).toMatchObject({ status: 'done', attempts: 1 });
    expect(view.outputs.again).toMatchObject({ iterations: 2 });
    const [first, second] = view.nodes.again!.children!;
    expect(['first', 'shaky'].map((id) => probe.count(`${first}:${id}`))).toEqual([1, 2]);
    expect(['first', 'shaky'].map((id) => probe.count(`${second}:${id}`))).toEqual([1, 2]);
    expect(probe.count(`${run.runId}:after`)).toBe(1);
  });

  it('a redrive keeps a node skipped by dead-path elimination skipped', async () => {
    const run = await runner().start({
      nodes: [node('decide', 'route', { rules: [], default: 'left' }), node('left', 'flaky', { failTimes: 1 }), node('right', 'count'), node('join', 'count')],
      edges: [
        { source: 'decide', target: 'left', action: 'left' },
        { source: 'decide', target: 'right', action: 'right' },
        { source: 'left', target: 'join' },
        { source: 'right', target: 'join' },
      ],
    });
    expect(statusesOf(await run.result())).toEqual({ decide: 'done', left: 'failed', right: 'skipped', join: 'cancelled' });
    await run.redrive();
    const view = await run.result();
    expect(statusesOf(view)).toEqual({ decide: 'done', left: 'done', right: 'skipped', join: 'done' });
    expect(['left', 'right', 'join'].map((id) => probe.count(`${run.runId}:${id}`))).toEqual([2, 0, 1]);
  });

  it('a redrive runs a failed subflow child again in place, and a failed map item, keeping the done items', async () => {
    const run = await runner().start({
      nodes: [
        node('pre', 'count'),
        node('sub', 'subflow', { blueprintId: 'redrive-child' }),
        node('fan', 'map', { items: 'list', blueprintId: 'redrive-item', concurrency: 1 }),
      ],
      edges: [{ source: 'pre', target: 'sub' }, { source: 'sub', target: 'fan' }],
    }, { list: ['x', 'bad', 'y'] });
    const failed = await run.result();
    expect(statusesOf(failed)).toEqual({ pre: 'done', sub: 'failed', fan: 'cancelled' });
    await run.redrive();
    const halfway = await run.result();
    // The subflow's child ran again where it failed; now the map fails on its bad item.
    expect(statusesOf(halfway)).toEqual({ pre: 'done', sub: 'done', fan: 'failed' });
    expect(halfway.nodes.sub).toMatchObject({ attempts: 1, childRunId: expect.any(String) });
    const child = halfway.nodes.sub!.childRunId!;
    expect(['first', 'shaky'].map((id) => probe.count(`${child}:${id}`))).toEqual([1, 2]);
    await run.redrive();
    const view = await run.result();
    expect(view).toMatchObject({ status: 'completed', redrives: 2 });
    expect(view.nodes.fan).toMatchObject({ status: 'done', attempts: 1 });
    // x was done before the map failed: its value is kept and its child does not run again.
    expect(view.outputs.fan).toEqual(['ok x', null, 'ok y']);
    const items = [0, 1, 2].map((i) => indexedChildRunId(run.runId, 'fan', 1, i));
    expect(items.map((id) => probe.count(`${id}:seen`))).toEqual([1, 1, 1]);
    expect(probe.count(`${items[1]}:once`)).toBe(2);
    expect(probe.count(`${run.runId}:pre`)).toBe(1);
  });
});


/** ask (a wait) -> approved / rejected / expired by action, each a count node. */
const approval = (params: Record<string, unknown> = {}) => ({
  nodes: [
    node('ask', 'wait', { prompt: 'Approve {{item}}?', inputs: { item: 'item' }, ...params }),
    node('approved', 'count'),
    node('rejected', 'count'),
    node('expired', 'count'),
  ],
  edges: [
    { source: 'ask', target: 'approved', action: 'approve' },
    { source: 'ask', target: 'rejected', action: 'reject' },
    { source: 'ask', target: 'expired', action: 'timeout' },
  ],
});

/** The error a promise rejects with. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (err: unknown) => err,
  );
}

describe.each(Object.keys(runners))('wait, signals, durable sleep and deadlines (%s)', (name) => {
  const runner = () => runners[name]!();

  it('approval: a signal with action "approve" routes the approve edge; its payload is the output; a second signal is refused', async () => {
    const run = await runner().start(approval(), { item: 'the invoice' });
    const waiting = await run.parked('ask');
    expect(waiting).toMatchObject({ nodeId: 'ask', prompt: 'Approve the invoice?', actions: ['approve', 'reject', 'timeout'] });
    expect(waiting!.timeoutAt).toBeUndefined();
    const answered = await run.signal('ask', { action: 'approve', payload: { by: 'ann', note: 'ok' } });
    expect(answered).toMatchObject({ nodeId: 'ask', status: 'done' });
    const again = await rejection(run.signal('ask', { action: 'reject' }));
    expect(again).toBeInstanceOf(NodeNotWaitingError);
    expect((again as NodeNotWaitingError).status).toBe('done');
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(statusesOf(view)).toEqual({ ask: 'done', approved: 'done', rejected: 'skipped', expired: 'skipped' });
    expect(view.outputs.ask).toEqual({ by: 'ann', note: 'ok' });
    expect(view.waiting).toBeUndefined();
  });

  it('approval: "reject" routes the reject edge; an action no edge has is refused and the node keeps waiting', async () => {
    const run = await runner().start(approval({ timeout: '1h' }), { item: 'x' });
    const waiting = await run.parked('ask');
    expect(waiting!.timeoutAt).toBeGreaterThan(waiting!.since);
    const wrong = await rejection(run.signal('ask', { action: 'maybe' }));
    expect(wrong).toMatchObject({ code: 'VALIDATION' });
    expect(await rejection(run.signal('nope', { action: 'approve' }))).toMatchObject({ code: 'NODE_NOT_FOUND' });
    await run.signal('ask', { action: 'reject' });
    const view = await run.result();
    expect(statusesOf(view)).toEqual({ ask: 'done', approved: 'skipped', rejected: 'done', expired: 'skipped' });
    expect(view.outputs.ask).toBeUndefined();
  });

  it('approval: with no signal, the timeout completes the node with timeoutAction and no output', async () => {
    const run = await runner().start(approval({ timeout: 60 }), { item: 'x' });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(statusesOf(view)).toEqual({ ask: 'done', approved: 'skipped', rejected: 'skipped', expired: 'done' });
    expect(view.outputs.ask).toBeUndefined();
    expect(await rejection(run.signal('ask', { action: 'approve' }))).toMatchObject({ status: 'done' });
  });

  it('a custom timeoutAction routes its own edge', async () => {
    const run = await runner().start({
      nodes: [node('ask', 'wait', { timeout: '50ms', timeoutAction: 'reject' }), node('approved', 'count'), node('rejected', 'count')],
      edges: [{ source: 'ask', target: 'approved', action: 'approve' }, { source: 'ask', target: 'rejected', action: 'reject' }],
    });
    const view = await run.result();
    expect(statusesOf(view)).toEqual({ ask: 'done', approved: 'skipped', rejected: 'done' });
  });

  it('a signal racing the timeout: exactly one of them completes the node', async () => {
    for (let i = 0; i < 4; i++) {
      const run = await runner().start(approval({ timeout: 25 }), { item: 'x' });
      await run.parked('ask');
      // Sent about when the timeout fires; whichever completes the node first wins, the other changes nothing.
      await new Promise((resolve) => setTimeout(resolve, 20 + i * 3));
      const signalled = await run.signal('ask', { action: 'approve', payload: 'yes' }).then(
        () => true,
        (err: unknown) => {
          expect(err).toBeInstanceOf(NodeNotWaitingError);
          expect((err as NodeNotWaitingError).status).toBe('done');
          return false;
        },
      );
      const view = await run.result();
      expect(view.status).toBe('completed');
      expect(probe.count(`${run.runId}:approved`) + probe.count(`${run.runId}:expired`)).toBe(1);
      expect(view.nodes.approved!.status).toBe(signalled ? 'done' : 'skipped');
      expect(view.nodes.expired!.status).toBe(signalled ? 'skipped' : 'done');
      expect(view.outputs.ask).toEqual(signalled ? 'yes' : undefined);
    }
  });

  it('a durable sleep of a duration, and one until a time held in the context, then go on', async () => {
    const run = await runner().start({
      nodes: [node('nap', 'sleep', { duration: '40ms' }), node('rest', 'sleep', { until: 'wakeAt' }), node('after', 'count')],
      edges: [{ source: 'nap', target: 'rest' }, { source: 'rest', target: 'after' }],
    }, { wakeAt: new Date(Date.now() + 80).toISOString() });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(statusesOf(view)).toEqual({ nap: 'done', rest: 'done', after: 'done' });
    expect(view.nodes.nap!.attempts).toBe(1);
  });

  it('cancelling a run that is waiting ends the wait; a later signal is refused', async () => {
    const run = await runner().start(approval(), { item: 'x' });
    await run.parked('ask');
    await run.cancel();
    const view = await run.result();
    expect(view.status).toBe('cancelled');
    expect(statusesOf(view)).toEqual({ ask: 'cancelled', approved: 'cancelled', rejected: 'cancelled', expired: 'cancelled' });
    expect(await rejection(run.signal('ask', { action: 'approve' }))).toMatchObject({ code: 'NODE_NOT_WAITING', status: 'cancelled' });
    expect(probe.count(`${run.runId}:approved`)).toBe(0);
  });

  it('cancelling a run that is sleeping ends the sleep; the wake changes nothing', async () => {
    const run = await runner().start({ nodes: [node('nap', 'sleep', { duration: '60s' }), node('after', 'count')], edges: [{ source: 'nap', target: 'after' }] });
    await run.parked('nap');
    await run.cancel();
    const view = await run.result();
    expect(view.status).toBe('cancelled');
    expect(statusesOf(view)).toEqual({ nap: 'cancelled', after: 'cancelled' });
  });

  it('a run past its deadline fails with RUN_TIMEOUT: running nodes see their abort, waiting nodes end', async () => {
    const run = await runner().start({
      nodes: [node('ask', 'wait', {}), node('busy', 'block'), node('nap', 'sleep', { duration: '1h' }), node('after', 'count')],
      edges: [{ source: 'ask', target: 'after' }, { source: 'busy', target: 'after' }, { source: 'nap', target: 'after' }],
    }, {}, { timeoutMs: 300 });
    await run.parked('ask');
    const view = await run.result();
    expect(view.status).toBe('failed');
    expect(view.error).toMatchObject({ code: 'RUN_TIMEOUT' });
    expect(view.error!.nodeId).toBeUndefined();
    expect(statusesOf(view)).toEqual({ ask: 'cancelled', busy: 'cancelled', nap: 'cancelled', after: 'cancelled' });
    await probe.whenAborted(`${run.runId}:busy`);
    expect(probe.count(`${run.runId}:after`)).toBe(0);
  });
});

describe('subflows across processes (distributed only)', () => {
  it('cancelling a child run directly fails the parent node with a clear reason', async () => {
    const run = await h.client.start({ id: 'direct-cancel', nodes: [{ id: 'sub', uses: 'subflow', params: { blueprintId: 'child-blocks' } }] });
    const key = await probe.startedNode('child_block');
    const childRunId = key.slice(0, key.lastIndexOf(':'));
    expect(await h.client.cancel(childRunId)).toBe(true);
    const view = await run.result({ timeoutMs: 10_000 });
    expect(view.status).toBe('failed');
    expect(view.error!.message).toMatch(/subflow "child-blocks" \(run [\w-]+\) was cancelled/);
    probe.calls.delete(key);
  });
});
