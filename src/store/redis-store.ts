import type { Blueprint } from '../blueprint/schema.js';
import type { SerializedError } from '../errors.js';
import type { RunView } from '../types/run-view.js';
import type { RunStatus } from '../types/statuses.js';
import { StoreKeys } from './keys.js';
import { LUA_SCRIPTS } from './lua/scripts.generated.js';
import { RECOVERY_SCRIPTS } from './lua/recovery/scripts.generated.js';
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from '../types/redis-client.js';
import { parseParentLink, readParkedNode, readRun, readRunPins, readRunStatus, type BlueprintPins, type ParentLink, type ParkedNodeState } from './run-state.js';
import { readRunEvents, type RunEvent } from './run-events.js';
import {
  encodeCancelRun,
  encodeCollectChild,
  encodeCompleteNode,
  encodeFailNode,
  encodeParkNode,
  encodeRedriveRun,
  encodeReleaseNode,
  encodeRetryNode,
  encodeStartNode,
  encodeStartFanOut,
  encodeStartRun,
  encodeWaitNode,
  type CollectedChild,
  type FanOutStart,
  type NodeNeeds,
  type NodeResult,
  type ParkArgs,
  type ScriptCall,
  type StartRunInput,
  type StoreNode,
} from './script-args.js';
import {
  decodeCancelRun,
  decodeCompleteNode,
  decodeFailNode,
  decodeParkNode,
  decodeFanOut,
  decodeStartNode,
  decodeStartRun,
  decodeRedriveRun,
  decodeReleaseNode,
  decodeTimeOutRun,
  decodeWaitNode,
  type CancelRunReply,
  type CompleteNodeReply,
  type ParkNodeReply,
  type RedriveRunReply,
  type FanOutReply,
  type RunEnding,
  type ScriptReply,
  type StartNodeReply,
  type StartRunReply,
  type ReleaseNodeReply,
  type WaitNodeReply,
} from './script-replies.js';

export type { RedisClient } from '../types/redis-client.js';

/** What a worker's heartbeat says: it is alive (`seq` moves on) and which jobs it holds, with their lock tokens. */
export interface WorkerBeat {
  /** Goes up by one with every beat: watchers judge liveness by whether it moves, not by clocks or TTLs. */
  seq: number;
  /** Epoch ms of the beat (informational). */
  at: number;
  /** [job id, lock token] of each BullMQ job the worker is processing. */
  jobs: Array<[jobId: string, token: string]>;
  /**
   * The ids of the worker's BullMQ workers (one per queue shard): every lock token they take is
   * `<id>:<n>`, so a dead worker's jobs are known by their tokens even when its last beat did not list them.
   */
  fetchers?: string[];
}
export { sumUsage } from '../types/usage.js';
export type { BlueprintPins, ParentLink, ParkedNodeState } from './run-state.js';
export type { CollectedChild, FanOutStart, NodeScriptArgs, ParkArgs, StartRunInput, StoreNode } from './script-args.js';
export type { ClaimedNode, CompleteNodeReply, RedriveRunReply, FanOutChild, FanOutReply, RunEnding, SiblingReply, StartNodeReply } from './script-replies.js';
export { encodeNeeds } from './script-args.js';

/**
 * The run scripts (and recovery's lease hand-over) under the names they are registered by. Names carry a version so two deployed versions
 * of Switchyard never run each other's scripts; the script text comes from src/store/lua/*.lua.
 */
const SCRIPTS = {
  sy2StartRun: LUA_SCRIPTS['start-run'],
  sy2StartNode: LUA_SCRIPTS['start-node'],
  sy2CompleteNode: LUA_SCRIPTS['complete-node'],
  sy2FailNode: LUA_SCRIPTS['fail-node'],
  sy2RetryNode: LUA_SCRIPTS['retry-node'],
  sy2CancelRun: LUA_SCRIPTS['cancel-run'],
  sy2WaitNode: LUA_SCRIPTS['wait-node'],
  sy2ReleaseNode: LUA_SCRIPTS['release-node'],
  sy2StartFanOut: LUA_SCRIPTS['start-fan-out'],
  sy2CollectChild: LUA_SCRIPTS['collect-child'],
  sy2RedriveRun: LUA_SCRIPTS['redrive-run'],
  sy2TakeLease: RECOVERY_SCRIPTS['take-lease'],
} as const;
type ScriptName = keyof typeof SCRIPTS;

/**
 * Run state in Redis. Each method that changes state is one Lua script call (one round trip); reads of a
 * whole run are one pipelined round trip. The store never talks to BullMQ.
 */
export class RedisStore {
  readonly keys: StoreKeys;

