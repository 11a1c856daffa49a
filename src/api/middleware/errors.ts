import type { ErrorHandler, Hono, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ErrorCodes, LimitExceededError, SwitchyardError, ValidationError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { clip, rawPath, type ApiEnv } from '../env.js';
import { validationError } from '../json-body.js';
import { ApiError, ApiErrorCodes, errorResponse, type ApiErrorCode } from '../respond.js';

/**
 * `app.onError`: every error becomes the API's JSON shape. An {@link ApiError} describes the request;
 * the engine's not-found and validation errors are mapped; anything else is an internal failure,
 * logged (never with headers or body) and answered 500 with a generic message.
 */
export function handleErrors(logger: Logger): ErrorHandler<ApiEnv> {
  return (err, c) => {
    const known = toApiError(err);
    if (known) return errorResponse(known);
    logger.error('api request failed', {
      method: c.req.method,
      path: clip(rawPath(c.req.url)),
      error: `${err.name}: ${err.message}`,
      stack: err.stack,
    });
    return errorResponse(new ApiError(500, ApiErrorCodes.INTERNAL, 'internal error: the request could not be completed, try again later'));
  };
}

/** `app.notFound`: a JSON 404 naming the method and path. */
export const notFound: NotFoundHandler<ApiEnv> = (c) =>
  errorResponse(new ApiError(404, ApiErrorCodes.NOT_FOUND, `no route ${clip(c.req.method.toUpperCase())} ${clip(rawPath(c.req.url))}`));

/**
 * Hono answers a known path with a method it does not route as it answers an unknown path (404). This
 * registers, after every route, one fallback per routed path that answers 405 with an `allow` header
 * listing the path's methods (in the order they were registered). Call it once all routes are added.
 */
export function allowOnlyRoutedMethods(app: Hono<ApiEnv>): void {
  const methodsByPath = new Map<string, string[]>();
  for (const { method, path } of app.routes) {
    if (method === 'ALL') continue; // middleware and earlier fallbacks
    const methods = methodsByPath.get(path) ?? [];
    if (!methods.includes(method)) methods.push(method);
    methodsByPath.set(path, methods);
  }
  for (const [path, methods] of methodsByPath) {
    const allow = methods.join(', ');
    app.all(path, (c) => {
      const method = clip(c.req.method.toUpperCase());
      throw new ApiError(405, ApiErrorCodes.METHOD_NOT_ALLOWED, `${method} is not allowed on ${clip(rawPath(c.req.url))} (allowed: ${allow})`, undefined, { allow });
    });
  }
}

/** Errors that describe the request, not a failure: their API form. */
export function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof ValidationError) {
    return validationError(err.issues.map((i) => ({ path: i.path, message: i.message })), 'blueprint');
  }
  if (err instanceof SwitchyardError) {
    if (err.code === ErrorCodes.RUN_NOT_FOUND) return new ApiError(404, ApiErrorCodes.RUN_NOT_FOUND, err.message);
    if (err.code === ErrorCodes.BLUEPRINT_NOT_FOUND) return new ApiError(404, ApiErrorCodes.BLUEPRINT_NOT_FOUND, err.message);
    if (err.code === ErrorCodes.VALIDATION) return new ApiError(400, ApiErrorCodes.VALIDATION, err.message);
    if (err instanceof LimitExceededError) {
      return new ApiError(413, ApiErrorCodes.LIMIT_EXCEEDED, err.message, { limit: err.limit, value: err.value, max: err.max });
    }
  }
  // Hono's own (its body parsers, a middleware of its): the status it chose, in the API's shape.
  if (err instanceof HTTPException && err.status < 500) {
    return new ApiError(err.status, HTTP_EXCEPTION_CODES[err.status] ?? ApiErrorCodes.BAD_REQUEST, err.message || `request refused (${err.status})`);
  }
  return undefined;
}

const HTTP_EXCEPTION_CODES: Record<number, ApiErrorCode> = {
  401: ApiErrorCodes.UNAUTHENTICATED,
  403: ApiErrorCodes.FORBIDDEN,
  404: ApiErrorCodes.NOT_FOUND,
  405: ApiErrorCodes.METHOD_NOT_ALLOWED,
  413: ApiErrorCodes.PAYLOAD_TOO_LARGE,
  429: ApiErrorCodes.RATE_LIMITED,
};
