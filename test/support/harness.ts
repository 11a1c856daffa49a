import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import {
  BlueprintRegistry,
  createNodeKinds,
  SwitchyardClient,
  SwitchyardWorker,
  type ClientOptions,
  type NodeKind,
  type NodeKindRegistry,
  type WorkerOptions,
} from '../../src/index.js';

/** A Redis client for the test run's private Redis (or REDIS_URL). */
export function testRedis(): Redis {
  return new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
}

/** Where a test's client or worker keeps its data. Tests always use the key prefix as the queue name too. */
export interface TestConnection {
  /** Key prefix, and queue name. */
  prefix: string;
  /**
   * An ioredis client (standalone or Cluster) or a URL.
   * @default the test Redis's URL: the client or worker opens its own connection and closes it on close()
   */
  redis?: ClientOptions['redis'];
}

export type TestClientOptions = Omit<ClientOptions, 'prefix' | 'queueName' | 'redis'> & TestConnection;

export type TestWorkerOptions = Omit<WorkerOptions, 'prefix' | 'queueName' | 'redis' | 'kinds' | 'blueprints'> &
  TestConnection & {
    blueprints: BlueprintRegistry;
    /** @default blueprints.kinds */
    kinds?: NodeKindRegistry;
  };

/** A client on the test's prefix and queue. The caller closes it (or use a scope, which does). */
export function createTestClient({ prefix, redis, ...options }: TestClientOptions): SwitchyardClient {
  return new SwitchyardClient({ ...options, redis: redis ?? inject('redisUrl'), prefix, queueName: prefix });
}

/** A worker on the test's prefix and queue, ready to take jobs. The caller closes it (or use a scope, which does). */
export async function startTestWorker({ prefix, redis, blueprints, kinds, ...options }: TestWorkerOptions): Promise<SwitchyardWorker> {
  const worker = new SwitchyardWorker({ ...options, redis: redis ?? inject('redisUrl'), prefix, queueName: prefix, kinds: kinds ?? blueprints.kinds, blueprints });
  try {
    await worker.ready();
  } catch (err) {
    await worker.close().catch(() => undefined);
    throw err;
  }
  return worker;
}

/**
 * A test's own key prefix (and queue) on the test Redis, and the clients and workers made on it: cleanup
 * in one place. `close()` closes the workers, then the clients, deletes the keys of every prefix used here
 * and quits `redis`. Closing a client or worker early yourself is fine.
 */
export interface TestScope {
  /** A connection of the scope's own, for looking at keys. */
  redis: Redis;
  prefix: string;
  /** A client on the scope's prefix, or on `prefix` when given (whose keys are then deleted too). */
  createClient(options: Omit<TestClientOptions, 'prefix'> & { prefix?: string }): SwitchyardClient;
  /** A worker on the scope's prefix, or on `prefix` when given (whose keys are then deleted too), ready to take jobs. */
  startWorker(options: Omit<TestWorkerOptions, 'prefix'> & { prefix?: string }): Promise<SwitchyardWorker>;
  close(): Promise<void>;
}

/** Opens a scope on `prefix`, or on a fresh one so that tests never see each other's data. */
export function openScope(options: { prefix?: string } = {}): TestScope {
  const prefix = options.prefix ?? `t${randomBytes(4).toString('hex')}`;
  const redis = testRedis();
  const prefixes = new Set([prefix]);
  const clients: SwitchyardClient[] = [];
  const workers: SwitchyardWorker[] = [];
  return {
    redis,
    prefix,
    createClient(clientOptions) {
      const client = createTestClient({ ...clientOptions, prefix: clientOptions.prefix ?? prefix });
      prefixes.add(clientOptions.prefix ?? prefix);
      // A test may close its client early; the scope's close() must then not close it a second time.
      const closeOnce = client.close.bind(client);
      let closing: Promise<void> | undefined;
      client.close = () => (closing ??= closeOnce());
      clients.push(client);
      return client;
    },
    async startWorker(workerOptions) {
      prefixes.add(workerOptions.prefix ?? prefix);
      const worker = await startTestWorker({ ...workerOptions, prefix: workerOptions.prefix ?? prefix });
      workers.push(worker);
      return worker;
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(clients.map((c) => c.close()));
      await deleteKeys(redis, [...prefixes].flatMap(prefixPatterns));
      await redis.quit();
    },
  };
}

export interface Harness extends TestScope {
  registry: BlueprintRegistry;
  kinds: NodeKindRegistry;
  client: SwitchyardClient;
  workers: SwitchyardWorker[];
}

/**
 * A scope with a client and `workers` workers (each with its own connections) on a fresh key prefix and
 * queue. `close()` stops everything and deletes the keys it made.
 */
export async function startHarness(options: {
  kinds?: NodeKind<any>[];
  /** Blueprint objects to register, or a registry to use as is. */
  blueprints?: object[] | BlueprintRegistry;
  /** @default 2 */
  workers?: number;
  /** Each worker's. @default 8 */
  concurrency?: number;
} = {}): Promise<Harness> {
  let registry: BlueprintRegistry;
  if (options.blueprints instanceof BlueprintRegistry) {
    registry = options.blueprints;
  } else {
    registry = new BlueprintRegistry(createNodeKinds().with(...(options.kinds ?? [])));
    for (const bp of options.blueprints ?? []) registry.add(bp);
  }
  const scope = openScope();
  const client = scope.createClient({ blueprints: registry });
  const workers = await Promise.all(
    Array.from({ length: options.workers ?? 2 }, (_, i) =>
      scope.startWorker({ blueprints: registry, concurrency: options.concurrency ?? 8, workerId: `w${i + 1}` }),
    ),
  );
  return { ...scope, registry, kinds: registry.kinds, client, workers };
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
