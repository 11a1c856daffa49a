import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { compileGraph } from '../../src/engine/graph.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import { RedisStore } from '../../src/store/redis-store.js';
import { testRedis } from '../support/harness.js';

/** Raw-key tests of redrive-run-4.lua: what it keeps, what it resets, what it makes ready, what it refuses. */
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
const nodeRef = (id: string) => graph.byId.get(id)!;
const failure = { code: 'NODE_FAILED', message: 'no', retryable: false, name: 'Error' };

describe('redrive-run', () => {
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

  async function newRun() {
    const runId = `r${randomBytes(6).toString('hex')}`;
    await store.startRun({ runId, blueprintId: 'diamond', version: 'v1', topology: graph.topology, input: { n: 1 }, ttlSeconds: 3600 });
    return runId;
  }
  const fields = (runId: string) => redis.hgetall(store.keys.runKeys(runId).state);
  async function finish(runId: string, id: string, taken: boolean[]) {
    expect((await store.startNode(runId, nodeRef(id), 'w')).kind).toBe('run');
    return store.completeNode(runId, nodeRef(id), { output: id }, taken);
  }

  it('a cancelled run with its start node queued: the start node is queued again, the run running, its keys no longer expire', async () => {
    const runId = await newRun();
    expect((await store.cancelRun(runId)).outcome).toBe('cancelled');
    expect(await redis.ttl(store.keys.runKeys(runId).state)).toBeGreaterThan(0);
    expect(await store.redriveRun(runId)).toEqual({ outcome: 'redriven', redrives: 1, version: 'v1', ready: ['a'], children: [] });
    const state = await fields(runId);
    expect(state).toMatchObject({ status: 'running', remaining: '4', redrives: '1', 'a.status': 'queued' });
    expect(state.cancelReason).toBeUndefined();
    expect(state.endedAt).toBeUndefined();
    expect(state['b.status']).toBeUndefined();
    for (const key of Object.values(store.keys.runKeys(runId))) expect(await redis.ttl(key), key).toBeLessThan(0);
    expect(await store.redriveRun(runId)).toEqual({ outcome: 'not-redrivable', status: 'running' });
    const events = await store.getEvents(runId);
    expect(events.at(-1)).toMatchObject({ type: 'run.redriven', redrives: '1', ready: 'a', reset: 'a,b,c,d', inPlace: '', children: '' });
  });

  it('a join with one branch done and one failed: only the failed branch runs again, and the join keeps the done branch\'s arrival', async () => {
    const runId = await newRun();
    await finish(runId, 'a', [true, true]);
    await finish(runId, 'b', [true]);
    expect((await store.startNode(runId, nodeRef('c'), 'w')).kind).toBe('run');
    await store.failNode(runId, 'c', failure);
    expect((await fields(runId))['d.status']).toBe('cancelled');
    expect(await store.redriveRun(runId)).toMatchObject({ outcome: 'redriven', ready: ['c'] });
    const state = await fields(runId);
    expect(state).toMatchObject({ 'a.status': 'done', 'b.status': 'done', 'c.status': 'queued', 'd.arrived': '1', 'd.taken': '1', remaining: '2' });
    expect(state['c.attempts']).toBeUndefined();
    expect(state['c.error']).toBeUndefined();
    expect(state['d.status']).toBeUndefined();
    expect(state.error).toBeUndefined();
    // c's edge is skipped this time: the join still fires on b's recorded arrival.
    expect(await finish(runId, 'c', [false])).toMatchObject({ kind: 'ok', ready: ['d'] });
    expect(await finish(runId, 'd', [])).toMatchObject({ kind: 'ok', runStatus: 'completed' });
    expect(await store.redriveRun(runId)).toEqual({ outcome: 'not-redrivable', status: 'completed' });
  });

  it('nodes queued by a done node when the run was cancelled are ready again; a node behind a failed one is pending', async () => {
    const runId = await newRun();
    await finish(runId, 'a', [true, true]);
    await store.cancelRun(runId);
    expect(await store.redriveRun(runId)).toMatchObject({ outcome: 'redriven', ready: ['b', 'c'] });
    expect((await fields(runId))['d.status']).toBeUndefined();
    expect((await store.getRun(runId))!.redrives).toBe(1);
  });

  it('answers missing for no such run', async () => {
    expect(await store.redriveRun('no-such-run')).toEqual({ outcome: 'missing' });
  });
});
