import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApi } from '../api/app.js';
import { ApiKeyStore } from '../api/keys.js';
import type { BlueprintRegistry } from '../blueprint/load.js';
import { SwitchyardClient } from '../client/client.js';
import type { Logger } from '../logger.js';
import type { RedisClient } from '../store/redis-store.js';
import { startApiServer, type ApiServer } from './dev-server.js';
import { startLocalRedis, type LocalRedis } from './redis-server.js';

/**
 * Pieces of a whole Switchyard on one machine, shared by `switchyard dev` and `npm run demo`: a Redis
 * (given or private), worker processes, and orderly stopping of everything that was started.
 */

/** The message a `switchyard worker` started with an IPC channel sends once it takes jobs. */
export const WORKER_READY_MESSAGE = 'switchyard:worker-ready';

export interface WorkerReadyMessage {
  type: typeof WORKER_READY_MESSAGE;
  workerId: string;
}

export function isWorkerReadyMessage(value: unknown): value is WorkerReadyMessage {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === WORKER_READY_MESSAGE;
}

/** A Redis to use: the one the user named, or a private one this process started (and must stop). */
export interface RedisChoice {
  /** The URL; for a `connection` its `host:port` (never a password). */
  url: string;
  /** Set when this process started the server. */
  server?: LocalRedis;
  /** Set when the caller's connection is used (the stack closes it). */
  client?: RedisClient;
}

/**
 * `url` when given; else a private redis-server/valkey-server on a free loopback port in a temp dir,
 * in its own process group (a Ctrl-C reaches only us, and we stop Redis last).
 * @throws {RedisNotInstalledError} when there is no URL and no server binary on PATH
 */
export async function provideRedis(url: string | undefined, options: { path?: string } = {}): Promise<RedisChoice> {
  if (url) return { url };
  const server = await startLocalRedis({ ownProcessGroup: true, path: options.path });
  return { url: server.url, server };
}

/** Where `bin/switchyard.mjs` is: looked up from this file, so it works from src/ (tsx) and dist/ (bundle). */
export function findCliBin(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'bin', 'switchyard.mjs');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('cannot find bin/switchyard.mjs next to the switchyard package');
}

export interface WorkerProcess {
  /** 1-based, in start order. */
  index: number;
  pid: number;
  /** The worker id it shows in run views and events. */
  workerId: string;
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

export interface WorkerProcessOptions {
  /** Blueprint files or directories, passed as `--blueprints`. */
  blueprints: readonly string[];
  /** The whole environment of the worker processes (REDIS_URL, SWITCHYARD_PREFIX … included). */
  env: NodeJS.ProcessEnv;
  /** Node jobs per worker. @default the worker's default */
  concurrency?: number;
  /** Give up when a worker is not ready within this long. @default 30000 */
  readyTimeoutMs?: number;
  /** Where the workers' log lines go: this process's stderr, or nowhere. @default 'inherit' */
  logs?: 'inherit' | 'ignore';
}

/**
 * Starts `count` `switchyard worker` processes and resolves once each takes jobs (it says so over an IPC
 * channel, with its worker id). Each runs in its own process group: a Ctrl-C in the terminal reaches only
 * this process, which then stops them in order. Should this process die, the workers see their IPC
 * channel close and drain and exit by themselves.
 */
export async function startWorkerProcesses(count: number, options: WorkerProcessOptions): Promise<WorkerProcess[]> {
  const bin = findCliBin();
  const args = [bin, 'worker', ...options.blueprints.flatMap((b) => ['--blueprints', b])];
  if (options.concurrency !== undefined) args.push('--concurrency', String(options.concurrency));
  const starting = Array.from({ length: count }, (_, i) => startWorker(i + 1, args, options));
  const settled = await Promise.allSettled(starting);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stopWorkerProcesses(settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : [])));
    throw failed.reason;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<WorkerProcess>).value);
}

function startWorker(index: number, args: string[], options: WorkerProcessOptions): Promise<WorkerProcess> {
  const logs = options.logs ?? 'inherit';
  const child = spawn(process.execPath, args, { env: options.env, stdio: ['ignore', logs, logs, 'ipc'], detached: true });
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  return new Promise<WorkerProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      stopProcess(child, exited).finally(() => reject(new Error(`worker ${index} was not ready within ${timeoutMs / 1000} s`)));
    }, timeoutMs);
    const onMessage = (message: unknown) => {
      if (!isWorkerReadyMessage(message)) return;
      cleanup();
      resolve({ index, pid: child.pid!, workerId: message.workerId, child, exited });
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      cleanup();
      reject(new Error(`worker ${index} exited (${signal ?? `code ${code}`}) before it was ready${logs === 'inherit' ? ': see its log above' : ''}`));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new Error(`worker ${index} could not start: ${err.message}`));
    };
    function cleanup() {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onError);
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/**
 * Stops a child process by pid: `signal` (default SIGTERM: a worker drains its running nodes), then
 * SIGKILL once `graceMs` has passed. Resolves when it has exited.
 */
export async function stopProcess(child: ChildProcess, exited: Promise<unknown>, options: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(child.pid!, signal);
    } catch {
      // already gone
    }
  };
  kill(options.signal ?? 'SIGTERM');
  const timer = setTimeout(() => kill('SIGKILL'), options.graceMs ?? 15_000);
  await exited;
  clearTimeout(timer);
}

