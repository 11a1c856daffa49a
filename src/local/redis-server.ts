import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** A redis-server (or valkey-server) process started by Switchyard for local use and tests. */
export interface LocalRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** The binary that was started (`redis-server` or `valkey-server`). */
  readonly binary: string;
  /** The temp dir it runs in (removed by `stop`). */
  readonly dir: string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its temp dir. */
  stop(): Promise<void>;
}

/** Thrown when neither `redis-server` nor `valkey-server` is on PATH. */
export class RedisNotInstalledError extends Error {
  constructor() {
    super(
      'Switchyard needs redis-server or valkey-server on PATH (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis), or REDIS_URL pointing at a Redis >= 6.2.',
    );
    this.name = 'RedisNotInstalledError';
  }
}

const BINARIES = ['redis-server', 'valkey-server'] as const;

/** Finds redis-server or valkey-server on PATH; undefined when neither exists. */
export function findRedisBinary(pathEnv = process.env.PATH ?? ''): string | undefined {
  for (const name of BINARIES) {
    for (const dir of pathEnv.split(delimiter)) {
      if (!dir) continue;
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here; keep looking
      }
    }
  }
  return undefined;
}

/** Asks the OS for a free TCP port on 127.0.0.1. */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface LocalRedisOptions {
  /** Ports tried (a port can be taken between probing and binding). @default 3 */
  attempts?: number;
  /**
   * Starts the server in a process group of its own, so a Ctrl-C in the terminal reaches only the
   * parent, which can then stop its workers before Redis. @default false
   */
  ownProcessGroup?: boolean;
  /** Where to look for the binary. @default process.env.PATH */
  path?: string;
}

/**
 * Starts a private Redis on a free loopback port in a fresh temp dir, with no persistence and
 * `maxmemory-policy noeviction` (BullMQ's requirement). Resolves once the server accepts connections.
 */
export async function startLocalRedis(options: LocalRedisOptions = {}): Promise<LocalRedis> {
  const binary = findRedisBinary(options.path);
  if (!binary) throw new RedisNotInstalledError();
  const attempts = options.attempts ?? 3;
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await startOnce(binary, await findFreePort(), options.ownProcessGroup ?? false);
    } catch (err) {
      lastError = err; // most likely the port was taken between probe and bind; try another
    }
  }
  throw lastError;
}

async function startOnce(binary: string, port: number, detached: boolean): Promise<LocalRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-redis-'));
  const child = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
      '--maxmemory-policy', 'noeviction', '--daemonize', 'no', '--loglevel', 'notice'],
    { stdio: ['ignore', 'pipe', 'pipe'], detached },
  );
  try {
    await waitForReady(child);
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  // Logs are only needed until ready; keep draining so the pipe never fills.
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? -1,
    binary,
    dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function waitForReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      if (/ready to accept connections/i.test(log)) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`redis-server exited (code ${code}) before it was ready: ${log.trim().split('\n').slice(-3).join(' | ')}`));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error('redis-server did not become ready within 10 s'));
    }, 10_000);
    function cleanup() {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}
