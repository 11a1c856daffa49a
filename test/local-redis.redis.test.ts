import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { findRedisBinary, RedisNotInstalledError, startLocalRedis } from '../src/local/redis-server.js';

describe('private Redis for tests and local runs', () => {
  it('finds no binary on an empty PATH, and says in one line how to install one', () => {
    expect(findRedisBinary('')).toBeUndefined();
    const message = new RedisNotInstalledError().message;
    expect(message).not.toContain('\n');
    expect(message).toMatch(/apt-get install -y redis-server/);
    expect(message).toMatch(/REDIS_URL/);
  });

  it('starts on a free loopback port with noeviction, and stops (process gone, port closed)', async () => {
    const server = await startLocalRedis();
    const redis = new Redis(server.url, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    await redis.connect();
    expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    redis.disconnect();
    await server.stop();
    expect(() => process.kill(server.pid, 0)).toThrow();
  });
});
