// hono/tiny: Hono with its smallest router (PatternRouter), for the Lambda zips' 1 MiB budget (the same
// Hono class as `hono`'s; route modules import it from here too, so no other router is bundled).
import { Hono } from 'hono/tiny';
import { createMiddleware } from 'hono/factory';
import type { BlueprintRegistry } from '../blueprint/load.js';
import type { SwitchyardClient } from '../client/client.js';
import { findDashboardDir } from '../dashboard/assets.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';
import { LlmLimitStore } from '../store/llm-limits.js';
import { ApiStore } from './api-store.js';
import { clip, type ApiEnv } from './env.js';
import { EventFeed } from './event-feed.js';
import type { ApiKeyStore } from './keys.js';
import { authenticate, LOCAL_TENANT } from './middleware/auth.js';
import { limitBody } from './middleware/body-limit.js';
import { allowOnlyRoutedMethods, handleErrors, notFound } from './middleware/errors.js';
import { rateLimit } from './middleware/rate-limit.js';
import { ApiError, ApiErrorCodes, errorResponse } from './respond.js';
import { blueprintsRoutes } from './routes/blueprints.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { limitsRoutes } from './routes/limits.js';
import { runsRoutes } from './routes/runs.js';
import type { ApiHandler, ApiRequest, ApiResponse } from './types.js';

export { LOCAL_TENANT };

export interface ApiOptions {
  /** Starts, reads, awaits and cancels runs. The API's own keys (an `ApiStore`) use its Redis connection and key prefix. */
  client: SwitchyardClient;
  /**
   * The blueprints bundled with this deployment (the client's registry). `POST /runs` and `GET /blueprints`
   * see the stored blueprints (the client's catalog) first, then these.
   */
  blueprints: BlueprintRegistry;
  /** API keys, or no authentication at all (every request is tenant `local` with every scope): for local development only. */
  auth: { mode: 'keys'; keys: ApiKeyStore } | { mode: 'off' };
  /** Whether `POST /runs` accepts a whole blueprint instead of a registered id. @default false */
  inlineBlueprints?: boolean;
  /** Larger request bodies are refused with 413 before they are parsed. @default 262144 (256 KiB) */
  maxBodyBytes?: number;
  /** The longest `GET /runs/{runId}?wait=` honoured; longer waits are cut to this. @default 25 */
  maxWaitSeconds?: number;
  /** Requests per API key per minute (a window opened by a key's first request); beyond it, 429. @default no limit */
  rateLimit?: { perMinute: number };
  /** Where internal failures are logged (never with request headers or bodies). @default JSON lines on stderr */
  logger?: Logger;
  /**
   * Serve the dashboard (`GET /`, `GET /dashboard/…`; the page is public, its API calls are not): `true`
   * finds its files in the package (`src/dashboard/public`), `{ dir }` names the folder, `false` turns it off.
   * @default true
   */
  dashboard?: boolean | { dir: string };
  /** Redis connections that `GET /runs/{runId}/events?wait=` may hold open at once (beyond that it answers at once). @default 16 */
  maxEventConnections?: number;
}

/**
 * The HTTP API: a transport-neutral handler (the function itself), the Hono app behind it and its
 * `fetch`, and what it holds open (the connections its event long polls use).
 */
export type Api = ApiHandler & {
  app: Hono<ApiEnv>;
  /** The app's `fetch`: what `hono/aws-lambda`'s `handle` and `@hono/node-server` serve. */
  fetch: ApiFetch;
  /** Closes the API's own connections (long polls in progress end). The client is the caller's to close. */
  close(): Promise<void>;
};

export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;
export const DEFAULT_MAX_WAIT_SECONDS = 25;

interface ResolvedApiOptions {
  client: SwitchyardClient;
  blueprints: BlueprintRegistry;
  auth: ApiOptions['auth'];
  inlineBlueprints: boolean;
  maxBodyBytes: number;
  maxWaitSeconds: number;
  rateLimitPerMinute: number | undefined;
  logger: Logger;
  /** The dashboard's folder; undefined when it is off or not installed. */
  dashboardDir: string | undefined;
  maxEventConnections: number;
}

function resolveApiOptions(options: ApiOptions): ResolvedApiOptions {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxWaitSeconds = options.maxWaitSeconds ?? DEFAULT_MAX_WAIT_SECONDS;
  const perMinute = options.rateLimit?.perMinute;
  const check = (ok: boolean, message: string) => {
    if (!ok) throw new SwitchyardError(ErrorCodes.CONFIG, message);
  };
  check(Number.isInteger(maxBodyBytes) && maxBodyBytes > 0, `maxBodyBytes must be a positive whole number (got ${maxBodyBytes})`);
  check(Number.isFinite(maxWaitSeconds) && maxWaitSeconds >= 0, `maxWaitSeconds must be a number >= 0 (got ${maxWaitSeconds})`);
  check(perMinute === undefined || (Number.isInteger(perMinute) && perMinute > 0), `rateLimit.perMinute must be a positive whole number (got ${perMinute})`);
  check(options.auth?.mode === 'off' || (options.auth?.mode === 'keys' && options.auth.keys !== undefined), 'auth must be { mode: "keys", keys } or { mode: "off" }');
  const maxEventConnections = options.maxEventConnections ?? 16;
  check(Number.isInteger(maxEventConnections) && maxEventConnections >= 0, `maxEventConnections must be a whole number >= 0 (got ${maxEventConnections})`);
  const dashboard = options.dashboard ?? true;
  return {
    client: options.client,
    blueprints: options.blueprints,
    auth: options.auth,
    inlineBlueprints: options.inlineBlueprints ?? false,
    maxBodyBytes,
    maxWaitSeconds,
    rateLimitPerMinute: perMinute,
    logger: options.logger ?? createLogger({ fields: { component: 'api' } }),
    dashboardDir: dashboard === false ? undefined : dashboard === true ? findDashboardDir() : dashboard.dir,
    maxEventConnections,
  };
}

