import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BlueprintRegistry, LoadedBlueprint } from '../blueprint/load.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import type { RunView } from '../types/run-view.js';
import { isTerminalRunStatus, type RunStatus } from '../types/statuses.js';
import { NodeQueue } from '../queue/node-queue.js';
import { RunService } from '../queue/runs.js';
import { resolveOptions, type ResolvedOptions, type SwitchyardOptions } from '../options.js';
import { RedisStore } from '../store/redis-store.js';

export interface ClientOptions extends SwitchyardOptions {
  /** Blueprints that `start(id)` can name, and that inline blueprints' subflows may call. */
  blueprints: BlueprintRegistry;
}

export interface StartOptions {
  /** Your own run id (letters, digits, "_", "-"; up to 128). Starting the same id twice returns the same run. @default a random UUID */
  runId?: string;
  /** Seconds a finished run is kept. @default the client's runTtlSeconds */
  ttlSeconds?: number;
}

export interface ResultOptions {
  /** Give up waiting after this long (the run goes on). @default no limit */
  timeoutMs?: number;
}

/** A started run. */
export class RunHandle {
  constructor(
    private readonly client: SwitchyardClient,
    readonly runId: string,
    readonly blueprintId: string,
    /** False when a run with this id already existed. */
    readonly created: boolean,
  ) {}

  /** Resolves with the run when it ends (completed, failed or cancelled). */
  result(options: ResultOptions = {}): Promise<RunView> {
    return this.client.result(this.runId, options);
  }

  get(): Promise<RunView | undefined> {
    return this.client.get(this.runId);
  }

  cancel(): Promise<boolean> {
    return this.client.cancel(this.runId);
  }
}

/** Starts runs, awaits them, reads and cancels them. Needs no worker in the same process. */
export class SwitchyardClient {
  readonly store: RedisStore;
  private readonly options: ResolvedOptions;
  private readonly queue: NodeQueue;
  private readonly registry: BlueprintRegistry;
  private readonly runs: RunService;
  private subscriber: Redis | undefined;
  private readonly waiters = new Map<string, { runId: string; wakers: Set<(status: string) => void>; subscribed: Promise<unknown> }>();

  constructor(options: ClientOptions) {
    this.options = resolveOptions(options);
    this.registry = options.blueprints;
    this.store = new RedisStore(this.options.redis, this.options.prefix);
    this.queue = new NodeQueue(this.options);
    this.runs = new RunService(this.store, this.queue, this.registry, this.options.runTtlSeconds);
  }

