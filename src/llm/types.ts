import type { TokenUsage } from '../types/usage.js';

export type { TokenUsage };

export interface CompletionRequest {
  /** The filled prompt, sent as the user message. */
  prompt: string;
  /** Aborts the request (cancellation of the run, the node's timeout). */
  signal: AbortSignal;
  /** `<runId>:<nodeId>`, for providers that de-duplicate requests. */
  idempotencyKey?: string;
}

export interface Completion {
  text: string;
  usage?: TokenUsage;
  /** The model that answered, as the provider reports it. */
  model: string;
}

export const LlmProviderNames = ['offline', 'openai', 'bedrock'] as const;
export type LlmProviderName = (typeof LlmProviderNames)[number];

/** A source of completions. Implementations must never log prompts' secrets or their credentials. */
export interface LlmProvider {
  readonly name: LlmProviderName;
  readonly model: string;
  /**
   * Returns the model's answer. Throws a SwitchyardError: retryable for transient failures (429, 5xx,
   * network, timeouts) once the provider's own retries are spent, non-retryable for 400/401/403.
   */
  complete(request: CompletionRequest): Promise<Completion>;
  /** This worker's limit of requests in flight (a limited provider only). */
  readonly slots?: { readonly capacity: number };
}
