import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { findLlmLimit, type LlmLimits, type ResolvedLlmLimit } from '../llm/limits-config.js';
import { RateLimitedError, type Completion, type CompletionRequest, type LlmProvider } from '../llm/types.js';
import { silentLogger, type Logger } from '../logger.js';
import { LlmLimitStore, type AcquireReply } from '../store/llm-limits.js';
import type { RedisClient } from '../types/redis-client.js';

/** Options of {@link FleetLimits}. Only `redis` and `limits` are required. */
export interface FleetLimitsOptions {
  redis: RedisClient;
  /** The deployment's key prefix (SWITCHYARD_PREFIX). @default 'sy' */
  prefix?: string;
  /** The configured limits (SWITCHYARD_LLM_LIMITS, SWITCHYARD_LLM_LIMITS_FILE). */
  limits: LlmLimits;
  /**
   * How long a request's slot (and a waiter's place in line) lasts without renewal: a worker that dies
   * gives its slots back after this long. Renewed every third of it while the request runs. @default 60000
   */
  leaseMs?: number;
  /**
   * The head of the line is woken when a slot is released (pub/sub); it also asks again after this long
   * at the latest, in case a wake was missed. @default 1000
   */
  pollMs?: number;
  /** How many times one call waits out a provider's Retry-After before it fails (retryably). @default 10 */
  maxPauses?: number;
  /** The longest fleet-wide pause a Retry-After may set, in ms. @default 60000 */
  maxPauseMs?: number;
  logger?: Logger;
}

interface ResolvedFleetLimitsOptions {
  leaseMs: number;
  pollMs: number;
  maxPauses: number;
  maxPauseMs: number;
}

/** A call in line at this worker: woken early by {@link LimitState.line}'s front poke. */
interface Waiter {
  id: string;
  poke: () => void;
  /** A poke that came while the waiter was asking Redis, not sleeping: its next sleep ends at once. */
  poked: boolean;
}

/** What this worker holds of one limit. */
interface LimitState {
  limit: ResolvedLlmLimit;
  /** Request ids holding a slot, for lease renewal. */
  inFlight: Set<string>;
  /** This worker's calls in line, in the order they joined (the order of their tickets in Redis). */
  line: Waiter[];
}

/**
 * Fleet-wide LLM limits, held in Redis and shared by every worker: concurrency, requests and tokens per
 * minute, per provider and model, and a provider's Retry-After pausing the whole fleet. {@link wrap} puts a
 * provider behind its limit (node kinds are unaware); a call waits in FIFO order per limit, woken by
 * pub/sub when a slot frees up. Each change is one script call: acquire, release (with the real token
 * count, or a pause), and one lease renewal per limit per tick for all of this worker's requests.
 */
export class FleetLimits {
  readonly store: LlmLimitStore;
  private readonly options: ResolvedFleetLimitsOptions;
  private readonly logger: Logger;
  private readonly states = new Map<string, LimitState>();
  /** Lease and waiter ids: `<random>:<seq>`, unique across the fleet. */
  private readonly idPrefix = randomBytes(6).toString('hex');
  private seq = 0;
  private subscriber: Redis | undefined;
  private subscribed: Promise<void> | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly registering: Promise<void>[] = [];

  constructor(private readonly config: FleetLimitsOptions) {
    this.store = new LlmLimitStore(config.redis, config.prefix ?? 'sy');
    this.logger = config.logger ?? silentLogger;
    this.options = {
      leaseMs: config.leaseMs ?? 60_000,
      pollMs: config.pollMs ?? 1_000,
      maxPauses: config.maxPauses ?? 10,
      maxPauseMs: config.maxPauseMs ?? 60_000,
    };
    for (const [name, value, min] of [
      ['leaseMs', this.options.leaseMs, 1000],
      ['pollMs', this.options.pollMs, 10],
      ['maxPauses', this.options.maxPauses, 0],
      ['maxPauseMs', this.options.maxPauseMs, 0],
    ] as const) {
      if (!Number.isInteger(value) || value < min) throw new SwitchyardError(ErrorCodes.CONFIG, `LLM limits: ${name} must be a whole number >= ${min} (got ${value})`);
    }
  }

  /**
   * The provider behind its limit (`<provider>:<model>`, else `<provider>`); the provider itself when no
   * limit names it. Completions carry `waitMs`, the time the call waited for the limit.
   */
  wrap(provider: LlmProvider): LlmProvider {
    const limit = findLlmLimit(this.config.limits, provider.name, provider.model);
    if (!limit) {
      this.logger.info('no fleet-wide LLM limit for this provider', { provider: provider.name, model: provider.model, limits: Object.keys(this.config.limits) });
      return provider;
    }
    const state = this.stateOf(limit);
    return {
      name: provider.name,
      model: provider.model,
      ...(provider.slots ? { slots: provider.slots } : {}),
      complete: (request) => this.complete(provider, state, request),
    };
  }

  /** Resolves once the limits in use are registered (for readers) and wake-ups are subscribed to. */
  async ready(): Promise<void> {
    await Promise.all([...this.registering, this.subscribed]);
  }

  /** Stops renewing and listening. Calls still running keep their slots until their leases lapse. */
  async close(): Promise<void> {
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
    await this.subscriber?.quit().catch(() => undefined);
    this.subscriber = undefined;
  }

  private stateOf(limit: ResolvedLlmLimit): LimitState {
    let state = this.states.get(limit.id);
    if (state) return state;
    state = { limit, inFlight: new Set(), line: [] };
    this.states.set(limit.id, state);
    const registered = this.store.register(limit).catch((err: unknown) => this.logger.warn('could not register the LLM limit', { limit: limit.id, error: String(err) }));
    this.registering.push(registered);
    this.listen();
    return state;
  }

