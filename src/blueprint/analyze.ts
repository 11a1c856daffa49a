import { Limits } from '../types/limits.js';
import type { NodeKindRegistry } from '../types/node-kind.js';
import { ConditionError, parseCondition } from './condition.js';
import type { Blueprint, NodeDefinition } from './schema.js';

/** What the engine needs to know about a blueprint's graph, computed once when it is loaded. */
export interface BlueprintAnalysis {
  /** Nodes with no incoming edges (fallback-only nodes excluded): a run starts with these. */
  startNodes: string[];
  /** Nodes with no outgoing edges (fallback-only nodes excluded). */
  terminalNodes: string[];
  /** Kahn order, ties broken by blueprint order; only complete when the graph has no cycle. */
  topologicalOrder: string[];
  /** Nodes that only serve as some node's `config.fallback` and have no edges: never scheduled on their own. */
  fallbackOnly: string[];
  /** Ids of the blueprints this blueprint's subflow, map and loop nodes call (any kind's `references`), in order of first use. */
  subflows: string[];
}

export interface AnalyzeOptions {
  kinds: NodeKindRegistry;
  /**
   * Looks up other blueprints for subflow checks; returning undefined means "not known", which is reported.
   * When omitted, subflow targets are not checked at all (only direct self-recursion is).
   */
  resolveBlueprint?: (id: string) => Blueprint | undefined;
}

/** One problem, located by a JSON path into the blueprint (`$.edges[2].target`). */
export interface AnalysisIssue {
  path: string;
  message: string;
}

/** Appends zod-style path segments to a JSON path: `$.nodes` + `[0, 'id']` gives `$.nodes[0].id`. */
export function jsonPath(base: string, segments: readonly PropertyKey[]): string {
  let path = base;
  for (const segment of segments) {
    if (typeof segment === 'number') path += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)) path += `.${segment}`;
    else path += `[${JSON.stringify(String(segment))}]`;
  }
  return path;
}

