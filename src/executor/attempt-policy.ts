import type { NodeDefinition } from '../blueprint/schema.js';
import { ErrorCodes, serializeError, SwitchyardError, type SerializedError } from '../errors.js';
import type { FanOutProgress, RunView } from '../types/run-view.js';
import type { FanOut, NodeResult } from '../types/node-kind.js';
import { collectChild, executeNode, gatherChildren, resumeNode, type ExecuteNodeOptions } from './execute-node.js';

/**
 * One node-attempt policy for every executor (the in-memory one and the BullMQ worker): whether a failed
 * attempt stops quietly, retries after a back-off, hands over to the node's fallback or fails the run, and
 * {@link runAttempt}, which runs one attempt (and the fallback) under that policy. The executors only
 * apply the {@link AttemptOutcome} their own way: in-memory state and a timer, or Redis scripts and a
 * delayed job.
 */

/** What a node's resolved config says about its attempts (a `ResolvedNodeConfig` is one). */
export interface AttemptPolicy {
  /** Attempts after the first; attempt `n` may be retried while `n <= maxRetries`. */
  maxRetries: number;
  /** Back-off before the first retry; doubled for each further one. */
  retryDelayMs: number;
  /** Run instead once retries are exhausted (or the error is not retryable). */
  fallback: NodeDefinition | undefined;
}

/** A failed attempt, as {@link decideAfterFailure} needs it. */
export interface AttemptFailure {
  /** 1 for the first attempt. */
  attempt: number;
  error: unknown;
  /**
   * False when the step may not be repeated whatever the error says: a resumed subflow step, whose child
   * run has ended (running the node again would start another child). @default true
   */
  repeatable?: boolean;
  /** The error is the fallback's: nothing is left to try. @default false */
  fromFallback?: boolean;
  /**
   * The executor already knows its run has ended (the in-memory executor reads its state): the error is
   * then a consequence, not a failure, and the attempt stops quietly. @default false
   */
  runEnded?: boolean;
}

/** What to do after a failed attempt. */
export type AttemptDecision =
  | { kind: 'cancelled' }
  | { kind: 'retry'; delayMs: number }
  | { kind: 'fallback'; fallback: NodeDefinition }
  | { kind: 'fail' };

/** How one attempt ended, for the executor to apply. */
export type AttemptOutcome =
  /** The node (or its fallback) produced a result; it may still be `waitFor` a child run. */
  | { kind: 'result'; result: NodeResult }
  /** Run the node again as attempt + 1 after `delayMs`. */
  | { kind: 'retry'; delayMs: number; error: unknown }
  /** Retries and fallback are exhausted: fail the run with `error`. */
  | { kind: 'failed'; error: unknown }
  /** The run was cancelled or ended elsewhere: record nothing. */
  | { kind: 'cancelled' };

/** True for the error a node's attempt ends with when its run was cancelled or failed elsewhere. */
export function isCancelled(err: unknown): boolean {
  return err instanceof SwitchyardError && err.code === ErrorCodes.CANCELLED;
}

/** Whether running the same thing again may succeed: anything but a SwitchyardError that says no. */
export function isRetryable(err: unknown): boolean {
  return !(err instanceof SwitchyardError) || err.retryable;
}

/** The message of any thrown value, for log lines. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Exponential back-off before retrying after `attempt` failed: `retryDelayMs * 2 ** (attempt - 1)`. */
export function computeRetryDelayMs(policy: Pick<AttemptPolicy, 'retryDelayMs'>, attempt: number): number {
  return policy.retryDelayMs * 2 ** (attempt - 1);
}

/** The error a failed node is stored with: its wire form, with the attempt it failed on unless it says. */
export function serializeFailure(err: unknown, attempt: number): SerializedError {
  const error = serializeError(err);
  error.attempt ??= attempt;
  return error;
}

// Shared constants: deciding to stop or to fail allocates nothing.
const CANCELLED = Object.freeze({ kind: 'cancelled' } as const);
const FAIL = Object.freeze({ kind: 'fail' } as const);

/**
 * Decides, purely, what follows a failed attempt: a cancellation (or an ended run) stops quietly; a
 * fallback's failure fails; a retryable error with retries left retries after the back-off; otherwise the
 * fallback runs if the node has one, else the node fails.
 */
export function decideAfterFailure(policy: AttemptPolicy, failure: AttemptFailure): AttemptDecision {
  const { attempt, error } = failure;
  if (isCancelled(error) || failure.runEnded === true) return CANCELLED;
  if (failure.fromFallback === true) return FAIL;
  if (failure.repeatable !== false && isRetryable(error) && attempt <= policy.maxRetries) {
    return { kind: 'retry', delayMs: computeRetryDelayMs(policy, attempt) };
  }
  return policy.fallback ? { kind: 'fallback', fallback: policy.fallback } : FAIL;
}

