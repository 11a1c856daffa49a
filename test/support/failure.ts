import { expect } from 'vitest';
import { SwitchyardError } from '../../src/errors.js';

/** A signal that never fires. */
export function signal(): AbortSignal {
  return new AbortController().signal;
}

/** The error a promise rejects with (failing the test if it resolves). */
export async function failureOf(promise: Promise<unknown>): Promise<SwitchyardError> {
  const outcome = await promise.then(
    (value) => ({ value }),
    (err: unknown) => ({ err }),
  );
  if (!('err' in outcome)) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.err).toBeInstanceOf(SwitchyardError);
  return outcome.err as SwitchyardError;
}
