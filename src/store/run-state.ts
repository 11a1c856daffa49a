import type { SerializedError } from '../errors.js';
import type { NodeView, RunView, WaitingNode } from '../types/run-view.js';
import { NodeStatuses, type NodeStatus, type RunStatus } from '../types/statuses.js';
import type { TokenUsage } from '../types/usage.js';
import { sumUsage } from '../types/usage.js';
import type { StoreKeys } from './keys.js';
import type { RedisClient } from '../types/redis-client.js';

/**
 * The one reader of a run's stored fields outside the run scripts. The state hash holds the run's own
 * fields (status, blueprintId, version, topo, remaining, createdAt, endedAt, ttl, parent, pins, error,
 * cancelReason, deadline, redrives) and each node's as `<nodeId>.<field>` (status, arrived, taken, attempts, error,
 * startedAt, endedAt, worker, readied, meta, child, childIndex, children, a fanning-out node's fan*
 * fields, and for a parked node since, wake, prompt, actions, wakeAction); a node without a status is
 * pending. The scripts that write them
 * are src/store/lua (the layout is described in lua/includes/run-context.lua).
 */

/**
 * The run-time topology stored with each run (the `topo` field) and read by the run scripts: node ids,
 * join strategy, in-degree and the targets of each node's outgoing edges, 1-based (Lua), in edge order.
 */
export interface RunTopology {
  ids: string[];
  any: number[];
  indeg: number[];
  out: number[][];
  /** What each node reads: [context keys or '*', output node ids or '*']. */
  needs: Array<[readonly string[] | '*', readonly string[] | '*']>;
}

/** Where a child run reports back: the parent run's subflow node, and its blueprint version. */
export interface ParentLink {
  runId: string;
  nodeId: string;
  version: string;
  /** Which of the node's children this is (a map's item index, a loop's iteration). */
  index?: number;
  /** The parent run's queue shard (absent: 0), where its resume job goes. */
  shard?: number;
  /** The parent run's priority, which its resume job carries. */
  priority?: number;
}

/** A run's identity and first nodes, from its state hash alone. */
export interface RunHead {
  blueprintId: string;
  /** The blueprint version (content hash); '' when the run does not exist. */
  version: string;
  /** The nodes without incoming edges, queued when the run started. */
  startNodes: string[];
}

/** One run in a tenant's list, from its state hash alone (context and outputs are not read). */
export interface RunSummary {
  runId: string;
  blueprintId: string;
  status: RunStatus;
  createdAt: number;
  endedAt?: number;
  /** For ended runs: endedAt - createdAt. */
  durationMs?: number;
  /** Tokens used by the run's LLM nodes (not counting child runs). */
  usage?: TokenUsage;
  /** Node counts by state. */
  nodes: Partial<Record<NodeStatus, number>>;
}

/** The stored topology; an empty one when the field is missing. */
export function parseTopology(json: string | null | undefined): RunTopology {
  return JSON.parse(json ?? '{"ids":[]}') as RunTopology;
}

/** The nodes a run starts with: those without incoming edges. */
export function startNodesOf(topology: Pick<RunTopology, 'ids' | 'indeg'>): string[] {
  return topology.ids.filter((_, i) => topology.indeg[i] === 0);
}

/** The run's status alone (one HGET); undefined when there is no such run (or it expired). */
export async function readRunStatus(redis: RedisClient, keys: StoreKeys, runId: string): Promise<RunStatus | undefined> {
  const status = await redis.hget(keys.runKeys(runId).state, 'status');
  return (status ?? undefined) as RunStatus | undefined;
}

/** The run's blueprint, version and start nodes (one HMGET); blank fields when there is no such run. */
export async function readRunHead(redis: RedisClient, keys: StoreKeys, runId: string): Promise<RunHead> {
  const [blueprintId, version, topo] = await redis.hmget(keys.runKeys(runId).state, 'blueprintId', 'version', 'topo');
  return { blueprintId: blueprintId ?? '', version: version ?? '', startNodes: topo ? startNodesOf(parseTopology(topo)) : [] };
}

/** The blueprint id and version (content hash) a run executes; nulls when it has none (or is gone). */
export async function readRunBlueprint(redis: RedisClient, keys: StoreKeys, runId: string): Promise<{ blueprintId: string | null; version: string | null }> {
  const [blueprintId = null, version = null] = await redis.hmget(keys.runKeys(runId).state, 'blueprintId', 'version');
  return { blueprintId, version };
}

/** Blueprint id -> version (content hash): the blueprints a run's subflows start, pinned when the run started. */
export type BlueprintPins = Readonly<Record<string, string>>;