/** One attempt of a node: what {@link executeNode} takes (the node's own definition), plus its policy. */
export interface AttemptOptions extends ExecuteNodeOptions {
  /** Retries, back-off and fallback: the node's resolved config. */
  policy: AttemptPolicy;
  /**
   * Set when this step finishes a node whose child run has ended (the worker's resume job): gives the
   * child's final state, which goes to the kind's `resume` instead of `run`. Failing to get it fails the
   * step; such a step is never retried.
   */
  endedChild?: () => Promise<RunView>;
  /**
   * Set when this step finishes a parked node some other way (the worker, once every child of a
   * fanning-out node is in: its `gather`, or the failure one child caused): called instead of the kind's
   * `run`. Like a resumed step, it is never retried.
   */
  continueWith?: (options: ExecuteNodeOptions) => Promise<NodeResult>;
  /**
   * Set by an executor that runs child runs in process (the in-memory one): a node (or fallback) that
   * returns `waitFor` is resumed with the child's final state within the same attempt. Without it, a
   * `waitFor` result is returned for the executor to park the node.
   */
  awaitChild?: (childRunId: string) => Promise<RunView>;
  /** With `awaitChild`: cancels a child run still in flight (a map's other children once one failed it). */
  cancelChild?: (childRunId: string) => void;
  /** With `awaitChild`: told how a fanning-out node's children stand, each time one ends. */
  onFanOutProgress?: (progress: FanOutProgress) => void;
  /** Asked after a failure: true when the executor knows the run has ended. @default never */
  runEnded?: () => boolean;
  /** Note on `logger` when the fallback takes over (the worker does; `run --local` never has). @default false */
  logFallback?: boolean;
}

/**
 * Runs one attempt of a node (timeout and abort signal as {@link executeNode} applies them) and, when the
 * policy says so, its fallback; returns what the executor must do next. Never throws for the node's
 * errors: they come back as a `retry` or `failed` outcome (or `cancelled`).
 */
export async function runAttempt(options: AttemptOptions): Promise<AttemptOutcome> {
  let error: unknown;
  try {
    const result = await (options.continueWith
      ? options.continueWith(options)
      : options.endedChild
        ? resumeEnded(options, options.endedChild)
        : runDefinition(options, options.definition));
    return { kind: 'result', result };
  } catch (err) {
    error = err;
  }
  const { policy, attempt } = options;
  const repeatable = !options.endedChild && !options.continueWith;
  const decision = decideAfterFailure(policy, { attempt, error, repeatable, runEnded: options.runEnded?.() });
  switch (decision.kind) {
    case 'cancelled':
      return CANCELLED;
    case 'retry':
      return { kind: 'retry', delayMs: decision.delayMs, error };
    case 'fail':
      return { kind: 'failed', error };
    case 'fallback':
      break;
  }
  if (options.logFallback) options.logger.warn('node failed; running its fallback', { fallback: decision.fallback.uses, error: errorMessage(error) });
  try {
    return { kind: 'result', result: await runDefinition(options, decision.fallback) };
  } catch (fallbackErr) {
    const after = decideAfterFailure(policy, { attempt, error: fallbackErr, fromFallback: true, runEnded: options.runEnded?.() });
    return after.kind === 'cancelled' ? CANCELLED : { kind: 'failed', error: fallbackErr };
  }
}

/** Runs `definition` (the node's own or its fallback) and, in process, the child run it waits for. */
function runDefinition(options: AttemptOptions, definition: NodeDefinition): Promise<NodeResult> {
  const run = definition === options.definition ? options : { ...options, definition };
  const { awaitChild } = options;
  // The distributed hot path: executeNode's own promise, no extra async frame.
  if (!awaitChild) return executeNode(run);
  return executeNode(run).then(async (result) => {
    // A loop's resume asks for its next iteration's child: go on until the kind has its result.
    for (;;) {
      if (result.waitFor) result = await resumeNode(run, await awaitChild(result.waitFor.runId));
      else if (result.fanOut) result = await fanOutInProcess(run, result.fanOut, awaitChild);
      else return result;
    }
  });
}

/**
 * A fanning-out node's children in this process: at most `concurrency` in flight, each collected as it
 * ends, then gathered in input order. The first child whose collection throws fails the node, and the
 * children still in flight are cancelled.
 */
async function fanOutInProcess(run: AttemptOptions, fanOut: FanOut, awaitChild: (id: string) => Promise<RunView>): Promise<NodeResult> {
  const total = fanOut.each.length;
  const values: unknown[] = new Array<unknown>(total);
  const inFlight = new Map<number, { id: string; ended: Promise<{ index: number; child: RunView }> }>();
  const progress: FanOutProgress = { total, completed: 0, failed: 0, running: 0 };
  let next = 0;
  run.onFanOutProgress?.({ ...progress });
  const fill = async () => {
    while (next < total && inFlight.size < fanOut.concurrency) {
      if (run.signal.aborted) throw new SwitchyardError(ErrorCodes.CANCELLED, 'run was cancelled', { nodeId: run.nodeId, attempt: run.attempt });
      const index = next++;
      const id = await run.runs.start(fanOut.blueprintId, { ...fanOut.input, ...fanOut.each[index] }, { index });
      inFlight.set(index, { id, ended: awaitChild(id).then((child) => ({ index, child })) });
    }
    progress.running = inFlight.size;
    run.onFanOutProgress?.({ ...progress });
  };
  try {
    await fill();
    while (inFlight.size > 0) {
      const { index, child } = await Promise.race([...inFlight.values()].map((c) => c.ended));
      inFlight.delete(index);
      if (child.status === 'completed') progress.completed++;
      else progress.failed++;
      progress.running = inFlight.size;
      run.onFanOutProgress?.({ ...progress });
      values[index] = await collectChild(run, child);
      await fill();
    }
  } finally {
    for (const { id } of inFlight.values()) run.cancelChild?.(id);
  }
  return gatherChildren(run, values);
}

async function resumeEnded(options: AttemptOptions, endedChild: () => Promise<RunView>): Promise<NodeResult> {
  return resumeNode(options, await endedChild());
}
