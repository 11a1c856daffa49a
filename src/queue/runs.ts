import type { LoadedBlueprint } from '../blueprint/load.js';
import type { Blueprint } from '../blueprint/schema.js';
import { ErrorCodes, LimitExceededError, NodeNotWaitingError, SwitchyardError } from '../errors.js';
import { jsonBytes, Limits } from '../types/limits.js';
import { compileGraph, type CompiledNode, type Graph } from '../engine/graph.js';
import { decideEdges } from '../engine/transitions.js';
import { RUN_ID_PATTERN } from '../types/ids.js';
import type { NodeResult, NodeSignal } from '../types/node-kind.js';
import type { NodeStatus, RunStatus } from '../types/statuses.js';
import type { ParentLink, RedisStore, RedriveRunReply, RunEnding } from '../store/redis-store.js';
import type { BlueprintCatalog } from './blueprint-catalog.js';
import type { NodeQueue, RunRoute } from './node-queue.js';

/**
 * Starting and ending runs, shared by the client (runs users start) and the worker (child runs of
 * subflow nodes): store the blueprint versions the run pins, create the run, enqueue its start nodes; on
 * the end of a run, cancel its children and tell its parent.
 */
export class RunService {
  private readonly graphs = new WeakMap<LoadedBlueprint, Graph>();
  /** Blueprint versions this process stored, and when: re-stored once an hour to keep their TTL ahead. */
  private readonly saved = new Map<string, number>();

  constructor(
    readonly store: RedisStore,
    readonly queue: NodeQueue,
    /** Blueprints by id and version: the stored registry first, then this process's own. */
    readonly catalog: BlueprintCatalog,
    private readonly defaultTtlSeconds: number,
  ) {}

  /** The compiled graph of a loaded blueprint (cached per loaded blueprint). */
  graphFor(loaded: LoadedBlueprint): Graph {
    let graph = this.graphs.get(loaded);
    if (!graph) {
      graph = compileGraph(loaded, this.catalog.kinds);
      this.graphs.set(loaded, graph);
    }
    return graph;
  }

  /**
   * Starts a run of `loaded` (a user's start): pins the versions of every blueprint its subflows can reach
   * (as this process sees them now: stored, else its own), stores them, creates the run and enqueues its
   * start nodes.
   */
  async start(
    loaded: LoadedBlueprint,
    input: Record<string, unknown>,
    options: { runId: string; ttlSeconds?: number; /** Epoch ms past which the run fails with RUN_TIMEOUT. */ deadline?: number; priority?: number },
  ): Promise<{ created: boolean; status: RunStatus; graph: Graph }> {
    const closure = await this.catalog.closure(loaded);
    return this.startGraph(this.graphFor(loaded), input, {
      ...options,
      store: closure.members.map((m) => ({ version: m.version, blueprint: m.blueprint })),
      pinsJson: closure.pins && JSON.stringify(closure.pins),
    });
  }

