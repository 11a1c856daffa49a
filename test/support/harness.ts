import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { SwitchyardClient } from '../../src/client/client.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import type { NodeKind, NodeKindRegistry } from '../../src/nodes/types.js';
import { SwitchyardWorker } from '../../src/executor/worker.js';

/** A Redis client for the test run's private Redis (or REDIS_URL). */
export function testRedis(): Redis {
  return new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
}

export interface Harness {
  redis: Redis;
  prefix: string;
  registry: BlueprintRegistry;
  kinds: NodeKindRegistry;
  client: SwitchyardClient;
  workers: SwitchyardWorker[];
  close(): Promise<void>;
}

/**
 * A client and `workers` workers (each with its own connections) on a fresh key prefix and queue, so
 * tests never see each other's data. `close()` stops everything and deletes the keys it made.
 */
export async function startHarness(options: {
  kinds?: NodeKind<any>[];
  /** Blueprint objects to register, or a registry to use as is. */
  blueprints?: object[] | BlueprintRegistry;
  workers?: number;
  concurrency?: number;
} = {}): Promise<Harness> {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  let registry: BlueprintRegistry;
  if (options.blueprints instanceof BlueprintRegistry) {
    registry = options.blueprints;
  } else {
    registry = new BlueprintRegistry(createNodeKinds().with(...(options.kinds ?? [])));
    for (const bp of options.blueprints ?? []) registry.add(bp);
  }
  const kinds = registry.kinds;
  const redis = testRedis();
  const client = new SwitchyardClient({ redis: redis.duplicate(), prefix, queueName: prefix, blueprints: registry });
  const workers = Array.from(
    { length: options.workers ?? 2 },
    (_, i) => new SwitchyardWorker({ redis: redis.duplicate(), prefix, queueName: prefix, kinds, blueprints: registry, concurrency: options.concurrency ?? 8, workerId: `w${i + 1}` }),
  );
  await Promise.all(workers.map((w) => w.ready()));
  return {
    redis,
    prefix,
    registry,
    kinds,
    client,
    workers,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await client.close();
      await deleteKeys(redis, prefixPatterns(prefix));
      await redis.quit();
    },
  };
}

/** A prefix's own keys and its queue's. */
export function prefixPatterns(prefix: string): string[] {
  return [`${prefix}:*`, `{${prefix}q}:*`];
}

/** Deletes every key matching the patterns (SCAN + UNLINK): only ever a test's own prefix. */
export async function deleteKeys(redis: Redis, patterns: string[]): Promise<void> {
  for (const match of patterns) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  }
}
