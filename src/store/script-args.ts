import type { SerializedError } from '../errors.js';
import type { StoreKeys } from './keys.js';
import { startNodesOf, type ParentLink, type RunTopology } from './run-state.js';

/**
 * The one encoder of the run scripts' arguments: each `encode…` function returns a script call's whole
 * argument list (KEYS, then ARGV) as the script's contract header (src/store/lua/*.lua) lays it out. No
 * position of any ARGV entry is known outside this file and the scripts.
 */

/** A run script's arguments as ioredis' defined commands take them: the 4 KEYS, then ARGV. */
export type ScriptCall = Array<string | number>;

/** What a worker fetches from the run before executing a node: named keys, or everything (`'*'`). */
export interface NodeNeeds {
  context: readonly string[] | '*';
  outputs: readonly string[] | '*';
}

/**
 * What the engine knows of a node's place in the graph, all the run scripts need of it. Indices are the
 * nodes' 0-based positions in the compiled graph.
 */
export interface TopologyNode {
  id: string;
  /** The target of each outgoing edge, in edge order. */
  targets: readonly number[];
  /** Number of incoming edges. */
  inDegree: number;
  /** `joinStrategy: 'any'`. */
  joinAny: boolean;
  needs: NodeNeeds;
  /** Whether some outgoing edge can be left untaken (it has an action or a condition). */
  conditional: boolean;
}

/**
 * A node as the run scripts take it, precomputed once per blueprint version (by {@link encodeTopology})
 * so a node's start and completion encode nothing but their own values. Opaque outside src/store.
 */
export interface NodeScriptArgs {
  /** The node's reads as JSON [context, outputs], or '' when it reads nothing (startNode ARGV[9]). */
  readonly needs: string;
  /** The node's part of the topology (completeNode ARGV[13..]). */
  readonly targets: ReadonlyArray<string | number>;
}

/** A compiled graph's topology, as stored with each run and as each node passes it to the scripts. */
export interface EncodedTopology {
  topology: RunTopology;
  /** `topology` as JSON, serialised once (every run start stores it). */
  topologyJson: string;
  /** Per node, in the order given. */
  nodes: NodeScriptArgs[];
}

/** Beyond this many nodes a completion's description stops; the script then reads the stored topology. */
const MAX_DESCRIBED = 256;

/** Encodes a graph's topology for the run scripts, once per blueprint version. */
export function encodeTopology(nodes: readonly TopologyNode[]): EncodedTopology {
  const needs = nodes.map((n) => encodeNeeds(n.needs));
  const topology: RunTopology = {
    ids: nodes.map((n) => n.id),
    any: nodes.map((n) => (n.joinAny ? 1 : 0)),
    indeg: nodes.map((n) => n.inDegree),
    out: nodes.map((n) => n.targets.map((t) => t + 1)),
    needs: nodes.map((n) => [n.needs.context, n.needs.outputs]),
  };
  return {
    topology,
    topologyJson: JSON.stringify(topology),
    nodes: nodes.map((node, i) => ({ needs: needs[i]!, targets: encodeTargets(node, nodes, needs) })),
  };
}

/** A node's reads as the start script takes them (ARGV[9]): JSON [context, outputs], or '' for nothing. */
export function encodeNeeds({ context, outputs }: NodeNeeds): string {
  return context.length === 0 && outputs.length === 0 ? '' : JSON.stringify([context, outputs]);
}

/**
 * What completing this node touches: the number of outgoing edges and each edge's target index (1-based),
 * then the number of nodes described and, per node, its index, id, in-degree, 'any' flag, needs, number of
 * outgoing edges and their targets. Described are the direct targets and, when an edge can be left
 * untaken (action or condition), every node a skip can reach (up to {@link MAX_DESCRIBED}).
 */
