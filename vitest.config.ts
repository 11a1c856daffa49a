import { configDefaults, defineConfig } from 'vitest/config';

/** Tests that need Redis (directly, or through workers, clients, CLI processes or the API) say so in their name. */
const REDIS_TESTS = 'test/**/*.redis.test.ts';
/** Fault injection with processes and Redis servers of their own: only in `npm run test:chaos`. */
const CHAOS_TESTS = 'test/chaos/**/*.chaos.test.ts';
/** The fuzz tests run in both: a few hundred cases in `npm test`, thousands in `npm run test:chaos`. */
const FUZZ_TESTS = 'test/**/fuzz-*.redis.test.ts';

/**
 * `npm run test:chaos` sets SWITCHYARD_CHAOS=1: then only the "chaos" project exists (the fault scenarios
 * and the large fuzz runs), so `npm test` stays fast and the chaos run runs nothing else.
 */
const chaos = process.env.SWITCHYARD_CHAOS === '1';
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
    projects: chaos
      ? [
          // Each fault scenario starts its own redis-server(s) and workers; the fuzz files use the shared private Redis.
          // One file at a time: recovery seconds are what the scenarios measure, and a fuzz file beside them
          // on this 2-core box added up to ~1.5 s to a figure (the measurement's load, not the fault's).
          {
            extends: true,
            test: { name: 'chaos', include: [CHAOS_TESTS, FUZZ_TESTS], globalSetup: ['test/support/global-setup.ts'], testTimeout: 600_000, fileParallelism: false },
          },
        ]
      : [
          // Pure tests: no Redis is started (`npm run test:unit`).
          {
            extends: true,
            test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, REDIS_TESTS, CHAOS_TESTS] },
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
