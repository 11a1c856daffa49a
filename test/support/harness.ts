import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
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

/**
 * A Redis client for the test run's private Redis (or REDIS_URL). In the "cluster" project an ioredis
 * Cluster on the private Redis Cluster, typed as a Redis: its commands are the same (a test that reads raw
 * keys of several slots must go node by node, as {@link deleteKeys} does).
 */
export function testRedis(): Redis {
  if (inject('redisCluster')) return clusterClient() as unknown as Redis;
  return new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
}

/** A new ioredis Cluster on the "cluster" project's Redis Cluster. */
export function clusterClient(): Cluster {
  const url = new URL(inject('redisUrl'));
  return new Cluster([{ host: url.hostname, port: Number(url.port) }], { redisOptions: { maxRetriesPerRequest: null } });
}

/**
 * The connection a test client or worker gets when the test names none: the test Redis's URL (the client
 * or worker opens and closes its own), or in the "cluster" project a Cluster of its own, closed with it;
 * and the queue shards of the project (3 on the cluster, else the default).
 */
function defaultConnection(redis: ClientOptions['redis']): { redis: ClientOptions['redis']; close?: () => void; queueShards?: number } {
  const queueShards = inject('queueShards');
  if (redis !== undefined || !inject('redisCluster')) return { redis: redis ?? inject('redisUrl'), ...(queueShards ? { queueShards } : {}) };
  const cluster = clusterClient();
  return { redis: cluster, close: () => cluster.disconnect(), queueShards };
}

/** Makes `target.close()` also run `after` (closing a connection the harness opened for it). */
function closeAlso<T extends { close(): Promise<void> }>(target: T, after: (() => void) | undefined): T {
  if (!after) return target;
  const close = target.close.bind(target);
  target.close = async () => {
    try {
      await close();
    } finally {
      after();
    }
  };
  return target;
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
  const connection = defaultConnection(redis);
  const client = new SwitchyardClient({ queueShards: connection.queueShards, ...options, redis: connection.redis, prefix, queueName: prefix });
  return closeAlso(client, connection.close);
}

/** A worker on the test's prefix and queue, ready to take jobs. The caller closes it (or use a scope, which does). */
export async function startTestWorker({ prefix, redis, blueprints, kinds, ...options }: TestWorkerOptions): Promise<SwitchyardWorker> {
  const connection = defaultConnection(redis);
  const worker = closeAlso(
    new SwitchyardWorker({ queueShards: connection.queueShards, ...options, redis: connection.redis, prefix, queueName: prefix, kinds: kinds ?? blueprints.kinds, blueprints }),
    connection.close,
  );
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

/** A prefix's own keys and its queue's (every shard: `{<prefix>q}`, `{<prefix>q1~3}`, ...). */
export function prefixPatterns(prefix: string): string[] {
  return [`${prefix}:*`, `{${prefix}q}:*`, `{${prefix}q[0-9]*}:*`];
}

/**
 * Deletes every key matching the patterns (SCAN + UNLINK): only ever a test's own prefix. On a Redis
 * Cluster, on every master, one key per UNLINK (a node's keys lie in many slots).
 */
export async function deleteKeys(redis: Redis, patterns: string[]): Promise<void> {
  const cluster = redis instanceof Cluster ? (redis as Cluster) : undefined;
  for (const node of cluster ? cluster.nodes('master') : [redis]) {
    for (const match of patterns) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = next;
        if (!keys.length) continue;
        if (cluster) await Promise.all(keys.map((key) => node.unlink(key)));
        else await node.unlink(...keys);
      } while (cursor !== '0');
    }
  }
}
