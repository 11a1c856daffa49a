import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, NodeError, NonRetryableError, SwitchyardError } from '../errors.js';
import { RateLimitedError, type Completion, type CompletionRequest, type LlmProvider, type TokenUsage } from './types.js';

/** Options of {@link createOpenAiProvider}. Only `model` is required. */
export interface OpenAiOptions {
  /** Sent as `authorization: Bearer <apiKey>`; omitted when unset (local servers often need none). */
  apiKey?: string;
  /** Root of the OpenAI-compatible API; `/chat/completions` is appended. @default 'https://api.openai.com/v1' */
  baseUrl?: string;
  /** Model name sent with every request, e.g. `gpt-4o-mini`. */
  model: string;
  /** Deadline of one HTTP request (answer and body), in milliseconds. @default 60000 */
  requestTimeoutMs?: number;
  /** Retries after the first attempt for 429, 5xx, network errors, timeouts and malformed answers. @default 3 */
  maxRetries?: number;
  /** First backoff delay; it doubles on each retry and is jittered. @default 500 */
  retryBaseDelayMs?: number;
  /** Upper bound of one wait between retries, `Retry-After` included. @default 20000 */
  maxRetryDelayMs?: number;
}

/** {@link OpenAiOptions} once checked and completed. */
interface ResolvedOpenAiOptions {
  apiKey: string | undefined;
  baseUrl: string;
  model: string;
  requestTimeoutMs: number;
  maxRetries: number;
  retryBaseDelayMs: number;
  maxRetryDelayMs: number;
}

/** Why one attempt failed in a way that another attempt may fix. */
type RetryableFailure =
  | { kind: 'status'; status: number; detail: string; retryAfterMs: number | undefined }
  | { kind: 'timeout' }
  | { kind: 'network'; detail: string; cause: unknown }
  | { kind: 'malformed'; detail: string };

/** Longest piece of a server's error text quoted in our messages (some servers answer with an HTML page). */
const MAX_DETAIL_CHARS = 500;

/**
 * Creates a provider for any server that speaks the OpenAI Chat Completions API (OpenAI, Azure-style
 * proxies, vLLM, Ollama, LM Studio …). Transient failures are retried here with jittered exponential
 * backoff; whatever is left over is thrown as a retryable {@link NodeError} so the engine's node
 * retries can take over.
 */
export function createOpenAiProvider(options: OpenAiOptions): LlmProvider {
  const resolved = resolveOpenAiOptions(options);
  return {
    name: 'openai',
    model: resolved.model,
    complete: (request) => completeWithRetries(resolved, request),
  };
}

function resolveOpenAiOptions(options: OpenAiOptions): ResolvedOpenAiOptions {
  if (typeof options.model !== 'string' || options.model.trim() === '') {
    throw new SwitchyardError(ErrorCodes.CONFIG, 'the OpenAI provider needs a model name');
  }
  // A trailing slash would give `//chat/completions`, which some servers reject with 404.
  const baseUrl = (options.baseUrl ?? 'https://api.openai.com/v1').replace(/\/+$/, '');
  if (!URL.canParse(baseUrl)) {
    throw new SwitchyardError(ErrorCodes.CONFIG, `the OpenAI provider's baseUrl "${baseUrl}" is not a URL`);
  }
  const resolved: ResolvedOpenAiOptions = {
    apiKey: options.apiKey === '' ? undefined : options.apiKey,
    baseUrl,
    model: options.model,
    requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
    maxRetries: options.maxRetries ?? 3,
    retryBaseDelayMs: options.retryBaseDelayMs ?? 500,
    maxRetryDelayMs: options.maxRetryDelayMs ?? 20_000,
  };
  checkWhole('requestTimeoutMs', resolved.requestTimeoutMs, 1);
  checkWhole('maxRetries', resolved.maxRetries, 0);
  checkWhole('retryBaseDelayMs', resolved.retryBaseDelayMs, 0);
  checkWhole('maxRetryDelayMs', resolved.maxRetryDelayMs, 0);
  return resolved;
}

function checkWhole(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new SwitchyardError(ErrorCodes.CONFIG, `the OpenAI provider's ${name} must be a whole number >= ${min} (got ${value})`);
  }
}