  /**
   * Creates the run (or finds the one with this id) and enqueues its start nodes, after storing the
   * blueprint versions it runs (`store`; a child run stores its own, whose JSON the worker has). Enqueueing
   * again for an existing running run is harmless (same job ids) and recovers a start that died in between.
   */
  async startGraph(
    graph: Graph,
    input: Record<string, unknown>,
    options: {
      runId: string;
      ttlSeconds?: number;
      parent?: ParentLink;
      /** The run's pins as stored (a child run inherits its parent's). */
      pinsJson?: string;
      /** Epoch ms past which the run fails with RUN_TIMEOUT. */
      deadline?: number;
      store: ReadonlyArray<{ version: string; blueprint: Blueprint }>;
      /**
       * The run's queue shard. A child run takes its parent's (from the parent's job), so that every start
       * of it, retried or not, goes to the same shard. @default a hash of the run id over this process's shard count
       */
      shard?: number;
      /** The run's BullMQ priority; a child run inherits its parent's. */
      priority?: number;
    },
  ): Promise<{ created: boolean; status: RunStatus; graph: Graph }> {
    if (!RUN_ID_PATTERN.test(options.runId)) {
      throw new SwitchyardError(ErrorCodes.VALIDATION, `runId "${options.runId}" must be 1-128 letters, digits, "_" or "-"`);
    }
    let inputBytes = 0;
    for (const value of Object.values(input)) inputBytes += jsonBytes(value);
    if (inputBytes > Limits.MAX_CONTEXT_BYTES) {
      throw new LimitExceededError('MAX_CONTEXT_BYTES', inputBytes, Limits.MAX_CONTEXT_BYTES, 'the run\'s input (bytes of JSON)', { runId: options.runId });
    }
    if (options.parent) await this.checkSubflowDepth(options.parent, graph.blueprintId);
    const ttlSeconds = options.ttlSeconds ?? this.defaultTtlSeconds;
    const due = options.store.filter(({ version }) => {
      const savedAt = this.saved.get(version);
      return savedAt === undefined || Date.now() - savedAt > 3_600_000 || ttlSeconds > this.defaultTtlSeconds;
    });
    // Written back to back: one round trip however many versions the run pins.
    await Promise.all(due.map(({ version, blueprint }) => this.store.saveBlueprint(version, blueprint, Math.max(ttlSeconds, this.defaultTtlSeconds))));
    for (const { version } of due) this.saved.set(version, Date.now());
    const started = await this.store.startRun({
      runId: options.runId,
      blueprintId: graph.blueprintId,
      version: graph.version,
      topology: graph.topology,
      topologyJson: graph.topologyJson,
      input,
      ttlSeconds,
      parent: options.parent,
      pinsJson: options.pinsJson,
      deadline: options.deadline,
    });
    // The reconciler's index (src/executor/recovery.ts): one ZADD per run, in its own slot.
    if (started.created) await this.store.indexRunning(options.runId, Date.now());
    if (started.status === 'running' && started.version === graph.version) {
      // One job starts them all: the worker that takes it claims the other start nodes itself. Its data
      // carries the run's route (shard, priority): every later job of the run is produced from a job's data.
      const route: RunRoute = { shard: options.shard ?? this.queue.shardFor(options.runId), priority: options.priority };
      await this.queue.enqueueStart(options.runId, graph.version, graph.startNodes, route);
      if (options.deadline !== undefined) await this.queue.enqueueDeadline(options.runId, graph.version, options.deadline, route);
    }
    return { created: started.created, status: started.status, graph };
  }

  /**
   * Refuses a child run deeper than {@link Limits.MAX_SUBFLOW_DEPTH}: counts its ancestors through their
   * parent links (one read each; validation already keeps blueprints within the limit, so this guards
   * blueprints registered without their subflow targets).
   */
  private async checkSubflowDepth(parent: ParentLink, blueprintId: string): Promise<void> {
    let depth = 0;
    for (let link: ParentLink | undefined = parent; link; link = await this.store.getParent(link.runId)) {
      if (++depth > Limits.MAX_SUBFLOW_DEPTH) {
        throw new LimitExceededError('MAX_SUBFLOW_DEPTH', depth, Limits.MAX_SUBFLOW_DEPTH, `the subflow depth of a child run of "${blueprintId}"`, {
          nodeId: parent.nodeId,
        });
      }
    }
  }

  /** Cancels a running run and, in turn, its child runs. */
  async cancel(runId: string, reason = 'cancelled by request'): Promise<'cancelled' | 'not-running' | 'missing'> {
    const outcome = await this.store.cancelRun(runId, reason);
    if (outcome.outcome === 'cancelled') await this.afterEnding(outcome.ending, runId);
    return outcome.outcome;
  }

  /**
   * Redrives a failed or cancelled run: its failed and cancelled nodes (and those never reached because of
   * them) run again, done nodes keep their outputs and do not run again. Enqueues the nodes ready now,
   * indexes the run as running again, re-arms its deadline, then redrives in place the child runs its
   * subflow/map/loop nodes wait for (depth first; a child that had completed after all is handed to its
   * parent node again). `not-redrivable` (with the run's status) for a run that is running or completed.
   */
  async redrive(runId: string): Promise<{ outcome: 'redriven'; redrives: number } | { outcome: 'not-redrivable'; status: RunStatus } | { outcome: 'missing' }> {
    const reply = await this.store.redriveRun(runId);
    if (reply.outcome !== 'redriven') return reply.outcome === 'missing' ? reply : { outcome: reply.outcome, status: reply.status };
    await this.afterRedrive(runId, reply);
    return { outcome: 'redriven', redrives: reply.redrives };
  }

