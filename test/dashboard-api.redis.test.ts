/**
 * What the dashboard needs from the HTTP API, through the public entry point: the tenant's runs list,
 * the events long poll, layouts, and the page's files. Real Redis, real workers.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiStore, RUN_INDEX_LIMIT } from '../src/api/api-store.js';
import { createApi, type Api, type ApiOptions } from '../src/api/app.js';
import { ApiKeyStore } from '../src/api/keys.js';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { findDashboardDir } from '../src/dashboard/assets.js';
import { layoutBlueprint } from '../src/drawing/layout.js';
import { startApiServer, type ApiServer } from '../src/local/dev-server.js';
import { silentLogger } from '../src/logger.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { startHarness, type Harness } from './support/harness.js';
import { WORKFLOWS_DIR } from './support/seeds.js';

const PUBLIC_DIR = fileURLToPath(new URL('../src/dashboard/public/', import.meta.url));
/** Stays running until cancelled. */
const SLEEPY = { id: 'dash-sleepy', nodes: [{ id: 'nap', uses: 'sleep', params: { ms: 60_000 } }], edges: [] };
/** Ends about a second and a half after it starts. */
const SLOW = {
  id: 'dash-slow',
  nodes: [
    { id: 'nap', uses: 'sleep', params: { ms: 1500 } },
    { id: 'after', uses: 'output', params: { template: 'woke up' } },
  ],
  edges: [{ source: 'nap', target: 'after' }],
};

let h: Harness;
let server: ApiServer;
const apis: Api[] = [];
const servers: ApiServer[] = [];
const sleepers: string[] = [];
const key = { acme: '', globex: '' };

async function serve(options: Partial<ApiOptions> = {}): Promise<ApiServer> {
  const keys = new ApiKeyStore(h.client.store.redis, h.prefix);
  const api = createApi({ client: h.client, blueprints: h.registry, auth: { mode: 'keys', keys }, logger: silentLogger, ...options });
  apis.push(api);
  const started = await startApiServer(api);
  servers.push(started);
  return started;
}

async function call(method: string, path: string, options: { key?: string; body?: unknown; base?: ApiServer; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${(options.base ?? server).url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    redirect: 'manual',
  });
  const text = await res.text();
  const json = res.headers.get('content-type') === 'application/json' && text ? JSON.parse(text) : undefined;
  return { status: res.status, headers: res.headers, text, json };
}

/** A request with the path exactly as written (fetch would resolve "..": the server must not). */
function rawGet(path: string): Promise<{ status: number; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method: 'GET' }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function start(blueprintId: string, tenantKey = key.acme, input: Record<string, unknown> = {}): Promise<string> {
  const started = await call('POST', '/runs', { key: tenantKey, body: { blueprintId, input } });
  expect(started.status).toBe(202);
  return started.json.runId as string;
}

async function finish(runId: string, tenantKey = key.acme): Promise<any> {
  const done = await call('GET', `/runs/${runId}?wait=20`, { key: tenantKey });
  expect(done.json.status).toBe('completed');
  return done.json;
}

beforeAll(async () => {
  const registry = await BlueprintRegistry.load([WORKFLOWS_DIR], createNodeKinds());
  registry.add(SLEEPY);
  registry.add(SLOW);
  h = await startHarness({ blueprints: registry });
  const keys = new ApiKeyStore(h.client.store.redis, h.prefix);
  key.acme = (await keys.create({ tenant: 'acme', scopes: ['runs:read', 'runs:write'], name: 'acme' })).key;
  key.globex = (await keys.create({ tenant: 'globex', scopes: ['runs:read', 'runs:write'], name: 'globex' })).key;
  server = await serve();
});

afterAll(async () => {
  await Promise.all(sleepers.map((runId) => h.client.cancel(runId).catch(() => undefined)));
  await Promise.all(servers.map((s) => s.close()));
  await Promise.all(apis.map((api) => api.close()));
  await h?.close();
});