  /**
   * Starts a run of a registered blueprint (by id) or of an inline blueprint object (validated first), with
   * `input` as its initial context. Idempotent per `runId`.
   */
  async start(blueprint: string | object, input: Record<string, unknown> = {}, options: StartOptions = {}): Promise<RunHandle> {
    const loaded = typeof blueprint === 'string' ? this.runs.blueprint(blueprint) : this.validateInline(blueprint);
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new SwitchyardError(ErrorCodes.VALIDATION, 'input must be a JSON object (the run\'s initial context)');
    }
    const runId = options.runId ?? randomUUID();
    const started = await this.runs.start(loaded, input, { runId, ttlSeconds: options.ttlSeconds });
    return new RunHandle(this, runId, started.graph.blueprintId, started.created);
  }

  /** The run as it is now; undefined when there is no such run (or it expired). */
  get(runId: string): Promise<RunView | undefined> {
    return this.store.getRun(runId);
  }

  /** Cancels a running run (and its child runs); false when it had already ended. Throws when there is no such run. */
  async cancel(runId: string): Promise<boolean> {
    const outcome = await this.runs.cancel(runId);
    if (outcome === 'missing') throw new SwitchyardError(ErrorCodes.RUN_NOT_FOUND, `no run "${runId}"`, { runId });
    return outcome === 'cancelled';
  }

  /** The run's timeline, oldest first. */
  events(runId: string): Promise<Array<Record<string, string> & { id: string }>> {
    return this.store.getEvents(runId);
  }

  /**
   * Resolves with the run once it has ended. Woken by the run's end message: it subscribes first, then
   * reads the status, so a run that ends in between is not missed.
   */
  async result(runId: string, options: ResultOptions = {}): Promise<RunView> {
    const channel = this.store.keys.runEnded(runId);
    let wake!: (status: string) => void;
    const ended = new Promise<string>((resolve) => (wake = resolve));
    await this.addWaiter(runId, channel, wake);
    let timer: NodeJS.Timeout | undefined;
    try {
      const status = await this.store.getStatus(runId);
      if (status === undefined) throw new SwitchyardError(ErrorCodes.RUN_NOT_FOUND, `no run "${runId}"`, { runId });
      if (!isTerminalRunStatus(status)) {
        const timeout = new Promise<never>((_, reject) => {
          if (options.timeoutMs === undefined) return;
          timer = setTimeout(
            () => reject(new SwitchyardError(ErrorCodes.WAIT_TIMEOUT, `run "${runId}" did not end within ${options.timeoutMs} ms`, { runId, retryable: true })),
            options.timeoutMs,
          );
        });
        await Promise.race([ended, timeout]);
      }
      const view = await this.store.getRun(runId);
      if (!view) throw new SwitchyardError(ErrorCodes.RUN_NOT_FOUND, `run "${runId}" is gone (expired, or lost in a Redis failover)`, { runId });
      return view;
    } finally {
      clearTimeout(timer);
      await this.removeWaiter(channel, wake);
    }
  }

  async close(): Promise<void> {
    await this.queue.close();
    await this.subscriber?.quit().catch(() => undefined);
    if (this.options.ownsRedis) await this.options.redis.quit().catch(() => undefined);
  }

  /** Inline blueprints are validated for this run only; they never replace a registered blueprint. */
  private validateInline(blueprint: object): LoadedBlueprint {
    const id = createHash('sha256').update(JSON.stringify(blueprint)).digest('hex').slice(0, 12);
    return this.registry.validate(blueprint, '<inline>', `inline-${id}`);
  }

  /**
   * Wakes the waiters of runs that ended (or vanished: lost in a failover, or expired) while the subscriber
   * was away. Subscribes again first (ioredis already did; this waits until Redis has it), so an end after
   * the read is heard too.
   */
  private async rereadAfterReconnect(): Promise<void> {
    const waiting = [...this.waiters];
    if (waiting.length === 0 || !this.subscriber) return;
    try {
      await this.subscriber.subscribe(...waiting.map(([channel]) => channel));
      await Promise.all(
        waiting.map(async ([, waiter]) => {
          const status = await this.store.getStatus(waiter.runId);
          if (status === undefined || isTerminalRunStatus(status)) for (const w of waiter.wakers) w(status ?? 'missing');
        }),
      );
    } catch {
      // Redis went away again: the next 'ready' reads again.
    }
  }

  private async addWaiter(runId: string, channel: string, wake: (status: string) => void): Promise<void> {
    if (!this.subscriber) {
      // No ready check (an INFO is not allowed on a reconnecting subscriber); ioredis resubscribes after a
      // reconnect, and result() re-reads the status after subscribing, so nothing is missed.
      this.subscriber = (this.options.redis as Redis).duplicate({ enableReadyCheck: false });
      this.subscriber.on('error', () => undefined); // reconnects on its own; commands report their own errors
      this.subscriber.on('message', (ch: string, status: string) => {
        for (const w of this.waiters.get(ch)?.wakers ?? []) w(status);
      });
      // After a reconnect (a Redis restart, a pause, a failover) a run may have ended while nobody listened:
      // once subscribed again, read every awaited run's status.
      this.subscriber.on('ready', () => void this.rereadAfterReconnect());
    }
    let waiter = this.waiters.get(channel);
    if (!waiter) {
      waiter = { runId, wakers: new Set(), subscribed: this.subscriber.subscribe(channel) };
      this.waiters.set(channel, waiter);
    }
    waiter.wakers.add(wake);
    // Every waiter awaits the subscription, so none reads the status before it can hear the end message.
    await waiter.subscribed;
  }

  private async removeWaiter(channel: string, wake: (status: string) => void): Promise<void> {
    const waiter = this.waiters.get(channel);
    if (!waiter) return;
    waiter.wakers.delete(wake);
    if (waiter.wakers.size === 0) {
      this.waiters.delete(channel);
      await this.subscriber?.unsubscribe(channel).catch(() => undefined);
    }
  }
}

export type { RunStatus };
