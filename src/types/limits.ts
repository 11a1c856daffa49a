/**
 * Hard limits on what a blueprint and a run may hold, the same in both executors. Each is checked where
 * the thing is created (a blueprint when it is validated, a node output when the node returns it, the
 * context when a run starts and whenever a node writes to it, a child run when it starts), and a breach
 * is an error naming the limit and the value: a validation issue for blueprints, else a non-retryable
 * `LIMIT_EXCEEDED` error that fails the node (and so the run).
 */
export const Limits = {
  /** Bytes of JSON in a run's context: the sum over its keys of each value's JSON (the input included). */
  MAX_CONTEXT_BYTES: 1024 * 1024,
  /** Bytes of JSON in one node's output. */
  MAX_NODE_OUTPUT_BYTES: 256 * 1024,
  /** Nodes in one blueprint. */
  MAX_NODES_PER_BLUEPRINT: 1_000,
  /** Nesting of subflow child runs: a run's child is at depth 1, its grandchild at 2, ... */
  MAX_SUBFLOW_DEPTH: 10,
} as const;
export type LimitName = keyof typeof Limits;

/** Bytes of `value` as JSON (UTF-8), as Redis stores it; 0 for undefined (never stored). */
export function jsonBytes(value: unknown): number {
  const json = JSON.stringify(value);
  return json === undefined ? 0 : Buffer.byteLength(json, 'utf8');
}
