import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { ErrorCodes, LimitExceededError, NodeNotWaitingError, SwitchyardError } from '../errors.js';
import { jsonBytes, Limits } from '../types/limits.js';
import { silentLogger, type Logger } from '../logger.js';
import type { ChildRuns, NodeKindRegistry, NodeResult, NodeSignal, ParkRequest } from '../types/node-kind.js';
import { sumUsage } from '../types/usage.js';
import type { BlueprintRegistry } from '../blueprint/load.js';
import { actionsOf, compileGraph, type CompiledNode, type Graph } from '../engine/graph.js';
import { childRunId, indexedChildRunId } from '../types/ids.js';
import type { FanOutProgress, RunView, SignalOutcome, WaitingNode } from '../types/run-view.js';
import { beginNode, cancelRun, completeNode, createRunState, decideEdges, failRun, parkNode, redriveRun, timeOutRun, type RunState } from '../engine/transitions.js';
import { runAttempt, serializeFailure } from './attempt-policy.js';

export interface MemoryRunOptions {
  kinds: NodeKindRegistry;
  /** Blueprints that subflow nodes can run as child runs (in this process too). */
  blueprints?: BlueprintRegistry;
  input?: Record<string, unknown>;
  runId?: string;
  /** Aborting it cancels the run. */
  signal?: AbortSignal;
  logger?: Logger;
  /** The run's deadline, from its start: past it the run fails with RUN_TIMEOUT. @default none */
  timeoutMs?: number;
  /** Where signals for the waiting nodes of this run (and of its child runs) come from. @default none: waits end only by timeout */
  signals?: MemorySignals;
  /** How deep this run is in subflow child runs (0 for a run started by a user); set for child runs. @default 0 */
  subflowDepth?: number;
  /**
   * Redrives the run this view is the end of (a view `runInMemory` returned in this process, failed or
   * cancelled): its failed and cancelled nodes and those never reached because of them run again, done
   * nodes keep their outputs and do not run again, and the failed child runs of subflow/map/loop nodes are
   * redriven in place (their done children are not run again). The run keeps its id (`runId` is ignored)
   * and its context; `input` is ignored. Throws VALIDATION for another view, RUN_NOT_REDRIVABLE-like
   * VALIDATION for a running or completed one.
   */
  redriveFrom?: RunView;
}

/** What a redrive of an in-memory run needs beyond its view: the run's own state and its child runs' views. */
interface MemoryRunRecord {
  state: RunState;
  children: Map<string, RunView>;
}
/** The end of each run `runInMemory` returned, by its view (so only views of this process can be redriven). */
const finishedRuns = new WeakMap<RunView, MemoryRunRecord>();

function recordOf(view: RunView): MemoryRunRecord {
  const record = finishedRuns.get(view);
  if (!record) throw new SwitchyardError(ErrorCodes.VALIDATION, `run "${view.runId}": only a view runInMemory returned in this process can be redriven`, { runId: view.runId });
  if (view.status !== 'failed' && view.status !== 'cancelled') {
    throw new SwitchyardError(ErrorCodes.VALIDATION, `run "${view.runId}" is ${view.status}: only a failed or cancelled run can be redriven`, { runId: view.runId });
  }
  return record;
}

/** A parked node of an in-memory run. */
export interface ParkedNotice {
  status: 'waiting' | 'sleeping';
  /** For a waiting node: what the run view lists. */
  waiting?: WaitingNode;
}

type SignalHandler = (nodeId: string, signal: NodeSignal) => SignalOutcome;

/**
 * The in-process signal entry point of {@link runInMemory}: what `POST /runs/{runId}/signals/{nodeId}`
 * is to the distributed engine, with the same answers (a {@link NodeNotWaitingError} for a node that is
 * not waiting, RUN_NOT_FOUND, NODE_NOT_FOUND, VALIDATION for an action no outgoing edge has).
 */