/** Node kinds report paths relative to `params` in any of the forms `rules[0]`, `.rules[0]` or `$.rules[0]`. */
function joinRelative(base: string, relative: string): string {
  const rest = relative.startsWith('$') ? relative.slice(1) : relative;
  if (rest === '') return base;
  return rest.startsWith('.') || rest.startsWith('[') ? base + rest : `${base}.${rest}`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Checks a blueprint's nodes against their kinds and its graph for structural problems, reporting every
 * problem at once (ordered by where it is in the file), and computes the {@link BlueprintAnalysis}.
 * Expects a blueprint that already passed `BlueprintSchema`.
 */
export function analyzeBlueprint(
  blueprint: Blueprint,
  options: AnalyzeOptions,
): { analysis: BlueprintAnalysis; issues: AnalysisIssue[] } {
  const { kinds } = options;
  const { nodes } = blueprint;
  const edges = blueprint.edges ?? [];
  const issues: AnalysisIssue[] = [];

  // Later duplicates are reported and left out of the graph, so one mistake does not cascade into more.
  const indexOf = new Map<string, number>();
  nodes.forEach((node, i) => {
    const first = indexOf.get(node.id);
    if (first === undefined) indexOf.set(node.id, i);
    else issues.push({ path: `$.nodes[${i}].id`, message: `duplicate node id "${node.id}" (first at $.nodes[${first}])` });
  });

  const subflows: string[] = [];
  const subflowUses: Array<{ path: string; id: string }> = [];
  nodes.forEach((node, i) => {
    for (const id of checkNode(node, i, kinds, issues)) {
      if (!subflows.includes(id)) subflows.push(id);
      subflowUses.push({ path: referencePath(node, i, id), id });
    }
  });

  const fallbackTargets = checkFallbacks(nodes, indexOf, kinds, issues);

  const valid: Array<{ index: number; source: string; target: string }> = [];
  edges.forEach((edge, k) => {
    const sourceOk = indexOf.has(edge.source);
    const targetOk = indexOf.has(edge.target);
    if (!sourceOk) issues.push({ path: `$.edges[${k}].source`, message: `edge source "${edge.source}" is not a node` });
    if (!targetOk) issues.push({ path: `$.edges[${k}].target`, message: `edge target "${edge.target}" is not a node` });
    if (edge.condition !== undefined) {
      try {
        parseCondition(edge.condition);
      } catch (err) {
        if (!(err instanceof ConditionError)) throw err;
        issues.push({ path: `$.edges[${k}].condition`, message: `condition does not parse: ${err.message}` });
      }
    }
    if (sourceOk && targetOk) valid.push({ index: k, source: edge.source, target: edge.target });
  });

  // Any edge mentioning a node (even a broken one) means the author meant it to be part of the graph.
  const onEdges = new Set(edges.flatMap((e) => [e.source, e.target]));
  const fallbackOnly = [...indexOf.keys()].filter((id) => fallbackTargets.has(id) && !onEdges.has(id));
  const graphNodes = [...indexOf.keys()].filter((id) => !fallbackOnly.includes(id));

  const out = new Map<string, Array<{ target: string; index: number }>>(graphNodes.map((id) => [id, []]));
  const inDegree = new Map<string, number>(graphNodes.map((id) => [id, 0]));
  for (const edge of valid) {
    out.get(edge.source)?.push({ target: edge.target, index: edge.index });
    inDegree.set(edge.target, (inDegree.get(edge.target) ?? 0) + 1);
  }

  for (const cycle of findCycles(graphNodes, out)) {
    issues.push({ path: `$.edges[${cycle.closingEdge}]`, message: `cycle: ${cycle.nodes.join(' -> ')}` });
  }

  const startNodes = graphNodes.filter((id) => inDegree.get(id) === 0);
  if (startNodes.length === 0 && graphNodes.length > 0) {
    issues.push({ path: '$.nodes', message: 'no start node: every node has an incoming edge' });
  } else {
    const reached = new Set(startNodes);
    const queue = [...startNodes];
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      for (const { target } of out.get(id) ?? []) {
        if (reached.has(target)) continue;
        reached.add(target);
        queue.push(target);
      }
    }
    for (const id of graphNodes) {
      if (!reached.has(id)) {
        issues.push({ path: `$.nodes[${indexOf.get(id)}]`, message: `node "${id}" is not reachable from any start node` });
      }
    }
  }

  checkSubflows(blueprint.id, subflowUses, options, issues);

  const analysis: BlueprintAnalysis = {
    startNodes,
    terminalNodes: graphNodes.filter((id) => (out.get(id) ?? []).length === 0),
    topologicalOrder: topologicalOrder(graphNodes, out, inDegree),
    fallbackOnly,
    subflows,
  };
  return { analysis, issues: sortByLocation(issues) };
}

/** Checks one node against its kind; returns the blueprint ids it calls (none when its params are invalid). */
function checkNode(node: NodeDefinition, i: number, kinds: NodeKindRegistry, issues: AnalysisIssue[]): string[] {
  const kind = kinds.get(node.uses);
  if (!kind) {
    const known = kinds.names().join(', ') || 'none';
    issues.push({ path: `$.nodes[${i}].uses`, message: `unknown node kind "${node.uses}" (known: ${known})` });
    return [];
  }
  const base = `$.nodes[${i}].params`;
  let params: unknown = node.params ?? {};
  if (kind.params) {
    const parsed = kind.params.safeParse(params);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) issues.push({ path: jsonPath(base, issue.path), message: issue.message });
      return [];
    }
    params = parsed.data;
  }
  // A buggy kind must not turn validation (which also guards the HTTP API) into a crash.
  try {
    for (const problem of kind.check?.(params) ?? []) {
      issues.push({ path: joinRelative(base, problem.path), message: problem.message });
    }
    return kind.references?.(params).blueprints ?? [];
  } catch (err) {
    issues.push({ path: base, message: `node kind "${kind.name}" failed to check its params: ${messageOf(err)}` });
    return [];
  }
}

/** `references()` returns bare ids; point at the top-level param holding the id when there is one. */
function referencePath(node: NodeDefinition, i: number, id: string): string {
  const key = Object.entries(node.params ?? {}).find(([, value]) => value === id)?.[0];
  return key === undefined ? `$.nodes[${i}].params` : jsonPath(`$.nodes[${i}].params`, [key]);
}