  constructor(readonly redis: RedisClient, prefix = 'sy') {
    this.keys = new StoreKeys(prefix);
    for (const [name, { numberOfKeys, lua }] of Object.entries(SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
    }
  }

  /** Runs a script with a call encoded by src/store/script-args.ts. */
  private call(script: ScriptName, args: ScriptCall): Promise<ScriptReply> {
    const fn = (this.redis as unknown as Record<ScriptName, (...a: ScriptCall) => Promise<ScriptReply>>)[script];
    return fn.apply(this.redis, args);
  }

  /** Stores a blueprint version by content hash; its TTL outlives every run that can use it. */
  async saveBlueprint(version: string, blueprint: Blueprint, ttlSeconds: number): Promise<void> {
    await this.redis.set(this.keys.blueprint(version), JSON.stringify(blueprint), 'EX', ttlSeconds + 86_400);
  }

  /**
   * A blueprint version's JSON: a run's pinned copy, else the registry's (stored blueprints never
   * expire), so any worker can run any stored version. Undefined when neither is stored.
   */
  async loadBlueprint(version: string): Promise<unknown | undefined> {
    const json = (await this.redis.get(this.keys.blueprint(version))) ?? (await this.redis.get(this.keys.storedBlueprint(version)));
    return json === null ? undefined : JSON.parse(json);
  }

  /** The blueprint versions the run pinned for its subflows (one HGET); undefined when it has none. */
  readPins(runId: string): Promise<{ json: string; pins: BlueprintPins } | undefined> {
    return readRunPins(this.redis, this.keys, runId);
  }

  /** Creates the run (start nodes queued) or finds the existing one with that id. */
  async startRun(input: StartRunInput): Promise<StartRunReply> {
    return decodeStartRun(await this.call('sy2StartRun', encodeStartRun(this.keys, input)), input.version);
  }

  /**
   * Claims a queued node and reads the context keys and outputs it needs (as its blueprint version's
   * topology says). With `mode: 'resume'` it only reads, for a running subflow node whose child run ended.
   * `siblings` (a run's other start nodes) are claimed in the same call.
   */
  async startNode(
    runId: string,
    node: StoreNode,
    workerId: string,
    mode: 'start' | 'resume' = 'start',
    siblings: readonly StoreNode[] = [],
  ): Promise<StartNodeReply> {
    const reply = await this.call('sy2StartNode', encodeStartNode(this.keys, runId, node, workerId, mode, siblings));
    return decodeStartNode(reply, node, siblings);
  }

  /**
   * Applies a node's completion; returns the nodes that became ready. With `claim` up to `claim.max` of
   * them are claimed for that worker in the same call, each with what it needs (`needsOf`).
   */
  async completeNode(
    runId: string,
    node: Pick<StoreNode, 'id' | 'index' | 'lua'>,
    result: NodeResult,
    taken: readonly boolean[],
    claim?: { workerId: string; max: number; needsOf: (nodeId: string) => NodeNeeds },
  ): Promise<CompleteNodeReply> {
    const reply = await this.call('sy2CompleteNode', encodeCompleteNode(this.keys, runId, node, result, taken, claim));
    return decodeCompleteNode(reply, claim?.needsOf);
  }

  /** Records a failed attempt that will be retried after `delayMs`. */
  /**
   * Gives back nodes this worker claimed but will not finish (it is stopping): those still running for it
   * go back to queued with their attempt undone. The caller enqueues their jobs.
   */
  async releaseNodes(runId: string, workerId: string, nodeIds: readonly string[]): Promise<ReleaseNodeReply> {
    return decodeReleaseNode(await this.call('sy2ReleaseNode', encodeReleaseNode(this.keys, runId, workerId, nodeIds)));
  }

  async retryNode(runId: string, nodeId: string, error: SerializedError, delayMs: number): Promise<void> {
    await this.call('sy2RetryNode', encodeRetryNode(this.keys, runId, nodeId, error, delayMs));
  }

  /** Fails the node and the run; undefined when the run had already ended or the node finished. */
  async failNode(runId: string, nodeId: string, error: SerializedError): Promise<RunEnding | undefined> {
    return decodeFailNode(await this.call('sy2FailNode', encodeFailNode(this.keys, runId, nodeId, error)));
  }

  /** Cancels a running run. */
  async cancelRun(runId: string, reason = 'cancelled by request'): Promise<CancelRunReply> {
    return decodeCancelRun(await this.call('sy2CancelRun', encodeCancelRun(this.keys, runId, reason)));
  }

  /**
   * Puts a failed or cancelled run back to running: done nodes stay done, the rest are reset (or, for
   * subflow/map/loop nodes with child runs, wait for those children again). The caller enqueues `ready`
   * and redrives `children`.
   */
  async redriveRun(runId: string): Promise<RedriveRunReply> {
    return decodeRedriveRun(await this.call('sy2RedriveRun', encodeRedriveRun(this.keys, runId)));
  }

  /**
   * Records that a subflow node now waits for its child run (and frees its worker slot); `index` for one
   * of a node's children one after another (a loop's iteration).
   */
  async waitNode(runId: string, nodeId: string, childRunId: string, index?: number): Promise<WaitNodeReply> {
    return decodeWaitNode(await this.call('sy2WaitNode', encodeWaitNode(this.keys, runId, nodeId, childRunId, index)));
  }

  /** A running node fans out to child runs: stores their inputs; returns the ones to start now (again, for a redelivery). */
  async startFanOut(runId: string, nodeId: string, fanOut: FanOutStart): Promise<FanOutReply> {
    return decodeFanOut(await this.call('sy2StartFanOut', encodeStartFanOut(this.keys, runId, nodeId, fanOut)));
  }

  /** Records one ended child of a fanning-out node; returns what follows: children to start, all values, or a halt. */
  async collectChild(runId: string, nodeId: string, child: CollectedChild): Promise<FanOutReply> {
    return decodeFanOut(await this.call('sy2CollectChild', encodeCollectChild(this.keys, runId, nodeId, child)));
  }

  /**
   * Parks a running wait or sleep node (status `waiting` or `sleeping`, with its wake time, prompt and
   * actions) and frees its worker slot; the caller adds the wake job for a timed park.
   */
  async parkNode(runId: string, nodeId: string, park: ParkArgs): Promise<ParkNodeReply> {
    return decodeParkNode(await this.call('sy2WaitNode', encodeParkNode(this.keys, runId, nodeId, park)));
  }

  /** A parked node and what its outgoing conditions read, for its signal or wake job (one round trip). */
  readParked(runId: string, node: Pick<StoreNode, 'id' | 'needs'>): Promise<ParkedNodeState> {
    return readParkedNode(this.redis, this.keys, runId, node.id, node.needs);
  }

  /**
   * Fails a running run that passed its deadline (RUN_TIMEOUT): unfinished nodes are cancelled and running
   * ones told to abort; undefined when the run had already ended.
   */
  async timeOutRun(runId: string, error: SerializedError): Promise<RunEnding | undefined> {
    return decodeTimeOutRun(await this.call('sy2CancelRun', encodeCancelRun(this.keys, runId, 'deadline passed', error)));
  }

  /** The run's status alone (cheap); undefined when there is no such run. */
  getStatus(runId: string): Promise<RunStatus | undefined> {
    return readRunStatus(this.redis, this.keys, runId);
  }

  /** The whole run in one round trip; undefined when there is no such run (or it expired). */
  getRun(runId: string): Promise<RunView | undefined> {
    return readRun(this.redis, this.keys, runId);
  }

  /**
   * Adds a new run to the index of running runs (a separate command after start-run: the index has its
   * own slot). NX: a run started again keeps its place.
   */
  async indexRunning(runId: string, at: number): Promise<void> {
    await this.redis.zadd(this.keys.runningRuns(), 'NX', at, runId);
  }

  /** Up to `limit` indexed runs last seen progressing before `before` (epoch ms), oldest first. */
  staleRuns(before: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.runningRuns(), '-inf', `(${before}`, 'LIMIT', 0, limit);
  }

