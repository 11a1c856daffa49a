import { randomBytes } from 'node:crypto';
import { Job, Queue, type JobsOptions } from 'bullmq';
import type { CompiledNode } from '../engine/graph.js';
import { queueShardOf, queueShardPrefixes, type ResolvedOptions } from '../options.js';

/** What a node job carries: just enough to find the run, the node and the blueprint version. */
export interface NodeJobData {
  runId: string;
  nodeId: string;
  version: string;
  /** Set on a resume job: the subflow node's child run, which has ended. */
  childRunId?: string;
  /** Set on a run's start job: the other start nodes, which the worker claims alongside `nodeId`. */
  siblings?: string[];
  /**
   * Set on a wake job: the attempt whose timed park (a wait's timeout, a durable sleep's end) it ends.
   * The node completes unless a signal, a cancellation or the run's end came first.
   */
  wake?: number;
  /** Set on a run's deadline job (`nodeId` is ''): the run fails with RUN_TIMEOUT if it is still running. */
  deadline?: true;
  /**
   * The run's queue shard, chosen when it started: every job of the run (and of its child runs) goes to
   * it, whatever shard count the producer has now. Absent on jobs of shard 0 (and on jobs enqueued
   * before queues were sharded, which are all on shard 0).
   */
  shard?: number;
  /** The run's BullMQ priority (1 is the highest); absent for a run started without one. */
  priority?: number;
}

/**
 * Where a run's jobs go: its queue shard and its priority. Every producer call takes the run's route, read
 * from the job at hand (its data carries it) or from the parent link: never recomputed from the run id,
 * so a changed shard count moves no run in flight.
 */
export interface RunRoute {
  /** @default 0 */
  shard?: number;
  /** BullMQ priority: 1 (highest) to 2097152; absent: none (BullMQ takes such jobs before prioritized ones). */
  priority?: number;
}

/** The route a job's data carries. */
export function routeOf(data: RunRoute): RunRoute {
  return { shard: data.shard, priority: data.priority };
}

/** Highest BullMQ priority number (the lowest priority). */
export const MAX_PRIORITY = 2_097_152;

/** Deterministic job id. BullMQ forbids `:` in custom ids; node ids never contain `.`, so the id is unambiguous. */
export function nodeJobId(runId: string, nodeId: string): string {
  return `${runId}.${nodeId}`;
}

const KEEP_FAILED_SECONDS = 7 * 24 * 3600;

/**
 * Enqueues node jobs. BullMQ is the transport only: the run's state lives in Switchyard's own keys, and
 * a job id derived from run and node makes enqueueing the same node twice harmless.
 */
