/**
 * Blueprints as data: versions pushed through the HTTP API (or the client) are stored in Redis by content
 * hash and started by id (the latest) or by version; a run pins the versions of every blueprint its
 * subflows can reach, so child runs execute those on any worker, whatever blueprints it was started with
 * (none included), and two versions of one id run side by side. Bundled blueprints are seeded once and
 * never replace a stored version. `switchyard blueprints push` does it all from the command line.
 */
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../src/api/app.js';
import { ApiKeyStore } from '../src/api/keys.js';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { SwitchyardWorker } from '../src/executor/worker.js';
import { startApiServer, type ApiServer } from '../src/local/dev-server.js';
import { silentLogger } from '../src/logger.js';
import { createNodeKinds } from '../src/nodes/index.js';
import type { NodeKind } from '../src/types/node-kind.js';
import { openScope, type TestScope } from './support/harness.js';
import { runCli } from './support/processes.js';

/** Holds a node until the test releases its run; tells the test when a run's gate is reached. */
class Gates {
  private readonly open = new Map<string, () => void>();
  private readonly reached = new Map<string, Array<() => void>>();
  private readonly seen = new Set<string>();

  readonly kind: NodeKind<Record<string, never>> = {
    name: 'gate',
    params: z.object({}).strict() as unknown as z.ZodType<Record<string, never>>,
    reads: () => ({ context: [], outputs: [] }),
    run: (ctx) =>
      new Promise((resolve) => {
        this.open.set(ctx.runId, () => resolve({ output: 'passed' }));
        this.seen.add(ctx.runId);
        for (const wake of this.reached.get(ctx.runId) ?? []) wake();
      }),
  };

  whenReached(runId: string): Promise<void> {
    if (this.seen.has(runId)) return Promise.resolve();
    return new Promise((resolve) => this.reached.set(runId, [...(this.reached.get(runId) ?? []), resolve]));
  }

  release(runId: string): void {
    this.open.get(runId)?.();
  }
}

const gates = new Gates();
const kinds = createNodeKinds().with(gates.kind);

/** A child that says which version it is, and a parent that holds at a gate, then calls it. */
const child = (says: string) => ({
  id: 'echo-child',
  nodes: [{ id: 'say', uses: 'output', params: { template: `${says}: {{name}}`, inputs: { name: 'name' }, outputKey: 'said' } }],
  edges: [],
});
const parent = (suffix: string) => ({
  id: 'gated-parent',
  nodes: [
    { id: 'hold', uses: 'gate' },
    { id: 'call', uses: 'subflow', params: { blueprintId: 'echo-child', inputs: { name: 'name' }, outputs: { said: 'said' } } },
    { id: 'done', uses: 'output', params: { template: `{{said}}${suffix}`, inputs: { said: 'said' }, outputKey: 'result' } },
  ],
  edges: [
    { source: 'hold', target: 'call' },
    { source: 'call', target: 'done' },
  ],
});

/** A worker started with no blueprints at all (the harness's always has a registry). */
async function bareWorker(scope: TestScope): Promise<SwitchyardWorker> {
  const worker = new SwitchyardWorker({ redis: inject('redisUrl'), prefix: scope.prefix, queueName: scope.prefix, kinds, concurrency: 4, workerId: 'bare' });
  await worker.ready();
  return worker;
}