/** Reports bad `config.fallback` values; returns the node ids named as fallbacks. */
function checkFallbacks(
  nodes: NodeDefinition[],
  indexOf: Map<string, number>,
  kinds: NodeKindRegistry,
  issues: AnalysisIssue[],
): Set<string> {
  const targets = new Set<string>();
  nodes.forEach((node, i) => {
    const fallback = node.config?.fallback;
    if (fallback === undefined) return;
    const path = `$.nodes[${i}].config.fallback`;
    if (fallback === node.id) issues.push({ path, message: `node "${node.id}" names itself as its fallback` });
    else if (indexOf.has(fallback)) targets.add(fallback);
    else if (!kinds.has(fallback)) {
      issues.push({ path, message: `fallback "${fallback}" is neither a node of this blueprint nor a node kind` });
    }
  });
  // Fallbacks that name each other in a ring would replace one another forever once all of them fail.
  for (const [start, i] of indexOf) {
    const chain = [start];
    let next = nodes[indexOf.get(start) ?? -1]?.config?.fallback;
    while (next !== undefined && next !== start && indexOf.has(next) && !chain.includes(next)) {
      chain.push(next);
      next = nodes[indexOf.get(next) ?? -1]?.config?.fallback;
    }
    const lowest = Math.min(...chain.map((id) => indexOf.get(id) ?? Infinity));
    if (next === start && chain.length > 1 && lowest === i) {
      issues.push({ path: `$.nodes[${i}].config.fallback`, message: `fallback cycle: ${[...chain, start].join(' -> ')}` });
    }
  }
  return targets;
}

type Adjacency = Map<string, Array<{ target: string; index: number }>>;

/** One named cycle per strongly connected component (or self-loop), so a tangle is reported once, not per edge. */
function findCycles(order: string[], out: Adjacency): Array<{ nodes: string[]; closingEdge: number }> {
  const cycles: Array<{ nodes: string[]; closingEdge: number }> = [];
  for (const component of stronglyConnected(order, out)) {
    const members = new Set(component);
    const start = order.find((id) => members.has(id));
    if (start === undefined) continue;
    // Breadth-first from the earliest member gives the shortest cycle through it, the easiest to read.
    const parent = new Map<string, string>();
    const queue = [start];
    let found: { last: string; index: number } | undefined;
    for (let id = queue.shift(); id !== undefined && !found; id = queue.shift()) {
      for (const edge of out.get(id) ?? []) {
        if (edge.target === start) {
          found = { last: id, index: edge.index };
          break;
        }
        if (members.has(edge.target) && !parent.has(edge.target)) {
          parent.set(edge.target, id);
          queue.push(edge.target);
        }
      }
    }
    if (!found) continue; // a single node without a self-loop
    const trail = [found.last];
    while (trail[0] !== start) trail.unshift(parent.get(trail[0] as string) as string);
    cycles.push({ nodes: [...trail, start], closingEdge: found.index });
  }
  return cycles.sort((a, b) => order.indexOf(a.nodes[0] as string) - order.indexOf(b.nodes[0] as string));
}

/** Tarjan's algorithm, iterative so a long chain of nodes cannot overflow the stack. */
function stronglyConnected(order: string[], out: Adjacency): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (id: string) => {
    index.set(id, index.size);
    low.set(id, index.get(id) as number);
    stack.push(id);
    onStack.add(id);
  };
  for (const root of order) {
    if (index.has(root)) continue;
    visit(root);
    const work = [{ id: root, next: 0 }];
    while (work.length > 0) {
      const frame = work[work.length - 1] as { id: string; next: number };
      const edge = (out.get(frame.id) ?? [])[frame.next++];
      if (edge) {
        if (!index.has(edge.target)) {
          visit(edge.target);
          work.push({ id: edge.target, next: 0 });
        } else if (onStack.has(edge.target)) low.set(frame.id, Math.min(low.get(frame.id)!, index.get(edge.target)!));
        continue;
      }
      work.pop();
      const caller = work[work.length - 1];
      if (caller) low.set(caller.id, Math.min(low.get(caller.id)!, low.get(frame.id)!));
      if (low.get(frame.id) === index.get(frame.id)) {
        const component: string[] = [];
        let member: string | undefined;
        do {
          member = stack.pop() as string;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.id);
        components.push(component);
      }
    }
  }
  return components;
}