async function completeWithRetries(options: ResolvedOpenAiOptions, request: CompletionRequest): Promise<Completion> {
  const attempts = options.maxRetries + 1;
  let failure: RetryableFailure | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (failure) await waitBeforeRetry(options, attempt - 1, failure, request.signal);
    if (request.signal.aborted) throw cancelled(options, request.signal);
    const outcome = await attemptCompletion(options, request);
    if ('text' in outcome) return outcome;
    // A fleet-wide limit pauses every worker for the Retry-After and retries the call itself: not here too.
    if (request.handBackRetryAfter && outcome.kind === 'status' && (outcome.status === 429 || outcome.status === 503) && outcome.retryAfterMs !== undefined) {
      throw new RateLimitedError(
        `OpenAI-compatible server at ${options.baseUrl} answered ${outcome.status}: retry after ${Math.round(outcome.retryAfterMs)} ms${outcome.detail ? ` (${outcome.detail})` : ''}`,
        outcome.status,
        outcome.retryAfterMs,
      );
    }
    failure = outcome;
  }
  // The loop runs at least once and only falls through after a failure.
  throw exhausted(options, failure!, attempts);
}

/** One HTTP request. Returns the completion or a retryable failure; throws when retrying cannot help. */
async function attemptCompletion(options: ResolvedOpenAiOptions, request: CompletionRequest): Promise<Completion | RetryableFailure> {
  const timeout = AbortSignal.timeout(options.requestTimeoutMs);
  const signal = AbortSignal.any([request.signal, timeout]);
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (options.apiKey !== undefined) headers.authorization = `Bearer ${options.apiKey}`;
  let status: number;
  let body: string;
  let retryAfter: string | null;
  try {
    const response = await fetch(`${options.baseUrl}/chat/completions`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ model: options.model, messages: [{ role: 'user', content: request.prompt }] }),
      signal,
    });
    status = response.status;
    retryAfter = response.headers.get('retry-after');
    // The body is read under the same signal, so a server that stalls mid-body also hits the deadline.
    body = await response.text();
  } catch (err) {
    // The caller's abort wins over a timeout that fired at the same moment: the run is gone either way.
    if (request.signal.aborted) throw cancelled(options, request.signal);
    if (timeout.aborted) return { kind: 'timeout' };
    return { kind: 'network', detail: describeNetworkError(err), cause: err };
  }
  if (status >= 200 && status < 300) return parseCompletion(options, body);
  const detail = serverMessage(body, options.apiKey);
  if (status === 429 || (status >= 500 && status <= 599)) {
    return { kind: 'status', status, detail, retryAfterMs: parseRetryAfter(retryAfter) };
  }
  if (status === 401 || status === 403) {
    const what = options.apiKey === undefined ? 'no API key was set and the server requires one' : 'the API key was rejected';
    throw new NonRetryableError(`OpenAI-compatible server at ${options.baseUrl} answered ${status}: ${what}${detail ? ` (${detail})` : ''}`);
  }
  throw new NonRetryableError(`OpenAI-compatible server at ${options.baseUrl} answered ${status}: ${detail || 'no error message'}`);
}

/** The shape we read from a Chat Completions answer; everything is checked, as servers differ. */
interface ChatCompletionBody {
  model?: unknown;
  choices?: Array<{ message?: { content?: unknown } }>;
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
}

function parseCompletion(options: ResolvedOpenAiOptions, body: string): Completion | RetryableFailure {
  let parsed: ChatCompletionBody;
  try {
    parsed = JSON.parse(body) as ChatCompletionBody;
  } catch {
    return { kind: 'malformed', detail: `the body is not JSON (starts with ${JSON.stringify(body.slice(0, 80))})` };
  }
  if (parsed === null || typeof parsed !== 'object') return { kind: 'malformed', detail: 'the body is not a JSON object' };
  if (!Array.isArray(parsed.choices) || parsed.choices.length === 0) return { kind: 'malformed', detail: 'the answer has no choices' };
  const content = parsed.choices[0]?.message?.content;
  if (typeof content !== 'string') return { kind: 'malformed', detail: 'the answer has no choices[0].message.content text' };
  const completion: Completion = { text: content, model: typeof parsed.model === 'string' && parsed.model ? parsed.model : options.model };
  const usage = parseUsage(parsed.usage);
  if (usage) completion.usage = usage;
  return completion;
}