describe('runs pin the blueprints their subflows reach', () => {
  it('a run whose subflow blueprint only the client had completes on a worker started with no blueprints', async () => {
    const scope = openScope();
    const registry = new BlueprintRegistry(kinds);
    registry.add(child('only the client has me'));
    registry.add({ ...parent('!'), nodes: parent('!').nodes.filter((n) => n.id !== 'hold'), edges: [{ source: 'call', target: 'done' }] });
    const client = scope.createClient({ blueprints: registry });
    const worker = await bareWorker(scope);
    try {
      const run = await client.start('gated-parent', { name: 'Ada' });
      const done = await run.result({ timeoutMs: 20_000 });
      expect(done.status).toBe('completed');
      expect(done.context.result).toBe('only the client has me: Ada!');
      // Both versions are pinned in the run's state, as the run's closure.
      const pins = await client.store.readPins(run.runId);
      expect(pins?.pins).toEqual({ 'gated-parent': registry.get('gated-parent')!.version, 'echo-child': registry.get('echo-child')!.version });
      const childView = await client.get(done.nodes.call!.childRunId!);
      expect(childView?.version).toBe(registry.get('echo-child')!.version);
    } finally {
      await worker.close();
      await scope.close();
    }
  });

  it('two versions of one blueprint run side by side, each run with its own version, children included', async () => {
    const scope = openScope();
    // Workers of a rolling deploy: one with v1 bundled, one with v2, on one queue.
    const v1 = new BlueprintRegistry(kinds);
    v1.add(child('v1'));
    v1.add(parent(' (parent v1)'));
    const v2 = new BlueprintRegistry(kinds);
    v2.add(child('v2'));
    v2.add(parent(' (parent v2)'));
    const admin = scope.createClient({ blueprints: new BlueprintRegistry(kinds) });
    await scope.startWorker({ blueprints: v1, kinds, concurrency: 4, workerId: 'old' });
    await scope.startWorker({ blueprints: v2, kinds, concurrency: 4, workerId: 'new' });
    const workerless = await bareWorker(scope);
    try {
      expect(await admin.pushBlueprint(child('v1'))).toMatchObject({ id: 'echo-child', created: true });
      const parentV1 = await admin.pushBlueprint(parent(' (parent v1)'));
      const first = await admin.start('gated-parent', { name: 'one' });
      await gates.whenReached(first.runId);

      // v2 pushed while the v1 run is held before its subflow starts.
      await admin.pushBlueprint(child('v2'));
      const parentV2 = await admin.pushBlueprint(parent(' (parent v2)'));
      expect(parentV2.version).not.toBe(parentV1.version);
      expect(parentV2.previous).toBe(parentV1.version);
      const second = await admin.start('gated-parent', { name: 'two' });
      await gates.whenReached(second.runId);
      gates.release(second.runId);
      gates.release(first.runId);

      const [one, two] = await Promise.all([first.result({ timeoutMs: 20_000 }), second.result({ timeoutMs: 20_000 })]);
      expect([one.status, two.status]).toEqual(['completed', 'completed']);
      expect(one.version).toBe(parentV1.version);
      expect(one.context.result).toBe('v1: one (parent v1)');
      expect(two.version).toBe(parentV2.version);
      expect(two.context.result).toBe('v2: two (parent v2)');

      // An older version can still be started by name, and runs as it was.
      const again = await admin.start('gated-parent', { name: 'three' }, { version: parentV1.version });
      await gates.whenReached(again.runId);
      gates.release(again.runId);
      // Its children are those a start pins now (the latest child), as any new run's.
      expect((await again.result({ timeoutMs: 20_000 })).context.result).toBe('v2: three (parent v1)');
    } finally {
      await workerless.close();
      await scope.close();
    }
  });
});

describe('the hot path', () => {
  it('reads the pins only where a subflow starts, and fetches a version once per worker: no extra round trip per ordinary node', async () => {
    const scope = openScope();
    const registry = new BlueprintRegistry(kinds);
    const client = scope.createClient({ blueprints: registry });
    const chain = {
      id: 'chain',
      nodes: ['n1', 'n2', 'n3', 'n4'].map((id) => ({ id, uses: 'template', params: { template: id } })).concat([
        { id: 'sub', uses: 'subflow', params: { blueprintId: 'echo-child', inputs: { name: 'n4' } } } as never,
      ]),
      edges: [
        { source: 'n1', target: 'n2' },
        { source: 'n2', target: 'n3' },
        { source: 'n3', target: 'n4' },
        { source: 'n4', target: 'sub' },
      ],
    };
    await client.pushBlueprint(child('measured'));
    await client.pushBlueprint(chain);
    // MONITOR before the worker starts: ioredis fails a monitor connection ("Command queue state error")
    // when another client's command lands right as MONITOR is answered, as a new worker's first recovery
    // tick did now and then.
    const monitor = await scope.redis.monitor();
    const worker = await bareWorker(scope);
    const seen: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args.some((a) => typeof a === 'string' && a.startsWith(`${scope.prefix}:`))) seen.push(args.map(String));
    });
    try {
      for (const name of ['first', 'second']) {
        const run = await client.start('chain', { name });
        expect((await run.result({ timeoutMs: 20_000 })).status).toBe('completed');
      }
      const pinReads = seen.filter((args) => args[0]!.toLowerCase() === 'hget' && args[2] === 'pins');
      // One per subflow start (one per run), none for the four ordinary nodes before it.
      expect(pinReads).toHaveLength(2);
      const blueprintReads = seen.filter((args) => args[0]!.toLowerCase() === 'get' && /:blueprint:|:\{bp\}:stored:/.test(args[1]!));
      // chain and echo-child, each fetched once by the worker (the client has them at hand).
      expect(blueprintReads).toHaveLength(2);
    } finally {
      monitor.disconnect();
      await worker.close();
      await scope.close();
    }
  });
});

