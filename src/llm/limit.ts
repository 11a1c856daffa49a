import { ErrorCodes, SwitchyardError } from '../errors.js';
import type { Completion, CompletionRequest, LlmProvider } from './types.js';

/**
 * Caps the requests one worker has in flight to a provider, so a burst of runs queues here instead of
 * tripping the provider's rate limits. Waiting callers are served in order; an aborted one leaves the line.
 */
export function limitConcurrency(provider: LlmProvider, maxInFlight: number): LlmProvider {
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new SwitchyardError(ErrorCodes.CONFIG, `LLM concurrency must be a whole number >= 1 (got ${maxInFlight})`);
  }
  let inFlight = 0;
  const waiting: Array<() => void> = [];

  const acquire = (signal: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (inFlight < maxInFlight) {
        inFlight++;
        return resolve();
      }
      const grant = () => {
        signal.removeEventListener('abort', onAbort);
        resolve(); // the slot is handed over by release(), so inFlight is unchanged
      };
      const onAbort = () => {
        const index = waiting.indexOf(grant);
        if (index >= 0) waiting.splice(index, 1);
        reject(new SwitchyardError(ErrorCodes.CANCELLED, 'cancelled while waiting for an LLM slot'));
      };
      if (signal.aborted) return onAbort();
      waiting.push(grant);
      signal.addEventListener('abort', onAbort, { once: true });
    });

  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else inFlight--;
  };

  return {
    name: provider.name,
    model: provider.model,
    slots: { capacity: maxInFlight },
    async complete(request: CompletionRequest): Promise<Completion> {
      await acquire(request.signal);
      try {
        return await provider.complete(request);
      } finally {
        release();
      }
    },
  };
}
