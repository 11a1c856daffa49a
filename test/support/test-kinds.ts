import { z } from 'zod';
import { NonRetryableError } from '../../src/errors.js';
import type { NodeKind } from '../../src/types/node-kind.js';

/**
 * Node kinds for tests. They record what happened per `<runId>:<nodeId>` (the idempotency key) in
 * `probe`, so a test can ask how often a node really ran and whether it saw its AbortSignal.
 */
export class Probe {
  readonly calls = new Map<string, number>();
  readonly aborted = new Set<string>();
  private readonly abortWaiters = new Map<string, Array<() => void>>();

  /** Resolves once the node with this idempotency key has seen its AbortSignal fire. */
  whenAborted(key: string): Promise<void> {
    if (this.aborted.has(key)) return Promise.resolve();
    return new Promise((resolve) => this.abortWaiters.set(key, [...(this.abortWaiters.get(key) ?? []), resolve]));
  }

  abort(key: string): void {
    this.aborted.add(key);
    for (const wake of this.abortWaiters.get(key) ?? []) wake();
    this.abortWaiters.delete(key);
  }
  private readonly startWaiters = new Map<string, Array<() => void>>();

  count(key: string): number {
    return this.calls.get(key) ?? 0;
  }

  /** Resolves once any run's node with this id has started; gives that node's idempotency key. */
  startedNode(nodeId: string): Promise<string> {
    const found = [...this.calls.keys()].find((k) => k.endsWith(`:${nodeId}`));
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.nodeWaiters.set(nodeId, [...(this.nodeWaiters.get(nodeId) ?? []), resolve]));
  }

  private readonly nodeWaiters = new Map<string, Array<(key: string) => void>>();

  /** Resolves once every node with these idempotency keys has started (at least once). */
  async allStarted(keys: readonly string[]): Promise<void> {
    await Promise.all(keys.map((key) => this.started(key)));
  }

  /** Resolves once the node with this idempotency key has started (at least `times` times). */
  async started(key: string, times = 1): Promise<void> {
    while (this.count(key) < times) {
      await new Promise<void>((resolve) => this.startWaiters.set(key, [...(this.startWaiters.get(key) ?? []), resolve]));
    }
  }

  hit(key: string): number {
    const n = this.count(key) + 1;
    this.calls.set(key, n);
    for (const wake of this.startWaiters.get(key) ?? []) wake();
    this.startWaiters.delete(key);
    const nodeId = key.slice(key.lastIndexOf(':') + 1);
    for (const wake of this.nodeWaiters.get(nodeId) ?? []) wake(key);
    this.nodeWaiters.delete(nodeId);
    return n;
  }
}

export function testKinds(probe: Probe): NodeKind<any>[] {
  const count: NodeKind<{ value?: string; action?: string }> = {
    name: 'count',
    params: z.object({ value: z.string().optional(), action: z.string().optional() }),
    reads: () => ({ context: [], outputs: [] }),
    run(ctx) {
      probe.hit(ctx.idempotencyKey);
      return { output: ctx.params.value ?? ctx.nodeId, ...(ctx.params.action ? { action: ctx.params.action } : {}) };
    },
  };
  const flaky: NodeKind<{ failTimes: number }> = {
    name: 'flaky',
    params: z.object({ failTimes: z.number().int().min(0) }),
    reads: () => ({ context: [], outputs: [] }),
    run(ctx) {
      const n = probe.hit(ctx.idempotencyKey);
      if (n <= ctx.params.failTimes) throw new Error(`flaky failure ${n}`);
      return { output: `ok after ${n}` };
    },
  };
  const boom: NodeKind<{ message?: string; retryable?: boolean }> = {
    name: 'boom',
    params: z.object({ message: z.string().optional(), retryable: z.boolean().optional() }),
    reads: () => ({ context: [], outputs: [] }),
    run(ctx) {
      probe.hit(ctx.idempotencyKey);
      const message = ctx.params.message ?? 'boom';
      throw ctx.params.retryable === false ? new NonRetryableError(message) : new Error(message);
    },
  };
  /** Waits until aborted (cancellation or timeout), or `ms` when given. */
  const block: NodeKind<{ ms?: number }> = {
    name: 'block',
    params: z.object({ ms: z.number().int().positive().optional() }),
    reads: () => ({ context: [], outputs: [] }),
    run(ctx) {
      probe.hit(ctx.idempotencyKey);
      return new Promise((resolve, reject) => {
        const timer = ctx.params.ms === undefined ? undefined : setTimeout(() => resolve({ output: 'slept' }), ctx.params.ms);
        ctx.signal.addEventListener('abort', () => {
          probe.abort(ctx.idempotencyKey);
          clearTimeout(timer);
          reject(new Error('aborted'));
        }, { once: true });
      });
    },
  };
  /** Adds 1 to the context's `n` (0 when missing), as its output and as `n`. */
  const inc: NodeKind<Record<string, never>> = {
    name: 'inc',
    params: z.object({}).strict(),
    reads: () => ({ context: ['n'], outputs: [] }),
    run(ctx) {
      probe.hit(ctx.idempotencyKey);
      const n = (typeof ctx.context.n === 'number' ? ctx.context.n : 0) + 1;
      return { output: n, context: { n } };
    },
  };
  return [count, flaky, boom, block, inc];
}
