import { z } from 'zod';
import { NonRetryableError } from '../errors.js';
import { InputsSchema, resolveInput, templateSources } from './template-text.js';
import type { NodeKind } from '../types/node-kind.js';
import type { RunView } from '../types/run-view.js';

/** Items one map node takes at most: each is a child run, and its value is kept until the node ends. */
export const MAX_MAP_ITEMS = 10_000;
/** Children one map node keeps in flight at most. */
export const MAX_MAP_CONCURRENCY = 100;

const MapParams = z
  .object({
    /** A context key or node id holding a JSON array (an array, or a string that parses as one). */
    items: z.string().min(1),
    /** The registered blueprint each item runs as a child run. */
    blueprintId: z.string().min(1),
    /** The child's input key for its item. @default "item" */
    itemKey: z.string().min(1).optional(),
    /** More child inputs: child key <- parent context key or node id (or a list of them: the first present wins). */
    inputs: InputsSchema.optional(),
    /** The child context key whose value is collected. @default "final_output" */
    output: z.string().min(1).optional(),
    /** Children in flight at most. @default 10 */
    concurrency: z.number().int().min(1).max(MAX_MAP_CONCURRENCY).optional(),
    /** Keep going when an item's run fails (its value is then `{ error: { code, message } }`). @default false */
    continueOnError: z.boolean().optional(),
  })
  .strict();
type MapParams = z.infer<typeof MapParams>;

/**
 * A child run per item of a list known only at run time. The engine starts them, at most `concurrency`
 * at a time, with no worker slot waiting meanwhile; the node's output is each child's `output` value in
 * input order. Without `continueOnError` the first item that fails fails the node and cancels the rest.
 * An empty list completes at once with `[]`.
 */
export const mapKind: NodeKind<MapParams> = {
  name: 'map',
  params: MapParams,
  references: (params) => ({ blueprints: [params.blueprintId] }),
  reads: (params) => {
    const sources = [params.items, ...templateSources('', params.inputs)];
    return { context: sources, outputs: sources };
  },
  run(ctx) {
    const { params } = ctx;
    const items = itemsOf(ctx.resolve(params.items), params.items, ctx.nodeId);
    if (items.length === 0) return { output: [] };
    const input: Record<string, unknown> = {};
    for (const [childKey, source] of Object.entries(params.inputs ?? {})) {
      const value = resolveInput(source, ctx.resolve);
      if (value !== undefined) defineOwn(input, childKey, value);
    }
    const itemKey = params.itemKey ?? 'item';
    return {
      fanOut: {
        blueprintId: params.blueprintId,
        input,
        each: items.map((item) => defineOwn({}, itemKey, item)),
        concurrency: params.concurrency ?? 10,
      },
    };
  },
  collect(ctx, child) {
    if (child.status === 'completed') {
      const value = Object.hasOwn(child.context, ctx.params.output ?? 'final_output') ? child.context[ctx.params.output ?? 'final_output'] : undefined;
      return value === undefined ? null : value;
    }
    const error = { code: child.error?.code ?? (child.status === 'cancelled' ? 'CANCELLED' : 'NODE_FAILED'), message: childFailure(child) };
    if (ctx.params.continueOnError) return { error };
    throw new NonRetryableError(`map item ${child.parent?.index ?? '?'} of "${ctx.params.blueprintId}" (run ${child.runId}) ${error.message}`, {
      nodeId: ctx.nodeId,
    });
  },
  gather(_ctx, values) {
    return { output: values };
  },
};

function itemsOf(value: unknown, name: string, nodeId: string): unknown[] {
  let items = value;
  if (typeof items === 'string') {
    try {
      items = JSON.parse(items);
    } catch {
      // reported below, as any other value that is not an array
    }
  }
  if (!Array.isArray(items)) {
    const found = value === undefined ? 'nothing' : Array.isArray(value) ? 'an array' : typeof value;
    throw new NonRetryableError(`map items "${name}" must hold a JSON array (found ${found})`, { nodeId });
  }
  if (items.length > MAX_MAP_ITEMS) {
    throw new NonRetryableError(`map items "${name}" holds ${items.length} items; a map node takes at most ${MAX_MAP_ITEMS}`, { nodeId });
  }
  return items;
}

/** How a child run that did not complete ended, for messages: "failed at node "x": why" or "was cancelled". */
export function childFailure(child: RunView): string {
  if (child.status === 'failed') {
    const where = child.error?.nodeId ? ` at node "${child.error.nodeId}"` : '';
    return `failed${where}: ${child.error?.message ?? 'unknown error'}`;
  }
  return `was ${child.status}`;
}

/** Sets an own property (a key such as "__proto__" stays a plain key). */
export function defineOwn(target: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  return target;
}
