import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { RedisNotInstalledError, startLocalRedis, type LocalRedis } from '../../src/local/redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    /** True when the tests started this Redis themselves (then they may FLUSHALL it). */
    redisIsPrivate: boolean;
  }
}

let server: LocalRedis | undefined;

/** Starts one private Redis for the whole test run, unless REDIS_URL is set. */
export async function setup(project: TestProject): Promise<void> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) {
    project.provide('redisUrl', fromEnv);
    project.provide('redisIsPrivate', false);
    return;
  }
  try {
    server = await startLocalRedis();
  } catch (err) {
    if (err instanceof RedisNotInstalledError) {
      // One clear line instead of a stack trace.
      console.error(`\n${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  project.provide('redisUrl', server.url);
  project.provide('redisIsPrivate', true);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