describe('seeding bundled blueprints', () => {
  it('stores each bundled id once, concurrently safe, and never replaces a stored version', async () => {
    const scope = openScope();
    const bundled = new BlueprintRegistry(kinds);
    bundled.add(child('bundled'));
    bundled.add({ ...parent(''), nodes: parent('').nodes.filter((n) => n.id !== 'hold'), edges: [{ source: 'call', target: 'done' }] });
    const clients = Array.from({ length: 4 }, () => scope.createClient({ blueprints: bundled }));
    try {
      const seeded = await Promise.all(clients.map((c) => c.seedBlueprints()));
      expect(seeded.flat().sort()).toEqual(['echo-child', 'gated-parent']);
      expect(await clients[0]!.seedBlueprints()).toEqual([]);

      const pushed = await clients[0]!.pushBlueprint(child('pushed'));
      expect(pushed.created).toBe(true);
      expect(await clients[1]!.seedBlueprints()).toEqual([]);
      const entry = await clients[2]!.catalog.get('echo-child');
      expect(entry?.loaded.version).toBe(pushed.version);
      expect(entry?.versions.map((v) => v.version)).toEqual([bundled.get('echo-child')!.version, pushed.version]);
      // The same content again: nothing new.
      expect(await clients[3]!.pushBlueprint(child('pushed'))).toEqual({ id: 'echo-child', version: pushed.version, created: false });
    } finally {
      await scope.close();
    }
  });
});

