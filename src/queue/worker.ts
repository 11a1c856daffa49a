import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { ErrorCodes, serializeError, SwitchyardError } from '../errors.js';
import { executeNode } from '../engine/execute-node.js';
import { GraphCache } from '../engine/graph-cache.js';
import type { CompiledNode, Graph } from '../engine/graph.js';
import { decideEdges } from '../engine/transitions.js';
import { silentLogger, type Logger } from '../logger.js';
import type { NodeKindRegistry, NodeResult } from '../nodes/types.js';
import { resolveOptions, type ResolvedOptions, type SwitchyardOptions } from '../options.js';
import { RedisStore } from '../store/redis-store.js';
import { NodeQueue, type NodeJobData } from './node-queue.js';

export interface WorkerOptions extends SwitchyardOptions {
  /** Node kinds this worker can run. */
  kinds: NodeKindRegistry;
  /** Node jobs run at once. @default 16 */
  concurrency?: number;
  /**
   * How long a worker's claim on a running node lasts without renewal; after it lapses (the worker died)
   * another worker runs the node again. Renewed automatically while the node runs. @default 30000
   */
  lockDurationMs?: number;
  /** Shown in run views and events. @default `<hostname>-<pid>-<random>` */
  workerId?: string;
  logger?: Logger;
}

/**
 * Consumes node jobs: claims the node (one script call), runs it, applies its completion (one script
 * call) and enqueues the nodes that became ready (one addBulk). Retries use BullMQ's attempts and
 * exponential backoff; running nodes of a cancelled or failed run see their AbortSignal fire.
 */
export class SwitchyardWorker {
  readonly id: string;
  private readonly options: ResolvedOptions;
  private readonly store: RedisStore;
  private readonly queue: NodeQueue;
  private readonly graphs: GraphCache;
  private readonly worker: Worker<NodeJobData>;
  private readonly subscriber: Redis;
  private readonly running = new Map<string, Set<AbortController>>();
  private readonly logger: Logger;
  private readonly kinds: NodeKindRegistry;
  private closing: Promise<void> | undefined;
  private readonly subscribed: Promise<void>;

