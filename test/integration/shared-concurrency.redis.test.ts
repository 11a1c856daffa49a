import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import { queueShardOf } from '../../src/options.js';
import type { NodeKind } from '../../src/types/node-kind.js';
import { openScope, type TestScope } from '../support/harness.js';

/**
 * A worker consumes every queue shard with one concurrency shared over them (not one per shard). Queue
 * shards work on one Redis too (each is its own BullMQ queue), which is where this runs.
 */
describe('one concurrency shared over 3 queue shards', () => {
  let scope: TestScope;
  afterEach(() => scope.close());

  /** A blueprint whose one node holds until released; counts the nodes holding, per worker. */
  function holding() {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const running = new Map<string, number>();
    const waiters: Array<() => void> = [];
    const kind: NodeKind<Record<string, never>> = {
      name: 'hold',
      params: z.object({}) as unknown as z.ZodType<Record<string, never>>,
      reads: () => ({ context: [], outputs: [] }),
      run: () => ({ output: 'held' }), // replaced per worker below: each counts its own
    };
    const registryFor = (workerId: string) => {
      const registry = new BlueprintRegistry(
        createNodeKinds().with({
          ...kind,
          async run() {
            running.set(workerId, (running.get(workerId) ?? 0) + 1);
            waiters.splice(0).forEach((wake) => wake());
            await gate;
            return { output: 'held' };
          },
        }),
      );
      registry.add({ id: 'held', nodes: [{ id: 'h', uses: 'hold' }] });
      return registry;
    };
    const until = async (holds: () => boolean) => {
      while (!holds()) await new Promise<void>((resolve) => waiters.push(resolve));
    };
    return { release, running, registryFor, until };
  }

  async function scenario(runIds: string[]) {
    scope = openScope();
    const h = holding();
    const client = scope.createClient({ blueprints: h.registryFor('client'), queueShards: 3 });
    await scope.startWorker({ blueprints: h.registryFor('A'), kinds: h.registryFor('A').kinds, concurrency: 6, queueShards: 3, workerId: 'A' });
    const runs = await Promise.all(runIds.map((runId) => client.start('held', {}, { runId })));
    const a = () => h.running.get('A') ?? 0;
    return { h, runs, a };
  }

  it('runs its concurrency over the shards, not the concurrency per shard (at most one more job per other shard)', async () => {
    const { h, runs, a } = await scenario(Array.from({ length: 30 }, () => randomUUID()));
    await h.until(() => a() >= 6);
    // A second worker takes everything else. A held its 6, and at most 2 more: a shard's BullMQ worker keeps
    // one fetch open even when its share is 0, and a job can arrive there while the others fill the budget.
    // One BullMQ worker per shard at concurrency 6 would have taken 18.
    await scope.startWorker({ blueprints: h.registryFor('B'), concurrency: 40, queueShards: 3, workerId: 'B' });
    await h.until(() => a() + (h.running.get('B') ?? 0) === 30);
    expect(a()).toBeGreaterThanOrEqual(6);
    expect(a()).toBeLessThanOrEqual(6 + 2);
    h.release();
    const views = await Promise.all(runs.map((run) => run.result({ timeoutMs: 20_000 })));
    expect(views.filter((v) => v.status !== 'completed')).toEqual([]);
  });

  it('gives one busy shard the concurrency less one slot per idle shard', async () => {
    const onShard0 = Array.from({ length: 400 }, () => randomUUID()).filter((id) => queueShardOf(id, 3) === 0).slice(0, 12);
    const { h, runs, a } = await scenario(onShard0);
    await h.until(() => a() >= 4); // 6 - 2 idle shards, each keeping one fetch open
    await scope.startWorker({ blueprints: h.registryFor('B'), concurrency: 40, queueShards: 3, workerId: 'B' });
    await h.until(() => a() + (h.running.get('B') ?? 0) === 12);
    expect(a()).toBeGreaterThanOrEqual(4);
    expect(a()).toBeLessThanOrEqual(6);
    h.release();
    const views = await Promise.all(runs.map((run) => run.result({ timeoutMs: 20_000 })));
    expect(views.filter((v) => v.status !== 'completed')).toEqual([]);
  });
});
