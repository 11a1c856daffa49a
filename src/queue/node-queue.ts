import { randomBytes } from 'node:crypto';
import { Job, Queue, type JobsOptions } from 'bullmq';
import type { CompiledNode } from '../engine/graph.js';
import type { ResolvedOptions } from '../options.js';

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
}

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
  readonly queue: Queue<NodeJobData>;
  private readonly redis: ResolvedOptions['redis'];

  constructor(options: ResolvedOptions) {
    this.redis = options.redis;
    this.queue = new Queue<NodeJobData>(options.queueName, { connection: options.redis, prefix: options.queuePrefix });
  }

  /** Adds one job per node in one round trip. */
  async enqueue(runId: string, version: string, nodes: readonly CompiledNode[]): Promise<void> {
    if (nodes.length === 0) return;
    await this.queue.addBulk(
      nodes.map((node) => ({
        name: node.id,
        data: { runId, nodeId: node.id, version },
        opts: jobOptions(runId, node),
      })),
    );
  }

  /** Adds the one job that starts a run: its first start node, carrying the others as siblings. */
  async enqueueStart(runId: string, version: string, startNodes: readonly CompiledNode[]): Promise<void> {
    const [first, ...others] = startNodes;
    if (!first) return;
    const data: NodeJobData = { runId, nodeId: first.id, version };
    if (others.length) data.siblings = others.map((n) => n.id);
    await this.queue.add(first.id, data, jobOptions(runId, first));
  }

  /** Adds a delayed job for the next attempt of a node (exponential backoff is the caller's `delayMs`). */
  async enqueueRetry(runId: string, version: string, node: CompiledNode, failedAttempt: number, delayMs: number): Promise<void> {
    await this.queue.add(
      node.id,
      { runId, nodeId: node.id, version },
      { ...jobOptions(runId, node), jobId: `${nodeJobId(runId, node.id)}.retry${failedAttempt}`, delay: delayMs },
    );
  }

  /** Adds the job that resumes a waiting subflow node once its child run ended. */
  async enqueueResume(parent: { runId: string; nodeId: string; version: string }, childRunId: string): Promise<void> {
    await this.queue.add(
      parent.nodeId,
      { runId: parent.runId, nodeId: parent.nodeId, version: parent.version, childRunId },
      { jobId: `${nodeJobId(parent.runId, parent.nodeId)}.${childRunId}`, removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS } },
    );
  }

  /**
   * Adds a job that a stopping worker hands back (a node it claimed but did not finish in its drain, or a
   * job it fetched but did not start): another worker takes it next (LIFO), at once. A fresh job id: the
   * job that carried the node may still be active, and BullMQ ignores an add whose id exists.
   */
  async enqueueHandBack(data: NodeJobData): Promise<void> {
    const jobId = `${nodeJobId(data.runId, data.nodeId)}.handback-${randomBytes(4).toString('hex')}`;
    await this.queue.add(data.nodeId, data, { jobId, lifo: true, removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS } });
  }

  /**
   * Adds the delayed job that wakes a parked node at `wakeAt` (epoch ms). One id per node and attempt,
   * so adding it again (a redelivered job of the parked node) is harmless.
   */
  async enqueueWake(runId: string, version: string, nodeId: string, attempt: number, wakeAt: number): Promise<void> {
    await this.queue.add(
      nodeId,
      { runId, nodeId, version, wake: attempt },
      { jobId: `${nodeJobId(runId, nodeId)}.wake${attempt}`, delay: Math.max(0, wakeAt - Date.now()), removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS } },
    );
  }

  /** Adds the run's one deadline job, delayed until `deadline` (epoch ms). */
  async enqueueDeadline(runId: string, version: string, deadline: number): Promise<void> {
    await this.queue.add(
      'deadline',
      { runId, nodeId: '', version, deadline: true },
      { jobId: `${runId}.deadline`, delay: Math.max(0, deadline - Date.now()), removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS } },
    );
  }

  /**
   * Enqueues nodes the reconciler found with no job that holds them. Their own job ids (`.repair<tag>`),
   * so a finished or failed job of the node's usual id that BullMQ still keeps cannot swallow them.
   */
  async enqueueRepair(runId: string, version: string, nodes: ReadonlyArray<{ nodeId: string; tag: string }>): Promise<void> {
    if (nodes.length === 0) return;
    await this.queue.addBulk(
      nodes.map(({ nodeId, tag }) => ({
        name: nodeId,
        data: { runId, nodeId, version },
        opts: { jobId: `${nodeJobId(runId, nodeId)}.repair${tag}`, removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS } },
      })),
    );
  }

  /**
   * Whether a job with this id will run or runs now: waiting or delayed, or active and `activeHeld` (its
   * worker is alive and lists it; an active job nobody processes waits for its lock to lapse).
   */
  async holds(jobId: string, activeHeld: (jobId: string) => boolean): Promise<boolean> {
    const state = await this.queue.getJobState(jobId);
    if (state === 'active') return activeHeld(jobId);
    return state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'waiting-children';
  }

  /**
   * Puts an active job back in the queue at once (BullMQ's `moveToWait` with the lock token its worker
   * held): for the jobs of a worker that died, instead of waiting for their locks to lapse. False when the
   * job is gone or its lock is no longer that token (it lapsed, or another worker took the job).
   */
  async release(jobId: string, token: string): Promise<boolean> {
    const job = await Job.fromId(this.queue, jobId);
    if (!job) return false;
    try {
      await job.moveToWait(token);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Ids of every job active now (one LRANGE over the whole list). The range is explicit: BullMQ's
   * `getRanges` defaults to `start 0, end 1`, the two newest only, which left a dead worker's jobs that its
   * last heartbeat did not list active until their locks lapsed or the reconciler came (~20 s).
   */
  activeJobIds(): Promise<string[]> {
    return this.queue.getRanges(['active'], 0, -1);
  }

  /**
   * Puts back an active job whose worker is unknown (its fetch reply was lost in a reconnect, or it died
   * before its heartbeat listed the job): reads the job's lock token (a read of BullMQ's lock key, the one
   * place we look inside BullMQ; we never write there) and moves it with {@link release}.
   */
  async releaseOrphan(jobId: string): Promise<boolean> {
    const token = await this.redis.get(`${this.queue.toKey(jobId)}:lock`);
    return token === null ? false : this.release(jobId, token);
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/**
 * Node retries are not BullMQ attempts: a node's attempts are counted in its run state (a worker that
 * dies mid-node uses one up too), and each retry is a delayed job of its own.
 */
function jobOptions(runId: string, node: CompiledNode): JobsOptions {
  return { jobId: nodeJobId(runId, node.id), removeOnComplete: true, removeOnFail: { age: KEEP_FAILED_SECONDS } };
}
