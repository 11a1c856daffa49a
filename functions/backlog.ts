/**
 * Scheduled every minute: publishes the node queue's backlog and the age of its oldest waiting job as
 * CloudWatch metrics, written as one Embedded Metric Format line on stdout (CloudWatch Logs turns it into
 * the metrics; no SDK call, no cloudwatch:PutMetricData permission). The worker service's target-tracking
 * policy divides the backlog by the running task count; an alarm watches the oldest job's age.
 *
 * The backlog counts running (active) node jobs with the waiting ones: a task busy with its jobs is
 * load, and counting only what waits would scale busy tasks in. Delayed jobs (retry back-off, `sleep`,
 * `wait` timeouts) are left out: nobody can work on them yet, so more tasks would not help.
 */
import { emfLine, METRIC_NAMESPACE } from '../src/metrics/emf.js';
import { NodeQueue } from '../src/queue/node-queue.js';
import { resolveOptions } from '../src/options.js';
import type { RedisClient } from '../src/store/redis-store.js';
import { connectRedis, resolveFunctionConfig, type FunctionConfig, type SecretReader } from './config.js';

export { METRIC_NAMESPACE };
export const BACKLOG_METRIC = 'QueueBacklog';
export const OLDEST_WAITING_METRIC = 'OldestWaitingJobAge';

export interface BacklogCounts {
  waiting: number;
  prioritized: number;
  active: number;
  /** Not in the backlog (retry back-off, sleeps, wait timeouts): logged only. */
  delayed: number;
  /** waiting + prioritized + active: node jobs taken or ready to be taken. */
  backlog: number;
  /** Seconds the oldest waiting job has been ready (0 when nothing waits). */
  oldestWaitingSeconds: number;
}

/** The EMF document for one backlog reading (one line of JSON). */
export function backlogMetricLine(service: string, counts: BacklogCounts, timestamp = Date.now()): string {
  return emfLine({
    dimensions: { Service: service },
    metrics: [
      { name: BACKLOG_METRIC, unit: 'Count', value: counts.backlog },
      { name: OLDEST_WAITING_METRIC, unit: 'Seconds', value: counts.oldestWaitingSeconds },
    ],
    // Plain log fields (not metrics): what the backlog is made of, for Logs Insights.
    fields: { Waiting: counts.waiting, Prioritized: counts.prioritized, Active: counts.active, Delayed: counts.delayed },
    timestamp,
  });
}

/**
 * Reads the counts (BullMQ's getJobCounts is a single script) and the oldest waiting job (the list's
 * tail, which workers take next) of every queue shard, summed (the oldest: over all shards), all shards
 * at once.
 */
export async function readBacklog(queue: NodeQueue, now = Date.now()): Promise<BacklogCounts> {
  const shards = await Promise.all(
    queue.shards.map((shard) => Promise.all([shard.getJobCounts('waiting', 'prioritized', 'active', 'delayed'), shard.getWaiting(0, 0)])),
  );
  const sum = (state: string) => shards.reduce((total, [counts]) => total + (counts[state] ?? 0), 0);
  const waiting = sum('waiting');
  const prioritized = sum('prioritized');
  const active = sum('active');
  const delayed = sum('delayed');
  // A job that was delayed became ready when its delay ended, not when it was added (BullMQ zeroes
  // `job.delay` when it promotes the job; the option keeps it).
  const readySince = Math.min(now, ...shards.flatMap(([, oldest]) => oldest.map((job) => job.timestamp + (job.opts.delay ?? 0))));
  const oldestWaitingSeconds = Math.max(0, Math.round((now - readySince) / 1000));
  return { waiting, prioritized, active, delayed, backlog: waiting + prioritized + active, oldestWaitingSeconds };
}

/** The scheduled handler; `close` is for tests (Lambda never calls it). */
export interface BacklogHandler {
  /** The EventBridge scheduled event is not read: every tick does the same. */
  (event?: unknown): Promise<BacklogCounts>;
  close(): Promise<void>;
}

/** A scheduled handler around a queue that is opened once per execution environment (reopened after a failure). */
export function createBacklogHandler(
  config: () => FunctionConfig,
  options: { readSecret?: SecretReader; write?: (line: string) => void } = {},
): BacklogHandler {
  // process.stdout.write, not console.log: the Lambda runtime prefixes console lines (or wraps them in
  // JSON with the JSON log format), and CloudWatch only extracts metrics from a line that is the document.
  const write = options.write ?? ((line: string) => void process.stdout.write(line + '\n'));
  let opened: Promise<{ queue: NodeQueue; service: string; redis: RedisClient }> | undefined;
  const open = async () => {
    const resolved = config();
    const redis = await connectRedis(resolved.redis, options.readSecret);
    const queue = new NodeQueue(resolveOptions({ redis, prefix: resolved.prefix, queueName: resolved.queueName, queueShards: resolved.queueShards }));
    return { queue, service: resolved.metricService, redis };
  };
  const handler = async (): Promise<BacklogCounts> => {
    let state: Awaited<ReturnType<typeof open>>;
    try {
      state = await (opened ??= open());
    } catch (err) {
      opened = undefined; // the next tick tries again; an open connection, once made, reconnects by itself
      throw err;
    }
    const counts = await readBacklog(state.queue);
    write(backlogMetricLine(state.service, counts));
    return counts;
  };
  return Object.assign(handler, {
    async close() {
      const state = await opened?.catch(() => undefined);
      opened = undefined;
      if (!state) return;
      await state.queue.close();
      await state.redis.quit().catch(() => undefined);
    },
  });
}

// Only this entry point reads process.env (once, at load).
const env = { ...process.env };
export const backlog = createBacklogHandler(() => resolveFunctionConfig(env));
