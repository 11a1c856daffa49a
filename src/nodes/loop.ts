import { z } from 'zod';
import { ConditionError, parseCondition, type Condition } from '../blueprint/condition.js';
import { NonRetryableError } from '../errors.js';
import { InputsSchema, resolveInput, templateSources } from './template-text.js';
import { childFailure, defineOwn } from './map.js';
import type { NodeKind } from '../types/node-kind.js';

/** Iterations one loop node runs at most. */
export const MAX_LOOP_ITERATIONS = 100;

const UNTIL_ROOTS = ['context', 'outputs'] as const;

const LoopParams = z
  .object({
    /** The registered blueprint run once per iteration, as a child run. */
    blueprintId: z.string().min(1),
    /** The first iteration's input: child key <- parent context key or node id (or a list: the first present wins). */
    inputs: InputsSchema.optional(),
    /** The next iteration's input: its key <- the previous iteration's context key. */
    carry: z.record(z.string(), z.string()).optional(),
    /** A condition (`context.x`, `outputs.node`) on the finished iteration's run; the loop ends when it holds. */
    until: z.string().min(1),
    /** Iterations at most (required, at most 100); the loop ends "exhausted" after that many. */
    maxIterations: z.number().int().min(1).max(MAX_LOOP_ITERATIONS),
    /** Parent context key <- the last iteration's context key. */
    outputs: z.record(z.string(), z.string()).optional(),
  })
  .strict();
type LoopParams = z.infer<typeof LoopParams>;

const parsedUntil = new WeakMap<LoopParams, Condition>();
function untilOf(params: LoopParams): Condition {
  let until = parsedUntil.get(params);
  if (!until) {
    until = parseCondition(params.until, { roots: UNTIL_ROOTS });
    parsedUntil.set(params, until);
  }
  return until;
}

/**
 * Runs a body blueprint again and again, one child run per iteration (no worker slot waits for any of
 * them), until `until` holds on the finished iteration (action "done") or `maxIterations` ran (action
 * "exhausted"). Output `{ iterations, last }` (`last`: the last iteration's context); `outputs` copies
 * keys of the last iteration into the parent's context.
 */
export const loopKind: NodeKind<LoopParams> = {
  name: 'loop',
  params: LoopParams,
  references: (params) => ({ blueprints: [params.blueprintId] }),
  reads: (params) => {
    const sources = templateSources('', params.inputs);
    return { context: sources, outputs: sources };
  },
  check(params) {
    try {
      parseCondition(params.until, { roots: UNTIL_ROOTS });
      return [];
    } catch (err) {
      if (!(err instanceof ConditionError)) throw err;
      return [{ path: 'until', message: `condition does not parse: ${err.message}` }];
    }
  },
  async run(ctx) {
    const input: Record<string, unknown> = {};
    for (const [childKey, source] of Object.entries(ctx.params.inputs ?? {})) {
      const value = resolveInput(source, ctx.resolve);
      if (value !== undefined) defineOwn(input, childKey, value);
    }
    return { waitFor: { runId: await ctx.runs.start(ctx.params.blueprintId, input, { index: 1 }) } };
  },
  async resume(ctx, child) {
    const { params } = ctx;
    const iteration = child.parent?.index ?? 1;
    if (child.status !== 'completed') {
      throw new NonRetryableError(`loop "${params.blueprintId}" iteration ${iteration} (run ${child.runId}) ${childFailure(child)}`, { nodeId: ctx.nodeId });
    }
    const done = untilOf(params).evaluate({ context: child.context, outputs: child.outputs });
    if (done || iteration >= params.maxIterations) {
      const mapped: Record<string, unknown> = {};
      for (const [parentKey, childKey] of Object.entries(params.outputs ?? {})) {
        if (Object.hasOwn(child.context, childKey)) defineOwn(mapped, parentKey, child.context[childKey]);
      }
      return { output: { iterations: iteration, last: child.context }, action: done ? 'done' : 'exhausted', context: mapped };
    }
    const next: Record<string, unknown> = {};
    for (const [nextKey, previousKey] of Object.entries(params.carry ?? {})) {
      if (Object.hasOwn(child.context, previousKey)) defineOwn(next, nextKey, child.context[previousKey]);
    }
    ctx.logger.debug('next loop iteration', { iteration: iteration + 1 });
    return { waitFor: { runId: await ctx.runs.start(params.blueprintId, next, { index: iteration + 1 }) } };
  },
};
