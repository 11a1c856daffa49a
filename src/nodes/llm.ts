import { z } from 'zod';
import type { LlmProvider } from '../llm/types.js';
import { InputsSchema, renderTemplate, templateSources } from './template-text.js';
import type { NodeContext, NodeKind, NodeResult } from '../types/node-kind.js';

const LlmParams = z
  .object({
    /** The prompt, `{{name}}` filled from `inputs` as in `template`. */
    promptTemplate: z.string().min(1),
    inputs: InputsSchema.optional(),
  })
  .strict();
type LlmParams = z.infer<typeof LlmParams>;

/** Characters of each prompt kept in the run view. */
const PROMPT_KEPT = 2000;

async function ask(provider: LlmProvider, ctx: NodeContext<LlmParams>): Promise<{ text: string; result: Omit<NodeResult, 'output' | 'action'> }> {
  const prompt = renderTemplate(ctx.params.promptTemplate, ctx.params.inputs, ctx.resolve);
  const completion = await provider.complete({ prompt, signal: ctx.signal, idempotencyKey: ctx.idempotencyKey });
  return {
    text: completion.text,
    result: {
      // The filled prompt is the node's input as the model saw it (kept short: it lives with the run).
      // llmWaitMs: time spent waiting for a fleet-wide LLM limit (only under one), shown by the dashboard.
      meta: {
        provider: provider.name,
        model: completion.model,
        ...(completion.waitMs !== undefined ? { llmWaitMs: completion.waitMs } : {}),
        prompt: prompt.length > PROMPT_KEPT ? `${prompt.slice(0, PROMPT_KEPT)}…` : prompt,
      },
      ...(completion.usage ? { usage: completion.usage } : {}),
    },
  };
}

function llmKind(name: string, provider: LlmProvider, decide: (text: string) => NodeResult): NodeKind<LlmParams> {
  return {
    name,
    params: LlmParams,
    slots: provider.slots,
    reads: (params) => {
      const sources = templateSources(params.promptTemplate, params.inputs);
      return { context: sources, outputs: sources };
    },
    async run(ctx) {
      const { text, result } = await ask(provider, ctx);
      return { ...result, ...decide(text) };
    },
  };
}

/**
 * The LLM node kinds, bound to one provider:
 * - `llm-process`: the answer is the node's output;
 * - `llm-condition`: action `true` when the answer contains "true" (any case), else `false`;
 * - `llm-router`: the trimmed answer is the action.
 */
export function createLlmKinds(provider: LlmProvider): NodeKind<LlmParams>[] {
  return [
    llmKind('llm-process', provider, (text) => ({ output: text })),
    llmKind('llm-condition', provider, (text) => {
      const action = /true/i.test(text) ? 'true' : 'false';
      return { output: action, action };
    }),
    llmKind('llm-router', provider, (text) => ({ output: text.trim(), action: text.trim() })),
  ];
}
