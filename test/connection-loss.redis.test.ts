import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { LUA_SCRIPTS } from '../src/store/lua/scripts.generated.js';
import { openScope, type TestScope } from './support/harness.js';
import { RedisProxy } from './support/faults.js';
import { Probe, testKinds } from './support/test-kinds.js';

/**
 * What a dropped connection between a worker and Redis must not lose (issue 12, point 2). The worker talks
 * to the test Redis through a TCP proxy that can lose one reply or hold every connection; the client talks
 * to Redis directly. Recovery's heartbeats and reconciler are off, so only the path under test can end
 * these runs in time.
 *
 * A completion applied by Redis whose reply never reached the worker (the connection dropped in between;
 * ioredis sends unanswered commands again once it reconnects) finds the node done when sent again: it must
 * still take up what the first call did, the successors it claimed for this worker and the parent it
 * should tell, at once, not after the reconciler's bound.
 */
const COMPLETE_NODE_SHA = createHash('sha1').update(LUA_SCRIPTS['complete-node'].lua).digest('hex');

const probe = new Probe();
const kinds = createNodeKinds().with(...testKinds(probe));
const t = (id: string) => ({ id, uses: 'template', params: { template: id } });
const registry = new BlueprintRegistry(kinds);
registry.add({ id: 'abc', nodes: ['a', 'b', 'c'].map(t), edges: [{ source: 'a', target: 'b' }, { source: 'b', target: 'c' }] });
registry.add({ id: 'fan', nodes: ['a', 'b', 'c', 'd'].map(t), edges: [{ source: 'a', target: 'b' }, { source: 'a', target: 'c' }, { source: 'a', target: 'd' }] });
registry.add({ id: 'held', nodes: [{ id: 'h', uses: 'block', params: {} }], edges: [] });
registry.add({ id: 'leaf', nodes: [t('x')], edges: [] });
registry.add({ id: 'parent', nodes: [{ id: 'p', uses: 'subflow', params: { blueprintId: 'leaf', inputs: {} } }, t('q')], edges: [{ source: 'p', target: 'q' }] });

/** `promise`, or a failure naming `what` after `ms` (a bound, not a wait: the test ends as soon as it resolves). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a lost connection', () => {
  let scope: TestScope;
  let proxy: RedisProxy;
  beforeAll(async () => {
    scope = openScope();
    // Loaded up front so the worker's first complete-node call is an EVALSHA that runs (not a NOSCRIPT retry).
    await scope.redis.script('LOAD', LUA_SCRIPTS['complete-node'].lua);
    proxy = await RedisProxy.start(Number(new URL(inject('redisUrl')).port));
  });
  afterAll(async () => {
    await scope.close();
    await proxy.close();
  });

  async function setup(concurrency: number) {
    const worker = await scope.startWorker({ redis: proxy.url, blueprints: registry, concurrency, recovery: { enabled: false } });
    const client = scope.createClient({ blueprints: registry });
    return { worker, client };
  }

  it('a completion whose reply was lost runs the successor it had claimed for this worker, once, with its first attempt', async () => {
    const { worker, client } = await setup(8);
    const dropped = proxy.dropReplyTo(COMPLETE_NODE_SHA);
    const run = await client.start('abc');
    await dropped;
    const view = await run.result({ timeoutMs: 10_000 });
    expect(view.status).toBe('completed');
    expect(view.outputs).toEqual({ a: 'a', b: 'b', c: 'c' });
    expect(Object.values(view.nodes).map((n) => [n.status, n.attempts])).toEqual([['done', 1], ['done', 1], ['done', 1]]);
    await worker.close();
  });

  it('a completion whose reply was lost enqueues what it made ready and did not claim', async () => {
    // Concurrency 1: the completion claims one of b, c, d for this worker and leaves two queued with no job yet.
    const { worker, client } = await setup(1);
    const dropped = proxy.dropReplyTo(COMPLETE_NODE_SHA);
    const run = await client.start('fan');
    await dropped;
    const view = await run.result({ timeoutMs: 10_000 });
    expect(view.status).toBe('completed');
    expect(Object.values(view.nodes).map((n) => n.attempts)).toEqual([1, 1, 1, 1]);
    await worker.close();
  });

  it('a completion whose reply was lost tells the parent run when it ended its child run', async () => {
    const { worker, client } = await setup(8);
    const dropped = proxy.dropReplyTo(COMPLETE_NODE_SHA);
    const run = await client.start('parent');
    await dropped;
    const view = await run.result({ timeoutMs: 10_000 });
    expect(view.status).toBe('completed');
    expect(Object.values(view.nodes).map((n) => [n.status, n.attempts])).toEqual([['done', 1], ['done', 1]]);
    await worker.close();
  });

  it('a run cancelled while the abort subscription was away aborts its running step once the worker is back', async () => {
    const { worker, client } = await setup(8);
    const run = await client.start('held');
    const key = `${run.runId}:h`;
    await probe.started(key);
    proxy.hold();
    // Cancelled while the worker cannot hear the abort message.
    await client.cancel(run.runId);
    proxy.release();
    await within(probe.whenAborted(key), 10_000, 'the running step was not aborted after the reconnect');
    expect((await run.result({ timeoutMs: 5_000 })).status).toBe('cancelled');
    await worker.close();
  });
});
