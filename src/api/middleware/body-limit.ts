import { bodyLimit } from 'hono/body-limit';
import { createMiddleware } from 'hono/factory';
import type { ApiEnv } from '../env.js';
import { payloadTooLarge } from '../respond.js';

/**
 * A body over `maxBytes` is refused with 413 before any route reads it. A declared length is checked
 * without touching the body (so a server can discard the unread upload and keep the connection); a body
 * streaming in without one (chunked) is counted by Hono's body limit as it is read, and the 413 then
 * also closes the connection, since the rest of that upload is left unread.
 */
export function limitBody(maxBytes: number) {
  const counting = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      const refused = payloadTooLarge(maxBytes);
      refused.headers.connection = 'close';
      throw refused;
    },
  });
  return createMiddleware<ApiEnv>(async (c, next) => {
    const declared = c.req.header('content-length');
    if (declared !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number(declared) > maxBytes) throw payloadTooLarge(maxBytes);
      return next();
    }
    if (c.req.header('transfer-encoding') !== undefined) return counting(c, next);
    return next();
  });
}
