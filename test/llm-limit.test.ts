import { describe, expect, it } from 'vitest';
import { limitConcurrency } from '../src/llm/limit.js';
import type { LlmProvider } from '../src/llm/types.js';

/** A provider whose answers the test releases by hand, counting how many requests are in flight. */
function gatedProvider() {
  let inFlight = 0;
  let maxSeen = 0;
  const gates: Array<() => void> = [];
  const arrivals: Array<() => void> = [];
  const provider: LlmProvider = {
    name: 'openai',
    model: 'm',
    async complete() {
      inFlight++;
      maxSeen = Math.max(maxSeen, inFlight);
      arrivals.shift()?.();
      await new Promise<void>((resolve) => gates.push(resolve));
      inFlight--;
      return { text: 'ok', model: 'm' };
    },
  };
  return {
    provider,
    stats: () => ({ inFlight, maxSeen, waiting: gates.length }),
    releaseAll: () => gates.splice(0).forEach((g) => g()),
    arrived: () => new Promise<void>((resolve) => arrivals.push(resolve)),
  };
}

describe('per-worker LLM concurrency limit', () => {
  it('keeps at most N requests in flight and serves the rest as slots free up', async () => {
    const gated = gatedProvider();
    const limited = limitConcurrency(gated.provider, 8);
    const signal = new AbortController().signal;
    const eighth = Array.from({ length: 8 }, () => gated.arrived());
    const all = Array.from({ length: 20 }, () => limited.complete({ prompt: 'x', signal }));
    await Promise.all(eighth);
    expect(gated.stats()).toMatchObject({ inFlight: 8, maxSeen: 8 });
    while (gated.stats().waiting > 0) {
      const next = gated.arrived();
      gated.releaseAll();
      if (gated.stats().inFlight < 20) await Promise.race([next, Promise.all(all)]);
    }
    expect((await Promise.all(all)).every((c) => c.text === 'ok')).toBe(true);
    expect(gated.stats().maxSeen).toBe(8);
  });

  it('a request cancelled while waiting for a slot leaves the line without taking one', async () => {
    const gated = gatedProvider();
    const limited = limitConcurrency(gated.provider, 1);
    const first = gated.arrived();
    const running = limited.complete({ prompt: 'a', signal: new AbortController().signal });
    await first;
    const controller = new AbortController();
    const waiting = limited.complete({ prompt: 'b', signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toThrow(/cancelled while waiting for an LLM slot/);
    const third = limited.complete({ prompt: 'c', signal: new AbortController().signal });
    const thirdArrived = gated.arrived();
    gated.releaseAll();
    await running;
    await thirdArrived;
    gated.releaseAll();
    expect((await third).text).toBe('ok');
    expect(gated.stats().maxSeen).toBe(1);
  });

  it('rejects a limit that is not a whole number >= 1', () => {
    expect(() => limitConcurrency(gatedProvider().provider, 0)).toThrow(/whole number >= 1/);
  });
});
