import { ErrorCodes, SwitchyardError } from '../errors.js';
import type { Logger } from '../logger.js';

/**
 * ECS task scale-in protection for a worker: while the worker holds node jobs its task is protected, so
 * service auto scaling and deployments stop idle tasks instead of busy ones. Set and cleared through the
 * ECS container agent's endpoint (`PUT $ECS_AGENT_URI/task-protection/v1/state`, body
 * `{"ProtectionEnabled":true,"ExpiresInMinutes":N}` or `{"ProtectionEnabled":false}`), which calls
 * ecs:UpdateTaskProtection with the task role. The agent answers `{"protection":{…}}` on success and
 * `{"failure":{Arn,Reason,Detail}}` or `{"error":{Arn,Code,Message}}` (with a 4xx/5xx status) otherwise.
 */
export interface TaskProtectionOptions {
  /** The ECS container agent's URI: the task's `ECS_AGENT_URI`. */
  agentUri: string;
  /**
   * How long one request protects the task (ECS allows 1 to 2880 minutes); renewed halfway while the worker
   * is still busy, so a worker that hangs loses its protection at most this long after. @default 60
   */
  expiresInMinutes?: number;
  /**
   * How long the worker must hold no job before protection is cleared: a steady stream of short jobs
   * does not flap it on and off (each change is an ECS API call, which ECS rate-limits). @default 5000
   */
  clearAfterIdleMs?: number;
  /** After a failed request, when to try again if the wanted state still differs. @default 15000 */
  retryAfterMs?: number;
  /** One request's limit; a hung agent must not hold later changes. @default 5000 */
  requestTimeoutMs?: number;
  /** For tests. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** The agent endpoint's path under `ECS_AGENT_URI`. */
export const TASK_PROTECTION_PATH = '/task-protection/v1/state';

/** At most one warning per this many ms about failed requests (the rest are counted in the next one). */
const WARN_EVERY_MS = 60_000;

/**
 * Keeps the task's protection in line with whether the worker is busy: {@link busy} when it goes from no
 * job to one, {@link idle} when it goes back to none. One request in flight at a time, the last wanted
 * state wins, failures are logged (rate-limited) and retried later; nothing here throws or waits on the
 * job path.
 */
export class TaskProtection {
  private readonly url: string;
  private readonly expiresInMinutes: number;
  private readonly clearAfterIdleMs: number;
  private readonly retryAfterMs: number;
  private readonly requestTimeoutMs: number;
  private readonly fetch: typeof fetch;
  /** What the worker wants now. */
  private wanted = false;
  /** What the agent last confirmed (a new task starts unprotected). */
  private applied = false;
  /** Set when the confirmed protection is half way to its expiry and the worker is still busy. */
  private renewDue = false;
  private inFlight: Promise<void> | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastWarnAt = -Infinity;
  private suppressed = 0;

  constructor(options: TaskProtectionOptions, private readonly logger: Logger) {
    const resolved = resolveTaskProtectionOptions(options);
    this.url = resolved.agentUri.replace(/\/+$/, '') + TASK_PROTECTION_PATH;
    this.expiresInMinutes = resolved.expiresInMinutes;
    this.clearAfterIdleMs = resolved.clearAfterIdleMs;
    this.retryAfterMs = resolved.retryAfterMs;
    this.requestTimeoutMs = resolved.requestTimeoutMs;
    this.fetch = resolved.fetch;
  }

  /** The worker took its first job: protect the task (at once) unless it still is. */
  busy(): void {
    if (this.closed) return;
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    if (this.wanted) return;
    this.wanted = true;
    this.sync();
  }

  /** The worker holds no job any more: clear protection unless it is busy again within `clearAfterIdleMs`. */
  idle(): void {
    if (this.closed || !this.wanted || this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.wanted = false;
      this.sync();
    }, this.clearAfterIdleMs);
    this.idleTimer.unref();
  }

  /** Stops the timers and clears protection (one attempt, after any request in flight). Never throws. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wanted = false;
    for (const timer of [this.idleTimer, this.renewTimer, this.retryTimer]) clearTimeout(timer);
    this.idleTimer = this.renewTimer = this.retryTimer = undefined;
    await this.inFlight;
    if (this.applied) await this.send(false);
  }

  /** Sends the wanted state when it differs from the confirmed one (or a renewal is due), one request at a time. */
  private sync(): void {
    if (this.closed || this.inFlight || this.retryTimer) return;
    if (this.wanted === this.applied && !(this.wanted && this.renewDue)) return;
    this.inFlight = this.send(this.wanted).finally(() => {
      this.inFlight = undefined;
      this.sync(); // the wanted state may have changed meanwhile: the last one wins
    });
  }

