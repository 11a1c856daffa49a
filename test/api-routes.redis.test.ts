/**
 * The API's route modules and middleware on their own, each mounted on a bare Hono app: the runs routes
 * with a stub client (no engine, no workers) and a real ApiStore on the test Redis; authentication, rate
 * limiting and the 405/404 fallbacks without any route module.
 */
import { randomBytes } from 'node:crypto';
import { createMiddleware } from 'hono/factory';
import { Hono } from 'hono/tiny';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiStore } from '../src/api/api-store.js';
import type { ApiEnv } from '../src/api/env.js';
import { EventFeed } from '../src/api/event-feed.js';
import type { ApiPrincipal, ApiScope } from '../src/api/keys.js';
import { authenticate, requireScope } from '../src/api/middleware/auth.js';
import { allowOnlyRoutedMethods, handleErrors, notFound } from '../src/api/middleware/errors.js';
import { rateLimit } from '../src/api/middleware/rate-limit.js';
import { blueprintsRoutes } from '../src/api/routes/blueprints.js';
import { runsRoutes, type RunsClient } from '../src/api/routes/runs.js';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import type { RunView } from '../src/types/run-view.js';
import type { RunStatus } from '../src/types/statuses.js';
import { silentLogger } from '../src/logger.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { StoreKeys } from '../src/store/keys.js';
import { deleteKeys, prefixPatterns, testRedis } from './support/harness.js';
import { WORKFLOWS_DIR } from './support/seeds.js';

const redis = testRedis();
const prefix = `rt${randomBytes(4).toString('hex')}`;
const keys = new StoreKeys(prefix);
const store = new ApiStore(redis, keys);
const feed = new EventFeed(redis);
let registry: BlueprintRegistry;

/** A client that keeps runs in a map and writes only the run state the ApiStore reads (status, ttl, blueprint). */
function stubClient() {
  const statuses = new Map<string, RunStatus>();
  const started: Array<{ runId: string; blueprint: string | object; input: Record<string, unknown> }> = [];
  const client: RunsClient = {
    async start(blueprint, input, { runId }) {
      const created = !statuses.has(runId);
      if (created) {
        statuses.set(runId, 'running');
        started.push({ runId, blueprint, input });
        const blueprintId = typeof blueprint === 'string' ? blueprint : 'inline';
        await redis.hset(keys.runKeys(runId).state, { status: 'running', ttl: '3600', blueprintId, createdAt: String(Date.now()) });
      }
      return { created };
    },
    async get(runId) {
      const status = statuses.get(runId);
      return status && ({ runId, status, nodes: {} } as unknown as RunView);
    },
    async result(runId) {
      return (await client.get(runId))!;
    },
    async cancel(runId) {
      if (statuses.get(runId) !== 'running') return false;
      statuses.set(runId, 'cancelled');
      await redis.hset(keys.runKeys(runId).state, 'status', 'cancelled');
      return true;
    },
    store: {
      getStatus: async (runId) => statuses.get(runId),
      loadBlueprint: async () => undefined,
    },
  };
  return { client, started };
}

/** Stands in for authentication: every request is `tenant` with `scopes`. */
function as(tenant: string, scopes: ApiScope[] = ['runs:read', 'runs:write']) {
  return createMiddleware<ApiEnv>(async (c, next) => {
    c.set('principal', { tenant, scopes, identity: `test:${tenant}` });
    await next();
  });
}

/** The runs routes alone, for one caller. */
function runsApp(client: RunsClient, guard: ReturnType<typeof as>) {
  const app = new Hono<ApiEnv>();
  app.route('/', runsRoutes({ client, blueprints: registry, store, feed, guard, inlineBlueprints: false, maxWaitSeconds: 5 }));
  app.onError(handleErrors(silentLogger));
  return app;
}

const post = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => {
  registry = await BlueprintRegistry.load([WORKFLOWS_DIR], createNodeKinds());
});

afterAll(async () => {
  await feed.close();
  await deleteKeys(redis, prefixPatterns(prefix));
  await redis.quit();
});

