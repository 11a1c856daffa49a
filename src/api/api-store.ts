import { createHash } from 'node:crypto';
import type { StoreKeys } from '../store/keys.js';
import type { RedisClient } from '../store/redis-store.js';
import { readRunBlueprint, summarizeRunState, type RunSummary } from '../store/run-state.js';

export { summarizeRunState, type RunSummary } from '../store/run-state.js';

/**
 * tagRun: records which tenant a run belongs to, in the run's own slot, expiring with the run.
 *
 * KEYS: [1] the run's state hash (status, ttl, parent), [2] tenant key (`<prefix>:{<runId>}:tenant`)
 * ARGV: [1] tenant
 * Returns: {'ok', ttlSeconds} | {'missing'} (no such run) | {'other'} (the run belongs to another tenant)
 */
const TAG_RUN_LUA = `
local ttl = redis.call('HGET', KEYS[1], 'ttl')
if not ttl then return {'missing'} end
local current = redis.call('GET', KEYS[2])
if current and current ~= ARGV[1] then return {'other'} end
redis.call('SET', KEYS[2], ARGV[1])
local runPttl = redis.call('PTTL', KEYS[1])
if runPttl > 0 then redis.call('PEXPIRE', KEYS[2], runPttl) else redis.call('EXPIRE', KEYS[2], tonumber(ttl)) end
return {'ok', ttl}
`;

/**
 * runOwner: the tenant of a run, keeping the tenant key alive as long as the run. Run keys get their
 * expiry only when the run ends (ttl seconds later), so a running run's tag is re-armed to the full ttl
 * and an ended run's tag is stretched to the run's own remaining time.
 *
 * KEYS: [1] the run's state hash, [2] tenant key
 * ARGV: none
 * Returns: {tenant or nil, parent link JSON or nil, status} | {} (no such run)
 */
const RUN_OWNER_LUA = `
local run = redis.call('HMGET', KEYS[1], 'status', 'parent', 'ttl')
if not run[1] then return {} end
local tenant = redis.call('GET', KEYS[2])
if tenant then
  local runPttl = redis.call('PTTL', KEYS[1])
  if runPttl == -1 then
    redis.call('EXPIRE', KEYS[2], tonumber(run[3]) or 604800)
  elseif runPttl > redis.call('PTTL', KEYS[2]) then
    redis.call('PEXPIRE', KEYS[2], runPttl)
  end
end
return {tenant or false, run[2] or false, run[1]}
`;

/**
 * reserveIdempotencyKey: claims an idempotency key for a new run, or returns the claim already made.
 *
 * KEYS: [1] idempotency key
 * ARGV: [1] claim JSON {bodyHash, runId}, [2] provisional ttl seconds (until the run's own ttl is known)
 * Returns: {'new'} | {'exists', claim JSON}
 */
const RESERVE_IDEMPOTENCY_LUA = `
local claim = redis.call('GET', KEYS[1])
if claim then return {'exists', claim} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return {'new'}
`;

/**
 * countRequest: one request in a caller's rate-limit window; the window opens with its first request.
 *
 * KEYS: [1] rate-limit key
 * ARGV: [1] window length ms
 * Returns: {count in this window, ms until the window closes}
 */
