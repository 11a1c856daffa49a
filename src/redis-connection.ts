import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ErrorCodes, SwitchyardError } from './errors.js';
import type { RedisClient } from './store/redis-store.js';

/**
 * Where a process finds Redis: a URL (local runs, tests), or an ElastiCache endpoint with TLS and an
 * AUTH token, standalone or cluster mode. Shared by the Lambda functions and the worker.
 */
export type RedisTarget =
  | { kind: 'url'; url: string; cluster: boolean }
  | { kind: 'endpoint'; host: string; port: number; tls: boolean; cluster: boolean; authSecretArn?: string; authToken?: string };

type Env = Record<string, string | undefined>;

/**
 * Reads REDIS_URL, or REDIS_HOST / REDIS_PORT / REDIS_TLS with the AUTH token from REDIS_AUTH_TOKEN (as
 * ECS injects a secret into a container) or REDIS_AUTH_SECRET_ARN (read from Secrets Manager), and
 * REDIS_CLUSTER. Without any of them: redis://127.0.0.1:6379.
 * @throws {SwitchyardError} CONFIG naming the variable that is wrong.
 */
export function redisTargetFromEnv(env: Env): RedisTarget {
  const cluster = flag(env, 'REDIS_CLUSTER', false);
  if (env.REDIS_URL) return { kind: 'url', url: env.REDIS_URL, cluster };
  if (!env.REDIS_HOST) return { kind: 'url', url: 'redis://127.0.0.1:6379', cluster };
  const port = Number(env.REDIS_PORT ?? 6379);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw configError(`REDIS_PORT="${env.REDIS_PORT}" is not a port number`);
  return {
    kind: 'endpoint',
    host: env.REDIS_HOST,
    port,
    tls: flag(env, 'REDIS_TLS', false),
    cluster,
    authSecretArn: env.REDIS_AUTH_SECRET_ARN || undefined,
    authToken: env.REDIS_AUTH_TOKEN || undefined,
  };
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

export interface ConnectOptions {
  /**
   * `worker` connections never give up a command (BullMQ's blocking commands must survive reconnects);
   * `api` connections fail a request within seconds when Redis is unreachable, instead of hanging.
   */
  role: 'worker' | 'api';
  readSecret?: SecretReader;
  /** Told once per 10 s about connection errors (messages name host and port, never the password). */
  onError?: (message: string) => void;
}

/**
 * Connects to the configured Redis: standalone or cluster mode, with the AUTH token from the environment
 * or read once from Secrets Manager. The token stays inside the client's options: never logged.
 */
export async function connectRedis(target: RedisTarget, options: ConnectOptions): Promise<RedisClient> {
  const common: RedisOptions =
    options.role === 'worker' ? { maxRetriesPerRequest: null } : { maxRetriesPerRequest: 2, connectTimeout: 5_000 };
  const client = await createClient(target, common, options.readSecret ?? readSecretFromSecretsManager);
  let lastLogged = 0;
  client.on('error', (err: Error) => {
    if (Date.now() - lastLogged < 10_000) return;
    lastLogged = Date.now();
    options.onError?.(err.message);
  });
  return client;
}

async function createClient(target: RedisTarget, common: RedisOptions, readSecret: SecretReader): Promise<RedisClient> {
  if (target.kind === 'url') {
    if (!target.cluster) return new Redis(target.url, common);
    const url = new URL(target.url);
    return new Cluster([{ host: url.hostname, port: Number(url.port || 6379) }], {
      redisOptions: {
        ...common,
        username: url.username ? decodeURIComponent(url.username) : undefined,
        password: url.password ? decodeURIComponent(url.password) : undefined,
        tls: url.protocol === 'rediss:' ? {} : undefined,
      },
    });
  }
  const password = target.authToken ?? (target.authSecretArn ? (await readSecret(target.authSecretArn)).trim() : undefined);
  const redisOptions: RedisOptions = { ...common, password, tls: target.tls ? {} : undefined };
  if (!target.cluster) return new Redis({ ...redisOptions, host: target.host, port: target.port });
  const clusterOptions: ClusterOptions = {
    redisOptions,
    // ElastiCache's TLS certificates name the configuration endpoint, not the nodes' IPs, so nodes are
    // reached by the hostnames the cluster reports.
    dnsLookup: (address, callback) => callback(null, address),
    slotsRefreshTimeout: 5_000,
  };
  return new Cluster([{ host: target.host, port: target.port }], clusterOptions);
}