function encodeTargets(node: TopologyNode, nodes: readonly TopologyNode[], needs: readonly string[]): Array<string | number> {
  const described = new Set<number>(node.targets);
  if (node.conditional) {
    // A skip can propagate to every descendant.
    for (const index of described) {
      if (described.size >= MAX_DESCRIBED) break;
      for (const target of nodes[index]!.targets) described.add(target);
    }
  }
  const args: Array<string | number> = [node.targets.length, ...node.targets.map((t) => t + 1), described.size];
  for (const index of described) {
    const target = nodes[index]!;
    args.push(index + 1, target.id, target.inDegree, target.joinAny ? '1' : '0', needs[index]!);
    args.push(target.targets.length, ...target.targets.map((t) => t + 1));
  }
  return args;
}

/** What the run scripts need to know of a node (a CompiledNode has it). */
export interface StoreNode {
  id: string;
  index: number;
  needs: NodeNeeds;
  lua: NodeScriptArgs;
}

export interface StartRunInput {
  runId: string;
  blueprintId: string;
  version: string;
  topology: RunTopology;
  /** The topology as JSON when the caller has it serialised already. */
  topologyJson?: string;
  input: Record<string, unknown>;
  ttlSeconds: number;
  parent?: ParentLink;
  /**
   * The versions of every blueprint the run's subflows can reach (id -> version), as JSON: its child runs
   * start these versions. Absent when the blueprint calls no other.
   */
  pinsJson?: string;
  /** Epoch ms past which the run fails with RUN_TIMEOUT. */
  deadline?: number;
}

/** How a wait or sleep node parks (wait-node-4.lua). */
export interface ParkArgs {
  status: 'waiting' | 'sleeping';
  /** Epoch ms when its wake job fires. */
  wake?: number;
  prompt?: string;
  /** The actions a signal may choose. */
  actions?: readonly string[];
  /** The action its timeout completes it with. */
  wakeAction?: string;
}

/** What a node's completion stores. */
export interface NodeResult {
  output?: unknown;
  action?: string;
  context?: Record<string, unknown>;
  meta?: Record<string, unknown>;
}

/** KEYS, then the ARGV head every run script takes (run-context.lua): runId, now, channels. */
function head(keys: StoreKeys, runId: string): ScriptCall {
  const call: ScriptCall = keys.scriptKeys(runId);
  call.push(runId, Date.now(), keys.runEnded(runId), keys.aborts());
  return call;
}

/** Appends key, JSON value pairs (undefined values left out). */
function pushJsonPairs(call: ScriptCall, values: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined) call.push(key, JSON.stringify(value));
  }
}

/** start-run-4.lua */
export function encodeStartRun(keys: StoreKeys, input: StartRunInput): ScriptCall {
  const call = head(keys, input.runId);
  call.push(
    input.blueprintId,
    input.version,
    input.topologyJson ?? JSON.stringify(input.topology),
    input.ttlSeconds,
    input.parent ? JSON.stringify(input.parent) : '',
    input.topology.ids.length,
    startNodesOf(input.topology).join(','),
    input.pinsJson ?? '',
  );
  call.push(input.deadline ?? '');
  pushJsonPairs(call, input.input);
  return call;
}

/** start-node-4.lua */
export function encodeStartNode(
  keys: StoreKeys,
  runId: string,
  node: Pick<StoreNode, 'id' | 'index' | 'lua'>,
  workerId: string,
  mode: 'start' | 'resume',
  siblings: ReadonlyArray<Pick<StoreNode, 'id' | 'lua'>>,
): ScriptCall {
  const call = head(keys, runId);
  call.push(node.id, node.index + 1, workerId, mode, node.lua.needs);
  for (const sibling of siblings) call.push(sibling.id, sibling.lua.needs);
  return call;
}

/** complete-node-4.lua */
export function encodeCompleteNode(
  keys: StoreKeys,
  runId: string,
  node: Pick<StoreNode, 'id' | 'index' | 'lua'>,
  result: NodeResult,
  taken: readonly boolean[],
  claim: { workerId: string; max: number } | undefined,
): ScriptCall {
  const call = head(keys, runId);
  call.push(
    node.id,
    node.index + 1,
    result.output === undefined ? '' : JSON.stringify(result.output),
    taken.map((t) => (t ? '1' : '0')).join(''),
    result.action ?? '',
    result.meta === undefined ? '' : JSON.stringify(result.meta),
    claim?.workerId ?? '',
    claim?.max ?? 0,
    ...node.lua.targets,
  );
  if (result.context) pushJsonPairs(call, result.context);
  return call;
}

