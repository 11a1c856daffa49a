import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startLocalRedisCluster, type LocalRedisCluster } from '../../src/local/redis-cluster.js';
import { RedisNotInstalledError } from '../../src/local/redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Set by this setup (the "cluster" project): `redisUrl` is one master of a Redis Cluster. */
    redisCluster?: boolean;
    /** Every master of that cluster, in slot order. */
    clusterUrls?: string[];
    /** The queue shards the tests' clients and workers use (the cluster's masters). */
    queueShards?: number;
  }
}

let cluster: LocalRedisCluster | undefined;

/**
 * Starts one private 3-master Redis Cluster for the whole "cluster" project (the same test files as on
 * one Redis, with their clients and workers on the cluster and 3 queue shards). Stopped by pid.
 */
export async function setup(project: TestProject): Promise<void> {
  try {
    cluster = await startLocalRedisCluster({ masters: 3 });
  } catch (err) {
    if (err instanceof RedisNotInstalledError) {
      console.error(`\n${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  project.provide('redisUrl', cluster.urls[0]!);
  project.provide('redisIsPrivate', true);
  project.provide('redisCluster', true);
  project.provide('clusterUrls', cluster.urls);
  project.provide('queueShards', 3);
}

export async function teardown(): Promise<void> {
  await cluster?.stop();
}
