import { createMiddleware } from 'hono/factory';
import type { ApiStore } from '../api-store.js';
import type { ApiEnv } from '../env.js';
import { ApiError, ApiErrorCodes } from '../respond.js';

/**
 * At most `perMinute` requests per caller (the authenticated `principal`'s identity) in a window opened
 * by its first request; beyond it, 429 with `retry-after`. Runs after authentication.
 */
export function rateLimit(store: Pick<ApiStore, 'countRequest'>, perMinute: number) {
  return createMiddleware<ApiEnv>(async (c, next) => {
    const counted = await store.countRequest(c.get('principal').identity, perMinute);
    if (counted.limited) {
      throw new ApiError(429, ApiErrorCodes.RATE_LIMITED, `more than ${perMinute} requests per minute: retry in ${counted.retryAfterSeconds} s`, undefined, {
        'retry-after': String(counted.retryAfterSeconds),
      });
    }
    return next();
  });
}
