import { ErrorCodes, SwitchyardError } from '../src/errors.js';
import { DEFAULT_RUN_TTL_SECONDS, MAX_QUEUE_SHARDS } from '../src/options.js';
import { connectRedis as connectShared, flag, redisTargetFromEnv, type RedisTarget, type SecretReader } from '../src/redis-connection.js';
import type { RedisClient } from '../src/store/redis-store.js';

export type { RedisTarget, SecretReader };

/** Everything the Lambda functions take from their environment, resolved and checked once. */
export interface FunctionConfig {
  redis: RedisTarget;
  prefix: string;
  queueName: string;
  /** SWITCHYARD_QUEUE_SHARDS: queue shards (the workers' count). @default 1 */
  queueShards: number;
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
 * (ElastiCache); REDIS_CLUSTER, SWITCHYARD_PREFIX, SWITCHYARD_QUEUE, SWITCHYARD_QUEUE_SHARDS, SWITCHYARD_RUN_TTL_SECONDS,
 * SWITCHYARD_AUTH, SWITCHYARD_INLINE_BLUEPRINTS, SWITCHYARD_METRIC_SERVICE.
 * @throws {SwitchyardError} CONFIG naming the variable that is wrong.
 */
export function resolveFunctionConfig(env: Env): FunctionConfig {
  // Unlike a local command, a function has no sensible default Redis.
  const redis = redisTargetFromEnv(env, { fallback: 'none' });
  const runTtlSeconds = env.SWITCHYARD_RUN_TTL_SECONDS ? Number(env.SWITCHYARD_RUN_TTL_SECONDS) : DEFAULT_RUN_TTL_SECONDS;
  if (!Number.isInteger(runTtlSeconds) || runTtlSeconds < 1) {
    throw configError(`SWITCHYARD_RUN_TTL_SECONDS="${env.SWITCHYARD_RUN_TTL_SECONDS}" must be a whole number of seconds >= 1`);
  }
  const queueShards = env.SWITCHYARD_QUEUE_SHARDS ? Number(env.SWITCHYARD_QUEUE_SHARDS) : 1;
  if (!Number.isInteger(queueShards) || queueShards < 1 || queueShards > MAX_QUEUE_SHARDS) {
    throw configError(`SWITCHYARD_QUEUE_SHARDS="${env.SWITCHYARD_QUEUE_SHARDS}" must be a whole number from 1 to ${MAX_QUEUE_SHARDS}`);
  }
  const auth = env.SWITCHYARD_AUTH ?? 'on';
  if (auth !== 'on' && auth !== 'off') throw configError(`SWITCHYARD_AUTH="${auth}" must be "on" or "off"`);
  return {
    redis,
    prefix: env.SWITCHYARD_PREFIX || 'sy',
    queueName: env.SWITCHYARD_QUEUE || 'switchyard',
    queueShards,
    runTtlSeconds,
    authEnabled: auth !== 'off',
    inlineBlueprints: flag(env, 'SWITCHYARD_INLINE_BLUEPRINTS', false),
    metricService: env.SWITCHYARD_METRIC_SERVICE || 'switchyard',
  };
}

function configError(message: string): SwitchyardError {
  return new SwitchyardError(ErrorCodes.CONFIG, message);
}

/** Connects as an API process: commands fail within seconds when Redis is unreachable, never hang. */
export function connectRedis(target: RedisTarget, readSecret?: SecretReader): Promise<RedisClient> {
  return connectShared(target, {
    role: 'api',
    ...(readSecret ? { readSecret } : {}),
    onError: (error) => console.error(JSON.stringify({ level: 'warn', msg: 'redis connection error', error })),
  });
}