  /** Records that an indexed run was seen progressing (or checked) at `at`; XX: never re-adds an ended one. */
  async touchRunning(runId: string, at: number): Promise<void> {
    await this.redis.zadd(this.keys.runningRuns(), 'XX', at, runId);
  }

  /** Drops an ended (or lost) run from the index. */
  async unindexRunning(runId: string): Promise<void> {
    await this.redis.zrem(this.keys.runningRuns(), runId);
  }

  /** When the run last changed: its newest event's time (stream ids are epoch ms); undefined with no event. */
  async lastEventAt(runId: string): Promise<number | undefined> {
    const [last] = await this.redis.xrevrange(this.keys.runKeys(runId).events, '+', '-', 'COUNT', 1);
    return last ? Number(last[0].split('-')[0]) : undefined;
  }

  /** Appends `run.repaired` to the run's timeline: the reconciler enqueued `nodeIds` again. */
  async recordRepair(runId: string, nodeIds: readonly string[], reason: string): Promise<void> {
    // Same capped stream and field layout as the scripts' `emit` (src/store/lua/includes/emit.lua).
    await this.redis.xadd(this.keys.runKeys(runId).events, 'MAXLEN', '~', 1000, '*', 'type', 'run.repaired', 'at', Date.now(), 'nodes', nodeIds.join(','), 'reason', reason);
  }

