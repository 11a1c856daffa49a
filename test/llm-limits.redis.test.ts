/**
 * Fleet-wide LLM limits: the limit scripts on their own (FIFO line, caps, token correction, pause), the
 * FleetLimits wrapper over two "workers" (FIFO across them, a crashed holder's lease lapsing, a provider's
 * Retry-After pausing every worker without using up an attempt), and the readers (GET /limits, switchyard
 * limits). The four-process fleet against a rate-limited server is in integration/llm-fleet-limits.
 */
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono/tiny';
import { createMiddleware } from 'hono/factory';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { ApiEnv } from '../src/api/env.js';
import type { ApiScope } from '../src/api/keys.js';
import { handleErrors } from '../src/api/middleware/errors.js';
import { limitsRoutes } from '../src/api/routes/limits.js';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { FleetLimits } from '../src/executor/llm-fleet-limit.js';
import { createLlmProvider, findLlmLimit, type ResolvedLlmLimit } from '../src/llm/index.js';
import type { Completion, LlmProvider } from '../src/llm/types.js';
import { silentLogger } from '../src/logger.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { LlmLimitStore } from '../src/store/llm-limits.js';
import { deleteKeys, openScope, prefixPatterns, testRedis } from './support/harness.js';
import { runCli } from './support/processes.js';
import { startRateLimitedServer } from './support/rate-limited-server.js';

const limitOf = (id: string, caps: Partial<Omit<ResolvedLlmLimit, 'id'>>): ResolvedLlmLimit => ({
  id,
  maxConcurrent: 0,
  requestsPerMinute: 0,
  tokensPerMinute: 0,
  windowMs: 60_000,
  ...caps,
});

describe('the limit scripts', () => {
  const redis = testRedis();
  const prefix = `ll${randomBytes(4).toString('hex')}`;
  const store = new LlmLimitStore(redis, prefix);
  afterAll(async () => {
    await deleteKeys(redis, prefixPatterns(prefix));
    await redis.quit();
  });

  it('serve the line in FIFO order: a newcomer queues behind the head even when a slot is free', async () => {
    const limit = limitOf('openai:fifo', { maxConcurrent: 1 });
    expect(await store.acquire(limit, 'a', 10, 60_000)).toEqual({ kind: 'granted' });
    expect(await store.acquire(limit, 'b', 10, 60_000)).toMatchObject({ kind: 'wait', reason: 'concurrency', position: 0 });
    expect(await store.acquire(limit, 'c', 10, 60_000)).toMatchObject({ kind: 'wait', reason: 'queue', position: 1 });
    expect(await store.release(limit, 'a', 12, 0, 60_000)).toBe(true);
    // The slot is free, but b is ahead of c.
    expect(await store.acquire(limit, 'c', 10, 60_000)).toMatchObject({ kind: 'wait', reason: 'queue', position: 1 });
    expect(await store.acquire(limit, 'b', 10, 60_000)).toEqual({ kind: 'granted' });
    expect(await store.acquire(limit, 'c', 10, 60_000)).toMatchObject({ kind: 'wait', reason: 'concurrency', position: 0 });
    expect(await store.use(limit)).toMatchObject({ inFlight: 1, requests: 2, tokens: 22, waiting: 1, pausedUntil: undefined });
    // A waiter that gives up leaves the line; a lease released twice is released once.
    expect(await store.release(limit, 'c', undefined, 0, 60_000)).toBe(true);
    expect(await store.release(limit, 'b', undefined, 0, 60_000)).toBe(true);
    expect(await store.release(limit, 'b', undefined, 0, 60_000)).toBe(false);
    expect(await store.use(limit)).toMatchObject({ inFlight: 0, requests: 2, waiting: 0 });
  });

  it('count requests per window, reserve a token estimate and correct it to the real use', async () => {
    const limit = limitOf('openai:tokens', { requestsPerMinute: 3, tokensPerMinute: 100 });
    expect(await store.acquire(limit, 't1', 30, 60_000)).toEqual({ kind: 'granted' });
    await store.release(limit, 't1', 80, 0, 60_000); // the provider reported more than the estimate
    expect((await store.use(limit)).tokens).toBe(80);
    const tokens = await store.acquire(limit, 't2', 30, 60_000);
    expect(tokens).toMatchObject({ kind: 'wait', reason: 'tokens', position: 0 });
    // It waits for the window to move on: about a minute (plus the 1 s margin) after t1 started.
    expect(tokens.kind === 'wait' && tokens.retryInMs).toBeGreaterThan(55_000);
    await store.release(limit, 't2', undefined, 0, 60_000);

    const requests = limitOf('openai:requests', { requestsPerMinute: 2 });
    for (const id of ['r1', 'r2']) {
      expect(await store.acquire(requests, id, 1, 60_000)).toEqual({ kind: 'granted' });
      await store.release(requests, id, 1, 0, 60_000);
    }
    expect(await store.acquire(requests, 'r3', 1, 60_000)).toMatchObject({ kind: 'wait', reason: 'requests' });
    expect(await store.use(requests)).toMatchObject({ inFlight: 0, requests: 2, waiting: 1 });
  });

  it('a Retry-After pauses the limit: nobody is let go until it ends', async () => {
    const limit = limitOf('openai:pause', { maxConcurrent: 10 });
    expect(await store.acquire(limit, 'p1', 1, 60_000)).toEqual({ kind: 'granted' });
    await store.release(limit, 'p1', 0, 30_000, 60_000);
    const paused = await store.acquire(limit, 'p2', 1, 60_000);
    expect(paused).toMatchObject({ kind: 'wait', reason: 'paused', position: 0 });
    expect(paused.kind === 'wait' && paused.retryInMs).toBeGreaterThan(25_000);
    const use = await store.use(limit);
    expect(use.pausedUntil).toBeGreaterThan(Date.now() + 25_000);
    // A shorter pause never shortens a longer one.
    await store.release(limit, 'p2', undefined, 10, 60_000);
    expect((await store.use(limit)).pausedUntil).toBeGreaterThan(Date.now() + 25_000);
  });
});

