import { z } from 'zod';
import { Limits } from '../types/limits.js';

/**
 * Node and blueprint ids become parts of Redis keys and BullMQ job ids (`<runId>.<nodeId>`), and BullMQ
 * forbids `:` in custom job ids, so ids are kept to a safe character set.
 */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;
export const BLUEPRINT_ID_PATTERN = /^[A-Za-z0-9_.-]{1,100}$/;

const nodeId = z
  .string()
  .regex(NODE_ID_PATTERN, 'must be 1-100 characters of letters, digits, "_" or "-"');

export const NodeConfigSchema = z
  .object({
    /** `all` (default): fire once every incoming edge arrived and one was taken. `any`: fire on the first taken arrival. */
    joinStrategy: z.enum(['all', 'any']).optional(),
    /** Retries after the first attempt (flowcraft's meaning). @default 0 */
    maxRetries: z.number().int().min(0).max(50).optional(),
    /** First retry delay in ms, doubled on each further retry. @default 1000 */
    retryDelay: z.number().int().min(0).max(86_400_000).optional(),
    /** Per-attempt time limit in ms; the node's AbortSignal fires when it passes. */
    timeout: z.number().int().positive().max(86_400_000).optional(),
    /** A node id (or a node kind) to run in place of this node when its retries are exhausted. */
    fallback: z.string().min(1).optional(),
  })
  .strict();

export const NodeDefinitionSchema = z
  .object({
    id: nodeId,
    uses: z.string().min(1, 'must name a node kind'),
    params: z.record(z.string(), z.unknown()).optional(),
    config: NodeConfigSchema.optional(),
  })
  .strict();

export const EdgeDefinitionSchema = z
  .object({
    source: z.string().min(1),
    target: z.string().min(1),
    action: z.string().optional(),
    condition: z.string().optional(),
    /** Accepted for flowcraft compatibility; Switchyard does not evaluate transforms. */
    transform: z.string().optional(),
  })
  .strict();

export const BlueprintSchema = z
  .object({
    id: z.string().regex(BLUEPRINT_ID_PATTERN, 'must be 1-100 characters of letters, digits, ".", "_" or "-"').optional(),
    version: z.string().optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    nodes: z
      .array(NodeDefinitionSchema)
      .min(1, 'a blueprint needs at least one node')
      .max(Limits.MAX_NODES_PER_BLUEPRINT, {
        error: (issue) =>
          `a blueprint has ${Array.isArray(issue.input) ? issue.input.length : 'too many'} nodes, over the limit MAX_NODES_PER_BLUEPRINT (${Limits.MAX_NODES_PER_BLUEPRINT})`,
      }),
    edges: z.array(EdgeDefinitionSchema).default([]),
  })
  .strict();

export type NodeConfig = z.infer<typeof NodeConfigSchema>;
export type NodeDefinition = z.infer<typeof NodeDefinitionSchema>;
export type EdgeDefinition = z.infer<typeof EdgeDefinitionSchema>;
/** A blueprint as written in JSON (before its id is known). */
export type BlueprintInput = z.input<typeof BlueprintSchema>;
/** A parsed blueprint with its id settled. */
export type Blueprint = z.infer<typeof BlueprintSchema> & { id: string };
