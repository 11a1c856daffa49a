import type { ApiScope } from './keys.js';

/** Who is calling: a tenant, what it may do, and what rate limits count against. */
export interface Principal {
  tenant: string;
  scopes: readonly ApiScope[];
  /** `key:<id>`, or `ip:<address>` (or `local`) when authentication is off. */
  identity: string;
}

/**
 * What the adapters hand the app as `c.env`: `hono/aws-lambda` passes the API Gateway event's request
 * context, `@hono/node-server` the incoming message, and `createApi`'s {@link ApiHandler} adapter the
 * request's source address. Only the caller's address is read from it.
 */
export interface ApiBindings {
  requestContext?: { http?: { sourceIp?: string } };
  incoming?: { socket?: { remoteAddress?: string } };
  sourceIp?: string;
}

/** The Hono environment of every API route and middleware: the adapters' bindings and the authenticated caller. */
export type ApiEnv = {
  Bindings: ApiBindings;
  Variables: { principal: Principal };
};

/** The caller's address as the adapter saw it; undefined when it did not say. */
export function sourceIpOf(env: ApiBindings | undefined): string | undefined {
  return env?.requestContext?.http?.sourceIp ?? env?.incoming?.socket?.remoteAddress ?? env?.sourceIp;
}

/**
 * The request path as sent (still percent-encoded), from the request URL. Hono routes on a decoded form;
 * messages and the dashboard's file names use this one, as the hand-written router did.
 */
export function rawPath(url: string): string {
  const start = url.indexOf('/', url.indexOf('://') + 3);
  if (start === -1) return '/';
  const end = url.slice(start).search(/[?#]/);
  return end === -1 ? url.slice(start) : url.slice(start, start + end);
}

/** Echoed request text is kept short. */
export function clip(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
