import { createMiddleware } from 'hono/factory';
import { sourceIpOf, type ApiEnv } from '../env.js';
import { API_SCOPES, type ApiKeyStore, type ApiScope } from '../keys.js';
import { ApiError, ApiErrorCodes } from '../respond.js';

/** The tenant of every request when authentication is off. */
export const LOCAL_TENANT = 'local';

/** API keys (only `verify` is used), or no authentication at all: every request is tenant `local` with every scope. */
export type ApiAuth = { mode: 'keys'; keys: Pick<ApiKeyStore, 'verify'> } | { mode: 'off' };

/**
 * Sets `principal` from the API key in `authorization: Bearer <key>` or `x-api-key: <key>`, or answers
 * 401 (with `www-authenticate: Bearer`). With authentication off, the caller is tenant `local` with every
 * scope, identified by its address for rate limiting.
 */
export function authenticate(auth: ApiAuth) {
  return createMiddleware<ApiEnv>(async (c, next) => {
    if (auth.mode === 'off') {
      const ip = sourceIpOf(c.env);
      c.set('principal', { tenant: LOCAL_TENANT, scopes: API_SCOPES, identity: ip ? `ip:${ip}` : LOCAL_TENANT });
      return next();
    }
    const unauthenticated = (message: string) => new ApiError(401, ApiErrorCodes.UNAUTHENTICATED, message, undefined, { 'www-authenticate': 'Bearer' });
    const authorization = c.req.header('authorization');
    let key = c.req.header('x-api-key');
    if (authorization !== undefined) {
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!bearer) throw unauthenticated('the authorization header must be "Bearer <API key>"');
      key = bearer[1];
    }
    if (key === undefined || key.trim() === '') {
      throw unauthenticated('missing API key: send "authorization: Bearer <key>" or "x-api-key: <key>"');
    }
    const found = await auth.keys.verify(key.trim());
    if (!found) throw unauthenticated('invalid or revoked API key');
    c.set('principal', { tenant: found.tenant, scopes: found.scopes, identity: `key:${found.id}` });
    return next();
  });
}

/** 403 unless the authenticated caller's key has `scope` (runs after {@link authenticate}). */
export function requireScope(scope: ApiScope) {
  return createMiddleware<ApiEnv>(async (c, next) => {
    if (!c.get('principal').scopes.includes(scope)) {
      throw new ApiError(403, ApiErrorCodes.FORBIDDEN, `this API key lacks the "${scope}" scope`);
    }
    return next();
  });
}
