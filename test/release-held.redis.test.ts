import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveOptions } from '../src/options.js';
import { NodeQueue } from '../src/queue/node-queue.js';
import { openScope, type TestScope } from './support/harness.js';

/**
 * A worker that dies right after fetching jobs has not listed them in a heartbeat yet: recovery still
 * knows them, by the lock tokens its BullMQ workers took (`<worker id>:<n>`), and puts back exactly those.
 */
describe('NodeQueue.releaseHeldBy', () => {
  let scope: TestScope;
  beforeAll(() => {
    scope = openScope();
  });
  afterAll(() => scope.close());

  it("puts back every active job a BullMQ worker took, known by its lock tokens, and no other worker's", async () => {
    const options = resolveOptions({ redis: scope.redis, prefix: scope.prefix, queueName: scope.prefix, queueShards: 1 });
    const queue = new NodeQueue(options);
    const bull = new Queue(scope.prefix, { connection: scope.redis, prefix: options.queuePrefixes[0]! });
    let finish!: () => void;
    const held = new Promise<void>((resolve) => (finish = resolve));
    const fetchers = [0, 1].map(() => new Worker(scope.prefix, () => held, { connection: scope.redis, prefix: options.queuePrefixes[0]!, concurrency: 2, autorun: false }));
    for (const worker of fetchers) worker.on('error', () => undefined); // their completions fail once their jobs moved
    try {
      let active = 0;
      const allActive = new Promise<void>((resolve) => fetchers.forEach((w) => w.on('active', () => ++active === 4 && resolve())));
      await bull.addBulk([1, 2, 3, 4].map((n) => ({ name: 'n', data: { n }, opts: { jobId: `job-${n}` } })));
      for (const worker of fetchers) void worker.run();
      await allActive;

      const moved = await queue.releaseHeldBy([fetchers[0]!.id]);
      expect(moved).toHaveLength(2);
      expect(await bull.getJobCounts('active', 'wait')).toEqual({ active: 2, wait: 2 });
      expect((await bull.getWaiting()).map((job) => job.id).sort()).toEqual([...moved].sort());
      expect(await queue.releaseHeldBy(['no-such-worker'])).toEqual([]);
      expect(await queue.releaseHeldBy([])).toEqual([]);
    } finally {
      finish();
      await Promise.all(fetchers.map((w) => w.close(true)));
      await bull.close();
      await queue.close();
    }
  });
});
