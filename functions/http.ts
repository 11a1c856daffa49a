/**
 * Lambda entry points of the HTTP API (API Gateway HTTP API, payload format 2.0). Thin: Hono's
 * `hono/aws-lambda` adapter turns the event into a `Request` for the API's Hono app and its `Response`
 * into the v2 result. `startRun`, `getRun`, `cancelRun` and `blueprints` are the same handler under the
 * names serverless.yml gives its functions (each is bundled on its own, with its own role and log group).
 */
import { Buffer } from 'node:buffer';
import { handle } from 'hono/aws-lambda';
import { createApi, type Api } from '../src/api/app.js';
import { ApiKeyStore } from '../src/api/keys.js';
import type { ApiRequest } from '../src/api/types.js';
import { SwitchyardClient } from '../src/client/client.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { connectRedis, resolveFunctionConfig, type FunctionConfig, type SecretReader } from './config.js';
import { loadBundledBlueprints } from './workflows.js';

/** The parts of an `APIGatewayProxyEventV2` the adapter reads (the full type lives in @types/aws-lambda). */
export interface HttpApiEvent {
  version?: string;
  routeKey?: string;
  rawPath: string;
  rawQueryString?: string;
  queryStringParameters?: Record<string, string | undefined>;
  headers?: Record<string, string | undefined>;
  cookies?: string[];
  body?: string;
  isBase64Encoded?: boolean;
  requestContext: { http: { method: string; path?: string; protocol?: string; sourceIp?: string; userAgent?: string }; requestId?: string; [key: string]: unknown };
}

/** `APIGatewayProxyStructuredResultV2`. */
export interface HttpApiResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  /** True only for a binary body (none of the API's answers is one). */
  isBase64Encoded: boolean;
  /** `set-cookie` values, which API Gateway v2 takes apart from the headers (the API sets none). */
  cookies?: string[];
}

/** API Gateway's own limit on a Lambda integration is 30 s; `?wait=` long-polls stay below it. */
const MAX_WAIT_SECONDS = 25;

/**
 * An HTTP API v2 event as the transport-neutral request `createApi`'s handler function takes: for callers
 * of that function (the Lambda handler itself hands the event to `hono/aws-lambda`, which reads the same
 * fields: raw path and query string, base64 bodies, cookies, source address).
 */
export function toApiRequest(event: HttpApiEvent): ApiRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) headers[name.toLowerCase()] = value;
  // API Gateway moves Cookie headers to `cookies`; give them back so the request is as the client sent it.
  if (event.cookies?.length && headers.cookie === undefined) headers.cookie = event.cookies.join('; ');
  const body = event.body === undefined || event.body === null ? undefined : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  return {
    method: event.requestContext.http.method.toUpperCase(),
    path: event.rawPath,
    query: parseQuery(event),
    headers,
    body,
    sourceIp: event.requestContext.http.sourceIp,
  };
}

/**
 * The raw query string is decoded here (first value of a repeated parameter wins): API Gateway's
 * `queryStringParameters` joins repeated values with commas, which would change a value that has one.
 */
function parseQuery(event: HttpApiEvent): Record<string, string | undefined> {
  if (event.rawQueryString === undefined) return { ...event.queryStringParameters };
  const query: Record<string, string | undefined> = {};
  for (const [name, value] of new URLSearchParams(event.rawQueryString)) {
    if (!(name in query)) query[name] = value;
  }
  return query;
}

/** An API and what to close when it is no longer needed (tests, a local server; Lambda just freezes it). */
export interface BuiltApi {
  api: Pick<Api, 'app'>;
  close(): Promise<void>;
}

/** Builds the API once: Redis connection (secret read once), bundled blueprints (seeded into Redis), client and key store. */
export async function createApiFromConfig(config: FunctionConfig, readSecret?: SecretReader): Promise<BuiltApi> {
  const blueprints = loadBundledBlueprints(createNodeKinds());
  const redis = await connectRedis(config.redis, readSecret);
  const client = new SwitchyardClient({ redis, prefix: config.prefix, queueName: config.queueName, queueShards: config.queueShards, runTtlSeconds: config.runTtlSeconds, blueprints });
  // The bundled blueprints become the first stored version of their ids (once; a pushed version wins).
  try {
    await client.seedBlueprints();
  } catch (err) {
    await client.close();
    await redis.quit().catch(() => undefined);
    throw err;
  }
  const api = createApi({
    client,
    blueprints,
    auth: config.authEnabled ? { mode: 'keys', keys: new ApiKeyStore(redis, config.prefix) } : { mode: 'off' },
    inlineBlueprints: config.inlineBlueprints,
    maxWaitSeconds: MAX_WAIT_SECONDS,
  });
  return {
    api,
    async close() {
      await api.close();
      await client.close();
      await redis.quit().catch(() => undefined);
    },
  };
}