  constructor(options: WorkerOptions) {
    this.options = resolveOptions(options);
    this.kinds = options.kinds;
    this.id = options.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.logger = (options.logger ?? silentLogger).child({ worker: this.id });
    this.store = new RedisStore(this.options.redis, this.options.prefix);
    this.queue = new NodeQueue(this.options);
    this.graphs = new GraphCache(this.kinds, (version) => this.store.loadBlueprint(version));
    const concurrency = options.concurrency ?? 16;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new SwitchyardError(ErrorCodes.CONFIG, `concurrency must be a whole number >= 1 (got ${concurrency})`);
    }
    this.subscriber = (this.options.redis as Redis).duplicate();
    this.subscriber.on('message', (_channel: string, runId: string) => this.abortRun(runId));
    this.subscribed = this.subscriber.subscribe(this.store.keys.aborts()).then(() => undefined);
    this.subscribed.catch((err: unknown) => this.logger.error('abort subscription failed', { err: String(err) }));
    this.worker = new Worker<NodeJobData>(this.options.queueName, (job) => this.process(job), {
      connection: this.options.redis,
      prefix: this.options.queuePrefix,
      concurrency,
      maxStalledCount: 2,
      lockDuration: options.lockDurationMs ?? 30_000,
      stalledInterval: options.lockDurationMs ?? 30_000,
    });
    this.worker.on('error', (err) => this.logger.error('worker error', { err: err.message }));
  }

  /** Resolves once the worker is connected and taking jobs. */
  async ready(): Promise<void> {
    await Promise.all([this.worker.waitUntilReady(), this.subscribed]);
  }

  /** Stops taking jobs, lets in-flight nodes finish, then disconnects. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.worker.close();
      await this.queue.close();
      await this.subscriber.quit().catch(() => undefined);
      if (this.options.ownsRedis) await this.options.redis.quit().catch(() => undefined);
    })();
    return this.closing;
  }

  private abortRun(runId: string): void {
    for (const controller of this.running.get(runId) ?? []) controller.abort();
  }

  private async process(job: Job<NodeJobData>): Promise<void> {
    const { runId, nodeId, version } = job.data;
    let graph: Graph;
    try {
      graph = await this.graphs.get(version);
    } catch (err) {
      // Without its blueprint the node can never run: fail the run rather than leave it hanging.
      if (err instanceof SwitchyardError && err.code === ErrorCodes.BLUEPRINT_NOT_FOUND) return void (await this.store.failNode(runId, nodeId, serializeError(err)));
      throw err;
    }
    const node = graph.byId.get(nodeId);
    if (!node) {
      const err = new SwitchyardError(ErrorCodes.INTERNAL, `node "${nodeId}" is not in blueprint version ${version}`, { runId, nodeId });
      return void (await this.store.failNode(runId, nodeId, serializeError(err)));
    }
    const begin = await this.store.startNode(runId, nodeId, this.id, node.needs);
    if (begin.kind === 'done') {
      // A redelivered job of a completed node: re-enqueue what its completion made ready, in case the
      // worker that completed it died before enqueueing (job ids make this harmless otherwise).
      return this.enqueue(runId, graph, begin.readied);
    }
    if (begin.kind === 'skip') return;

    const logger = this.logger.child({ runId, nodeId, attempt: begin.attempt });
    const controller = new AbortController();
    this.track(runId, controller, true);
    let result: NodeResult;
    try {
      result = await this.execute(runId, graph, node, node.definition, begin, controller.signal, logger);
    } catch (err) {
      if (isCancelled(err)) return;
      const retryable = !(err instanceof SwitchyardError) || err.retryable;
      const attempts = job.opts.attempts ?? 1;
      if (retryable && job.attemptsMade + 1 < attempts) {
        const delayMs = node.config.retryDelayMs * 2 ** job.attemptsMade;
        logger.warn('node attempt failed; will retry', { delayMs, error: errorMessage(err) });
        await this.store.retryNode(runId, nodeId, serializeError(err), delayMs);
        throw err; // BullMQ schedules the retry with the job's exponential backoff
      }
      const fallback = node.config.fallback;
      if (!fallback) return this.fail(runId, node, err, begin.attempt, logger);
      try {
        logger.warn('node failed; running its fallback', { fallback: fallback.uses, error: errorMessage(err) });
        result = await this.execute(runId, graph, node, fallback, begin, controller.signal, logger);
      } catch (fallbackErr) {
        if (isCancelled(fallbackErr)) return;
        return this.fail(runId, node, fallbackErr, begin.attempt, logger);
      }
    } finally {
      this.track(runId, controller, false);
    }

    // Conditions see the context as this node left it: what it read plus what it wrote.
    const context = { ...begin.context, ...result.context };
    const outputs = { ...begin.outputs };
    if (result.output !== undefined) outputs[nodeId] = result.output;
    const taken = decideEdges(node, result, { context, outputs });
    const done = await this.store.completeNode(runId, node, result, taken);
    if (done.kind === 'ok') await this.enqueue(runId, graph, done.ready);
  }

  private execute(
    runId: string,
    graph: Graph,
    node: CompiledNode,
    definition: CompiledNode['definition'],
    begin: { attempt: number; context: Record<string, unknown>; outputs: Record<string, unknown> },
    signal: AbortSignal,
    logger: Logger,
  ): Promise<NodeResult> {
    return executeNode({
      runId,
      blueprintId: graph.blueprintId,
      nodeId: node.id,
      definition,
      kinds: this.kinds,
      context: begin.context,
      outputs: begin.outputs,
      attempt: begin.attempt,
      timeoutMs: node.config.timeoutMs,
      signal,
      logger,
    });
  }

  private async fail(runId: string, node: CompiledNode, err: unknown, attempt: number, logger: Logger): Promise<void> {
    const error = serializeError(err);
    error.attempt ??= attempt;
    logger.error('node failed; failing the run', { error: error.message });
    await this.store.failNode(runId, node.id, error);
  }

  private async enqueue(runId: string, graph: Graph, nodeIds: readonly string[]): Promise<void> {
    const nodes = nodeIds.map((id) => graph.byId.get(id)).filter((n): n is CompiledNode => n !== undefined);
    await this.queue.enqueue(runId, graph.version, nodes);
  }

  private track(runId: string, controller: AbortController, add: boolean): void {
    let set = this.running.get(runId);
    if (add) {
      if (!set) this.running.set(runId, (set = new Set()));
      set.add(controller);
    } else if (set) {
      set.delete(controller);
      if (set.size === 0) this.running.delete(runId);
    }
  }
}

function isCancelled(err: unknown): boolean {
  return err instanceof SwitchyardError && err.code === ErrorCodes.CANCELLED;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