describe('GET /runs', () => {
  it("lists the tenant's top-level runs, newest first, with status, times and token use", async () => {
    const first = await start('greeting', key.acme, { name: 'One' });
    await finish(first);
    const moderation = await start('content-moderation', key.acme, h.registry.get('content-moderation')!.blueprint.metadata!.sampleInput as Record<string, unknown>);
    const moderated = await finish(moderation);
    const sleepy = await start(SLEEPY.id);
    sleepers.push(sleepy);
    const theirs = await start('greeting', key.globex, { name: 'Globex' });

    const list = await call('GET', '/runs', { key: key.acme });
    expect(list.status).toBe(200);
    expect(typeof list.json.now).toBe('number');
    // Newest first; the subflow's child runs are not listed (they are reached from their parent).
    expect(list.json.runs.map((r: { runId: string }) => r.runId)).toEqual([sleepy, moderation, first]);
    const [running, withTokens, greeting] = list.json.runs;
    expect(running).toMatchObject({ runId: sleepy, blueprintId: SLEEPY.id, status: 'running', links: { self: `/runs/${sleepy}` } });
    expect(running.endedAt).toBeUndefined();
    expect(running.durationMs).toBeUndefined();
    expect(['queued', 'running']).toContain(Object.keys(running.nodes)[0]);
    expect(greeting).toMatchObject({ blueprintId: 'greeting', status: 'completed', nodes: { done: 2 } });
    expect(greeting.durationMs).toBe(greeting.endedAt - greeting.createdAt);
    expect(greeting.usage).toBeUndefined();
    // The same token count the run view has (LLM nodes of the run itself, not its children).
    expect(withTokens.usage).toEqual(moderated.usage);
    expect(withTokens.usage.promptTokens).toBeGreaterThan(0);
    expect(withTokens.nodes).toEqual({ done: 6, skipped: 3 });

    expect((await call('GET', '/runs', { key: key.globex })).json.runs.map((r: { runId: string }) => r.runId)).toEqual([theirs]);
  });

  it('filters by status and blueprint, and limits', async () => {
    const byStatus = await call('GET', '/runs?status=running', { key: key.acme });
    expect(byStatus.json.runs.length).toBeGreaterThan(0);
    expect(byStatus.json.runs.every((r: { status: string }) => r.status === 'running')).toBe(true);
    const byBlueprint = await call('GET', '/runs?blueprintId=greeting&status=completed', { key: key.acme });
    expect(byBlueprint.json.runs.length).toBeGreaterThan(0);
    expect(byBlueprint.json.runs.every((r: { blueprintId: string }) => r.blueprintId === 'greeting')).toBe(true);
    const all = (await call('GET', '/runs', { key: key.acme })).json.runs;
    const two = await call('GET', '/runs?limit=2', { key: key.acme });
    expect(two.json.runs).toEqual(all.slice(0, 2));

    for (const [query, path] of [['status=lost', '$.query.status'], ['limit=0', '$.query.limit'], ['limit=201', '$.query.limit'], ['limit=ten', '$.query.limit'], ['blueprintId=a:b', '$.query.blueprintId']]) {
      const bad = await call('GET', `/runs?${query}`, { key: key.acme });
      expect(bad.status, query).toBe(400);
      expect(bad.json.error.details.issues[0].path, query).toBe(path);
    }
    expect((await call('GET', '/runs')).status).toBe(401);
  });

  it('lists a run started twice with one idempotency key once, and skips (and forgets) expired runs', async () => {
    const body = { blueprintId: 'greeting', input: { name: 'Twice' }, idempotencyKey: 'dash-once' };
    const once = (await call('POST', '/runs', { key: key.acme, body })).json.runId;
    expect((await call('POST', '/runs', { key: key.acme, body })).json.runId).toBe(once);
    await finish(once);
    let ids = (await call('GET', '/runs', { key: key.acme })).json.runs.map((r: { runId: string }) => r.runId);
    expect(ids.filter((id: string) => id === once)).toHaveLength(1);

    // Expiry, as Redis would do it: the run's keys are gone.
    await h.redis.del(...h.client.store.keys.scriptKeys(once));
    ids = (await call('GET', '/runs', { key: key.acme })).json.runs.map((r: { runId: string }) => r.runId);
    expect(ids).not.toContain(once);
    const index = (await h.redis.keys(`${h.prefix}:runindex:*`)) as string[];
    const members = (await Promise.all(index.map((k) => h.redis.zrange(k, 0, -1)))).flat();
    expect(members).not.toContain(once);
  });

  it(`keeps each tenant's newest ${RUN_INDEX_LIMIT} runs, expiring after its runs`, async () => {
    const store = new ApiStore(h.client.store.redis, h.client.store.keys);
    for (let i = 0; i < RUN_INDEX_LIMIT + 5; i++) await store.indexRun('crowded', `run-${i}`, 1_000 + i, 3600);
    const sizes = await Promise.all((await h.redis.keys(`${h.prefix}:runindex:*`)).map(async (k) => [k, await h.redis.zcard(k)] as const));
    const crowded = sizes.find(([, size]) => size === RUN_INDEX_LIMIT);
    expect(crowded).toBeDefined();
    const oldest = await h.redis.zrange(crowded![0], 0, 0);
    expect(oldest).toEqual(['run-5']);
    const ttl = await h.redis.ttl(crowded![0]);
    expect(ttl).toBeGreaterThan(3600);
    expect(ttl).toBeLessThanOrEqual(3600 + 86_400);
  });
});