/**
 * The run's pins as stored (the `pins` field, JSON): undefined when the run has none (its blueprint calls
 * no other, or it started before runs pinned their blueprints), or when the run does not exist.
 */
export async function readRunPins(redis: RedisClient, keys: StoreKeys, runId: string): Promise<{ json: string; pins: BlueprintPins } | undefined> {
  const json = await redis.hget(keys.runKeys(runId).state, 'pins');
  return json ? { json, pins: parsePins(json) } : undefined;
}

/** Parses a stored `pins` field; malformed entries are left out (a child then reports its blueprint missing). */
export function parsePins(json: string): BlueprintPins {
  const pins: Record<string, string> = Object.create(null);
  const parsed: unknown = JSON.parse(json);
  if (typeof parsed === 'object' && parsed !== null) {
    for (const [id, version] of Object.entries(parsed)) if (typeof version === 'string') pins[id] = version;
  }
  return pins;
}

/** The whole run in one round trip; undefined when there is no such run (or it expired). */
export async function readRun(redis: RedisClient, keys: StoreKeys, runId: string): Promise<RunView | undefined> {
  const { state, ctx, outputs } = keys.runKeys(runId);
  // Three commands written back to back: one round trip, without building an ioredis pipeline (which
  // copies every script defined on the connection, BullMQ's included, each time).
  const [stateFields, ctxFields, outFields] = await Promise.all([redis.hgetall(state), redis.hgetall(ctx), redis.hgetall(outputs)]);
  return parseRunView(runId, stateFields, ctxFields, outFields);
}

/** A run as users see it, from its three hashes (HGETALL replies); undefined when the run does not exist. */
export function parseRunView(
  runId: string,
  state: Record<string, string>,
  ctx: Record<string, string>,
  out: Record<string, string>,
): RunView | undefined {
  if (!state.status) return undefined;
  const topology = parseTopology(state.topo);
  // Null prototype: node ids may be "__proto__" or "constructor" (copied to a plain object below).
  const byId: Record<string, NodeView> = Object.create(null);
  const waiting: WaitingNode[] = [];
  for (const id of topology.ids) {
    const field = (name: string) => state[`${id}.${name}`];
    const view: NodeView = { status: (field('status') ?? 'pending') as NodeStatus, attempts: Number(field('attempts') ?? 0) };
    const error = field('error');
    if (error) view.error = JSON.parse(error) as SerializedError;
    if (field('startedAt')) view.startedAt = Number(field('startedAt'));
    if (field('endedAt')) view.endedAt = Number(field('endedAt'));
    if (field('worker')) view.worker = field('worker');
    if (field('child')) view.childRunId = field('child');
    if (view.status === 'waiting' || view.status === 'sleeping') {
      const wake = field('wake');
      if (wake) view.wakeAt = Number(wake);
      if (view.status === 'waiting') {
        const actions = field('actions');
        waiting.push({
          nodeId: id,
          prompt: field('prompt') ?? '',
          since: Number(field('since') ?? 0),
          ...(wake ? { timeoutAt: Number(wake) } : {}),
          actions: actions ? actions.split(',') : [],
        });
      }
    }
    if (field('children')) view.children = field('children')!.split(',');
    if (field('fanTotal') !== undefined) {
      const running = field('fanRunning');
      view.fanOut = {
        total: Number(field('fanTotal')),
        completed: Number(field('fanCompleted') ?? 0),
        failed: Number(field('fanFailed') ?? 0),
        // A map that failed keeps its last list until the cascade cancelled them: only a running node has children in flight.
        running: running && field('status') === 'running' ? running.split(',').length : 0,
      };
    }
    const meta = field('meta');
    if (meta) {
      const { usage, ...rest } = JSON.parse(meta) as { usage?: TokenUsage } & Record<string, unknown>;
      if (usage) view.usage = usage;
      if (Object.keys(rest).length) view.meta = rest;
    }
    byId[id] = view;
  }
  const nodes = { ...byId };
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
  if (state.parent) view.parent = parseParentLink(state.parent);
  const usage = sumUsage(Object.values(nodes));
  if (usage) view.usage = usage;
  if (waiting.length > 0) view.waiting = waiting;
  if (state.deadline) view.deadline = Number(state.deadline);
  if (state.redrives) view.redrives = Number(state.redrives);
  return view;
}

