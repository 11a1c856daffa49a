import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { findFreePort, findRedisBinary } from '../../src/local/redis-server.js';

/**
 * A redis-server of a fault test's own (the recovery tests' and the chaos suite's), on a free loopback port
 * in a temp dir, that the test may kill (SIGKILL), restart from its append-only file on the same port,
 * pause (SIGSTOP) and resume: only ever this process, by pid, and only while it is alive.
 */
export class FaultRedis {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly args: string[],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts one with an append-only file fsynced as `appendfsync` says (default `always`: nothing
   * acknowledged is lost on a kill), or none with `appendonly: false`; `extra` arguments after those.
   */
  static async start(options: { appendfsync?: 'always' | 'everysec'; appendonly?: boolean; extra?: string[] } = {}): Promise<FaultRedis> {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-fault-redis-'));
    const aof = options.appendonly === false ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', options.appendfsync ?? 'always'];
    const args = ['--save', '', ...aof, ...(options.extra ?? [])];
    const server = new FaultRedis(await findFreePort(), dir, args);
    await server.spawn();
    return server;
  }

  private async spawn(): Promise<void> {
    const binary = findRedisBinary();
    if (!binary) throw new Error('redis-server not on PATH');
    const child = spawn(
      binary,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--maxmemory-policy', 'noeviction', '--daemonize', 'no', ...this.args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => reject(new Error(`redis-server not ready within 10 s: ${log}`)), 10_000);
      const onData = (chunk: Buffer) => {
        log += chunk;
        if (/ready to accept connections/i.test(log)) {
          clearTimeout(timer);
          child.stdout!.resume();
          child.stderr!.resume();
          child.stdout!.off('data', onData);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}) before it was ready: ${log}`));
      });
    });
  }

  /** Signals the server while it is alive (never a pid that has exited and might be reused). */
  private signal(signal: NodeJS.Signals): void {
    if (this.child?.pid && this.child.exitCode === null && this.child.signalCode === null) process.kill(this.child.pid, signal);
  }

  /** SIGKILL: no shutdown, no final write; the AOF holds what was fsynced. Resolves once it is gone. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }

  /** Starts the server again on the same port and dir: it loads its AOF. Resolves once it answers. */
  restart(): Promise<void> {
    return this.spawn();
  }

  pause(): void {
    this.signal('SIGSTOP');
  }

  resume(): void {
    this.signal('SIGCONT');
  }

  /** A connection of the test's own (the caller disconnects it). */
  connect(): Redis {
    return new Redis(this.url, { maxRetriesPerRequest: null });
  }

  /** Stops the server (resumed first, in case it is paused) and removes its dir. */
  async stop(): Promise<void> {
    this.signal('SIGCONT');
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Resolves once a fresh connection to `url` answers PING (no sleeps: ioredis reconnects until then). */
export async function untilAnswers(url: string): Promise<void> {
  const probe = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 20 });
  probe.on('error', () => undefined);
  try {
    await probe.ping();
  } finally {
    probe.disconnect();
  }
}

/**
 * A TCP proxy on a loopback port standing in for a managed endpoint (ElastiCache's primary endpoint): it
 * forwards to one Redis and can be re-pointed at another: every open connection is cut, new ones reach the
 * new target (what a failover's DNS change does to clients).
 */
export class RedisProxy {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private target: number,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(targetPort: number): Promise<RedisProxy> {
    const holder: { proxy?: RedisProxy } = {};
    const server = createServer((client) => holder.proxy!.pipe(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    holder.proxy = new RedisProxy(server, typeof address === 'object' && address ? address.port : 0, targetPort);
    return holder.proxy;
  }

  private pipe(client: Socket): void {
    if (this.held) {
      // Accepted, but not connected on until release(): what the client sends waits in its socket.
      this.held.push(client);
      client.once('error', () => client.destroy());
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: this.target });
    this.sockets.add(client);
    this.sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    // Set once this connection sent the command a dropReplyTo armed for: its next reply never arrives.
    let dropping: (() => void) | undefined;
    client.on('data', (chunk: Buffer) => {
      if (this.dropArmed && chunk.includes(this.dropArmed.marker)) {
        dropping = this.dropArmed.dropped;
        this.dropArmed = undefined;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!dropping) return void client.write(chunk);
      // Redis ran the command; its reply is lost with the connection, as when a link drops at that moment.
      dropping();
      close();
    });
  }

  private held: Socket[] | undefined;

  /** Cuts every open connection and holds new ones (accepted, but nothing reaches Redis) until {@link release}. */
  hold(): void {
    this.held = [];
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** Connects the held connections on to Redis, and new ones from now on. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const client of held) if (!client.destroyed) this.pipe(client);
  }

  private dropArmed: { marker: string; dropped: () => void } | undefined;

  /**
   * Arms a lost reply: the next command whose bytes contain `marker` reaches Redis, but the connection that
   * sent it is cut before any reply comes back. Resolves once that happened.
   */
  dropReplyTo(marker: string): Promise<void> {
    return new Promise((dropped) => {
      this.dropArmed = { marker, dropped: () => dropped() };
    });
  }

  /** Points new connections at `port` and cuts every open one. */
  repoint(port: number): void {
    this.target = port;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    for (const socket of [...this.sockets, ...(this.held ?? [])]) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
