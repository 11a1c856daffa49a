import type { ConditionScope } from '../blueprint/condition.js';
import type { SerializedError } from '../errors.js';
import type { NodeResult } from '../types/node-kind.js';
import type { CompiledNode, Graph } from './graph.js';
import { isParkedNodeStatus, isTerminalNodeStatus, type NodeStatus, type RunStatus } from '../types/statuses.js';

/**
 * Pure run-state transitions. The in-memory executor applies them directly; the Redis store applies the
 * same rules in its Lua scripts (src/store/lua), and the property tests hold the two to the same results.
 */

export interface NodeState {
  status: NodeStatus;
  /** Incoming edges that have arrived, taken or skipped. */
  arrived: number;
  /** Incoming edges that arrived taken. */
  taken: number;
  attempts: number;
  error?: SerializedError;
}

export interface RunState {
  status: RunStatus;
  nodes: NodeState[];
  /** Nodes not yet done or skipped; the run completes at 0. */
  remaining: number;
  error?: SerializedError & { nodeId?: string };
  /** How many times the run was redriven ({@link redriveRun}). */
  redrives?: number;
}

export interface Transition {
  /** Nodes that became ready (now `queued`), in the order they became so. */
  ready: number[];
  /** Nodes that became skipped by dead-path elimination. */
  skipped: number[];
  /** Set when this transition ended the run. */
  runEnded?: RunStatus;
}

/** A fresh run: every node pending except the start nodes, which are queued. */
export function createRunState(graph: Graph): { state: RunState; ready: number[] } {
  const state: RunState = {
    status: 'running',
    nodes: graph.nodes.map(() => ({ status: 'pending', arrived: 0, taken: 0, attempts: 0 })),
    remaining: graph.nodes.length,
  };
  const ready = graph.startNodes.map((n) => n.index);
  for (const index of ready) state.nodes[index]!.status = 'queued';
  return { state, ready };
}

/**
 * Which outgoing edges of `node` are taken for its result: an edge is taken when its `action` (if any)
 * equals the node's action and its `condition` (if any) holds. Conditions see `output`, `action`, and the
 * context as the node left it.
 */
export function decideEdges(node: CompiledNode, result: NodeResult, scope: Omit<ConditionScope, 'output' | 'action'>): boolean[] {
  const conditionScope: ConditionScope = { ...scope, output: result.output, action: result.action };
  return node.outgoing.map((edge) => {
    if (edge.action !== undefined && edge.action !== result.action) return false;
    return edge.condition === undefined || edge.condition.evaluate(conditionScope);
  });
}

/** Marks a queued node running; false when it must not run (run over, node finished). */
export function beginNode(state: RunState, index: number): boolean {
  const node = state.nodes[index]!;
  if (state.status !== 'running' || isTerminalNodeStatus(node.status) || node.status === 'pending' || isParkedNodeStatus(node.status)) return false;
  node.status = 'running';
  node.attempts += 1;
  return true;
}

/**
 * Parks a running node: `waiting` for a signal (or its timeout), `sleeping` until its timer. False when
 * the run is over or the node is not running (nothing changes).
 */
export function parkNode(state: RunState, index: number, status: 'waiting' | 'sleeping'): boolean {
  const node = state.nodes[index]!;
  if (state.status !== 'running' || node.status !== 'running') return false;
  node.status = status;
  return true;
}

/**
 * Applies a node's completion: marks it done, records each outgoing edge's arrival (taken or skipped),
 * propagates skips (dead-path elimination), collects nodes that became ready and completes the run when
 * nothing is left. A parked node (`waiting`, `sleeping`) completes the same way, from its signal or
 * timer: whichever comes first wins, the other is a duplicate. Returns undefined, changing nothing, when
 * the completion is stale or a duplicate.
 */
