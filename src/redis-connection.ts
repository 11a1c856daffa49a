import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ErrorCodes, SwitchyardError } from './errors.js';
import type { RedisClient } from './types/redis-client.js';

/**
 * Where a process finds Redis: a URL (local runs, tests), or an ElastiCache endpoint with TLS and an
 * AUTH token, standalone or cluster mode. The one resolver for the worker, the Lambda functions and
 * every CLI command, so that they can never disagree about which Redis they use.
 */
export type RedisTarget =
  | {
      kind: 'url';
      url: string;
      cluster: boolean;
      /** True when no REDIS_* variable was set and the local default was taken. */
      defaulted?: boolean;
    }
  | { kind: 'endpoint'; host: string; port: number; tls: boolean; cluster: boolean; authSecretArn?: string; authToken?: string };

type Env = Record<string, string | undefined>;

/** The Redis a local command uses when no REDIS_* variable is set at all. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Every variable the resolver reads. */
export const REDIS_VARIABLES = ['REDIS_URL', 'REDIS_HOST', 'REDIS_PORT', 'REDIS_TLS', 'REDIS_CLUSTER', 'REDIS_AUTH_TOKEN', 'REDIS_AUTH_SECRET_ARN'] as const;
/** The settings that only make sense with REDIS_HOST (REDIS_URL carries port, TLS and password itself). */
const ENDPOINT_ONLY = ['REDIS_PORT', 'REDIS_TLS', 'REDIS_AUTH_TOKEN', 'REDIS_AUTH_SECRET_ARN'] as const;
/** Names people reach for that Switchyard does not read: refused rather than silently ignored. */
const NOT_READ = ['REDIS_PASSWORD', 'REDIS_USERNAME'] as const;

export interface RedisTargetOptions {
  /**
   * What to do when no REDIS_* variable is set: `local` takes redis://127.0.0.1:6379 (the CLI on one
   * machine); `none` refuses (a Lambda function or a task has no sensible default). @default 'local'
   */
  fallback?: 'local' | 'none';
}

/** Whether any variable the resolver reads (or refuses) is set to a non-empty value. */
export function hasRedisSettings(env: Env): boolean {
  return [...REDIS_VARIABLES, ...NOT_READ].some((name) => isSet(env, name));
}

/**
 * Reads REDIS_URL, or REDIS_HOST / REDIS_PORT / REDIS_TLS with the AUTH token from REDIS_AUTH_TOKEN (as
 * ECS injects a secret into a container) or REDIS_AUTH_SECRET_ARN (read from Secrets Manager), and
 * REDIS_CLUSTER. It refuses to guess: when any of them is set, exactly those are used, and a set that is
 * incomplete or contradictory (a port without a host, both a URL and a host, a token and a secret) is an
 * error naming the variables. Only with none of them set does `fallback: 'local'` give
 * redis://127.0.0.1:6379. Empty values count as unset.
 * @throws {SwitchyardError} CONFIG naming the variables that are wrong (never their secret values).
 */
