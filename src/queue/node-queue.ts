import { randomBytes } from 'node:crypto';
import { Queue, type JobsOptions } from 'bullmq';
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

  constructor(options: ResolvedOptions) {
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
