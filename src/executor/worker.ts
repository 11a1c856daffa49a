import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BlueprintRegistry } from '../blueprint/load.js';
import { ErrorCodes, LimitExceededError, NonRetryableError, serializeError, SwitchyardError } from '../errors.js';
import { Limits } from '../types/limits.js';
import { childRunId } from '../types/ids.js';
import { GraphCache } from '../engine/graph-cache.js';
import { compileGraph, type CompiledNode, type Graph } from '../engine/graph.js';
import type { RunView } from '../types/run-view.js';
import { decideEdges } from '../engine/transitions.js';
import { lazyChild, silentLogger, type Logger } from '../logger.js';
import type { ChildRuns, NodeKindRegistry, NodeResult, SlotPool } from '../types/node-kind.js';
import { resolveOptions, type ResolvedOptions, type SwitchyardOptions } from '../options.js';
import { RedisStore } from '../store/redis-store.js';
import { NodeQueue, type NodeJobData } from '../queue/node-queue.js';
import { RunService } from '../queue/runs.js';
import { errorMessage, runAttempt, serializeFailure } from './attempt-policy.js';

export interface WorkerOptions extends SwitchyardOptions {
  /** Node kinds this worker can run. */
  kinds: NodeKindRegistry;
  /** Blueprints that subflow nodes can start as child runs. */
  blueprints?: BlueprintRegistry;
  /**
   * Node jobs run at once. While steps here hold every slot of a kind's pool (the LLM kinds: this
   * worker's LLM limit) the worker takes no new jobs and claims no extra successors, so other workers
   * get them. @default 64
   */
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
 * The distributed executor: consumes node jobs from BullMQ. Claims the node (one script call), runs one
 * attempt under the node's policy ({@link runAttempt}: timeout, retry, fallback, cancellation, shared with
 * the in-memory executor), applies its completion (one script call) and enqueues the nodes that became
 * ready (one addBulk). Retries are not BullMQ attempts: the node's attempts are counted in its run state
 * and each retry is a delayed job of our own, after `retryDelayMs * 2 ** (attempt - 1)`. Running nodes of
 * a cancelled or failed run see their AbortSignal fire.
 */
export class SwitchyardWorker {
  readonly id: string;
  private readonly options: ResolvedOptions;
  private readonly store: RedisStore;
  private readonly queue: NodeQueue;
  private readonly runs: RunService;
  private readonly graphs: GraphCache;
  private readonly worker: Worker<NodeJobData>;
  private readonly subscriber: Redis;
  /** Per run with steps running here: one AbortController for all of them, and how many there are. */
  private readonly running = new Map<string, { controller: AbortController; steps: number }>();
  private readonly logger: Logger;
  private readonly kinds: NodeKindRegistry;
  private closing: Promise<void> | undefined;
  /** Set on close(): running steps finish, but no further successor is claimed. */
  private stopping = false;
  /** Node steps running in this worker now, over all jobs. */
  private steps = 0;
  /** Steps this worker runs at once before successors go to the queue instead (4 x concurrency). */
  private readonly localLimit: number;
  private readonly concurrency: number;
  /** Jobs this worker is processing now. */
  private jobs = 0;
  /** Steps holding (or about to hold) each slot pool's slots, by pool. */
  private readonly held = new Map<SlotPool, number>();
  private readonly subscribed: Promise<void>;