/** A parked node as its signal or wake job finds it, with what its outgoing conditions read. */
export interface ParkedNodeState {
  /** The run's status; undefined when there is no such run. */
  runStatus: RunStatus | undefined;
  /** The node's status ('pending' when it has none). */
  status: NodeStatus;
  attempts: number;
  /** The action its timeout completes it with, if any. */
  wakeAction?: string;
  context: Record<string, unknown>;
  outputs: Record<string, unknown>;
}

/**
 * What completing a parked node needs, in one round trip: the run's and the node's status, its attempts
 * and wake action, and the context keys and outputs it reads (`'*'`: all). Only signals and wake jobs
 * read this; the completion itself (complete-node) decides atomically whether it still applies.
 */
export async function readParkedNode(
  redis: RedisClient,
  keys: StoreKeys,
  runId: string,
  nodeId: string,
  needs: { context: readonly string[] | '*'; outputs: readonly string[] | '*' },
): Promise<ParkedNodeState> {
  const k = keys.runKeys(runId);
  const read = (key: string, names: readonly string[] | '*'): Promise<Record<string, string>> => {
    if (names === '*') return redis.hgetall(key);
    if (names.length === 0) return Promise.resolve({});
    return redis.hmget(key, ...names).then((values) => {
      const out: Record<string, string> = Object.create(null);
      names.forEach((name, i) => {
        if (values[i] !== null && values[i] !== undefined) out[name] = values[i]!;
      });
      return out;
    });
  };
  const [[runStatus, status, attempts, wakeAction], ctx, out] = await Promise.all([
    redis.hmget(k.state, 'status', `${nodeId}.status`, `${nodeId}.attempts`, `${nodeId}.wakeAction`),
    read(k.ctx, needs.context),
    read(k.outputs, needs.outputs),
  ]);
  return {
    runStatus: (runStatus ?? undefined) as RunStatus | undefined,
    status: (status ?? 'pending') as NodeStatus,
    attempts: Number(attempts ?? 0),
    ...(wakeAction ? { wakeAction } : {}),
    context: parseValues(ctx),
    outputs: parseValues(out),
  };
}

/** A stored parent link (the `parent` field, or a script reply's parent entry). */
export function parseParentLink(json: string): ParentLink {
  return JSON.parse(json) as ParentLink;
}

const NODE_STATUS_SET = new Set<string>(Object.values(NodeStatuses));

/**
 * A run's summary from its state hash (HGETALL): status, blueprint, times, node counts by state (nodes
 * without a status, the pending ones, are not counted) and token usage from each node's `meta`;
 * undefined for a run that no longer exists. Tolerates malformed meta (a list must not fail on one run).
 */
export function summarizeRunState(runId: string, state: Record<string, string>): RunSummary | undefined {
  if (!state.status) return undefined;
  const summary: RunSummary = {
    runId,
    blueprintId: state.blueprintId ?? '',
    status: state.status as RunStatus,
    createdAt: Number(state.createdAt),
    nodes: {},
  };
  if (state.endedAt) {
    summary.endedAt = Number(state.endedAt);
    summary.durationMs = summary.endedAt - summary.createdAt;
  }
  let usage: TokenUsage | undefined;
  for (const [field, value] of Object.entries(state)) {
    const dot = field.lastIndexOf('.');
    if (dot <= 0) continue;
    const name = field.slice(dot + 1);
    if (name === 'status' && NODE_STATUS_SET.has(value)) {
      const status = value as NodeStatus;
      summary.nodes[status] = (summary.nodes[status] ?? 0) + 1;
    } else if (name === 'meta') {
      const used = parseUsage(value);
      if (used) {
        usage ??= { promptTokens: 0, completionTokens: 0 };
        usage.promptTokens += used.promptTokens;
        usage.completionTokens += used.completionTokens;
      }
    }
  }
  if (usage) summary.usage = usage;
  return summary;
}

function parseUsage(json: string): TokenUsage | undefined {
  try {
    const usage = (JSON.parse(json) as { usage?: Partial<TokenUsage> }).usage;
    if (!usage || typeof usage.promptTokens !== 'number' || typeof usage.completionTokens !== 'number') return undefined;
    return { promptTokens: usage.promptTokens, completionTokens: usage.completionTokens };
  } catch {
    return undefined;
  }
}

/** Null-prototype object from JSON-valued hash fields, so no key (not even `__proto__`) can pollute. */
/**
 * A hash's JSON values by field, in field order: HGETALL's order is the hash's internal one (insertion
 * order while small, bucket order once large or mid-rehash), which would make one run's view differ
 * between two reads.
 */
function parseValues(fields: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(fields).sort()) out[key] = JSON.parse(fields[key]!);
  return { ...out };
}
