import type { BlueprintAnalysis } from '../blueprint/analyze.js';
import { parseCondition, type Condition } from '../blueprint/condition.js';
import type { Blueprint, NodeDefinition } from '../blueprint/schema.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import type { NodeKindRegistry, NodeReads } from '../nodes/types.js';

/** A node's config with every default applied. */
export interface ResolvedNodeConfig {
  joinStrategy: 'all' | 'any';
  maxRetries: number;
  retryDelayMs: number;
  timeoutMs: number | undefined;
  /** The definition to run when retries are exhausted: another node of the blueprint or a bare node kind. */
  fallback: NodeDefinition | undefined;
}

export interface CompiledEdge {
  index: number;
  source: number;
  target: number;
  action: string | undefined;
  condition: Condition | undefined;
}

/** What a worker fetches from the run before executing a node: named keys, or everything (`'*'`). */
export interface NodeNeeds {
  context: readonly string[] | '*';
  outputs: readonly string[] | '*';
}

export interface CompiledNode {
  index: number;
  id: string;
  definition: NodeDefinition;
  config: ResolvedNodeConfig;
  incoming: CompiledEdge[];
  outgoing: CompiledEdge[];
  needs: NodeNeeds;
  /** This node as the run scripts take it in ARGV (see src/store/lua): filled in by compileGraph. */
  lua: LuaNodeArgs;
}

/** A node's part of the topology, passed to the run scripts so they need not decode the whole of it. */
export interface LuaNodeArgs {
  /** `needs` as JSON [context, outputs], or '' when the node reads nothing. */
  needs: string;
  /**
   * What completing this node touches: the number of outgoing edges and each edge's target index (1-based),
   * then the number of nodes described and, per node, its index, id, in-degree, 'any' flag, needs, number
   * of outgoing edges and their targets. Described are the direct targets and, when an edge can be left
   * untaken (action or condition), every node a skip can reach (up to {@link MAX_DESCRIBED}).
   */
  targets: Array<string | number>;
}

/**
 * The run-time topology as the completion script sees it: node ids, join strategy, in-degree and the
 * targets of each node's outgoing edges, 1-based (Lua), in the same order as `CompiledNode.outgoing`.
 */
export interface LuaTopology {
  ids: string[];
  any: number[];
  indeg: number[];
  out: number[][];
  /** What each node reads: [context keys or '*', output node ids or '*']. */
  needs: Array<[readonly string[] | '*', readonly string[] | '*']>;
}

/** A blueprint prepared for execution: indexed nodes and edges, parsed conditions, resolved config. */
export interface Graph {
  blueprintId: string;
  version: string;
  blueprint: Blueprint;
  nodes: CompiledNode[];
  byId: Map<string, CompiledNode>;
  startNodes: CompiledNode[];
  topology: LuaTopology;
  /** `topology` as JSON, serialised once (every run start stores it). */
  topologyJson: string;
}

export const DEFAULT_RETRY_DELAY_MS = 1000;

/** Compiles a validated blueprint. Assumes validation passed (ids unique, edges resolve, no cycles). */
export function compileGraph(
  loaded: { blueprint: Blueprint; analysis: BlueprintAnalysis; version: string },
  kinds: NodeKindRegistry,
): Graph {
  const { blueprint, analysis, version } = loaded;
  const fallbackOnly = new Set(analysis.fallbackOnly);
  const definitions = new Map(blueprint.nodes.map((n) => [n.id, n]));
  const nodes: CompiledNode[] = [];
  const byId = new Map<string, CompiledNode>();
  for (const definition of blueprint.nodes) {
    if (fallbackOnly.has(definition.id)) continue;
    const node: CompiledNode = {
      index: nodes.length,
      id: definition.id,
      definition,
      config: resolveConfig(definition, definitions),
      incoming: [],
      outgoing: [],
      needs: { context: [], outputs: [] },
      lua: { needs: '', targets: [] },
    };
    nodes.push(node);
    byId.set(node.id, node);
  }
  blueprint.edges.forEach((edge, index) => {
    const source = byId.get(edge.source);
    const target = byId.get(edge.target);
    if (!source || !target) {
      throw new SwitchyardError(ErrorCodes.VALIDATION, `edge ${index} does not connect two nodes`, { blueprintId: blueprint.id });
    }
    const compiled: CompiledEdge = {
      index,
      source: source.index,
      target: target.index,
      action: edge.action,
      condition: edge.condition === undefined ? undefined : parseCondition(edge.condition),
    };
    source.outgoing.push(compiled);
    target.incoming.push(compiled);
  });
  for (const node of nodes) {
    node.needs = computeNeeds(node, kinds);
    const { context, outputs } = node.needs;
    node.lua.needs = context.length === 0 && outputs.length === 0 ? '' : JSON.stringify([context, outputs]);
  }
  for (const node of nodes) node.lua.targets = luaTargets(node, nodes);
  const topology: LuaTopology = {
    ids: nodes.map((n) => n.id),
    any: nodes.map((n) => (n.config.joinStrategy === 'any' ? 1 : 0)),
    indeg: nodes.map((n) => n.incoming.length),
    out: nodes.map((n) => n.outgoing.map((e) => e.target + 1)),
    needs: nodes.map((n) => [n.needs.context, n.needs.outputs]),
  };
  return {
    blueprintId: blueprint.id,
    version,
    blueprint,
    nodes,
    byId,
    startNodes: nodes.filter((n) => n.incoming.length === 0),
    topology,
    topologyJson: JSON.stringify(topology),
  };
}