/** release-node-4.lua */
export function encodeReleaseNode(keys: StoreKeys, runId: string, workerId: string, nodeIds: readonly string[]): ScriptCall {
  const call = head(keys, runId);
  call.push(workerId, ...nodeIds);
  return call;
}

/** retry-node-4.lua */
export function encodeRetryNode(keys: StoreKeys, runId: string, nodeId: string, error: SerializedError, delayMs: number): ScriptCall {
  const call = head(keys, runId);
  call.push(nodeId, JSON.stringify(error), delayMs);
  return call;
}

/** fail-node-4.lua: the node's error, and the run's (the same, naming the node). */
export function encodeFailNode(keys: StoreKeys, runId: string, nodeId: string, error: SerializedError): ScriptCall {
  const call = head(keys, runId);
  call.push(nodeId, JSON.stringify(error), JSON.stringify({ ...error, nodeId }));
  return call;
}

/** cancel-run-4.lua; with `failWith` the run fails with that error instead (its deadline passed). */
export function encodeCancelRun(keys: StoreKeys, runId: string, reason: string, failWith?: SerializedError): ScriptCall {
  const call = head(keys, runId);
  call.push(reason);
  if (failWith) call.push(JSON.stringify(failWith));
  return call;
}

/** redrive-run-4.lua: the run's four keys and the fixed head, nothing more. */
export function encodeRedriveRun(keys: StoreKeys, runId: string): ScriptCall {
  return head(keys, runId);
}

/** wait-node-4.lua: a node waiting for its child run (a loop's: the iteration's index). */
export function encodeWaitNode(keys: StoreKeys, runId: string, nodeId: string, childRunId: string, index?: number): ScriptCall {
  const call = head(keys, runId);
  call.push(nodeId, childRunId, '', '', '', '', '', index ?? '');
  return call;
}

/** What a fanning-out node's children are: see {@link encodeStartFanOut}. */
export interface FanOutStart {
  /** A child's run id is `<base>-<index>`. */
  base: string;
  blueprintId: string;
  concurrency: number;
  /** The input every child shares. */
  input: Record<string, unknown>;
  /** Each child's own input, in order. */
  each: ReadonlyArray<Record<string, unknown>>;
}

/** start-fan-out-4.lua */
export function encodeStartFanOut(keys: StoreKeys, runId: string, nodeId: string, fanOut: FanOutStart): ScriptCall {
  const call = head(keys, runId);
  call.push(nodeId, fanOut.base, fanOut.blueprintId, fanOut.concurrency, JSON.stringify(fanOut.input));
  for (const input of fanOut.each) call.push(JSON.stringify(input));
  return call;
}

/** One ended child of a fanning-out node, as collect-child-4.lua records it. */
export interface CollectedChild {
  index: number;
  /** The child did not complete (it counts as failed). */
  childFailed: boolean;
  /** What the kind collected from it (stored as JSON; undefined as null). */
  value: unknown;
  /** This child fails the node: the fan-out stops. */
  halt: boolean;
}

/** collect-child-4.lua */
export function encodeCollectChild(keys: StoreKeys, runId: string, nodeId: string, child: CollectedChild): ScriptCall {
  const call = head(keys, runId);
  call.push(nodeId, child.index, child.childFailed ? '1' : '0', JSON.stringify(child.value ?? null), child.halt ? '1' : '0');
  return call;
}

/** wait-node-4.lua: a wait or sleep node parking. */
export function encodeParkNode(keys: StoreKeys, runId: string, nodeId: string, park: ParkArgs): ScriptCall {
  const call = head(keys, runId);
  call.push(nodeId, '', park.status, park.wake ?? '', park.prompt ?? '', (park.actions ?? []).join(','), park.wakeAction ?? '');
  return call;
}