  /** Writes this worker's heartbeat (one HSET, whatever it holds). */
  async beat(workerId: string, beat: WorkerBeat): Promise<void> {
    await this.redis.hset(this.keys.workers(), workerId, JSON.stringify(beat));
  }

  /**
   * The name a worker's own long-lived connection (its abort subscription) carries with CLIENT SETNAME, so
   * that a watcher can see the process is gone the moment Redis closes that connection. Names may not hold
   * spaces: anything outside [A-Za-z0-9._:-] becomes '_'.
   */
  workerConnectionName(workerId: string): string {
    return `${this.keys.prefix}:worker:${workerId}`.replace(/[^\w.:-]/g, '_');
  }

  /**
   * The named publish/subscribe connections Redis holds now, each with its age in seconds (CLIENT LIST
   * TYPE pubsub; on a Cluster, of every master, as a worker's subscription is on one of them, named
   * `ioredis-cluster(subscriber):<name>` by ioredis); undefined where that cannot be told (CLIENT LIST
   * refused, a master not answering).
   */
  async subscriberNames(): Promise<Map<string, number> | undefined> {
    try {
      const servers: Redis[] = this.redis.isCluster ? (this.redis as Cluster).nodes('master') : [this.redis as Redis];
      const lists = await Promise.all(servers.map(async (server) => String(await server.call('CLIENT', 'LIST', 'TYPE', 'pubsub'))));
      const names = new Map<string, number>();
      for (const line of lists.join('\n').split('\n')) {
        const name = / name=(\S+)/.exec(line)?.[1]?.replace(/^ioredis-cluster\(subscriber\):/, '');
        if (name) names.set(name, Number(/ age=(\d+)/.exec(line)?.[1] ?? 0));
      }
      return names;
    } catch {
      return undefined;
    }
  }

  /** Every worker's last heartbeat, by worker id (entries that do not parse are left out). */
  async readBeats(): Promise<Map<string, WorkerBeat>> {
    const all = await this.redis.hgetall(this.keys.workers());
    const beats = new Map<string, WorkerBeat>();
    for (const [id, json] of Object.entries(all)) {
      try {
        beats.set(id, JSON.parse(json) as WorkerBeat);
      } catch {
        // not ours to judge; a later beat overwrites it
      }
    }
    return beats;
  }

  /** Removes a worker's heartbeat (it stopped, or its jobs were taken back). */
  async forgetWorker(workerId: string): Promise<void> {
    await this.redis.hdel(this.keys.workers(), workerId);
  }

  /**
   * Takes or keeps the recovery lease for `ttlMs`; true while `owner` holds it. Two round trips at most and
   * not atomic: a lease that lapses between them can be held by two workers for one term, which is
   * harmless (everything the holder does is idempotent); the lease only keeps the work from multiplying.
   */
  async holdLease(owner: string, ttlMs: number): Promise<boolean> {
    const key = this.keys.recoveryLease();
    // GET first: the holder renews with GET + PEXPIRE, the others only GET (one command per watch).
    const holder = await this.redis.get(key);
    if (holder === owner) return (await this.redis.pexpire(key, ttlMs)) === 1 || this.holdLease(owner, ttlMs);
    if (holder !== null) return false;
    return (await this.redis.set(key, owner, 'PX', ttlMs, 'NX')) === 'OK';
  }

  /** Who holds the recovery lease now, if anyone. */
  leaseHolder(): Promise<string | null> {
    return this.redis.get(this.keys.recoveryLease());
  }

  /**
   * Takes the recovery lease from `from` (a holder known dead) for `to`, for `ttlMs`; true when taken.
   * Compare and set (take-lease-1.lua): of watchers that all saw the holder die, one takes it.
   */
  async takeLease(from: string, to: string, ttlMs: number): Promise<boolean> {
    return Number(await this.call('sy2TakeLease', [this.keys.recoveryLease(), from, to, ttlMs])) === 1;
  }

  /** The run's parent link (a child run's subflow node); undefined for a run with none (or no such run). */
  async getParent(runId: string): Promise<ParentLink | undefined> {
    const json = await this.redis.hget(this.keys.runKeys(runId).state, 'parent');
    return json ? parseParentLink(json) : undefined;
  }

  /** The run's timeline (oldest first), at most `count` events. */
  getEvents(runId: string, count = 1000): Promise<RunEvent[]> {
    return readRunEvents(this.redis, this.keys.runKeys(runId).events, undefined, count);
  }
}
