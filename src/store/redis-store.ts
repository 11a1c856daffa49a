import type { Redis, Cluster } from 'ioredis';
import type { Blueprint } from '../blueprint/schema.js';
import type { SerializedError } from '../errors.js';
import type { LuaNodeArgs, LuaTopology, NodeNeeds } from '../engine/graph.js';
import type { NodeView, RunView } from '../engine/run-view.js';
import type { NodeStatus, RunStatus } from '../engine/statuses.js';
import type { TokenUsage } from '../llm/types.js';
import { sumUsage } from '../llm/usage.js';
import { StoreKeys } from './keys.js';
import { cancelRunLua } from './lua/cancel-run-4.js';
import { completeNodeLua } from './lua/complete-node-4.js';
import { failNodeLua } from './lua/fail-node-4.js';
import { retryNodeLua } from './lua/retry-node-4.js';
import { startNodeLua } from './lua/start-node-4.js';
import { startRunLua } from './lua/start-run-4.js';
import { waitNodeLua } from './lua/wait-node-4.js';

export { sumUsage };

export type RedisClient = Redis | Cluster;

/** Script names carry a version so two deployed versions of Switchyard never run each other's scripts. */
const SCRIPTS = {
  sy2StartRun: startRunLua,
  sy2StartNode: startNodeLua,
  sy2CompleteNode: completeNodeLua,
  sy2FailNode: failNodeLua,
  sy2RetryNode: retryNodeLua,
  sy2CancelRun: cancelRunLua,
  sy2WaitNode: waitNodeLua,
} as const;
type ScriptName = keyof typeof SCRIPTS;
type Reply = Array<string | null | Reply | number>;

/** Where a child run reports back: the parent run's subflow node, and its blueprint version. */
export interface ParentLink {
  runId: string;
  nodeId: string;
  version: string;
}

/** What ending a run leaves to do: tell its parent, cancel its children. */
export interface RunEnding {
  parent?: ParentLink;
  children: string[];
}

export interface StartRunInput {
  runId: string;
  blueprintId: string;
  version: string;
  topology: LuaTopology;
  /** The topology as JSON when the caller has it serialised already. */
  topologyJson?: string;
  input: Record<string, unknown>;
  ttlSeconds: number;
  parent?: ParentLink;
}

/** Another start node claimed by a run's start job: to run now, or already completed (a redelivery). */
export type SiblingReply = ClaimedNode & { kind: 'run' } | { kind: 'done'; nodeId: string; readied: string[] };

export type StartNodeReply =
  | {
      kind: 'run';
      version: string;
      blueprintId: string;
      attempt: number;
      context: Record<string, unknown>;
      outputs: Record<string, unknown>;
      siblings: SiblingReply[];
    }
  | { kind: 'done'; readied: string[] }
  | { kind: 'ended'; runStatus: RunStatus; parent?: ParentLink }
  | { kind: 'skip'; reason: string };

/** What the run scripts need to know of a node (a CompiledNode has it). */
export interface StoreNode {
  id: string;
  index: number;
  needs: NodeNeeds;
  lua: LuaNodeArgs;
}

/** A node the completing worker claimed to run next, with what it needs. */
export interface ClaimedNode {
  nodeId: string;
  attempt: number;
  context: Record<string, unknown>;
  outputs: Record<string, unknown>;
}

export type CompleteNodeReply =
  | { kind: 'ok'; runStatus: RunStatus; ready: string[]; parent?: ParentLink; claimed: ClaimedNode[] }
  | { kind: 'stale'; runStatus: string }
  | { kind: 'duplicate'; nodeStatus: string };

/**
 * Run state in Redis. Each method that changes state is one Lua script call (one round trip); reads of a
 * whole run are one pipelined round trip. The store never talks to BullMQ.
 */
export class RedisStore {
  readonly keys: StoreKeys;

