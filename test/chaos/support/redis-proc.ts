import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findFreePort, findRedisBinary } from '../../../src/local/redis-server.js';

/**
 * A redis-server of the chaos test's own, on 127.0.0.1, that the test may kill, stop, continue and
 * restart (on the same port and directory, so it reloads its append-only file). Only this process's
 * pid is ever signalled.
 */
export class RedisProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
  ) {}

  /** Starts one with AOF `fsync` on every write (nothing acknowledged is lost on a kill), or as `args` say. */
  static async start(options: { args?: string[] } = {}): Promise<RedisProcess> {
    const port = await findFreePort();
    const dir = mkdtempSync(join(tmpdir(), 'sy-chaos-redis-'));
    const server = new RedisProcess(port, dir, options.args ?? ['--appendonly', 'yes', '--appendfsync', 'always']);
    await server.launch();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** (Re)starts the server on its port and directory; resolves once it accepts connections. */
  async launch(): Promise<void> {
    const binary = findRedisBinary();
    if (!binary) throw new Error('redis-server is not on PATH');
    const child = spawn(
      binary,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir, '--maxmemory-policy', 'noeviction', ...this.args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        log += d;
        if (/Ready to accept connections/.test(log)) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${log}`)));
    });
  }

  /** SIGKILL; resolves once it is gone. */
  async kill(): Promise<void> {
    if (this.child?.pid && this.child.exitCode === null && this.child.signalCode === null) process.kill(this.child.pid, 'SIGKILL');
    await this.exited;
  }

  /** Signals the server while it is alive (never a pid that has exited and might be reused). */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void {
    if (this.child?.pid && this.child.exitCode === null && this.child.signalCode === null) process.kill(this.child.pid, signal);
  }

  /** A connection of the test's own (the caller quits it). */
  connect(): Redis {
    return new Redis(this.url, { maxRetriesPerRequest: null, lazyConnect: false });
  }

  /** Kills it (continuing it first if stopped) and removes its directory. */
  async stop(): Promise<void> {
    this.signal('SIGCONT');
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A loopback TCP proxy standing in for a managed Redis endpoint (ElastiCache's primary endpoint): clients
 * connect to it, and a failover points it at another server and drops every open connection, as a DNS
 * switch plus the old primary's death do.
 */
export class RedisProxy {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private target: number,
  ) {}

  static async start(targetPort: number): Promise<RedisProxy> {
    const port = await findFreePort();
    const server = createServer();
    const proxy = new RedisProxy(server, port, targetPort);
    server.on('connection', (client) => proxy.pipe(client));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private pipe(client: Socket): void {
    const upstream = createConnection({ host: '127.0.0.1', port: this.target });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Points new connections at `port` and drops the open ones (clients reconnect there). */
  switchTo(port: number): void {
    this.target = port;
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
