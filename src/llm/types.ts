import { NodeError } from '../errors.js';
import type { TokenUsage } from '../types/usage.js';

export type { TokenUsage };

export interface CompletionRequest {
  /** The filled prompt, sent as the user message. */
  prompt: string;
  /** Aborts the request (cancellation of the run, the node's timeout). */
  signal: AbortSignal;
  /** `<runId>:<nodeId>`, for providers that de-duplicate requests. */
  idempotencyKey?: string;
  /**
   * Set by a fleet-wide limit: a 429 or 503 answer that says when to come back (`Retry-After`) is thrown
   * at once as a {@link RateLimitedError} instead of being waited out here, so the limit can pause the
   * whole fleet and retry the call itself (and the wait is not paid twice).
   */
  handBackRetryAfter?: boolean;
}

export interface Completion {
  text: string;
  usage?: TokenUsage;
  /** The model that answered, as the provider reports it. */
  model: string;
  /** Time spent waiting for a fleet-wide LLM limit (a slot, the window, a provider's pause), in ms. */
  waitMs?: number;
}

/**
 * The provider answered 429 or 503 with `Retry-After` to a request that asked for it to be handed back
 * ({@link CompletionRequest.handBackRetryAfter}). Retryable: if it ever reaches a node, the node retries.
 */
export class RateLimitedError extends NodeError {
  constructor(
    message: string,
    /** The HTTP status: 429 or 503. */
    readonly status: number,
    /** How long the provider asked callers to stay away, in ms. */
    readonly retryAfterMs: number,
  ) {
    super(message);
    this.name = 'RateLimitedError';
  }
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