/** The app's `fetch`, as Hono's adapters and `startApiServer` take it. */
export type ApiFetch = (request: Request, env?: ApiEnv['Bindings']) => Response | Promise<Response>;

/**
 * The HTTP API as a Hono app: the body limit, the dashboard, the runs, blueprints and limits routes (each
 * authenticating, rate-limiting and checking its scope as route middleware, so unknown paths and wrong
 * methods are answered before authentication), 405 fallbacks, and JSON errors from `onError` and
 * `notFound`. Every input is validated before anything reaches Redis; every answer is JSON with
 * `cache-control: no-store` (the dashboard's files aside); no request, however malformed, gets a 500
 * (only a genuine internal failure, such as Redis being unreachable, does, with a generic message).
 */
export function createApiApp(options: ApiOptions): { app: Hono<ApiEnv>; close(): Promise<void> } {
  const opts = resolveApiOptions(options);
  const { client, blueprints } = opts;
  // The API's own keys (tenant tags, idempotency claims, run index, rate-limit windows) and event reads.
  const store = new ApiStore(client.store.redis, client.store.keys);
  const feed = new EventFeed(client.store.redis, { maxConnections: opts.maxEventConnections });

  // Each route's first middleware: authentication, then the rate limit (counted per authenticated caller).
  const identify = authenticate(opts.auth);
  const limit = opts.rateLimitPerMinute === undefined ? undefined : rateLimit(store, opts.rateLimitPerMinute);
  const guard = limit === undefined ? identify : createMiddleware<ApiEnv>((c, next) => identify(c, async () => void (await limit(c, next))));

  // Trailing slashes are ignored (`/runs/` is `/runs`), as before.
  const app = new Hono<ApiEnv>({ strict: false });
  app.use(limitBody(opts.maxBodyBytes));
  app.route('/', dashboardRoutes({ dir: opts.dashboardDir }));
  const { catalog } = client;
  app.route('/', runsRoutes({ client, blueprints, catalog, store, feed, guard, inlineBlueprints: opts.inlineBlueprints, maxWaitSeconds: opts.maxWaitSeconds }));
  app.route('/', blueprintsRoutes({ blueprints, catalog, guard }));
  app.route('/', limitsRoutes({ limits: new LlmLimitStore(client.store.redis, client.store.keys.prefix), guard }));
  allowOnlyRoutedMethods(app);
  app.notFound(notFound);
  app.onError(handleErrors(opts.logger));
  return { app, close: () => feed.close() };
}

/**
 * The HTTP API: the Hono app's `fetch` (for `hono/aws-lambda`, `@hono/node-server` or any fetch-style
 * server) and, as the function itself, a transport-neutral handler from {@link ApiRequest} to
 * {@link ApiResponse} for callers that have no `Request` at hand.
 */
export function createApi(options: ApiOptions): Api {
  const { app, close } = createApiApp(options);
  const fetch: ApiFetch = (request, env) => app.fetch(request, env ?? {});
  const api = async (req: ApiRequest): Promise<ApiResponse> => {
    const request = toRequest(req);
    const response = request instanceof Response ? request : await fetch(request, { sourceIp: req.sourceIp });
    return { status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() };
  };
  return Object.assign(api, { app, fetch, close });
}

/** An {@link ApiRequest} as a `Request`, or the JSON error to answer when it cannot be one. */
function toRequest(req: ApiRequest): Request | Response {
  const method = typeof req.method === 'string' ? req.method.toUpperCase() : '';
  const path = typeof req.path === 'string' ? req.path : '';
  if (!path.startsWith('/')) return errorResponse(new ApiError(404, ApiErrorCodes.NOT_FOUND, `no route ${clip(method)} ${clip(path)}`));
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(req.query ?? {})) if (typeof value === 'string') query.append(name, value);
  const search = query.size > 0 ? `?${query}` : '';
  // The path is used as sent; only what would end it early ("?", "#") is escaped.
  const url = `http://api.invalid${path.replace(/[?#]/g, encodeURIComponent)}${search}`;
  const headers = new Headers();
  try {
    for (const [name, value] of Object.entries(req.headers ?? {})) {
      // Framing is the body's own (its length is set below): a stale content-length would mislead the body limit.
      if (typeof value === 'string' && name.toLowerCase() !== 'content-length' && name.toLowerCase() !== 'transfer-encoding') headers.set(name, value);
    }
    const body = method === 'GET' || method === 'HEAD' || typeof req.body !== 'string' ? undefined : req.body;
    if (body !== undefined) headers.set('content-length', String(Buffer.byteLength(body, 'utf8')));
    return new Request(url, { method, headers, body });
  } catch (err) {
    return errorResponse(new ApiError(400, ApiErrorCodes.BAD_REQUEST, `the request could not be read: ${err instanceof Error ? err.message : String(err)}`));
  }
}
