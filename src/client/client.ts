import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { BlueprintRegistry, LoadedBlueprint } from '../blueprint/load.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { GraphCache } from '../engine/graph-cache.js';
import { actionsOf } from '../engine/graph.js';
import type { NodeSignal } from '../types/node-kind.js';
import type { RunView, SignalOutcome } from '../types/run-view.js';
import { readRunBlueprint } from '../store/run-state.js';
import { isTerminalRunStatus, type RunStatus } from '../types/statuses.js';
import { MAX_PRIORITY, NodeQueue } from '../queue/node-queue.js';
import { BlueprintCatalog, type PushResult } from '../queue/blueprint-catalog.js';
import { RunService } from '../queue/runs.js';
import { resolveOptions, type ResolvedOptions, type SwitchyardOptions } from '../options.js';
import { BlueprintStore } from '../store/blueprint-store.js';
import { RedisStore } from '../store/redis-store.js';

export interface ClientOptions extends SwitchyardOptions {
  /** Blueprints that `start(id)` can name, and that inline blueprints' subflows may call. */
  blueprints: BlueprintRegistry;
}

export interface StartOptions {
  /**
   * The blueprint version to run (its content hash): a stored version of the id, or the one this client
   * has. Only with a blueprint id. @default the latest stored version, else this client's
   */
  version?: string;
  /** Your own run id (letters, digits, "_", "-"; up to 128). Starting the same id twice returns the same run. @default a random UUID */
  runId?: string;
  /** Seconds a finished run is kept. @default the client's runTtlSeconds */
  ttlSeconds?: number;
  /**
   * The run's deadline, from now: past it the run fails with RUN_TIMEOUT (running nodes see their abort
   * signal, waiting and sleeping nodes and child runs end). @default none
   */
  timeoutMs?: number;
  /**
   * The run's priority, as BullMQ's: 1 is the highest, up to 2097152. Every node job of the run (and of
   * its child runs) carries it, so on a busy queue a run with a smaller number is taken before those with
   * larger ones. Runs without a priority are taken before prioritized ones (BullMQ's rule).
   * @default none
   */
  priority?: number;
}

/** Largest signal payload, as JSON. */
export const MAX_SIGNAL_PAYLOAD_BYTES = 64 * 1024;

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

  signal(nodeId: string, signal: NodeSignal = {}): Promise<SignalOutcome> {
    return this.client.signal(this.runId, nodeId, signal);
  }

  redrive(): Promise<RedriveOutcome> {
    return this.client.redrive(this.runId);
  }
}

/** What `redrive` did: the run runs again (its `redrives`-th redrive), or its status says why not. */
export type RedriveOutcome = { redriven: true; redrives: number } | { redriven: false; status: RunStatus };

/** Starts runs, awaits them, reads and cancels them. Needs no worker in the same process. */
export class SwitchyardClient {
  readonly store: RedisStore;
  private readonly options: ResolvedOptions;
  private readonly queue: NodeQueue;
  private readonly registry: BlueprintRegistry;
  private readonly runs: RunService;
  /**
   * Blueprints as this client sees them: stored ones (pushed, or seeded from a deployment's bundle) by id
   * and version, then its own registry's.
   */
  readonly catalog: BlueprintCatalog;
  private subscriber: Redis | undefined;
  private readonly waiters = new Map<string, { runId: string; wakers: Set<(status: string) => void>; subscribed: Promise<unknown> }>();
  /** Compiled graphs by version, for signals (a run's version may be one this client never started). */
  private readonly graphs: GraphCache;

  constructor(options: ClientOptions) {
    this.options = resolveOptions(options);
    this.registry = options.blueprints;
    this.store = new RedisStore(this.options.redis, this.options.prefix);
    this.queue = new NodeQueue(this.options);
    this.catalog = new BlueprintCatalog(new BlueprintStore(this.store.redis, this.store.keys), this.registry, this.registry.kinds);
    this.runs = new RunService(this.store, this.queue, this.catalog, this.options.runTtlSeconds);
    this.graphs = new GraphCache(this.registry.kinds, (version) => this.store.loadBlueprint(version));
  }

