import type { BedrockRuntimeClient, ConverseCommandOutput } from '@aws-sdk/client-bedrock-runtime';
import { ErrorCodes, NodeError, NonRetryableError, SwitchyardError } from '../errors.js';
import type { Completion, CompletionRequest, LlmProvider } from './types.js';

/** Options of {@link createBedrockProvider}. Only `model` is required; credentials come from the AWS default chain. */
export interface BedrockOptions {
  /** Bedrock model or inference-profile id (or ARN), e.g. `anthropic.claude-3-5-haiku-20241022-v1:0`. */
  model: string;
  /** AWS region. @default the SDK's own lookup (`AWS_REGION`, then the shared config file) */
  region?: string;
  /** Endpoint URL that replaces the regional one (VPC endpoints, tests). @default the regional endpoint */
  endpoint?: string;
  /** Retries after the first attempt, done by the SDK (throttling, 5xx, network errors, timeouts). @default 3 */
  maxRetries?: number;
  /** Deadline of one HTTP request, in milliseconds. @default 60000 */
  requestTimeoutMs?: number;
}

/** Errors that another attempt with the same request and credentials cannot fix. */
const NON_RETRYABLE_ERRORS = new Set([
  'AccessDeniedException',
  'ValidationException',
  'ResourceNotFoundException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'ServiceQuotaExceededException',
]);
/** Errors that mean the credentials, not the request, are at fault. */
const CREDENTIAL_ERRORS = new Set(['AccessDeniedException', 'UnrecognizedClientException', 'InvalidSignatureException', 'ExpiredTokenException']);

/**
 * Creates a provider backed by Amazon Bedrock's Converse API. Credentials are never passed in: the SDK
 * finds them (environment, shared profile, instance or task role). Transient failures are retried by
 * the SDK; what is left over is thrown as a retryable {@link NodeError} so the engine's node retries
 * can take over.
 */
export function createBedrockProvider(options: BedrockOptions): LlmProvider {
  if (typeof options.model !== 'string' || options.model.trim() === '') {
    throw new SwitchyardError(ErrorCodes.CONFIG, 'the Bedrock provider needs a model id');
  }
  const maxRetries = options.maxRetries ?? 3;
  const requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new SwitchyardError(ErrorCodes.CONFIG, `the Bedrock provider's maxRetries must be a whole number >= 0 (got ${maxRetries})`);
  }
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs < 1) {
    throw new SwitchyardError(ErrorCodes.CONFIG, `the Bedrock provider's requestTimeoutMs must be a whole number >= 1 (got ${requestTimeoutMs})`);
  }
  // The SDK is loaded on first use, so processes that never call Bedrock never load it.
  let ready: Promise<{ client: BedrockRuntimeClient; ConverseCommand: typeof import('@aws-sdk/client-bedrock-runtime').ConverseCommand }> | undefined;
  const connect = async () => {
    const [{ BedrockRuntimeClient, ConverseCommand }, { NodeHttpHandler }] = await Promise.all([
      import('@aws-sdk/client-bedrock-runtime'),
      import('@smithy/node-http-handler'),
    ]);
    const client = new BedrockRuntimeClient({
      ...(options.region ? { region: options.region } : {}),
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      maxAttempts: maxRetries + 1,
      // HTTP/1.1 rather than the client's default HTTP/2 handler: Converse needs nothing from HTTP/2, and
      // only this handler enforces a deadline on the whole request (HTTP/2's `requestTimeout` is an idle
      // timeout). Without `throwOnRequestTimeout` a breached timeout is merely logged as a warning.
      requestHandler: new NodeHttpHandler({ requestTimeout: requestTimeoutMs, throwOnRequestTimeout: true }),
    });
    return { client, ConverseCommand };
  };
  const model = options.model;
  const where = options.endpoint ? `Bedrock at ${options.endpoint}` : 'Bedrock';
  return {
    name: 'bedrock',
    model,
    async complete(request: CompletionRequest): Promise<Completion> {
      if (request.signal.aborted) throw cancelled(where, request.signal);
      let output: ConverseCommandOutput;
      try {
        ready ??= connect();
        const { client, ConverseCommand } = await ready;
        output = await client.send(
          new ConverseCommand({ modelId: model, messages: [{ role: 'user', content: [{ text: request.prompt }] }] }),
          { abortSignal: request.signal },
        );
      } catch (err) {
        throw mapBedrockError(err, { where, model, requestTimeoutMs, signal: request.signal });
      }
      return toCompletion(output, model, where);
    },
  };
}

