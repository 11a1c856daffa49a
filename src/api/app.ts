import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { BlueprintRegistry, LoadedBlueprint } from '../blueprint/load.js';
import { BLUEPRINT_ID_PATTERN, BlueprintSchema, type Blueprint } from '../blueprint/schema.js';
import type { SwitchyardClient } from '../client/client.js';
import { findDashboardDir, readDashboardAsset } from '../dashboard/assets.js';
import { RUN_ID_PATTERN } from '../engine/ids.js';
import type { RunView } from '../engine/run-view.js';
import { isTerminalRunStatus, RunStatuses } from '../engine/statuses.js';
import { ErrorCodes, SwitchyardError, ValidationError } from '../errors.js';
import { layoutBlueprint } from '../graph/layout.js';
import { createLogger, type Logger } from '../logger.js';
import { ApiStore, sha256 } from './api-store.js';
import { EventFeed, STREAM_ID_PATTERN } from './event-feed.js';
import { canonicalJson, issuesOf, parseJsonBody, validate, validationError } from './json-body.js';
import { API_SCOPES, type ApiKeyStore, type ApiScope } from './keys.js';
import { toMermaid } from './mermaid.js';
import { ApiError, ApiErrorCodes, errorResponse, jsonResponse, payloadTooLarge } from './respond.js';
import type { ApiHandler, ApiRequest, ApiResponse } from './types.js';

