import type { LambdaClient, LambdaClientConfig } from '@aws-sdk/client-lambda';
import { z } from 'zod';
import { NodeError, NonRetryableError } from '../errors.js';
import { InputsSchema, renderTemplate, resolveInputs, templateSources } from './template-text.js';
import type { NodeContext, NodeKind, NodeReads } from '../types/node-kind.js';

/** How the `lambda` node kind reaches AWS Lambda. Anything left out comes from the SDK's default chain. */
export interface LambdaKindOptions {
  /** AWS region. @default the SDK's (AWS_REGION, shared config) */
  region?: string;
  /** Endpoint URL, e.g. a local emulator. @default the region's Lambda endpoint */
  endpoint?: string;
  /** Static credentials, for tests. @default the SDK's default credential chain */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** SDK-level attempts per node attempt (throttling and 5xx are retried inside the SDK first). @default the SDK's (3) */
  maxAttempts?: number;
}

const LambdaParams = z
  .object({
    /** Function name, ARN or partial ARN, optionally with `:<version-or-alias>`. */
    functionName: z.string().min(1),
    /** A template rendered with `inputs`; sent as is when it is JSON, else as a JSON string. */
    payload: z.string().optional(),
    /** Placeholder sources for `payload`; alone, the object of resolved inputs is the payload. */
    inputs: InputsSchema.optional(),
  })
  .strict()
  .refine((p) => p.payload !== undefined || p.inputs !== undefined, {
    message: 'needs "payload" (a template) or "inputs" (sent as a JSON object)',
  });
/** Params of a `lambda` node. */
export type LambdaParams = z.infer<typeof LambdaParams>;

/** Errors where the same request cannot succeed later: the function, the caller's rights or the request is wrong. */
const NON_RETRYABLE_ERRORS = new Set([
  'ResourceNotFoundException',
  'InvalidRequestContentException',
  'InvalidParameterValueException',
  'RequestTooLargeException',
  'UnsupportedMediaTypeException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
]);
/** 4xx statuses that are transient despite being client errors (timeout, function being updated, throttling). */
const RETRYABLE_CLIENT_STATUSES = new Set([408, 409, 429]);

/**
 * The `lambda` node kind: invokes an AWS Lambda function synchronously (`RequestResponse`) and makes its
 * decoded result the node's output. A function error (`FunctionError` in the response) fails the node
 * without retry, with the function's own `errorType: errorMessage`; SDK errors are retried unless they
 * say the function, the caller's rights or the request is wrong.
 *
 * Delivery is at least once: a retried or redelivered node invokes the function again, and the payload is
 * sent unaltered (no idempotency key is added), so a function with side effects must de-duplicate on its
 * own data.
 *
 * One {@link LambdaClient} per kind instance, created on first use so a worker that never runs a
 * `lambda` node never resolves AWS configuration.
 */
export function createLambdaKind(options: LambdaKindOptions = {}): NodeKind<LambdaParams> {
  // The SDK is loaded on first use: processes that only validate blueprints (the HTTP API) never pay for it.
  let sdk: Promise<typeof import('@aws-sdk/client-lambda')> | undefined;
  let client: LambdaClient | undefined;
  const getClient = async (): Promise<{ client: LambdaClient; InvokeCommand: typeof import('@aws-sdk/client-lambda').InvokeCommand }> => {
    sdk ??= import('@aws-sdk/client-lambda');
    const { LambdaClient, InvokeCommand } = await sdk;
    if (!client) {
      const config: LambdaClientConfig = {};
      if (options.region !== undefined) config.region = options.region;
      if (options.endpoint !== undefined) config.endpoint = options.endpoint;
      if (options.credentials !== undefined) config.credentials = options.credentials;
      if (options.maxAttempts !== undefined) config.maxAttempts = options.maxAttempts;
      client = new LambdaClient(config);
    }
    return { client, InvokeCommand };
  };

  return {
    name: 'lambda',
    params: LambdaParams,
    reads(params): NodeReads {
      const sources = templateSources(params.payload ?? '', params.inputs);
      return { context: sources, outputs: sources };
    },
    async run(ctx) {
      const { functionName } = ctx.params;
      let response;
      try {
        const { client, InvokeCommand } = await getClient();
        response = await client.send(
          new InvokeCommand({ FunctionName: functionName, InvocationType: 'RequestResponse', Payload: encodePayload(ctx) }),
          { abortSignal: ctx.signal },
        );
      } catch (err) {
        throw toNodeError(err, functionName, ctx.nodeId);
      }
      const result = decodePayload(response.Payload);
      if (response.FunctionError !== undefined) {
        throw new NonRetryableError(`Lambda ${functionName} failed: ${describeFunctionError(result, response.FunctionError)}`, {
          nodeId: ctx.nodeId,
        });
      }
      return { output: result };
    },
  };
}

function encodePayload(ctx: NodeContext<LambdaParams>): Uint8Array {
  const { payload, inputs } = ctx.params;
  let json: string;
  if (payload === undefined) {
    json = JSON.stringify(resolveInputs(inputs, ctx.resolve));
  } else {
    const text = renderTemplate(payload, inputs, ctx.resolve);
    // Lambda rejects a body that is not JSON, so plain text goes as a JSON string rather than failing.
    json = isJson(text) ? text : JSON.stringify(text);
  }
  return new TextEncoder().encode(json);
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The function's result: parsed JSON when it is JSON, else the text; undefined for an empty body. */
function decodePayload(payload: Uint8Array | undefined): unknown {
  if (payload === undefined || payload.byteLength === 0) return undefined;
  const text = new TextDecoder().decode(payload);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** `errorType: errorMessage` from Lambda's error payload; the raw result when it has another shape. */
function describeFunctionError(result: unknown, functionError: string): string {
  if (typeof result === 'object' && result !== null && 'errorMessage' in result) {
    const { errorMessage, errorType } = result as { errorMessage?: unknown; errorType?: unknown };
    return `${typeof errorType === 'string' ? errorType : functionError}: ${String(errorMessage)}`;
  }
  return `${functionError}: ${typeof result === 'string' ? result : JSON.stringify(result) ?? 'no details'}`;
}

/** SDK and network errors: non-retryable when the same request cannot succeed later, else retryable. */
function toNodeError(err: unknown, functionName: string, nodeId: string): NodeError | NonRetryableError {
  const name = err instanceof Error ? err.name : 'Error';
  const detail = err instanceof Error ? err.message || name : String(err);
  const message = `Lambda ${functionName}: ${name}: ${detail}`;
  const status = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  const clientFault = status !== undefined && status >= 400 && status < 500 && !RETRYABLE_CLIENT_STATUSES.has(status);
  // Access denials also come as 5xx (KMS/EC2AccessDeniedException: the function's own role); retrying cannot fix them.
  if (NON_RETRYABLE_ERRORS.has(name) || name.includes('AccessDenied') || clientFault) {
    return new NonRetryableError(message, { nodeId, cause: err });
  }
  return new NodeError(message, { nodeId, cause: err });
}
