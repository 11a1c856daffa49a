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
};
const none = { context: [], outputs: [] } as const;

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
  const nodeFields = (runId: string) => redis.hgetall(store.keys.run(runId)[1]);
  async function finish(runId: string, id: string, index: number, taken: boolean[]) {
    const begin = await store.startNode(runId, id, 'w', none);
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
    expect(await finish(runId, 'a', 0, [true, true])).toEqual({ kind: 'ok', runStatus: 'running', ready: ['b', 'c'] });
    const before = await nodeFields(runId);
    const eventsBefore = await redis.xlen(store.keys.run(runId)[4]);
    const again = await store.completeNode(runId, { id: 'a', index: 0 }, { output: 'other' }, [true, true]);
    expect(again).toEqual({ kind: 'duplicate', nodeStatus: 'done' });
    expect(await nodeFields(runId)).toEqual(before);
    expect(await redis.xlen(store.keys.run(runId)[4])).toBe(eventsBefore);
    expect((await store.getRun(runId))!.outputs.a).toBe('a');
  });

  it('a join fires only after every incoming edge arrived, and only once', async () => {
    const runId = await newRun();
    await finish(runId, 'a', 0, [true, true]);
    expect(await finish(runId, 'b', 1, [true])).toEqual({ kind: 'ok', runStatus: 'running', ready: [] });
    expect((await store.getRun(runId))!.nodes.d!.status).toBe('pending');
    expect(await finish(runId, 'c', 2, [false])).toEqual({ kind: 'ok', runStatus: 'running', ready: ['d'] });
    expect(await store.completeNode(runId, { id: 'c', index: 2 }, {}, [true])).toEqual({ kind: 'duplicate', nodeStatus: 'done' });
    const events = await store.getEvents(runId);
    expect(events.filter((e) => e.type === 'node.queued' && e.node === 'd')).toHaveLength(1);
    expect(await finish(runId, 'd', 3, [])).toEqual({ kind: 'ok', runStatus: 'completed', ready: [] });
  });

  it('a join whose incoming edges were all skipped is skipped, and the run completes', async () => {
    const runId = await newRun();
    await finish(runId, 'a', 0, [false, false]);
    const view = await store.getRun(runId);
    expect(view!.status).toBe('completed');
    expect(Object.values(view!.nodes).map((n) => n.status)).toEqual(['done', 'skipped', 'skipped', 'skipped']);
  });

  it('a redelivered job of a completed node learns which nodes its completion made ready', async () => {
    const runId = await newRun();
    await finish(runId, 'a', 0, [true, false]);
    expect(await store.startNode(runId, 'a', 'w2', none)).toEqual({ kind: 'done', readied: ['b'] });
  });

  it('nodes of a cancelled run are not started, and late completions are stale', async () => {
    const runId = await newRun();
    await store.startNode(runId, 'a', 'w', none);
    expect(await store.cancelRun(runId)).toEqual({ outcome: 'cancelled', ending: { children: [] } });
    expect(await store.completeNode(runId, { id: 'a', index: 0 }, {}, [true, true])).toEqual({ kind: 'stale', runStatus: 'cancelled' });
    expect(await store.startNode(runId, 'b', 'w', none)).toEqual({ kind: 'ended', runStatus: 'cancelled' });
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
    const begin = await store.startNode(runId, 'a', 'w', { context: ['keep', 'absent'], outputs: [] });
    expect(begin).toMatchObject({ kind: 'run', attempt: 1, context: { keep: 'yes' }, outputs: {} });
  });
});
