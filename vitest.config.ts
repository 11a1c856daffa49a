import { configDefaults, defineConfig } from 'vitest/config';

/** Tests that need Redis (directly, or through workers, clients, CLI processes or the API) say so in their name. */
const REDIS_TESTS = 'test/**/*.redis.test.ts';
/** Tests that need the 3-master Redis Cluster (only in the "cluster" project). */
const CLUSTER_TESTS = 'test/**/*.cluster.redis.test.ts';
/**
 * The suites that run on one Redis and again on the cluster with 3 queue shards (the harness connects
 * their clients and workers to the cluster): semantics (subflows and cancellation included), the
 * random-DAG property test, the four use cases and the seed's blueprints. (Priorities order the jobs
 * within one queue shard: their test, on one worker slot, runs on one Redis only.)
 */
const ON_CLUSTER_TOO = [
  'test/integration/semantics.redis.test.ts',
  'test/integration/property.redis.test.ts',
  'test/integration/agent.redis.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests share one private Redis; each test uses its own key prefix and queue.
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      // Pure tests: no Redis is started (`npm run test:unit`).
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, REDIS_TESTS] },
      },
      // The global setup starts one private Redis for these (or uses REDIS_URL).
      {
        extends: true,
        test: { name: 'redis', include: [REDIS_TESTS], exclude: [...configDefaults.exclude, CLUSTER_TESTS], globalSetup: ['test/support/global-setup.ts'] },
      },
      // A private 3-master Redis Cluster for these (`npm run test:cluster`; .ci/run runs it too).
      {
        extends: true,
        test: { name: 'cluster', include: [CLUSTER_TESTS, ...ON_CLUSTER_TOO], globalSetup: ['test/support/cluster-setup.ts'] },
      },
    ],
  },
});