/** Stops workers (all at once, each draining its running nodes); resolves when every one has exited. */
export async function stopWorkerProcesses(workers: readonly WorkerProcess[], options: { graceMs?: number; force?: boolean } = {}): Promise<void> {
  await Promise.all(workers.map((w) => stopProcess(w.child, w.exited, { signal: options.force ? 'SIGKILL' : 'SIGTERM', graceMs: options.graceMs })));
}

/** Whether a process with this pid exists (and is not a zombie we could still reap). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface LocalStackOptions {
  /** Use this Redis; else a private one is started (and stopped with the stack). */
  redisUrl?: string;
  /**
   * Or a Redis the caller connects to (REDIS_HOST, cluster mode, an AUTH token): the API's client uses
   * it (the stack closes it), and the workers find the same Redis from the REDIS_* variables in workerEnv.
   */
  redisConnection?: { address: string; connect(): Promise<RedisClient> };
  /** Where to look for redis-server/valkey-server. @default process.env.PATH */
  redisSearchPath?: string;
  prefix: string;
  queueName: string;
  /** Queue shards of the client and the workers. @default 1 */
  queueShards?: number;
  /** The blueprints the API serves and the client starts. */
  registry: BlueprintRegistry;
  /** The same blueprints as paths, for the worker processes. */
  blueprintPaths: readonly string[];
  /** Worker processes. */
  workers: number;
  /** Node jobs per worker. @default the worker's default (16) */
  concurrency?: number;
  /** The workers' environment; REDIS_URL, SWITCHYARD_PREFIX and SWITCHYARD_QUEUE are set from the stack. */
  workerEnv: NodeJS.ProcessEnv;
  /** @default 'inherit' */
  workerLogs?: 'inherit' | 'ignore';
  /** The API: port (0: a free one), host, and whether requests need API keys. */
  api: { port: number; host: string; auth: 'off' | 'keys'; logger?: Logger };
}

/** A whole Switchyard on this machine; `stop` stops what it started, in order, and is safe to call twice. */
export interface LocalStack {
  redis: RedisChoice;
  client: SwitchyardClient;
  api: ApiServer;
  workers: WorkerProcess[];
  /** The dashboard, or a run's page on it. */
  dashboardUrl(runId?: string): string;
  /** Workers first (they finish running nodes; `force`: killed at once), then the API, then Redis. */
  stop(options?: { force?: boolean }): Promise<void>;
}

/**
 * Starts Redis (unless given), the HTTP API with the dashboard, and worker processes. When a step fails,
 * what was already started is stopped before the error is thrown.
 * @throws {RedisNotInstalledError} when there is no Redis URL and no server binary
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const undo: Array<(force: boolean) => Promise<void>> = [];
  let stopping: Promise<void> | undefined;
  let started: WorkerProcess[] = [];
  const stop = (force = false) => {
    // Asked to force while already stopping (a second Ctrl-C): kill the draining workers now.
    if (stopping && force) void stopWorkerProcesses(started, { force: true });
    return (stopping ??= (async () => {
      for (const step of undo.reverse()) await step(force).catch(() => undefined);
    })());
  };
  try {
    const given = options.redisConnection;
    const redis: RedisChoice = given ? { url: given.address, client: await given.connect() } : await provideRedis(options.redisUrl, { path: options.redisSearchPath });
    if (redis.server) undo.push(() => redis.server!.stop());
    if (redis.client) undo.push(() => redis.client!.quit().then(() => undefined, () => undefined));
    const client = new SwitchyardClient({ redis: redis.client ?? redis.url, prefix: options.prefix, queueName: options.queueName, queueShards: options.queueShards, blueprints: options.registry });
    undo.push(() => client.close());
    // The blueprints given become the first stored version of their ids (a pushed version wins).
    await client.seedBlueprints();
    const auth = options.api.auth === 'keys' ? { mode: 'keys' as const, keys: new ApiKeyStore(client.store.redis, options.prefix) } : { mode: 'off' as const };
    const handler = createApi({ client, blueprints: options.registry, auth, logger: options.api.logger });
    undo.push(() => handler.close());
    const api = await startApiServer(handler, { port: options.api.port, host: options.api.host });
    undo.push(() => api.close());
    const workerEnv = { ...options.workerEnv, ...(redis.client ? {} : { REDIS_URL: redis.url }), SWITCHYARD_PREFIX: options.prefix, SWITCHYARD_QUEUE: options.queueName, SWITCHYARD_QUEUE_SHARDS: String(options.queueShards ?? 1) };
    const workers = await startWorkerProcesses(options.workers, {
      blueprints: options.blueprintPaths,
      env: workerEnv,
      concurrency: options.concurrency,
      logs: options.workerLogs,
    });
    started = workers;
    undo.push((force) => stopWorkerProcesses(workers, { force }));
    return {
      redis,
      client,
      api,
      workers,
      dashboardUrl: (runId) => dashboardUrl(api.url, runId),
      stop: (opts) => stop(opts?.force ?? false),
    };
  } catch (err) {
    await stop(true);
    throw err;
  }
}

/** The dashboard's address on an API server, or a run's page on it. */
export function dashboardUrl(apiUrl: string, runId?: string): string {
  return runId === undefined ? `${apiUrl}/dashboard/` : `${apiUrl}/dashboard/runs/${encodeURIComponent(runId)}`;
}
