import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForRunEvents } from '../src/store/run-events.js';
import type { RunView } from '../src/types/run-view.js';
import { childRunId, indexedChildRunId } from '../src/types/ids.js';
import { startHarness, type Harness } from './support/harness.js';
import { Probe, testKinds } from './support/test-kinds.js';

/**
 * Redrive on the distributed engine, edge cases of redrive-run-4.lua: a join with one branch done and one
 * failed, a node skipped by dead-path elimination, a cancelled run with nodes queued and running, a failed
 * subflow child and a failed map item redriven in place. Executions are counted (probe): done nodes never
 * run again.
 */
const probe = new Probe();
let h: Harness;
let seq = 0;

beforeAll(async () => {
  h = await startHarness({ kinds: testKinds(probe), workers: 2, concurrency: 8 });
  h.registry.add({ id: 'rd-child-flaky', nodes: [{ id: 'first', uses: 'count' }, { id: 'shaky', uses: 'flaky', params: { failTimes: 1 } }], edges: [{ source: 'first', target: 'shaky' }] });
  h.registry.add({
    id: 'rd-item',
    nodes: [
      { id: 'check', uses: 'route', params: { rules: [{ when: 'context.item == "bad"', action: 'bad' }], default: 'ok' } },
      { id: 'once', uses: 'flaky', params: { failTimes: 1 } },
      { id: 'fine', uses: 'output', params: { template: 'ok {{item}}', inputs: { item: 'item' } } },
    ],
    edges: [{ source: 'check', target: 'once', action: 'bad' }, { source: 'check', target: 'fine', action: 'ok' }],
  });
});
afterAll(async () => {
  await h.close();
});

const node = (id: string, uses: string, params: Record<string, unknown> = {}, config?: Record<string, unknown>) => ({ id, uses, params, ...(config ? { config } : {}) });
const statusesOf = (view: RunView) => Object.fromEntries(Object.entries(view.nodes).map(([id, n]) => [id, n.status]));
const counts = (runId: string, ids: string[]) => Object.fromEntries(ids.map((id) => [id, probe.count(`${runId}:${id}`)]));

