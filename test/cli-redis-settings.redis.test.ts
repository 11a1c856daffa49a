/**
 * Every CLI command connects with the worker's Redis settings (one resolver): REDIS_HOST/REDIS_PORT/
 * REDIS_AUTH_TOKEN, REDIS_CLUSTER; incomplete sets are refused instead of falling back to 127.0.0.1:6379.
 * And the worker process's own duties: a heartbeat file for `switchyard health`, and the run TTL it gives
 * the child runs it starts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { findFreePort, findRedisBinary, startLocalRedis, type LocalRedis } from '../src/local/redis-server.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { createTestClient, deleteKeys, prefixPatterns } from './support/harness.js';
import { killStarted, runCli, startCli } from './support/processes.js';

const TOKEN = `Secr3t${randomBytes(12).toString('hex')}`;
/** Clears every Redis variable the test runner may have, so each test says exactly what it sets. */
const NO_REDIS = { REDIS_URL: '', REDIS_HOST: '', REDIS_PORT: '', REDIS_TLS: '', REDIS_CLUSTER: '', REDIS_AUTH_TOKEN: '', REDIS_AUTH_SECRET_ARN: '' };
const QUIET = { SWITCHYARD_LOG_LEVEL: 'warn' };

afterAll(() => killStarted());

