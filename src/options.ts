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
  /**
   * Queue shards: the node queue is this many BullMQ queues, each under its own hash tag, so that on a
   * Redis Cluster the queue's work spreads over the cluster's shards as run state does. A run's jobs all
   * go to one shard, chosen from its run id when it starts. Set the same value on every client and
   * worker; raising it is safe at any time, lowering it needs the shards above the new count drained
   * first (workers consume shards 0 to count - 1). 1 keeps the single queue under `{<prefix>q}`.
   * @default 1
   */
  queueShards?: number;
}

export interface ResolvedOptions {
  redis: RedisClient;
  /** Whether Switchyard created the client (and so must close it). */
  ownsRedis: boolean;
  prefix: string;
  queueName: string;
  /** BullMQ prefix of queue shard 0 (`{<prefix>q}`): hash-tagged so every key of a shard lands in one cluster slot. */
  queuePrefix: string;
  /** BullMQ prefix of each queue shard, shard 0 first (see {@link queueShardPrefixes}). */
  queuePrefixes: string[];
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
  const queueShards = options.queueShards ?? 1;
  if (!Number.isInteger(queueShards) || queueShards < 1 || queueShards > MAX_QUEUE_SHARDS) {
    throw new SwitchyardError(ErrorCodes.CONFIG, `queueShards must be a whole number from 1 to ${MAX_QUEUE_SHARDS} (got ${queueShards})`);
  }
  const given = options.redis ?? 'redis://127.0.0.1:6379';
  const redis = typeof given === 'string' ? connect(given) : given;
  const queuePrefixes = queueShardPrefixes(prefix, queueShards);
  return { redis, ownsRedis: typeof given === 'string', prefix, queueName, queuePrefix: queuePrefixes[0]!, queuePrefixes, runTtlSeconds };
}

/** Queue shards a deployment may have. */
export const MAX_QUEUE_SHARDS = 256;

const SLOTS = 16384;

/**
 * The BullMQ prefix of each of `count` queue shards. Shard 0 is `{<prefix>q}`, the single queue's prefix,
 * so a deployment with one shard keeps its keys, and one that raises the count keeps its first shard.
 * Shard i's prefix depends only on the prefix and i (never on the count: raising the count adds shards
 * and moves none). Its hash tag `<prefix>q<i>` gets the shortest suffix `~<k>` that puts its slot where
 * the shards before it are not: for every count n up to 16, the first n shards should fall in distinct
 * n-ths of the slot space, which is how `redis-cli --cluster create` and ElastiCache lay out the slots of
 * n equal shards (for small counts first; no sequence spreads for every n at once). Taken greedily: shard
 * i's tag is chosen once shards 0 to i - 1 are fixed, among its first 2000 candidates, so every process
 * computes the same tags (a few ms, once).
 */
export function queueShardPrefixes(prefix: string, count: number): string[] {
  const tags = [`${prefix}q`];
  const slots = [keySlot(tags[0]!)];
  for (let i = 1; i < count; i++) {
    let best: { tag: string; slot: number; score: number } | undefined;
    for (let k = 0; k < CANDIDATES; k++) {
      const tag = k === 0 ? `${prefix}q${i}` : `${prefix}q${i}~${k}`;
      const slot = keySlot(tag);
      const score = spreadScore([...slots, slot]);
      if (!best || score > best.score) best = { tag, slot, score };
      if (score === 2 ** SPREAD_COUNTS - 1) break; // spread for every count: nothing better to find
    }
    tags.push(best!.tag);
    slots.push(best!.slot);
  }
  return tags.map((tag) => `{${tag}}`);
}

/** Counts n up to which the spread is scored; shard tags are searched among this many candidates each. */
const SPREAD_COUNTS = 12;
const CANDIDATES = 2000;

/**
 * How well the first slots spread: each count n (up to 12) whose first n slots (of those given) lie in
 * distinct n-ths adds 2^(12 - n), so a small count (the common case) outweighs every larger one.
 */
function spreadScore(slots: readonly number[]): number {
  let score = 0;
  for (let n = 1; n <= SPREAD_COUNTS; n++) {
    const first = slots.slice(0, n).map((slot) => Math.floor((slot * n) / SLOTS));
    if (new Set(first).size === first.length) score += 2 ** (SPREAD_COUNTS - n);
  }
  return score;
}

/** The queue shard of a new run: a hash of its run id, modulo the shard count. */
export function queueShardOf(runId: string, count: number): number {
  return count === 1 ? 0 : keySlot(runId) % count;
}

/** Redis Cluster's hash slot of a key or hash tag (CRC16/XMODEM of the tag, modulo 16384). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key, 'utf8')) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % SLOTS;
}

/**
 * A client as BullMQ needs it (no retry limit per request, so blocking commands survive reconnects), that
 * reconnects when a failed-over primary answers READONLY.
 */
export function connect(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false, reconnectOnError: reconnectOnReadonly });
}
