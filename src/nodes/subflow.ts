import { z } from 'zod';
import { NonRetryableError } from '../errors.js';
import { InputsSchema, resolveInput, templateSources } from './template-text.js';
import type { NodeKind } from '../types/node-kind.js';

const SubflowParams = z
  .object({
    /** The registered blueprint to run as a child run. */
    blueprintId: z.string().min(1),
    /** Child context key <- parent context key or node id (or a list of them: the first present wins). */
    inputs: InputsSchema.optional(),
    /** Parent context key <- child context key. */
    outputs: z.record(z.string(), z.string()).optional(),
  })
  .strict();
type SubflowParams = z.infer<typeof SubflowParams>;

/**
 * Runs another blueprint as a child run of its own: its nodes are queue jobs like any others, and no
 * worker slot waits for it. The node completes when the child completes (copying `outputs` into the
 * parent's context), fails when the child fails, and is cancelled with its run (which cancels the child).
 */
export const subflowKind: NodeKind<SubflowParams> = {
  name: 'subflow',
  params: SubflowParams,
  references: (params) => ({ blueprints: [params.blueprintId] }),
  reads: (params) => {
    const sources = templateSources('', params.inputs);
    return { context: sources, outputs: sources };
  },
  async run(ctx) {
    const input: Record<string, unknown> = {};
    for (const [childKey, source] of Object.entries(ctx.params.inputs ?? {})) {
      const value = resolveInput(source, ctx.resolve);
      if (value !== undefined) Object.defineProperty(input, childKey, { value, enumerable: true, writable: true, configurable: true });
    }
    const runId = await ctx.runs.start(ctx.params.blueprintId, input);
    ctx.logger.debug('started child run', { childRunId: runId, blueprintId: ctx.params.blueprintId });
    return { waitFor: { runId } };
  },
  resume(ctx, child) {
    const what = `subflow "${ctx.params.blueprintId}" (run ${child.runId})`;
    if (child.status === 'failed') {
      const where = child.error?.nodeId ? ` at node "${child.error.nodeId}"` : '';
      throw new NonRetryableError(`${what} failed${where}: ${child.error?.message ?? 'unknown error'}`, { nodeId: ctx.nodeId });
    }
    if (child.status !== 'completed') throw new NonRetryableError(`${what} was ${child.status}`, { nodeId: ctx.nodeId });
    const mapped: Record<string, unknown> = {};
    for (const [parentKey, childKey] of Object.entries(ctx.params.outputs ?? {})) {
      if (Object.hasOwn(child.context, childKey)) {
        Object.defineProperty(mapped, parentKey, { value: child.context[childKey], enumerable: true, writable: true, configurable: true });
      }
    }
    return {
      // Without an `outputs` mapping the node's output is the child's whole final context.
      output: ctx.params.outputs ? mapped : child.context,
      context: mapped,
      meta: { childRunId: child.runId },
      ...(child.usage ? { usage: child.usage } : {}),
    };
  },
};
