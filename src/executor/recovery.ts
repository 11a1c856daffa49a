import { ErrorCodes, serializeError, SwitchyardError } from '../errors.js';
import type { Graph } from '../engine/graph.js';
import type { Logger } from '../logger.js';
import { nodeJobId, type NodeQueue } from '../queue/node-queue.js';
import type { RunService } from '../queue/runs.js';
import type { RedisStore, WorkerBeat } from '../store/redis-store.js';
import { isTerminalRunStatus } from '../types/statuses.js';

/** How a worker takes part in recovery. All optional. */
export interface RecoveryOptions {
  /**
   * How often the worker writes its heartbeat (one HSET: a sequence number and the jobs it holds with
   * their lock tokens), and how often the lease holder looks at everyone's. @default 500
   */
  heartbeatMs?: number;
  /**
   * A worker whose heartbeat has not moved for this long, as the lease holder watched it, is dead: its
   * jobs go back to the queue at once (BullMQ `moveToWait` with its lock tokens) instead of after their
   * locks lapse. Judged by observation, not by TTLs, so a paused Redis kills nobody. A worker whose event
   * loop stalls this long is taken for dead too (its nodes then run twice: execution is at-least-once).
   * Sooner for a worker whose process is gone: once its beat has not moved for a heartbeat and Redis no
   * longer holds its named connection (closed by the kernel when the process died), it is dead then.
   * @default 2000
   */
  deadAfterMs?: number;
  /**
   * A running run with no new event for this long is checked by the reconciler: every queued or running
   * node must be held by a job (waiting, delayed or active) or by a live worker; the others are enqueued
   * again (`run.repaired`). A run with nothing left that can ever run fails with RUN_INCONSISTENT.
   * @default 15000
   */
  reconcileAfterMs?: number;
  /** No heartbeat, no watching, no reconciling (a worker that leaves recovery to others). @default true */
  enabled?: boolean;
}

export interface ResolvedRecoveryOptions {
  heartbeatMs: number;
  deadAfterMs: number;
  reconcileAfterMs: number;
  enabled: boolean;
}

export const DEFAULT_RECONCILE_AFTER_MS = 15_000;

/** Resolves and checks the options once. */
export function resolveRecoveryOptions(options: RecoveryOptions = {}): ResolvedRecoveryOptions {
  const resolved = {
    heartbeatMs: options.heartbeatMs ?? 500,
    deadAfterMs: options.deadAfterMs ?? 2_000,
    reconcileAfterMs: options.reconcileAfterMs ?? DEFAULT_RECONCILE_AFTER_MS,
    enabled: options.enabled ?? true,
  };
  for (const name of ['heartbeatMs', 'deadAfterMs', 'reconcileAfterMs'] as const) {
    const value = resolved[name];
    if (!Number.isInteger(value) || value < 10) throw new SwitchyardError(ErrorCodes.CONFIG, `recovery.${name} must be a whole number of ms >= 10 (got ${value})`);
  }
  if (resolved.deadAfterMs < 2 * resolved.heartbeatMs) {
    throw new SwitchyardError(ErrorCodes.CONFIG, `recovery.deadAfterMs (${resolved.deadAfterMs}) must be at least twice heartbeatMs (${resolved.heartbeatMs})`);
  }
  return resolved;
}

/** What recovery did in this worker, since it started (a counter metric: logged and exposed). */
export interface RecoveryStats {
  /** Workers found dead whose jobs this worker put back. */
  deadWorkers: number;
  /** Jobs of dead workers put back in the queue. */
  rescuedJobs: number;
  /** Nodes the reconciler enqueued again (each also a `run.repaired` event on its run). */
  repairedNodes: number;
  /** Runs the reconciler failed as beyond repair (RUN_INCONSISTENT). */
  failedRuns: number;
}

interface RecoveryDeps {
  workerId: string;
  store: RedisStore;
  queue: NodeQueue;
  runs: RunService;
  /** The compiled graph of a blueprint version (the worker's cache). */
  graph: (version: string) => Promise<Graph>;
  /** The jobs this worker processes now, with their lock tokens. */
  jobs: () => Array<[jobId: string, token: string]>;
  /** The ids of this worker's BullMQ workers (the `<id>` of every lock token `<id>:<n>` they take). */
  fetchers?: () => string[];
  logger: Logger;
}

/** Stale runs one reconcile pass looks at, at most. */
const RECONCILE_BATCH = 100;

