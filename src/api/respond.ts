/** The error codes the HTTP API answers with (`{ error: { code } }`), by HTTP status. */
export const ApiErrorCodes = {
  VALIDATION: 'VALIDATION',
  INVALID_JSON: 'INVALID_JSON',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  INLINE_BLUEPRINTS_DISABLED: 'INLINE_BLUEPRINTS_DISABLED',
  RUN_NOT_FOUND: 'RUN_NOT_FOUND',
  BLUEPRINT_NOT_FOUND: 'BLUEPRINT_NOT_FOUND',
  NOT_FOUND: 'NOT_FOUND',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  IDEMPOTENCY_CONFLICT: 'IDEMPOTENCY_CONFLICT',
  RUN_ENDED: 'RUN_ENDED',
  /** A redrive of a run that is running or completed (its status is in the details). */
  RUN_NOT_REDRIVABLE: 'RUN_NOT_REDRIVABLE',
  /** A signal to a node that is not waiting for one (its status is in the details). */
  NODE_NOT_WAITING: 'NODE_NOT_WAITING',
  NODE_NOT_FOUND: 'NODE_NOT_FOUND',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** A limit of src/types/limits.ts (the run's input over MAX_CONTEXT_BYTES); details name it and the value. */
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  RATE_LIMITED: 'RATE_LIMITED',
  INTERNAL: 'INTERNAL',
  NOT_IMPLEMENTED: 'NOT_IMPLEMENTED',
  /** The request itself could not be read: a malformed URL, host header or method. */
  BAD_REQUEST: 'BAD_REQUEST',
} as const;
export type ApiErrorCode = (typeof ApiErrorCodes)[keyof typeof ApiErrorCodes];

/** One located problem in a request, e.g. `{ path: '$.input', message: 'expected record' }`. */
export interface RequestIssue {
  path: string;
  message: string;
}

/**
 * An answer other than success. Handlers throw it; the API turns it into `{ error: { code, message, details } }`.
 * Anything else thrown is an internal failure (500, generic message).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Headers every response carries: API answers are per-caller and change, so nothing may cache them. */
const BASE_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' } as const;

/** A JSON answer with the headers every response carries. */
export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...headers, ...BASE_HEADERS } });
}

/** `{ error: { code, message, details? } }` with the error's status and headers. */
export function errorResponse(err: ApiError): Response {
  const error: { code: string; message: string; details?: unknown } = { code: err.code, message: err.message };
  if (err.details !== undefined) error.details = err.details;
  return jsonResponse(err.status, { error }, err.headers);
}

/** 413 as both the API and the local server (which stops reading early) send it. */
export function payloadTooLarge(limitBytes: number): ApiError {
  return new ApiError(413, ApiErrorCodes.PAYLOAD_TOO_LARGE, `request body is larger than ${limitBytes} bytes`, { limitBytes });
}