/** A Lambda handler that can also be closed (for tests and local servers; Lambda never calls `close`). */
export interface HttpHandler {
  (event: HttpApiEvent): Promise<HttpApiResult>;
  close(): Promise<void>;
}

/**
 * A Lambda handler around an API that is built once per execution environment. Building starts at once
 * (during the init phase); if it fails, the invocation answers 503 and the next one builds again, so a
 * brief Redis or Secrets Manager outage does not leave a broken environment behind.
 */
export function createHttpHandler(build: () => Promise<BuiltApi>): HttpHandler {
  type Serving = BuiltApi & { lambda: ReturnType<typeof handle> };
  // Events the app saw: the adapter answers one it cannot make a Request of itself, in plain text.
  const reachedApp = new WeakSet<object>();
  const serving = (built: BuiltApi): Serving => {
    const { app } = built.api;
    // `handle` calls only the app's `fetch`; this one notes the event first.
    const noting = {
      fetch: (request: Request, env: { event: object }) => {
        reachedApp.add(env.event);
        return app.fetch(request, env);
      },
    } as unknown as typeof app;
    return { ...built, lambda: handle(noting) };
  };
  let api: Promise<Serving> | undefined;
  const start = () => {
    // A synchronous throw (bad config) becomes a rejection too.
    const building = Promise.resolve().then(build).then(serving);
    building.catch(() => undefined); // awaited by the invocation; never an unhandled rejection at init
    return building;
  };
  api = start();
  const handler = async (event: HttpApiEvent, context?: unknown): Promise<HttpApiResult> => {
    let built: Serving;
    try {
      built = await (api ??= start());
    } catch (err) {
      api = undefined;
      // The message may name the secret or host, never the token (it is not part of any error we build).
      console.error(JSON.stringify({ level: 'error', msg: 'API unavailable', error: err instanceof Error ? err.message : String(err) }));
      return errorResult(503, 'UNAVAILABLE', 'the service is starting or cannot reach its store; retry shortly');
    }
    try {
      // The v2 event shape hono/aws-lambda reads (rawPath, rawQueryString, requestContext.http, …).
      const result = await built.lambda(event as unknown as Parameters<Serving['lambda']>[0], context as Parameters<Serving['lambda']>[1]);
      if (!reachedApp.has(event)) {
        // Hono's adapter refused the event before the app saw it ("Invalid request", text/plain): the API's shape instead.
        return errorResult(result.statusCode, result.statusCode < 500 ? 'BAD_REQUEST' : 'INTERNAL', 'the request could not be read');
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      return { statusCode: result.statusCode, headers, body: result.body, isBase64Encoded: result.isBase64Encoded, ...(result.cookies ? { cookies: result.cookies } : {}) };
    } catch (err) {
      // src/api answers every error itself; this is the last line, so a bug never leaks a stack trace.
      console.error(JSON.stringify({ level: 'error', msg: 'unhandled error in API handler', error: err instanceof Error ? err.stack : String(err) }));
      return errorResult(500, 'INTERNAL', 'internal error');
    }
  };
  return Object.assign(handler, {
    async close() {
      const building = api;
      api = undefined;
      const built = await building?.catch(() => undefined);
      await built?.close();
    },
  });
}

function errorResult(statusCode: number, code: string, message: string): HttpApiResult {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: { code, message } }), isBase64Encoded: false };
}

// Only this entry point reads process.env (once, at load); building starts then too (once per cold start).
const env = { ...process.env };
export const http = createHttpHandler(() => createApiFromConfig(resolveFunctionConfig(env)));
export const startRun = http;
export const getRun = http;
export const cancelRun = http;
export const blueprints = http;