/** Beyond this many nodes a completion's description stops; the script then reads the stored topology. */
const MAX_DESCRIBED = 256;

function luaTargets(node: CompiledNode, nodes: readonly CompiledNode[]): Array<string | number> {
  const described = new Set<number>(node.outgoing.map((e) => e.target));
  if (node.outgoing.some((e) => e.action !== undefined || e.condition !== undefined)) {
    // A skip can propagate to every descendant.
    for (const index of described) {
      if (described.size >= MAX_DESCRIBED) break;
      for (const edge of nodes[index]!.outgoing) described.add(edge.target);
    }
  }
  const args: Array<string | number> = [node.outgoing.length, ...node.outgoing.map((e) => e.target + 1), described.size];
  for (const index of described) {
    const target = nodes[index]!;
    args.push(index + 1, target.id, target.incoming.length, target.config.joinStrategy === 'any' ? '1' : '0', target.lua.needs);
    args.push(target.outgoing.length, ...target.outgoing.map((e) => e.target + 1));
  }
  return args;
}

function resolveConfig(definition: NodeDefinition, definitions: Map<string, NodeDefinition>): ResolvedNodeConfig {
  const config = definition.config ?? {};
  let fallback: NodeDefinition | undefined;
  if (config.fallback !== undefined) {
    const named = definitions.get(config.fallback);
    // A fallback that names a node runs that node's kind and params; otherwise it is a kind run with this node's params.
    fallback = named ?? { id: definition.id, uses: config.fallback, params: definition.params };
  }
  return {
    joinStrategy: config.joinStrategy ?? 'all',
    maxRetries: config.maxRetries ?? 0,
    retryDelayMs: config.retryDelay ?? DEFAULT_RETRY_DELAY_MS,
    timeoutMs: config.timeout,
    fallback,
  };
}

/** What a node (and its fallback, and its outgoing conditions) may read; `'*'` when a part cannot say. */
function computeNeeds(node: CompiledNode, kinds: NodeKindRegistry): NodeNeeds {
  const context = new Set<string>();
  const outputs = new Set<string>();
  let wholeContext = false;
  let wholeOutputs = false;
  const addReads = (reads: NodeReads | undefined) => {
    if (!reads) {
      wholeContext = wholeOutputs = true;
      return;
    }
    reads.context.forEach((k) => context.add(k));
    reads.outputs.forEach((k) => outputs.add(k));
  };
  for (const definition of [node.definition, node.config.fallback]) {
    if (!definition) continue;
    const kind = kinds.get(definition.uses);
    addReads(kind?.reads ? kind.reads(definition.params ?? {}) : undefined);
  }
  for (const edge of node.outgoing) {
    const reads = edge.condition?.reads;
    if (!reads) continue;
    reads.context.forEach((k) => context.add(k));
    reads.outputs.forEach((k) => outputs.add(k));
    wholeContext ||= reads.wholeContext;
    wholeOutputs ||= reads.wholeOutputs;
  }
  return { context: wholeContext ? '*' : [...context], outputs: wholeOutputs ? '*' : [...outputs] };
}
