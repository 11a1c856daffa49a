import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ErrorCodes, SwitchyardError } from '../src/errors.js';
import { DEFAULT_RUN_TTL_SECONDS } from '../src/options.js';
import type { RedisClient } from '../src/store/redis-store.js';

/** Where the functions find Redis: a URL (local, tests), or an ElastiCache endpoint and its AUTH token's secret. */
export type RedisTarget =
  | { kind: 'url'; url: string; cluster: boolean }
  | { kind: 'endpoint'; host: string; port: number; tls: boolean; cluster: boolean; authSecretArn?: string };

/** Everything the Lambda functions take from their environment, resolved and checked once. */
export interface FunctionConfig {
  redis: RedisTarget;
  prefix: string;
  queueName: string;
  runTtlSeconds: number;
  /** False only when SWITCHYARD_AUTH=off was set explicitly. */
  authEnabled: boolean;
  inlineBlueprints: boolean;
  /** The `Service` dimension of the backlog metric (the autoscaling policy reads the same value). */
  metricService: string;
}

type Env = Record<string, string | undefined>;

/**
 * Reads the functions' settings: REDIS_URL, or REDIS_HOST / REDIS_PORT / REDIS_TLS / REDIS_AUTH_SECRET_ARN
 * (ElastiCache); REDIS_CLUSTER, SWITCHYARD_PREFIX, SWITCHYARD_QUEUE, SWITCHYARD_RUN_TTL_SECONDS,
 * SWITCHYARD_AUTH, SWITCHYARD_INLINE_BLUEPRINTS, SWITCHYARD_METRIC_SERVICE.
 * @throws {SwitchyardError} CONFIG naming the variable that is wrong.
 */
export function resolveFunctionConfig(env: Env): FunctionConfig {
  const cluster = flag(env, 'REDIS_CLUSTER', false);
  let redis: RedisTarget;
  if (env.REDIS_URL) {
    redis = { kind: 'url', url: env.REDIS_URL, cluster };
  } else if (env.REDIS_HOST) {
    const port = Number(env.REDIS_PORT ?? 6379);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw configError(`REDIS_PORT="${env.REDIS_PORT}" is not a port number`);
    redis = { kind: 'endpoint', host: env.REDIS_HOST, port, tls: flag(env, 'REDIS_TLS', false), cluster, authSecretArn: env.REDIS_AUTH_SECRET_ARN || undefined };
  } else {
    throw configError('set REDIS_URL, or REDIS_HOST (with REDIS_PORT, REDIS_TLS and REDIS_AUTH_SECRET_ARN for ElastiCache)');
  }
  const runTtlSeconds = env.SWITCHYARD_RUN_TTL_SECONDS ? Number(env.SWITCHYARD_RUN_TTL_SECONDS) : DEFAULT_RUN_TTL_SECONDS;
  if (!Number.isInteger(runTtlSeconds) || runTtlSeconds < 1) {
    throw configError(`SWITCHYARD_RUN_TTL_SECONDS="${env.SWITCHYARD_RUN_TTL_SECONDS}" must be a whole number of seconds >= 1`);
  }
  const auth = env.SWITCHYARD_AUTH ?? 'on';
  if (auth !== 'on' && auth !== 'off') throw configError(`SWITCHYARD_AUTH="${auth}" must be "on" or "off"`);
  return {
    redis,
    prefix: env.SWITCHYARD_PREFIX || 'sy',
    queueName: env.SWITCHYARD_QUEUE || 'switchyard',
    runTtlSeconds,
    authEnabled: auth !== 'off',
    inlineBlueprints: flag(env, 'SWITCHYARD_INLINE_BLUEPRINTS', false),
    metricService: env.SWITCHYARD_METRIC_SERVICE || 'switchyard',
  };
}

function flag(env: Env, name: string, fallback: boolean): boolean {
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

/**
 * Reads a secret with the AWS SDK that the Lambda runtime provides (it is left out of the bundle, and
 * loaded only when a secret is actually needed, so local runs and REDIS_URL deployments never load it).
 */
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

// The functions never block on Redis (no BullMQ worker here), so a request may give up: with Redis
// unreachable an invocation fails within seconds instead of hanging until API Gateway's 30 s limit.
const COMMON: RedisOptions = { maxRetriesPerRequest: 2, connectTimeout: 5_000 };

/**
 * Connects to the configured Redis: standalone or cluster mode, with the AUTH token read once from
 * Secrets Manager. The token is kept only inside the client's options: never logged, never in env.
 */
export async function connectRedis(target: RedisTarget, readSecret: SecretReader = readSecretFromSecretsManager): Promise<RedisClient> {
  const client = await createClient(target, readSecret);
  // Without a listener ioredis prints every failed reconnect as an "Unhandled error event"; one line per
  // 10 s is enough to see an outage. ioredis' messages name host and port, never the password.
  let lastLogged = 0;
  client.on('error', (err: Error) => {
    if (Date.now() - lastLogged < 10_000) return;
    lastLogged = Date.now();
    console.error(JSON.stringify({ level: 'warn', msg: 'redis connection error', error: err.message }));
  });
  return client;
}

async function createClient(target: RedisTarget, readSecret: SecretReader): Promise<RedisClient> {
  if (target.kind === 'url') {
    if (!target.cluster) return new Redis(target.url, COMMON);
    const url = new URL(target.url);
    return new Cluster([{ host: url.hostname, port: Number(url.port || 6379) }], {
      redisOptions: {
        ...COMMON,
        username: url.username ? decodeURIComponent(url.username) : undefined,
        password: url.password ? decodeURIComponent(url.password) : undefined,
        tls: url.protocol === 'rediss:' ? {} : undefined,
      },
    });
  }
  const password = target.authSecretArn ? (await readSecret(target.authSecretArn)).trim() : undefined;
  const redisOptions: RedisOptions = { ...COMMON, password, tls: target.tls ? {} : undefined };
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