export class MemorySignals {
  private readonly runs = new Map<string, SignalHandler>();
  private readonly parked = new Map<string, ParkedNotice>();
  private readonly waiters = new Map<string, Array<(notice: ParkedNotice) => void>>();

  /** Completes a waiting node of a run in this process. */
  signal(runId: string, nodeId: string, signal: NodeSignal = {}): SignalOutcome {
    const handler = this.runs.get(runId);
    if (!handler) throw new SwitchyardError(ErrorCodes.RUN_NOT_FOUND, `no run "${runId}"`, { runId });
    return handler(nodeId, signal);
  }

  /**
   * Resolves once the node is parked (at once if it is now): `waiting`, with what the run view lists of
   * it, or `sleeping`.
   */
  whenParked(runId: string, nodeId: string): Promise<ParkedNotice> {
    const key = `${runId}\u0000${nodeId}`;
    const now = this.parked.get(key);
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => this.waiters.set(key, [...(this.waiters.get(key) ?? []), resolve]));
  }

  /** @internal runInMemory's side. */
  attach(runId: string, handler: SignalHandler): void {
    this.runs.set(runId, handler);
  }

  /** @internal A node parked (`notice`) or its park ended (undefined). */
  noteParked(runId: string, nodeId: string, notice: ParkedNotice | undefined): void {
    const key = `${runId}\u0000${nodeId}`;
    if (!notice) {
      this.parked.delete(key);
      return;
    }
    this.parked.set(key, notice);
    for (const wake of this.waiters.get(key) ?? []) wake(notice);
    this.waiters.delete(key);
  }
}

/**
 * Runs a blueprint in this process with the same semantics as the distributed engine (same transitions,
 * same node-attempt policy: {@link runAttempt}), without Redis. Used for `switchyard run --local` and as
 * the oracle in tests.
 */