/** A provider whose calls wait at a gate the test opens; says which call entered, in order. */
function gatedProvider() {
  const entered: string[] = [];
  const gates: Array<() => void> = [];
  const arrivals: Array<() => void> = [];
  const provider: LlmProvider = {
    name: 'openai',
    model: 'gated',
    async complete(request): Promise<Completion> {
      entered.push(request.prompt);
      arrivals.splice(0).forEach((arrived) => arrived());
      await new Promise<void>((resolve) => gates.push(resolve));
      return { text: 'ok', model: 'gated', usage: { promptTokens: 3, completionTokens: 2 } };
    },
  };
  return {
    provider,
    entered,
    /** Resolves once `count` calls have entered. */
    async enteredCount(count: number) {
      while (entered.length < count) await new Promise<void>((resolve) => arrivals.push(resolve));
    },
    openOne: () => gates.shift()?.(),
  };
}

describe('FleetLimits over two workers', () => {
  const prefix = `lf${randomBytes(4).toString('hex')}`;
  const connections = [testRedis(), testRedis(), testRedis()];
  const fleets: FleetLimits[] = [];
  const fleet = (limits: Record<string, object>, options: { leaseMs?: number; pollMs?: number } = {}, redis = connections[fleets.length % 2]!) => {
    const f = new FleetLimits({ redis, prefix, limits, logger: silentLogger, ...options });
    fleets.push(f);
    return f;
  };
  afterAll(async () => {
    await Promise.all(fleets.map((f) => f.close()));
    await deleteKeys(connections[2]!, prefixPatterns(prefix));
    await Promise.all(connections.map((c) => c.quit()));
  });

  it('lets calls of both workers through one at a time, in the order they asked', async () => {
    const limits = { 'openai:gated': { maxConcurrent: 1 } };
    const gated = gatedProvider();
    const [a, b] = [fleet(limits).wrap(gated.provider), fleet(limits).wrap(gated.provider)];
    const readers = [new LlmLimitStore(connections[0]!, prefix), new LlmLimitStore(connections[1]!, prefix)];
    const limit = findLlmLimit(limits, 'openai', 'gated')!;
    const calls: Array<Promise<Completion>> = [];
    for (let i = 1; i <= 6; i++) {
      const signal = new AbortController().signal;
      calls.push((i % 2 ? a : b).complete({ prompt: `call ${i}`, signal }));
      // A command after it on the same connection: its acquire has run, so the next call is behind it.
      await readers[(i + 1) % 2]!.use(limit);
    }
    for (let i = 1; i <= 6; i++) {
      await gated.enteredCount(i);
      gated.openOne();
    }
    const done = await Promise.all(calls);
    expect(gated.entered).toEqual(['call 1', 'call 2', 'call 3', 'call 4', 'call 5', 'call 6']);
    expect(done[0]!.waitMs).toBe(0);
    expect(done.slice(1).every((c) => c.waitMs! > 0)).toBe(true);
    // Tokens counted: the real usage (5 each), not the estimate.
    expect(await readers[0]!.use(limit)).toMatchObject({ inFlight: 0, requests: 6, tokens: 30, waiting: 0 });
  });

  it('gives a crashed worker\'s slot back once its lease lapses', async () => {
    const limits = { openai: { maxConcurrent: 1 } };
    const limit = findLlmLimit(limits, 'openai', 'any')!;
    // A worker took the only slot and died: nobody releases or renews it.
    expect(await new LlmLimitStore(connections[2]!, prefix).acquire(limit, 'crashed-worker:1', 1, 1000)).toEqual({ kind: 'granted' });
    const survivor = fleet(limits, { leaseMs: 1000, pollMs: 100 }).wrap({ name: 'openai', model: 'any', complete: async () => ({ text: 'ok', model: 'any' }) });
    const completion = await survivor.complete({ prompt: 'hello', signal: new AbortController().signal });
    expect(completion.text).toBe('ok');
    expect(completion.waitMs).toBeGreaterThan(0);
    console.log(`[llm-limits] a crashed holder's slot came back after ${completion.waitMs} ms (lease 1000 ms)`);
  });

  it('an aborted waiter leaves the line and the next one gets the slot', async () => {
    const limits = { 'openai:gated': { maxConcurrent: 1 } };
    const gated = gatedProvider();
    const p = fleet(limits).wrap(gated.provider);
    const first = p.complete({ prompt: 'first', signal: new AbortController().signal });
    await gated.enteredCount(gated.entered.length + 1);
    const abort = new AbortController();
    const doomed = p.complete({ prompt: 'doomed', signal: abort.signal });
    const third = p.complete({ prompt: 'third', signal: new AbortController().signal });
    abort.abort();
    await expect(doomed).rejects.toThrow('cancelled while waiting for a fleet-wide LLM slot');
    const before = gated.entered.length;
    gated.openOne();
    await first;
    await gated.enteredCount(before + 1);
    expect(gated.entered.at(-1)).toBe('third');
    gated.openOne();
    await third;
  });
});