describe('GET /runs/{runId}/events', () => {
  it('long-polls for the next events after a cursor, without holding up other requests', async () => {
    const runId = await start(SLOW.id);
    // Wait until the nap has started, then poll from there.
    let cursor: string | undefined;
    for (let i = 0; i < 50 && cursor === undefined; i++) {
      const page = await call('GET', `/runs/${runId}/events${cursor ? `?after=${cursor}` : ''}`, { key: key.acme });
      if (page.json.events.some((e: { type: string; node?: string }) => e.type === 'node.started' && e.node === 'nap')) cursor = page.json.cursor;
      else await call('GET', `/runs/${runId}/events?wait=1&after=${page.json.cursor}`, { key: key.acme });
    }
    expect(cursor).toBeDefined();

    const began = Date.now();
    const poll = call('GET', `/runs/${runId}/events?after=${cursor}&wait=15`, { key: key.acme });
    // Meanwhile the shared connection answers at once.
    const quick = Date.now();
    expect((await call('GET', `/runs/${runId}`, { key: key.acme })).json.status).toBe('running');
    expect(Date.now() - quick).toBeLessThan(1000);
    const next = await poll;
    const took = Date.now() - began;
    expect(next.status).toBe(200);
    expect(next.json.events[0]).toMatchObject({ type: 'node.done', node: 'nap' });
    expect(next.json.cursor).toBe(next.json.events.at(-1).id);
    expect(took).toBeLessThan(5000);

    // Everything after the cursor, once the run is over; then an ended run answers at once, empty.
    await finish(runId);
    const rest = await call('GET', `/runs/${runId}/events?after=${cursor}`, { key: key.acme });
    expect(rest.json.events.at(-1).type).toBe('run.completed');
    expect(rest.json.status).toBe('completed');
    const ended = Date.now();
    const empty = await call('GET', `/runs/${runId}/events?after=${rest.json.cursor}&wait=15`, { key: key.acme });
    expect(Date.now() - ended).toBeLessThan(1000);
    expect(empty.json).toMatchObject({ runId, status: 'completed', events: [], cursor: rest.json.cursor });
    // The whole timeline without a cursor, as before.
    expect((await call('GET', `/runs/${runId}/events`, { key: key.acme })).json.events).toEqual(await h.client.events(runId));
  });

  it('answers a wait with nothing new when it times out, or at once when no connection is free', async () => {
    const runId = await start(SLEEPY.id);
    sleepers.push(runId);
    const { cursor } = (await call('GET', `/runs/${runId}/events`, { key: key.acme })).json;
    let latest = cursor;
    // The node may still start (one more event); after that nothing comes.
    const first = await call('GET', `/runs/${runId}/events?after=${latest}&wait=1`, { key: key.acme });
    latest = first.json.cursor;
    const began = Date.now();
    const timedOut = await call('GET', `/runs/${runId}/events?after=${latest}&wait=0.5`, { key: key.acme });
    expect(Date.now() - began).toBeGreaterThanOrEqual(400);
    expect(timedOut.json).toMatchObject({ status: 'running', events: [], cursor: latest });

    const noPool = await serve({ maxEventConnections: 0 });
    const at = Date.now();
    const immediate = await call('GET', `/runs/${runId}/events?after=${latest}&wait=10`, { key: key.acme, base: noPool });
    expect(Date.now() - at).toBeLessThan(1000);
    expect(immediate.json.events).toEqual([]);
  });

  it('validates the cursor and the wait', async () => {
    const runId = await start('greeting', key.acme, { name: 'Cursor' });
    for (const [query, path] of [['after=latest', '$.query.after'], ['after=1-2-3', '$.query.after'], ['wait=-1', '$.query.wait'], ['wait=soon', '$.query.wait']]) {
      const reply = await call('GET', `/runs/${runId}/events?${query}`, { key: key.acme });
      expect(reply.status, query).toBe(400);
      expect(reply.json.error.details.issues[0].path, query).toBe(path);
    }
    expect((await call('GET', `/runs/${runId}/events?wait=1`, { key: key.globex })).status).toBe(404);
  });
});

