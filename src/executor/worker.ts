import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Worker, type Job, type JobJson, type WorkerOptions as BullWorkerOptions } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { BlueprintRegistry } from '../blueprint/load.js';
import { ErrorCodes, LimitExceededError, NodeNotWaitingError, NonRetryableError, serializeError, SwitchyardError, type SerializedError } from '../errors.js';
import { Limits } from '../types/limits.js';
import { childRunId, indexedChildRunId } from '../types/ids.js';
import { GraphCache } from '../engine/graph-cache.js';
import { isTerminalRunStatus } from '../types/statuses.js';
import { actionsOf, compileGraph, type CompiledNode, type Graph } from '../engine/graph.js';
import type { RunView } from '../types/run-view.js';
import { decideEdges } from '../engine/transitions.js';
import { lazyChild, silentLogger, type Logger } from '../logger.js';
import type { ChildRuns, FanOut, NodeKindRegistry, NodeResult, ParkRequest, SlotPool } from '../types/node-kind.js';
import { resolveOptions, type ResolvedOptions, type SwitchyardOptions } from '../options.js';
import { BlueprintStore } from '../store/blueprint-store.js';
import { encodeNeeds, RedisStore, type CompleteNodeReply, type FanOutChild, type StoreNode } from '../store/redis-store.js';
import { NodeQueue, routeOf, type NodeJobData, type RunRoute } from '../queue/node-queue.js';
import { BlueprintCatalog } from '../queue/blueprint-catalog.js';
import { RunService } from '../queue/runs.js';
import { errorMessage, isCancelled, runAttempt, serializeFailure, type AttemptOptions } from './attempt-policy.js';
import { collectChild, gatherChildren, type ExecuteNodeOptions } from './execute-node.js';
import { TaskProtection, type TaskProtectionOptions } from './task-protection.js';
import { WorkerRecovery, type RecoveryOptions, type RecoveryStats } from './recovery.js';

export interface WorkerOptions extends SwitchyardOptions {
  /** Node kinds this worker can run. */
  kinds: NodeKindRegistry;
  /**
   * Blueprints this worker has at hand (their graphs need no fetch). Optional: a worker runs every stored
   * version, whatever it was started with, and child runs execute the versions their run pinned.
   */
  blueprints?: BlueprintRegistry;
  /**
   * Store `blueprints` whose ids have no stored version yet, as their first version, when the worker starts
   * (a deployment's bundled blueprints; a stored version is never replaced). @default false
   */
  seedBlueprints?: boolean;
  /**
   * Node jobs run at once, over all queue shards together. While steps here hold every slot of a kind's
   * pool (the LLM kinds: this worker's LLM limit) the worker takes no new jobs and claims no extra
   * successors, so other workers get them. @default 64
   */
  concurrency?: number;
  /**
   * How long a worker's claim on a running node lasts without renewal; after it lapses (the worker died)
   * another worker runs the node again. Renewed automatically while the node runs. @default 30000
   */
  lockDurationMs?: number;
  /**
   * Heartbeat, taking back a dead worker's jobs at once, and the reconciler of runs that lost state in a
   * failover (src/executor/recovery.ts). @default on: heartbeat 500 ms, dead after 2000 ms, reconcile after 15000 ms
   */
  recovery?: RecoveryOptions;
  /** Shown in run views and events. @default `<hostname>-<pid>-<random>` */
  workerId?: string;
  logger?: Logger;
  /**
   * The grace period of {@link SwitchyardWorker.close}: running steps may finish for this long; then their
   * AbortSignal fires and their nodes go back to the queue at once, so another worker runs them without
   * waiting for this worker's lock to lapse. Keep it under the time the platform gives a stopping process
   * (ECS: the container's StopTimeout). `Infinity` waits for every step however long. @default 90000
   */
  drainTimeoutMs?: number;
  /**
   * ECS task scale-in protection while this worker holds node jobs (set through the ECS agent endpoint,
   * cleared a little after the last job ends). @default none
   */
  taskProtection?: TaskProtectionOptions;
  /**
   * Called once for each run this worker fails (a node failed after its retries and fallback): the worker
   * process turns it into a metric. Errors it throws are logged and ignored. @default none
   */
  onRunFailed?: (failure: RunFailure) => void;
}