function toCompletion(output: ConverseCommandOutput, model: string, where: string): Completion {
  const content = output.output?.message?.content;
  if (!Array.isArray(content)) {
    throw new NodeError(`${where} sent a malformed answer for ${model}: no output.message.content`);
  }
  // Models may split their answer over several text blocks (and add non-text ones, e.g. reasoning).
  const text = content.map((block) => block.text ?? '').join('');
  const completion: Completion = { text, model };
  const { inputTokens, outputTokens } = output.usage ?? {};
  if (typeof inputTokens === 'number' && typeof outputTokens === 'number') {
    completion.usage = { promptTokens: inputTokens, completionTokens: outputTokens };
  }
  return completion;
}

interface ErrorScope {
  where: string;
  model: string;
  requestTimeoutMs: number;
  signal: AbortSignal;
}

/** What the SDK's errors carry beyond `name` and `message` (service errors and transport errors alike). */
interface SdkErrorFields {
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

/** Turns whatever the SDK threw into a SwitchyardError that says whether retrying may help. */
function mapBedrockError(err: unknown, scope: ErrorScope): SwitchyardError {
  if (scope.signal.aborted) return cancelled(scope.where, scope.signal, err);
  if (!(err instanceof Error)) return new NodeError(`${scope.where} failed for ${scope.model}: ${String(err)}`, { cause: err });
  const { $fault, $metadata } = err as Error & SdkErrorFields;
  const status = $metadata?.httpStatusCode;
  const attempts = $metadata?.attempts;
  const after = attempts === undefined ? '' : attempts === 1 ? ' after 1 attempt' : ` after ${attempts} attempts`;
  const message = err.message || 'no error message';
  if (CREDENTIAL_ERRORS.has(err.name)) {
    return new NonRetryableError(`${scope.where} rejected the AWS credentials for ${scope.model} (${err.name}): ${message}`, { cause: err });
  }
  if (NON_RETRYABLE_ERRORS.has(err.name)) {
    return new NonRetryableError(`${scope.where} rejected the request for ${scope.model} (${err.name}): ${message}`, { cause: err });
  }
  if (err.name === 'TimeoutError') {
    return new NodeError(`no answer from ${scope.where} within ${scope.requestTimeoutMs} ms${after}`, { cause: err });
  }
  // Any other 4xx is the request's fault, unless the service itself marked it as transient (throttling).
  const clientFault = $fault === 'client' && status !== undefined && status >= 400 && status < 500 && status !== 429 && status !== 408;
  const transient = err.name === 'ThrottlingException' || err.name === 'ServiceUnavailableException' || err.name === 'ModelNotReadyException' || err.name === 'ModelErrorException';
  if (clientFault && !transient) {
    return new NonRetryableError(`${scope.where} rejected the request for ${scope.model} (${err.name}, ${status}): ${message}`, { cause: err });
  }
  // Throttling, 5xx, network failures, and errors without an HTTP status (DNS, resets) may pass.
  const answered = status === undefined ? err.name : `${err.name} (${status})`;
  return new NodeError(`${scope.where} answered ${answered} for ${scope.model}${after}: ${message}`, { cause: err });
}

function cancelled(where: string, signal: AbortSignal, cause: unknown = signal.reason): SwitchyardError {
  return new SwitchyardError(ErrorCodes.CANCELLED, `request to ${where} was cancelled`, { cause });
}
