import type { ResolvedLlmLimit } from '../llm/limits-config.js';
import type { RedisClient } from '../types/redis-client.js';
import { StoreKeys } from './keys.js';
import { LIMIT_LUA_SCRIPTS } from './lua/limits/scripts.generated.js';

/**
 * The limit scripts under the names they are registered by (versioned like the run scripts); the text
 * comes from src/store/lua/limits/*.lua.
 */
const SCRIPTS = {
  sy2LlmAcquire: LIMIT_LUA_SCRIPTS.acquire,
  sy2LlmRelease: LIMIT_LUA_SCRIPTS.release,
  sy2LlmRenew: LIMIT_LUA_SCRIPTS.renew,
  sy2LlmUse: LIMIT_LUA_SCRIPTS.use,
} as const;
type ScriptName = keyof typeof SCRIPTS;

/** Why a request waits for a limit. */
export const LimitWaitReasons = ['queue', 'paused', 'concurrency', 'requests', 'tokens'] as const;
export type LimitWaitReason = (typeof LimitWaitReasons)[number];

/** The answer of {@link LlmLimitStore.acquire}. */
export type AcquireReply =
  | { kind: 'granted' }
  /** In line: `retryInMs` is when the cap may give way by itself; `position` 0 is the head of the line. */
  | { kind: 'wait'; reason: LimitWaitReason; retryInMs: number; position: number };

/** A limit as the workers that use it configured it, and what it holds now. */
export interface LlmLimitUse {
  id: string;
  maxConcurrent: number;
  requestsPerMinute: number;
  tokensPerMinute: number;
  windowMs: number;
  /** Requests in flight now (leases not yet lapsed). */
  inFlight: number;
  /** Requests and tokens counted in the current window. */
  requests: number;
  tokens: number;
  /** Epoch ms until which a provider's Retry-After pauses the limit; undefined when it is not paused. */
  pausedUntil: number | undefined;
  /** Requests in line for a slot. */
  waiting: number;
}

/**
 * The fleet-wide LLM limits in Redis: each limit's state lives under its own hash tag and every change is
 * one script call (acquire, release, renew); the configured limits are listed in one hash for readers.
 */
export class LlmLimitStore {
  readonly keys: StoreKeys;