/** A run that a worker failed, for {@link WorkerOptions.onRunFailed}. */
export interface RunFailure {
  runId: string;
  /** The node whose failure failed the run. */
  nodeId: string;
  error: SerializedError;
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
  /** Stored blueprints (and this worker's own): for runs started before runs pinned their subflows. */
  private readonly catalog: BlueprintCatalog;
  private readonly graphs: GraphCache;
  /** One BullMQ worker per queue shard, sharing this worker's concurrency (see {@link adjustIntake}). */
  private readonly workers: Array<Worker<NodeJobData>>;
  /**
   * Jobs each shard's BullMQ worker holds: counted when fetched (BullMQ may fetch up to its concurrency
   * before it starts processing them) until processed.
   */
  private readonly inHand: number[];
  /** Where adjustIntake starts handing out free slots, turned each call so no shard is always last. */
  private nextShare = 0;
  private readonly subscriber: Redis;
  /** Per run with steps running here: one AbortController for all of them, and how many there are. */
  private readonly running = new Map<string, { controller: AbortController; steps: number }>();
  private readonly logger: Logger;
  private readonly kinds: NodeKindRegistry;
  private closing: Promise<void> | undefined;
  /** Set on close(): running steps finish, but no further successor is claimed. */
  private stopping = false;
  /** Set when close()'s grace period ends: running steps are aborted and handed back, none starts. */
  private handingBack = false;
  private readonly drainTimeoutMs: number;
  private readonly protection: TaskProtection | undefined;
  private readonly onRunFailed: ((failure: RunFailure) => void) | undefined;
  /** Node steps running in this worker now, over all jobs. */
  private steps = 0;
  /** The (run, node) pairs this worker is running a step of ({@link stepKey}). */
  private readonly stepping = new Set<string>();
  /** Steps this worker runs at once before successors go to the queue instead (4 x concurrency). */
  private readonly localLimit: number;
  private readonly concurrency: number;
  /** Jobs this worker is processing now. */
  private jobs = 0;
  /** Steps holding (or about to hold) each slot pool's slots, by pool. */
  private readonly held = new Map<SlotPool, number>();
  private readonly subscribed: Promise<void>;
  private readonly seeding: Promise<unknown> | undefined;
  /** The jobs this worker processes now, by id, with their BullMQ lock tokens (its heartbeat lists them). */
  private readonly activeJobs = new Map<string, string>();
  private readonly recovery: WorkerRecovery;

  constructor(options: WorkerOptions) {
    this.options = resolveOptions(options);
    this.kinds = options.kinds;
    this.id = options.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.logger = (options.logger ?? silentLogger).child({ worker: this.id });
    this.store = new RedisStore(this.options.redis, this.options.prefix);
    this.queue = new NodeQueue(this.options);
    this.catalog = new BlueprintCatalog(new BlueprintStore(this.store.redis, this.store.keys), options.blueprints, this.kinds);
    this.runs = new RunService(this.store, this.queue, this.catalog, this.options.runTtlSeconds);
    if (options.seedBlueprints && options.blueprints) {
      this.seeding = this.catalog.seed(options.blueprints);
      this.seeding.catch(() => undefined); // reported by ready()
    }
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
    const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    if (Number.isNaN(drainTimeoutMs) || drainTimeoutMs < 0) {
      throw new SwitchyardError(ErrorCodes.CONFIG, `drainTimeoutMs must be a number of ms >= 0 or Infinity (got ${drainTimeoutMs})`);
    }
    this.drainTimeoutMs = drainTimeoutMs;
    this.protection = options.taskProtection ? new TaskProtection(options.taskProtection, this.logger) : undefined;
    this.onRunFailed = options.onRunFailed;
    // No ready check (an INFO is not allowed on a reconnecting subscriber); ioredis resubscribes itself.
    // Named: while Redis holds this connection, recovery knows the process is alive (recovery.ts). On a
    // Cluster the name goes to every node connection; the subscription's is `ioredis-cluster(subscriber):<name>`.
    const connectionName = this.store.workerConnectionName(this.id);
    const redis = this.options.redis;
    if (redis.isCluster) {
      const cluster = redis as Cluster;
      this.subscriber = cluster.duplicate([], { redisOptions: { ...cluster.options.redisOptions, connectionName } }) as unknown as Redis;
    } else {
      this.subscriber = (redis as Redis).duplicate({ enableReadyCheck: false, connectionName });
    }
    this.subscriber.on('error', (err: Error) => this.logger.warn('abort subscription connection error', { error: err.message }));
    this.subscriber.on('message', (_channel: string, runId: string) => this.abortRun(runId));
    // After a reconnect (a Redis restart, a pause, a failover) a run may have been cancelled or failed while
    // nobody listened: once subscribed again, read the status of every run with steps here.
    this.subscriber.on('ready', () => void this.rereadAborts());
    this.subscribed = this.subscriber.subscribe(this.store.keys.aborts()).then(() => undefined);
    this.subscribed.catch((err: unknown) => this.logger.error('abort subscription failed', { err: String(err) }));
    // Every queue shard, each with a BullMQ worker of its own (a queue is one hash tag, so one queue per
    // shard); they start with an equal part of the concurrency and share it from the first job on.
    const shards = this.options.queuePrefixes.length;
    this.inHand = new Array<number>(shards).fill(0);
    this.workers = this.options.queuePrefixes.map((prefix, shard) => {
      const settings: BullWorkerOptions = {
        connection: this.options.redis,
        prefix,
        concurrency: Math.max(1, Math.floor(concurrency / shards) + (shard < concurrency % shards ? 1 : 0)),
        maxStalledCount: 2,
        lockDuration: options.lockDurationMs ?? 30_000,
        stalledInterval: options.lockDurationMs ?? 30_000,
      };
      const process = (job: Job<NodeJobData>, token?: string) => this.process(job, shard, token);
      const worker =
        shards === 1
          ? new Worker<NodeJobData>(this.options.queueName, process, settings)
          : new ShardWorker(this.options.queueName, process, settings, () => this.fetched(shard));
      worker.on('error', (err) => this.logger.error('worker error', { err: err.message, shard }));
      worker.on('lockRenewalFailed', (jobIds: string[]) => this.logger.warn('lost the lock of jobs (Redis away, or taken for dead): another worker may run them again', { jobIds, shard }));
      return worker;
    });
    this.recovery = new WorkerRecovery(
      {
        workerId: this.id,
        store: this.store,
        queue: this.queue,
        runs: this.runs,
        graph: (version) => this.graphs.get(version),
        jobs: () => [...this.activeJobs],
        fetchers: () => this.workers.map((w) => w.id),
        logger: this.logger,
      },
      options.recovery,
    );
    this.recovery.start();
    // Watching others stops when closing begins; beating goes on while the worker drains, until it closed.
    this.workers[0]!.on('closing', () => this.recovery.stopWatching());
    this.workers[0]!.on('closed', () => this.recovery.stop());
  }