  /** One subscription for every limit; the renewal tick for every lease and place in line held here. */
  private listen(): void {
    if (this.subscriber) return;
    // No ready check (an INFO is not allowed on a reconnecting subscriber); ioredis resubscribes itself.
    const subscriber = (this.config.redis as Redis).duplicate({ enableReadyCheck: false });
    subscriber.on('error', (err: Error) => this.logger.warn('LLM limit wake subscription error', { error: err.message }));
    subscriber.on('message', (_channel: string, limitId: string) => this.states.get(limitId)?.line[0]?.poke());
    this.subscriber = subscriber;
    this.subscribed = subscriber.subscribe(this.store.keys.llmLimitWake()).then(
      () => undefined,
      (err: unknown) => this.logger.warn('LLM limit wake subscription failed; polling instead', { error: String(err) }),
    );
    this.renewTimer = setInterval(() => void this.renew(), Math.floor(this.options.leaseMs / 3));
    this.renewTimer.unref();
  }

  private async renew(): Promise<void> {
    for (const state of this.states.values()) {
      const ids = [...state.inFlight, ...state.line.map((w) => w.id)];
      await this.store.renew(state.limit, ids, this.options.leaseMs).catch((err: unknown) => this.logger.warn('could not renew LLM limit leases', { limit: state.limit.id, error: String(err) }));
    }
  }

  private async complete(provider: LlmProvider, state: LimitState, request: CompletionRequest): Promise<Completion> {
    // Tokens are reserved from the prompt's length (about 4 characters a token), corrected after the call.
    const estimate = Math.ceil(request.prompt.length / 4);
    let waitMs = 0;
    for (let pauses = 0; ; pauses++) {
      const acquired = await this.acquire(state, estimate, request.signal);
      waitMs += acquired.waitMs;
      let completion: Completion;
      try {
        completion = await provider.complete({ ...request, handBackRetryAfter: true });
      } catch (err) {
        if (err instanceof RateLimitedError && pauses < this.options.maxPauses && !request.signal.aborted) {
          const pauseMs = Math.min(err.retryAfterMs, this.options.maxPauseMs);
          this.logger.warn('the provider asked to retry later: pausing its LLM limit for the whole fleet', { limit: state.limit.id, status: err.status, pauseMs });
          // The rejected request used no tokens; it still counts as a request in the window.
          await this.release(state, acquired.id, 0, pauseMs);
          continue;
        }
        await this.release(state, acquired.id, undefined, 0);
        throw err;
      }
      const { usage } = completion;
      await this.release(state, acquired.id, usage ? usage.promptTokens + usage.completionTokens : undefined, 0);
      return { ...completion, waitMs: Math.round(waitMs) };
    }
  }

  /** Takes a slot of the limit for a new request: at once, or after waiting in line. */
  private async acquire(state: LimitState, estimate: number, signal: AbortSignal): Promise<{ id: string; waitMs: number }> {
    if (signal.aborted) throw cancelledWaiting();
    const id = `${this.idPrefix}:${++this.seq}`;
    const { limit } = state;
    let reply = await this.store.acquire(limit, id, estimate, this.options.leaseMs);
    if (reply.kind === 'granted') {
      state.inFlight.add(id);
      return { id, waitMs: 0 };
    }
    const started = performance.now();
    const waiter: Waiter = { id, poked: false, poke: () => (waiter.poked = true) };
    state.line.push(waiter);
    try {
      while (reply.kind === 'wait') {
        await this.pause(waiter, delayFor(reply, this.options.pollMs), signal);
        reply = await this.store.acquire(limit, id, estimate, this.options.leaseMs);
      }
      state.inFlight.add(id);
      return { id, waitMs: performance.now() - started };
    } catch (err) {
      // Out of line at once, so those behind do not wait for this place to lapse.
      await this.store.release(limit, id, undefined, 0, this.options.leaseMs).catch(() => undefined);
      throw err;
    } finally {
      const index = state.line.indexOf(waiter);
      state.line.splice(index, 1);
      // The next here may fit as well (several slots freed at once): it asks now instead of at its poll.
      if (index === 0) state.line[0]?.poke();
    }
  }

  /** Waits `ms`, or less when poked; rejects when the call is aborted. */
  private pause(waiter: Waiter, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (waiter.poked) {
        // Woken while it was asking: the slot it was told of may be taken by now, but asking is cheap.
        waiter.poked = false;
        return signal.aborted ? reject(cancelledWaiting()) : resolve();
      }
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        waiter.poke = () => (waiter.poked = true);
      };
      const timer = setTimeout(() => (done(), resolve()), ms);
      const onAbort = () => (done(), reject(cancelledWaiting()));
      waiter.poke = () => (done(), resolve());
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async release(state: LimitState, id: string, tokensUsed: number | undefined, pauseMs: number): Promise<void> {
    state.inFlight.delete(id);
    try {
      await this.store.release(state.limit, id, tokensUsed, pauseMs, this.options.leaseMs);
    } catch (err) {
      // The lease lapses by itself; the call's answer is not lost over it.
      this.logger.warn('could not release an LLM limit slot (it lapses with its lease)', { limit: state.limit.id, error: String(err) });
    }
  }
}

/**
 * How long to wait before asking again: the head of the line waits for what holds it (a pause, the window)
 * or a wake; everyone waits no longer than the poll.
 */
function delayFor(reply: Extract<AcquireReply, { kind: 'wait' }>, pollMs: number): number {
  if (reply.position > 0) return pollMs;
  return Math.max(1, Math.min(reply.retryInMs + 1, pollMs));
}

function cancelledWaiting(): SwitchyardError {
  return new SwitchyardError(ErrorCodes.CANCELLED, 'cancelled while waiting for a fleet-wide LLM slot');
}