  constructor(
    readonly redis: RedisClient,
    prefix = 'sy',
  ) {
    this.keys = new StoreKeys(prefix);
    for (const [name, { numberOfKeys, lua }] of Object.entries(SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
    }
  }

  private call(script: ScriptName, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    const fn = (this.redis as unknown as Record<ScriptName, (...a: Array<string | number>) => Promise<unknown>>)[script];
    return fn.apply(this.redis, [...keys, ...args]);
  }

  /**
   * Takes a slot for request `id` (granted), or puts it in line and says why it waits. Calling again with
   * the same id keeps its place in line (and proves it is still alive).
   */
  async acquire(limit: ResolvedLlmLimit, id: string, estimatedTokens: number, leaseMs: number): Promise<AcquireReply> {
    const reply = (await this.call('sy2LlmAcquire', this.keys.llmLimitKeys(limit.id), [
      id,
      limit.maxConcurrent,
      limit.requestsPerMinute,
      limit.tokensPerMinute,
      effectiveWindowMs(limit.windowMs),
      Math.max(0, Math.ceil(estimatedTokens)),
      leaseMs,
      this.keys.llmLimitWake(),
      limit.id,
    ])) as [string, ...unknown[]];
    if (reply[0] === 'granted') return { kind: 'granted' };
    const [, reason, retryInMs, position] = reply as [string, LimitWaitReason, number, number];
    return { kind: 'wait', reason, retryInMs: Number(retryInMs), position: Number(position) };
  }

  /**
   * Ends request `id`'s lease (or its place in line), counts `tokensUsed` instead of its estimate (when
   * known), and with `pauseMs` pauses the limit for the whole fleet. Returns whether it still held anything.
   */
  async release(limit: ResolvedLlmLimit, id: string, tokensUsed: number | undefined, pauseMs: number, leaseMs: number): Promise<boolean> {
    const reply = (await this.call('sy2LlmRelease', this.keys.llmLimitKeys(limit.id), [
      id,
      tokensUsed === undefined ? -1 : Math.max(0, Math.round(tokensUsed)),
      Math.max(0, Math.ceil(pauseMs)),
      this.keys.llmLimitWake(),
      limit.id,
      effectiveWindowMs(limit.windowMs),
      effectiveWindowMs(limit.windowMs) + leaseMs,
    ])) as [number];
    return Number(reply[0]) === 1;
  }

  /** Extends the leases and places in line of `ids` (this worker's) by `leaseMs`. */
  async renew(limit: ResolvedLlmLimit, ids: readonly string[], leaseMs: number): Promise<number> {
    if (ids.length === 0) return 0;
    const reply = (await this.call('sy2LlmRenew', this.keys.llmLimitKeys(limit.id), [leaseMs, effectiveWindowMs(limit.windowMs) + leaseMs, ...ids])) as [number];
    return Number(reply[0]);
  }

  /** Records the limit as configured, so readers (GET /limits, switchyard limits) know it. */
  async register(limit: ResolvedLlmLimit): Promise<void> {
    const { id, maxConcurrent, requestsPerMinute, tokensPerMinute, windowMs } = limit;
    await this.redis.hset(this.keys.llmLimits(), id, JSON.stringify({ maxConcurrent, requestsPerMinute, tokensPerMinute, windowMs }));
  }

  /** Every registered limit with its use now, by id (one script call per limit). */
  async list(): Promise<LlmLimitUse[]> {
    const registered = await this.redis.hgetall(this.keys.llmLimits());
    const limits = Object.entries(registered)
      .map(([id, json]) => parseRegistered(id, json))
      .filter((l): l is ResolvedLlmLimit => l !== undefined)
      .sort((a, b) => a.id.localeCompare(b.id));
    return Promise.all(limits.map((limit) => this.use(limit)));
  }

  /** One limit's use now. */
  async use(limit: ResolvedLlmLimit): Promise<LlmLimitUse> {
    const [inFlight, requests, tokens, pausedForMs, waiting] = ((await this.call('sy2LlmUse', this.keys.llmLimitKeys(limit.id), [effectiveWindowMs(limit.windowMs)])) as number[]).map(Number) as [
      number,
      number,
      number,
      number,
      number,
    ];
    return { ...limit, inFlight, requests, tokens, pausedUntil: pausedForMs > 0 ? Date.now() + pausedForMs : undefined, waiting };
  }
}

/** A limit's use as GET /limits and `switchyard limits --json` show it (`pausedUntil` an ISO time, or null). */
export function limitUseJson(l: LlmLimitUse) {
  return {
    id: l.id,
    maxConcurrent: l.maxConcurrent,
    requestsPerMinute: l.requestsPerMinute,
    tokensPerMinute: l.tokensPerMinute,
    windowMs: l.windowMs,
    inFlight: l.inFlight,
    requests: l.requests,
    tokens: l.tokens,
    pausedUntil: l.pausedUntil === undefined ? null : new Date(l.pausedUntil).toISOString(),
    waiting: l.waiting,
  };
}

/**
 * The window requests and tokens are counted over: the configured one plus a sixtieth (1 s of a minute),
 * for the time a request takes to reach the provider, whose own window starts when it arrives there.
 */
export function effectiveWindowMs(windowMs: number): number {
  return windowMs + Math.ceil(windowMs / 60);
}

function parseRegistered(id: string, json: string): ResolvedLlmLimit | undefined {
  try {
    const value = JSON.parse(json) as Partial<ResolvedLlmLimit>;
    const num = (n: unknown) => (typeof n === 'number' && Number.isFinite(n) ? n : 0);
    return { id, maxConcurrent: num(value.maxConcurrent), requestsPerMinute: num(value.requestsPerMinute), tokensPerMinute: num(value.tokensPerMinute), windowMs: num(value.windowMs) || 60_000 };
  } catch {
    return undefined;
  }
}