/**
 * A worker's part in recovery (issue 12):
 * - it beats: every `heartbeatMs` one HSET of a sequence number and the jobs it holds;
 * - while it holds the recovery lease (one worker at a time, SET NX PX), it watches the others' beats and
 *   puts a dead worker's jobs back in the queue at once (their redelivery finds claimed successors through
 *   the `readied` record), and every few seconds reconciles runs that made no progress for
 *   `reconcileAfterMs`: nodes queued or running that no job or live worker holds are enqueued again.
 * BullMQ's own lock expiry and stalled check stay as the backstop.
 */
export class WorkerRecovery {
  readonly stats: RecoveryStats = { deadWorkers: 0, rescuedJobs: 0, repairedNodes: 0, failedRuns: 0 };
  private readonly options: ResolvedRecoveryOptions;
  private seq = 0;
  private beatTimer: NodeJS.Timeout | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private watching = false;
  /**
   * Each worker's last beat seen: since when (local clock) it has not moved, how long to wait from then,
   * and since when it has been silent as far as can be told (on a first look, backdated by the beat's age).
   */
  private readonly seen = new Map<string, { seq: number; since: number; patience: number; silentFrom: number }>();
  /** When this worker last read the beats; a longer gap means it could not watch (Redis paused, loop stalled). */
  private lastLook: number | undefined;
  private lastReconcile = 0;
  /** Active jobs no live worker listed, and since when (local clock): orphans once that lasts. */
  private readonly unlisted = new Map<string, number>();
  private beatFailing = false;
  /** When this worker began beating (its connections were made about then). */
  private startedAt = Date.now();

  constructor(
    private readonly deps: RecoveryDeps,
    options: RecoveryOptions = {},
  ) {
    this.options = resolveRecoveryOptions(options);
  }

  start(): void {
    if (!this.options.enabled || this.beatTimer) return;
    this.startedAt = Date.now();
    void this.beat();
    this.beatTimer = setInterval(() => void this.beat(), this.options.heartbeatMs).unref();
    void this.tick(); // a worker started to replace dead ones begins watching at once, not a beat later
    this.watchTimer = setInterval(() => void this.tick(), this.options.heartbeatMs).unref();
  }

  /** Stops watching others (the worker is closing); it goes on beating while it drains. */
  stopWatching(): void {
    clearInterval(this.watchTimer);
    this.watchTimer = undefined;
  }

  /** Stops beating and removes its heartbeat (the worker has closed: it holds no job). */
  stop(): void {
    this.stopWatching();
    if (!this.beatTimer) return;
    clearInterval(this.beatTimer);
    this.beatTimer = undefined;
    this.deps.store.forgetWorker(this.deps.workerId).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    try {
      await this.deps.store.beat(this.deps.workerId, { seq: ++this.seq, at: Date.now(), jobs: this.deps.jobs(), fetchers: this.deps.fetchers?.() });
      this.beatFailing = false;
    } catch (err) {
      if (!this.beatFailing) this.deps.logger.warn('cannot write the worker heartbeat (Redis away?)', { error: (err as Error).message });
      this.beatFailing = true;
    }
  }

  /**
   * One watch: take or keep the lease, read the beats and the active jobs; if the lease is held, act on
   * them (rescue, sweep) and, now and then, reconcile. A worker without the lease watches too, without
   * acting: when the holder dies, its successor already knows who stopped beating and which jobs nobody
   * lists, and acts on its first look instead of watching afresh for `deadAfterMs` (it used to start
   * blind, so a killed lease holder's jobs waited lease + deadAfterMs, ~4.5 s, before anyone moved them).
   */
  private async tick(): Promise<void> {
    if (this.watching) return; // the last tick is still at work (a slow Redis): never two at once
    this.watching = true;
    try {
      const leaseMs = Math.max(3 * this.options.heartbeatMs, this.options.deadAfterMs);
      let holding = await this.deps.store.holdLease(this.deps.workerId, leaseMs);
      const beats = await this.deps.store.readBeats();
      if (!holding) holding = await this.takeLeaseFromDead(beats, leaseMs);
      const live = await this.judge(beats, holding);
      await this.sweepOrphans(beats, live, holding);
      if (!holding) return;
      const now = Date.now();
      if (now - this.lastReconcile >= Math.min(5_000, this.options.reconcileAfterMs / 3)) {
        this.lastReconcile = now;
        await this.reconcile(beats, live);
      }
    } catch (err) {
      this.deps.logger.warn('recovery watch failed; trying again', { error: (err as Error).message });
    } finally {
      this.watching = false;
    }
  }