export async function runInMemory(graph: Graph, options: MemoryRunOptions): Promise<RunView> {
  const from = options.redriveFrom;
  const previous = from && recordOf(from);
  const runId = from?.runId ?? options.runId ?? randomUUID();
  const logger = options.logger ?? silentLogger;
  const context: Record<string, unknown> = Object.assign(Object.create(null), from ? from.context : (options.input ?? {}));
  // The run's context size, as the distributed engine counts it: JSON bytes per key, summed.
  const contextBytes = new Map<string, number>(Object.entries(context).map(([key, value]) => [key, jsonBytes(value)]));
  let contextTotal = [...contextBytes.values()].reduce((a, b) => a + b, 0);
  checkContextSize(contextTotal, 'the run\'s input');
  const depth = options.subflowDepth ?? 0;
  const outputs: Record<string, unknown> = Object.assign(Object.create(null), from?.outputs ?? {});
  const extras = graph.nodes.map(() => ({}) as NodeExtras);
  /** Child runs by id: their end, and what cancels them alone (a map's other children once one failed it). */
  const children = new Map<string, { ended: Promise<RunView>; cancel: AbortController }>();
  /** The child runs the redriven run had, by id: started again, a child is redriven (or, done, reused). */
  const earlierChildren = previous?.children ?? new Map<string, RunView>();
  let state: RunState;
  let ready: number[];
  if (from && previous) {
    state = structuredClone(previous.state);
    // Nodes that started child runs run their attempt again with the same number, so the same children.
    const hadChildren = (index: number) => {
      const node = from.nodes[graph.nodes[index]!.id];
      return node?.childRunId !== undefined || node?.fanOut !== undefined;
    };
    ready = redriveRun(graph, state, hadChildren)!.ready;
    for (const n of graph.nodes) {
      const { usage, meta, childRunId: child, children: list, fanOut } = from.nodes[n.id] ?? {};
      if (state.nodes[n.index]!.status === 'done') Object.assign(extras[n.index]!, { usage, meta, childRunId: child, children: list, fanOut });
      for (const key of Object.keys(extras[n.index]!) as Array<keyof NodeExtras>) if (extras[n.index]![key] === undefined) delete extras[n.index]![key];
    }
  } else {
    ({ state, ready } = createRunState(graph));
  }
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // every in-flight node listens to the run's abort signal
  const onCancel = () => {
    if (cancelRun(state)) abort.abort();
  };
  options.signal?.addEventListener('abort', onCancel, { once: true });
  if (options.signal?.aborted) onCancel();
  const deadline =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          const error = { code: ErrorCodes.RUN_TIMEOUT, message: 'the run passed its deadline', retryable: false, name: 'SwitchyardError' };
          if (timeOutRun(state, error)) abort.abort();
        }, options.timeoutMs);
  /** Parked nodes (waiting, sleeping), by node index: how to end the park. */
  const parked = new Map<number, { end: () => void }>();
  options.signals?.attach(runId, (nodeId, signal) => {
    const node = graph.byId.get(nodeId);
    if (!node) throw new SwitchyardError(ErrorCodes.NODE_NOT_FOUND, `run "${runId}" has no node "${nodeId}"`, { runId, nodeId });
    if (signal.action !== undefined && !actionsOf(node).includes(signal.action)) {
      throw new SwitchyardError(ErrorCodes.VALIDATION, `no edge of node "${nodeId}" has the action "${signal.action}" (it has: ${actionsOf(node).join(', ') || 'none'})`, { runId, nodeId });
    }
    const status = state.nodes[node.index]!.status;
    const entry = parked.get(node.index);
    if (state.status !== 'running' || status !== 'waiting' || !entry) {
      throw new NodeNotWaitingError(`node "${nodeId}" is ${status}, not waiting for a signal`, status, { runId, nodeId });
    }
    entry.end();
    const result: NodeResult = {};
    if (signal.payload !== undefined) result.output = signal.payload;
    if (signal.action !== undefined) result.action = signal.action;
    finish(node, result, state.nodes[node.index]!.attempts);
    return { runId, nodeId, status: state.nodes[node.index]!.status, runStatus: state.status, ...(signal.action === undefined ? {} : { action: signal.action }) };
  });

  const inFlight = new Set<Promise<void>>();
  const schedule = (indices: readonly number[]) => {
    for (const index of indices) {
      const task = runNode(graph.nodes[index]!).finally(() => inFlight.delete(task));
      inFlight.add(task);
    }
  };

  const runEnded = () => state.status !== 'running';

  /** Attempts of one node under the shared policy; retries wait here, on a timer the run's abort ends. */
  async function runNode(node: CompiledNode): Promise<void> {
    // From the node's attempts so far: 0 but for a node a redrive runs again in place.
    for (let attempt = state.nodes[node.index]!.attempts + 1; ; attempt++) {
      if (!beginNode(state, node.index)) return;
      const outcome = await runAttempt({
        runId,
        blueprintId: graph.blueprintId,
        nodeId: node.id,
        definition: node.definition,
        kinds: options.kinds,
        context,
        outputs,
        attempt,
        timeoutMs: node.config.timeoutMs,
        signal: abort.signal,
        logger: logger.child({ runId, nodeId: node.id, attempt }),
        runs: childRuns(node, attempt),
        policy: node.config,
        awaitChild: (id) => awaitChild(node, id),
        cancelChild: (id) => children.get(id)?.cancel.abort(),
        onFanOutProgress: (progress) => (extras[node.index]!.fanOut = progress),
        runEnded,
      });
      switch (outcome.kind) {
        case 'result':
          if (outcome.result.park) return park(node, outcome.result.park);
          return finish(node, outcome.result, attempt);
        case 'retry':
          state.nodes[node.index]!.status = 'queued';
          await sleep(outcome.delayMs, abort.signal);
          continue;
        case 'failed':
          return fail(node, outcome.error, attempt);
        case 'cancelled':
          return;
      }
    }
  }

  /**
   * Parks a node as the distributed engine does (`waiting` or `sleeping`, no attempt running): resolves
   * when the park ends, by its signal or timer (which complete it; the first wins) or by the run's end.
   */
  function park(node: CompiledNode, request: ParkRequest): Promise<void> {
    if (!parkNode(state, node.index, request.signal ? 'waiting' : 'sleeping')) return Promise.resolve();
    const since = Date.now();
    if (request.until !== undefined) extras[node.index]!.wakeAt = request.until;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const end = () => {
        clearTimeout(timer);
        abort.signal.removeEventListener('abort', end);
        parked.delete(node.index);
        delete extras[node.index]!.wakeAt;
        options.signals?.noteParked(runId, node.id, undefined);
        resolve();
      };
      parked.set(node.index, { end });
      abort.signal.addEventListener('abort', end, { once: true });
      if (request.until !== undefined) {
        timer = setTimeout(() => {
          end();
          finish(node, request.wakeAction === undefined ? {} : { action: request.wakeAction }, state.nodes[node.index]!.attempts);
        }, Math.max(0, request.until - Date.now()));
      }
      const waiting: WaitingNode | undefined = request.signal && {
        nodeId: node.id,
        prompt: request.signal.prompt,
        since,
        ...(request.until === undefined ? {} : { timeoutAt: request.until }),
        actions: actionsOf(node),
      };
      options.signals?.noteParked(runId, node.id, waiting ? { status: 'waiting', waiting } : { status: 'sleeping' });
    });
  }

  /** A subflow node's child run ran in this process: its final state, for the kind's `resume`. */
  function awaitChild(node: CompiledNode, id: string): Promise<RunView> {
    const child = children.get(id);
    if (!child) throw new SwitchyardError(ErrorCodes.INTERNAL, `node waits for unknown child run ${id}`, { nodeId: node.id });
    // A fanning-out node's children show as its progress; one after another (a loop) as its children.
    const extra = extras[node.index]!;
    if (!extra.fanOut) {
      if (extra.childRunId && extra.childRunId !== id) extra.children = [...(extra.children ?? [extra.childRunId]), id];
      extra.childRunId = id;
    }
    return child.ended;
  }

  /** Child runs execute in this process too, cancelled with their parent. */
  function childRuns(node: CompiledNode, attempt: number): ChildRuns {
    return {
      async start(blueprintId, input, start) {
        const loaded = options.blueprints?.get(blueprintId);
        if (!loaded) throw new SwitchyardError(ErrorCodes.BLUEPRINT_NOT_FOUND, `no blueprint "${blueprintId}"`, { nodeId: node.id });
        const index = start?.index;
        if (depth + 1 > Limits.MAX_SUBFLOW_DEPTH) {
          throw new LimitExceededError('MAX_SUBFLOW_DEPTH', depth + 1, Limits.MAX_SUBFLOW_DEPTH, `the subflow depth of a child run of "${blueprintId}"`, { nodeId: node.id });
        }
        const id = index === undefined ? childRunId(runId, node.id, attempt) : indexedChildRunId(runId, node.id, attempt, index);
        if (!children.has(id)) {
          const childGraph = compileGraph(loaded, options.kinds);
          const cancel = new AbortController();
          const signal = AbortSignal.any([abort.signal, cancel.signal]);
          const parent = { runId, nodeId: node.id, ...(index === undefined ? {} : { index }) };
          const earlier = earlierChildren.get(id);
          let ended: Promise<RunView>;
          if (earlier?.status === 'completed') {
            // A child that completed before the redrive is not run again.
            ended = Promise.resolve(earlier);
          } else {
            // A child run has no deadline of its own: the parent's end (its deadline included) ends it.
            const childOptions: MemoryRunOptions = { ...options, input, runId: id, signal, timeoutMs: undefined, redriveFrom: earlier, subflowDepth: depth + 1 };
            ended = runInMemory(childGraph, childOptions).then((view) => {
              const withParent = { ...view, parent };
              const record = finishedRuns.get(view);
              if (record) finishedRuns.set(withParent, record);
              return withParent;
            });
          }
          children.set(id, { ended, cancel });
        }
        return id;
      },
    };
  }

  function finish(node: CompiledNode, result: NodeResult, attempt: number): void {
    if (state.status !== 'running') return;
    // The context limit, checked before anything of the result is applied (as completeNode does).
    const writes = Object.entries(result.context ?? {}).filter(([, value]) => value !== undefined);
    let total = contextTotal;
    for (const [key, value] of writes) total += jsonBytes(value) - (contextBytes.get(key) ?? 0);
    if (total > Limits.MAX_CONTEXT_BYTES) {
      const err = new LimitExceededError('MAX_CONTEXT_BYTES', total, Limits.MAX_CONTEXT_BYTES, 'the run\'s context (bytes of JSON) after this node\'s writes', { nodeId: node.id });
      return fail(node, err, attempt);
    }
    for (const [key, value] of writes) contextBytes.set(key, jsonBytes(value));
    contextTotal = total;
    if (result.usage) extras[node.index]!.usage = result.usage;
    if (result.meta) extras[node.index]!.meta = result.meta;
    for (const [key, value] of Object.entries(result.context ?? {})) context[key] = value;
    if (result.output !== undefined) outputs[node.id] = result.output;
    const taken = decideEdges(node, result, { context, outputs });
    const transition = completeNode(graph, state, node.index, taken);
    if (transition) schedule(transition.ready);
  }

  function fail(node: CompiledNode, err: unknown, attempt: number): void {
    if (failRun(state, node.index, node.id, serializeFailure(err, attempt))) abort.abort();
  }

  schedule(ready);
  while (inFlight.size > 0) await Promise.race(inFlight);
  clearTimeout(deadline);
  options.signal?.removeEventListener('abort', onCancel);
  // Every child ends with its parent (cancelled children promptly): their views, for a later redrive.
  const childViews = new Map(earlierChildren);
  for (const [id, child] of children) {
    const view = await child.ended.catch(() => undefined);
    if (view) childViews.set(id, view);
  }
  const view = toView(graph, runId, state, context, outputs, extras);
  finishedRuns.set(view, { state: structuredClone(state), children: childViews });
  return view;
}