describe('redrive (distributed)', () => {
  it('reruns a node that failed on its last attempt, and what it blocked, without running done nodes again', async () => {
    const run = await h.client.start({
      id: `rd${++seq}`,
      nodes: [node('start', 'count'), node('side', 'count'), node('bad', 'flaky', { failTimes: 2 }, { maxRetries: 1, retryDelay: 10 }), node('after', 'count'), node('join', 'count')],
      edges: [
        { source: 'start', target: 'side' },
        { source: 'start', target: 'bad' },
        { source: 'bad', target: 'after' },
        { source: 'side', target: 'join' },
        { source: 'after', target: 'join' },
      ],
    });
    const failed = await run.result({ timeoutMs: 20_000 });
    expect(failed.status).toBe('failed');
    expect(failed.nodes.bad).toMatchObject({ status: 'failed', attempts: 2 });
    // The join has one branch done (side) and one failed (bad -> after).
    expect(statusesOf(failed)).toMatchObject({ start: 'done', side: 'done', after: 'cancelled', join: 'cancelled' });

    expect(await run.redrive()).toEqual({ redriven: true, redrives: 1 });
    const view = await run.result({ timeoutMs: 20_000 });
    expect(view.status).toBe('completed');
    expect(view.redrives).toBe(1);
    expect(view.error).toBeUndefined();
    expect(view.nodes.bad).toMatchObject({ status: 'done', attempts: 1 });
    expect(view.outputs.bad).toBe('ok after 3');
    expect(counts(run.runId, ['start', 'side', 'bad', 'after', 'join'])).toEqual({ start: 1, side: 1, bad: 3, after: 1, join: 1 });
    const redriven = (await h.client.events(run.runId)).filter((e) => e.type === 'run.redriven');
    expect(redriven).toEqual([expect.objectContaining({ redrives: '1', ready: 'bad', reset: 'bad,after,join' })]);
    // A completed run is not redriven.
    expect(await run.redrive()).toEqual({ redriven: false, status: 'completed' });
  });

  it('keeps a node skipped by dead-path elimination skipped', async () => {
    const run = await h.client.start({
      id: `rd${++seq}`,
      nodes: [node('decide', 'route', { rules: [], default: 'left' }), node('left', 'flaky', { failTimes: 1 }), node('right', 'count'), node('join', 'count')],
      edges: [
        { source: 'decide', target: 'left', action: 'left' },
        { source: 'decide', target: 'right', action: 'right' },
        { source: 'left', target: 'join' },
        { source: 'right', target: 'join' },
      ],
    });
    const failed = await run.result({ timeoutMs: 20_000 });
    expect(statusesOf(failed)).toEqual({ decide: 'done', left: 'failed', right: 'skipped', join: 'cancelled' });
    await run.redrive();
    const view = await run.result({ timeoutMs: 20_000 });
    expect(view.status).toBe('completed');
    expect(statusesOf(view)).toEqual({ decide: 'done', left: 'done', right: 'skipped', join: 'done' });
    expect(counts(run.runId, ['left', 'right', 'join'])).toEqual({ left: 2, right: 0, join: 1 });
  });

  it('redrives a cancelled run: its running and queued nodes run again, done ones do not', async () => {
    const run = await h.client.start({
      id: `rd${++seq}`,
      nodes: [node('a', 'count'), node('hold', 'block'), node('b', 'count'), node('c', 'count')],
      edges: [{ source: 'a', target: 'hold' }, { source: 'a', target: 'b' }, { source: 'hold', target: 'c' }, { source: 'b', target: 'c' }],
    });
    await probe.started(`${run.runId}:hold`);
    expect(await run.cancel()).toBe(true);
    const cancelled = await run.result({ timeoutMs: 20_000 });
    expect(cancelled.status).toBe('cancelled');
    expect(await h.client.redrive(run.runId)).toEqual({ redriven: true, redrives: 1 });
    expect(await h.client.redrive(run.runId)).toEqual({ redriven: false, status: 'running' });
    // The reconciler's index has the run again.
    expect(await h.client.store.redis.zscore(h.client.store.keys.runningRuns(), run.runId)).not.toBeNull();
    await probe.started(`${run.runId}:hold`, 2);
    await run.cancel();
    const view = await run.result({ timeoutMs: 20_000 });
    expect(view).toMatchObject({ status: 'cancelled', redrives: 1 });
    expect(counts(run.runId, ['a', 'hold'])).toEqual({ a: 1, hold: 2 });
  });

  it('a durable sleep cancelled and redriven parks again under a new attempt (its old wake job cannot wake it)', async () => {
    const run = await h.client.start({ id: `rd${++seq}`, nodes: [node('nap', 'sleep', { duration: '60s' })], edges: [] });
    const reader = h.redis.duplicate();
    const stream = h.client.store.keys.runKeys(run.runId).events;
    const sleeping = async (attempt: string) => {
      let after: string | undefined;
      for (;;) {
        const events = await waitForRunEvents(reader, stream, after, 10_000);
        if (events.some((e) => e.type === 'node.sleeping' && e.attempt === attempt)) return;
        after = events.at(-1)?.id ?? after;
      }
    };
    try {
      await sleeping('1');
      await run.cancel();
      await run.redrive();
      await sleeping('2');
      expect((await run.get())!.nodes.nap).toMatchObject({ status: 'sleeping', attempts: 2 });
      await run.cancel();
    } finally {
      reader.disconnect();
    }
  });

  it('redrives a failed subflow child in place: the parent node waits for the same child run', async () => {
    const run = await h.client.start({
      id: `rd${++seq}`,
      nodes: [node('pre', 'count'), node('sub', 'subflow', { blueprintId: 'rd-child-flaky' }), node('post', 'count')],
      edges: [{ source: 'pre', target: 'sub' }, { source: 'sub', target: 'post' }],
    });
    const failed = await run.result({ timeoutMs: 20_000 });
    expect(failed.status).toBe('failed');
    const child = childRunId(run.runId, 'sub', 1);
    expect((await h.client.get(child))!.status).toBe('failed');
    await run.redrive();
    const view = await run.result({ timeoutMs: 20_000 });
    expect(view.status).toBe('completed');
    expect(view.nodes.sub).toMatchObject({ status: 'done', attempts: 1 });
    const childView = (await h.client.get(child))!;
    expect(childView).toMatchObject({ status: 'completed', redrives: 1 });
    expect(counts(run.runId, ['pre', 'post'])).toEqual({ pre: 1, post: 1 });
    expect(counts(child, ['first', 'shaky'])).toEqual({ first: 1, shaky: 2 });
  });

  it('redrives a failed map in place: items already done keep their values and do not run again', async () => {
    const items = ['x', 'bad', 'y'];
    const run = await h.client.start({
      id: `rd${++seq}`,
      nodes: [node('fan', 'map', { items: 'list', blueprintId: 'rd-item', concurrency: 1 })],
      edges: [],
    }, { list: items });
    const failed = await run.result({ timeoutMs: 20_000 });
    expect(failed.status).toBe('failed');
    const ids = items.map((_, i) => indexedChildRunId(run.runId, 'fan', 1, i));
    await run.redrive();
    const view = await run.result({ timeoutMs: 20_000 });
    expect(view.status).toBe('completed');
    expect(view.nodes.fan).toMatchObject({ status: 'done', attempts: 1 });
    // One item at a time: x was collected before bad failed the map (its value is kept, its child not run
    // again), y had not started. The flaky item's child writes no final_output.
    expect(view.outputs.fan).toEqual(['ok x', null, 'ok y']);
    expect(counts(ids[1]!, ['once'])).toEqual({ once: 2 });
    expect((await h.client.get(ids[1]!))!).toMatchObject({ status: 'completed', redrives: 1 });
    for (const id of [ids[0]!, ids[2]!]) expect((await h.client.get(id))!.redrives).toBeUndefined();
  });
});