  /**
   * Puts back the jobs of workers whose beat stopped moving (only when `act`: the lease holder); returns
   * the live workers. Without `act` a silent worker still counts as live (only the holder judges), so
   * the jobs it lists are not taken for orphans before its own jobs are moved with their tokens.
   */
  private async judge(beats: Map<string, WorkerBeat>, act: boolean): Promise<Set<string>> {
    const now = Date.now();
    // Could not look for as long as it takes to judge (Redis paused, this process stalled, the lease just
    // taken): nobody can be judged on that gap, so every worker starts afresh. Shorter gaps (a slow, loaded
    // host) still count, or a busy watcher would never see anyone die.
    const firstLook = this.lastLook === undefined;
    const blind = firstLook || now - this.lastLook! > this.options.deadAfterMs;
    this.lastLook = now;
    if (blind) this.unlisted.clear();
    const live = new Set<string>();
    // Read once per look, and only when a worker is suspect: silent for a heartbeat (see connectionSilenceMs()).
    let names: Promise<Map<string, number> | undefined> | undefined;
    const gone = (worker: string) => this.connectionGone(worker, (names ??= this.deps.store.subscriberNames()));
    for (const [worker, beat] of beats) {
      const seen = this.seen.get(worker);
      if (blind || !seen || seen.seq !== beat.seq || worker === this.deps.workerId) {
        // How long to watch before judging: deadAfterMs. On this watcher's very first look (a worker started
        // after a whole fleet died), the age a beat already has (its writer's clock) counts toward it, so the
        // dead fleet's jobs move at once; but never less than two heartbeats watched here, so a live writer
        // (with a clock behind ours, say) beats again first. After a gap (a Redis pause), no such credit:
        // live workers may still be reconnecting.
        const age = firstLook ? Math.max(0, now - beat.at) : 0;
        // The connection rule counts silence from the beat itself: its age by its writer's clock, on a first
        // look whole, later at most a heartbeat (a new beat was written since the last look), so a clock
        // behind ours gains it no more than that.
        const silentFor = firstLook ? age : Math.min(this.options.heartbeatMs, Math.max(0, now - beat.at));
        this.seen.set(worker, { seq: beat.seq, since: now, patience: Math.max(2 * this.options.heartbeatMs + 100, this.options.deadAfterMs - age), silentFrom: now - silentFor });
        live.add(worker);
      } else if (act && now - seen.since > seen.patience) {
        await this.rescue(worker, beat, now - seen.since);
      } else if (act && now - seen.silentFrom > this.connectionSilenceMs() && (await gone(worker))) {
        await this.rescue(worker, beat, now - seen.since, 'its connection to Redis closed');
      } else {
        live.add(worker);
      }
    }
    for (const worker of this.seen.keys()) if (!beats.has(worker)) this.seen.delete(worker);
    return live;
  }

  /**
   * How long a beat must have stood still, as watched here, before a worker whose connection Redis closed
   * counts as dead: a heartbeat and a little (a live, connected worker beats within one). With the watch
   * every heartbeat, that judges a killed worker about a second after its death, not deadAfterMs later.
   */
  private connectionSilenceMs(): number {
    return this.options.heartbeatMs + 100;
  }

  /**
   * The lease holder died: rather than wait up to a lease term for its lease to lapse, a watcher that saw
   * its beat stand still and Redis close its connection takes the lease now (and acts on this
   * same look). Costs one GET, and only while some worker is silent.
   */
  private async takeLeaseFromDead(beats: Map<string, WorkerBeat>, leaseMs: number): Promise<boolean> {
    const now = Date.now();
    const silent = (worker: string) => {
      const seen = this.seen.get(worker);
      return seen !== undefined && seen.seq === beats.get(worker)?.seq && now - seen.silentFrom > this.connectionSilenceMs();
    };
    if (![...beats.keys()].some(silent)) return false;
    const holder = await this.deps.store.leaseHolder();
    if (holder === null || holder === this.deps.workerId || !silent(holder)) return false;
    if (!(await this.connectionGone(holder, this.deps.store.subscriberNames()))) return false;
    const taken = await this.deps.store.takeLease(holder, this.deps.workerId, leaseMs);
    if (taken) this.deps.logger.info('took the recovery lease from a dead worker', { deadWorker: holder });
    return taken;
  }