export function completeNode(graph: Graph, state: RunState, index: number, taken: readonly boolean[]): Transition | undefined {
  const node = state.nodes[index]!;
  if (state.status !== 'running' || (node.status !== 'running' && node.status !== 'queued' && !isParkedNodeStatus(node.status))) return undefined;
  node.status = 'done';
  state.remaining -= 1;
  const transition: Transition = { ready: [], skipped: [] };
  const arrivals: Array<[target: number, taken: boolean]> = graph.nodes[index]!.outgoing.map((edge, i) => [edge.target, taken[i] === true]);
  // A work list instead of recursion: skip chains can be as long as the graph.
  for (let next = arrivals.shift(); next; next = arrivals.shift()) {
    const [target, wasTaken] = next;
    const t = state.nodes[target]!;
    t.arrived += 1;
    if (wasTaken) t.taken += 1;
    if (t.status !== 'pending') continue; // an `any` join that already fired ignores later arrivals
    const compiled = graph.nodes[target]!;
    const allArrived = t.arrived === compiled.incoming.length;
    const fire = compiled.config.joinStrategy === 'any' ? wasTaken : allArrived && t.taken > 0;
    if (fire) {
      t.status = 'queued';
      transition.ready.push(target);
    } else if (allArrived && t.taken === 0) {
      t.status = 'skipped';
      state.remaining -= 1;
      transition.skipped.push(target);
      for (const edge of compiled.outgoing) arrivals.push([edge.target, false]);
    }
  }
  if (state.remaining === 0) {
    state.status = 'completed';
    transition.runEnded = 'completed';
  }
  return transition;
}

/** Ends the run `failed` because of `index`; every unfinished node becomes `cancelled`. */
export function failRun(state: RunState, index: number, nodeId: string, error: SerializedError): boolean {
  if (state.status !== 'running') return false;
  state.nodes[index]!.status = 'failed';
  state.nodes[index]!.error = error;
  state.status = 'failed';
  state.error = { ...error, nodeId };
  cancelUnfinished(state);
  return true;
}

/**
 * Ends the run `failed` without a failing node (its deadline passed: RUN_TIMEOUT); every unfinished node,
 * running, waiting or sleeping, becomes `cancelled`.
 */
export function timeOutRun(state: RunState, error: SerializedError): boolean {
  if (state.status !== 'running') return false;
  state.status = 'failed';
  state.error = error;
  cancelUnfinished(state);
  return true;
}

/** Ends the run `cancelled`; every unfinished node becomes `cancelled`. */
export function cancelRun(state: RunState): boolean {
  if (state.status !== 'running') return false;
  state.status = 'cancelled';
  cancelUnfinished(state);
  return true;
}

/**
 * Redrives a failed or cancelled run, as redrive-run-4.lua does: done and skipped nodes keep their state
 * (and the arrivals they recorded); every other node is reset to pending, except those `inPlace` says
 * wait for child runs to redrive (subflow, map, loop): their attempt runs again with the same number (the
 * executor finds the same child runs), so they are queued with one attempt fewer. A reset node is ready
 * when it has no incoming edge, when its one predecessor is done (a skipped edge would have skipped it),
 * or when its recorded arrivals fire it. Returns the nodes to run now (in-place ones included); undefined,
 * changing nothing, for a run that is running or completed.
 */
export function redriveRun(graph: Graph, state: RunState, inPlace: (index: number) => boolean = () => false): { ready: number[] } | undefined {
  if (state.status !== 'failed' && state.status !== 'cancelled') return undefined;
  const ready: number[] = [];
  let remaining = 0;
  for (const compiled of graph.nodes) {
    const node = state.nodes[compiled.index]!;
    if (node.status === 'done' || node.status === 'skipped') continue;
    remaining += 1;
    delete node.error;
    if (inPlace(compiled.index)) {
      node.status = 'queued';
      node.attempts = Math.max(0, node.attempts - 1);
      ready.push(compiled.index);
      continue;
    }
    node.status = 'pending';
    node.attempts = 0;
    const indeg = compiled.incoming.length;
    let fire: boolean;
    if (indeg === 0) fire = true;
    else if (indeg === 1) fire = state.nodes[compiled.incoming[0]!.source]!.status === 'done';
    else fire = compiled.config.joinStrategy === 'any' ? node.taken > 0 : node.arrived === indeg && node.taken > 0;
    if (fire) {
      node.status = 'queued';
      ready.push(compiled.index);
    }
  }
  state.status = 'running';
  state.remaining = remaining;
  delete state.error;
  state.redrives = (state.redrives ?? 0) + 1;
  return { ready };
}

function cancelUnfinished(state: RunState): void {
  for (const node of state.nodes) {
    if (!isTerminalNodeStatus(node.status)) node.status = 'cancelled';
  }
}
