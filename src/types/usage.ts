/** Tokens a model call used, as the provider reported them. */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/**
 * Token usage summed over nodes; undefined when no node reported any. Dependency-free, so both the Redis
 * store and the in-memory executor use it without importing each other.
 */
export function sumUsage(nodes: ReadonlyArray<{ usage?: TokenUsage }>): TokenUsage | undefined {
  let total: TokenUsage | undefined;
  for (const { usage } of nodes) {
    if (!usage) continue;
    total ??= { promptTokens: 0, completionTokens: 0 };
    total.promptTokens += usage.promptTokens;
    total.completionTokens += usage.completionTokens;
  }
  return total;
}
