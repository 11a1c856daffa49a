import { describe, expect, it } from 'vitest';
import type { NodeDefinition } from '../src/blueprint/schema.js';
import type { RunView } from '../src/types/run-view.js';
import { ErrorCodes, NonRetryableError, SwitchyardError } from '../src/errors.js';
import {
  computeRetryDelayMs,
  decideAfterFailure,
  runAttempt,
  serializeFailure,
  type AttemptDecision,
  type AttemptFailure,
  type AttemptOptions,
  type AttemptPolicy,
} from '../src/executor/attempt-policy.js';
import { silentLogger, type Logger } from '../src/logger.js';
import { NodeKindRegistry, type NodeKind } from '../src/types/node-kind.js';

// Pure: no Redis, no queue. The policy is a table; runAttempt gets fake node kinds at the boundary.

const fallback: NodeDefinition = { id: 'backup', uses: 'backup' };
const retries = (maxRetries: number, withFallback = false): AttemptPolicy => ({
  maxRetries,
  retryDelayMs: 100,
  fallback: withFallback ? fallback : undefined,
});
const cancelled = new SwitchyardError(ErrorCodes.CANCELLED, 'run was cancelled');
const timedOut = new SwitchyardError(ErrorCodes.NODE_TIMEOUT, 'node timed out', { retryable: true });
const fatal = new NonRetryableError('bad params');
const boom = new Error('boom');

describe('decideAfterFailure', () => {
  const table: Array<[name: string, policy: AttemptPolicy, failure: AttemptFailure, expected: AttemptDecision]> = [
    ['a cancellation stops quietly, retries left or not', retries(3), { attempt: 1, error: cancelled }, { kind: 'cancelled' }],
    ['a cancellation of the fallback stops quietly', retries(0, true), { attempt: 1, error: cancelled, fromFallback: true }, { kind: 'cancelled' }],
    ['an ended run stops quietly whatever the error', retries(3, true), { attempt: 1, error: boom, runEnded: true }, { kind: 'cancelled' }],
    ['a plain Error retries after retryDelayMs', retries(2), { attempt: 1, error: boom }, { kind: 'retry', delayMs: 100 }],
    ['the second retry waits twice as long', retries(2), { attempt: 2, error: boom }, { kind: 'retry', delayMs: 200 }],
    ['a thrown non-Error is retryable too', retries(1), { attempt: 1, error: 'oops' }, { kind: 'retry', delayMs: 100 }],
    ['a retryable SwitchyardError (timeout) retries', retries(1), { attempt: 1, error: timedOut }, { kind: 'retry', delayMs: 100 }],
    ['exhausted retries without a fallback fail', retries(2), { attempt: 3, error: boom }, { kind: 'fail' }],
    ['exhausted retries with a fallback run it', retries(2, true), { attempt: 3, error: boom }, { kind: 'fallback', fallback }],
    ['no retries configured: fail at once', retries(0), { attempt: 1, error: boom }, { kind: 'fail' }],
    ['a non-retryable error skips the retries', retries(3), { attempt: 1, error: fatal }, { kind: 'fail' }],
    ['a non-retryable error goes to the fallback', retries(3, true), { attempt: 1, error: fatal }, { kind: 'fallback', fallback }],
    ['a resumed step is never repeated', retries(3), { attempt: 1, error: boom, repeatable: false }, { kind: 'fail' }],
    ['a resumed step falls back', retries(3, true), { attempt: 1, error: boom, repeatable: false }, { kind: 'fallback', fallback }],
    ['a failed fallback fails, retries left or not', retries(3, true), { attempt: 1, error: boom, fromFallback: true }, { kind: 'fail' }],
  ];
  it.each(table)('%s', (_name, policy, failure, expected) => {
    expect(decideAfterFailure(policy, failure)).toEqual(expected);
  });
});

describe('computeRetryDelayMs', () => {
  it.each([
    [250, 1, 250],
    [250, 2, 500],
    [250, 3, 1000],
    [250, 4, 2000],
    [0, 5, 0],
  ])('retryDelayMs %i, attempt %i: %i ms', (retryDelayMs, attempt, expected) => {
    expect(computeRetryDelayMs({ retryDelayMs }, attempt)).toBe(expected);
  });
});

describe('serializeFailure', () => {
  it('records the attempt unless the error carries its own', () => {
    expect(serializeFailure(boom, 3)).toMatchObject({ code: ErrorCodes.NODE_FAILED, message: 'boom', attempt: 3 });
    const own = new SwitchyardError(ErrorCodes.NODE_FAILED, 'x', { attempt: 1 });
    expect(serializeFailure(own, 3).attempt).toBe(1);
  });
});

