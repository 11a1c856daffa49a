import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { serveStats, workerConfig } from './ipc.js';

/**
 * Raw BullMQ: a no-op Worker over pre-filled jobs, the ceiling of one job per node. It waits for `go`,
 * then reports `drained` with the elapsed time once `expect` jobs completed.
 */
const config = workerConfig();
const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
const worker = new Worker(config.namespace, async () => undefined, { connection, prefix: `{${config.namespace}}`, concurrency: config.concurrency, autorun: false });
let completed = 0;
let expected = Infinity;
let startedAt = 0;
worker.on('completed', () => {
  if (++completed === expected) process.send?.({ type: 'drained', ms: performance.now() - startedAt });
});
process.on('message', (message: { type?: string; expect?: number }) => {
  if (message?.type !== 'go') return;
  expected = message.expect ?? Infinity;
  startedAt = performance.now();
  void worker.run();
});
await worker.waitUntilReady();
serveStats(() => worker.close());
process.send?.({ type: 'ready', pid: process.pid });
