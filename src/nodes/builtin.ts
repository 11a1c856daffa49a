import { z } from 'zod';
import { ConditionError, parseCondition, type Condition } from '../blueprint/condition.js';
import { NonRetryableError } from '../errors.js';
import { InputsSchema, renderTemplate, templateSources } from './template-text.js';
import { NodeKindRegistry, type NodeKind, type NodeReads } from '../types/node-kind.js';

/** `template` and `output` accept the seed's `promptTemplate` as well as `template`. */
const TemplateParams = z
  .object({
    template: z.string().optional(),
    promptTemplate: z.string().optional(),
    inputs: InputsSchema.optional(),
    outputKey: z.string().min(1).optional(),
  })
  .refine((p) => p.template !== undefined || p.promptTemplate !== undefined, {
    message: 'needs "template" (or "promptTemplate")',
  });
type TemplateParams = z.infer<typeof TemplateParams>;

function templateOf(params: TemplateParams): string {
  return params.template ?? params.promptTemplate ?? '';
}

function templateReads(params: TemplateParams): NodeReads {
  const sources = templateSources(templateOf(params), params.inputs);
  return { context: sources, outputs: sources };
}

/** Renders a text from the run's context and node outputs; the text is the node's output. */
export const templateKind: NodeKind<TemplateParams> = {
  name: 'template',
  params: TemplateParams,
  reads: templateReads,
  run(ctx) {
    return { output: renderTemplate(templateOf(ctx.params), ctx.params.inputs, ctx.resolve) };
  },
};

/** As `template`, and also writes the text to the context under `outputKey` (default `final_output`). */
export const outputKind: NodeKind<TemplateParams> = {
  name: 'output',
  params: TemplateParams,
  reads: templateReads,
  run(ctx) {
    const text = renderTemplate(templateOf(ctx.params), ctx.params.inputs, ctx.resolve);
    return { output: text, context: { [ctx.params.outputKey ?? 'final_output']: text } };
  },
};

const RouteParams = z.object({
  rules: z.array(z.object({ when: z.string().min(1), action: z.string().min(1) }).strict()),
  default: z.string().min(1).optional(),
});
type RouteParams = z.infer<typeof RouteParams>;

const ROUTE_ROOTS = ['context', 'outputs'] as const;
/** Parsed rule conditions, cached per params object (params are immutable once a blueprint is loaded). */
const compiledRules = new WeakMap<RouteParams, Condition[]>();
function rulesOf(params: RouteParams): Condition[] {
  let rules = compiledRules.get(params);
  if (!rules) {
    rules = params.rules.map((r) => parseCondition(r.when, { roots: ROUTE_ROOTS }));
    compiledRules.set(params, rules);
  }
  return rules;
}

/** Chooses an action: the first rule whose `when` holds, else `default`; fails when neither. */
export const routeKind: NodeKind<RouteParams> = {
  name: 'route',
  params: RouteParams,
  check(params) {
    const issues: Array<{ path: string; message: string }> = [];
    params.rules.forEach((rule, i) => {
      try {
        parseCondition(rule.when, { roots: ROUTE_ROOTS });
      } catch (err) {
        if (!(err instanceof ConditionError)) throw err;
        issues.push({ path: `rules[${i}].when`, message: `condition does not parse: ${err.message}` });
      }
    });
    return issues;
  },
  reads(params) {
    const context = new Set<string>();
    const outputs = new Set<string>();
    for (const rule of rulesOf(params)) {
      if (rule.reads.wholeContext || rule.reads.wholeOutputs) return undefined;
      rule.reads.context.forEach((k) => context.add(k));
      rule.reads.outputs.forEach((k) => outputs.add(k));
    }
    return { context: [...context], outputs: [...outputs] };
  },
  run(ctx) {
    const scope = { context: ctx.context, outputs: ctx.outputs };
    const rules = rulesOf(ctx.params);
    const index = rules.findIndex((rule) => rule.evaluate(scope));
    const action = index >= 0 ? ctx.params.rules[index]!.action : ctx.params.default;
    if (action === undefined) {
      throw new NonRetryableError(`no rule matched and there is no default (rules: ${ctx.params.rules.map((r) => r.when).join(' | ') || 'none'})`, {
        nodeId: ctx.nodeId,
      });
    }
    return { output: action, action };
  },
};


const SleepParams = z.object({ ms: z.number().int().min(0).max(86_400_000) }).strict();
type SleepParams = z.infer<typeof SleepParams>;

/** Waits `ms` milliseconds (ended early by cancellation); for pacing, demos and drain tests. */
export const sleepKind: NodeKind<SleepParams> = {
  name: 'sleep',
  params: SleepParams,
  reads: () => ({ context: [], outputs: [] }),
  run(ctx) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve({}), ctx.params.ms);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      }, { once: true });
    });
  },
};

/** The deterministic node kinds every worker has. */
export function builtinNodeKinds(): NodeKindRegistry {
  return new NodeKindRegistry([templateKind, outputKind, routeKind, sleepKind]);
}
