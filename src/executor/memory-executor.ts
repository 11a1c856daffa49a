import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { ErrorCodes, LimitExceededError, SwitchyardError } from '../errors.js';
import { jsonBytes, Limits } from '../types/limits.js';
import { silentLogger, type Logger } from '../logger.js';
import type { ChildRuns, NodeKindRegistry, NodeResult } from '../types/node-kind.js';
import { sumUsage } from '../types/usage.js';
import type { BlueprintRegistry } from '../blueprint/load.js';
import { compileGraph, type CompiledNode, type Graph } from '../engine/graph.js';
import { childRunId } from '../types/ids.js';
import type { RunView } from '../types/run-view.js';
import { beginNode, cancelRun, completeNode, createRunState, decideEdges, failRun, type RunState } from '../engine/transitions.js';
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
  /** How deep this run is in subflow child runs (0 for a run started by a user); set for child runs. @default 0 */
  subflowDepth?: number;
}

/**
 * Runs a blueprint in this process with the same semantics as the distributed engine (same transitions,
 * same node-attempt policy: {@link runAttempt}), without Redis. Used for `switchyard run --local` and as
 * the oracle in tests.
 */
export async function runInMemory(graph: Graph, options: MemoryRunOptions): Promise<RunView> {
  const runId = options.runId ?? randomUUID();
  const logger = options.logger ?? silentLogger;
  const context: Record<string, unknown> = Object.assign(Object.create(null), options.input ?? {});
  // The run's context size, as the distributed engine counts it: JSON bytes per key, summed.
  const contextBytes = new Map<string, number>(Object.entries(context).map(([key, value]) => [key, jsonBytes(value)]));
  let contextTotal = [...contextBytes.values()].reduce((a, b) => a + b, 0);
  checkContextSize(contextTotal, 'the run\'s input');
  const depth = options.subflowDepth ?? 0;
  const outputs: Record<string, unknown> = Object.create(null);
  const extras = graph.nodes.map(() => ({}) as { childRunId?: string; usage?: NodeResult['usage']; meta?: NodeResult['meta'] });
  const children = new Map<string, Promise<RunView>>();
  const { state, ready } = createRunState(graph);
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // every in-flight node listens to the run's abort signal
  const onCancel = () => {
    if (cancelRun(state)) abort.abort();
  };
  options.signal?.addEventListener('abort', onCancel, { once: true });
  if (options.signal?.aborted) onCancel();

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
    for (let attempt = 1; ; attempt++) {
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
        runEnded,
      });
      switch (outcome.kind) {
        case 'result':
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

  /** A subflow node's child run ran in this process: its final state, for the kind's `resume`. */
  function awaitChild(node: CompiledNode, id: string): Promise<RunView> {
    const child = children.get(id);
    if (!child) throw new SwitchyardError(ErrorCodes.INTERNAL, `node waits for unknown child run ${id}`, { nodeId: node.id });
    extras[node.index]!.childRunId = id;
    return child;
  }

  /** Child runs execute in this process too, cancelled with their parent. */
  function childRuns(node: CompiledNode, attempt: number): ChildRuns {
    return {
      async start(blueprintId, input) {
        const loaded = options.blueprints?.get(blueprintId);
        if (!loaded) throw new SwitchyardError(ErrorCodes.BLUEPRINT_NOT_FOUND, `no blueprint "${blueprintId}"`, { nodeId: node.id });
        if (depth + 1 > Limits.MAX_SUBFLOW_DEPTH) {
          throw new LimitExceededError('MAX_SUBFLOW_DEPTH', depth + 1, Limits.MAX_SUBFLOW_DEPTH, `the subflow depth of a child run of "${blueprintId}"`, { nodeId: node.id });
        }
        const id = childRunId(runId, node.id, attempt);
        if (!children.has(id)) {
          const childGraph = compileGraph(loaded, options.kinds);
          children.set(id, runInMemory(childGraph, { ...options, input, runId: id, signal: abort.signal, subflowDepth: depth + 1 }));
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
  options.signal?.removeEventListener('abort', onCancel);
  return toView(graph, runId, state, context, outputs, extras);
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
  extras: Array<{ childRunId?: string; usage?: NodeResult['usage']; meta?: NodeResult['meta'] }>,
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
  const usage = sumUsage(Object.values(view.nodes));
  if (usage) view.usage = usage;
  return view;
}