/** Kahn's algorithm; among ready nodes the earliest in the blueprint goes first, so the order is stable. */
function topologicalOrder(order: string[], out: Adjacency, inDegree: Map<string, number>): string[] {
  const remaining = new Map(inDegree);
  const ready = order.filter((id) => remaining.get(id) === 0);
  const result: string[] = [];
  const position = new Map(order.map((id, i) => [id, i]));
  while (ready.length > 0) {
    const id = ready.shift() as string;
    result.push(id);
    for (const { target } of out.get(id) ?? []) {
      const left = (remaining.get(target) ?? 0) - 1;
      remaining.set(target, left);
      if (left === 0) {
        const at = ready.findIndex((other) => (position.get(other) ?? 0) > (position.get(target) ?? 0));
        ready.splice(at === -1 ? ready.length : at, 0, target);
      }
    }
  }
  return result;
}

/** Blueprint ids a blueprint's nodes call; nodes with unknown kinds or invalid params are ignored here. */
function referencesOf(blueprint: Blueprint, kinds: NodeKindRegistry): string[] {
  return blueprint.nodes.flatMap((node, i) => checkNode(node, i, kinds, []));
}

function checkSubflows(
  selfId: string,
  uses: Array<{ path: string; id: string }>,
  options: AnalyzeOptions,
  issues: AnalysisIssue[],
): void {
  const { resolveBlueprint: resolve, kinds } = options;
  for (const { path, id } of uses) {
    if (id === selfId) {
      issues.push({ path, message: `subflow recursion: ${selfId} -> ${selfId}` });
      continue;
    }
    if (!resolve) continue;
    if (!resolve(id)) {
      issues.push({ path, message: `subflow blueprint "${id}" not found` });
      continue;
    }
    // Only rings through this blueprint are ours to report; other rings are reported by their own members.
    const seen = new Set<string>();
    const walk = (current: string, trail: string[]): string[] | undefined => {
      if (seen.has(current)) return undefined;
      seen.add(current);
      const found = resolve(current);
      for (const next of found ? referencesOf(found, kinds) : []) {
        if (next === selfId) return [...trail, next];
        const ring = walk(next, [...trail, next]);
        if (ring) return ring;
      }
      return undefined;
    };
    const ring = walk(id, [selfId, id]);
    if (ring) {
      issues.push({ path, message: `subflow recursion: ${ring.join(' -> ')}` });
      continue;
    }
    const deepest = deepestChain(id, resolve, kinds);
    if (deepest.length > Limits.MAX_SUBFLOW_DEPTH) {
      issues.push({
        path,
        message: `subflow depth ${deepest.length} is over the limit MAX_SUBFLOW_DEPTH (${Limits.MAX_SUBFLOW_DEPTH}): ${[selfId, ...deepest].join(' -> ')}`,
      });
    }
  }
}

/**
 * The longest chain of subflow calls starting with a call of `id` (so `[id]` when `id` calls none),
 * cut off past the limit. Rings are reported elsewhere: a blueprint already on the chain ends it.
 */
function deepestChain(
  id: string,
  resolve: (id: string) => Blueprint | undefined,
  kinds: NodeKindRegistry,
  trail: string[] = [],
  memo = new Map<string, string[]>(),
): string[] {
  const known = memo.get(id);
  if (known) return known;
  const chain = [...trail, id];
  if (chain.length > Limits.MAX_SUBFLOW_DEPTH) return [id];
  const found = resolve(id);
  let longest: string[] = [];
  for (const next of found ? referencesOf(found, kinds) : []) {
    if (chain.includes(next)) continue;
    const below = deepestChain(next, resolve, kinds, chain, memo);
    if (below.length > longest.length) longest = below;
    if (chain.length + longest.length > Limits.MAX_SUBFLOW_DEPTH) break;
  }
  const result = [id, ...longest];
  // Below the limit the answer does not depend on the trail (registered blueprints have no rings).
  if (chain.length + longest.length <= Limits.MAX_SUBFLOW_DEPTH) memo.set(id, result);
  return result;
}

/** Groups issues by the node or edge they belong to, in file order; order within a group is kept. */
function sortByLocation(issues: AnalysisIssue[]): AnalysisIssue[] {
  const rank = (path: string): [number, number] => {
    const match = /^\$\.(nodes|edges)(?:\[(\d+)\])?/.exec(path);
    if (!match) return [0, 0];
    return [match[1] === 'nodes' ? 1 : 2, match[2] === undefined ? -1 : Number(match[2])];
  };
  return issues
    .map((issue, i) => ({ issue, i, key: rank(issue.path) }))
    .sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.i - b.i)
    .map((entry) => entry.issue);
}