export class NodeQueue {
  /** Queue shard 0 (with one shard, the whole queue). */
  readonly queue: Queue<NodeJobData>;
  /** Every queue shard this producer knows, shard 0 first. */
  readonly shards: ReadonlyArray<Queue<NodeJobData>>;
  private readonly options: ResolvedOptions;
  private readonly redis: ResolvedOptions['redis'];
  /** Shards beyond this producer's count that runs in flight recorded (see {@link NodeQueue.shard}). */
  private readonly extra = new Map<number, Queue<NodeJobData>>();

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.redis = options.redis;
    this.shards = options.queuePrefixes.map((prefix) => new Queue<NodeJobData>(options.queueName, { connection: options.redis, prefix }));
    this.queue = this.shards[0]!;
  }

  /** The queue shard of a run that starts now (a hash of its id); record it in its route. */
  shardFor(runId: string): number {
    return queueShardOf(runId, this.shards.length);
  }

  /**
   * The queue of shard `shard` (a run's recorded one). A shard beyond this producer's count (it was
   * configured with fewer shards than the process that started the run) is opened on first use: the run's
   * jobs stay on the shard it started on.
   */
  private shard(route: RunRoute): Queue<NodeJobData> {
    const shard = route.shard ?? 0;
    const known = this.shards[shard];
    if (known) return known;
    let queue = this.extra.get(shard);
    if (!queue) {
      const prefix = queueShardPrefixesUpTo(this.options, shard);
      queue = new Queue<NodeJobData>(this.options.queueName, { connection: this.options.redis, prefix });
      this.extra.set(shard, queue);
    }
    return queue;
  }

  /** Adds one job per node in one round trip. */
  async enqueue(runId: string, version: string, nodes: readonly CompiledNode[], route: RunRoute = {}): Promise<void> {
    if (nodes.length === 0) return;
    await this.shard(route).addBulk(
      nodes.map((node) => ({
        name: node.id,
        data: withRoute({ runId, nodeId: node.id, version }, route),
        opts: jobOptions(runId, node, route),
      })),
    );
  }

  /** Adds the one job that starts a run: its first start node, carrying the others as siblings. */
  async enqueueStart(runId: string, version: string, startNodes: readonly CompiledNode[], route: RunRoute = {}): Promise<void> {
    const [first, ...others] = startNodes;
    if (!first) return;
    const data: NodeJobData = { runId, nodeId: first.id, version };
    if (others.length) data.siblings = others.map((n) => n.id);
    await this.shard(route).add(first.id, withRoute(data, route), jobOptions(runId, first, route));
  }

  /** Adds a delayed job for the next attempt of a node (exponential backoff is the caller's `delayMs`). */
  async enqueueRetry(runId: string, version: string, node: CompiledNode, failedAttempt: number, delayMs: number, route: RunRoute = {}): Promise<void> {
    await this.shard(route).add(
      node.id,
      withRoute({ runId, nodeId: node.id, version }, route),
      { ...jobOptions(runId, node, route), jobId: `${nodeJobId(runId, node.id)}.retry${failedAttempt}`, delay: delayMs },
    );
  }

  /** Adds the job that resumes a waiting subflow node once its child run ended (on the parent's shard, from its link). */
  async enqueueResume(parent: { runId: string; nodeId: string; version: string } & RunRoute, childRunId: string): Promise<void> {
    await this.shard(parent).add(
      parent.nodeId,
      withRoute({ runId: parent.runId, nodeId: parent.nodeId, version: parent.version, childRunId }, parent),
      { jobId: `${nodeJobId(parent.runId, parent.nodeId)}.${childRunId}`, removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS }, ...priorityOption(parent) },
    );
  }

  /**
   * Enqueues the nodes a redrive made ready. Their own job ids (`.redrive<n>`, n the run's redrive count):
   * BullMQ keeps the failed job of the node's usual id (and a retry's) and would ignore an add under it.
   */
  async enqueueRedrive(runId: string, version: string, nodeIds: readonly string[], redrive: number): Promise<void> {
    if (nodeIds.length === 0) return;
    await this.queue.addBulk(
      nodeIds.map((nodeId) => ({
        name: nodeId,
        data: { runId, nodeId, version },
        opts: { jobId: `${nodeJobId(runId, nodeId)}.redrive${redrive}`, removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS } },
      })),
    );
  }

  /**
   * Adds a job that a stopping worker hands back (a node it claimed but did not finish in its drain, or a
   * job it fetched but did not start): another worker takes it next (LIFO), at once. A fresh job id: the
   * job that carried the node may still be active, and BullMQ ignores an add whose id exists.
   */
  async enqueueHandBack(data: NodeJobData): Promise<void> {
    const jobId = `${nodeJobId(data.runId, data.nodeId)}.handback-${randomBytes(4).toString('hex')}`;
    await this.shard(data).add(data.nodeId, data, { jobId, lifo: true, removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS }, ...priorityOption(data) });
  }

  /**
   * Adds the delayed job that wakes a parked node at `wakeAt` (epoch ms). One id per node and attempt,
   * so adding it again (a redelivered job of the parked node) is harmless.
   */
  async enqueueWake(runId: string, version: string, nodeId: string, attempt: number, wakeAt: number, route: RunRoute = {}): Promise<void> {
    await this.shard(route).add(
      nodeId,
      withRoute({ runId, nodeId, version, wake: attempt }, route),
      { jobId: `${nodeJobId(runId, nodeId)}.wake${attempt}`, delay: Math.max(0, wakeAt - Date.now()), removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS }, ...priorityOption(route) },
    );
  }

  /** Adds the run's one deadline job, delayed until `deadline` (epoch ms). */
  async enqueueDeadline(runId: string, version: string, deadline: number, route: RunRoute = {}): Promise<void> {
    await this.shard(route).add(
      'deadline',
      withRoute({ runId, nodeId: '', version, deadline: true }, route),
      { jobId: `${runId}.deadline`, delay: Math.max(0, deadline - Date.now()), removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS }, ...priorityOption(route) },
    );
  }

  /**
   * Enqueues nodes the reconciler found with no job that holds them. Their own job ids (`.repair<tag>`),
   * so a finished or failed job of the node's usual id that BullMQ still keeps cannot swallow them.
   */
  async enqueueRepair(runId: string, version: string, nodes: ReadonlyArray<{ nodeId: string; tag: string }>, route: RunRoute = {}): Promise<void> {
    if (nodes.length === 0) return;
    await this.shard(route).addBulk(
      nodes.map(({ nodeId, tag }) => ({
        name: nodeId,
        data: withRoute({ runId, nodeId, version }, route),
        opts: { jobId: `${nodeJobId(runId, nodeId)}.repair${tag}`, removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS }, ...priorityOption(route) },
      })),
    );
  }

  /**
   * Whether a job with this id will run or runs now: waiting or delayed, or active and `activeHeld` (its
   * worker is alive and lists it; an active job nobody processes waits for its lock to lapse).
   */
  async holds(jobId: string, activeHeld: (jobId: string) => boolean): Promise<boolean> {
    // Every shard: the reconciler knows a run's nodes, not which shard its jobs are on.
    for (const queue of this.shards) {
      const state = await queue.getJobState(jobId);
      if (state === 'active' && activeHeld(jobId)) return true;
      if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'waiting-children') return true;
    }
    return false;
  }

  /**
   * Puts an active job back in the queue at once (BullMQ's `moveToWait` with the lock token its worker
   * held): for the jobs of a worker that died, instead of waiting for their locks to lapse. False when the
   * job is gone or its lock is no longer that token (it lapsed, or another worker took the job).
   */
  async release(jobId: string, token: string): Promise<boolean> {
    for (const queue of this.shards) {
      const job = await Job.fromId(queue, jobId);
      if (!job) continue;
      try {
        await job.moveToWait(token);
        return true;
      } catch {
        return false;
      }
    }
    return false;
  }

  /**
   * Ids of every job active now, over every shard (one LRANGE over each whole list). The range is
   * explicit: BullMQ's `getRanges` defaults to `start 0, end 1`, the two newest only, which left a dead
   * worker's jobs that its last heartbeat did not list active until their locks lapsed or the reconciler
   * came (~20 s).
   */
  async activeJobIds(): Promise<string[]> {
    return (await Promise.all(this.shards.map((queue) => queue.getRanges(['active'], 0, -1)))).flat();
  }

  /**
   * Puts back every active job whose lock token a BullMQ worker of `fetchers` took (its tokens are
   * `<id>:<n>`): the jobs of a dead worker, those its last heartbeat had not listed yet included (it
   * fetched them after that beat). One LRANGE per shard and one GET per active job; run on a death only.
   * Resolves with the ids of the jobs moved.
   */
  async releaseHeldBy(fetchers: readonly string[]): Promise<string[]> {
    if (fetchers.length === 0) return [];
    const moved: string[] = [];
    for (const queue of this.shards) {
      const active = await queue.getRanges(['active'], 0, -1);
      const locks = await Promise.all(active.map(async (jobId) => [jobId, await this.redis.get(`${queue.toKey(jobId)}:lock`)] as const));
      const held = locks.filter(([, token]) => token !== null && fetchers.some((id) => token.startsWith(`${id}:`)));
      const released = await Promise.all(held.map(([jobId, token]) => this.release(jobId, token!)));
      moved.push(...held.filter((_, i) => released[i]).map(([jobId]) => jobId));
    }
    return moved;
  }

  /**
   * Puts back an active job whose worker is unknown (its fetch reply was lost in a reconnect, or it died
   * before its heartbeat listed the job): reads the job's lock token (a read of BullMQ's lock key, the one
   * place we look inside BullMQ; we never write there) and moves it with {@link release}.
   */
  async releaseOrphan(jobId: string): Promise<boolean> {
    for (const queue of this.shards) {
      const token = await this.redis.get(`${queue.toKey(jobId)}:lock`);
      if (token !== null) return this.release(jobId, token);
    }
    return false;
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards, ...this.extra.values()].map((queue) => queue.close()));
  }
}

/** Shard `shard`'s BullMQ prefix (tags depend only on the prefix and the shard's number). */
function queueShardPrefixesUpTo(options: ResolvedOptions, shard: number): string {
  return queueShardPrefixes(options.prefix, shard + 1)[shard]!;
}

/** The job data with the route's non-default parts (shard 0 and no priority add nothing). */
function withRoute(data: NodeJobData, route: RunRoute): NodeJobData {
  if (route.shard) data.shard = route.shard;
  if (route.priority) data.priority = route.priority;
  return data;
}

function priorityOption(route: RunRoute): Pick<JobsOptions, 'priority'> {
  return route.priority ? { priority: route.priority } : {};
}

/**
 * Node retries are not BullMQ attempts: a node's attempts are counted in its run state (a worker that
 * dies mid-node uses one up too), and each retry is a delayed job of its own.
 */
function jobOptions(runId: string, node: CompiledNode, route: RunRoute): JobsOptions {
  return { jobId: nodeJobId(runId, node.id), removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS }, ...priorityOption(route) };
}