  /** What a redrive leaves to do: index, enqueue, deadline, then the child runs in place (depth first). */
  private async afterRedrive(runId: string, reply: Extract<RedriveRunReply, { outcome: 'redriven' }>): Promise<void> {
    // The reconciler's index lost the run when it ended: a redriven run is indexed again.
    await this.store.indexRunning(runId, Date.now());
    // Still indexed (the reconciler had not dropped it yet): seen progressing now, not when it first started.
    await this.store.touchRunning(runId, Date.now());
    await this.queue.enqueueRedrive(runId, reply.version, reply.ready, reply.redrives);
    if (reply.deadline !== undefined) await this.queue.enqueueDeadline(runId, reply.version, reply.deadline);
    for (const child of reply.children) {
      const childReply = await this.store.redriveRun(child);
      if (childReply.outcome === 'redriven') await this.afterRedrive(child, childReply);
      // A child that completed after all (its parent ended first) is handed to its parent node again.
      else if (childReply.outcome === 'not-redrivable' && childReply.parent && childReply.status !== 'running') await this.notifyParent(childReply.parent, child);
    }
  }

  /** What ending a run leaves to do: cancel its children, tell its parent. */
  async afterEnding(ending: RunEnding | undefined, childRunId?: string): Promise<void> {
    if (!ending) return;
    await Promise.all(ending.children.map((child) => this.cancel(child, 'parent run ended')));
    if (ending.parent && childRunId) await this.notifyParent(ending.parent, childRunId);
  }

  /** Fails a run past its deadline (RUN_TIMEOUT), then cancels its children and tells its parent. */
  async timeOut(runId: string): Promise<boolean> {
    const ending = await this.store.timeOutRun(runId, {
      code: ErrorCodes.RUN_TIMEOUT,
      message: 'the run passed its deadline',
      retryable: false,
      name: 'SwitchyardError',
    });
    await this.afterEnding(ending, runId);
    return ending !== undefined;
  }

  /**
   * Completes a parked node, from a signal (which needs it `waiting`) or from its wake job (the timed park
   * of `attempt`; a wait completes with its timeout action, a sleep with nothing): reads what its outgoing
   * conditions need, decides its edges, applies the completion (one complete-node call: a signal and a
   * timeout racing, exactly one wins) and enqueues what became ready. Resolves with the node's status after
   * it (`done`); throws {@link NodeNotWaitingError} when the signal or wake does not apply (any more).
   */
  async completeParked(runId: string, graph: Graph, node: CompiledNode, how: { signal: NodeSignal } | { wake: number }): Promise<{ status: NodeStatus; runStatus: RunStatus; action?: string }> {
    const parked = await this.store.readParked(runId, node);
    if (parked.runStatus === undefined) throw new SwitchyardError(ErrorCodes.RUN_NOT_FOUND, `no run "${runId}"`, { runId });
    const notWaiting = (status: string) =>
      new NodeNotWaitingError(`node "${node.id}" is ${status}, not waiting for a signal`, status, { runId, nodeId: node.id });
    if (parked.runStatus !== 'running') throw notWaiting(parked.status);
    if ('signal' in how ? parked.status !== 'waiting' : parked.status !== 'waiting' && parked.status !== 'sleeping') throw notWaiting(parked.status);
    if ('wake' in how && parked.attempts !== how.wake) throw notWaiting(`${parked.status} (attempt ${parked.attempts}, not ${how.wake})`);
    const result: NodeResult = {};
    if ('signal' in how) {
      if (how.signal.payload !== undefined) result.output = how.signal.payload;
      if (how.signal.action !== undefined) result.action = how.signal.action;
    } else if (parked.wakeAction) {
      result.action = parked.wakeAction;
    }
    const outputs = { ...parked.outputs };
    if (result.output !== undefined) outputs[node.id] = result.output;
    const taken = decideEdges(node, result, { context: parked.context, outputs });
    const done = await this.store.completeNode(runId, node, result, taken);
    if (done.kind === 'duplicate') throw notWaiting(done.nodeStatus);
    if (done.kind === 'stale') throw notWaiting(parked.status);
    // A signal or a wake writes no context, so this cannot happen; it is here for the type.
    if (done.kind === 'limit') throw new LimitExceededError('MAX_CONTEXT_BYTES', done.contextBytes, Limits.MAX_CONTEXT_BYTES, 'the run\'s context (bytes of JSON)', { runId, nodeId: node.id });
    const ready = done.ready.map((id) => graph.byId.get(id)).filter((n): n is CompiledNode => n !== undefined);
    await this.queue.enqueue(runId, graph.version, ready);
    if (done.parent) await this.notifyParent(done.parent, runId);
    return { status: 'done', runStatus: done.runStatus, ...(result.action === undefined ? {} : { action: result.action }) };
  }

  /** Enqueues the job that resumes a parent's subflow node with its child's result (idempotent per child). */
  notifyParent(parent: ParentLink, childRunId: string): Promise<void> {
    return this.queue.enqueueResume(parent, childRunId);
  }
}