  constructor(options: WorkerOptions) {
    this.options = resolveOptions(options);
    this.kinds = options.kinds;
    this.id = options.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.logger = (options.logger ?? silentLogger).child({ worker: this.id });
    this.store = new RedisStore(this.options.redis, this.options.prefix);
    this.queue = new NodeQueue(this.options);
    this.runs = new RunService(this.store, this.queue, options.blueprints, this.options.runTtlSeconds);
    this.graphs = new GraphCache(this.kinds, (version) => this.store.loadBlueprint(version));
    // Blueprints this worker was given need no fetch: a first job finds its graph (and its node's kind,
    // which back-pressure counts) at once.
    for (const id of options.blueprints?.ids() ?? []) this.graphs.put(compileGraph(options.blueprints!.get(id)!, this.kinds));
    const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new SwitchyardError(ErrorCodes.CONFIG, `concurrency must be a whole number >= 1 (got ${concurrency})`);
    }
    this.localLimit = concurrency * 4;
    this.concurrency = concurrency;
    // No ready check (an INFO is not allowed on a reconnecting subscriber); ioredis resubscribes itself.
    this.subscriber = (this.options.redis as Redis).duplicate({ enableReadyCheck: false });
    this.subscriber.on('error', (err: Error) => this.logger.warn('abort subscription connection error', { error: err.message }));
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
    this.stopping = true;
    this.closing ??= (async () => {
      await this.worker.close();
      await this.queue.close();
      await this.subscriber.quit().catch(() => undefined);
      if (this.options.ownsRedis) await this.options.redis.quit().catch(() => undefined);
    })();
    return this.closing;
  }

  private abortRun(runId: string): void {
    this.running.get(runId)?.controller.abort();
  }

  /** True while steps here hold every slot of some pool (the LLM limit). */
  private saturated(): boolean {
    for (const [pool, held] of this.held) if (held >= pool.capacity) return true;
    return false;
  }

  /**
   * Back-pressure: while saturated, take no job beyond those held (BullMQ reads its concurrency before
   * each fetch); otherwise the configured concurrency.
   */
  private adjustIntake(): void {
    const wanted = this.saturated() ? Math.max(1, this.jobs) : this.concurrency;
    if (this.worker.concurrency !== wanted) this.worker.concurrency = wanted;
  }

  /** Counts a step of `node` against its kind's slots from now until the returned release is called. */
  private hold(node: CompiledNode): () => void {
    const pool = this.kinds.get(node.definition.uses)?.slots;
    if (!pool) return NO_RELEASE;
    this.held.set(pool, (this.held.get(pool) ?? 0) + 1);
    this.adjustIntake();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(pool) ?? 1) - 1;
      if (left > 0) this.held.set(pool, left);
      else this.held.delete(pool);
      this.adjustIntake();
    };
  }

  private async process(job: Job<NodeJobData>): Promise<void> {
    this.jobs++;
    try {
      await this.processJob(job);
    } finally {
      this.jobs--;
      this.adjustIntake();
    }
  }

  private async processJob(job: Job<NodeJobData>): Promise<void> {
    const { runId, nodeId, version } = job.data;
    let graph: Graph;
    try {
      graph = await this.graphs.get(version);
    } catch (err) {
      // Without its blueprint the node can never run: fail the run rather than leave it hanging.
      if (err instanceof SwitchyardError && err.code === ErrorCodes.BLUEPRINT_NOT_FOUND) return this.fail(runId, nodeId, err, 1, this.logger);
      throw err;
    }
    const node = graph.byId.get(nodeId);
    if (!node) {
      const err = new SwitchyardError(ErrorCodes.INTERNAL, `node "${nodeId}" is not in blueprint version ${version}`, { runId, nodeId });
      return this.fail(runId, nodeId, err, 1, this.logger);
    }
    // The job's node counts against its kind's slots from now: the next fetch already sees it.
    const holdFirst = this.hold(node);
    try {
      await this.runJob(job, graph, node, holdFirst);
    } finally {
      holdFirst(); // no-op once its step took it over and ended
    }
  }

  private async runJob(job: Job<NodeJobData>, graph: Graph, node: CompiledNode, holdFirst: () => void): Promise<void> {
    const { runId, version, childRunId, siblings } = job.data;
    const others = (siblings ?? []).map((id) => graph.byId.get(id)).filter((n): n is CompiledNode => n !== undefined);
    const begin = await this.store.startNode(runId, node, this.id, childRunId ? 'resume' : 'start', others);
    switch (begin.kind) {
      case 'done':
        // A redelivered job of a completed node: re-enqueue what its completion made ready, in case the
        // worker that completed it died before enqueueing (job ids make this harmless otherwise), and the
        // start nodes this job was to claim.
        return this.enqueue(runId, graph, [...begin.readied, ...(siblings ?? [])]);
      case 'ended':
        // Likewise, tell the parent of an ended child run again (resume jobs are idempotent).
        if (begin.parent && !childRunId) await this.runs.notifyParent(begin.parent, runId);
        return;
      case 'skip':
        return;
    }
    // Run the node, then the successors this worker claimed in the same completion call, and theirs, in
    // this job: a chain or a fan-out runs without a queue round trip per node. The job stays active
    // meanwhile, so if this worker dies, its redelivery finds the node done and re-enqueues what it made
    // ready (claimed nodes included), and they run again elsewhere.
    let steps = 0;
    const running = new Set<Promise<void>>();
    const launch = (step: Step, release = this.hold(step.node)) => {
      if (++steps > MAX_STEPS_PER_JOB) {
        release();
        void this.queue.enqueue(runId, version, [step.node]); // claimed but over the limit: hand it on
        return;
      }
      this.steps++;
      const task = this.runStep(runId, graph, step)
        .finally(release)
        .then((next) => next.forEach((claimed) => launch(claimed)))
        .finally(() => {
          this.steps--;
          running.delete(task);
        });
      running.add(task);
    };
    launch({ node, attempt: begin.attempt, context: begin.context, outputs: begin.outputs, childRunId }, holdFirst);
    for (const sibling of begin.siblings) {
      if (sibling.kind === 'run') launch({ node: graph.byId.get(sibling.nodeId)!, attempt: sibling.attempt, context: sibling.context, outputs: sibling.outputs });
      else await this.enqueue(runId, graph, sibling.readied);
    }
    while (running.size > 0) await Promise.race(running);
  }

  /**
   * Runs one node and applies its result; returns the successors it claimed to run next. The order of
   * calls: one attempt under the node's policy (a retry, failure or cancellation ends the step there),
   * park a node that waits for a child run, else decide its edges, complete it (claiming successors),
   * enqueue the ready nodes not claimed, tell a parent run that this run ended.
   */
  private async runStep(runId: string, graph: Graph, step: Step): Promise<Step[]> {
    const { node } = step;
    const logger = lazyChild(this.logger, { runId, nodeId: node.id, attempt: step.attempt });
    const result = await this.attempt(runId, graph, step, logger);
    if (!result) return [];
    if (result.waitFor) return this.park(runId, node, result.waitFor.runId);
    const taken = decideStepEdges(step, result);
    const done = await this.complete(runId, graph, node, result, taken);
    if (done.kind === 'limit') {
      const err = new LimitExceededError('MAX_CONTEXT_BYTES', done.contextBytes, Limits.MAX_CONTEXT_BYTES, 'the run\'s context (bytes of JSON) after this node\'s writes', { nodeId: node.id });
      await this.fail(runId, node.id, err, step.attempt, logger);
      return [];
    }
    if (done.kind !== 'ok') return [];
    const claimedIds = new Set(done.claimed.map((c) => c.nodeId));
    await this.enqueue(runId, graph, done.ready.filter((id) => !claimedIds.has(id)));
    if (done.parent) await this.runs.notifyParent(done.parent, runId);
    return done.claimed.map((c) => ({ node: graph.byId.get(c.nodeId)!, attempt: c.attempt, context: c.context, outputs: c.outputs }));
  }

  /**
   * One attempt of the step's node under its policy ({@link runAttempt}), with the run's abort signal
   * tracked until the outcome is applied: the node's result, or undefined once a retry is scheduled, the
   * run failed or the run was cancelled.
   */
  private async attempt(runId: string, graph: Graph, step: Step, logger: Logger): Promise<NodeResult | undefined> {
    const { node, attempt, childRunId } = step;
    const signal = this.track(runId);
    try {
      const outcome = await runAttempt({
        runId,
        blueprintId: graph.blueprintId,
        nodeId: node.id,
        definition: node.definition,
        kinds: this.kinds,
        context: step.context,
        outputs: step.outputs,
        attempt,
        timeoutMs: node.config.timeoutMs,
        signal,
        logger,
        runs: this.childRuns(runId, node, graph.version, attempt),
        policy: node.config,
        endedChild: childRunId ? () => this.endedChild(childRunId, node.id) : undefined,
        logFallback: true,
      });
      switch (outcome.kind) {
        case 'result':
          return outcome.result;
        case 'retry':
          // Our own delayed job, counted by the node's attempts in run state (not BullMQ's attempts).
          logger.warn('node attempt failed; will retry', { delayMs: outcome.delayMs, error: errorMessage(outcome.error) });
          await this.store.retryNode(runId, node.id, serializeError(outcome.error), outcome.delayMs);
          await this.queue.enqueueRetry(runId, graph.version, node, attempt, outcome.delayMs);
          return undefined;
        case 'failed':
          await this.fail(runId, node.id, outcome.error, attempt, logger);
          return undefined;
        case 'cancelled':
          return undefined;
      }
    } finally {
      this.untrack(runId);
    }
  }

  /** The node waits for its child run without holding this slot; a resume job finishes it. */
  private async park(runId: string, node: CompiledNode, childRunId: string): Promise<Step[]> {
    const waiting = await this.store.waitNode(runId, node.id, childRunId);
    if (waiting.outcome === 'stale') await this.runs.cancel(childRunId, 'parent run ended');
    return [];
  }

  /**
   * Applies the node's completion in one script call, claiming ready successors for this worker: always
   * one (it takes over this step's place), more while the worker runs fewer than its local limit of steps
   * and is not saturated. None once it is closing.
   */
  private complete(runId: string, graph: Graph, node: CompiledNode, result: NodeResult, taken: boolean[]) {
    const meta = result.usage || result.meta ? { ...result.meta, ...(result.usage ? { usage: result.usage } : {}) } : undefined;
    const max = this.stopping ? 0 : this.saturated() ? 1 : 1 + Math.max(0, this.localLimit - this.steps);
    const claim = { workerId: this.id, max, needsOf: (id: string) => graph.byId.get(id)!.needs };
    return this.store.completeNode(runId, node, { ...result, meta }, taken, claim);
  }

  /** The ended child run's final state, for the kind's `resume`. */
  private async endedChild(childRunId: string, nodeId: string): Promise<RunView> {
    const child = await this.store.getRun(childRunId);
    if (!child) throw new NonRetryableError(`child run ${childRunId} is gone (expired?)`, { nodeId });
    return child;
  }

  /** Child runs started by a node: deterministic ids per attempt, linked back to the node. */
  private childRuns(runId: string, node: CompiledNode, version: string, attempt: number): ChildRuns {
    return {
      start: async (blueprintId, input) => {
        const id = childRunId(runId, node.id, attempt);
        await this.runs.start(this.runs.blueprint(blueprintId), input, { runId: id, parent: { runId, nodeId: node.id, version } });
        return id;
      },
    };
  }

  /** Fails the node and so its run (one script call), then ends what the run's end ends. */
  private async fail(runId: string, nodeId: string, err: unknown, attempt: number, logger: Logger): Promise<void> {
    const error = serializeFailure(err, attempt);
    logger.error('node failed; failing the run', { nodeId, error: error.message });
    await this.runs.afterEnding(await this.store.failNode(runId, nodeId, error), runId);
  }

  private async enqueue(runId: string, graph: Graph, nodeIds: readonly string[]): Promise<void> {
    const nodes = nodeIds.map((id) => graph.byId.get(id)).filter((n): n is CompiledNode => n !== undefined);
    await this.queue.enqueue(runId, graph.version, nodes);
  }

  /** The signal that fires when the run is cancelled or fails elsewhere, for a step starting now. */
  private track(runId: string): AbortSignal {
    let entry = this.running.get(runId);
    if (!entry) this.running.set(runId, (entry = { controller: new AbortController(), steps: 0 }));
    entry.steps++;
    return entry.controller.signal;
  }

  private untrack(runId: string): void {
    const entry = this.running.get(runId);
    if (entry && --entry.steps === 0) this.running.delete(runId);
  }
}

/** A node to run within the current job. */
interface Step {
  node: CompiledNode;
  attempt: number;
  context: Record<string, unknown>;
  outputs: Record<string, unknown>;
  /** Set when the node is a subflow whose child run ended. */
  childRunId?: string;
}

const NO_RELEASE = () => undefined;

/** Node jobs a worker runs at once unless told otherwise. */
export const DEFAULT_CONCURRENCY = 64;

/** Steps one job may run before it hands further successors to the queue (fairness, lock time). */
const MAX_STEPS_PER_JOB = 200;

/** Which outgoing edges the step's result takes; conditions see the context as the node left it (what it read plus what it wrote). */
function decideStepEdges(step: Step, result: NodeResult): boolean[] {
  const context = { ...step.context, ...result.context };
  const outputs = { ...step.outputs };
  if (result.output !== undefined) outputs[step.node.id] = result.output;
  return decideEdges(step.node, result, { context, outputs });
}