  /**
   * Whether Redis closed the worker's named connection (its abort subscription): the mark of a process
   * that died, which the kernel's closing of its sockets tells Redis at once. Only where the names can be
   * seen at all (this watcher's own connection must be among them: a proxy in between, say, may hide
   * them), and not for deadAfterMs after this watcher's own connection was made again: after a Redis
   * restart, a failover or a dropped link every connection is new, and live workers may still be
   * reconnecting. (A connection as old as this worker was never made again: a worker started to replace
   * a dead fleet may use the rule at once.)
   */
  private async connectionGone(worker: string, names: Promise<Map<string, number> | undefined>): Promise<boolean> {
    const seen = await names;
    const ownAge = seen?.get(this.deps.store.workerConnectionName(this.deps.workerId));
    if (ownAge === undefined) return false;
    // CLIENT LIST counts whole seconds: a connection up to a second younger than this worker is its first.
    const reconnected = ownAge * 1000 < Date.now() - this.startedAt - 1_000;
    if (reconnected && ownAge * 1000 < this.options.deadAfterMs) return false;
    return !seen!.has(this.deps.store.workerConnectionName(worker));
  }

  private async rescue(worker: string, beat: WorkerBeat, silentMs: number, why = 'it stopped beating'): Promise<void> {
    // All at once (each is a few round trips): a dead worker may hold its whole concurrency. Then the
    // jobs it fetched after its last beat, known by their lock tokens.
    const listed = await Promise.all(beat.jobs.map(([jobId, token]) => this.deps.queue.release(jobId, token)));
    const moved = [...beat.jobs.filter((_, i) => listed[i]).map(([jobId]) => jobId), ...(await this.deps.queue.releaseHeldBy(beat.fetchers ?? []))];
    // A moved job is fetched again at once, under a new lock, by a worker that lists it only at its next beat:
    // it must not count as unlisted since before the move, or the sweep would take it from that worker.
    for (const jobId of moved) this.unlisted.delete(jobId);
    await this.deps.store.forgetWorker(worker);
    this.seen.delete(worker);
    this.stats.deadWorkers++;
    this.stats.rescuedJobs += moved.length;
    this.deps.logger.warn('a worker is dead: its jobs are back in the queue', { deadWorker: worker, why, silentMs, jobs: moved.length, recovery: { ...this.stats } });
  }

  /**
   * Active jobs that no live worker has listed for two heartbeats (a live worker lists a job it fetched
   * within one) belong to nobody: a fetch whose reply was lost in a reconnect, or a job a worker took just
   * before it died. They go back to the queue now rather than when their locks lapse.
   */
  private async sweepOrphans(beats: Map<string, WorkerBeat>, live: Set<string>, act: boolean): Promise<void> {
    const listed = new Set<string>();
    for (const worker of live) for (const [jobId] of beats.get(worker)?.jobs ?? []) listed.add(jobId);
    // This worker's own jobs as they are now, not as its last beat had them (a busy loop may beat late).
    for (const [jobId] of this.deps.jobs()) listed.add(jobId);
    const now = Date.now();
    const active = new Set(await this.deps.queue.activeJobIds());
    for (const jobId of this.unlisted.keys()) if (!active.has(jobId) || listed.has(jobId)) this.unlisted.delete(jobId);
    const orphans: string[] = [];
    for (const jobId of active) {
      if (listed.has(jobId)) continue;
      const since = this.unlisted.get(jobId);
      if (since === undefined) this.unlisted.set(jobId, now);
      else if (act && now - since > 2 * this.options.heartbeatMs + 100) {
        this.unlisted.delete(jobId);
        orphans.push(jobId);
      }
    }
    const moved = (await Promise.all(orphans.map((jobId) => this.deps.queue.releaseOrphan(jobId)))).filter(Boolean).length;
    if (moved > 0) {
      this.stats.rescuedJobs += moved;
      this.deps.logger.warn('active jobs no live worker holds are back in the queue', { jobs: moved, recovery: { ...this.stats } });
    }
  }

  /** Checks runs with no progress for `reconcileAfterMs`. */
  private async reconcile(beats: Map<string, WorkerBeat>, live: Set<string>): Promise<void> {
    const before = Date.now() - this.options.reconcileAfterMs;
    for (const runId of await this.deps.store.staleRuns(before, RECONCILE_BATCH)) {
      try {
        await this.reconcileRun(runId, before, beats, live);
      } catch (err) {
        this.deps.logger.warn('cannot reconcile run', { runId, error: (err as Error).message });
      }
    }
  }

