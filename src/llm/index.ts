import { ErrorCodes, SwitchyardError } from '../errors.js';
import { createBedrockProvider } from './bedrock.js';
import { limitConcurrency } from './limit.js';
import { createOfflineProvider } from './offline.js';
import { createOpenAiProvider } from './openai.js';
import { LlmProviderNames, type LlmProvider, type LlmProviderName } from './types.js';

export type { LlmProvider, LlmProviderName, Completion, CompletionRequest, TokenUsage } from './types.js';
export { RateLimitedError } from './types.js';
export { DEFAULT_LIMIT_WINDOW_MS, findLlmLimit, llmLimitsFromEnv, parseLlmLimits, type LlmLimit, type LlmLimits, type ResolvedLlmLimit } from './limits-config.js';

/** Which LLM a worker uses. All optional but `provider`. */
export interface LlmConfig {
  /** @default 'offline' */
  provider?: LlmProviderName;
  /** @default 'gpt-4o-mini' (openai), 'anthropic.claude-3-5-haiku-20241022-v1:0' (bedrock) */
  model?: string;
  /** Requests in flight per worker process. @default 8 */
  concurrency?: number;
  openai?: { apiKey?: string; baseUrl?: string; requestTimeoutMs?: number };
  bedrock?: { region?: string; endpoint?: string; requestTimeoutMs?: number };
  /**
   * Wraps the provider inside the per-worker cap, so a call first takes one of this worker's slots and
   * then waits for the fleet-wide limits (the worker entry passes the Redis-backed limit here).
   * @default none
   */
  limit?: (provider: LlmProvider) => LlmProvider;
}

const DEFAULT_MODELS: Record<LlmProviderName, string | undefined> = {
  offline: undefined,
  openai: 'gpt-4o-mini',
  bedrock: 'anthropic.claude-3-5-haiku-20241022-v1:0',
};

/** Builds the configured provider, capped at `concurrency` requests in flight (and by `limit`, when given). */
export function createLlmProvider(config: LlmConfig = {}): LlmProvider {
  const name = config.provider ?? 'offline';
  const model = config.model ?? DEFAULT_MODELS[name];
  let provider: LlmProvider;
  switch (name) {
    case 'offline':
      provider = createOfflineProvider();
      break;
    case 'openai':
      provider = createOpenAiProvider({ ...config.openai, model: model! });
      break;
    case 'bedrock':
      provider = createBedrockProvider({ ...config.bedrock, model: model! });
      break;
    default:
      throw new SwitchyardError(ErrorCodes.CONFIG, `unknown LLM provider "${String(name)}" (choose ${LlmProviderNames.join(', ')})`);
  }
  return limitConcurrency(config.limit ? config.limit(provider) : provider, config.concurrency ?? 8);
}

/**
 * Reads the LLM settings from environment variables (for entry points only): SWITCHYARD_LLM,
 * SWITCHYARD_LLM_MODEL, SWITCHYARD_LLM_CONCURRENCY, OPENAI_API_KEY, OPENAI_BASE_URL, AWS_REGION,
 * SWITCHYARD_BEDROCK_ENDPOINT.
 */
export function llmConfigFromEnv(env: Record<string, string | undefined>): LlmConfig {
  const provider = (env.SWITCHYARD_LLM || 'offline') as LlmProviderName;
  if (!LlmProviderNames.includes(provider)) {
    throw new SwitchyardError(ErrorCodes.CONFIG, `SWITCHYARD_LLM="${provider}" is not a provider (choose ${LlmProviderNames.join(', ')})`);
  }
  const concurrency = env.SWITCHYARD_LLM_CONCURRENCY ? Number(env.SWITCHYARD_LLM_CONCURRENCY) : undefined;
  if (provider === 'openai' && !env.OPENAI_API_KEY && !env.OPENAI_BASE_URL) {
    throw new SwitchyardError(ErrorCodes.CONFIG, 'SWITCHYARD_LLM=openai needs OPENAI_API_KEY (and OPENAI_BASE_URL for other OpenAI-compatible servers)');
  }
  return {
    provider,
    model: env.SWITCHYARD_LLM_MODEL || undefined,
    concurrency,
    openai: { apiKey: env.OPENAI_API_KEY, baseUrl: env.OPENAI_BASE_URL || undefined },
    bedrock: { region: env.AWS_REGION || env.AWS_DEFAULT_REGION, endpoint: env.SWITCHYARD_BEDROCK_ENDPOINT || undefined },
  };
}