  /**
   * Starts a run of a blueprint by id (the latest stored version, else this client's; or `options.version`)
   * or of an inline blueprint object (validated first), with `input` as its initial context. The run pins
   * the versions of every blueprint its subflows can reach, so its child runs execute those wherever they
   * run. Idempotent per `runId`.
   */
  async start(blueprint: string | object, input: Record<string, unknown> = {}, options: StartOptions = {}): Promise<RunHandle> {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      throw new SwitchyardError(ErrorCodes.VALIDATION, 'input must be a JSON object (the run\'s initial context)');
    }
    if (options.version !== undefined && typeof blueprint !== 'string') {
      throw new SwitchyardError(ErrorCodes.VALIDATION, 'version names a stored version of a blueprint id: give the id, not an inline blueprint');
    }
    if (options.priority !== undefined && (!Number.isInteger(options.priority) || options.priority < 1 || options.priority > MAX_PRIORITY)) {
      throw new SwitchyardError(ErrorCodes.VALIDATION, `priority must be a whole number from 1 (highest) to ${MAX_PRIORITY} (got ${options.priority})`);
    }
    const loaded = typeof blueprint === 'string' ? await this.catalog.resolve(blueprint, options.version) : await this.validateInline(blueprint);
    const runId = options.runId ?? randomUUID();
    if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
      throw new SwitchyardError(ErrorCodes.VALIDATION, `timeoutMs must be a number of milliseconds > 0 (got ${options.timeoutMs})`);
    }
    const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
    const started = await this.runs.start(loaded, input, { runId, ttlSeconds: options.ttlSeconds, deadline, priority: options.priority });
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

  /**
   * Redrives a failed or cancelled run: its failed and cancelled nodes, and the nodes never reached because
   * of them, run again; done nodes keep their outputs and do not run again; a failed child run of a
   * subflow/map/loop node is redriven in place. `{ redriven: false, status }` for a running or completed
   * run. Throws RUN_NOT_FOUND when there is no such run.
   */
  async redrive(runId: string): Promise<RedriveOutcome> {
    const outcome = await this.runs.redrive(runId);
    if (outcome.outcome === 'missing') throw new SwitchyardError(ErrorCodes.RUN_NOT_FOUND, `no run "${runId}"`, { runId });
    return outcome.outcome === 'redriven' ? { redriven: true, redrives: outcome.redrives } : { redriven: false, status: outcome.status };
  }

  /**
   * Answers a `wait` node: `action` routes its outgoing edges (as a router's action does), `payload` (any
   * JSON, at most 64 KiB) becomes its output. Then enqueues what became ready. Resolves with the node's
   * new state. Throws a `NodeNotWaitingError` (its `status` says why) when the node is not waiting (also
   * for a second signal, or one that lost to the node's timeout), RUN_NOT_FOUND / NODE_NOT_FOUND, and
   * VALIDATION for an action none of its edges has or a payload too large.
   */
  async signal(runId: string, nodeId: string, signal: NodeSignal = {}): Promise<SignalOutcome> {
    const { version } = await readRunBlueprint(this.store.redis, this.store.keys, runId);
    if (!version) throw new SwitchyardError(ErrorCodes.RUN_NOT_FOUND, `no run "${runId}"`, { runId });
    const graph = await this.graphs.get(version);
    const node = graph.byId.get(nodeId);
    if (!node) throw new SwitchyardError(ErrorCodes.NODE_NOT_FOUND, `run "${runId}" has no node "${nodeId}"`, { runId, nodeId });
    if (signal.action !== undefined && !actionsOf(node).includes(signal.action)) {
      throw new SwitchyardError(ErrorCodes.VALIDATION, `no edge of node "${nodeId}" has the action "${signal.action}" (it has: ${actionsOf(node).join(', ') || 'none'})`, { runId, nodeId });
    }
    if (signal.payload !== undefined) {
      const bytes = Buffer.byteLength(JSON.stringify(signal.payload) ?? '', 'utf8');
      if (bytes > MAX_SIGNAL_PAYLOAD_BYTES) {
        throw new SwitchyardError(ErrorCodes.VALIDATION, `the payload is ${bytes} bytes of JSON; at most ${MAX_SIGNAL_PAYLOAD_BYTES}`, { runId, nodeId });
      }
    }
    const done = await this.runs.completeParked(runId, graph, node, { signal });
    return { runId, nodeId, ...done };
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

  /**
   * Validates a blueprint and stores it as a new version of its id (the same content again: `created:
   * false`); from then on, starts of the id run it, on any worker. Its subflows may name stored blueprints
   * and this client's.
   * @throws {ValidationError} listing every issue
   */
  pushBlueprint(blueprint: object): Promise<PushResult> {
    return this.catalog.push(blueprint, { file: '<pushed>' });
  }

  /**
   * Stores this client's blueprints whose ids have no stored version yet (the first start of a
   * deployment); never replaces a stored version. Returns the ids it stored.
   */
  seedBlueprints(): Promise<string[]> {
    return this.catalog.seed(this.registry);
  }

  /** Inline blueprints are validated for this run only; they never replace a registered blueprint. */
  private validateInline(blueprint: object): Promise<LoadedBlueprint> {
    const id = createHash('sha256').update(JSON.stringify(blueprint)).digest('hex').slice(0, 12);
    return this.catalog.validate(blueprint, '<inline>', `inline-${id}`);
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