describe('a provider\'s Retry-After', () => {
  const scope = openScope();
  const fleets: FleetLimits[] = [];
  afterAll(async () => {
    await scope.close();
    await Promise.all(fleets.map((f) => f.close()));
  });

  it('pauses every worker for that long; the node retries after it within the same attempt', async () => {
    const server = await startRateLimitedServer({ maxConcurrent: 10, perWindow: 1000, windowMs: 60_000, latencyMs: 30, throttle: { requests: [2], retryAfterMs: 600 } });
    try {
      const blueprint = { id: 'ask', nodes: [{ id: 'q', uses: 'llm-process', params: { promptTemplate: 'Question {{n}}', inputs: { n: 'n' } } }], edges: [] };
      const limits = { openai: { maxConcurrent: 1 } };
      const registries = [0, 1].map(() => {
        const redis = testRedis();
        const fleet = new FleetLimits({ redis, prefix: scope.prefix, limits, logger: silentLogger });
        fleets.push(fleet);
        const f = fleet.close.bind(fleet);
        fleet.close = async () => {
          await f();
          await redis.quit();
        };
        const llm = createLlmProvider({ provider: 'openai', model: 'limited', openai: { apiKey: 'sk-test', baseUrl: server.url }, limit: (p) => fleet.wrap(p) });
        const registry = new BlueprintRegistry(createNodeKinds({ llm }));
        registry.add(blueprint);
        return registry;
      });
      await Promise.all(registries.map((blueprints, i) => scope.startWorker({ blueprints, workerId: `w${i + 1}` })));
      await Promise.all(fleets.map((f) => f.ready()));
      const client = scope.createClient({ blueprints: registries[0]! });
      const runs = await Promise.all(Array.from({ length: 6 }, (_, n) => client.start('ask', { n })));
      const views = await Promise.all(runs.map((r) => r.result({ timeoutMs: 30_000 })));

      expect(views.map((v) => v.status)).toEqual(Array(6).fill('completed'));
      // Every node in one attempt, the throttled one included: the pause used up no retry.
      expect(views.map((v) => v.nodes.q!.attempts)).toEqual(Array(6).fill(1));
      // One request more than runs: the throttled one, sent again once (the provider did not retry on its own).
      expect(server.stats.rejected).toBe(1);
      expect(server.stats.arrivals).toHaveLength(7);
      // Nobody, on either worker, asked the server again before the Retry-After was over.
      const rejection = server.stats.rejections[0]!;
      const next = server.stats.arrivals.find((a) => a.at >= rejection.at && a.accepted)!;
      expect(next.at - rejection.at).toBeGreaterThanOrEqual(600 - 2);
      const waits = views.map((v) => v.nodes.q!.meta?.llmWaitMs as number);
      expect(waits.every((ms) => typeof ms === 'number')).toBe(true);
      console.log(`[llm-limits] Retry-After 600 ms: next request ${next.at - rejection.at} ms after the 429; nodes waited ${waits.join(', ')} ms`);
    } finally {
      await server.close();
    }
  });
});

