import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keySlot, MAX_QUEUE_SHARDS, queueShardOf, queueShardPrefixes, resolveOptions } from '../src/options.js';
import type { RedisClient } from '../src/types/redis-client.js';

/** Which of n equal slot ranges (as redis-cli --cluster create and ElastiCache lay them out) a tag falls in. */
const rangeOf = (prefix: string, n: number) => Math.floor((keySlot(prefix) * n) / 16384);

describe('queue shards', () => {
  it('computes Redis Cluster hash slots (CRC16/XMODEM mod 16384, hash tags honoured)', () => {
    // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
    expect(keySlot('123456789')).toBe(12739);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('{syq}:switchyard:wait')).toBe(keySlot('syq'));
  });

  it('keeps shard 0 at the single queue\'s {<prefix>q}, and a shard\'s tag does not depend on the count', () => {
    expect(queueShardPrefixes('sy', 1)).toEqual(['{syq}']);
    const eight = queueShardPrefixes('sy', 8);
    for (let n = 1; n <= 8; n++) expect(queueShardPrefixes('sy', n)).toEqual(eight.slice(0, n));
    expect(new Set(eight).size).toBe(8);
    for (const prefix of eight) expect(prefix).toMatch(/^\{syq(\d+(~\d+)?)?\}$/);
  });

  it('puts 2 and 3 shards in 2 and 3 different equal slot ranges for any prefix', () => {
    for (let i = 0; i < 200; i++) {
      const prefix = `t${randomBytes(4).toString('hex')}`;
      const tags = queueShardPrefixes(prefix, 3);
      for (const n of [2, 3]) expect(new Set(tags.slice(0, n).map((tag) => rangeOf(tag, n))).size, `${prefix}: ${tags.join(' ')}`).toBe(n);
    }
  });

  it('chooses a new run\'s shard from its id, within the count; one shard is always shard 0', () => {
    const ids = Array.from({ length: 300 }, () => randomBytes(8).toString('hex'));
    expect(new Set(ids.map((id) => queueShardOf(id, 1)))).toEqual(new Set([0]));
    const shards = ids.map((id) => queueShardOf(id, 3));
    expect(new Set(shards)).toEqual(new Set([0, 1, 2]));
    expect(ids.map((id) => queueShardOf(id, 3))).toEqual(shards); // deterministic
  });

  it('resolves queueShards (default 1) and refuses counts it cannot use', () => {
    const redis = {} as RedisClient;
    expect(resolveOptions({ redis })).toMatchObject({ queuePrefix: '{syq}', queuePrefixes: ['{syq}'] });
    expect(resolveOptions({ redis, prefix: 'ab', queueShards: 3 }).queuePrefixes).toEqual(queueShardPrefixes('ab', 3));
    for (const bad of [0, -1, 1.5, MAX_QUEUE_SHARDS + 1, Number.NaN]) {
      expect(() => resolveOptions({ redis, queueShards: bad }), String(bad)).toThrow(/queueShards must be a whole number from 1 to 256/);
    }
  });
});
