import { z } from 'zod';
import { DurationSchema, parseDuration } from './duration.js';
import { InputsSchema, renderTemplate, templateSources } from './template-text.js';
import type { NodeKind } from '../types/node-kind.js';

const WaitParams = z
  .object({
    /** Shown to whoever answers (a template filled from `inputs`). */
    prompt: z.string().optional(),
    inputs: InputsSchema.optional(),
    /** Milliseconds or a duration string ("90s", "15m", "24h", "7d"); without it the node waits for ever. */
    timeout: DurationSchema.optional(),
    /** The action the node completes with when its timeout passes. @default "timeout" */
    timeoutAction: z.string().min(1).optional(),
  })
  .strict();
type WaitParams = z.infer<typeof WaitParams>;

/**
 * Parks its branch until a signal (`POST /runs/{runId}/signals/{nodeId}`, `switchyard signal`,
 * `client.signal`) or its timeout, holding no worker slot: the node is `waiting`, the run view lists it
 * with its prompt and the actions of its outgoing edges. A signal's `action` routes its edges (as a
 * router's does) and its `payload` is the node's output; a timeout completes it with `timeoutAction` and
 * no output.
 */
export const waitKind: NodeKind<WaitParams> = {
  name: 'wait',
  params: WaitParams,
  reads(params) {
    const sources = templateSources(params.prompt ?? '', params.inputs);
    return { context: sources, outputs: sources };
  },
  check(params) {
    return params.timeout !== undefined && parseDuration(params.timeout) === 0 ? [{ path: 'timeout', message: 'must be more than 0' }] : [];
  },
  run(ctx) {
    const prompt = renderTemplate(ctx.params.prompt ?? '', ctx.params.inputs, ctx.resolve);
    const timeoutMs = ctx.params.timeout === undefined ? undefined : parseDuration(ctx.params.timeout);
    return {
      park: {
        signal: { prompt },
        ...(timeoutMs === undefined ? {} : { until: Date.now() + timeoutMs, wakeAction: ctx.params.timeoutAction ?? 'timeout' }),
      },
    };
  },
};