describe('runAttempt', () => {
  const child: RunView = { runId: 'child', blueprintId: 'b', version: 'v', status: 'completed', context: {}, outputs: { c: 42 }, nodes: {} };

  function kinds(...list: NodeKind<any>[]): NodeKindRegistry {
    return new NodeKindRegistry(list);
  }
  const ok: NodeKind = { name: 'ok', run: () => ({ output: 'ok' }) };
  const fails: NodeKind = { name: 'fails', run: async () => Promise.reject(new Error('primary down')) };
  const backup: NodeKind = { name: 'backup', run: () => ({ output: 'from fallback' }) };
  const backupFails: NodeKind = { name: 'backup', run: async () => Promise.reject(new Error('backup down')) };
  const waits: NodeKind = {
    name: 'waits',
    run: () => ({ waitFor: { runId: 'child' } }),
    resume: (_ctx, ended) => ({ output: ended.outputs.c }),
  };
  const hangs: NodeKind = { name: 'hangs', run: () => new Promise(() => undefined) };

  function attempt(uses: string, registry: NodeKindRegistry, extra: Partial<AttemptOptions> = {}): AttemptOptions {
    return {
      runId: 'r1',
      blueprintId: 'b',
      nodeId: 'n',
      definition: { id: 'n', uses },
      kinds: registry,
      context: {},
      outputs: {},
      attempt: 1,
      timeoutMs: undefined,
      signal: new AbortController().signal,
      logger: silentLogger,
      runs: { start: async () => 'child' },
      policy: retries(1, true),
      ...extra,
    };
  }

  it('returns the result of a node that succeeds', async () => {
    expect(await runAttempt(attempt('ok', kinds(ok)))).toEqual({ kind: 'result', result: { output: 'ok' } });
  });

  it('asks for a retry with the back-off while retries are left', async () => {
    const outcome = await runAttempt(attempt('fails', kinds(fails, backup), { attempt: 1, policy: { ...retries(2), retryDelayMs: 50 } }));
    expect(outcome.kind).toBe('retry');
    expect(outcome.kind === 'retry' && outcome.delayMs).toBe(50);
    expect(outcome.kind === 'retry' && (outcome.error as Error).message).toBe('primary down');
  });

  it('runs the fallback once retries are exhausted, and notes it only when asked', async () => {
    const lines: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (msg) => lines.push(msg), child: () => logger };
    const quiet = await runAttempt(attempt('fails', kinds(fails, backup), { attempt: 2, logger }));
    expect(quiet).toEqual({ kind: 'result', result: { output: 'from fallback' } });
    expect(lines).toEqual([]);
    await runAttempt(attempt('fails', kinds(fails, backup), { attempt: 2, logger, logFallback: true }));
    expect(lines).toEqual(['node failed; running its fallback']);
  });

  it("fails with the fallback's error when the fallback fails too", async () => {
    const outcome = await runAttempt(attempt('fails', kinds(fails, backupFails), { attempt: 2 }));
    expect(outcome.kind).toBe('failed');
    expect(outcome.kind === 'failed' && (outcome.error as Error).message).toBe('backup down');
  });

  it('fails without a fallback once retries are exhausted', async () => {
    const outcome = await runAttempt(attempt('fails', kinds(fails), { attempt: 2, policy: retries(1) }));
    expect(outcome.kind === 'failed' && (outcome.error as Error).message).toBe('primary down');
  });

  it('is cancelled when the run is aborted, without retry or fallback', async () => {
    const controller = new AbortController();
    controller.abort();
    expect(await runAttempt(attempt('fails', kinds(fails, backup), { signal: controller.signal }))).toEqual({ kind: 'cancelled' });
  });

  it('is cancelled when the executor says its run has ended', async () => {
    expect(await runAttempt(attempt('fails', kinds(fails, backup), { runEnded: () => true }))).toEqual({ kind: 'cancelled' });
  });

  it('turns a timeout into a retryable failure', async () => {
    const outcome = await runAttempt(attempt('hangs', kinds(hangs), { timeoutMs: 5, policy: retries(1) }));
    expect(outcome.kind).toBe('retry');
    expect(outcome.kind === 'retry' && (outcome.error as SwitchyardError).code).toBe(ErrorCodes.NODE_TIMEOUT);
  });

  it('returns a waitFor result for the executor to park, without awaitChild', async () => {
    expect(await runAttempt(attempt('waits', kinds(waits)))).toEqual({ kind: 'result', result: { waitFor: { runId: 'child' } } });
  });

  it('resumes within the attempt with awaitChild (in-process child runs)', async () => {
    const awaited: string[] = [];
    const outcome = await runAttempt(attempt('waits', kinds(waits), { awaitChild: async (id) => (awaited.push(id), child) }));
    expect(outcome).toEqual({ kind: 'result', result: { output: 42 } });
    expect(awaited).toEqual(['child']);
  });

  it('resumes an ended child with endedChild, and never retries that step', async () => {
    expect(await runAttempt(attempt('waits', kinds(waits), { endedChild: async () => child }))).toEqual({ kind: 'result', result: { output: 42 } });
    const gone = async (): Promise<RunView> => Promise.reject(new Error('child gone'));
    const outcome = await runAttempt(attempt('waits', kinds(waits), { endedChild: gone, policy: retries(3) }));
    expect(outcome.kind === 'failed' && (outcome.error as Error).message).toBe('child gone');
    const fellBack = await runAttempt(attempt('waits', kinds(waits, backup), { endedChild: gone, policy: retries(3, true) }));
    expect(fellBack).toEqual({ kind: 'result', result: { output: 'from fallback' } });
  });
});