describe('layouts', () => {
  it('GET /blueprints/{id} includes the layout', async () => {
    const one = await call('GET', '/blueprints/content-moderation', { key: key.acme });
    expect(one.json.layout).toEqual(layoutBlueprint(h.registry.get('content-moderation')!.blueprint));
    expect(one.json.layout.nodes.filter((n: { layer: number }) => n.layer === 0).map((n: { id: string }) => n.id)).toEqual(['check_pii', 'check_hate', 'check_spam']);
  });

  it("GET /runs/{runId}/blueprint gives the run's own blueprint version (inline and child runs too), laid out", async () => {
    const runId = await start('nested-subflows', key.acme, { name: 'Nest' });
    const view = await finish(runId);
    const own = await call('GET', `/runs/${runId}/blueprint`, { key: key.acme });
    expect(own.status).toBe(200);
    expect(own.json).toMatchObject({ runId, blueprintId: 'nested-subflows', version: view.version });
    expect(own.json.layout).toEqual(layoutBlueprint(h.registry.get('nested-subflows')!.blueprint));
    const child = Object.values(view.nodes as Record<string, { childRunId?: string }>).find((n) => n.childRunId)!.childRunId!;
    const childBlueprint = await call('GET', `/runs/${child}/blueprint`, { key: key.acme });
    expect(childBlueprint.json.blueprintId).not.toBe('nested-subflows');
    expect(childBlueprint.json.layout.nodes.length).toBeGreaterThan(0);
    expect((await call('GET', `/runs/${runId}/blueprint`, { key: key.globex })).status).toBe(404);

    const inline = await serve({ inlineBlueprints: true });
    const blueprint = { id: 'inline-drawn', nodes: [{ id: 'a', uses: 'template', params: { template: 'x' } }, { id: 'b', uses: 'output', params: { template: 'y' } }], edges: [{ source: 'a', target: 'b', condition: 'true' }] };
    const started = await call('POST', '/runs', { key: key.acme, base: inline, body: { blueprint } });
    const drawn = await call('GET', `/runs/${started.json.runId}/blueprint`, { key: key.acme, base: inline });
    expect(drawn.json.blueprint.nodes.map((n: { id: string }) => n.id)).toEqual(['a', 'b']);
    expect(drawn.json.layout.edges[0].label).toBe('if true');
  });
});