describe('reading the limits: GET /limits and switchyard limits', () => {
  const scope = openScope();
  afterAll(() => scope.close());

  const as = (scopes: ApiScope[]) =>
    createMiddleware<ApiEnv>(async (c, next) => {
      c.set('principal', { tenant: 'ops', scopes, identity: 'test:ops' });
      await next();
    });

  it('show each registered limit with its use; GET /limits needs limits:read', async () => {
    const store = new LlmLimitStore(scope.redis, scope.prefix);
    const limit = limitOf('openai:gpt-4o-mini', { maxConcurrent: 5, requestsPerMinute: 60, tokensPerMinute: 200_000 });
    await store.register(limit);
    await store.register(limitOf('bedrock', { requestsPerMinute: 100 }));
    expect(await store.acquire(limit, 'x', 120, 60_000)).toEqual({ kind: 'granted' });

    const app = (scopes: ApiScope[]) => {
      const a = new Hono<ApiEnv>();
      a.route('/', limitsRoutes({ limits: store, guard: as(scopes) }));
      a.onError(handleErrors(silentLogger));
      return a;
    };
    const forbidden = await app(['runs:read', 'runs:write']).request('/limits');
    expect(forbidden.status).toBe(403);
    const ok = await app(['limits:read']).request('/limits');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({
      limits: [
        { id: 'bedrock', maxConcurrent: 0, requestsPerMinute: 100, tokensPerMinute: 0, windowMs: 60_000, inFlight: 0, requests: 0, tokens: 0, pausedUntil: null, waiting: 0 },
        { id: 'openai:gpt-4o-mini', maxConcurrent: 5, requestsPerMinute: 60, tokensPerMinute: 200_000, windowMs: 60_000, inFlight: 1, requests: 1, tokens: 120, pausedUntil: null, waiting: 0 },
      ],
    });

    const env = { REDIS_URL: inject('redisUrl'), SWITCHYARD_PREFIX: scope.prefix };
    const text = await runCli(['limits'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/limit\s+in flight\s+requests\/minute\s+tokens\/minute\s+paused\s+waiting/);
    expect(text.stdout).toMatch(/openai:gpt-4o-mini\s+1\/5\s+1\/60\s+120\/200,000\s+-\s+0/);
    expect(text.stdout).toMatch(/bedrock\s+0\s+0\/100\s+0\s+-\s+0/);
    const json = await runCli(['limits', '--json'], env);
    expect(JSON.parse(json.stdout)).toEqual(await (await app(['limits:read']).request('/limits')).json());

    const none = await runCli(['limits'], { ...env, SWITCHYARD_PREFIX: `${scope.prefix}none` });
    expect(none.stdout).toMatch(/^no fleet-wide LLM limits/);
  });

  it('a worker refuses limits that are not valid, in one line, before it starts; limits --help has examples', async () => {
    const bad = await runCli(['worker', '--blueprints', 'workflows'], { REDIS_URL: inject('redisUrl'), SWITCHYARD_LLM_LIMITS: '{"openai":{"maxConcurrent":-1}}' });
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim()).toBe('switchyard worker: SWITCHYARD_LLM_LIMITS: openai.maxConcurrent: Too small: expected number to be >0');
    const help = await runCli(['limits', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^switchyard limits/);
    expect(help.stdout).toContain('Examples:');
  });
});
