import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { RedisStore } from '../../src/store/redis-store.js';
import { compileGraph } from '../../src/engine/graph.js';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import { testRedis } from '../support/harness.js';
import { randomBytes } from 'node:crypto';

/** Raw-key tests of the run scripts: exactly-once transitions, joins, redelivery, expiry. */
const kinds = createNodeKinds();
const t = (id: string) => ({ id, uses: 'template', params: { template: id } });
// a -> b, a -> c, b -> d, c -> d
const graph = compileGraph(
  new BlueprintRegistry(kinds).add({
    id: 'diamond',
    nodes: ['a', 'b', 'c', 'd'].map(t),
    edges: [{ source: 'a', target: 'b' }, { source: 'a', target: 'c' }, { source: 'b', target: 'd' }, { source: 'c', target: 'd' }],
  }),
  kinds,
);
const diamond = graph.topology;
const none = { context: [], outputs: [] } as const;
const nodeRef = (id: string) => graph.byId.get(id)!;

describe('run scripts', () => {
  let redis: Redis;
  let store: RedisStore;
  const prefix = `t${randomBytes(4).toString('hex')}`;
  beforeAll(() => {
    redis = testRedis();
    store = new RedisStore(redis, prefix);
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  async function newRun(ttlSeconds = 3600) {
    const runId = `r${randomBytes(6).toString('hex')}`;
    await store.startRun({ runId, blueprintId: 'diamond', version: 'v1', topology: diamond, input: { n: 1 }, ttlSeconds });
    return runId;
  }
  const nodeFields = (runId: string) => redis.hgetall(store.keys.runKeys(runId).state);
  async function finish(runId: string, id: string, taken: boolean[]) {
    const begin = await store.startNode(runId, nodeRef(id), 'w');
    expect(begin.kind).toBe('run');
    return store.completeNode(runId, nodeRef(id), { output: id }, taken);
  }

  it('starting the same run id twice creates it once', async () => {
    const runId = await newRun();
    const again = await store.startRun({ runId, blueprintId: 'diamond', version: 'v2', topology: diamond, input: {}, ttlSeconds: 60 });
    expect(again).toEqual({ created: false, version: 'v1', status: 'running' });
  });

  it('completing the same node twice changes nothing the second time', async () => {
    const runId = await newRun();
    expect(await finish(runId, 'a', [true, true])).toEqual({ kind: 'ok', runStatus: 'running', ready: ['b', 'c'], claimed: [] });
    const before = await nodeFields(runId);
    const eventsBefore = await redis.xlen(store.keys.runKeys(runId).events);
    const again = await store.completeNode(runId, nodeRef('a'), { output: 'other' }, [true, true]);
    // Nothing changes; the reply names what the first completion made ready and nobody has claimed yet.
    expect(again).toEqual({ kind: 'duplicate', nodeStatus: 'done', ready: ['b', 'c'], claimed: [] });
    expect(await nodeFields(runId)).toEqual(before);
    expect(await redis.xlen(store.keys.runKeys(runId).events)).toBe(eventsBefore);
    expect((await store.getRun(runId))!.outputs.a).toBe('a');
  });

  it('a join fires only after every incoming edge arrived, and only once', async () => {
    const runId = await newRun();
    await finish(runId, 'a', [true, true]);
    expect(await finish(runId, 'b', [true])).toEqual({ kind: 'ok', runStatus: 'running', ready: [], claimed: [] });
    expect((await store.getRun(runId))!.nodes.d!.status).toBe('pending');
    expect(await finish(runId, 'c', [false])).toEqual({ kind: 'ok', runStatus: 'running', ready: ['d'], claimed: [] });
    expect(await store.completeNode(runId, nodeRef('c'), {}, [true])).toEqual({ kind: 'duplicate', nodeStatus: 'done', ready: ['d'], claimed: [] });
    const events = await store.getEvents(runId);
    expect(events.filter((e) => e.type === 'node.done' && e.ready?.split(',').includes('d'))).toHaveLength(1);
    expect(await finish(runId, 'd', [])).toEqual({ kind: 'ok', runStatus: 'completed', ready: [], claimed: [] });
  });

  it('a join whose incoming edges were all skipped is skipped, and the run completes', async () => {
    const runId = await newRun();
    await finish(runId, 'a', [false, false]);
    const view = await store.getRun(runId);
    expect(view!.status).toBe('completed');
    expect(Object.values(view!.nodes).map((n) => n.status)).toEqual(['done', 'skipped', 'skipped', 'skipped']);
  });

  it('a completing worker can claim the first node that became ready, in the same call', async () => {
    const runId = await newRun();
    await store.startNode(runId, nodeRef('a'), 'w');
    const done = await store.completeNode(runId, nodeRef('a'), { output: 'a' }, [true, true], { workerId: 'w9', max: 1, needsOf: () => none });
    expect(done).toMatchObject({ kind: 'ok', ready: ['b', 'c'], claimed: [{ nodeId: 'b', attempt: 1 }] });
    const view = await store.getRun(runId);
    expect(view!.nodes.b).toMatchObject({ status: 'running', attempts: 1, worker: 'w9' });
    expect(view!.nodes.c!.status).toBe('queued');
    // The claimed node completes like any other.
    expect(await store.completeNode(runId, nodeRef('b'), {}, [true])).toMatchObject({ kind: 'ok', ready: [] });
  });

  it('a completion sent again (its reply lost) answers what the first one claimed for that worker and left unclaimed; nothing changes', async () => {
    const runId = await newRun();
    await store.startNode(runId, nodeRef('a'), 'w');
    const claim = { workerId: 'w9', max: 1, needsOf: () => none };
    const first = await store.completeNode(runId, nodeRef('a'), { output: 'a' }, [true, true], claim);
    expect(first).toMatchObject({ kind: 'ok', ready: ['b', 'c'], claimed: [{ nodeId: 'b', attempt: 1 }] });
    const before = await nodeFields(runId);
    const eventsBefore = await redis.xlen(store.keys.runKeys(runId).events);
    expect(await store.completeNode(runId, nodeRef('a'), { output: 'a' }, [true, true], claim)).toEqual({
      kind: 'duplicate',
      nodeStatus: 'done',
      ready: ['c'],
      claimed: [{ nodeId: 'b', attempt: 1, context: {}, outputs: {} }],
    });
    // Another worker's resend gets no claim of w9's; once c started (on w2), it is not offered as queued either.
    await store.startNode(runId, nodeRef('c'), 'w2');
    expect(await store.completeNode(runId, nodeRef('a'), { output: 'a' }, [true, true], { ...claim, workerId: 'w3' })).toEqual({ kind: 'duplicate', nodeStatus: 'done', ready: [], claimed: [] });
    expect(await nodeFields(runId)).toMatchObject({ ...before, 'c.status': 'running', 'c.worker': 'w2' });
    expect(await redis.xlen(store.keys.runKeys(runId).events)).toBe(eventsBefore + 1); // c's node.started
  });

  it('a late completion of the node that completed a child run names the parent to tell again', async () => {
    const runId = await newRun();
    const parent = JSON.stringify({ runId: 'r-parent', nodeId: 'p', version: 'v1' });
    await redis.hset(store.keys.runKeys(runId).state, 'parent', parent);
    await finish(runId, 'a', [false, false]);
    expect((await store.getRun(runId))!.status).toBe('completed');
    expect(await store.completeNode(runId, nodeRef('a'), {}, [false, false])).toMatchObject({ kind: 'stale', runStatus: 'completed', parent: { runId: 'r-parent', nodeId: 'p' } });
  });

  it('the recovery lease passes from a dead holder to one watcher only, and never from a live one', async () => {
    expect(await store.holdLease('dead', 60_000)).toBe(true);
    const takers = await Promise.all(['w1', 'w2', 'w3'].map((w) => store.takeLease('dead', w, 60_000)));
    expect(takers.filter(Boolean)).toHaveLength(1);
    const holder = await store.leaseHolder();
    expect(['w1', 'w2', 'w3']).toContain(holder);
    // The new holder is not the dead one: nobody takes it from them by naming the dead one again.
    expect(await store.takeLease('dead', 'w4', 60_000)).toBe(false);
    expect(await store.leaseHolder()).toBe(holder);
    expect(await redis.pttl(store.keys.recoveryLease())).toBeGreaterThan(50_000);
    await redis.del(store.keys.recoveryLease());
  });

  it('a redelivered job of a completed node learns which nodes its completion made ready', async () => {
    const runId = await newRun();
    await finish(runId, 'a', [true, false]);
    expect(await store.startNode(runId, nodeRef('a'), 'w2')).toEqual({ kind: 'done', readied: ['b'] });
  });

  it('a redelivered job of a completed node names only the successors no job of their own carries', async () => {
    const runId = await newRun();
    await store.startNode(runId, nodeRef('a'), 'w');
    // b is claimed inside a's job (by a's completion); c is queued with a job of its own.
    await store.completeNode(runId, nodeRef('a'), { output: 'a' }, [true, true], { workerId: 'w', max: 1, needsOf: () => none });
    expect(await store.startNode(runId, nodeRef('a'), 'w2')).toEqual({ kind: 'done', readied: ['b', 'c'] });
    // c, once its own job runs it, is that job's to redeliver: not named.
    await store.startNode(runId, nodeRef('c'), 'w3');
    expect(await store.startNode(runId, nodeRef('a'), 'w2')).toEqual({ kind: 'done', readied: ['b'] });
    // b failed an attempt and waits for its retry job, which runs it after the delay: not named either.
    await store.retryNode(runId, 'b', { code: 'NODE_FAILED', message: 'flaky', retryable: true }, 50);
    expect(await store.startNode(runId, nodeRef('a'), 'w2')).toEqual({ kind: 'done', readied: [] });
    // Its retry job claims it as that job's: still not named.
    await store.startNode(runId, nodeRef('b'), 'w4');
    expect(await store.startNode(runId, nodeRef('a'), 'w2')).toEqual({ kind: 'done', readied: [] });
  });

  it('nodes of a cancelled run are not started, and late completions are stale', async () => {
    const runId = await newRun();
    await store.startNode(runId, nodeRef('a'), 'w');
    expect(await store.cancelRun(runId)).toEqual({ outcome: 'cancelled', ending: { children: [] } });
    expect(await store.completeNode(runId, nodeRef('a'), {}, [true, true])).toEqual({ kind: 'stale', runStatus: 'cancelled' });
    expect(await store.startNode(runId, nodeRef('b'), 'w')).toEqual({ kind: 'ended', runStatus: 'cancelled' });
    expect(await store.cancelRun(runId)).toEqual({ outcome: 'not-running', status: 'cancelled' });
    expect(await store.cancelRun('no-such-run')).toEqual({ outcome: 'missing' });
  });

  it('a finished run expires after its TTL; a running one does not', async () => {
    const runId = await newRun(120);
    const keys = store.keys.scriptKeys(runId);
    expect(await redis.pttl(keys[0])).toBe(-1);
    await finish(runId, 'a', [false, false]);
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(110_000);
      expect(ttl).toBeLessThanOrEqual(120_000);
    }
  });

  it('reads only the context keys and outputs a node needs', async () => {
    const runId = `r${randomBytes(6).toString('hex')}`;
    await store.startRun({ runId, blueprintId: 'x', version: 'v', topology: diamond, input: { keep: 'yes', other: 'no' }, ttlSeconds: 60 });
    const needs = { context: ['keep', 'absent'], outputs: [] };
    const node = { ...nodeRef('a'), needs, lua: { ...nodeRef('a').lua, needs: JSON.stringify([needs.context, needs.outputs]) } };
    const begin = await store.startNode(runId, node, 'w');
    expect(begin).toMatchObject({ kind: 'run', attempt: 1, context: { keep: 'yes' }, outputs: {} });
  });

  it('a node made ready at the end of a skip chain is claimed with what it needs', async () => {
    // s1 -> j, s2 -> b -> j; j reads s1's output. s2's edge to b is not taken, so b is skipped and j,
    // two edges away from s2, fires on s2's completion. j is beyond what the worker describes for s2's
    // completion (its direct targets), so the script reads it from the stored topology.
    const chained = compileGraph(
      new BlueprintRegistry(kinds).add({
        id: 'skip-chain',
        nodes: [t('s1'), t('s2'), t('b'), { id: 'j', uses: 'template', params: { template: '{{s1}}' } }],
        edges: [{ source: 's1', target: 'j' }, { source: 's2', target: 'b' }, { source: 'b', target: 'j' }],
      }),
      kinds,
    );
    const runId = `r${randomBytes(6).toString('hex')}`;
    await store.startRun({ runId, blueprintId: 'skip-chain', version: 'v', topology: chained.topology, input: {}, ttlSeconds: 60 });
    const [s1, s2] = [chained.byId.get('s1')!, chained.byId.get('s2')!];
    await store.startNode(runId, s1, 'w');
    await store.startNode(runId, s2, 'w');
    expect(await store.completeNode(runId, s1, { output: 'from s1' }, [true])).toMatchObject({ ready: [] });
    const claim = { workerId: 'w', max: 4, needsOf: (id: string) => chained.byId.get(id)!.needs };
    const done = await store.completeNode(runId, s2, { output: 'from s2' }, [false], claim);
    expect(done).toMatchObject({ kind: 'ok', ready: ['j'], claimed: [{ nodeId: 'j', attempt: 1, outputs: { s1: 'from s1' } }] });
    expect((await store.getRun(runId))!.nodes.b!.status).toBe('skipped');
  });
});