  private async send(enable: boolean): Promise<void> {
    const body = enable ? { ProtectionEnabled: true, ExpiresInMinutes: this.expiresInMinutes } : { ProtectionEnabled: false };
    try {
      const res = await this.fetch(this.url, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
      const text = await res.text();
      const problem = agentProblem(res.status, text);
      if (problem) throw new Error(problem);
      this.applied = enable;
      clearTimeout(this.renewTimer);
      this.renewTimer = undefined;
      if (enable) {
        this.renewDue = false;
        this.renewTimer = setTimeout(() => {
          this.renewTimer = undefined;
          this.renewDue = true;
          this.sync();
        }, (this.expiresInMinutes * 60_000) / 2);
        this.renewTimer.unref();
      }
      this.logger.debug(enable ? 'task scale-in protection set' : 'task scale-in protection cleared', enable ? { expiresInMinutes: this.expiresInMinutes } : undefined);
    } catch (err) {
      this.warn(enable, err);
      if (!this.closed) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.sync();
        }, this.retryAfterMs);
        this.retryTimer.unref();
      }
    }
  }

  private warn(enable: boolean, err: unknown): void {
    const now = Date.now();
    if (now - this.lastWarnAt < WARN_EVERY_MS) {
      this.suppressed++;
      return;
    }
    const error = err instanceof Error ? (err.name === 'TimeoutError' ? `no answer within ${this.requestTimeoutMs} ms` : err.message) : String(err);
    this.logger.warn('task scale-in protection request failed; jobs go on, it is tried again', {
      protectionEnabled: enable,
      error,
      ...(this.suppressed ? { failuresNotLogged: this.suppressed } : {}),
    });
    this.lastWarnAt = now;
    this.suppressed = 0;
  }
}

/** What went wrong, from the agent's reply; undefined when it confirmed the change. */
function agentProblem(status: number, text: string): string | undefined {
  let reply: { failure?: { Reason?: string; Detail?: string | null }; error?: { Code?: string; Message?: string } } | undefined;
  try {
    reply = JSON.parse(text) as typeof reply;
  } catch {
    reply = undefined;
  }
  if (reply?.error) return `agent answered ${status}: ${reply.error.Code ?? 'error'}: ${reply.error.Message ?? ''}`.trim();
  if (reply?.failure) return `agent answered ${status}: ${reply.failure.Reason ?? 'failure'}${reply.failure.Detail ? `: ${reply.failure.Detail}` : ''}`;
  if (status < 200 || status >= 300) return `agent answered ${status}${text ? `: ${text.slice(0, 200)}` : ''}`;
  return undefined;
}

export type ResolvedTaskProtectionOptions = Required<TaskProtectionOptions>;

/** Checks the options once, with clear errors. */
export function resolveTaskProtectionOptions(options: TaskProtectionOptions): ResolvedTaskProtectionOptions {
  const fail = (message: string) => new SwitchyardError(ErrorCodes.CONFIG, `taskProtection: ${message}`);
  let url: URL;
  try {
    url = new URL(options.agentUri);
  } catch {
    throw fail(`agentUri "${options.agentUri}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fail(`agentUri "${options.agentUri}" must be http(s)`);
  const expiresInMinutes = options.expiresInMinutes ?? 60;
  if (!Number.isInteger(expiresInMinutes) || expiresInMinutes < 1 || expiresInMinutes > 2880) {
    throw fail(`expiresInMinutes must be a whole number from 1 to 2880 (got ${expiresInMinutes})`);
  }
  const ms = (name: string, value: number | undefined, fallback: number, min: number) => {
    const v = value ?? fallback;
    if (!Number.isFinite(v) || v < min) throw fail(`${name} must be a number of ms >= ${min} (got ${v})`);
    return v;
  };
  return {
    agentUri: options.agentUri,
    expiresInMinutes,
    clearAfterIdleMs: ms('clearAfterIdleMs', options.clearAfterIdleMs, 5000, 0),
    retryAfterMs: ms('retryAfterMs', options.retryAfterMs, 15_000, 1),
    requestTimeoutMs: ms('requestTimeoutMs', options.requestTimeoutMs, 5000, 1),
    // Called unbound: a wrapper, so the global fetch never sees another `this`.
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
  };
}
