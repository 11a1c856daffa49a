/**
 * The Lambda adapters in functions/, fed realistic API Gateway HTTP API (payload 2.0) events and a
 * scheduled event, against the test Redis and real workers: what the deployed functions do, minus AWS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, type Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { ApiKeyStore } from '../src/api/keys.js';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { ErrorCodes, SwitchyardError } from '../src/errors.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { findFreePort, findRedisBinary } from '../src/local/redis-server.js';
import type { SwitchyardWorker } from '../src/index.js';
import { connectRedis, resolveFunctionConfig } from '../functions/config.js';
import { backlogMetricLine, createBacklogHandler, readBacklog } from '../functions/backlog.js';
import { createHttpHandler, toApiRequest, type HttpApiEvent, type HttpHandler } from '../functions/http.js';
import { BUNDLED_BLUEPRINTS, loadBundledBlueprints } from '../functions/workflows.js';
import { openScope, startTestWorker } from './support/harness.js';

const API_ID = 'r3pmxmplak';
const DOMAIN = `${API_ID}.execute-api.us-east-1.amazonaws.com`;

/** An event as API Gateway sends it for payload format 2.0 (the shape of a captured real one). */
function httpEvent(
  method: string,
  rawPath: string,
  options: { routeKey?: string; query?: string; body?: string; base64?: boolean; headers?: Record<string, string>; pathParameters?: Record<string, string> } = {},
): HttpApiEvent & Record<string, unknown> {
  const routeKey = options.routeKey ?? `${method} ${rawPath}`;
  const query = options.query ?? '';
  const queryStringParameters: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(query)) queryStringParameters[k] = queryStringParameters[k] === undefined ? v : `${queryStringParameters[k]},${v}`;
  const now = new Date();
  const body = options.body === undefined ? undefined : options.base64 ? Buffer.from(options.body, 'utf8').toString('base64') : options.body;
  return {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString: query,
    headers: {
      accept: '*/*',
      'content-length': String(body?.length ?? 0),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      host: DOMAIN,
      'user-agent': 'curl/8.5.0',
      'x-amzn-trace-id': `Root=1-${Math.floor(now.getTime() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`,
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-port': '443',
      'x-forwarded-proto': 'https',
      ...options.headers,
    },
    ...(query ? { queryStringParameters } : {}),
    ...(options.pathParameters ? { pathParameters: options.pathParameters } : {}),
    requestContext: {
      accountId: '123456789012',
      apiId: API_ID,
      domainName: DOMAIN,
      domainPrefix: API_ID,
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl/8.5.0' },
      requestId: randomBytes(10).toString('base64').replace(/=+$/, '='),
      routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body === undefined ? {} : { body }),
    isBase64Encoded: options.base64 ?? false,
  };
}

/** The scheduled event EventBridge sends every minute. */
function scheduledEvent() {
  return {
    version: '0',
    id: 'cdc73f9d-aea9-11e3-9d5a-835b769c0d9c',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:123456789012:rule/switchyard-dev-BacklogEventsRuleSchedule1'],
    detail: {},
  };
}

const json = (result: { body: string }) => JSON.parse(result.body) as Record<string, any>;


/** Imports a fresh copy of an entry module with `env` as its process.env (entry points read it at load). */
async function importEntry<T>(path: string, env: Record<string, string | undefined>): Promise<T> {
  const saved = { ...process.env };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    vi.resetModules();
    return (await import(path)) as T;
  } finally {
    process.env = saved;
  }
}

