import { request } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../src/api/app.js';
import { ApiKeyStore } from '../src/api/keys.js';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { startApiServer, type ApiServer } from '../src/local/dev-server.js';
import { silentLogger } from '../src/logger.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { FUZZ_CHILD, blueprintArb } from './support/fuzz-blueprints.js';
import { startHarness, type Harness } from './support/harness.js';
import { WORKFLOWS_DIR } from './support/seeds.js';

/**
 * Generated HTTP requests against the API (inline blueprints on, so generated blueprints reach the
 * validator through it): any method, path (run ids, odd encodings, prototype keys), query, headers
 * (keys of two tenants, read-only, wrong, none; content types) and body (JSON, generated blueprints and
 * inputs, garbage, deep nesting, near the body limit). No answer may be a 5xx (except the signals
 * endpoint's designed 501), every answer is JSON, and no rejection goes unhandled.
 *
 * Seeded and replayable: FUZZ_SEED (and FUZZ_PATH from a failure's report); FUZZ_API_RUNS sets the count
 * (default 400 in `npm test`, 5,000 in `npm run test:chaos`).
 */
const CHAOS = process.env.SWITCHYARD_CHAOS === '1';
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.FUZZ_API_RUNS ?? (CHAOS ? 5_000 : 400));
const replay = { seed: SEED, ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}) };

let h: Harness;
let server: ApiServer;
let api: ReturnType<typeof createApi>;
const key = { acme: '', acmeReadOnly: '', globex: '' };
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
const MAX_BODY = 64 * 1024;

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  const registry = await BlueprintRegistry.load([WORKFLOWS_DIR], createNodeKinds());
  registry.add(FUZZ_CHILD);
  h = await startHarness({ blueprints: registry, workers: 2, concurrency: 32 });
  const keys = new ApiKeyStore(h.client.store.redis, h.prefix);
  key.acme = (await keys.create({ tenant: 'acme', scopes: ['runs:read', 'runs:write'], name: 'fuzz' })).key;
  key.acmeReadOnly = (await keys.create({ tenant: 'acme', scopes: ['runs:read'], name: 'fuzz read-only' })).key;
  key.globex = (await keys.create({ tenant: 'globex', scopes: ['runs:read', 'runs:write'], name: 'fuzz' })).key;
  // Long polls are cut to a fraction of a second: the fuzz asks for answers, not waits.
  api = createApi({ client: h.client, blueprints: h.registry, auth: { mode: 'keys', keys }, logger: silentLogger, inlineBlueprints: true, maxWaitSeconds: 0.2, maxBodyBytes: MAX_BODY });
  server = await startApiServer(api, { port: 0, maxBodyBytes: MAX_BODY });
  console.log(`fuzz-api: seed ${SEED}, ${RUNS} requests (replay: FUZZ_SEED=${SEED})`);
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await server?.close();
  await api?.close();
  await h?.close();
});

/** Whether `path` (as sent) names the dashboard's HTML page once URL parsing normalised it (its dot segments resolved). */
function isDashboardPage(path: string): boolean {
  const normalised = new URL(path, 'http://fuzz.invalid').pathname;
  return normalised === '/dashboard/' || normalised === '/dashboard/index.html';
}

