import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SwitchyardError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import { TaskProtection, type TaskProtectionOptions } from '../src/executor/task-protection.js';

/** A fake ECS agent at the fetch boundary: records each request; answers as told (at once, or when released). */
function fakeAgent() {
  const requests: Array<{ url: string; method: string; contentType: string | null; body: unknown }> = [];
  let answer: () => Promise<Response> = async () => Response.json({ protection: { ProtectionEnabled: true, ExpirationDate: '2030-01-01T00:00:00Z', TaskArn: 'arn:aws:ecs:eu-west-1:1:task/c/t' } });
  const held: Array<() => void> = [];
  let holding = false;
  const fetch = (async (url: string | URL | Request, init?: RequestInit) => {
    requests.push({ url: String(url), method: init?.method ?? 'GET', contentType: new Headers(init?.headers).get('content-type'), body: JSON.parse(String(init?.body)) });
    if (holding) await new Promise<void>((resolve) => held.push(resolve));
    return answer();
  }) as typeof globalThis.fetch;
  return {
    fetch,
    requests,
    bodies: () => requests.map((r) => r.body),
    answerWith(fn: () => Promise<Response>) {
      answer = fn;
    },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const wake of held.splice(0)) wake();
    },
  };
}

function recordingLogger() {
  const lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return { logger, lines, warnings: () => lines.filter((l) => l.level === 'warn') };
}

const ON = { ProtectionEnabled: true, ExpiresInMinutes: 60 };
const OFF = { ProtectionEnabled: false };

describe('TaskProtection (ECS agent endpoint)', () => {
  let agent: ReturnType<typeof fakeAgent>;
  let log: ReturnType<typeof recordingLogger>;
  let protection: TaskProtection;
  const make = (options: Partial<TaskProtectionOptions> = {}) =>
    (protection = new TaskProtection({ agentUri: 'http://169.254.170.2/api/task-1/', fetch: agent.fetch, clearAfterIdleMs: 1000, ...options }, log.logger));

  beforeEach(() => {
    vi.useFakeTimers();
    agent = fakeAgent();
    log = recordingLogger();
  });
  afterEach(async () => {
    agent.release();
    await protection?.close();
    vi.useRealTimers();
  });

  it('sets protection when busy (PUT <agent>/task-protection/v1/state, JSON) and clears it once idle for a while', async () => {
    make();
    protection.busy();
    await vi.advanceTimersByTimeAsync(0);
    expect(agent.requests).toEqual([{ url: 'http://169.254.170.2/api/task-1/task-protection/v1/state', method: 'PUT', contentType: 'application/json', body: ON }]);
    protection.busy(); // still busy: nothing to send
    protection.idle();
    await vi.advanceTimersByTimeAsync(999);
    expect(agent.bodies()).toEqual([ON]);
    // Busy again within the debounce: protection stays, no request either way.
    protection.busy();
    protection.idle();
    await vi.advanceTimersByTimeAsync(999);
    expect(agent.bodies()).toEqual([ON]);
    await vi.advanceTimersByTimeAsync(1);
    expect(agent.bodies()).toEqual([ON, OFF]);
    expect(log.warnings()).toEqual([]);
  });

  it('keeps one request in flight; the last wanted state wins', async () => {
    make({ clearAfterIdleMs: 0 });
    agent.hold();
    protection.busy();
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 3; i++) {
      protection.idle();
      await vi.advanceTimersByTimeAsync(0);
      protection.busy();
    }
    protection.idle();
    await vi.advanceTimersByTimeAsync(0);
    expect(agent.bodies()).toEqual([ON]);
    agent.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(agent.bodies()).toEqual([ON, OFF]);
    // Idle and busy again while the request that protects is in flight: it already says what is wanted.
    agent.hold();
    protection.busy();
    await vi.advanceTimersByTimeAsync(0);
    protection.idle();
    await vi.advanceTimersByTimeAsync(0);
    protection.busy();
    agent.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(agent.bodies()).toEqual([ON, OFF, ON]);
  });

  it('renews protection halfway to its expiry while still busy, and not once idle', async () => {
    make({ expiresInMinutes: 10 });
    protection.busy();
    await vi.advanceTimersByTimeAsync(5 * 60_000 - 1);
    expect(agent.bodies()).toEqual([{ ProtectionEnabled: true, ExpiresInMinutes: 10 }]);
    await vi.advanceTimersByTimeAsync(1);
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    expect(agent.bodies()).toHaveLength(3);
    protection.idle();
    await vi.advanceTimersByTimeAsync(60 * 60_000);
    expect(agent.bodies().at(-1)).toEqual(OFF);
    expect(agent.bodies()).toHaveLength(4);
  });

  it('logs failures (rate-limited) and tries again later; never throws', async () => {
    make({ retryAfterMs: 10_000 });
    agent.answerWith(async () => Response.json({ error: { Arn: 'arn:task', Code: 'AccessDeniedException', Message: 'not authorized to perform ecs:UpdateTaskProtection' } }, { status: 400 }));
    expect(() => protection.busy()).not.toThrow();
    await vi.advanceTimersByTimeAsync(0);
    expect(log.warnings()).toHaveLength(1);
    expect(log.warnings()[0]!.fields).toMatchObject({ protectionEnabled: true, error: expect.stringContaining('AccessDeniedException: not authorized') });
    // A 200 that carries a failure, then a network error: retried, but not logged again within a minute.
    agent.answerWith(async () => Response.json({ failure: { Arn: 'arn:task', Reason: 'TASK_NOT_VALID', Detail: null } }));
    await vi.advanceTimersByTimeAsync(10_000);
    agent.answerWith(async () => {
      throw new TypeError('fetch failed');
    });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(agent.bodies()).toEqual([ON, ON, ON]);
    expect(log.warnings()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(40_000);
    expect(log.warnings()).toHaveLength(2);
    expect(log.warnings()[1]!.fields).toMatchObject({ error: 'fetch failed', failuresNotLogged: 5 });
    // The agent recovers: the retry goes through and retries stop.
    agent.answerWith(async () => Response.json({ protection: { ProtectionEnabled: true } }));
    await vi.advanceTimersByTimeAsync(10_000);
    const sent = agent.requests.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(agent.requests.length).toBe(sent);
  });

  it('close() clears protection at once (no debounce) and leaves no timer', async () => {
    make();
    protection.busy();
    await vi.advanceTimersByTimeAsync(0);
    await protection.close();
    expect(agent.bodies()).toEqual([ON, OFF]);
    expect(vi.getTimerCount()).toBe(0);
    protection.busy(); // after close: ignored
    await vi.advanceTimersByTimeAsync(0);
    expect(agent.bodies()).toEqual([ON, OFF]);
  });

  it('rejects bad options with a clear error', () => {
    expect(() => make({ expiresInMinutes: 0 })).toThrow(SwitchyardError);
    expect(() => make({ expiresInMinutes: 2881 })).toThrow(/1 to 2880/);
    expect(() => make({ agentUri: 'not a url' })).toThrow(/not a URL/);
  });
});