export function redisTargetFromEnv(env: Env, options: RedisTargetOptions = {}): RedisTarget {
  const given = (names: readonly string[]) => names.filter((name) => isSet(env, name));
  const unread = given(NOT_READ);
  if (unread.length) {
    throw configError(`${list(unread)} ${unread.length === 1 ? 'is' : 'are'} not read by Switchyard: give the password as REDIS_AUTH_TOKEN (with REDIS_HOST) or inside REDIS_URL (redis://:<password>@host:port)`);
  }
  if (!hasRedisSettings(env)) {
    if (options.fallback === 'none') {
      throw configError('no Redis configured: set REDIS_URL, or REDIS_HOST (with REDIS_PORT, REDIS_TLS, REDIS_CLUSTER and REDIS_AUTH_TOKEN or REDIS_AUTH_SECRET_ARN for ElastiCache)');
    }
    return { kind: 'url', url: DEFAULT_REDIS_URL, cluster: false, defaulted: true };
  }
  const url = env.REDIS_URL || undefined;
  const host = env.REDIS_HOST || undefined;
  if (url && host) throw configError('REDIS_URL and REDIS_HOST are both set: set one of them (REDIS_URL=redis[s]://[:password@]host:port, or REDIS_HOST with REDIS_PORT, REDIS_TLS and the AUTH token)');
  const cluster = flag(env, 'REDIS_CLUSTER', false);
  if (url) {
    const extra = given(ENDPOINT_ONLY);
    if (extra.length) {
      throw configError(`${list(extra)} ${extra.length === 1 ? 'is' : 'are'} set with REDIS_URL, which ${extra.length === 1 ? 'it does' : 'they do'} not apply to: put port, TLS (rediss://) and password in REDIS_URL, or use REDIS_HOST instead of REDIS_URL`);
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw configError('REDIS_URL is not a URL: expected redis://[:password@]host:port or rediss://… (for TLS)');
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw configError(`REDIS_URL must start with redis:// or rediss:// (it starts with ${parsed.protocol}//)`);
    if (!parsed.hostname) throw configError('REDIS_URL names no host: expected redis://[:password@]host:port');
    return { kind: 'url', url, cluster };
  }
  if (!host) {
    const orphans = given(REDIS_VARIABLES.filter((name) => name !== 'REDIS_URL' && name !== 'REDIS_HOST'));
    throw configError(`${list(orphans)} ${orphans.length === 1 ? 'is' : 'are'} set but neither REDIS_HOST nor REDIS_URL is: name the Redis too (or unset ${orphans.length === 1 ? 'it' : 'them'} to use the local default ${hostPort(DEFAULT_REDIS_URL)})`);
  }
  if (host.includes('://') || host.includes('@') || host.includes('/')) throw configError('REDIS_HOST must be a host name or IP address (a URL goes in REDIS_URL instead)');
  if (env.REDIS_AUTH_TOKEN && env.REDIS_AUTH_SECRET_ARN) throw configError('REDIS_AUTH_TOKEN and REDIS_AUTH_SECRET_ARN are both set: set one of them');
  const port = Number(env.REDIS_PORT || 6379);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw configError(`REDIS_PORT="${env.REDIS_PORT}" is not a port number (1-65535)`);
  return {
    kind: 'endpoint',
    host,
    port,
    tls: flag(env, 'REDIS_TLS', false),
    cluster,
    authSecretArn: env.REDIS_AUTH_SECRET_ARN || undefined,
    authToken: env.REDIS_AUTH_TOKEN || undefined,
  };
}

function isSet(env: Env, name: string): boolean {
  const value = env[name];
  return value !== undefined && value !== '';
}

function list(names: readonly string[]): string {
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

export function flag(env: Env, name: string, fallback: boolean): boolean {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw configError(`${name}="${value}" must be "true" or "false"`);
}

function configError(message: string): SwitchyardError {
  return new SwitchyardError(ErrorCodes.CONFIG, message);
}

function hostPort(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || 6379}`;
}

/** `host:port` of a target, for messages: never its password. */
export function redisAddress(target: RedisTarget): string {
  return target.kind === 'url' ? hostPort(target.url) : `${target.host}:${target.port}`;
}

/** `host:port` with the mode, for messages and logs: `cache.example.com:6379 (cluster mode, TLS)`. Never a password. */
export function describeRedisTarget(target: RedisTarget): string {
  const tls = target.kind === 'url' ? target.url.startsWith('rediss:') : target.tls;
  const modes = [...(target.cluster ? ['cluster mode'] : []), ...(tls ? ['TLS'] : [])];
  return `${redisAddress(target)}${modes.length ? ` (${modes.join(', ')})` : ''}`;
}

/**
 * ioredis `reconnectOnError`: after an ElastiCache (or Sentinel-less replica) failover the old primary
 * becomes a replica and answers writes with READONLY while the client still holds its connection. 2 =
 * reconnect (DNS now names the new primary) and send the failed command again; a READONLY write changed
 * nothing, so sending it again is safe. Scripts that hit it report `-READONLY` inside an ERR message.
 */
export function reconnectOnReadonly(err: Error): false | 2 {
  return /(^|[\s-])READONLY\b/.test(err?.message ?? '') ? 2 : false;
}

/** What fetches a secret's string; injectable so the connection logic is testable without AWS. */
export type SecretReader = (secretArn: string) => Promise<string>;

/** Reads a secret with the AWS SDK, loaded only when a secret is actually needed. */
export const readSecretFromSecretsManager: SecretReader = async (secretArn) => {
  const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const client = new SecretsManagerClient({});
  try {
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: secretArn }));
    if (!SecretString) throw configError(`secret ${secretArn} has no string value`);
    return SecretString;
  } finally {
    client.destroy();
  }
};

/**
 * The target with its AUTH token in hand: a REDIS_AUTH_SECRET_ARN is read once here, so a process that
 * probes and then connects (or opens several clients) reads the secret once.
 */
export async function withAuthToken(target: RedisTarget, readSecret: SecretReader = readSecretFromSecretsManager): Promise<RedisTarget> {
  if (target.kind !== 'endpoint' || target.authToken !== undefined || target.authSecretArn === undefined) return target;
  const authToken = (await readSecret(target.authSecretArn)).trim();
  return { ...target, authToken };
}

/**
 * How a connection behaves when Redis is slow or away:
 * - `worker`: never gives up a command (BullMQ's blocking commands must survive reconnects);
 * - `api`: fails a request within seconds instead of hanging (Lambda functions, the local API);
 * - `cli`: a command line tool that waits like a worker (`run --wait`, `events --follow` block) after
 *   `probeRedis` has made sure Redis answers at all.
 */
export type ConnectionRole = 'worker' | 'api' | 'cli';

export interface ConnectOptions {
  role: ConnectionRole;
  readSecret?: SecretReader;
  /** Told once per 10 s about connection errors (messages name host and port, never the password). */
  onError?: (message: string) => void;
}

const ROLE_OPTIONS: Record<ConnectionRole, RedisOptions> = {
  worker: { maxRetriesPerRequest: null },
  api: { maxRetriesPerRequest: 2, connectTimeout: 5_000 },
  cli: { maxRetriesPerRequest: null, connectTimeout: 5_000 },
};

/**
 * Connects to the configured Redis: standalone or cluster mode, with the AUTH token from the environment
 * or read once from Secrets Manager. The token stays inside the client's options: never logged.
 */
export async function connectRedis(target: RedisTarget, options: ConnectOptions): Promise<RedisClient> {
  const resolved = await withAuthToken(target, options.readSecret);
  const client = createClient(resolved, ROLE_OPTIONS[options.role], {});
  let lastLogged = 0;
  client.on('error', (err: Error) => {
    if (Date.now() - lastLogged < 10_000) return;
    lastLogged = Date.now();
    options.onError?.(err.message);
  });
  return client;
}

/**
 * Checks that Redis answers (connect, AUTH, PING; the cluster's slots in cluster mode) with a client that
 * gives up at once, so an unreachable or misconfigured Redis is one clear line instead of a client that
 * reconnects forever.
 * @throws {SwitchyardError} CONFIG `cannot reach Redis at host:port (reason)`; never the password.
 */
export async function probeRedis(target: RedisTarget, options: { readSecret?: SecretReader; timeoutMs?: number } = {}): Promise<void> {
  const resolved = await withAuthToken(target, options.readSecret);
  try {
    // A cluster client hides why its seed node failed ("None of startup nodes is available"): the seed
    // node alone first (connect, AUTH, PING work on a cluster node too), for ECONNREFUSED or WRONGPASS.
    if (resolved.cluster) await ping({ ...resolved, cluster: false }, options.timeoutMs);
    await ping(resolved, options.timeoutMs);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0];
    const hint = target.kind === 'url' && target.defaulted ? '; start one, or set REDIS_URL or REDIS_HOST (switchyard dev starts a private one)' : '';
    throw configError(`cannot reach Redis at ${redisAddress(target)} (${howTargetWasChosen(target)}): ${reason}${hint}`);
  }
}

/** Connects, authenticates and PINGs with a client that gives up at once; rejects with the first cause. */
async function ping(target: RedisTarget, timeoutMs = 3_000): Promise<void> {
  const probeOptions: RedisOptions = { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null };
  const probe = createClient(target, probeOptions, { lazyConnect: true, clusterRetryStrategy: () => null, enableOfflineQueue: false });
  let cause: Error | undefined;
  probe.on('error', (err: Error & { lastNodeError?: Error }) => (cause ??= err.lastNodeError ?? err));
  probe.on('node error', (err: Error) => (cause ??= err));
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs + 500);
    });
    await Promise.race([
      (async () => {
        await probe.connect();
        await probe.ping();
      })(),
      timeout,
    ]);
  } catch (err) {
    throw cause ?? err;
  } finally {
    clearTimeout(timer);
    probe.disconnect();
  }
}

/** Where the target came from and how it is spoken to, for the unreachable message. */
function howTargetWasChosen(target: RedisTarget): string {
  if (target.kind === 'url' && target.defaulted) return 'the default: no REDIS_* variable is set';
  const tls = target.kind === 'url' ? target.url.startsWith('rediss:') : target.tls;
  return [target.kind === 'url' ? 'REDIS_URL' : 'REDIS_HOST', ...(target.cluster ? ['cluster mode'] : []), ...(tls ? ['TLS'] : [])].join(', ');
}

function createClient(target: RedisTarget, common: RedisOptions, cluster: Partial<ClusterOptions>): RedisClient {
  if (target.kind === 'url') {
    if (!target.cluster) return new Redis(target.url, { ...common, reconnectOnError: reconnectOnReadonly });
    const url = new URL(target.url);
    return new Cluster([{ host: url.hostname, port: Number(url.port || 6379) }], {
      ...cluster,
      redisOptions: {
        ...common,
        username: url.username ? decodeURIComponent(url.username) : undefined,
        password: url.password ? decodeURIComponent(url.password) : undefined,
        tls: url.protocol === 'rediss:' ? {} : undefined,
      },
    });
  }
  const redisOptions: RedisOptions = { ...common, password: target.authToken, tls: target.tls ? {} : undefined };
  if (!target.cluster) return new Redis({ ...redisOptions, host: target.host, port: target.port, reconnectOnError: reconnectOnReadonly });
  const clusterOptions: ClusterOptions = {
    ...cluster,
    redisOptions,
    // ElastiCache's TLS certificates name the configuration endpoint, not the nodes' IPs, so nodes are
    // reached by the hostnames the cluster reports.
    dnsLookup: (address, callback) => callback(null, address),
    slotsRefreshTimeout: 5_000,
  };
  return new Cluster([{ host: target.host, port: target.port }], clusterOptions);
}