  constructor(readonly redis: RedisClient, prefix = 'sy') {
    this.keys = new StoreKeys(prefix);
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys: 4, lua });
    }
  }

  private call(script: ScriptName, runId: string, args: Array<string | number>): Promise<Reply> {
    const fn = (this.redis as unknown as Record<ScriptName, (...a: Array<string | number>) => Promise<Reply>>)[script];
    return fn.call(this.redis, ...this.keys.run(runId), runId, Date.now(), this.keys.runEnded(runId), this.keys.aborts(), ...args);
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
  async startRun(input: StartRunInput): Promise<{ created: boolean; version: string; status: RunStatus }> {
    const pairs: string[] = [];
    for (const [key, value] of Object.entries(input.input)) {
      if (value !== undefined) pairs.push(key, JSON.stringify(value));
    }
    const reply = await this.call('sy2StartRun', input.runId, [
      input.blueprintId,
      input.version,
      input.topologyJson ?? JSON.stringify(input.topology),
      input.ttlSeconds,
      input.parent ? JSON.stringify(input.parent) : '',
      input.topology.ids.length,
      input.topology.ids.filter((_, i) => input.topology.indeg[i] === 0).join(','),
      ...pairs,
    ]);
    if (reply[0] === 'created') return { created: true, version: input.version, status: 'running' };
    return { created: false, version: String(reply[1]), status: String(reply[2]) as RunStatus };
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
    const args: Array<string | number> = [node.id, node.index + 1, workerId, mode, node.lua.needs];
    for (const sibling of siblings) args.push(sibling.id, sibling.lua.needs);
    const reply = await this.call('sy2StartNode', runId, args);
    switch (reply[0]) {
      case 'run': {
        const claimed: SiblingReply[] = [];
        const flat = (reply[6] ?? []) as Reply;
        for (let i = 0; i + 4 < flat.length; i += 5) {
          const nodeId = String(flat[i + 1]);
          if (flat[i] === 'done') {
            claimed.push({ kind: 'done', nodeId, readied: flat[i + 2] ? String(flat[i + 2]).split(',') : [] });
            continue;
          }
          const needs = siblings.find((s) => s.id === nodeId)!.needs;
          claimed.push({
            kind: 'run',
            nodeId,
            attempt: Number(flat[i + 2]),
            context: decodeReply(flat[i + 3] as Reply, needs.context),
            outputs: decodeReply(flat[i + 4] as Reply, needs.outputs),
          });
        }
        return {
          kind: 'run',
          version: String(reply[1]),
          blueprintId: String(reply[2]),
          attempt: Number(reply[3]),
          context: decodeReply(reply[4] as Reply, node.needs.context),
          outputs: decodeReply(reply[5] as Reply, node.needs.outputs),
          siblings: claimed,
        };
      }
      case 'done':
        return { kind: 'done', readied: reply[1] ? String(reply[1]).split(',') : [] };
      case 'ended':
        return { kind: 'ended', runStatus: String(reply[1]) as RunStatus, ...parentField(reply[2]) };
      default:
        return { kind: 'skip', reason: String(reply[1]) };
    }
  }

  /**
   * Applies a node's completion; returns the nodes that became ready. With `claim` up to `claim.max` of
   * them are claimed for that worker in the same call, each with what it needs (`needsOf`).
   */
  async completeNode(
    runId: string,
    node: Pick<StoreNode, 'id' | 'index' | 'lua'>,
    result: { output?: unknown; action?: string; context?: Record<string, unknown>; meta?: Record<string, unknown> },
    taken: readonly boolean[],
    claim?: { workerId: string; max: number; needsOf: (nodeId: string) => NodeNeeds },
  ): Promise<CompleteNodeReply> {
    const args: Array<string | number> = [
      node.id,
      node.index + 1,
      result.output === undefined ? '' : JSON.stringify(result.output),
      taken.map((t) => (t ? '1' : '0')).join(''),
      result.action ?? '',
      result.meta === undefined ? '' : JSON.stringify(result.meta),
      claim?.workerId ?? '',
      claim?.max ?? 0,
      ...node.lua.targets,
    ];
    for (const [key, value] of Object.entries(result.context ?? {})) {
      if (value !== undefined) args.push(key, JSON.stringify(value));
    }
    const reply = await this.call('sy2CompleteNode', runId, args);
    if (reply[0] === 'stale') return { kind: 'stale', runStatus: String(reply[1]) };
    if (reply[0] === 'duplicate') return { kind: 'duplicate', nodeStatus: String(reply[1]) };
    const ready = reply[3] ? String(reply[3]).split(',') : [];
    const claimed: ClaimedNode[] = [];
    for (let i = 4; i + 3 < reply.length; i += 4) {
      const nodeId = String(reply[i]);
      const needs = claim!.needsOf(nodeId);
      claimed.push({
        nodeId,
        attempt: Number(reply[i + 1]),
        context: decodeReply(reply[i + 2] as Reply, needs.context),
        outputs: decodeReply(reply[i + 3] as Reply, needs.outputs),
      });
    }
    return { kind: 'ok', runStatus: String(reply[1]) as RunStatus, ready, claimed, ...parentField(reply[2]) };
  }

  /** Records a failed attempt that will be retried after `delayMs`. */
  async retryNode(runId: string, nodeId: string, error: SerializedError, delayMs: number): Promise<void> {
    await this.call('sy2RetryNode', runId, [nodeId, JSON.stringify(error), delayMs]);
  }

  /** Fails the node and the run; undefined when the run had already ended or the node finished. */
  async failNode(runId: string, nodeId: string, error: SerializedError): Promise<RunEnding | undefined> {
    const reply = await this.call('sy2FailNode', runId, [nodeId, JSON.stringify(error), JSON.stringify({ ...error, nodeId })]);
    return reply[0] === 'failed' ? ending(reply) : undefined;
  }

  /** Cancels a running run. */
  async cancelRun(
    runId: string,
    reason = 'cancelled by request',
  ): Promise<{ outcome: 'cancelled'; ending: RunEnding } | { outcome: 'not-running'; status: RunStatus } | { outcome: 'missing' }> {
    const reply = await this.call('sy2CancelRun', runId, [reason]);
    if (reply[0] === 'cancelled') return { outcome: 'cancelled', ending: ending(reply) };
    if (reply[0] === 'missing') return { outcome: 'missing' };
    return { outcome: 'not-running', status: String(reply[1]) as RunStatus };
  }

  /** Records that a subflow node now waits for its child run (and frees its worker slot). */
  async waitNode(runId: string, nodeId: string, childRunId: string): Promise<{ outcome: 'waiting' | 'not-running' } | { outcome: 'stale'; runStatus: string }> {
    const reply = await this.call('sy2WaitNode', runId, [nodeId, childRunId]);
    if (reply[0] === 'stale') return { outcome: 'stale', runStatus: String(reply[1]) };
    return { outcome: reply[0] === 'waiting' ? 'waiting' : 'not-running' };
  }

  /** The run's status alone (cheap); undefined when there is no such run. */
  async getStatus(runId: string): Promise<RunStatus | undefined> {
    const status = await this.redis.hget(this.keys.run(runId)[0], 'status');
    return (status ?? undefined) as RunStatus | undefined;
  }

  /** The whole run in one round trip; undefined when there is no such run (or it expired). */
  async getRun(runId: string): Promise<RunView | undefined> {
    const [stateKey, ctxKey, outKey] = this.keys.run(runId);
    // Three commands written back to back: one round trip, without building an ioredis pipeline (which
    // copies every script defined on the connection, BullMQ's included, each time).
    const [state, ctx, out] = await Promise.all([this.redis.hgetall(stateKey), this.redis.hgetall(ctxKey), this.redis.hgetall(outKey)]);
    if (!state.status) return undefined;
    const topology = JSON.parse(state.topo ?? '{"ids":[]}') as LuaTopology;
    const nodes: Record<string, NodeView> = {};
    for (const id of topology.ids) {
      const field = (name: string) => state[`${id}.${name}`];
      const view: NodeView = { status: (field('status') ?? 'pending') as NodeStatus, attempts: Number(field('attempts') ?? 0) };
      const error = field('error');
      if (error) view.error = JSON.parse(error) as SerializedError;
      if (field('startedAt')) view.startedAt = Number(field('startedAt'));
      if (field('endedAt')) view.endedAt = Number(field('endedAt'));
      if (field('worker')) view.worker = field('worker');
      if (field('child')) view.childRunId = field('child');
      const meta = field('meta');
      if (meta) {
        const { usage, ...rest } = JSON.parse(meta) as { usage?: TokenUsage } & Record<string, unknown>;
        if (usage) view.usage = usage;
        if (Object.keys(rest).length) view.meta = rest;
      }
      nodes[id] = view;
    }
    const view: RunView = {
      runId,
      blueprintId: state.blueprintId ?? '',
      version: state.version ?? '',
      status: state.status as RunStatus,
      context: parseValues(ctx),
      outputs: parseValues(out),
      nodes,
      createdAt: Number(state.createdAt),
    };
    if (state.endedAt) view.endedAt = Number(state.endedAt);
    if (state.error) view.error = JSON.parse(state.error) as RunView['error'];
    if (state.parent) view.parent = JSON.parse(state.parent) as ParentLink;
    const usage = sumUsage(Object.values(nodes));
    if (usage) view.usage = usage;
    return view;
  }

  /** The run's timeline (oldest first). */
  async getEvents(runId: string, count = 1000): Promise<Array<Record<string, string> & { id: string }>> {
    const entries = await this.redis.xrange(this.keys.run(runId)[3], '-', '+', 'COUNT', count);
    return entries.map(([id, fields]) => {
      const event: Record<string, string> & { id: string } = Object.create(null);
      event.id = id;
      for (let i = 0; i + 1 < fields.length; i += 2) event[fields[i]!] = fields[i + 1]!;
      return { ...event };
    });
  }
}

function parentField(value: Reply[number] | undefined): { parent?: ParentLink } {
  return value ? { parent: JSON.parse(String(value)) as ParentLink } : {};
}

function ending(reply: Reply): RunEnding {
  return { ...parentField(reply[1]), children: (reply.slice(2) as string[]).map(String) };
}

/** Null-prototype object from JSON-valued hash fields, so no key (not even `__proto__`) can pollute. */
function parseValues(fields: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const [key, json] of Object.entries(fields)) out[key] = JSON.parse(json);
  return { ...out };
}

function decodeReply(reply: Reply, names: readonly string[] | '*'): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  if (names === '*') {
    for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = JSON.parse(String(reply[i + 1]));
  } else {
    names.forEach((name, i) => {
      const value = reply[i];
      if (value !== null && value !== undefined) out[name] = JSON.parse(String(value));
    });
  }
  return out;
}
