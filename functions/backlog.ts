/**
 * Scheduled every minute: publishes the node queue's backlog as a CloudWatch metric, written as one
 * Embedded Metric Format line on stdout (CloudWatch Logs turns it into the metric; no SDK call, no
 * cloudwatch:PutMetricData permission). The worker service's target-tracking policy divides it by the
 * running task count.
 */
import { NodeQueue } from '../src/queue/node-queue.js';
import { resolveOptions } from '../src/options.js';
import type { RedisClient } from '../src/store/redis-store.js';
import { connectRedis, resolveFunctionConfig, type FunctionConfig, type SecretReader } from './config.js';

export const METRIC_NAMESPACE = 'Switchyard';
export const BACKLOG_METRIC = 'QueueBacklog';

export interface BacklogCounts {
  waiting: number;
  delayed: number;
  prioritized: number;
  /** waiting + delayed + prioritized: node jobs no worker has taken yet. */
  backlog: number;
}

/** The EMF document for one backlog reading (one line of JSON). */
export function backlogMetricLine(service: string, counts: BacklogCounts, timestamp = Date.now()): string {
  return JSON.stringify({
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [{ Namespace: METRIC_NAMESPACE, Dimensions: [['Service']], Metrics: [{ Name: BACKLOG_METRIC, Unit: 'Count' }] }],
    },
    Service: service,
    [BACKLOG_METRIC]: counts.backlog,
    // Plain log fields (not metrics): what the backlog is made of, for Logs Insights.
    Waiting: counts.waiting,
    Delayed: counts.delayed,
    Prioritized: counts.prioritized,
  });
}

/** Reads the counts in one call (BullMQ's getJobCounts is a single script). */
export async function readBacklog(queue: NodeQueue): Promise<BacklogCounts> {
  const counts = await queue.queue.getJobCounts('waiting', 'delayed', 'prioritized');
  const waiting = counts.waiting ?? 0;
  const delayed = counts.delayed ?? 0;
  const prioritized = counts.prioritized ?? 0;
  return { waiting, delayed, prioritized, backlog: waiting + delayed + prioritized };
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
    const queue = new NodeQueue(resolveOptions({ redis, prefix: resolved.prefix, queueName: resolved.queueName }));
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
