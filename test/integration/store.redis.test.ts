import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { RedisStore } from '../../src/store/redis-store.js';
import type { LuaTopology } from '../../src/engine/graph.js';
import { testRedis } from '../support/harness.js';
import { randomBytes } from 'node:crypto';

/** Raw-key tests of the run scripts: exactly-once transitions, joins, redelivery, expiry. */
const diamond: LuaTopology = {
  // a -> b, a -> c, b -> d, c -> d
  ids: ['a', 'b', 'c', 'd'],
  any: [0, 0, 0, 0],
  indeg: [0, 1, 1, 2],
  out: [[2, 3], [4], [4], []],
  needs: [[[], []], [[], []], [[], []], [[], []]],
};
const none = { context: [], outputs: [] } as const;
const nodeRef = (id: string) => ({ id, index: diamond.ids.indexOf(id), needs: none });

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
  const nodeFields = (runId: string) => redis.hgetall(store.keys.run(runId)[0]);
  async function finish(runId: string, id: string, index: number, taken: boolean[]) {
    const begin = await store.startNode(runId, nodeRef(id), 'w');
    expect(begin.kind).toBe('run');
    return store.completeNode(runId, { id, index }, { output: id }, taken);
  }

  it('starting the same run id twice creates it once', async () => {
    const runId = await newRun();
    const again = await store.startRun({ runId, blueprintId: 'diamond', version: 'v2', topology: diamond, input: {}, ttlSeconds: 60 });
    expect(again).toEqual({ created: false, version: 'v1', status: 'running' });
  });

  it('completing the same node twice changes nothing the second time', async () => {
    const runId = await newRun();
    expect(await finish(runId, 'a', 0, [true, true])).toEqual({ kind: 'ok', runStatus: 'running', ready: ['b', 'c'], claimed: [] });
    const before = await nodeFields(runId);
    const eventsBefore = await redis.xlen(store.keys.run(runId)[3]);
    const again = await store.completeNode(runId, { id: 'a', index: 0 }, { output: 'other' }, [true, true]);
    expect(again).toEqual({ kind: 'duplicate', nodeStatus: 'done' });
    expect(await nodeFields(runId)).toEqual(before);
    expect(await redis.xlen(store.keys.run(runId)[3])).toBe(eventsBefore);
    expect((await store.getRun(runId))!.outputs.a).toBe('a');
  });

  it('a join fires only after every incoming edge arrived, and only once', async () => {
    const runId = await newRun();
    await finish(runId, 'a', 0, [true, true]);
    expect(await finish(runId, 'b', 1, [true])).toEqual({ kind: 'ok', runStatus: 'running', ready: [], claimed: [] });
    expect((await store.getRun(runId))!.nodes.d!.status).toBe('pending');
    expect(await finish(runId, 'c', 2, [false])).toEqual({ kind: 'ok', runStatus: 'running', ready: ['d'], claimed: [] });
    expect(await store.completeNode(runId, { id: 'c', index: 2 }, {}, [true])).toEqual({ kind: 'duplicate', nodeStatus: 'done' });
    const events = await store.getEvents(runId);
    expect(events.filter((e) => e.type === 'node.done' && e.ready?.split(',').includes('d'))).toHaveLength(1);
    expect(await finish(runId, 'd', 3, [])).toEqual({ kind: 'ok', runStatus: 'completed', ready: [], claimed: [] });
  });

  it('a join whose incoming edges were all skipped is skipped, and the run completes', async () => {
    const runId = await newRun();
    await finish(runId, 'a', 0, [false, false]);
    const view = await store.getRun(runId);
    expect(view!.status).toBe('completed');
    expect(Object.values(view!.nodes).map((n) => n.status)).toEqual(['done', 'skipped', 'skipped', 'skipped']);
  });

  it('a completing worker can claim the first node that became ready, in the same call', async () => {
    const runId = await newRun();
    await store.startNode(runId, nodeRef('a'), 'w');
    const done = await store.completeNode(runId, { id: 'a', index: 0 }, { output: 'a' }, [true, true], { workerId: 'w9', max: 1, needsOf: () => none });
    expect(done).toMatchObject({ kind: 'ok', ready: ['b', 'c'], claimed: [{ nodeId: 'b', attempt: 1 }] });
    const view = await store.getRun(runId);
    expect(view!.nodes.b).toMatchObject({ status: 'running', attempts: 1, worker: 'w9' });
    expect(view!.nodes.c!.status).toBe('queued');
    // The claimed node completes like any other.
    expect(await store.completeNode(runId, { id: 'b', index: 1 }, {}, [true])).toMatchObject({ kind: 'ok', ready: [] });
  });

  it('a redelivered job of a completed node learns which nodes its completion made ready', async () => {
    const runId = await newRun();
    await finish(runId, 'a', 0, [true, false]);
    expect(await store.startNode(runId, nodeRef('a'), 'w2')).toEqual({ kind: 'done', readied: ['b'] });
  });

  it('nodes of a cancelled run are not started, and late completions are stale', async () => {
    const runId = await newRun();
    await store.startNode(runId, nodeRef('a'), 'w');
    expect(await store.cancelRun(runId)).toEqual({ outcome: 'cancelled', ending: { children: [] } });
    expect(await store.completeNode(runId, { id: 'a', index: 0 }, {}, [true, true])).toEqual({ kind: 'stale', runStatus: 'cancelled' });
    expect(await store.startNode(runId, nodeRef('b'), 'w')).toEqual({ kind: 'ended', runStatus: 'cancelled' });
    expect(await store.cancelRun(runId)).toEqual({ outcome: 'not-running', status: 'cancelled' });
    expect(await store.cancelRun('no-such-run')).toEqual({ outcome: 'missing' });
  });

  it('a finished run expires after its TTL; a running one does not', async () => {
    const runId = await newRun(120);
    const keys = store.keys.run(runId);
    expect(await redis.pttl(keys[0])).toBe(-1);
    await finish(runId, 'a', 0, [false, false]);
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(110_000);
      expect(ttl).toBeLessThanOrEqual(120_000);
    }
  });

  it('reads only the context keys and outputs a node needs', async () => {
    const runId = `r${randomBytes(6).toString('hex')}`;
    await store.startRun({ runId, blueprintId: 'x', version: 'v', topology: diamond, input: { keep: 'yes', other: 'no', __proto__x: 1 }, ttlSeconds: 60 });
    const topology = { ...diamond, needs: [[['keep', 'absent'], []], ...diamond.needs.slice(1)] as typeof diamond.needs };
    const runId2 = `r${randomBytes(6).toString('hex')}`;
    await store.startRun({ runId: runId2, blueprintId: 'x', version: 'v', topology, input: { keep: 'yes', other: 'no' }, ttlSeconds: 60 });
    const begin = await store.startNode(runId2, { id: 'a', index: 0, needs: { context: ['keep', 'absent'], outputs: [] } }, 'w');
    expect(begin).toMatchObject({ kind: 'run', attempt: 1, context: { keep: 'yes' }, outputs: {} });
  });
});
