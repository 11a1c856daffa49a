import { configDefaults, defineConfig } from 'vitest/config';

/** Tests that need Redis (directly, or through workers, clients, CLI processes or the API) say so in their name. */
const REDIS_TESTS = 'test/**/*.redis.test.ts';

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
        test: { name: 'redis', include: [REDIS_TESTS], globalSetup: ['test/support/global-setup.ts'] },
      },
    ],
  },
});