/** A request over a raw socket: fetch would normalise the odd paths and methods we want to send. */
function rawCall(method: string, path: string, headers: Record<string, string>, body: string | undefined): Promise<{ status: number; type: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    const framed = body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
    const req = request(`${server.url}${path}`, { method, headers: framed }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe(`API fuzz (seed ${SEED})`, () => {
  it(`${RUNS} generated requests: no 5xx, always JSON, no unhandled rejection`, { timeout: 900_000 }, async () => {
    // A finished run and a running one of each tenant, for paths to hit.
    const start = async (k: string, blueprintId: string) => {
      const reply = await rawCall('POST', '/runs', { authorization: `Bearer ${k}`, 'content-type': 'application/json' }, JSON.stringify({ blueprintId, input: { name: 'Fuzz' } }));
      return (JSON.parse(reply.text) as { runId: string }).runId;
    };
    const runIds = [await start(key.acme, 'greeting'), await start(key.globex, 'greeting'), await start(key.acme, FUZZ_CHILD.id)];

    const evil = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty');
    const segment = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('runs', 'blueprints', 'cancel', 'events', 'signals', 'redrive', 'dashboard', ...runIds, 'greeting', FUZZ_CHILD.id) },
      { weight: 2, arbitrary: fc.constantFrom('', '%', '%zz', '%2F', '%00', '..', '.', '{x}', 'a:b', '*', '%F0%9F%98%80', 'x'.repeat(300)) },
      { weight: 1, arbitrary: evil },
      { weight: 2, arbitrary: fc.string({ maxLength: 12 }).map((s) => encodeURIComponent(s)) },
      { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }).map((s) => encodeURIComponent(s)) },
    );
    const query = fc.oneof(
      fc.constant(''),
      fc.constantFrom('?wait=0', '?wait=-1', '?wait=1e400', '?wait=0.01', '?wait=%00', '?x=1&x=2', '?limit=0', '?limit=201', '?limit=5', '?status=running', '?status=nope', '?blueprintId=greeting', '?after=0-0', '?after=zz', '?after=9999999999999-0&wait=0.05', '?__proto__=1', '?constructor[prototype]=x'),
      fc.dictionary(fc.oneof(evil, fc.constantFrom('wait', 'limit', 'status', 'after', 'blueprintId')), fc.string({ maxLength: 8 }), { maxKeys: 3 }).map((q) => `?${new URLSearchParams(q).toString()}`),
    );
    const anyId = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...runIds) }, { weight: 1, arbitrary: segment });
    // Mostly the API's own routes (with generated ids and queries), some anything at all.
    // The API's routes with the method each is served on.
    const route = fc.oneof(
      { weight: 4, arbitrary: fc.constant(['POST', '/runs'] as const) },
      fc.constant(['GET', '/runs'] as const),
      anyId.map((id) => ['GET', `/runs/${id}`] as const),
      anyId.map((id) => ['POST', `/runs/${id}/cancel`] as const),
      anyId.map((id) => ['GET', `/runs/${id}/events`] as const),
      fc.tuple(anyId, segment).map(([id, node]) => ['POST', `/runs/${id}/signals/${node}`] as const),
      fc.constant(['GET', '/blueprints'] as const),
      fc.oneof(fc.constantFrom('greeting', FUZZ_CHILD.id, 'content-moderation'), segment).map((id) => ['GET', `/blueprints/${id}`] as const),
    );
    const anyMethod = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD');
    const anyPath = fc.tuple(fc.array(segment, { minLength: 0, maxLength: 5 }), query).map(([segments, q]) => `/${segments.join('/')}${q}`);
    // Mostly a route with its own method (and generated ids and queries); else a route with any method, or anything.
    const target = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(route, query).map(([[m, r], q]) => [m, `${r}${q}`] as const) },
      { weight: 1, arbitrary: fc.tuple(anyMethod, route, query).map(([m, [, r], q]) => [m, `${r}${q}`] as const) },
      { weight: 2, arbitrary: fc.tuple(anyMethod, anyPath) },
    );
    const input = fc.oneof(fc.object({ maxDepth: 2, key: fc.oneof(evil, fc.string({ maxLength: 8 })) }), fc.array(fc.integer()), fc.constant(null), fc.constant({ name: 'Ada', x: 3 }));
    const jsonBody = fc
      .record(
        {
          blueprintId: fc.oneof(fc.constantFrom('greeting', FUZZ_CHILD.id, 'nope', 'a:b', '__proto__'), fc.integer(), fc.string({ maxLength: 10 })),
          blueprint: fc.oneof(blueprintArb, fc.object({ maxDepth: 2 })),
          input,
          idempotencyKey: fc.oneof(fc.string({ maxLength: 210 }), fc.constantFrom('k1', 'k2')),
          action: fc.string({ maxLength: 8 }),
          payload: fc.jsonValue({ maxDepth: 2 }),
        },
        { requiredKeys: [] },
      )
      .map((b) => JSON.stringify(b));
    const startBody = fc.oneof(
      fc.record({ blueprintId: fc.constantFrom('greeting', FUZZ_CHILD.id), input: fc.record({ name: fc.string({ maxLength: 20 }), x: fc.integer() }, { requiredKeys: [] }) }),
      fc.record({ blueprint: blueprintArb, input: fc.constant({ name: 'inline', x: 4 }) }),
    ).map((b) => JSON.stringify(b));
    const body = fc.oneof(
      { weight: 1, arbitrary: fc.constant(undefined) },
      { weight: 5, arbitrary: startBody },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
      { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
      { weight: 5, arbitrary: jsonBody },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 200 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`) },
      { weight: 1, arbitrary: fc.constantFrom(MAX_BODY - 100, MAX_BODY + 1).map((n) => JSON.stringify({ blueprintId: 'greeting', input: { name: 'x'.repeat(n) } })) },
      { weight: 1, arbitrary: fc.constant('{"blueprintId":"greeting","input":{"__proto__":{"polluted":1},"name":"p"}}') },
    );
    const auth = fc.constantFrom<Record<string, string>>(
      {},
      { authorization: `Bearer ${key.acme}` },
      { authorization: `Bearer ${key.acme}` },
      { authorization: `Bearer ${key.acme}` },
      { authorization: `Bearer ${key.acmeReadOnly}` },
      { 'x-api-key': key.globex },
      { authorization: 'Bearer sy_nope' },
      { authorization: 'Bearer' },
      { authorization: `Basic ${key.acme}` },
    );
    const contentType = fc.constantFrom(undefined, 'application/json', 'application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x');

    let n = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(target, auth, contentType, body, async ([m, p], headers, type, b) => {
        const all = type === undefined || b === undefined ? headers : { ...headers, 'content-type': type };
        const reply = await rawCall(m, p, all, b);
        n++;
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
        const what = `${m} ${p} ${b?.slice(0, 300)}`;
        expect(reply.status, what).toBeGreaterThanOrEqual(200);
        // 501 is the signals endpoint's designed answer; nothing else may be a server error.
        if (reply.status >= 500) expect(`${reply.status} ${reply.text}`, what).toMatch(/^501 /);
        if (m === 'GET' && reply.status === 200 && isDashboardPage(p)) {
          // The path normalises to the dashboard's page (URL parsing resolves "..", "." and "%2E"
          // segments, as the router does: GET /dashboard/runs/.. is GET /dashboard/): HTML, rightly.
          expect(reply.type, what).toMatch(/^text\/html/);
        } else if (m !== 'HEAD') {
          expect(reply.type, what).toMatch(/^application\/json/);
          expect(() => JSON.parse(reply.text), what).not.toThrow();
        }
        expect(unhandled, what).toEqual([]);
      }),
      { numRuns: RUNS, ...replay },
    );
    console.log(`fuzz-api: ${n} requests; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
    expect(({}) as Record<string, unknown>).not.toHaveProperty('polluted');
    expect(unhandled).toEqual([]);
  });
});