export interface ApiOptions {
  /** Starts, reads, awaits and cancels runs. The API reads `client.store.redis` and its key prefix for its own keys. */
  client: SwitchyardClient;
  /** The blueprints `POST /runs` can name and `GET /blueprints` lists (the client's registry). */
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

/** The HTTP API handler, and what it holds open (the connections its event long polls use). */
export type Api = ApiHandler & {
  /** Closes the API's own connections (long polls in progress end). The client is the caller's to close. */
  close(): Promise<void>;
};

export const DEFAULT_MAX_BODY_BYTES = 256 * 1024;
export const DEFAULT_MAX_WAIT_SECONDS = 25;
/** The tenant of every request when authentication is off. */
export const LOCAL_TENANT = 'local';

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

/** Who is calling: a tenant, what it may do, and what rate limits count against. */
interface Principal {
  tenant: string;
  scopes: readonly ApiScope[];
  identity: string;
}

interface RouteContext {
  req: ApiRequest;
  params: Record<string, string>;
  principal: Principal;
}

interface Route {
  method: 'GET' | 'POST';
  /** Segments; `:name` captures one (percent-decoded) segment. */
  pattern: string;
  /** What the caller's key must allow; undefined: any valid key. */
  scope: ApiScope | undefined;
  handle(ctx: RouteContext): Promise<ApiResponse>;
}

type RouteMatch = { route: Route; params: Record<string, string> } | { allow: string[] } | undefined;

/**
 * The route for a method and path: a match, the methods the path does allow (405), or undefined (404).
 * Segments are percent-decoded after splitting, so an encoded "/" stays inside its segment.
 */
function matchRoute(routes: readonly Route[], method: string, path: string): RouteMatch {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  if (!trimmed.startsWith('/')) return undefined;
  let segments: string[];
  try {
    segments = trimmed.slice(1).split('/').map(decodeURIComponent);
  } catch {
    return undefined; // malformed percent-encoding names no resource
  }
  const allow: string[] = [];
  for (const route of routes) {
    const pattern = route.pattern.slice(1).split('/');
    if (pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const fits = pattern.every((part, i) => {
      const segment = segments[i] as string;
      if (part.startsWith(':')) params[part.slice(1)] = segment;
      return part.startsWith(':') ? segment !== '' : part === segment;
    });
    if (!fits) continue;
    if (route.method === method) return { route, params };
    allow.push(route.method);
  }
  return allow.length > 0 ? { allow } : undefined;
}

const RunIdParam = z.string().regex(RUN_ID_PATTERN);
const BlueprintIdParam = z.string().regex(BLUEPRINT_ID_PATTERN);

const StartRunBody = z
  .object({
    blueprintId: z.string().regex(BLUEPRINT_ID_PATTERN, 'must be 1-100 letters, digits, ".", "_" or "-"').optional(),
    blueprint: z.record(z.string(), z.unknown()).optional(),
    input: z.record(z.string(), z.unknown()).optional(),
    idempotencyKey: z.string().min(1, 'must be 1-200 characters').max(200, 'must be 1-200 characters').optional(),
  })
  .strict();

const WaitSeconds = z
  .string()
  .regex(/^\d{1,6}(\.\d{1,3})?$/, 'must be a number of seconds (0-25)')
  .transform(Number);

const GetRunQuery = z.object({ wait: WaitSeconds.optional() });

const EventsQuery = z.object({
  after: z.string().regex(STREAM_ID_PATTERN, 'must be an event id, such as 1700000000000-0').optional(),
  wait: WaitSeconds.optional(),
});

/** Most runs `GET /runs` returns at once. */
const MAX_LIST_LIMIT = 200;
const ListRunsQuery = z.object({
  status: z.enum(Object.values(RunStatuses)).optional(),
  blueprintId: z.string().regex(BLUEPRINT_ID_PATTERN, 'must be 1-100 letters, digits, ".", "_" or "-"').optional(),
  limit: z
    .string()
    .regex(/^\d{1,3}$/, `must be a whole number from 1 to ${MAX_LIST_LIMIT}`)
    .transform(Number)
    .pipe(z.number().int().min(1, `must be a whole number from 1 to ${MAX_LIST_LIMIT}`).max(MAX_LIST_LIMIT, `must be a whole number from 1 to ${MAX_LIST_LIMIT}`))
    .optional(),
});

/** Cancelling takes no options yet; an empty body or `{}`. */
const CancelBody = z.object({}).strict();

/**
 * The HTTP API as one transport-neutral handler. Every input is validated before anything reaches Redis;
 * every answer is JSON with `cache-control: no-store`; no request, however malformed, gets a 500 (only a
 * genuine internal failure, such as Redis being unreachable, does, with a generic message).
 */
export function createApi(options: ApiOptions): Api {
  const opts = resolveApiOptions(options);
  const { client, blueprints, logger } = opts;
  const store = new ApiStore(client.store.redis, client.store.keys);
  const feed = new EventFeed(client.store.redis, { maxConnections: opts.maxEventConnections });

  const runLinks = (runId: string) => {
    const self = `/runs/${runId}`;
    return { self, wait: `${self}?wait=${opts.maxWaitSeconds}`, cancel: `${self}/cancel`, events: `${self}/events` };
  };

  /** The run, when it exists and belongs to the caller's tenant; another tenant's run is indistinguishable from none. */
  const requireOwnRun = async (rawRunId: string | undefined, principal: Principal): Promise<string> => {
    const notFound = () => new ApiError(404, ApiErrorCodes.RUN_NOT_FOUND, `no run "${clip(rawRunId ?? '')}"`);
    const parsed = RunIdParam.safeParse(rawRunId);
    if (!parsed.success) throw notFound();
    const owner = await store.ownerOf(parsed.data);
    if (owner !== principal.tenant) throw notFound();
    return parsed.data;
  };

  const startRun = async ({ req, principal }: RouteContext): Promise<ApiResponse> => {
    const raw = parseJsonBody(req.body);
    if (raw === undefined) throw validationError([{ path: '$', message: 'the body must be a JSON object' }]);
    const parsed = StartRunBody.safeParse(raw);
    const issues = parsed.success ? [] : issuesOf(parsed.error);
    if (isObject(raw) && ('blueprintId' in raw) === ('blueprint' in raw)) {
      issues.push({ path: '$', message: 'give exactly one of "blueprintId" (a registered blueprint) and "blueprint" (inline)' });
    }
    // JSON.parse keeps "__proto__" as an own key, but copying the input (zod does) would set a prototype instead.
    if (isObject(raw) && isObject(raw.input) && Object.hasOwn(raw.input, '__proto__')) {
      issues.push({ path: '$.input', message: 'the key "__proto__" is not allowed' });
    }
    if (!parsed.success || issues.length > 0) throw validationError(issues);
    const body = parsed.data;

    let target: string | object;
    if (body.blueprint !== undefined) {
      if (!opts.inlineBlueprints) {
        throw new ApiError(403, ApiErrorCodes.INLINE_BLUEPRINTS_DISABLED, 'inline blueprints are disabled on this server: start a registered blueprint with "blueprintId"');
      }
      // The blueprint as parsed, not zod's copy, so the blueprint schema sees exactly what was sent.
      target = (raw as { blueprint: object }).blueprint;
      checkInlineBlueprint(blueprints, target);
    } else {
      const id = body.blueprintId as string;
      if (!blueprints.get(id)) throw new ApiError(404, ApiErrorCodes.BLUEPRINT_NOT_FOUND, `no blueprint "${id}" (GET /blueprints lists them)`);
      target = id;
    }
    const input = body.input ?? {};

    // Claimed before starting, with the run id it will use: a request that dies half-way is completed by
    // its retry (same body, same run id; starting is idempotent per run id) instead of starting twice.
    let runId: string = randomUUID();
    let replayed = false;
    if (body.idempotencyKey !== undefined) {
      const bodyHash = sha256(canonicalJson({ blueprintId: body.blueprintId, blueprint: body.blueprint === undefined ? undefined : target, input }));
      const claim = await store.reserveIdempotencyKey(principal.tenant, body.idempotencyKey, bodyHash, runId);
      if (claim.outcome === 'conflict') {
        throw new ApiError(409, ApiErrorCodes.IDEMPOTENCY_CONFLICT, 'this idempotencyKey was already used with a different request body');
      }
      runId = claim.runId;
      replayed = claim.outcome === 'replay';
    }
    const startedAt = Date.now();
    const handle = await client.start(target, input, { runId });
    const tagged = await store.tagRun(runId, principal.tenant);
    if (tagged.outcome !== 'ok') throw new Error(`run ${runId} could not be tagged with its tenant (${tagged.outcome})`);
    await store.indexRun(principal.tenant, runId, startedAt, tagged.ttlSeconds);
    if (body.idempotencyKey !== undefined && handle.created) {
      await store.settleIdempotencyKey(principal.tenant, body.idempotencyKey, tagged.ttlSeconds);
    }
    const status = handle.created ? 'running' : ((await client.store.getStatus(runId)) ?? 'running');
    const headers: Record<string, string> = { location: `/runs/${runId}` };
    if (replayed) headers['idempotent-replayed'] = 'true';
    return jsonResponse(202, { runId, status, links: runLinks(runId) }, headers);
  };

  const getRun = async ({ req, params, principal }: RouteContext): Promise<ApiResponse> => {
    const query = validate(GetRunQuery, req.query, '$.query', 'query');
    const runId = await requireOwnRun(params.runId, principal);
    const waitSeconds = Math.min(query.wait ?? 0, opts.maxWaitSeconds);
    let view: RunView | undefined;
    if (waitSeconds > 0) {
      try {
        view = await client.result(runId, { timeoutMs: Math.round(waitSeconds * 1000) });
      } catch (err) {
        if (!(err instanceof SwitchyardError && err.code === ErrorCodes.WAIT_TIMEOUT)) throw err;
        view = await client.get(runId);
      }
    } else {
      view = await client.get(runId);
    }
    if (!view) throw new ApiError(404, ApiErrorCodes.RUN_NOT_FOUND, `no run "${runId}"`);
    return jsonResponse(200, view);
  };

  const cancelRun = async ({ req, params, principal }: RouteContext): Promise<ApiResponse> => {
    validate(CancelBody, parseJsonBody(req.body) ?? {});
    const runId = await requireOwnRun(params.runId, principal);
    if (await client.cancel(runId)) return jsonResponse(202, { runId, status: 'cancelled' });
    const status = await client.store.getStatus(runId);
    throw new ApiError(409, ApiErrorCodes.RUN_ENDED, `run "${runId}" already ended (${status ?? 'expired'})`, { runId, status });
  };

  const listRuns = async ({ req, principal }: RouteContext): Promise<ApiResponse> => {
    const query = validate(ListRunsQuery, req.query, '$.query', 'query');
    const runs = await store.recentRuns(principal.tenant, query.limit ?? 50, (run) => {
      return (query.status === undefined || run.status === query.status) && (query.blueprintId === undefined || run.blueprintId === query.blueprintId);
    });
    return jsonResponse(200, { runs: runs.map((run) => ({ ...run, links: { self: `/runs/${run.runId}` } })), now: Date.now() });
  };

  /**
   * The run's timeline, or the part after `after`. With `wait`, an empty answer is held until events
   * come (or the wait ends), unless the run has already ended: a dashboard's live feed, over plain HTTP.
   */
  const runEvents = async ({ req, params, principal }: RouteContext): Promise<ApiResponse> => {
    const query = validate(EventsQuery, req.query, '$.query', 'query');
    const runId = await requireOwnRun(params.runId, principal);
    const key = client.store.keys.run(runId)[3];
    const waitSeconds = Math.min(query.wait ?? 0, opts.maxWaitSeconds);
    let events = await feed.range(key, query.after);
    let status = await client.store.getStatus(runId);
    if (events.length === 0 && waitSeconds > 0 && status !== undefined && !isTerminalRunStatus(status)) {
      // Blocks from `after` itself, so an event added since the read above is returned at once.
      events = await feed.wait(key, query.after, waitSeconds * 1000);
      if (events.length > 0) status = await client.store.getStatus(runId);
    }
    const cursor = events.at(-1)?.id ?? query.after;
    return jsonResponse(200, { runId, status, events, ...(cursor === undefined ? {} : { cursor }), now: Date.now() });
  };

  /** The blueprint version a run executes (inline and child runs too), laid out for drawing. */
  const runBlueprint = async ({ params, principal }: RouteContext): Promise<ApiResponse> => {
    const runId = await requireOwnRun(params.runId, principal);
    const [blueprintId, version] = await client.store.redis.hmget(client.store.keys.run(runId)[0], 'blueprintId', 'version');
    const stored = version ? BlueprintSchema.safeParse(await client.store.loadBlueprint(version)) : undefined;
    const blueprint: Pick<Blueprint, 'nodes' | 'edges' | 'metadata'> | undefined = stored?.success ? stored.data : blueprintId ? blueprints.get(blueprintId)?.blueprint : undefined;
    if (!blueprint) throw new ApiError(404, ApiErrorCodes.BLUEPRINT_NOT_FOUND, `the blueprint of run "${runId}" is no longer stored`);
    return jsonResponse(200, { runId, blueprintId, version, blueprint: { ...blueprint, id: blueprintId }, layout: layoutBlueprint(blueprint) });
  };

  const listBlueprints = async (): Promise<ApiResponse> => {
    const list = blueprints.ids().flatMap((id) => {
      const loaded = blueprints.get(id);
      return loaded ? [summarize(loaded)] : [];
    });
    return jsonResponse(200, { blueprints: list });
  };

  const getBlueprint = async ({ params }: RouteContext): Promise<ApiResponse> => {
    const id = BlueprintIdParam.safeParse(params.id);
    const loaded = id.success ? blueprints.get(id.data) : undefined;
    if (!loaded) throw new ApiError(404, ApiErrorCodes.BLUEPRINT_NOT_FOUND, `no blueprint "${clip(params.id ?? '')}"`);
    return jsonResponse(200, {
      ...summarize(loaded),
      blueprint: loaded.blueprint,
      analysis: loaded.analysis,
      mermaid: toMermaid(loaded.blueprint),
      layout: layoutBlueprint(loaded.blueprint),
    });
  };

  const signalRun = async (): Promise<ApiResponse> => {
    throw new ApiError(501, ApiErrorCodes.NOT_IMPLEMENTED, 'signals arrive with the wait node');
  };

  const routes: readonly Route[] = [
    { method: 'POST', pattern: '/runs', scope: 'runs:write', handle: startRun },
    { method: 'GET', pattern: '/runs', scope: 'runs:read', handle: listRuns },
    { method: 'GET', pattern: '/runs/:runId', scope: 'runs:read', handle: getRun },
    { method: 'POST', pattern: '/runs/:runId/cancel', scope: 'runs:write', handle: cancelRun },
    { method: 'GET', pattern: '/runs/:runId/events', scope: 'runs:read', handle: runEvents },
    { method: 'GET', pattern: '/runs/:runId/blueprint', scope: 'runs:read', handle: runBlueprint },
    { method: 'POST', pattern: '/runs/:runId/signals/:nodeId', scope: 'runs:write', handle: signalRun },
    { method: 'GET', pattern: '/blueprints', scope: undefined, handle: listBlueprints },
    { method: 'GET', pattern: '/blueprints/:id', scope: undefined, handle: getBlueprint },
  ];

  const authenticate = async (req: ApiRequest): Promise<Principal> => {
    if (opts.auth.mode === 'off') {
      return { tenant: LOCAL_TENANT, scopes: API_SCOPES, identity: req.sourceIp ? `ip:${req.sourceIp}` : LOCAL_TENANT };
    }
    const unauthenticated = (message: string) => new ApiError(401, ApiErrorCodes.UNAUTHENTICATED, message, undefined, { 'www-authenticate': 'Bearer' });
    const authorization = req.headers.authorization;
    let key = req.headers['x-api-key'];
    if (authorization !== undefined) {
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!bearer) throw unauthenticated('the authorization header must be "Bearer <API key>"');
      key = bearer[1];
    }
    if (key === undefined || key.trim() === '') {
      throw unauthenticated('missing API key: send "authorization: Bearer <key>" or "x-api-key: <key>"');
    }
    const found = await opts.auth.keys.verify(key.trim());
    if (!found) throw unauthenticated('invalid or revoked API key');
    return { tenant: found.tenant, scopes: found.scopes, identity: `key:${found.id}` };
  };

  /**
   * The dashboard's page and files, served to anyone (they hold no data; the page's API calls carry the
   * key its user typed). `/` and `/dashboard` lead to `/dashboard/`, whose files are referenced relative
   * to it, so the page also works below a path prefix (an API Gateway stage).
   */
  const serveDashboard = async (req: ApiRequest, method: string): Promise<ApiResponse | undefined> => {
    const { path } = req;
    if (path !== '/' && path !== '/dashboard' && !path.startsWith('/dashboard/')) return undefined;
    if (opts.dashboardDir === undefined) {
      throw new ApiError(404, ApiErrorCodes.NOT_FOUND, path === '/' ? `no route ${clip(method)} /` : 'the dashboard is not served here');
    }
    if (method !== 'GET') {
      throw new ApiError(405, ApiErrorCodes.METHOD_NOT_ALLOWED, `${clip(method)} is not allowed on ${clip(path)} (allowed: GET)`, undefined, { allow: 'GET' });
    }
    if (path === '/') return redirect('dashboard/');
    if (path === '/dashboard') return redirect('dashboard/');
    let rest: string;
    try {
      rest = decodeURIComponent(path.slice('/dashboard/'.length));
    } catch {
      throw new ApiError(404, ApiErrorCodes.NOT_FOUND, 'no such dashboard file');
    }
    // Pages have addresses of their own too (`/dashboard/runs/<id>`): the page shows them by its hash.
    const page = /^(runs\/[^/]+|runs|blueprints)\/?$/.exec(rest);
    if (page) {
      // Relative to the address asked for: one "../" per "/" after /dashboard/ leads back to it.
      const up = '../'.repeat(rest.split('/').length - 1) || './';
      return redirect(`${up}#/${page[1]!.split('/').map(encodeURIComponent).join('/')}`);
    }
    const asset = await readDashboardAsset(opts.dashboardDir, rest);
    if (!asset) throw new ApiError(404, ApiErrorCodes.NOT_FOUND, `no dashboard file "${clip(rest)}"`);
    const headers: Record<string, string> = {
      'content-type': asset.contentType,
      'cache-control': 'no-cache',
      etag: asset.etag,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    };
    if (asset.contentType.startsWith('text/html')) {
      headers['content-security-policy'] = DASHBOARD_CSP;
      headers['x-frame-options'] = 'DENY';
    }
    if (req.headers['if-none-match'] === asset.etag) return { status: 304, headers, body: '' };
    return { status: 200, headers, body: asset.body };
  };

  /** The request path: size, route, authentication, rate limit, scope, then the route's own handler. */
  const handle = async (req: ApiRequest): Promise<ApiResponse> => {
    const bodyBytes = req.body === undefined ? 0 : Buffer.byteLength(req.body, 'utf8');
    if (bodyBytes > opts.maxBodyBytes) throw payloadTooLarge(opts.maxBodyBytes);
    const method = req.method.toUpperCase();
    const page = await serveDashboard(req, method);
    if (page) return page;
    const match = matchRoute(routes, method, req.path);
    if (match === undefined) throw new ApiError(404, ApiErrorCodes.NOT_FOUND, `no route ${clip(method)} ${clip(req.path)}`);
    if ('allow' in match) {
      throw new ApiError(405, ApiErrorCodes.METHOD_NOT_ALLOWED, `${clip(method)} is not allowed on ${clip(req.path)} (allowed: ${match.allow.join(', ')})`, undefined, {
        allow: match.allow.join(', '),
      });
    }
    const principal = await authenticate(req);
    if (opts.rateLimitPerMinute !== undefined) {
      const counted = await store.countRequest(principal.identity, opts.rateLimitPerMinute);
      if (counted.limited) {
        throw new ApiError(429, ApiErrorCodes.RATE_LIMITED, `more than ${opts.rateLimitPerMinute} requests per minute: retry in ${counted.retryAfterSeconds} s`, undefined, {
          'retry-after': String(counted.retryAfterSeconds),
        });
      }
    }
    const { route, params } = match;
    if (route.scope !== undefined && !principal.scopes.includes(route.scope)) {
      throw new ApiError(403, ApiErrorCodes.FORBIDDEN, `this API key lacks the "${route.scope}" scope`);
    }
    return route.handle({ req, params, principal });
  };

  const api = async (rawRequest: ApiRequest): Promise<ApiResponse> => {
    let req: ApiRequest | undefined;
    try {
      req = normalizeRequest(rawRequest);
      return await handle(req);
    } catch (err) {
      const known = toApiError(err);
      if (known) return errorResponse(known);
      logger.error('api request failed', {
        method: req?.method,
        path: req ? clip(req.path) : undefined,
        error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
        stack: err instanceof Error ? err.stack : undefined,
      });
      return errorResponse(new ApiError(500, ApiErrorCodes.INTERNAL, 'internal error: the request could not be completed, try again later'));
    }
  };
  return Object.assign(api, { close: () => feed.close() });
}

/** The dashboard loads nothing from elsewhere and runs no inline code. */
const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** A redirect relative to the request's own address (so a path prefix in front of the API is kept). */
function redirect(location: string): ApiResponse {
  return jsonResponse(302, { location }, { location });
}

/** Validates an inline blueprint before anything is stored, listing every issue at its place in the body. */
function checkInlineBlueprint(blueprints: BlueprintRegistry, blueprint: object): void {
  try {
    blueprints.validate(blueprint, '<inline>', 'inline');
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const issues = err.issues.map((i) => ({ path: i.path.replace(/^\$/, '$.blueprint'), message: i.message }));
    throw validationError(issues, 'blueprint');
  }
}

/** Errors from the engine that describe the request, not a failure: their API form. */
function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof ValidationError) {
    return validationError(err.issues.map((i) => ({ path: i.path, message: i.message })), 'blueprint');
  }
  if (err instanceof SwitchyardError) {
    if (err.code === ErrorCodes.RUN_NOT_FOUND) return new ApiError(404, ApiErrorCodes.RUN_NOT_FOUND, err.message);
    if (err.code === ErrorCodes.BLUEPRINT_NOT_FOUND) return new ApiError(404, ApiErrorCodes.BLUEPRINT_NOT_FOUND, err.message);
    if (err.code === ErrorCodes.VALIDATION) return new ApiError(400, ApiErrorCodes.VALIDATION, err.message);
  }
  return undefined;
}

/** Whatever an adapter hands over, a request the handler can rely on (string method and path, lower-case header names). */
function normalizeRequest(req: ApiRequest): ApiRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.headers ?? {})) {
    if (typeof value === 'string') headers[name.toLowerCase()] = value;
  }
  const query: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.query ?? {})) {
    if (typeof value === 'string') query[name] = value;
  }
  return {
    method: typeof req.method === 'string' ? req.method : '',
    path: typeof req.path === 'string' ? req.path : '',
    query,
    headers,
    body: typeof req.body === 'string' ? req.body : undefined,
    sourceIp: req.sourceIp,
  };
}

function summarize(loaded: LoadedBlueprint) {
  const { blueprint, analysis } = loaded;
  const text = (key: string) => {
    const value = blueprint.metadata?.[key];
    return typeof value === 'string' ? value : undefined;
  };
  return {
    id: blueprint.id,
    version: loaded.version,
    title: text('title'),
    description: text('description'),
    startNodes: analysis.startNodes,
    terminalNodes: analysis.terminalNodes,
    nodeCount: blueprint.nodes.length,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Echoed request text is kept short. */
function clip(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