describe('toApiRequest', () => {
  it('decodes a base64 body, lower-cases headers, reads the raw query string and keeps the source IP', () => {
    const event = httpEvent('POST', '/runs', {
      body: '{"blueprintId":"greeting","input":{"name":"Zoë"}}',
      base64: true,
      query: 'a=1&b=x%2Cy&a=2',
      headers: { 'X-Api-Key': 'sy_abc' },
    });
    const req = toApiRequest(event);
    expect(req).toMatchObject({ method: 'POST', path: '/runs', sourceIp: '203.0.113.7', body: '{"blueprintId":"greeting","input":{"name":"Zoë"}}' });
    expect(req.headers['x-api-key']).toBe('sy_abc');
    expect(req.headers['content-type']).toBe('application/json');
    // The first value of a repeated parameter; a comma inside a value survives (queryStringParameters would join).
    expect(req.query).toEqual({ a: '1', b: 'x,y' });
  });

  it('gives cookies back as a header and leaves a missing body undefined', () => {
    const event = { ...httpEvent('GET', '/blueprints'), cookies: ['a=1', 'b=2'] };
    const req = toApiRequest(event);
    expect(req.headers.cookie).toBe('a=1; b=2');
    expect(req.body).toBeUndefined();
    expect(req.query).toEqual({});
  });
});