  private async reconcileRun(runId: string, before: number, beats: Map<string, WorkerBeat>, live: Set<string>): Promise<void> {
    const { store, queue } = this.deps;
    const view = await store.getRun(runId);
    // Ended, expired, or lost with a failover: nothing to repair (a client waiting on a lost run is told RUN_NOT_FOUND).
    if (!view || view.status !== 'running') return store.unindexRunning(runId);
    const last = (await store.lastEventAt(runId)) ?? view.createdAt ?? 0;
    if (last >= before) return store.touchRunning(runId, last);
    const graph = await this.deps.graph(view.version).catch(() => undefined);
    const firstStart = graph?.startNodes[0]?.id;
    const listed = (jobId: string) => [...live].some((worker) => (beats.get(worker)?.jobs ?? []).some(([id]) => id === jobId));
    const holdsRun = (worker: string | undefined) =>
      worker !== undefined && live.has(worker) && (beats.get(worker)?.jobs ?? []).some(([jobId]) => jobId.startsWith(`${runId}.`));
    // The run's deadline job, should a failover have lost it (it fails the run once the deadline passes).
    if (view.deadline !== undefined && view.version && !(await queue.holds(`${runId}.deadline`, listed))) {
      await queue.enqueueDeadline(runId, view.version, view.deadline);
    }
    const orphans: Array<{ nodeId: string; tag: string }> = [];
    const pending: string[] = [];
    let inFlight = 0;
    for (const [nodeId, node] of Object.entries(view.nodes)) {
      const jobId = nodeJobId(runId, nodeId);
      const tag = String(node.attempts);
      if (node.status === 'pending') pending.push(nodeId);
      if (node.status === 'waiting' || node.status === 'sleeping') {
        // Parked on purpose (no job while it waits): a signal or its delayed wake job finishes it. A timed
        // park whose wake job was lost (a failover) gets it again; one with no timeout waits for its signal.
        inFlight++;
        if (node.wakeAt !== undefined && view.version && !(await queue.holds(`${jobId}.wake${node.attempts}`, listed))) {
          await queue.enqueueWake(runId, view.version, nodeId, node.attempts, node.wakeAt);
          await this.repaired(runId, [nodeId], 'its wake job was lost');
        }
        continue;
      }
      if (node.status !== 'queued' && node.status !== 'running') continue;
      inFlight++;
      // A map node waits for its children (their ends resume it, and its progress events keep the run fresh).
      if (node.status === 'running' && node.fanOut && node.fanOut.running > 0) continue;
      if (node.status === 'running' && node.childRunId) {
        // A subflow node waits for its child run; once the child ended, a resume job finishes it.
        const child = await store.getStatus(node.childRunId);
        if (child !== undefined && !isTerminalRunStatus(child)) continue;
        if (await queue.holds(`${jobId}.${node.childRunId}`, listed)) continue;
        if (!view.version) continue;
        await this.deps.runs.notifyParent({ runId, nodeId, version: view.version }, node.childRunId);
        await this.repaired(runId, [nodeId], 'child run ended; its parent was not told');
        continue;
      }
      if (node.status === 'running' && holdsRun(node.worker)) continue;
      const carriers = [jobId, `${jobId}.repair${tag}`];
      if (node.status === 'queued' && node.attempts > 0) carriers.push(`${jobId}.retry${node.attempts}`);
      if (firstStart && firstStart !== nodeId) carriers.push(nodeJobId(runId, firstStart));
      let held = false;
      for (const id of carriers) if ((held = await queue.holds(id, listed))) break;
      if (!held) orphans.push({ nodeId, tag });
    }
    if (orphans.length > 0) {
      await queue.enqueueRepair(runId, view.version, orphans);
      await this.repaired(runId, orphans.map((o) => o.nodeId), 'no job or live worker held them');
    } else if (inFlight === 0 && pending.length > 0) {
      // Nothing queued or running, yet nodes left that nothing can make ready: the writes that would have
      // were lost. Fail the run clearly rather than let it wait forever.
      const error = new SwitchyardError(
        ErrorCodes.RUN_INCONSISTENT,
        `run ${runId} cannot go on: no node is queued or running, but ${pending.join(', ')} never became ready (state lost in a Redis failover?)`,
        { runId, nodeId: pending[0], retryable: false },
      );
      const ending = await store.failNode(runId, pending[0]!, serializeError(error));
      await this.deps.runs.afterEnding(ending, runId);
      this.stats.failedRuns++;
      this.deps.logger.error('run failed by the reconciler: its state is beyond repair', { runId, pending, recovery: { ...this.stats } });
      return store.unindexRunning(runId);
    }
    await store.touchRunning(runId, Date.now());
  }

  private async repaired(runId: string, nodeIds: string[], reason: string): Promise<void> {
    await this.deps.store.recordRepair(runId, nodeIds, reason);
    this.stats.repairedNodes += nodeIds.length;
    this.deps.logger.warn('run repaired: nodes enqueued again', { runId, nodes: nodeIds, reason, recovery: { ...this.stats } });
  }
}
