import type { Blueprint } from '../blueprint/schema.js';
import type { SerializedError } from '../errors.js';
import type { RunView } from '../types/run-view.js';
import type { RunStatus } from '../types/statuses.js';
import { StoreKeys } from './keys.js';
import { LUA_SCRIPTS } from './lua/scripts.generated.js';
import type { RedisClient } from '../types/redis-client.js';
import { parseParentLink, readRun, readRunStatus, type ParentLink } from './run-state.js';
import { readRunEvents, type RunEvent } from './run-events.js';
import {
  encodeCancelRun,
  encodeCompleteNode,
  encodeFailNode,
  encodeRetryNode,
  encodeStartNode,
  encodeStartRun,
  encodeWaitNode,
  type NodeNeeds,
  type NodeResult,
  type ScriptCall,
  type StartRunInput,
  type StoreNode,
} from './script-args.js';
import {
  decodeCancelRun,
  decodeCompleteNode,
  decodeFailNode,
  decodeStartNode,
  decodeStartRun,
  decodeWaitNode,
  type CancelRunReply,
  type CompleteNodeReply,
  type RunEnding,
  type ScriptReply,
  type StartNodeReply,
  type StartRunReply,
  type WaitNodeReply,
} from './script-replies.js';

export type { RedisClient } from '../types/redis-client.js';
export { sumUsage } from '../types/usage.js';
export type { ParentLink } from './run-state.js';
export type { NodeScriptArgs, StartRunInput, StoreNode } from './script-args.js';
export type { ClaimedNode, CompleteNodeReply, RunEnding, SiblingReply, StartNodeReply } from './script-replies.js';

/**
 * The run scripts under the names they are registered by. Names carry a version so two deployed versions
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

  async loadBlueprint(version: string): Promise<unknown | undefined> {
    const json = await this.redis.get(this.keys.blueprint(version));
    return json === null ? undefined : JSON.parse(json);
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

  /** Records that a subflow node now waits for its child run (and frees its worker slot). */
  async waitNode(runId: string, nodeId: string, childRunId: string): Promise<WaitNodeReply> {
    return decodeWaitNode(await this.call('sy2WaitNode', encodeWaitNode(this.keys, runId, nodeId, childRunId)));
  }

  /** The run's status alone (cheap); undefined when there is no such run. */
  getStatus(runId: string): Promise<RunStatus | undefined> {
    return readRunStatus(this.redis, this.keys, runId);
  }

  /** The whole run in one round trip; undefined when there is no such run (or it expired). */
  getRun(runId: string): Promise<RunView | undefined> {
    return readRun(this.redis, this.keys, runId);
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
