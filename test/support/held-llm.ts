import { limitConcurrency } from '../../src/llm/limit.js';
import type { LlmProvider } from '../../src/llm/types.js';

/** An LLM endpoint that answers only when the test opens it; tells when a request arrives. */
export function heldProvider() {
  let open = false;
  const held: Array<() => void> = [];
  const arrivals: Array<() => void> = [];
  const provider: LlmProvider = {
    name: 'openai',
    model: 'held',
    async complete() {
      arrivals.splice(0).forEach((arrived) => arrived());
      if (!open) await new Promise<void>((resolve) => held.push(resolve));
      return { text: 'answer', model: 'held' };
    },
  };
  return {
    provider,
    arrived: () => new Promise<void>((resolve) => arrivals.push(resolve)),
    open: () => {
      open = true;
      held.splice(0).forEach((release) => release());
    },
  };
}

/**
 * `provider` behind a per-worker limit of `slots`, counting the requests that entered the limit (waiting
 * for a slot included): `entered(n)` resolves once n have.
 */
export function countedLimit(provider: LlmProvider, slots: number) {
  const limited = limitConcurrency(provider, slots);
  let entered = 0;
  const waiters: Array<() => void> = [];
  const counted: LlmProvider = {
    name: limited.name,
    model: limited.model,
    slots: limited.slots,
    complete(request) {
      entered++;
      waiters.splice(0).forEach((wake) => wake());
      return limited.complete(request);
    },
  };
  return {
    provider: counted,
    async entered(n: number): Promise<void> {
      while (entered < n) await new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}
