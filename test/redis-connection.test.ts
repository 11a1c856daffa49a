/**
 * src/redis-connection.ts: the one resolver of REDIS_* settings (worker, functions, every CLI command)
 * refuses to guess, and every standalone client reconnects on READONLY after a failover.
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, SwitchyardError } from '../src/errors.js';
import { connect } from '../src/options.js';
import { connectRedis, describeRedisTarget, reconnectOnReadonly, redisTargetFromEnv } from '../src/redis-connection.js';

function refusal(env: Record<string, string>, options?: { fallback: 'local' | 'none' }): string {
  try {
    redisTargetFromEnv(env, options);
  } catch (err) {
    expect(err).toBeInstanceOf(SwitchyardError);
    expect((err as SwitchyardError).code).toBe(ErrorCodes.CONFIG);
    const message = (err as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    return message;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe('redisTargetFromEnv', () => {
  it('defaults to 127.0.0.1:6379 only when no REDIS_* variable is set (empty values count as unset)', () => {
    expect(redisTargetFromEnv({})).toEqual({ kind: 'url', url: 'redis://127.0.0.1:6379', cluster: false, defaulted: true });
    expect(redisTargetFromEnv({ REDIS_URL: '', REDIS_HOST: '', PATH: '/bin' })).toMatchObject({ defaulted: true });
    expect(refusal({}, { fallback: 'none' })).toMatch(/no Redis configured: set REDIS_URL, or REDIS_HOST/);
  });

  it('reads a URL (with REDIS_CLUSTER), or an endpoint with port, TLS, cluster mode and the token or the secret', () => {
    expect(redisTargetFromEnv({ REDIS_URL: 'rediss://:pw@cache:6380', REDIS_CLUSTER: 'true' })).toEqual({ kind: 'url', url: 'rediss://:pw@cache:6380', cluster: true });
    expect(redisTargetFromEnv({ REDIS_HOST: 'cache.example.com', REDIS_PORT: '6380', REDIS_TLS: 'true', REDIS_CLUSTER: 'true', REDIS_AUTH_TOKEN: 't' })).toEqual({
      kind: 'endpoint',
      host: 'cache.example.com',
      port: 6380,
      tls: true,
      cluster: true,
      authToken: 't',
      authSecretArn: undefined,
    });
    expect(redisTargetFromEnv({ REDIS_HOST: 'h', REDIS_AUTH_SECRET_ARN: 'arn:s' })).toMatchObject({ port: 6379, tls: false, cluster: false, authSecretArn: 'arn:s' });
  });

  it('refuses settings without REDIS_HOST or REDIS_URL, naming them, instead of falling back to 127.0.0.1:6379', () => {
    expect(refusal({ REDIS_PORT: '6380' })).toBe('REDIS_PORT is set but neither REDIS_HOST nor REDIS_URL is: name the Redis too (or unset it to use the local default 127.0.0.1:6379)');
    expect(refusal({ REDIS_CLUSTER: 'true' })).toMatch(/^REDIS_CLUSTER is set but neither REDIS_HOST nor REDIS_URL is/);
    expect(refusal({ REDIS_TLS: 'true', REDIS_AUTH_TOKEN: 'sekrit' })).toMatch(/^REDIS_TLS and REDIS_AUTH_TOKEN are set but neither REDIS_HOST nor REDIS_URL is/);
    expect(refusal({ REDIS_AUTH_SECRET_ARN: 'arn:x' })).toMatch(/^REDIS_AUTH_SECRET_ARN is set/);
    // Kubernetes injects REDIS_PORT=tcp://… for a service called redis: refused, not misread.
    expect(refusal({ REDIS_PORT: 'tcp://10.0.0.11:6379' })).toMatch(/^REDIS_PORT is set but neither/);
  });

  it('refuses contradictory or unread settings, never printing a secret', () => {
    expect(refusal({ REDIS_URL: 'redis://a:6379', REDIS_HOST: 'b' })).toMatch(/^REDIS_URL and REDIS_HOST are both set/);
    const withUrl = refusal({ REDIS_URL: 'redis://:sekrit@a:6379', REDIS_PORT: '6380', REDIS_AUTH_TOKEN: 'tok3n' });
    expect(withUrl).toMatch(/^REDIS_PORT and REDIS_AUTH_TOKEN are set with REDIS_URL/);
    expect(withUrl).not.toMatch(/sekrit|tok3n/);
    expect(refusal({ REDIS_HOST: 'h', REDIS_AUTH_TOKEN: 'tok3n', REDIS_AUTH_SECRET_ARN: 'arn:x' })).toMatch(/^REDIS_AUTH_TOKEN and REDIS_AUTH_SECRET_ARN are both set/);
    expect(refusal({ REDIS_HOST: 'h', REDIS_PASSWORD: 'sekrit' })).toMatch(/^REDIS_PASSWORD is not read by Switchyard: give the password as REDIS_AUTH_TOKEN/);
    expect(refusal({ REDIS_HOST: 'redis://h:6379' })).toMatch(/^REDIS_HOST must be a host name/);
    expect(refusal({ REDIS_HOST: 'h', REDIS_PORT: '70000' })).toMatch(/^REDIS_PORT="70000" is not a port number/);
    expect(refusal({ REDIS_HOST: 'h', REDIS_TLS: 'yes' })).toMatch(/^REDIS_TLS="yes" must be "true" or "false"/);
    const badUrl = refusal({ REDIS_URL: 'http://:sekrit@h' });
    expect(badUrl).toMatch(/^REDIS_URL must start with redis:\/\/ or rediss:\/\//);
    expect(badUrl).not.toContain('sekrit');
    expect(refusal({ REDIS_URL: 'not a url :sekrit' })).not.toContain('sekrit');
  });

  it('describes a target by host:port and mode, never its password', () => {
    expect(describeRedisTarget(redisTargetFromEnv({ REDIS_URL: 'rediss://:sekrit@cache:6380' }))).toBe('cache:6380 (TLS)');
    expect(describeRedisTarget(redisTargetFromEnv({ REDIS_HOST: 'cfg.cache.amazonaws.com', REDIS_TLS: 'true', REDIS_CLUSTER: 'true', REDIS_AUTH_TOKEN: 'sekrit' }))).toBe(
      'cfg.cache.amazonaws.com:6379 (cluster mode, TLS)',
    );
  });
});

describe('reconnectOnReadonly', () => {
  it('reconnects and resends on READONLY (a failed-over primary), also inside a script error; nothing else', () => {
    expect(reconnectOnReadonly(new Error("READONLY You can't write against a read only replica."))).toBe(2);
    expect(reconnectOnReadonly(new Error("ERR Error running script (call to f_1): @user_script:1: @user_script: 1: -READONLY You can't write against a read only replica."))).toBe(2);
    expect(reconnectOnReadonly(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'))).toBe(false);
    expect(reconnectOnReadonly(new Error('ERR unknown command'))).toBe(false);
    expect(reconnectOnReadonly(new Error('NOTREADONLYISH'))).toBe(false);
  });

  it('is set on every standalone client: each role of connectRedis, and a URL given to the client or worker', async () => {
    const clients = [
      ...(await Promise.all(
        (['worker', 'api', 'cli'] as const).flatMap((role) => [
          connectRedis({ kind: 'url', url: 'redis://127.0.0.1:1', cluster: false }, { role }),
          connectRedis({ kind: 'endpoint', host: '127.0.0.1', port: 1, tls: false, cluster: false, authToken: 't' }, { role }),
        ]),
      )),
      connect('redis://127.0.0.1:1'),
    ] as Redis[];
    try {
      for (const client of clients) expect(client.options.reconnectOnError).toBe(reconnectOnReadonly);
    } finally {
      for (const client of clients) client.disconnect();
    }
  });
});