describe('runs routes alone (stub client, real ApiStore)', () => {
  it('starts a run for the caller\'s tenant, then reads, lists, follows and cancels it; another tenant sees none of it', async () => {
    const { client, started } = stubClient();
    const acme = runsApp(client, as('acme'));
    const globex = runsApp(client, as('globex'));

    const start = await acme.request('/runs', post({ blueprintId: 'greeting', input: { name: 'Ada' }, idempotencyKey: 'once' }));
    expect(start.status).toBe(202);
    const { runId, status, links } = (await start.json()) as { runId: string; status: string; links: { self: string } };
    expect(status).toBe('running');
    expect(links.self).toBe(`/runs/${runId}`);
    expect(started).toEqual([{ runId, blueprint: 'greeting', input: { name: 'Ada' } }]);
    // The ApiStore tagged it with the tenant, in the run's slot.
    expect(await redis.get(store.tenantKey(runId))).toBe('acme');

    // The same idempotency key and body: the same run, not a second start.
    const again = await acme.request('/runs', post({ blueprintId: 'greeting', input: { name: 'Ada' }, idempotencyKey: 'once' }));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as { runId: string }).runId).toBe(runId);
    expect(started).toHaveLength(1);

    expect((await acme.request(`/runs/${runId}`)).status).toBe(200);
    const list = (await (await acme.request('/runs')).json()) as { runs: Array<{ runId: string; status: string }> };
    expect(list.runs.map((r) => [r.runId, r.status])).toEqual([[runId, 'running']]);

    // Events come from the run's stream key, which the ApiStore names.
    await redis.xadd(store.eventsKey(runId), '1-0', 'type', 'run.started');
    await redis.xadd(store.eventsKey(runId), '2-0', 'type', 'node.started', 'node', 'greet');
    const events = (await (await acme.request(`/runs/${runId}/events?after=1-0`)).json()) as { events: Array<{ id: string }>; cursor: string };
    expect(events.events.map((e) => e.id)).toEqual(['2-0']);
    expect(events.cursor).toBe('2-0');

    // Nothing stored for the version: the run's blueprint comes from the registry, laid out.
    const drawn = await acme.request(`/runs/${runId}/blueprint`);
    expect(drawn.status).toBe(200);
    expect(((await drawn.json()) as { blueprintId: string; layout: { nodes: unknown[] } }).layout.nodes).toHaveLength(2);

    for (const path of [`/runs/${runId}`, `/runs/${runId}/events`, `/runs/${runId}/blueprint`]) {
      const hidden = await globex.request(path);
      expect(hidden.status, path).toBe(404);
      expect(await hidden.json()).toEqual({ error: { code: 'RUN_NOT_FOUND', message: `no run "${runId}"` } });
    }
    expect((await globex.request('/runs')).status).toBe(200);
    expect(((await (await globex.request('/runs')).json()) as { runs: unknown[] }).runs).toEqual([]);
    expect((await globex.request(`/runs/${runId}/cancel`, { method: 'POST' })).status).toBe(404);

    expect((await acme.request(`/runs/${runId}/cancel`, { method: 'POST' })).status).toBe(202);
    const twice = await acme.request(`/runs/${runId}/cancel`, { method: 'POST' });
    expect(twice.status).toBe(409);
    expect(await twice.json()).toMatchObject({ error: { code: 'RUN_ENDED', details: { runId, status: 'cancelled' } } });
  });

  it('checks each route\'s scope after the guard, and validates before anything reaches the client', async () => {
    const { client, started } = stubClient();
    const reader = runsApp(client, as('acme', ['runs:read']));
    const refused = await reader.request('/runs', post({ blueprintId: 'greeting' }));
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: { code: 'FORBIDDEN', message: 'this API key lacks the "runs:write" scope' } });
    expect((await reader.request('/runs')).status).toBe(200);

    const writer = runsApp(client, as('acme'));
    const invalid = await writer.request('/runs', post({ blueprintId: 'greeting', colour: 'red' }));
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: { code: string } }).error.code).toBe('VALIDATION');
    expect((await writer.request('/runs', post({ blueprintId: 'no-such' }))).status).toBe(404);
    expect((await writer.request('/runs', post({ blueprint: { nodes: [] } }))).status).toBe(403);
    expect((await writer.request('/runs?limit=0')).status).toBe(400);
    expect(started).toEqual([]);
  });
});

