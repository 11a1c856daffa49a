import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { serveStats, workerConfig } from './ipc.js';

/**
 * Raw BullMQ: a no-op Worker over pre-filled jobs, the ceiling of one job per node. Each `go` names a
 * queue (default: the config's namespace) and a job count; the process starts a Worker on that queue and
 * reports `drained` with the elapsed time once that many jobs completed, then closes that Worker. The
 * orchestrator drains an unmeasured warm-up queue first, as every engine gets a warm-up burst.
 */
const config = workerConfig();
const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
let current: Worker | undefined;
process.on('message', (message: { type?: string; expect?: number; queue?: string }) => {
  if (message?.type !== 'go') return;
  const name = message.queue ?? config.namespace;
  const expected = message.expect ?? Infinity;
  let completed = 0;
  const startedAt = performance.now();
  const worker = new Worker(name, async () => undefined, { connection, prefix: `{${name}}`, concurrency: config.concurrency });
  current = worker;
  worker.on('completed', () => {
    if (++completed !== expected) return;
    const ms = performance.now() - startedAt;
    void worker.close().then(() => process.send?.({ type: 'drained', ms }));
  });
});
serveStats(async () => {
  await current?.close();
  connection.disconnect();
});
process.send?.({ type: 'ready', pid: process.pid });