describe('the dashboard files', () => {
  it('sends / and /dashboard to the page, without a key', async () => {
    for (const path of ['/', '/dashboard']) {
      const reply = await call('GET', path);
      expect(reply.status, path).toBe(302);
      expect(reply.headers.get('location'), path).toBe('dashboard/');
      expect(reply.headers.get('content-type')).toBe('application/json');
    }
    const page = await call('GET', '/dashboard/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.text).toContain('<script type="module" src="app.js"></script>');
    // Pages have addresses of their own, shown by the page at its hash.
    expect((await call('GET', '/dashboard/runs/abc-123')).headers.get('location')).toBe('../#/runs/abc-123');
    expect((await call('GET', '/dashboard/runs')).headers.get('location')).toBe('./#/runs');
    expect((await call('GET', '/dashboard/blueprints/')).headers.get('location')).toBe('../#/blueprints');
  });

  it('serves every file with its content type, and revalidates with an etag', async () => {
    const types: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.html': 'text/html; charset=utf-8' };
    const files = listFiles(PUBLIC_DIR);
    expect(files).toEqual(expect.arrayContaining(['index.html', 'app.js', 'style.css', 'views/run.js']));
    for (const file of files) {
      const reply = await call('GET', `/dashboard/${file}`);
      expect(reply.status, file).toBe(200);
      expect(reply.headers.get('content-type'), file).toBe(types[file.slice(file.lastIndexOf('.'))]);
      expect(reply.text, file).toBe(readFileSync(join(PUBLIC_DIR, file), 'utf8'));
      const again = await call('GET', `/dashboard/${file}`, { headers: { 'if-none-match': reply.headers.get('etag')! } });
      expect(again.status, file).toBe(304);
    }
  });

  it('works offline: no file loads anything from another host', () => {
    for (const file of listFiles(PUBLIC_DIR)) {
      const text = readFileSync(join(PUBLIC_DIR, file), 'utf8').replaceAll('http://www.w3.org/2000/svg', '');
      expect(text, file).not.toMatch(/https?:\/\//);
      expect(text, file).not.toMatch(/@import|url\(\s*['"]?\/\//);
    }
  });

  it('serves nothing outside its folder, and only GET', async () => {
    for (const path of ['/dashboard/../package.json', '/dashboard/%2e%2e/package.json', '/dashboard/views/../../../package.json', '/dashboard/.hidden', '/dashboard/nope.js', '/dashboard/%2Fetc%2Fpasswd', '/dashboard/app.ts', '/dashboard/%E0%A4%A']) {
      const reply = await rawGet(path);
      expect(reply.status, path).toBe(404);
      expect(reply.type, path).toBe('application/json');
    }
    const post = await call('POST', '/dashboard/', { body: {} });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
  });

  it('can be turned off, and finds its files from the bundle in dist/ too', async () => {
    const off = await serve({ dashboard: false });
    expect((await call('GET', '/', { base: off })).status).toBe(404);
    expect((await call('GET', '/dashboard/', { base: off })).status).toBe(404);
    const root = fileURLToPath(new URL('..', import.meta.url));
    expect(findDashboardDir(pathToFileURL(join(root, 'dist', 'index.mjs')).href)).toBe(join(root, 'src', 'dashboard', 'public'));
    expect(findDashboardDir(pathToFileURL(join(root, 'src', 'api', 'app.ts')).href)).toBe(join(root, 'src', 'dashboard', 'public'));
    expect(findDashboardDir('file:///no-such-package/dist/index.mjs')).toBeUndefined();
  });
});

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? listFiles(full, `${prefix}${name}/`) : [`${prefix}${name}`];
  });
}