describe('blueprints routes alone', () => {
  it('lists and shows registered blueprints behind the guard it is given', async () => {
    const app = new Hono<ApiEnv>();
    app.route('/', blueprintsRoutes({ blueprints: registry, guard: as('acme', []) }));
    app.onError(handleErrors(silentLogger));
    const list = (await (await app.request('/blueprints')).json()) as { blueprints: Array<{ id: string }> };
    expect(list.blueprints.map((b) => b.id)).toEqual(registry.ids());
    const one = (await (await app.request('/blueprints/greeting')).json()) as { mermaid: string };
    expect(one.mermaid).toMatch(/^graph TD/);
    expect((await app.request('/blueprints/a:b')).status).toBe(404);
  });
});

describe('middleware alone', () => {
  const principals: Record<string, ApiPrincipal> = {
    [`sy_${'r'.repeat(43)}`]: { id: 'key_reader', tenant: 'acme', scopes: ['runs:read'] },
    [`sy_${'w'.repeat(43)}`]: { id: 'key_writer', tenant: 'acme', scopes: ['runs:read', 'runs:write'] },
  };
  const keyStore = { verify: async (key: string) => principals[key] };

  function guarded(auth: Parameters<typeof authenticate>[0], perMinute: number) {
    const app = new Hono<ApiEnv>();
    app.get('/who', authenticate(auth), rateLimit(store, perMinute), requireScope('runs:write'), (c) => c.json(c.get('principal')));
    app.onError(handleErrors(silentLogger));
    return app;
  }

  it('authenticates by bearer or x-api-key, answers 401 and 403 in the API\'s shape, then rate-limits per key', async () => {
    const app = guarded({ mode: 'keys', keys: keyStore }, 2);
    const none = await app.request('/who');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('UNAUTHENTICATED');
    expect((await app.request('/who', { headers: { authorization: 'Basic abc' } })).status).toBe(401);
    expect((await app.request('/who', { headers: { authorization: `Bearer sy_${'x'.repeat(43)}` } })).status).toBe(401);

    const reader = await app.request('/who', { headers: { 'x-api-key': `sy_${'r'.repeat(43)}` } });
    expect(reader.status).toBe(403);

    const writer = { headers: { authorization: `Bearer sy_${'w'.repeat(43)}` } };
    const ok = await app.request('/who', writer);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ tenant: 'acme', scopes: ['runs:read', 'runs:write'], identity: 'key:key_writer' });
    // The reader's request above counted for the reader; the writer has one more in this window.
    expect((await app.request('/who', writer)).status).toBe(200);
    const limited = await app.request('/who', writer);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('with authentication off, every caller is tenant "local", counted by the address its adapter reports', async () => {
    const app = guarded({ mode: 'off' }, 1);
    const lambda = { requestContext: { http: { sourceIp: '203.0.113.9' } } };
    const first = await app.request('/who', {}, lambda);
    expect(await first.json()).toMatchObject({ tenant: 'local', identity: 'ip:203.0.113.9' });
    expect((await app.request('/who', {}, lambda)).status).toBe(429);
    expect((await app.request('/who', {}, { sourceIp: '203.0.113.10' })).status).toBe(200);
  });

  it('answers a routed path\'s other methods 405 with allow, and an unknown path a JSON 404', async () => {
    const app = new Hono<ApiEnv>({ strict: false });
    app.post('/things', (c) => c.json({ made: true }, 201));
    app.get('/things', (c) => c.json({ things: [] }));
    app.get('/things/:id', (c) => c.json({ id: c.req.param('id') }));
    allowOnlyRoutedMethods(app);
    app.notFound(notFound);
    app.onError(handleErrors(silentLogger));

    expect((await app.request('/things/', { method: 'GET' })).status).toBe(200);
    const wrong = await app.request('/things', { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST, GET');
    expect(await wrong.json()).toEqual({ error: { code: 'METHOD_NOT_ALLOWED', message: 'DELETE is not allowed on /things (allowed: POST, GET)' } });
    expect((await app.request('/things/7', { method: 'PUT' })).headers.get('allow')).toBe('GET');
    // HEAD is Hono's GET without the body.
    expect((await app.request('/things/7', { method: 'HEAD' })).status).toBe(200);
    const missing = await app.request('/nowhere/%E0%A4%A');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toBe('application/json');
    expect(await missing.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no route GET /nowhere/%E0%A4%A' } });
  });
});