const COUNT_REQUEST_LUA = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); left = tonumber(ARGV[1]) end
return {count, left}
`;

/**
 * indexRun: adds a run to its tenant's recent runs (a sorted set by start time), keeps the newest
 * `limit`, and keeps the index alive as long as its newest run can be.
 *
 * KEYS: [1] the tenant's run index
 * ARGV: [1] run id, [2] start time (epoch ms), [3] how many runs to keep, [4] index ttl seconds
 * Returns: the number of runs in the index
 */
const INDEX_RUN_LUA = `
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return redis.call('ZCARD', KEYS[1])
`;

/** Versioned names, so two deployed versions never run each other's scripts. */
const SCRIPTS = {
  syApi1TagRun: { keys: 2, lua: TAG_RUN_LUA },
  syApi1RunOwner: { keys: 2, lua: RUN_OWNER_LUA },
  syApi1ReserveIdempotency: { keys: 1, lua: RESERVE_IDEMPOTENCY_LUA },
  syApi1CountRequest: { keys: 1, lua: COUNT_REQUEST_LUA },
  syApi1IndexRun: { keys: 1, lua: INDEX_RUN_LUA },
} as const;
type ScriptName = keyof typeof SCRIPTS;
type Reply = Array<string | number | null>;

/** A claim held under an idempotency key. */
interface IdempotencyClaim {
  bodyHash: string;
  runId: string;
}

/** How many runs each tenant's index keeps (the newest). */
export const RUN_INDEX_LIMIT = 1000;
/**
 * The index outlives its newest run's start by the run ttl plus this: a run's keys expire ttl seconds
 * after it ends, not after it starts, and most runs end within a day.
 */
const RUN_INDEX_GRACE_SECONDS = 86_400;

/** Until a run exists and its ttl is known, a claim lives this long (a start that died leaves nothing behind). */
const PROVISIONAL_CLAIM_SECONDS = 3600;
/** Child runs (subflows) are owned by their root run's tenant; nesting deeper than this is not followed. */
const MAX_PARENT_DEPTH = 32;

/**
 * The API's own state beside the engine's: run ownership, idempotency claims and rate-limit windows.
 * Each operation is one script call (one round trip); tenant keys share their run's hash tag.
 */
export class ApiStore {
  readonly prefix: string;

  constructor(
    readonly redis: RedisClient,
    /** The engine's key names (the client's `store.keys`): the run's first key holds its status, ttl and parent. */
    private readonly keys: StoreKeys,
  ) {
    this.prefix = keys.prefix;
    for (const [name, { keys: numberOfKeys, lua }] of Object.entries(SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
    }
  }

  private call(script: ScriptName, ...args: Array<string | number>): Promise<Reply> {
    const fn = (this.redis as unknown as Record<ScriptName, (...a: Array<string | number>) => Promise<Reply>>)[script];
    return fn.apply(this.redis, args);
  }

  private runKey(runId: string): string {
    return this.keys.runKeys(runId).state;
  }

  tenantKey(runId: string): string {
    return `${this.prefix}:{${runId}}:tenant`;
  }

  /** The key of a run's event stream (what `EventFeed` reads). */
  eventsKey(runId: string): string {
    return this.keys.runKeys(runId).events;
  }

  /** The blueprint id and version (content hash) a run executes, from its state hash; null when it has none (or is gone). */
  runBlueprint(runId: string): Promise<{ blueprintId: string | null; version: string | null }> {
    return readRunBlueprint(this.redis, this.keys, runId);
  }

  /** Tags a run with its tenant; returns the run's ttl in seconds, or why it could not. */
  async tagRun(runId: string, tenant: string): Promise<{ outcome: 'ok'; ttlSeconds: number } | { outcome: 'missing' | 'other' }> {
    const reply = await this.call('syApi1TagRun', this.runKey(runId), this.tenantKey(runId), tenant);
    if (reply[0] === 'ok') return { outcome: 'ok', ttlSeconds: Number(reply[1]) };
    return { outcome: reply[0] === 'other' ? 'other' : 'missing' };
  }

  /** The tenant owning a run (a child run's is its root run's); undefined when there is no such run or no owner. */
  async ownerOf(runId: string): Promise<string | undefined> {
    let current = runId;
    for (let depth = 0; depth <= MAX_PARENT_DEPTH; depth++) {
      const reply = await this.call('syApi1RunOwner', this.runKey(current), this.tenantKey(current));
      if (reply.length === 0) return undefined;
      const [tenant, parent] = reply;
      if (typeof tenant === 'string') return tenant;
      const parentRunId = typeof parent === 'string' ? parseParentRunId(parent) : undefined;
      if (parentRunId === undefined) return undefined;
      current = parentRunId;
    }
    return undefined;
  }

  /**
   * Claims `idempotencyKey` for this tenant and body, proposing `runId`. A replay (same body) gets the run
   * of the first claim; another body under the same key is a conflict.
   */
  async reserveIdempotencyKey(
    tenant: string,
    idempotencyKey: string,
    bodyHash: string,
    runId: string,
  ): Promise<{ outcome: 'new' | 'replay'; runId: string } | { outcome: 'conflict' }> {
    const claim: IdempotencyClaim = { bodyHash, runId };
    const reply = await this.call('syApi1ReserveIdempotency', this.idempotencyKey(tenant, idempotencyKey), JSON.stringify(claim), PROVISIONAL_CLAIM_SECONDS);
    if (reply[0] === 'new') return { outcome: 'new', runId };
    const existing = parseClaim(String(reply[1]));
    if (!existing || existing.bodyHash !== bodyHash) return { outcome: 'conflict' };
    return { outcome: 'replay', runId: existing.runId };
  }

  /**
   * Once the run exists, its claim expires when the run would have started expiring (never after it),
   * so a replay never restarts a run that has already expired.
   */
  async settleIdempotencyKey(tenant: string, idempotencyKey: string, ttlSeconds: number): Promise<void> {
    await this.redis.expire(this.idempotencyKey(tenant, idempotencyKey), ttlSeconds);
  }

  /** Counts one request of `identity`; returns whether it is over `perMinute` and when the window reopens. */
  async countRequest(identity: string, perMinute: number): Promise<{ limited: boolean; retryAfterSeconds: number }> {
    const key = `${this.prefix}:ratelimit:${sha256(identity).slice(0, 32)}`;
    const [count, leftMs] = await this.call('syApi1CountRequest', key, 60_000);
    return { limited: Number(count) > perMinute, retryAfterSeconds: Math.max(1, Math.ceil(Number(leftMs) / 1000)) };
  }

  /** Adds a top-level run to its tenant's index of recent runs (a run added twice keeps its first time). */
  async indexRun(tenant: string, runId: string, startedAt: number, ttlSeconds: number): Promise<void> {
    await this.call('syApi1IndexRun', this.runIndexKey(tenant), runId, startedAt, RUN_INDEX_LIMIT, ttlSeconds + RUN_INDEX_GRACE_SECONDS);
  }

  /**
   * The tenant's recent runs, newest first, that pass `filter`, at most `limit`. Runs that expired are
   * skipped and dropped from the index. Reads the index in pages and each page's runs concurrently (one
   * command per run, so it works on a cluster too, where a run's keys live in the run's own slot).
   */
  async recentRuns(tenant: string, limit: number, filter: (run: RunSummary) => boolean = () => true): Promise<RunSummary[]> {
    const key = this.runIndexKey(tenant);
    const found: RunSummary[] = [];
    const page = Math.max(limit, 50);
    for (let start = 0; found.length < limit && start < RUN_INDEX_LIMIT; start += page) {
      const ids = await this.redis.zrevrange(key, start, start + page - 1);
      if (ids.length === 0) break;
      const states = await Promise.all(ids.map((id) => this.redis.hgetall(this.runKey(id))));
      const expired: string[] = [];
      states.forEach((state, i) => {
        const summary = summarizeRunState(ids[i]!, state);
        if (!summary) expired.push(ids[i]!);
        else if (found.length < limit && filter(summary)) found.push(summary);
      });
      if (expired.length > 0) {
        await this.redis.zrem(key, ...expired);
        start -= expired.length;
      }
      if (ids.length < page) break;
    }
    return found;
  }

  /** Tenants are hashed into the key name, so no tenant can carry a hash tag into it. */
  private runIndexKey(tenant: string): string {
    return `${this.prefix}:runindex:${sha256(tenant).slice(0, 32)}`;
  }

  /** Tenant and key are hashed together: neither can carry characters (or a hash tag) into the key name. */
  private idempotencyKey(tenant: string, idempotencyKey: string): string {
    return `${this.prefix}:idem:${sha256(`${tenant}\u0000${idempotencyKey}`)}`;
  }
}

/** Hex SHA-256 of a UTF-8 string. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function parseClaim(json: string): IdempotencyClaim | undefined {
  try {
    const value = JSON.parse(json) as Partial<IdempotencyClaim>;
    return typeof value.bodyHash === 'string' && typeof value.runId === 'string' ? { bodyHash: value.bodyHash, runId: value.runId } : undefined;
  } catch {
    return undefined;
  }
}

function parseParentRunId(json: string): string | undefined {
  try {
    const value = JSON.parse(json) as { runId?: unknown };
    return typeof value.runId === 'string' ? value.runId : undefined;
  } catch {
    return undefined;
  }
}
