import type { NodeDefinition } from '../blueprint/schema.js';
import { ErrorCodes, LimitExceededError, NonRetryableError, SwitchyardError } from '../errors.js';
import { jsonBytes, Limits } from '../types/limits.js';
import type { Logger } from '../logger.js';
import type { ChildRuns, NodeContext, NodeKindRegistry, NodeResult } from '../types/node-kind.js';
import type { RunView } from '../types/run-view.js';

/** What running one node definition needs: where it runs, its inputs, its attempt, signal and limits. */
export interface ExecuteNodeOptions {
  runId: string;
  blueprintId: string;
  nodeId: string;
  /** The definition to run: the node's own, or its fallback's. */
  definition: NodeDefinition;
  kinds: NodeKindRegistry;
  context: Record<string, unknown>;
  outputs: Record<string, unknown>;
  attempt: number;
  timeoutMs: number | undefined;
  /** Fires when the run is cancelled or fails elsewhere. */
  signal: AbortSignal;
  logger: Logger;
  runs: ChildRuns;
}

const parsedParams = new WeakMap<NodeDefinition, unknown>();

function paramsFor(definition: NodeDefinition, kind: Kind, nodeId: string): unknown {
  if (parsedParams.has(definition)) return parsedParams.get(definition);
  const raw = definition.params ?? {};
  let params: unknown = raw;
  if (kind.params) {
    const parsed = kind.params.safeParse(raw);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`).join('; ');
      throw new NonRetryableError(`invalid params for "${definition.uses}": ${detail}`, { nodeId });
    }
    params = parsed.data;
  }
  parsedParams.set(definition, params);
  return params;
}

/**
 * Runs one attempt of a node: resolves its kind and params, gives it an AbortSignal that fires on
 * cancellation and on its timeout, and stops waiting for it when that signal fires (a kind that ignores
 * its signal cannot hold the run). Throws a {@link SwitchyardError} on failure. Executors call it through
 * `runAttempt` (attempt-policy.ts), which decides what a failure leads to: retry, fallback or failing.
 */
export function executeNode(options: ExecuteNodeOptions): Promise<NodeResult> {
  return invoke(options, (kind, ctx) => kind.run(ctx));
}

/**
 * Finishes a node that waited for a child run: hands the child's final state to the kind's `resume`.
 * Same signal, timeout and error handling as {@link executeNode}.
 */
export function resumeNode(options: ExecuteNodeOptions, child: RunView): Promise<NodeResult> {
  return invoke(options, (kind, ctx) => {
    if (!kind.resume) throw new NonRetryableError(`node kind "${kind.name}" waited for a child run but cannot resume`, { nodeId: options.nodeId });
    return kind.resume(ctx, child);
  });
}

/**
 * What one ended child run of a fanning-out node (map) contributes: the kind's `collect`. Same signal,
 * timeout and error handling as {@link executeNode}; a throw means the child fails the node.
 */
export function collectChild(options: ExecuteNodeOptions, child: RunView): Promise<unknown> {
  return invoke(options, async (kind, ctx) => {
    if (!kind.collect) throw new NonRetryableError(`node kind "${kind.name}" fanned out to child runs but cannot collect them`, { nodeId: options.nodeId });
    return { output: await kind.collect(ctx, child) };
  }).then((result) => result.output);
}

/** A fanning-out node's result from its children's collected values (input order): the kind's `gather`. */
export function gatherChildren(options: ExecuteNodeOptions, values: unknown[]): Promise<NodeResult> {
  return invoke(options, (kind, ctx) => {
    if (!kind.gather) throw new NonRetryableError(`node kind "${kind.name}" fanned out to child runs but cannot gather them`, { nodeId: options.nodeId });
    return kind.gather(ctx, values);
  });
}

type Kind = NonNullable<ReturnType<NodeKindRegistry['get']>>;

async function invoke(options: ExecuteNodeOptions, call: (kind: Kind, ctx: NodeContext<unknown>) => Promise<NodeResult> | NodeResult): Promise<NodeResult> {
  const { definition, nodeId, runId } = options;
  const kind = options.kinds.get(definition.uses);
  if (!kind) {
    throw new SwitchyardError(ErrorCodes.UNKNOWN_NODE_KIND, `unknown node kind "${definition.uses}" on this worker`, { nodeId, runId });
  }
  const params = paramsFor(definition, kind, nodeId);
  const signals = [options.signal];
  if (options.timeoutMs !== undefined) signals.push(AbortSignal.timeout(options.timeoutMs));
  const signal = signals.length === 1 ? options.signal : AbortSignal.any(signals);
  const { context, outputs } = options;
  const ctx: NodeContext<unknown> = {
    runId,
    nodeId,
    blueprintId: options.blueprintId,
    params,
    context,
    outputs,
    resolve: (name) => (Object.hasOwn(context, name) ? context[name] : Object.hasOwn(outputs, name) ? outputs[name] : undefined),
    signal,
    attempt: options.attempt,
    idempotencyKey: `${runId}:${nodeId}`,
    logger: options.logger,
    runs: options.runs,
  };
  if (signal.aborted) throw abortReason(options);
  let pending: Promise<NodeResult> | NodeResult;
  try {
    pending = call(kind, ctx);
  } catch (err) {
    throw signal.aborted ? abortReason(options) : toNodeError(err, nodeId, options.attempt);
  }
  // A kind that answered at once (template, route, ...) cannot be interrupted: no race to set up.
  if (!isThenable(pending)) return checkResult(pending, nodeId);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortReason(options));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined); // only observed through the race below
  const result = await Promise.race([pending, aborted])
    .catch((err: unknown) => {
      throw signal.aborted ? abortReason(options) : toNodeError(err, nodeId, options.attempt);
    })
    .finally(() => signal.removeEventListener('abort', onAbort!));
  return checkResult(result, nodeId);
}

function isThenable(value: unknown): value is PromiseLike<NodeResult> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

function abortReason(options: ExecuteNodeOptions): SwitchyardError {
  if (options.signal.aborted) {
    return new SwitchyardError(ErrorCodes.CANCELLED, 'run was cancelled', { nodeId: options.nodeId, attempt: options.attempt });
  }
  return new SwitchyardError(ErrorCodes.NODE_TIMEOUT, `node timed out after ${options.timeoutMs} ms`, {
    nodeId: options.nodeId,
    attempt: options.attempt,
    retryable: true,
  });
}

function toNodeError(err: unknown, nodeId: string, attempt: number): SwitchyardError {
  if (err instanceof SwitchyardError) return err;
  const message = err instanceof Error ? err.message || err.name : String(err);
  return new SwitchyardError(ErrorCodes.NODE_FAILED, message, { nodeId, attempt, retryable: true, cause: err });
}

function checkResult(result: unknown, nodeId: string): NodeResult {
  if (result === undefined || result === null) return {};
  if (typeof result !== 'object' || Array.isArray(result)) {
    throw new NonRetryableError('a node kind must return an object { output?, action?, context? }', { nodeId });
  }
  const r = result as NodeResult;
  if (r.action !== undefined && typeof r.action !== 'string') {
    throw new NonRetryableError('a node result\'s "action" must be a string', { nodeId });
  }
  if (r.context !== undefined && (typeof r.context !== 'object' || r.context === null || Array.isArray(r.context))) {
    throw new NonRetryableError('a node result\'s "context" must be an object of key -> value', { nodeId });
  }
  if (r.waitFor !== undefined && typeof r.waitFor?.runId !== 'string') {
    throw new NonRetryableError('a node result\'s "waitFor" must be { runId }', { nodeId });
  }
  if (r.park !== undefined && (typeof r.park !== 'object' || r.park === null || (r.park.until !== undefined && !Number.isFinite(r.park.until)) || (r.park.until === undefined && !r.park.signal))) {
    throw new NonRetryableError('a node result\'s "park" must be { until?: epoch ms, signal?: { prompt } } with at least one of them', { nodeId });
  }
  if (r.fanOut !== undefined) checkFanOut(r.fanOut, nodeId);
  if (r.output !== undefined) {
    let bytes: number;
    try {
      bytes = jsonBytes(r.output);
    } catch (err) {
      // A cycle or a BigInt: it could never be stored (nor sent across the queue).
      throw new NonRetryableError(`a node's output must be JSON: ${err instanceof Error ? err.message : String(err)}`, { nodeId });
    }
    if (bytes > Limits.MAX_NODE_OUTPUT_BYTES) {
      throw new LimitExceededError('MAX_NODE_OUTPUT_BYTES', bytes, Limits.MAX_NODE_OUTPUT_BYTES, 'the node\'s output (bytes of JSON)', { nodeId });
    }
  }
  return r;
}

function checkFanOut(fanOut: NodeResult['fanOut'], nodeId: string): void {
  const ok =
    typeof fanOut === 'object' &&
    fanOut !== null &&
    typeof fanOut.blueprintId === 'string' &&
    Array.isArray(fanOut.each) &&
    fanOut.each.length > 0 &&
    Number.isInteger(fanOut.concurrency) &&
    fanOut.concurrency >= 1;
  if (!ok) throw new NonRetryableError('a node result\'s "fanOut" must be { blueprintId, each: [at least one input], concurrency >= 1 }', { nodeId });
}
