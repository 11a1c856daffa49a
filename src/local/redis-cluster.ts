import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { findFreePort, findRedisBinary, RedisNotInstalledError } from './redis-server.js';

/** A Redis Cluster of `masters` redis-server processes on loopback, started for tests and the bench. */
export interface LocalRedisCluster {
  /** Every master, `redis://127.0.0.1:<port>`, in slot order (the first holds slots from 0). */
  readonly urls: string[];
  readonly ports: number[];
  readonly pids: number[];
  /** The temp dir the nodes run in (removed by `stop`). */
  readonly dir: string;
  /** Stops every node (SIGTERM by pid, SIGKILL after 5 s) and removes the temp dir. */
  stop(): Promise<void>;
}

/**
 * Starts `masters` (default 3) `redis-server --cluster-enabled yes` on free loopback ports in a temp dir
 * (no persistence, `noeviction`), joins them with `redis-cli --cluster create ... --cluster-replicas 0
 * --cluster-yes` (which gives each master an equal, contiguous range of the 16384 slots, as ElastiCache
 * does) and resolves once every node reports `cluster_state:ok`.
 */
export async function startLocalRedisCluster(options: { masters?: number; path?: string } = {}): Promise<LocalRedisCluster> {
  const binary = findRedisBinary(options.path);
  if (!binary) throw new RedisNotInstalledError();
  const cli = join(dirname(binary), binary.endsWith('valkey-server') ? 'valkey-cli' : 'redis-cli');
  const masters = options.masters ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await findFreePort();
      const nodeDir = join(dir, String(port));
      mkdirSync(nodeDir);
      const child = spawn(
        binary,
        ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'),
          '--cluster-announce-ip', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', nodeDir, '--maxmemory-policy', 'noeviction',
          '--daemonize', 'no', '--loglevel', 'warning'],
        { stdio: 'ignore' },
      );
      children.push(child);
      ports.push(port);
    }
    for (const port of ports) await waitFor(port, async (redis) => (await redis.ping()) === 'PONG');
    const created = spawnSync(cli, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${(created.stdout + created.stderr).trim().split('\n').slice(-3).join(' | ')}`);
    for (const port of ports) await waitFor(port, async (redis) => String(await redis.call('CLUSTER', 'INFO')).includes('cluster_state:ok'));
  } catch (err) {
    await stop();
    throw err;
  }
  // In slot order: redis-cli gives the first node the first range.
  return { urls: ports.map((p) => `redis://127.0.0.1:${p}`), ports, pids: children.map((c) => c.pid ?? -1), dir, stop };
}

/** Polls one node until `ready` holds (at most 20 s). */
async function waitFor(port: number, ready: (redis: Redis) => Promise<boolean>): Promise<void> {
  const redis = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: null, retryStrategy: () => 100, lazyConnect: true });
  redis.on('error', () => undefined);
  const deadline = Date.now() + 20_000;
  try {
    await redis.connect().catch(() => undefined);
    for (;;) {
      if (await ready(redis).catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`Redis Cluster node 127.0.0.1:${port} not ready within 20 s`);
      await sleep(100);
    }
  } finally {
    redis.disconnect();
  }
}
