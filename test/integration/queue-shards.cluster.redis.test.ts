/**
 * The node queue as N shards on a real 3-master Redis Cluster (the "cluster" project's): each shard's keys
 * on a master of its own, runs spread over the shards, the CLI and the backlog function on the cluster,
 * and a shard count raised on a live system losing nothing.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { readBacklog } from '../../functions/backlog.js';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import { keySlot, queueShardOf, queueShardPrefixes, resolveOptions } from '../../src/options.js';
import { NodeQueue } from '../../src/queue/node-queue.js';
import type { NodeKind } from '../../src/types/node-kind.js';
import { clusterClient, openScope, type TestScope } from '../support/harness.js';
import { killStarted, runCli, startCli } from '../support/processes.js';

const masters = () => inject('clusterUrls')!.map((url) => new Redis(url, { maxRetriesPerRequest: null }));

/** The keys on one master that match a pattern (SCAN on that node alone). */
async function keysOn(node: Redis, match: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

describe('queue shards on a 3-master Redis Cluster', () => {
  let scope: TestScope;
  let nodes: Redis[];
  beforeAll(() => {
    nodes = masters();
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.quit()));
  });
  afterEach(async () => {
    await killStarted();
    await scope?.close();
  });

  it('puts each of 3 shards on a master of its own, and every master holds queue keys once runs went through', async () => {
    scope = openScope();
    const registry = await BlueprintRegistry.load(['workflows'], createNodeKinds());
    const client = scope.createClient({ blueprints: registry });
    await scope.startWorker({ blueprints: registry, concurrency: 8, workerId: 'w1' });
    await scope.startWorker({ blueprints: registry, concurrency: 8, workerId: 'w2' });
    const runs = await Promise.all(Array.from({ length: 30 }, (_, i) => client.start('greeting', { name: `n${i}` })));
    const views = await Promise.all(runs.map((run) => run.result({ timeoutMs: 30_000 })));
    expect(views.map((v) => v.status)).toEqual(views.map(() => 'completed'));

    const prefixes = queueShardPrefixes(scope.prefix, 3);
    expect(prefixes[0]).toBe(`{${scope.prefix}q}`); // shard 0 keeps the single queue's keys
    // Which master serves each shard's slot (CLUSTER SLOTS: [start, end, [host, port], ...]).
    const slots = (await nodes[0]!.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
    const portOf = (slot: number) => slots.find(([start, end]) => slot >= start && slot <= end)![2][1];
    expect(new Set(prefixes.map((p) => portOf(keySlot(p)))).size).toBe(3);
    // And the keys are there: every master holds some of the queue's keys (its shard's).
    const perMaster = await Promise.all(nodes.map((node) => keysOn(node, `{${scope.prefix}q*`)));
    expect(perMaster.map((keys) => keys.length > 0)).toEqual([true, true, true]);
    // Runs spread over the shards: each shard's job id counter moved (30 start jobs over 3 shards).
    const cluster = scope.redis;
    const added = await Promise.all(prefixes.map(async (p) => Number(await cluster.get(`${p}:${scope.prefix}:id`))));
    expect(added.every((n) => n > 0)).toBe(true);
  });

  it('switchyard worker and switchyard run --wait work on the cluster (REDIS_HOST/REDIS_PORT/REDIS_CLUSTER=true)', async () => {
    scope = openScope();
    const port = new URL(inject('redisUrl')).port;
    const env = {
      REDIS_URL: '',
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: port,
      REDIS_CLUSTER: 'true',
      SWITCHYARD_QUEUE_SHARDS: '3',
      SWITCHYARD_PREFIX: scope.prefix,
      SWITCHYARD_QUEUE: scope.prefix,
      SWITCHYARD_LOG_FORMAT: 'json',
    };
    await Promise.all([1, 2].map(() => startCli(['worker', '--blueprints', 'workflows', '--concurrency', '4'], env, /worker ready/)));
    const results = await Promise.all(
      ['Ada', 'Grace', 'Edsger'].map((name) => runCli(['run', 'greeting', '--input', JSON.stringify({ name }), '--wait', '--json'], env)),
    );
    for (const [i, result] of results.entries()) {
      expect(result.code, result.stderr).toBe(0);
      const view = JSON.parse(result.stdout) as { status: string; context: Record<string, unknown> };
      expect(view.status).toBe('completed');
      expect(JSON.stringify(view.context)).toContain(['Ada', 'Grace', 'Edsger'][i]);
    }
    const status = await runCli(['status', JSON.parse(results[0]!.stdout).runId, '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).status).toBe('completed');
  });

  it('the backlog function sums the shards', async () => {
    scope = openScope();
    const redis = clusterClient();
    const queue = new NodeQueue(resolveOptions({ redis, prefix: scope.prefix, queueName: scope.prefix, queueShards: 3 }));
    try {
      const now = Date.now();
      await queue.shards[0]!.add('a', { runId: 'r0', nodeId: 'a', version: 'v' }, { timestamp: now - 5_000 });
      await queue.shards[1]!.add('b', { runId: 'r1', nodeId: 'b', version: 'v', shard: 1 }, { timestamp: now - 50_000 });
      await queue.shards[2]!.add('c', { runId: 'r2', nodeId: 'c', version: 'v', shard: 2 }, { priority: 3, timestamp: now - 1_000 });
      await queue.shards[2]!.add('d', { runId: 'r2', nodeId: 'd', version: 'v', shard: 2 }, { delay: 60_000 });
      expect(await readBacklog(queue, now)).toMatchObject({ waiting: 2, prioritized: 1, delayed: 1, backlog: 3, oldestWaitingSeconds: 50 });
    } finally {
      await Promise.all(queue.shards.map((q) => q.obliterate({ force: true })));
      await queue.close();
      redis.disconnect();
    }
  });

  it('raising the shard count on a live system loses nothing: runs in flight finish on the shard they started on', async () => {
    scope = openScope();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let holding = 0;
    let allHolding!: () => void;
    const heldAll = new Promise<void>((resolve) => (allHolding = resolve));
    const hold: NodeKind<Record<string, never>> = {
      name: 'hold',
      params: z.object({}).strict() as unknown as z.ZodType<Record<string, never>>,
      reads: () => ({ context: [], outputs: [] }),
      async run() {
        if (++holding === 6) allHolding();
        await gate;
        return { output: 'held' };
      },
    };
    const registry = new BlueprintRegistry(createNodeKinds().with(hold));
    registry.add({ id: 'child', nodes: [{ id: 'make', uses: 'output', params: { template: 'made', outputKey: 'made' } }] });
    registry.add({
      id: 'two-steps',
      nodes: [
        { id: 'a', uses: 'hold' },
        { id: 'b', uses: 'template', params: { template: 'after {{a}}', inputs: { a: 'a' } } },
        { id: 'c', uses: 'subflow', params: { blueprintId: 'child', inputs: {}, outputs: { fromChild: 'made' } } },
      ],
      edges: [{ source: 'a', target: 'b' }, { source: 'b', target: 'c' }],
    });
    // Before: one shard everywhere (the single queue). Six runs hold their first node.
    const oldClient = scope.createClient({ blueprints: registry, queueShards: 1 });
    const oldWorker = await scope.startWorker({ blueprints: registry, concurrency: 8, workerId: 'old', queueShards: 1, drainTimeoutMs: 0 });
    const before = await Promise.all(Array.from({ length: 6 }, () => oldClient.start('two-steps', {})));
    await heldAll;
    // Raise the count: the old worker stops (claiming no successor: their jobs go to the runs' shard 0),
    // new workers consume shards 0-2, a new client starts runs over 3 shards.
    release();
    await oldWorker.close();
    const client = scope.createClient({ blueprints: registry, queueShards: 3 });
    await scope.startWorker({ blueprints: registry, concurrency: 8, workerId: 'new1', queueShards: 3 });
    await scope.startWorker({ blueprints: registry, concurrency: 8, workerId: 'new2', queueShards: 3 });
    const after = await Promise.all(Array.from({ length: 12 }, () => client.start('two-steps', {})));
    const views = await Promise.all([...before, ...after].map((run) => run.result({ timeoutMs: 30_000 })));
    expect(views.map((v) => `${v.status} ${v.context.fromChild}`)).toEqual(views.map(() => 'completed made'));
    // Every job of a run (start, successors, the child run's jobs, the resume job) went to one shard: for
    // the six old runs shard 0, for the new ones the shard of their id. Read from each shard's BullMQ
    // event stream ('added' events name the job ids, `<runId>.<nodeId>[...]`).
    const shardsOf = new Map<string, Set<number>>();
    const prefixes = queueShardPrefixes(scope.prefix, 3);
    for (const [shard, prefix] of prefixes.entries()) {
      const events = (await scope.redis.xrange(`${prefix}:${scope.prefix}:events`, '-', '+')) as Array<[string, string[]]>;
      for (const [, fields] of events) {
        if (fields[1] !== 'added') continue;
        const jobId = fields[fields.indexOf('jobId') + 1]!;
        const runId = jobId.split('.')[0]!; // a resume job's id starts with its parent's run id
        shardsOf.set(runId, new Set([...(shardsOf.get(runId) ?? []), shard]));
      }
    }
    const expected = new Map([...before.map((r) => [r.runId, 0] as const), ...after.map((r) => [r.runId, queueShardOf(r.runId, 3)] as const)]);
    // A child run's jobs go to its parent's shard.
    for (const view of views) expected.set(view.nodes.c!.childRunId!, expected.get(view.runId)!);
    for (const [runId, shard] of expected) expect([runId, [...(shardsOf.get(runId) ?? [])]]).toEqual([runId, [shard]]);
    expect(new Set(after.map((r) => queueShardOf(r.runId, 3))).size).toBeGreaterThan(1);
  });
});