describe('CLI commands with REDIS_HOST, REDIS_PORT and REDIS_AUTH_TOKEN (a password-protected Redis)', () => {
  let server: LocalRedis;
  let admin: Redis;
  const prefix = `ch${randomBytes(3).toString('hex')}`;
  let env: Record<string, string>;

  beforeAll(async () => {
    server = await startLocalRedis();
    admin = new Redis(server.url);
    await admin.config('SET', 'requirepass', TOKEN);
    await admin.auth(TOKEN);
    env = { ...NO_REDIS, ...QUIET, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(server.port), REDIS_AUTH_TOKEN: TOKEN, SWITCHYARD_PREFIX: prefix, SWITCHYARD_QUEUE: prefix };
  });
  afterAll(async () => {
    await killStarted();
    admin?.disconnect();
    await server?.stop();
  });

  it('run --wait, status and keys create reach the same Redis as the worker; nothing prints the token', async () => {
    const worker = await startCli(['worker', '--blueprints', 'workflows'], { ...env, SWITCHYARD_LOG_LEVEL: 'info' }, /worker ready/);
    expect(worker.log()).toContain(`127.0.0.1:${server.port}`);
    const run = await runCli(['run', 'greeting', '--blueprints', 'workflows', '--input', '{"name":"Host"}', '--wait', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({ status: 'completed', context: { final_output: 'Hello, Host! Welcome to Switchyard.' } });
    expect(await admin.exists(`${prefix}:{${result.runId}}:state`)).toBe(1);

    const status = await runCli(['status', result.runId, '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).status).toBe('completed');

    const key = await runCli(['keys', 'create', '--tenant', 'acme'], env);
    expect(key.code, key.stderr).toBe(0);
    expect(key.stdout.trim()).toMatch(/^sy_/);
    expect(Object.keys(await admin.hgetall(`${prefix}:apikeys`))).toHaveLength(1);

    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    for (const out of [worker.log(), run.stdout, run.stderr, status.stdout, key.stderr]) expect(out).not.toContain(TOKEN);
  });

  it('a wrong token or an unreachable Redis is one line naming host:port, never the token', async () => {
    const wrong = await runCli(['status', 'some-run'], { ...env, REDIS_AUTH_TOKEN: 'not-the-token' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim()).toMatch(new RegExp(`^switchyard status: cannot reach Redis at 127\\.0\\.0\\.1:${server.port} \\(REDIS_HOST\\): WRONGPASS`));
    expect(wrong.stderr).not.toContain('not-the-token');

    const port = await findFreePort();
    const down = await runCli(['run', 'greeting', '--blueprints', 'workflows', '--wait'], { ...env, REDIS_PORT: String(port) });
    expect(down.code).toBe(1);
    expect(down.stderr.trim()).toBe(`switchyard run: cannot reach Redis at 127.0.0.1:${port} (REDIS_HOST): ECONNREFUSED`);
    expect(down.stderr).not.toContain(TOKEN);
  });
});

describe('refusing to guess', () => {
  it('refuses an incomplete or contradictory REDIS_* set with one line naming the variables, before touching any Redis', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['run', 'greeting', '--blueprints', 'workflows', '--wait'], { REDIS_PORT: '6390' }, /^switchyard run: REDIS_PORT is set but neither REDIS_HOST nor REDIS_URL is/],
      [['keys', 'create', '--tenant', 'acme'], { REDIS_CLUSTER: 'true', REDIS_AUTH_TOKEN: TOKEN }, /^switchyard keys: REDIS_CLUSTER and REDIS_AUTH_TOKEN are set but neither REDIS_HOST nor REDIS_URL is/],
      [['status', 'x'], { REDIS_TLS: 'true' }, /^switchyard status: REDIS_TLS is set but neither/],
      [['cancel', 'x'], { REDIS_URL: 'redis://127.0.0.1:1', REDIS_HOST: '127.0.0.1' }, /^switchyard cancel: REDIS_URL and REDIS_HOST are both set/],
      [['events', 'x'], { REDIS_URL: `redis://:${TOKEN}@127.0.0.1:1`, REDIS_AUTH_TOKEN: TOKEN }, /^switchyard events: REDIS_AUTH_TOKEN is set with REDIS_URL/],
      [['worker', '--blueprints', 'workflows'], { REDIS_AUTH_TOKEN: TOKEN }, /^switchyard worker: REDIS_AUTH_TOKEN is set but neither/],
      [['keys', 'list'], { REDIS_HOST: '127.0.0.1', REDIS_PASSWORD: TOKEN }, /^switchyard keys: REDIS_PASSWORD is not read by Switchyard/],
    ];
    const results = await Promise.all(cases.map(([args, vars]) => runCli(args, { ...NO_REDIS, ...QUIET, ...vars })));
    results.forEach((result, i) => {
      const [args, , pattern] = cases[i]!;
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(result.stderr.trim(), args.join(' ')).toMatch(pattern);
      expect(result.stderr, args.join(' ')).not.toContain(TOKEN);
    });
  });

  it('says in --help that only with no REDIS_* variable is it 127.0.0.1:6379', async () => {
    const help = await runCli(['--help']);
    expect(help.stdout).toContain('With no REDIS_* variable at all: redis://127.0.0.1:6379');
    expect(help.stdout).toMatch(/REDIS_HOST/);
    const run = await runCli(['run', '--help']);
    expect(run.stdout).toContain('redis://127.0.0.1:6379 only when no REDIS_* variable is set');
  });
});

describe('REDIS_HOST + REDIS_CLUSTER=true on a one-node Redis Cluster with an AUTH token', () => {
  const binary = findRedisBinary();
  let server: ChildProcess | undefined;
  let dir: string | undefined;
  let port = 0;
  const prefix = `cc${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    if (!binary) return;
    port = await findFreePort();
    dir = mkdtempSync(join(tmpdir(), 'sy-cli-cluster-'));
    server = spawn(
      binary,
      ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-announce-ip', '127.0.0.1',
        '--requirepass', TOKEN, '--save', '', '--appendonly', 'no', '--dir', dir, '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore' },
    );
    // Commands wait in the offline queue until the server accepts connections.
    const admin = new Redis({ port, password: TOKEN, maxRetriesPerRequest: null, retryStrategy: () => 100 });
    admin.on('error', () => undefined);
    await admin.ping();
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    while (!String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) await sleep(100);
    admin.disconnect();
  });

  afterAll(async () => {
    await killStarted();
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.runIf(binary)('a worker, run --wait, keys create and keys list all use the cluster', async () => {
    const env = { ...NO_REDIS, ...QUIET, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(port), REDIS_CLUSTER: 'true', REDIS_AUTH_TOKEN: TOKEN, SWITCHYARD_PREFIX: prefix, SWITCHYARD_QUEUE: prefix };
    const worker = await startCli(['worker', '--blueprints', 'workflows'], { ...env, SWITCHYARD_LOG_LEVEL: 'info' }, /worker ready/);
    expect(worker.log()).toContain('cluster mode');
    const run = await runCli(['run', 'subflow-wrapper', '--blueprints', 'workflows', '--input', '{"name":"Shard"}', '--wait', '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({ status: 'completed', context: { wrapped: '<< Hello, Shard! Welcome to Switchyard. >>' } });

    const created = await runCli(['keys', 'create', '--tenant', 'acme', '--json'], env);
    expect(created.code, created.stderr).toBe(0);
    const { id, key } = JSON.parse(created.stdout);
    expect(key).toMatch(/^sy_/);
    const listed = await runCli(['keys', 'list', '--json'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id, tenant: 'acme' })]);

    // It is all in the cluster, seen through a cluster client.
    const cluster = new Cluster([{ host: '127.0.0.1', port }], { redisOptions: { password: TOKEN } });
    try {
      expect(await cluster.exists(`${prefix}:{${result.runId}}:state`)).toBe(1);
      expect(await cluster.hexists(`${prefix}:apikeys`, id)).toBe(1);
    } finally {
      cluster.disconnect();
    }
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(worker.log()).not.toContain(TOKEN);
  });
});

describe('switchyard worker duties', () => {
  const prefix = `wd${randomBytes(3).toString('hex')}`;
  const env = { ...NO_REDIS, REDIS_URL: inject('redisUrl'), SWITCHYARD_PREFIX: prefix, SWITCHYARD_QUEUE: prefix, SWITCHYARD_LOG_LEVEL: 'info' };
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sy-heartbeat-'));
  });
  afterAll(async () => {
    await killStarted();
    const redis = new Redis(inject('redisUrl'));
    await deleteKeys(redis, prefixPatterns(prefix));
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `switchyard health` until its exit code is `want` (each call a fresh process), within `withinMs`. */
  async function healthBecomes(want: 0 | 1, file: string, withinMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      const result = await runCli(['health', '--max-age-seconds', '2'], { SWITCHYARD_HEARTBEAT_FILE: file });
      if (result.code === want) return result;
      if (Date.now() > deadline) throw new Error(`health still exits ${result.code} after ${withinMs} ms: ${result.stdout}${result.stderr}`);
      await sleep(200);
    }
  }

  it('health passes while the worker runs, fails while it is stopped (SIGSTOP), recovers on SIGCONT', async () => {
    const file = join(dir, 'heartbeat');
    const before = await runCli(['health', '--file', file]);
    expect(before.code).toBe(1);
    expect(before.stderr.trim()).toBe(`switchyard health: no heartbeat file ${file}: the worker has not started (or runs without SWITCHYARD_HEARTBEAT_FILE)`);
    const usage = await runCli(['health'], { SWITCHYARD_HEARTBEAT_FILE: '' });
    expect(usage.code).toBe(2);

    const worker = await startCli(['worker', '--blueprints', 'workflows'], { ...env, SWITCHYARD_HEARTBEAT_FILE: file, SWITCHYARD_HEARTBEAT_MS: '200' }, /worker ready/);
    const pid = worker.child.pid!;
    try {
      const alive = await healthBecomes(0, file, 10_000);
      expect(alive.stdout.trim()).toMatch(/^worker alive: heartbeat \d+\.\d s old \(max 2 s\)$/);

      process.kill(pid, 'SIGSTOP');
      const stuck = await healthBecomes(1, file, 15_000);
      expect(stuck.stderr.trim()).toMatch(new RegExp(`^switchyard health: worker unhealthy: heartbeat ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is \\d+\\.\\d s old \\(max 2 s\\)`));

      process.kill(pid, 'SIGCONT');
      await healthBecomes(0, file, 10_000);
    } finally {
      process.kill(pid, 'SIGCONT');
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    }
    // Stopped (drained) workers write no more heartbeats.
    await healthBecomes(1, file, 10_000);
  });

  it('gives the child runs it starts SWITCHYARD_RUN_TTL_SECONDS', async () => {
    const worker = await startCli(['worker', '--blueprints', 'workflows'], { ...env, SWITCHYARD_RUN_TTL_SECONDS: '120' }, /worker ready/);
    const registry = await BlueprintRegistry.load(['workflows'], createNodeKinds());
    const client = createTestClient({ prefix, blueprints: registry });
    const redis = new Redis(inject('redisUrl'));
    try {
      // The parent is started here with the default TTL (7 days); its subflow node's child run by the worker.
      const view = await (await client.start('subflow-wrapper', { name: 'Ttl' })).result({ timeoutMs: 30_000 });
      expect(view.status).toBe('completed');
      const childRunId = view.nodes.call_greeting!.childRunId!;
      expect(childRunId).toBeTruthy();
      const childTtl = await redis.pttl(`${prefix}:{${childRunId}}:state`);
      expect(childTtl).toBeGreaterThan(100_000);
      expect(childTtl).toBeLessThanOrEqual(120_000);
      expect(await redis.pttl(`${prefix}:{${view.runId}}:state`)).toBeGreaterThan(6 * 24 * 3600 * 1000);
    } finally {
      await client.close();
      redis.disconnect();
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
  });
});