describe('the HTTP API', () => {
  let scope: TestScope;
  let server: ApiServer;
  let worker: SwitchyardWorker;
  const key = { admin: '', tenant: '' };
  const call = async (method: string, path: string, options: { key?: string; body?: unknown; raw?: string } = {}) => {
    const headers: Record<string, string> = {};
    if (options.key) headers.authorization = `Bearer ${options.key}`;
    if (options.body !== undefined || options.raw !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${server.url}${path}`, { method, headers, body: options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body)) });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    scope = openScope();
    const bundled = new BlueprintRegistry(kinds);
    bundled.add({ id: 'bundled-hello', nodes: [{ id: 'say', uses: 'output', params: { template: 'hello {{who}}', inputs: { who: 'who' } } }], edges: [] });
    const client = scope.createClient({ blueprints: bundled });
    const keys = new ApiKeyStore(client.store.redis, scope.prefix);
    key.admin = (await keys.create({ tenant: 'ops', scopes: ['runs:read', 'runs:write', 'blueprints:write'], name: 'admin' })).key;
    key.tenant = (await keys.create({ tenant: 'acme', scopes: ['runs:read', 'runs:write'], name: 'tenant' })).key;
    worker = await bareWorker(scope);
    server = await startApiServer(createApi({ client, blueprints: bundled, auth: { mode: 'keys', keys }, logger: silentLogger, maxBodyBytes: 4096 }), { port: 0 });
  });

  afterAll(async () => {
    await server?.close();
    await worker?.close();
    await scope?.close();
  });

  it('pushes a version (201), the same content again (200, unchanged), and starts the latest or a named version', async () => {
    const created = await call('PUT', '/blueprints/echo-child', { key: key.admin, body: { nodes: child('first').nodes, edges: [] } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ id: 'echo-child', created: true, version: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const same = await call('PUT', '/blueprints/echo-child', { key: key.admin, body: child('first') });
    expect(same.status).toBe(200);
    expect(same.json).toMatchObject({ id: 'echo-child', version: created.json.version, created: false });
    const second = await call('PUT', '/blueprints/echo-child', { key: key.admin, body: child('second') });
    expect(second.json).toMatchObject({ created: true, previous: created.json.version });

    const listed = await call('GET', '/blueprints', { key: key.tenant });
    const entry = listed.json.blueprints.find((b: { id: string }) => b.id === 'echo-child');
    expect(entry).toMatchObject({ version: second.json.version, latest: second.json.version, pushedAt: expect.any(Number) });
    expect(entry.versions.map((v: { version: string }) => v.version)).toEqual([created.json.version, second.json.version]);
    expect(listed.json.blueprints.map((b: { id: string }) => b.id)).toContain('bundled-hello');
    const old = await call('GET', `/blueprints/echo-child?version=${created.json.version}`, { key: key.tenant });
    expect(old.json).toMatchObject({ version: created.json.version, latest: second.json.version });
    expect(old.json.blueprint.nodes[0].params.template).toBe('first: {{name}}');

    const latest = await call('POST', '/runs?', { key: key.tenant, body: { blueprintId: 'echo-child', input: { name: 'Ada' } } });
    expect(latest.status).toBe(202);
    const pinned = await call('POST', '/runs', { key: key.tenant, body: { blueprintId: 'echo-child', version: created.json.version, input: { name: 'Bo' } } });
    expect(pinned.status).toBe(202);
    const [a, b] = await Promise.all([latest, pinned].map((r) => call('GET', `/runs/${r.json.runId}?wait=20`, { key: key.tenant })));
    expect(a!.json).toMatchObject({ status: 'completed', version: second.json.version, context: { said: 'second: Ada' } });
    expect(b!.json).toMatchObject({ status: 'completed', version: created.json.version, context: { said: 'first: Bo' } });
  });

  it('refuses a version of another blueprint, a malformed one, and a version with an inline blueprint', async () => {
    const pushed = await call('PUT', '/blueprints/other', { key: key.admin, body: { nodes: [{ id: 'x', uses: 'output', params: { template: 'x' } }], edges: [] } });
    expect(pushed.status).toBe(201);
    const wrongId = await call('POST', '/runs', { key: key.tenant, body: { blueprintId: 'bundled-hello', version: pushed.json.version } });
    expect(wrongId.status).toBe(404);
    expect(wrongId.json.error).toEqual({ code: 'BLUEPRINT_NOT_FOUND', message: `blueprint "bundled-hello" has no version ${pushed.json.version}` });
    const malformed = await call('POST', '/runs', { key: key.tenant, body: { blueprintId: 'other', version: 'v1' } });
    expect(malformed.status).toBe(400);
    expect(malformed.json.error.details.issues).toEqual([{ path: '$.version', message: 'must be a blueprint version (64 hex digits; GET /blueprints/{id} lists them)' }]);
    const inline = await call('POST', '/runs', { key: key.tenant, body: { blueprint: { nodes: [] }, version: pushed.json.version } });
    expect(inline.status).toBe(400);
  });

  it('answers 400 listing every issue, naming subflows that exist nowhere; 403 without the scope; 401 without a key; 413 over the limit', async () => {
    const bad = await call('PUT', '/blueprints/broken', {
      key: key.admin,
      body: {
        nodes: [
          { id: 'a', uses: 'no-such-kind' },
          { id: 'b', uses: 'subflow', params: { blueprintId: 'ghost' } },
          { id: 'c', uses: 'subflow', params: { blueprintId: 'echo-child' } },
        ],
        edges: [{ source: 'a', target: 'zzz' }],
      },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('VALIDATION');
    const issues = bad.json.error.details.issues as Array<{ path: string; message: string }>;
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: '$.nodes[0].uses' }),
        { path: '$.nodes[1].params.blueprintId', message: 'subflow blueprint "ghost" not found' },
        expect.objectContaining({ path: '$.edges[0].target' }),
      ]),
    );
    // echo-child is stored: not an issue.
    expect(issues.some((i) => i.message.includes('echo-child'))).toBe(false);
    expect((await call('GET', '/blueprints/broken', { key: key.tenant })).status).toBe(404);

    const mismatch = await call('PUT', '/blueprints/one', { key: key.admin, body: { id: 'two', nodes: child('x').nodes, edges: [] } });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.error.details.issues).toEqual([{ path: '$.id', message: 'must be the id in the path ("one") or left out' }]);
    expect((await call('PUT', '/blueprints/one', { key: key.admin, body: [1, 2] })).status).toBe(400);
    expect((await call('PUT', '/blueprints/one', { key: key.admin, raw: '{"nodes": [' })).json.error.code).toBe('INVALID_JSON');
    expect((await call('PUT', '/blueprints/a:b', { key: key.admin, body: child('x') })).status).toBe(400);

    const forbidden = await call('PUT', '/blueprints/echo-child', { key: key.tenant, body: child('sneaky') });
    expect(forbidden.status).toBe(403);
    expect(forbidden.json.error).toEqual({ code: 'FORBIDDEN', message: 'this API key lacks the "blueprints:write" scope' });
    expect((await call('PUT', '/blueprints/echo-child', { body: child('anonymous') })).status).toBe(401);

    const huge = await call('PUT', '/blueprints/huge', { key: key.admin, body: { ...child('x'), metadata: { padding: 'x'.repeat(8192) } } });
    expect(huge.status).toBe(413);
    expect(huge.json.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect((await call('GET', '/blueprints/huge', { key: key.tenant })).status).toBe(404);
  });
});

describe('switchyard blueprints push', () => {
  it('pushes a directory through a local API (called blueprints first), reports unchanged ones, and every problem as file: path: message', async () => {
    const scope = openScope();
    const registry = new BlueprintRegistry(createNodeKinds());
    const client = scope.createClient({ blueprints: registry });
    const keys = new ApiKeyStore(client.store.redis, scope.prefix);
    const admin = (await keys.create({ tenant: 'ops', scopes: ['blueprints:write'], name: 'admin' })).key;
    const reader = (await keys.create({ tenant: 'ops', scopes: ['runs:read'], name: 'reader' })).key;
    const server = await startApiServer(createApi({ client, blueprints: registry, auth: { mode: 'keys', keys }, logger: silentLogger }), { port: 0 });
    const dir = mkdtempSync(join(tmpdir(), 'sy-push-'));
    mkdirSync(join(dir, 'nested'));
    // "a-caller" sorts first but calls "z-callee": the callee must be pushed before it.
    writeFileSync(join(dir, 'a-caller.json'), JSON.stringify({ nodes: [{ id: 'call', uses: 'subflow', params: { blueprintId: 'z-callee' } }], edges: [] }));
    writeFileSync(join(dir, 'nested', 'z-callee.json'), JSON.stringify({ nodes: [{ id: 'out', uses: 'output', params: { template: 'hi' } }], edges: [] }));
    const env = { SWITCHYARD_API_URL: server.url, SWITCHYARD_API_KEY: admin };
    try {
      const first = await runCli(['blueprints', 'push', dir], env);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const lines = first.stdout.trim().split('\n');
      expect(lines.map((l) => l.split(/\s+/)[0])).toEqual(['z-callee', 'a-caller']);
      expect(lines.every((l) => /^\S+\s+[0-9a-f]{64}\s+created$/.test(l))).toBe(true);
      expect((await client.catalog.get('a-caller'))?.source).toBe('stored');

      const again = await runCli(['blueprints', 'push', dir, '--json'], env);
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout).pushed.map((p: { created: boolean }) => p.created)).toEqual([false, false]);

      const badFile = join(dir, 'bad.json');
      writeFileSync(badFile, JSON.stringify({ nodes: [{ id: 'a', uses: 'subflow', params: { blueprintId: 'ghost' } }], edges: [{ source: 'a', target: 'nope' }] }));
      writeFileSync(join(dir, 'broken-json.json'), '{"nodes": [');
      const bad = await runCli(['blueprints', 'push', dir], env);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain(`${badFile}: $.nodes[0].params.blueprintId: subflow blueprint "ghost" not found\n`);
      expect(bad.stderr).toContain(`${badFile}: $.edges[0].target: edge target "nope" is not a node`);
      expect(bad.stderr).toMatch(/broken-json\.json: \$: invalid JSON: unexpected end of input \(line 1, column 12\)/);
      expect(bad.stdout).toMatch(/^a-caller\s+[0-9a-f]{64}\s+unchanged$/m);

      const refused = await runCli(['blueprints', 'push', join(dir, 'nested')], { ...env, SWITCHYARD_API_KEY: reader });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/403 FORBIDDEN.*blueprints:write/);

      const list = await runCli(['blueprints', 'list', '--api', server.url, '--key', reader]);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/^a-caller\s+[0-9a-f]{12}\s+\d{4}-\d\d-\d\dT/m);
    } finally {
      await server.close();
      await scope.close();
    }
  });
});