function parseUsage(usage: ChatCompletionBody['usage']): TokenUsage | undefined {
  if (!usage || typeof usage !== 'object') return undefined;
  const { prompt_tokens: prompt, completion_tokens: completion } = usage;
  if (typeof prompt !== 'number' || typeof completion !== 'number') return undefined;
  return { promptTokens: prompt, completionTokens: completion };
}

/**
 * The server's own explanation: `error.message` as OpenAI sends it, else the common alternatives, else
 * the start of the raw body. Any copy of the API key is cut out, as some servers echo it back.
 */
function serverMessage(body: string, apiKey: string | undefined): string {
  let message = body.trim();
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown; detail?: unknown };
    const error = parsed?.error;
    if (error && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') {
      message = (error as { message: string }).message;
    } else if (typeof error === 'string') {
      message = error;
    } else if (typeof parsed?.message === 'string') {
      message = parsed.message;
    } else if (typeof parsed?.detail === 'string') {
      message = parsed.detail;
    }
  } catch {
    // Not JSON: keep the raw text.
  }
  if (apiKey) message = message.split(apiKey).join('[redacted]');
  // OpenAI quotes a masked key ("sk-proj-****abcd") in its 401 message; keep even that out of logs.
  message = message.replace(/\bsk-[\w*.-]+/g, '[redacted]');
  return message.length > MAX_DETAIL_CHARS ? `${message.slice(0, MAX_DETAIL_CHARS)}…` : message;
}

/** `fetch` reports network failures as `TypeError: fetch failed` with the useful part in `cause`. */
function describeNetworkError(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === 'string' && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** `Retry-After` in milliseconds from now, for both forms HTTP allows (seconds, or an HTTP date). */
function parseRetryAfter(header: string | null): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const value = header.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Waits before retry number `retry` (1-based); the caller's abort ends the wait at once. */
async function waitBeforeRetry(options: ResolvedOpenAiOptions, retry: number, failure: RetryableFailure, signal: AbortSignal): Promise<void> {
  const hinted = failure.kind === 'status' ? failure.retryAfterMs : undefined;
  let delay: number;
  if (hinted !== undefined) {
    delay = Math.min(hinted, options.maxRetryDelayMs);
  } else {
    const ceiling = Math.min(options.retryBaseDelayMs * 2 ** (retry - 1), options.maxRetryDelayMs);
    // Half fixed, half random: spreads out workers that failed together without ever retrying at once.
    delay = ceiling / 2 + Math.random() * (ceiling / 2);
  }
  if (signal.aborted) throw cancelled(options, signal);
  if (delay <= 0) return;
  try {
    await sleep(delay, undefined, { signal });
  } catch {
    throw cancelled(options, signal);
  }
}

function cancelled(options: ResolvedOpenAiOptions, signal: AbortSignal): SwitchyardError {
  return new SwitchyardError(ErrorCodes.CANCELLED, `request to OpenAI-compatible server at ${options.baseUrl} was cancelled`, {
    cause: signal.reason,
  });
}

function exhausted(options: ResolvedOpenAiOptions, failure: RetryableFailure, attempts: number): NodeError {
  const after = attempts === 1 ? 'after 1 attempt' : `after ${attempts} attempts`;
  const server = `OpenAI-compatible server at ${options.baseUrl}`;
  switch (failure.kind) {
    case 'status':
      return new NodeError(`${server} answered ${failure.status} ${after}: ${failure.detail || 'no error message'}`);
    case 'timeout':
      return new NodeError(`no answer from ${options.baseUrl} within ${options.requestTimeoutMs} ms (${after})`);
    case 'network':
      return new NodeError(`could not reach ${server} (${after}): ${failure.detail}`, { cause: failure.cause });
    case 'malformed':
      return new NodeError(`${server} sent a malformed answer (${after}): ${failure.detail}`);
  }
}