describe('function configuration', () => {
  it('reads REDIS_URL, or the ElastiCache endpoint settings, and keeps auth on unless SWITCHYARD_AUTH=off', () => {
    expect(resolveFunctionConfig({ REDIS_URL: 'redis://h:1' })).toMatchObject({
      redis: { kind: 'url', url: 'redis://h:1', cluster: false },
      prefix: 'sy',
      queueName: 'switchyard',
      authEnabled: true,
      inlineBlueprints: false,
    });
    expect(
      resolveFunctionConfig({
        REDIS_HOST: 'master.sy.abc.use1.cache.amazonaws.com',
        REDIS_PORT: '6379',
        REDIS_TLS: 'true',
        REDIS_CLUSTER: 'true',
        REDIS_AUTH_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-AbCdEf',
        SWITCHYARD_AUTH: 'off',
        SWITCHYARD_INLINE_BLUEPRINTS: 'true',
        SWITCHYARD_RUN_TTL_SECONDS: '3600',
      }),
    ).toMatchObject({
      redis: { kind: 'endpoint', host: 'master.sy.abc.use1.cache.amazonaws.com', port: 6379, tls: true, cluster: true, authSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-AbCdEf' },
      authEnabled: false,
      inlineBlueprints: true,
      runTtlSeconds: 3600,
    });
  });

  it('refuses settings it cannot use, naming the variable', () => {
    const bad = (env: Record<string, string>, pattern: RegExp) => {
      const err = (() => {
        try {
          resolveFunctionConfig(env);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(SwitchyardError);
      expect((err as SwitchyardError).code).toBe(ErrorCodes.CONFIG);
      expect((err as Error).message).toMatch(pattern);
    };
    bad({}, /REDIS_URL/);
    bad({ REDIS_URL: 'redis://h', SWITCHYARD_AUTH: 'no' }, /SWITCHYARD_AUTH/);
    bad({ REDIS_URL: 'redis://h', REDIS_CLUSTER: 'yes' }, /REDIS_CLUSTER/);
    bad({ REDIS_HOST: 'h', REDIS_PORT: 'http' }, /REDIS_PORT/);
    bad({ REDIS_URL: 'redis://h', SWITCHYARD_RUN_TTL_SECONDS: '-1' }, /SWITCHYARD_RUN_TTL_SECONDS/);
  });

  it('reads the AUTH token once from the secret and gives it to the client only (TLS on)', async () => {
    const reads: string[] = [];
    const target = resolveFunctionConfig({ REDIS_HOST: '127.0.0.1', REDIS_PORT: '1', REDIS_TLS: 'true', REDIS_AUTH_SECRET_ARN: 'arn:secret' }).redis;
    const redis = (await connectRedis(target, async (arn) => {
      reads.push(arn);
      return 'tok3n\n';
    })) as Redis;
    try {
      expect(reads).toEqual(['arn:secret']);
      expect(redis.options.password).toBe('tok3n');
      expect(redis.options.tls).toBeDefined();
      expect(redis.options.host).toBe('127.0.0.1');
    } finally {
      redis.disconnect();
    }
  });

  it('lists every file of workflows/ in the bundle, with the versions the worker computes from the files', async () => {
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.json') ? [join(dir, e.name)] : []));
    const files = walk('workflows').map((f) => relative('.', f).split('\\').join('/')).sort();
    expect(BUNDLED_BLUEPRINTS.map((b) => b.file).sort()).toEqual(files);

    const kinds = createNodeKinds();
    const bundled = loadBundledBlueprints(kinds);
    const fromFiles = await BlueprintRegistry.load(['workflows'], kinds);
    expect(bundled.ids()).toEqual(fromFiles.ids());
    for (const id of fromFiles.ids()) expect(bundled.get(id)?.version, id).toBe(fromFiles.get(id)?.version);
  });
});

describe('HTTP functions against Redis', () => {
  const scope = openScope({ prefix: `fn${randomBytes(4).toString('hex')}` });
  const { prefix, redis } = scope;
  const handlers: HttpHandler[] = [];

  beforeAll(async () => {
    const blueprints = loadBundledBlueprints(createNodeKinds());
    await scope.startWorker({ blueprints, concurrency: 4, workerId: 'fn-test' });
    scope.createClient({ blueprints });
  });

  afterAll(async () => {
    await Promise.all(handlers.map((h) => h.close()));
    await scope.close();
  });

  type HttpModule = typeof import('../functions/http.js');
  const load = async (env: Record<string, string | undefined>): Promise<HttpModule> => {
    const mod = await importEntry<HttpModule>('../functions/http.js', {
      REDIS_URL: inject('redisUrl'),
      SWITCHYARD_PREFIX: prefix,
      SWITCHYARD_QUEUE: prefix,
      SWITCHYARD_AUTH: undefined,
      ...env,
    });
    handlers.push(mod.http);
    return mod;
  };

  it('starts a run from a base64-encoded body with SWITCHYARD_AUTH=off, then long-polls it to completion', async () => {
    const fns = await load({ SWITCHYARD_AUTH: 'off' });
    const started = await fns.startRun(
      httpEvent('POST', '/runs', { body: JSON.stringify({ blueprintId: 'greeting', input: { name: 'Ada' } }), base64: true }),
    );
    expect(started.statusCode, started.body).toBe(202);
    expect(started.headers['content-type']).toMatch(/application\/json/);
    expect(started.isBase64Encoded).toBe(false);
    const { runId, status, links } = json(started);
    expect(status).toBe('running');
    expect(links.self).toBe(`/runs/${runId}`);

    const done = await fns.getRun(
      httpEvent('GET', `/runs/${runId}`, { routeKey: 'GET /runs/{runId}', query: 'wait=10', pathParameters: { runId } }),
    );
    expect(done.statusCode, done.body).toBe(200);
    const view = json(done);
    expect(view.status).toBe('completed');
    expect(JSON.stringify(view)).toContain('Hello, Ada! Welcome to Switchyard.');

    const events = await fns.getRun(httpEvent('GET', `/runs/${runId}/events`, { routeKey: 'GET /runs/{runId}/events', pathParameters: { runId } }));
    expect(events.statusCode).toBe(200);
    expect(json(events).events.length).toBeGreaterThan(0);
  });

  it('cancels a running run, and answers 409 to cancelling it again', async () => {
    const fns = await load({ SWITCHYARD_AUTH: 'off' });
    const started = await fns.startRun(httpEvent('POST', '/runs', { body: JSON.stringify({ blueprintId: 'resilience', input: { question: 'q' } }) }));
    expect(started.statusCode, started.body).toBe(202);
    const { runId } = json(started);
    const cancelEvent = httpEvent('POST', `/runs/${runId}/cancel`, { routeKey: 'POST /runs/{runId}/cancel', pathParameters: { runId } });
    const cancelled = await fns.cancelRun(cancelEvent);
    expect(cancelled.statusCode, cancelled.body).toBe(202);
    expect(json(cancelled)).toMatchObject({ runId, status: 'cancelled' });
    const again = await fns.cancelRun(cancelEvent);
    expect(again.statusCode).toBe(409);
    expect(json(again).error.code).toBeTypeOf('string');
  });

  it('lists and shows blueprints, and answers an unknown route (the $default catch-all) with a JSON 404', async () => {
    const fns = await load({ SWITCHYARD_AUTH: 'off' });
    const list = await fns.blueprints(httpEvent('GET', '/blueprints'));
    expect(list.statusCode).toBe(200);
    const ids = (json(list).blueprints as Array<{ id: string }>).map((b) => b.id);
    expect(ids).toEqual(expect.arrayContaining(BUNDLED_BLUEPRINTS.map((b) => b.file.replace(/^.*\/|\.json$/g, ''))));
    const one = await fns.blueprints(httpEvent('GET', '/blueprints/greeting', { routeKey: 'GET /blueprints/{id}', pathParameters: { id: 'greeting' } }));
    expect(one.statusCode).toBe(200);
    expect(json(one).id).toBe('greeting');

    const missing = await fns.blueprints(httpEvent('GET', '/nowhere', { routeKey: '$default' }));
    expect(missing.statusCode).toBe(404);
    expect(json(missing)).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
    const noRun = await fns.getRun(httpEvent('GET', '/runs/00000000-0000-4000-8000-000000000000', { routeKey: 'GET /runs/{runId}' }));
    expect(noRun.statusCode).toBe(404);
    expect(json(noRun).error.code).toBeTypeOf('string');
  });

  it('requires an API key by default (SWITCHYARD_AUTH unset), and accepts one from the key store', async () => {
    const fns = await load({});
    const body = JSON.stringify({ blueprintId: 'greeting', input: { name: 'Key' } });
    const anonymous = await fns.startRun(httpEvent('POST', '/runs', { body }));
    expect(anonymous.statusCode).toBe(401);
    expect(json(anonymous).error.code).toBeTypeOf('string');

    const { key } = await new ApiKeyStore(redis, prefix).create({ tenant: 'acme', scopes: ['runs:read', 'runs:write'], name: 'deploy test' });
    const started = await fns.startRun(httpEvent('POST', '/runs', { body, headers: { authorization: `Bearer ${key}` } }));
    expect(started.statusCode, started.body).toBe(202);
  });

  it('answers 503 (and builds again on the next call) when the API cannot be built, without crashing at init', async () => {
    let builds = 0;
    const handler = createHttpHandler(async () => {
      builds++;
      throw new Error('secret unreachable');
    });
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const first = await handler(httpEvent('GET', '/blueprints'));
      expect(first.statusCode).toBe(503);
      expect(json(first).error.code).toBe('UNAVAILABLE');
      await handler(httpEvent('GET', '/blueprints'));
      expect(builds).toBe(2);
    } finally {
      errors.mockRestore();
    }
    // A module whose environment names no Redis loads fine and answers 503 too.
    const fns = await importEntry<HttpModule>('../functions/http.js', { REDIS_URL: undefined, REDIS_HOST: undefined });
    errors.mockImplementation(() => undefined);
    try {
      expect((await fns.getRun(httpEvent('GET', '/runs/x'))).statusCode).toBe(503);
    } finally {
      errors.mockRestore();
      await fns.http.close();
    }
  });
});

describe('backlog function', () => {
  const scope = openScope({ prefix: `bl${randomBytes(4).toString('hex')}` });
  const { prefix, redis } = scope;
  let stdout: ReturnType<typeof vi.spyOn>;

  afterEach(() => stdout?.mockRestore());
  afterAll(() => scope.close());

  it('writes one Embedded Metric Format line with running + waiting node jobs (not delayed ones) and the oldest wait', async () => {
    // Runs started with no worker: each leaves its first node job waiting; plus one delayed and one
    // prioritized job, and one job a worker has taken (active).
    const blueprints = loadBundledBlueprints(createNodeKinds());
    const client = scope.createClient({ blueprints });
    for (const name of ['a', 'b', 'c']) await client.start('greeting', { name });
    const { NodeQueue } = await import('../src/queue/node-queue.js');
    const { resolveOptions } = await import('../src/options.js');
    const queue = new NodeQueue(resolveOptions({ redis: redis.duplicate(), prefix, queueName: prefix }));
    await queue.queue.add('later', { runId: 'r', nodeId: 'n', version: 'v' }, { delay: 3_600_000 });
    await queue.queue.add('urgent', { runId: 'r', nodeId: 'p', version: 'v' }, { priority: 1 });
    await queue.queue.add('taken', { runId: 'r', nodeId: 't', version: 'v' });
    const { Worker } = await import('bullmq');
    const taker = new Worker(queue.queue.name, null, { connection: redis.duplicate(), prefix: queue.queue.opts.prefix });
    expect(await taker.getNextJob('test-token')).toBeDefined();
    await taker.close();
    await queue.close();
    await client.close();

    type BacklogModule = typeof import('../functions/backlog.js');
    const fns = await importEntry<BacklogModule>('../functions/backlog.js', {
      REDIS_URL: inject('redisUrl'),
      SWITCHYARD_PREFIX: prefix,
      SWITCHYARD_QUEUE: prefix,
      SWITCHYARD_METRIC_SERVICE: 'switchyard-test',
    });
    const lines: string[] = [];
    stdout = vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stdout.write);
    try {
      const counts = await fns.backlog(scheduledEvent());
      expect(counts).toEqual({ waiting: 3, prioritized: 1, active: 1, delayed: 1, backlog: 5, oldestWaitingSeconds: expect.any(Number) });
      expect(counts.oldestWaitingSeconds).toBeLessThan(60);
    } finally {
      stdout.mockRestore();
      await fns.backlog.close();
    }
    const emf = lines.filter((l) => l.includes('"_aws"'));
    expect(emf).toHaveLength(1);
    expect(emf[0]!.endsWith('\n')).toBe(true);
    expect(emf[0]!.trim()).not.toContain('\n');
    const doc = JSON.parse(emf[0]!);
    expect(doc).toMatchObject({
      _aws: {
        Timestamp: expect.any(Number),
        CloudWatchMetrics: [
          {
            Namespace: 'Switchyard',
            Dimensions: [['Service']],
            Metrics: [
              { Name: 'QueueBacklog', Unit: 'Count' },
              { Name: 'OldestWaitingJobAge', Unit: 'Seconds' },
            ],
          },
        ],
      },
      Service: 'switchyard-test',
      QueueBacklog: 5,
      OldestWaitingJobAge: expect.any(Number),
      Active: 1,
      Delayed: 1,
    });
    expect(Math.abs(doc._aws.Timestamp - Date.now())).toBeLessThan(60_000);
  });

  it('reopens after a failed start instead of keeping a broken connection', async () => {
    let calls = 0;
    const handler = createBacklogHandler(() => {
      calls++;
      throw new Error('no config');
    });
    await expect(handler()).rejects.toThrow('no config');
    await expect(handler()).rejects.toThrow('no config');
    expect(calls).toBe(2);
    const counts = { waiting: 1, prioritized: 3, active: 4, delayed: 2, backlog: 8, oldestWaitingSeconds: 42 };
    expect(JSON.parse(backlogMetricLine('s', counts, 1700000000000))).toMatchObject({
      _aws: { Timestamp: 1700000000000 },
      QueueBacklog: 8,
      OldestWaitingJobAge: 42,
      Waiting: 1,
      Delayed: 2,
      Prioritized: 3,
      Active: 4,
    });
  });

  it('ages the oldest waiting job from when it became ready: its add time, or the end of its delay', async () => {
    const { NodeQueue } = await import('../src/queue/node-queue.js');
    const { resolveOptions } = await import('../src/options.js');
    const name = `${prefix}age`;
    const queue = new NodeQueue(resolveOptions({ redis: redis.duplicate(), prefix, queueName: name }));
    try {
      const now = Date.now();
      expect(await readBacklog(queue, now)).toMatchObject({ backlog: 0, oldestWaitingSeconds: 0 });
      // Added 5 minutes ago with a 4-minute delay, promoted since: ready for 60 s.
      const delayed = await queue.queue.add('retry', { runId: 'r', nodeId: 'a', version: 'v' }, { delay: 240_000, timestamp: now - 300_000 });
      await delayed.promote();
      await queue.queue.add('fresh', { runId: 'r', nodeId: 'b', version: 'v' }, { timestamp: now - 10_000 });
      expect(await readBacklog(queue, now)).toMatchObject({ waiting: 2, delayed: 0, backlog: 2, oldestWaitingSeconds: 60 });
    } finally {
      await queue.queue.obliterate({ force: true });
      await queue.close();
    }
  });
});

describe('cluster mode (REDIS_CLUSTER=true) on a one-node Redis Cluster', () => {
  // ElastiCache cluster mode and ElastiCache Serverless speak the cluster protocol; a one-node cluster
  // enforces the same rule (every multi-key command and script within one slot).
  const binary = findRedisBinary();
  let server: ChildProcess | undefined;
  let dir: string | undefined;
  let url = '';

  beforeAll(async () => {
    if (!binary) return;
    const port = await findFreePort();
    dir = mkdtempSync(join(tmpdir(), 'sy-cluster-'));
    server = spawn(
      binary,
      ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-announce-ip', '127.0.0.1',
        '--save', '', '--appendonly', 'no', '--dir', dir, '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore' },
    );
    url = `redis://127.0.0.1:${port}`;
    const { Redis } = await import('ioredis');
    // Commands wait in the offline queue until the server accepts connections.
    const admin = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 100 });
    admin.on('error', () => undefined);
    await admin.ping();
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    while (!String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) await sleep(100);
    admin.disconnect();
  });

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.runIf(binary)('starts, waits for, cancels and counts runs through the functions', async () => {
    const prefix = `cl${randomBytes(4).toString('hex')}`;
    const env = { REDIS_URL: url, REDIS_CLUSTER: 'true', SWITCHYARD_AUTH: 'off', SWITCHYARD_PREFIX: prefix, SWITCHYARD_QUEUE: prefix };
    type HttpModule = typeof import('../functions/http.js');
    type BacklogModule = typeof import('../functions/backlog.js');
    const fns = await importEntry<HttpModule>('../functions/http.js', env);
    const metrics = await importEntry<BacklogModule>('../functions/backlog.js', env);
    const blueprints = loadBundledBlueprints(createNodeKinds());
    const cluster = new Cluster([{ host: '127.0.0.1', port: Number(new URL(url).port) }], { redisOptions: { maxRetriesPerRequest: null } });
    let worker: SwitchyardWorker | undefined;
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const started = await fns.startRun(httpEvent('POST', '/runs', { body: JSON.stringify({ blueprintId: 'subflow-wrapper', input: { name: 'Shard' } }) }));
      expect(started.statusCode, started.body).toBe(202);
      const { runId } = json(started);
      expect(await metrics.backlog(scheduledEvent())).toMatchObject({ waiting: 1, backlog: 1 });

      worker = await startTestWorker({ redis: cluster, prefix, blueprints, concurrency: 4, workerId: 'cluster' });
      const done = await fns.getRun(httpEvent('GET', `/runs/${runId}`, { routeKey: 'GET /runs/{runId}', query: 'wait=15' }));
      expect(done.statusCode, done.body).toBe(200);
      expect(json(done).status).toBe('completed');
      expect(done.body).toContain('<< Hello, Shard! Welcome to Switchyard. >>');

      const slow = json(await fns.startRun(httpEvent('POST', '/runs', { body: JSON.stringify({ blueprintId: 'resilience', input: { question: 'q' } }) })));
      const cancelled = await fns.cancelRun(httpEvent('POST', `/runs/${slow.runId}/cancel`, { routeKey: 'POST /runs/{runId}/cancel' }));
      expect(cancelled.statusCode, cancelled.body).toBe(202);
    } finally {
      stdout.mockRestore();
      await worker?.close();
      await fns.http.close();
      await metrics.backlog.close();
      cluster.disconnect();
    }
  });
});
