import { Redis } from 'ioredis';
import { ErrorCodes, SwitchyardError } from './errors.js';
import { reconnectOnReadonly } from './redis-connection.js';
import type { RedisClient } from './types/redis-client.js';

/** Options shared by the client and the worker. All optional. */
export interface SwitchyardOptions {
  /** An ioredis client (standalone or Cluster), or a `redis://` / `rediss://` URL. @default 'redis://127.0.0.1:6379' */
  redis?: RedisClient | string;
  /** Prefix of Switchyard's own keys. @default 'sy' */
  prefix?: string;
  /** BullMQ queue that carries node jobs. @default 'switchyard' */
  queueName?: string;
  /** How long a finished run is kept, in seconds. @default 604800 (7 days) */
  runTtlSeconds?: number;
}

export interface ResolvedOptions {
  redis: RedisClient;
  /** Whether Switchyard created the client (and so must close it). */
  ownsRedis: boolean;
  prefix: string;
  queueName: string;
  /** BullMQ prefix: hash-tagged so every queue key lands in one cluster slot. */
  queuePrefix: string;
  runTtlSeconds: number;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export const DEFAULT_RUN_TTL_SECONDS = 7 * 24 * 3600;

/** Resolves and checks options once, so the rest of the code sees only valid, complete values. */
export function resolveOptions(options: SwitchyardOptions = {}): ResolvedOptions {
  const prefix = options.prefix ?? 'sy';
  const queueName = options.queueName ?? 'switchyard';
  for (const [name, value] of [['prefix', prefix], ['queueName', queueName]] as const) {
    if (!NAME.test(value)) throw new SwitchyardError(ErrorCodes.CONFIG, `${name} "${value}" must be 1-64 letters, digits, ".", "_" or "-"`);
  }
  const runTtlSeconds = options.runTtlSeconds ?? DEFAULT_RUN_TTL_SECONDS;
  if (!Number.isInteger(runTtlSeconds) || runTtlSeconds < 1) {
    throw new SwitchyardError(ErrorCodes.CONFIG, `runTtlSeconds must be a positive whole number of seconds (got ${runTtlSeconds})`);
  }
  const given = options.redis ?? 'redis://127.0.0.1:6379';
  const redis = typeof given === 'string' ? connect(given) : given;
  return { redis, ownsRedis: typeof given === 'string', prefix, queueName, queuePrefix: `{${prefix}q}`, runTtlSeconds };
}

/**
 * A client as BullMQ needs it (no retry limit per request, so blocking commands survive reconnects), that
 * reconnects when a failed-over primary answers READONLY.
 */
export function connect(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false, reconnectOnError: reconnectOnReadonly });
}