/** What a node's view shows beyond its state: child runs, map progress, tokens, meta, a park's wake time. */
interface NodeExtras {
  childRunId?: string;
  children?: string[];
  fanOut?: FanOutProgress;
  usage?: NodeResult['usage'];
  meta?: NodeResult['meta'];
  wakeAt?: number;
}

/** Refuses a run whose input alone is over the context limit (the distributed engine refuses it at start too). */
function checkContextSize(bytes: number, what: string): void {
  if (bytes > Limits.MAX_CONTEXT_BYTES) throw new LimitExceededError('MAX_CONTEXT_BYTES', bytes, Limits.MAX_CONTEXT_BYTES, `${what} (bytes of JSON)`);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

function toView(
  graph: Graph,
  runId: string,
  state: RunState,
  context: Record<string, unknown>,
  outputs: Record<string, unknown>,
  extras: NodeExtras[],
): RunView {
  const view: RunView = {
    runId,
    blueprintId: graph.blueprintId,
    version: graph.version,
    status: state.status,
    context: { ...context },
    outputs: { ...outputs },
    nodes: Object.fromEntries(
      graph.nodes.map((n) => {
        const s = state.nodes[n.index]!;
        return [n.id, { status: s.status, attempts: s.attempts, ...(s.error ? { error: s.error } : {}), ...extras[n.index] }];
      }),
    ),
  };
  if (state.error) view.error = state.error;
  if (state.redrives) view.redrives = state.redrives;
  const usage = sumUsage(Object.values(view.nodes));
  if (usage) view.usage = usage;
  return view;
}