  /** What recovery did here so far: dead workers' jobs put back, nodes repaired, runs failed beyond repair. */
  recoveryStats(): RecoveryStats {
    return { ...this.recovery.stats };
  }

  /** Resolves once the worker is connected and taking jobs (and has seeded its blueprints, when asked to). */
  async ready(): Promise<void> {
    await Promise.all([...this.workers.map((w) => w.waitUntilReady()), this.subscribed, this.seeding]);
  }

  /**
   * Stops taking jobs and lets running nodes finish for up to `drainTimeoutMs`; then aborts the rest and
   * hands their nodes back to the queue, clears task protection, and disconnects. Safe to call twice.
   */
  close(): Promise<void> {
    this.stopping = true;
    this.closing ??= (async () => {
      await this.drain(Promise.all(this.workers.map((w) => w.close())).then(() => undefined));
      await this.protection?.close();
      await this.queue.close();
      await this.subscriber.quit().catch(() => undefined);
      if (this.options.ownsRedis) await this.options.redis.quit().catch(() => undefined);
    })();
    return this.closing;
  }

  /** Waits for BullMQ's close (which waits for the running jobs) up to the grace period, then hands back what still runs. */
  private async drain(closed: Promise<void>): Promise<void> {
    if (this.drainTimeoutMs === Infinity) return closed;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), this.drainTimeoutMs)));
    try {
      if ((await Promise.race([closed, expired])) !== 'expired') return;
    } finally {
      clearTimeout(timer);
    }
    this.logger.warn('drain timeout: aborting running nodes and handing them back to the queue', { drainTimeoutMs: this.drainTimeoutMs, steps: this.steps, jobs: this.jobs });
    this.handingBack = true;
    // The steps' attempts end as cancelled (their signal fired); attempt() then hands each back.
    for (const entry of this.running.values()) entry.controller.abort();
    await closed;
  }

  /**
   * Gives a node this worker claimed but will not finish back to the queue, as a job another worker takes
   * next, after releasing its claim (release-node): queued again with its attempt undone, so the next worker
   * runs the same attempt (no failure, no back-off, no retry used up). The release goes first so that no
   * other worker can claim the node before it. A subflow node waiting for its child keeps its claim (its
   * resume job finishes it).
   */
  private async handBack(data: NodeJobData, logger: Logger): Promise<void> {
    if (!data.childRunId) await this.store.releaseNodes(data.runId, this.id, [data.nodeId]);
    await this.queue.enqueueHandBack(data);
    logger.info('node handed back to the queue', { runId: data.runId, nodeId: data.nodeId });
  }

  private abortRun(runId: string): void {
    this.running.get(runId)?.controller.abort();
  }

  /**
   * Aborts the steps of runs that ended (or vanished: lost in a failover, or expired) while the abort
   * subscription was away. Subscribes again first (ioredis already did; this waits until Redis has it),
   * so an abort after the read is heard too.
   */
  private async rereadAborts(): Promise<void> {
    const runIds = [...this.running.keys()];
    if (runIds.length === 0 || this.closing) return;
    try {
      await this.subscriber.subscribe(this.store.keys.aborts());
      await Promise.all(
        runIds.map(async (runId) => {
          const status = await this.store.getStatus(runId);
          if (status === undefined || isTerminalRunStatus(status)) this.abortRun(runId);
        }),
      );
    } catch {
      // Redis went away again: the next 'ready' reads again.
    }
  }

  /** True while steps here hold every slot of some pool (the LLM limit). */
  private saturated(): boolean {
    for (const [pool, held] of this.held) if (held >= pool.capacity) return true;
    return false;
  }

  /**
   * Back-pressure and the shared concurrency: BullMQ reads a worker's concurrency before each fetch, so
   * each shard's worker is set to the jobs it holds plus its share of the free slots (concurrency minus
   * the jobs of all shards; none while saturated), handed out in turn. A BullMQ worker's concurrency is at
   * least 1, so a shard holding no job may still take one: the jobs over all shards stay within
   * concurrency + shards - 1 (with one shard: the configured concurrency, or while saturated the jobs held
   * and at least 1, as before shards).
   */
  private adjustIntake(): void {
    const shards = this.workers.length;
    if (shards === 1) {
      const wanted = this.saturated() ? Math.max(1, this.jobs) : this.concurrency;
      if (this.workers[0]!.concurrency !== wanted) this.workers[0]!.concurrency = wanted;
      return;
    }
    const held = this.inHand.reduce((sum, n) => sum + n, 0);
    const free = this.saturated() ? 0 : Math.max(0, this.concurrency - held);
    const start = this.nextShare++ % shards;
    for (let i = 0; i < shards; i++) {
      const shard = (start + i) % shards;
      const share = Math.floor(free / shards) + (i < free % shards ? 1 : 0);
      const wanted = Math.max(1, this.inHand[shard]! + share);
      if (this.workers[shard]!.concurrency !== wanted) this.workers[shard]!.concurrency = wanted;
    }
  }

  /** A shard's BullMQ worker fetched a job: it counts against the shared concurrency from now. */
  private fetched(shard: number): void {
    this.inHand[shard]!++;
    this.adjustIntake(); // the other shards' shares shrink before they fetch again
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

  private async process(job: Job<NodeJobData>, shard: number, token?: string): Promise<void> {
    if (this.jobs++ === 0) this.protection?.busy();
    if (job.id && token) this.activeJobs.set(job.id, token);
    try {
      await this.processJob(job);
    } finally {
      if (job.id) this.activeJobs.delete(job.id);
      if (this.workers.length > 1) this.inHand[shard] = Math.max(0, this.inHand[shard]! - 1);
      if (--this.jobs === 0) this.protection?.idle();
      this.adjustIntake();
    }
  }

  private async processJob(job: Job<NodeJobData>): Promise<void> {
    const { runId, nodeId, version } = job.data;
    // A run's deadline: fail it if it is still running (one script call), whatever its nodes are doing.
    if (job.data.deadline) {
      if (await this.runs.timeOut(runId)) this.logger.warn('run passed its deadline; failed it', { runId });
      return;
    }
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
    if (job.data.wake !== undefined) return this.wake(runId, graph, node, job.data.wake);
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
    // The run's shard and priority, as its start recorded them: every job this one leads to carries them.
    const route = routeOf(job.data);
    // Fetched as the grace period ended: hand the job back as it is, before it claims (and counts) anything.
    if (this.handingBack) return this.handBack(job.data, this.logger);
    const others = (siblings ?? []).map((id) => graph.byId.get(id)).filter((n): n is CompiledNode => n !== undefined);
    // Collecting a fanning-out node's child needs only what its edges' conditions read, not what its
    // `run` did (a map's list can be long, and there is a collection per child).
    const reads = childRunId && this.fansOut(node) ? collectReads(node) : node;
    const begin = await this.store.startNode(runId, reads, this.id, childRunId ? 'resume' : 'start', others);
    switch (begin.kind) {
      case 'done':
        // A redelivered job of a completed node: re-enqueue what its completion made ready, in case the
        // worker that completed it died before enqueueing (job ids make this harmless otherwise), and the
        // start nodes this job was to claim.
        return this.enqueue(runId, graph, [...begin.readied, ...(siblings ?? [])], route);
      case 'ended':
        // Likewise, tell the parent of an ended child run again (resume jobs are idempotent).
        if (begin.parent && !childRunId) await this.runs.notifyParent(begin.parent, runId);
        return;
      case 'parked':
        // A redelivered job of a parked node: add its wake job again, in case the worker that parked it
        // died before it could (one job id per node and attempt makes this harmless otherwise).
        if (begin.wake !== undefined) await this.queue.enqueueWake(runId, version, node.id, begin.attempt, begin.wake, route);
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
      if (this.handingBack) {
        // Claimed (a successor, a sibling) but not started when the grace period ended.
        release();
        const task = this.handBack(stepJob(runId, version, step, route), this.logger).finally(() => running.delete(task));
        running.add(task);
        return;
      }
      if (++steps > MAX_STEPS_PER_JOB) {
        release();
        void this.queue.enqueue(runId, version, [step.node], route); // claimed but over the limit: hand it on
        return;
      }
      this.steps++;
      const key = stepKey(runId, step.node.id);
      this.stepping.add(key);
      const task = this.runStep(runId, graph, step, route)
        .finally(() => {
          this.stepping.delete(key);
          release();
        })
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
      else await this.enqueue(runId, graph, sibling.readied, route);
    }
    while (running.size > 0) await Promise.race(running);
  }

  /**
   * Runs one node and applies its result; returns the successors it claimed to run next. The order of
   * calls: one attempt under the node's policy (a retry, failure or cancellation ends the step there),
   * park a node that waits for a child run, else decide its edges, complete it (claiming successors),
   * enqueue the ready nodes not claimed, tell a parent run that this run ended.
   */
  private async runStep(runId: string, graph: Graph, step: Step, route: RunRoute): Promise<Step[]> {
    const { node } = step;
    const logger = lazyChild(this.logger, { runId, nodeId: node.id, attempt: step.attempt });
    const result = step.childRunId && this.fansOut(node) ? await this.collect(runId, graph, step, logger, route) : await this.attempt(runId, graph, step, logger, route);
    if (!result) return [];
    if (result.waitFor) return this.park(runId, node, result.waitFor.runId, step.childIndices?.get(result.waitFor.runId));
    if (result.park) return this.parkTimed(runId, graph, node, step.attempt, result.park, logger, route);
    if (result.fanOut) return this.fanOut(runId, graph, step, result.fanOut, logger, route);
    const taken = decideStepEdges(step, result);
    const done = await this.complete(runId, graph, node, result, taken);
    if (done.kind === 'limit') {
      const err = new LimitExceededError('MAX_CONTEXT_BYTES', done.contextBytes, Limits.MAX_CONTEXT_BYTES, 'the run\'s context (bytes of JSON) after this node\'s writes', { nodeId: node.id });
      await this.fail(runId, node.id, err, step.attempt, logger);
      return [];
    }
    if (done.kind === 'stale') {
      // The run completed with this node done: maybe by this very completion, resent after its reply was lost
      // with a connection. Tell its parent (again: a resume job per child is idempotent).
      if (done.parent) await this.runs.notifyParent(done.parent, runId);
      return [];
    }
    if (done.kind === 'duplicate') return this.replayed(runId, graph, done, logger, route);
    const claimedIds = new Set(done.claimed.map((c) => c.nodeId));
    await this.enqueue(runId, graph, done.ready.filter((id) => !claimedIds.has(id)), route);
    if (done.parent) await this.runs.notifyParent(done.parent, runId);
    return done.claimed.map((c) => ({ node: graph.byId.get(c.nodeId)!, attempt: c.attempt, context: c.context, outputs: c.outputs }));
  }

  /**
   * The node was done already: this completion may be a resend of the one that made it so, whose reply was
   * lost with a connection (ioredis sends unanswered commands again after reconnecting). What that first call
   * made ready and nobody claimed is enqueued (job ids make it harmless if it was), and what it claimed for
   * this worker runs here, unless this worker runs it already.
   */
  private async replayed(runId: string, graph: Graph, done: Extract<CompleteNodeReply, { kind: 'duplicate' }>, logger: Logger, route: RunRoute): Promise<Step[]> {
    const claimed = done.claimed.filter((c) => !this.stepping.has(stepKey(runId, c.nodeId)));
    if (done.ready.length === 0 && claimed.length === 0) return [];
    logger.warn('completion applied before (reply lost?): taking up what it made ready', { ready: done.ready, claimed: claimed.map((c) => c.nodeId) });
    await this.enqueue(runId, graph, done.ready, route);
    return claimed.map((c) => ({ node: graph.byId.get(c.nodeId)!, attempt: c.attempt, context: c.context, outputs: c.outputs }));
  }

  /**
   * One attempt of the step's node under its policy ({@link runAttempt}), with the run's abort signal
   * tracked until the outcome is applied: the node's result, or undefined once a retry is scheduled, the
   * run failed or the run was cancelled.
   */
  private async attempt(
    runId: string,
    graph: Graph,
    step: Step,
    logger: Logger,
    route: RunRoute,
    continueWith?: AttemptOptions['continueWith'],
  ): Promise<NodeResult | undefined> {
    const { node, attempt, childRunId } = step;
    const signal = this.track(runId);
    try {
      const outcome = await runAttempt({
        ...this.executeOptions(runId, graph, step, signal, logger, route),
        policy: node.config,
        endedChild: childRunId && !continueWith ? () => this.endedChild(childRunId, node.id) : undefined,
        continueWith,
        logFallback: true,
      });
      switch (outcome.kind) {
        case 'result':
          return outcome.result;
        case 'retry':
          // Our own delayed job, counted by the node's attempts in run state (not BullMQ's attempts).
          logger.warn('node attempt failed; will retry', { delayMs: outcome.delayMs, error: errorMessage(outcome.error) });
          await this.store.retryNode(runId, node.id, serializeError(outcome.error), outcome.delayMs);
          await this.queue.enqueueRetry(runId, graph.version, node, attempt, outcome.delayMs, route);
          return undefined;
        case 'failed':
          await this.fail(runId, node.id, outcome.error, attempt, logger);
          return undefined;
        case 'cancelled':
          // Its signal fired: the run was cancelled or failed elsewhere, or this worker's grace period ended.
          if (this.handingBack) await this.handBack(stepJob(runId, graph.version, step, route), logger);
          return undefined;
      }
    } finally {
      this.untrack(runId);
    }
  }

  /** What running the step's node needs, for executeNode and the attempt policy. */
  private executeOptions(runId: string, graph: Graph, step: Step, signal: AbortSignal, logger: Logger, route: RunRoute): ExecuteNodeOptions {
    const { node, attempt } = step;
    return {
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
      runs: this.childRuns(runId, node, graph.version, step, route),
    };
  }

  /** The node waits for its child run without holding this slot; a resume job finishes it. */
  private async park(runId: string, node: CompiledNode, childRunId: string, index?: number): Promise<Step[]> {
    const waiting = await this.store.waitNode(runId, node.id, childRunId, index);
    if (waiting.outcome === 'stale') await this.runs.cancel(childRunId, 'parent run ended');
    return [];
  }

  /** Whether the node's kind fans out to many child runs (map): its children's ends are collected, not resumed. */
  private fansOut(node: CompiledNode): boolean {
    return this.kinds.get(node.definition.uses)?.collect !== undefined;
  }

  /**
   * The node fans out to child runs: their inputs are stored and the first ones (up to the node's
   * concurrency) marked running in one script call, then started here. The node keeps no worker slot;
   * each child's end is collected by a resume job ({@link collect}).
   */
  private async fanOut(runId: string, graph: Graph, step: Step, fanOut: FanOut, logger: Logger, route: RunRoute): Promise<Step[]> {
    const { node } = step;
    const reply = await this.store.startFanOut(runId, node.id, {
      base: childRunId(runId, node.id, step.attempt),
      blueprintId: fanOut.blueprintId,
      concurrency: fanOut.concurrency,
      input: fanOut.input ?? {},
      each: fanOut.each,
    });
    if (reply.kind === 'start') await this.startChildren(runId, graph, step, reply.blueprintId, reply.children, logger, route);
    return [];
  }

  /**
   * One child of a fanning-out node ended: its value (the kind's `collect`) is recorded in one script
   * call, which says what follows: the children that frees room for (started here), or, once all are in,
   * the node's result from the kind's `gather`. A child whose collection throws fails the node (under its
   * policy: the fallback, else the run fails) after the children still in flight are cancelled.
   */
  private async collect(runId: string, graph: Graph, step: Step, logger: Logger, route: RunRoute): Promise<NodeResult | undefined> {
    const { node } = step;
    let child: RunView;
    let value: unknown;
    let failure: unknown;
    const signal = this.track(runId);
    try {
      child = await this.endedChild(step.childRunId!, node.id);
      if (child.parent?.index === undefined) throw new NonRetryableError(`child run ${child.runId} has no index among the node's children`, { nodeId: node.id });
      try {
        value = await collectChild(this.executeOptions(runId, graph, step, signal, logger, route), child);
      } catch (err) {
        failure = err;
      }
    } catch (err) {
      return this.attempt(runId, graph, step, logger, route, () => Promise.reject(err));
    } finally {
      this.untrack(runId);
    }
    if (failure !== undefined && isCancelled(failure)) return undefined;
    const reply = await this.store.collectChild(runId, node.id, {
      index: child.parent.index,
      childFailed: child.status !== 'completed',
      value,
      halt: failure !== undefined,
    });
    switch (reply.kind) {
      case 'start':
        await this.startChildren(runId, graph, step, reply.blueprintId, reply.children, logger, route);
        return undefined;
      case 'all':
        return this.attempt(runId, graph, step, logger, route, (options) => gatherChildren(options, reply.values));
      case 'halted':
        await Promise.all(reply.running.map((id) => this.runs.cancel(id, `another child run of node "${node.id}" failed it`)));
        return this.attempt(runId, graph, step, logger, route, () => Promise.reject(failure));
      default:
        return undefined;
    }
  }

  /** Starts children of a fanning-out node (again, after a redelivery: their ids are derived). */
  private async startChildren(runId: string, graph: Graph, step: Step, blueprintId: string, children: FanOutChild[], logger: Logger, route: RunRoute): Promise<void> {
    if (children.length === 0) return;
    const { node } = step;
    try {
      await Promise.all(children.map((c) => this.startChild(runId, node, graph.version, blueprintId, c.input, c.runId, route, c.index)));
    } catch (err) {
      // The children cannot start (a blueprint this worker does not have): the node fails, and the run with it.
      await this.fail(runId, node.id, err, step.attempt, logger);
      return;
    }
    // The run may have ended while they started (its cancel did not find them yet): end them too.
    if ((await this.store.getStatus(runId)) !== 'running') await Promise.all(children.map((c) => this.runs.cancel(c.runId, 'parent run ended')));
  }

  /**
   * A wait or durable sleep node parks (one script call: `waiting` or `sleeping`, with its wake time) and
   * gives up this slot; for a timed park a delayed wake job completes it later, unless a signal, a
   * cancellation or the run's end comes first. Parked before the wake job is added: a wake job never
   * finds its node still running, and a redelivery of this job adds a lost wake job again.
   */
  private async parkTimed(runId: string, graph: Graph, node: CompiledNode, attempt: number, park: ParkRequest, logger: Logger, route: RunRoute): Promise<Step[]> {
    const parked = await this.store.parkNode(runId, node.id, {
      status: park.signal ? 'waiting' : 'sleeping',
      wake: park.until,
      prompt: park.signal?.prompt,
      actions: park.signal ? actionsOf(node) : undefined,
      wakeAction: park.wakeAction,
    });
    if (parked.outcome !== 'parked') return [];
    logger.debug(park.signal ? 'node waits for a signal' : 'node sleeps', { wakeAt: park.until });
    if (park.until !== undefined) await this.queue.enqueueWake(runId, graph.version, node.id, attempt, park.until, route);
    return [];
  }

  /** A wake job: completes its parked node (a wait's timeout, a sleep's end) unless something came first. */
  private async wake(runId: string, graph: Graph, node: CompiledNode, attempt: number): Promise<void> {
    try {
      await this.runs.completeParked(runId, graph, node, { wake: attempt });
    } catch (err) {
      // A signal, a cancellation or the run's end came first: nothing to do.
      if (err instanceof NodeNotWaitingError || (err instanceof SwitchyardError && err.code === ErrorCodes.RUN_NOT_FOUND)) return;
      throw err;
    }
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

  /**
   * Child runs started by a node: deterministic ids per attempt (and index), linked back to the node. The
   * step notes each indexed child's index, so parking on it records which one it is.
   */
  private childRuns(runId: string, node: CompiledNode, version: string, step: Step, route: RunRoute): ChildRuns {
    const { attempt } = step;
    return {
      start: async (blueprintId, input, options) => {
        const index = options?.index;
        const id = index === undefined ? childRunId(runId, node.id, attempt) : indexedChildRunId(runId, node.id, attempt, index);
        if (index !== undefined) (step.childIndices ??= new Map()).set(id, index);
        await this.startChild(runId, node, version, blueprintId, input, id, route, index);
        return id;
      },
    };
  }

  /**
   * Starts (or finds) one child run of the node, linked back to it, running the version its run pinned
   * when it started (read here, where a child starts: no ordinary node pays for it) and inheriting the
   * pins, so this worker's own blueprints never decide what a run executes.
   */
  private async startChild(runId: string, node: CompiledNode, version: string, blueprintId: string, input: Record<string, unknown>, id: string, route: RunRoute, index?: number): Promise<void> {
    const pinned = await this.store.readPins(runId);
    let graph: Graph;
    let pinsJson = pinned?.json;
    const pin = pinned?.pins[blueprintId];
    if (pin !== undefined) {
      graph = await this.graphs.get(pin);
    } else if (pinned === undefined) {
      // A run started before runs pinned their subflows: the version a start runs now, pinned from here on.
      const closure = await this.catalog.closure(await this.catalog.resolve(blueprintId));
      graph = this.runs.graphFor(closure.root);
      pinsJson = closure.pins && JSON.stringify(closure.pins);
    } else {
      throw new SwitchyardError(ErrorCodes.BLUEPRINT_NOT_FOUND, `subflow blueprint "${blueprintId}" is not among the versions run ${runId} pinned`, {
        runId,
        nodeId: node.id,
        blueprintId,
        retryable: false,
      });
    }
    // The child runs on its parent's shard with its priority; its link carries them for the resume job.
    const parent = { runId, nodeId: node.id, version, ...definedRoute(route), ...(index === undefined ? {} : { index }) };
    await this.runs.startGraph(graph, input, { runId: id, parent, pinsJson, store: [graph], shard: route.shard ?? 0, priority: route.priority });
  }

  /** Fails the node and so its run (one script call), then ends what the run's end ends. */
  private async fail(runId: string, nodeId: string, err: unknown, attempt: number, logger: Logger): Promise<void> {
    const error = serializeFailure(err, attempt);
    logger.error('node failed; failing the run', { nodeId, error: error.message });
    const ending = await this.store.failNode(runId, nodeId, error);
    // Only when this call failed the run (not when it had ended already): one report per failed run.
    if (ending && this.onRunFailed) {
      try {
        this.onRunFailed({ runId, nodeId, error });
      } catch (hookErr) {
        logger.warn('onRunFailed threw', { error: errorMessage(hookErr) });
      }
    }
    await this.runs.afterEnding(ending, runId);
  }

  private async enqueue(runId: string, graph: Graph, nodeIds: readonly string[], route: RunRoute): Promise<void> {
    const nodes = nodeIds.map((id) => graph.byId.get(id)).filter((n): n is CompiledNode => n !== undefined);
    await this.queue.enqueue(runId, graph.version, nodes, route);
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

/**
 * A BullMQ worker that reports each job it fetches (by moveToActive, or with the previous job's completion),
 * before it processes it: with several shards, the shared concurrency counts jobs from their fetch.
 */
class ShardWorker extends Worker<NodeJobData> {
  constructor(
    name: string,
    processor: (job: Job<NodeJobData>) => Promise<void>,
    settings: BullWorkerOptions,
    private readonly onFetched: () => void,
  ) {
    super(name, processor, settings);
  }

  protected override async nextJobFromJobData(jobData?: JobJson, jobId?: string, token?: string): Promise<Job<NodeJobData>> {
    const job = await super.nextJobFromJobData(jobData, jobId, token);
    // Undefined when the queue had nothing (the type says otherwise); the callback is set by then (the first
    // fetch waits for the connection, after the constructor).
    if (job) this.onFetched?.();
    return job;
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
  /** Indexed child runs this step started (a loop's next iteration): run id -> index. */
  childIndices?: Map<string, number>;
}

const collecting = new WeakMap<CompiledNode, StoreNode>();

/** The node as the start script takes it when a child of its fan-out ended: reading what its edges' conditions read. */
function collectReads(node: CompiledNode): StoreNode {
  let stripped = collecting.get(node);
  if (!stripped) {
    const context = new Set<string>();
    const outputs = new Set<string>();
    let wholeContext = false;
    let wholeOutputs = false;
    for (const edge of node.outgoing) {
      const reads = edge.condition?.reads;
      if (!reads) continue;
      reads.context.forEach((k) => context.add(k));
      reads.outputs.forEach((k) => outputs.add(k));
      wholeContext ||= reads.wholeContext;
      wholeOutputs ||= reads.wholeOutputs;
    }
    const needs = { context: wholeContext ? ('*' as const) : [...context], outputs: wholeOutputs ? ('*' as const) : [...outputs] };
    stripped = { id: node.id, index: node.index, needs, lua: { ...node.lua, needs: encodeNeeds(needs) } };
    collecting.set(node, stripped);
  }
  return stripped;
}

const NO_RELEASE = () => undefined;

/** A step's key among the steps a worker runs. */
function stepKey(runId: string, nodeId: string): string {
  return `${runId}\u0000${nodeId}`;
}

/** The job that runs `step` again elsewhere: a resume job for a subflow node whose child ended, else a start job. */
function stepJob(runId: string, version: string, step: Step, route: RunRoute): NodeJobData {
  const data: NodeJobData = { runId, nodeId: step.node.id, version, ...definedRoute(route) };
  if (step.childRunId) data.childRunId = step.childRunId;
  return data;
}

/** The route's parts that are set (a stored parent link or job data leaves the defaults out). */
function definedRoute(route: RunRoute): RunRoute {
  return { ...(route.shard ? { shard: route.shard } : {}), ...(route.priority ? { priority: route.priority } : {}) };
}

/** How long close() lets running nodes finish before handing them back, unless told otherwise. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 90_000;

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
