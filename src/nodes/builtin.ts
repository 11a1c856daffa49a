import { z } from 'zod';
import { ConditionError, parseCondition, type Condition } from '../blueprint/condition.js';
import { NonRetryableError } from '../errors.js';
import { InputsSchema, renderTemplate, templateSources } from './template-text.js';
import { DurationSchema, parseDuration, parseIsoTime } from './duration.js';
import { waitKind } from './wait.js';
import { NodeKindRegistry, type NodeKind, type NodeReads, type NodeResult } from '../types/node-kind.js';

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
const OutputParams = z
  .object({
    template: z.string().optional(),
    promptTemplate: z.string().optional(),
    inputs: InputsSchema.optional(),
    outputKey: z.string().min(1).optional(),
    /**
     * `number`: the filled text read as a number (its first number, such as a model's "8" or "Score: 8/10"),
     * so conditions can compare it (`context.score >= 8`); a text with no number fails the node.
     */
    as: z.enum(['text', 'number']).optional(),
  })
  .refine((p) => p.template !== undefined || p.promptTemplate !== undefined, {
    message: 'needs "template" (or "promptTemplate")',
  });
type OutputParams = z.infer<typeof OutputParams>;

export const outputKind: NodeKind<OutputParams> = {
  name: 'output',
  params: OutputParams,
  reads: templateReads,
  run(ctx) {
    const text = renderTemplate(templateOf(ctx.params), ctx.params.inputs, ctx.resolve);
    const value = ctx.params.as === 'number' ? firstNumber(text, ctx.nodeId) : text;
    return { output: value, context: { [ctx.params.outputKey ?? 'final_output']: value } };
  },
};

/** The first number in a text ("8", "Score: 8/10", "-2.5"); a text with none fails the node (not retried). */
function firstNumber(text: string, nodeId: string): number {
  const match = /-?\d+(\.\d+)?/.exec(text);
  if (!match) throw new NonRetryableError(`output "as": "number" found no number in ${JSON.stringify(text.slice(0, 80))}`, { nodeId });
  return Number(match[0]);
}

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


const SleepParams = z
  .object({
    /** Milliseconds to pause in the worker (holds its slot; the node's `timeout` applies): pacing, demos, tests. */
    ms: z.number().int().min(0).max(86_400_000).optional(),
    /** Durable: milliseconds or a duration string ("90s", "15m", "24h", "7d"). */
    duration: DurationSchema.optional(),
    /** Durable: an ISO 8601 time, or a context key / node id holding one. */
    until: z.string().min(1).optional(),
  })
  .strict()
  .refine((p) => [p.ms, p.duration, p.until].filter((v) => v !== undefined).length === 1, { message: 'needs exactly one of "ms", "duration" and "until"' });
type SleepParams = z.infer<typeof SleepParams>;

/**
 * Waits. With `duration` or `until` it is durable: the node parks (`sleeping`) and a delayed job wakes
 * it, so no worker slot is held, killing every worker loses nothing, and cancelling the run ends it. With
 * `ms` it pauses in the worker as it always has (ended early by cancellation).
 */
export const sleepKind: NodeKind<SleepParams> = {
  name: 'sleep',
  params: SleepParams,
  reads: (params) => (params.until === undefined || parseIsoTime(params.until) !== undefined ? { context: [], outputs: [] } : { context: [params.until], outputs: [params.until] }),
  run(ctx) {
    const { ms, duration, until } = ctx.params;
    if (ms !== undefined) return pause(ms, ctx.signal);
    let wakeAt: number;
    if (duration !== undefined) {
      wakeAt = Date.now() + parseDuration(duration)!;
    } else {
      const held = parseIsoTime(until) ?? parseIsoTime(ctx.resolve(until!));
      if (held === undefined) throw new NonRetryableError(`"until" is neither an ISO 8601 time nor a context key / node id holding one: ${until}`, { nodeId: ctx.nodeId });
      wakeAt = held;
    }
    // A time already past: done at once, no park.
    return wakeAt <= Date.now() ? {} : { park: { until: wakeAt } };
  },
};

function pause(ms: number, signal: AbortSignal): Promise<NodeResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve({}), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** The deterministic node kinds every worker has. */
export function builtinNodeKinds(): NodeKindRegistry {
  return new NodeKindRegistry([templateKind, outputKind, routeKind, sleepKind, waitKind]);
}
