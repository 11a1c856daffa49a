import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import type { RedisClient } from '../store/redis-store.js';

/**
 * What a key may do: start and cancel runs (`runs:write`), read runs and their events (`runs:read`), and,
 * for operators (admin scopes, never a default): store new blueprint versions (`blueprints:write`), read the
 * fleet-wide LLM limits' use (`limits:read`).
 */
export const API_SCOPES = ['runs:read', 'runs:write', 'blueprints:write', 'limits:read'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

/** A tenant's scopes: what `keys create` gives unless told otherwise (admin scopes only ever by name). */
export const DEFAULT_SCOPES: readonly ApiScope[] = ['runs:read', 'runs:write'];

/** Tenants become part of stored values and of idempotency and rate-limit keys, so they are kept plain. */
export const TENANT_PATTERN = /^[A-Za-z0-9_.-]{1,100}$/;

const KEY_PREFIX = 'sy_';
/** `sy_` + 32 random bytes as base64url (43 characters). */
const RAW_KEY_PATTERN = /^sy_[A-Za-z0-9_-]{43}$/;

const CreateKeySchema = z
  .object({
    tenant: z.string().regex(TENANT_PATTERN, 'must be 1-100 letters, digits, ".", "_" or "-"'),
    scopes: z.array(z.enum(API_SCOPES)).min(1, 'a key needs at least one scope'),
    name: z.string().trim().min(1, 'must not be empty').max(100),
  })
  .strict();

export type CreateKeyInput = z.input<typeof CreateKeySchema>;

/** A key as listed: everything but the key itself, which is never stored. */
export interface ApiKeyInfo {
  id: string;
  tenant: string;
  scopes: ApiScope[];
  name: string;
  /** Epoch ms. */
  createdAt: number;
}

/** Who a verified key speaks for. */
export interface ApiPrincipal {
  id: string;
  tenant: string;
  scopes: ApiScope[];
}

/**
 * API keys in Redis. Only the SHA-256 of a key is stored, as the hash `<prefix>:apikey:<sha256hex>`
 * {id, tenant, scopes, name, createdAt}; the hash `<prefix>:apikeys` maps each key id to that digest so keys
 * can be listed and revoked by id. Verifying is one lookup by digest: there is no stored secret to compare,
 * so no timing leak.
 */
export class ApiKeyStore {
  constructor(
    readonly redis: RedisClient,
    /** The same prefix as the client's (`client.store.keys.prefix`). @default 'sy' */
    readonly prefix = 'sy',
  ) {}

  /** Creates a key; the returned `key` is shown once and cannot be recovered. */
  async create(input: CreateKeyInput): Promise<{ id: string; key: string }> {
    const parsed = CreateKeySchema.safeParse(input);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'key'}: ${i.message}`).join('; ');
      throw new SwitchyardError(ErrorCodes.VALIDATION, `invalid API key: ${problems}`);
    }
    const { tenant, scopes, name } = parsed.data;
    const key = KEY_PREFIX + randomBytes(32).toString('base64url');
    const id = `key_${randomBytes(9).toString('base64url')}`;
    const digest = digestOf(key);
    // Index first: a crash in between leaves a listed id without a record (skipped by list, removable by
    // revoke), never a working key that cannot be listed or revoked. The two keys live in different slots.
    await this.redis.hset(this.indexKey(), id, digest);
    await this.redis.hset(this.recordKey(digest), {
      id,
      tenant,
      scopes: [...new Set(scopes)].join(','),
      name,
      createdAt: String(Date.now()),
    });
    return { id, key };
  }

  /** Every key, oldest first, without the key itself. */
  async list(): Promise<ApiKeyInfo[]> {
    const index = await this.redis.hgetall(this.indexKey());
    const records = await Promise.all(Object.values(index).map((digest) => this.redis.hgetall(this.recordKey(digest))));
    return records
      .map(toInfo)
      .filter((info): info is ApiKeyInfo => info !== undefined)
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  /** Revokes a key by id; false when there is no such key. Takes effect on the next request. */
  async revoke(id: string): Promise<boolean> {
    const digest = await this.redis.hget(this.indexKey(), id);
    if (digest === null) return false;
    await this.redis.del(this.recordKey(digest));
    await this.redis.hdel(this.indexKey(), id);
    return true;
  }

  /** The key's owner and scopes; undefined for an unknown, revoked or malformed key (which never reaches Redis). */
  async verify(rawKey: string): Promise<ApiPrincipal | undefined> {
    if (typeof rawKey !== 'string' || !RAW_KEY_PATTERN.test(rawKey)) return undefined;
    const info = toInfo(await this.redis.hgetall(this.recordKey(digestOf(rawKey))));
    return info && { id: info.id, tenant: info.tenant, scopes: info.scopes };
  }

  private indexKey(): string {
    return `${this.prefix}:apikeys`;
  }

  private recordKey(digest: string): string {
    return `${this.prefix}:apikey:${digest}`;
  }
}

function digestOf(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function toInfo(record: Record<string, string>): ApiKeyInfo | undefined {
  if (!record.id || !record.tenant) return undefined;
  const known = new Set<string>(API_SCOPES);
  return {
    id: record.id,
    tenant: record.tenant,
    scopes: (record.scopes ?? '').split(',').filter((s): s is ApiScope => known.has(s)),
    name: record.name ?? '',
    createdAt: Number(record.createdAt ?? 0),
  };
}
