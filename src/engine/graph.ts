import type { BlueprintAnalysis } from '../blueprint/analyze.js';
import { parseCondition, type Condition } from '../blueprint/condition.js';
import type { Blueprint, NodeDefinition } from '../blueprint/schema.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import type { NodeKindRegistry, NodeReads } from '../types/node-kind.js';
import type { RunTopology } from '../store/run-state.js';
import { encodeTopology, type NodeNeeds, type NodeScriptArgs } from '../store/script-args.js';

export type { NodeNeeds } from '../store/script-args.js';

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

export interface CompiledNode {
  index: number;
  id: string;
  definition: NodeDefinition;
  config: ResolvedNodeConfig;
  incoming: CompiledEdge[];
  outgoing: CompiledEdge[];
  needs: NodeNeeds;
  /** This node as the run scripts take it, encoded once per blueprint version by src/store (opaque here). */
  lua: NodeScriptArgs;
}

/** @deprecated The stored topology is src/store's {@link RunTopology}. */
export type LuaTopology = RunTopology;

/** A blueprint prepared for execution: indexed nodes and edges, parsed conditions, resolved config. */
export interface Graph {
  blueprintId: string;
  version: string;
  blueprint: Blueprint;
  nodes: CompiledNode[];
  byId: Map<string, CompiledNode>;
  startNodes: CompiledNode[];
  /** The run-time topology every run of this version stores (src/store/run-state.ts). */
  topology: RunTopology;
  /** `topology` as JSON, serialised once (every run start stores it). */
  topologyJson: string;
}

export const DEFAULT_RETRY_DELAY_MS = 1000;

/** A node's script arguments until compileGraph encodes them. */
const NO_SCRIPT_ARGS: NodeScriptArgs = { needs: '', targets: [] };

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
      lua: NO_SCRIPT_ARGS,
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
  for (const node of nodes) node.needs = computeNeeds(node, kinds);
  // The graph facts the run scripts need; src/store encodes them (once per blueprint version).
  const { topology, topologyJson, nodes: scriptArgs } = encodeTopology(
    nodes.map((n) => ({
      id: n.id,
      targets: n.outgoing.map((e) => e.target),
      inDegree: n.incoming.length,
      joinAny: n.config.joinStrategy === 'any',
      needs: n.needs,
      conditional: n.outgoing.some((e) => e.action !== undefined || e.condition !== undefined),
    })),
  );
  nodes.forEach((node, i) => (node.lua = scriptArgs[i]!));
  return {
    blueprintId: blueprint.id,
    version,
    blueprint,
    nodes,
    byId,
    startNodes: nodes.filter((n) => n.incoming.length === 0),
    topology,
    topologyJson,
  };
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

/** The actions a signal may choose for a `wait` node: those of its outgoing edges, each once, in edge order. */
export function actionsOf(node: CompiledNode): string[] {
  return [...new Set(node.outgoing.map((e) => e.action).filter((a): a is string => a !== undefined))];
}
