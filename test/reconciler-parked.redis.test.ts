/**
 * The reconciler (src/executor/recovery.ts) and parked nodes: a `wait` node has no job on purpose while it
 * waits for its signal, so a run whose only unfinished work is a waiting node is neither repaired nor
 * failed as inconsistent, however long it waits; a timed park whose wake job was lost gets it back.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { openScope } from './support/harness.js';

const FAST_RECOVERY = { heartbeatMs: 100, deadAfterMs: 1_000, reconcileAfterMs: 200 };

describe('the reconciler leaves parked nodes alone', () => {
  const scope = openScope();
  afterAll(() => scope.close());

  const registry = new BlueprintRegistry(createNodeKinds());
  registry.add({
    id: 'approval',
    nodes: [
      { id: 'ask', uses: 'wait', params: { prompt: 'Ship it?' } },
      { id: 'done', uses: 'output', params: { template: 'shipped' } },
    ],
    edges: [{ source: 'ask', target: 'done', action: 'approve' }],
  });
  registry.add({
    id: 'nap',
    nodes: [
      { id: 'rest', uses: 'sleep', params: { duration: '3s' } },
      { id: 'done', uses: 'output', params: { template: 'rested' } },
    ],
    edges: [{ source: 'rest', target: 'done' }],
  });

  /** Resolves once the reconciler has checked the run at least `times` more times (it re-scores it each check). */
  async function reconciled(runId: string, times = 2): Promise<void> {
    const key = scope.createClient({ blueprints: registry }).store.keys.runningRuns();
    let last = Number(await scope.redis.zscore(key, runId));
    for (let seen = 0; seen < times; ) {
      const score = Number(await scope.redis.zscore(key, runId));
      if (score > last) {
        seen++;
        last = score;
      } else await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('a run waiting for a signal stays running through reconciler checks, then completes on the signal', async () => {
    const client = scope.createClient({ blueprints: registry });
    const worker = await scope.startWorker({ blueprints: registry, recovery: FAST_RECOVERY });
    const run = await client.start('approval');
    await expect.poll(async () => (await run.get())?.nodes.ask?.status, { timeout: 10_000 }).toBe('waiting');
    await reconciled(run.runId);
    const view = await run.get();
    expect(view).toMatchObject({ status: 'running', nodes: { ask: { status: 'waiting' } } });
    expect(worker.recoveryStats()).toMatchObject({ repairedNodes: 0, failedRuns: 0 });
    expect((await client.store.getEvents(run.runId)).map((e) => e.type)).not.toContain('run.repaired');

    await client.signal(run.runId, 'ask', { action: 'approve' });
    expect(await run.result({ timeoutMs: 10_000 })).toMatchObject({ status: 'completed', context: { final_output: 'shipped' } });
  });

  it('a sleeping node whose wake job was lost gets it again and the run completes', async () => {
    const client = scope.createClient({ blueprints: registry });
    await scope.startWorker({ blueprints: registry, recovery: FAST_RECOVERY });
    const run = await client.start('nap');
    await expect.poll(async () => (await run.get())?.nodes.rest?.status, { timeout: 10_000 }).toBe('sleeping');
    // What a failover that lost the delayed job leaves: the node parked, no job to wake it.
    const { Queue } = await import('bullmq');
    const queue = new Queue(scope.prefix, { connection: scope.redis, prefix: `{${scope.prefix}q}` });
    const wakeJobs = (await queue.getDelayed()).filter((job) => job.data.runId === run.runId);
    expect(wakeJobs).toHaveLength(1);
    await wakeJobs[0]!.remove();
    await queue.close();

    expect(await run.result({ timeoutMs: 15_000 })).toMatchObject({ status: 'completed', context: { final_output: 'rested' } });
    // Woken by the job the reconciler (whichever worker holds its lease) enqueued again: one repair, the node.
    const repairs = (await client.store.getEvents(run.runId)).flatMap((e) => (e.type === 'run.repaired' ? [e] : []));
    expect(repairs).toHaveLength(1);
    expect(JSON.stringify(repairs[0])).toContain('rest');
  });
});
