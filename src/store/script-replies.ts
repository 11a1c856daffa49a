import type { RunStatus } from '../types/statuses.js';
import { parseParentLink, type ParentLink } from './run-state.js';
import type { NodeNeeds, StoreNode } from './script-args.js';

/**
 * The one decoder of the run scripts' replies: each `decode…` function turns a script's reply (as its
 * contract header in src/store/lua/*.lua states it) into a typed union, `{ kind: … }` or `{ outcome: … }`
 * as the store's methods have always answered. No reply position is known outside this file.
 */

/** A script's reply as ioredis gives it: strings, numbers, nils and nested lists. */
export type ScriptReply = Array<string | null | ScriptReply | number>;

/** What ending a run leaves to do: tell its parent, cancel its children. */
export interface RunEnding {
  parent?: ParentLink;
  children: string[];
}

/** A node claimed to run next, with what it needs. */
export interface ClaimedNode {
  nodeId: string;
  attempt: number;
  context: Record<string, unknown>;
  outputs: Record<string, unknown>;
}

/** Another start node claimed by a run's start job: to run now, or already completed (a redelivery). */
export type SiblingReply = (ClaimedNode & { kind: 'run' }) | { kind: 'done'; nodeId: string; readied: string[] };

export type StartRunReply = { created: boolean; version: string; status: RunStatus };

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
  | { kind: 'parked'; nodeStatus: 'waiting' | 'sleeping'; wake?: number; attempt: number }
  | { kind: 'skip'; reason: string };

export type CompleteNodeReply =
  | { kind: 'ok'; runStatus: RunStatus; ready: string[]; parent?: ParentLink; claimed: ClaimedNode[] }
  /** The run is not running; `parent` when it completed with this node done (maybe by this very completion, resent). */
  | { kind: 'stale'; runStatus: string; parent?: ParentLink }
  /**
   * The node is not running. When it is `done` this may be a resend of the completion that made it so (its
   * reply lost with a connection): `ready` is what that completion made ready and nothing ever claimed, and
   * `claimed` what it claimed for this same worker and is still running for it. Both empty otherwise.
   */
  | { kind: 'duplicate'; nodeStatus: string; ready: string[]; claimed: ClaimedNode[] }
  /** The context writes would take the run's context over Limits.MAX_CONTEXT_BYTES; nothing was applied. */
  | { kind: 'limit'; contextBytes: number };

/** redrive-run-4.lua: the nodes queued now and the child runs to redrive in place; or why not. */
export type RedriveRunReply =
  | { outcome: 'redriven'; redrives: number; version: string; deadline?: number; ready: string[]; children: string[] }
  | { outcome: 'not-redrivable'; status: RunStatus; parent?: ParentLink }
  | { outcome: 'missing' };

export type CancelRunReply = { outcome: 'cancelled'; ending: RunEnding } | { outcome: 'not-running'; status: RunStatus } | { outcome: 'missing' };

/** A child run to start for a fanning-out node: its id, index and whole input. */
export interface FanOutChild {
  runId: string;
  index: number;
  input: Record<string, unknown>;
}

/** start-fan-out-4.lua and collect-child-4.lua. */
export type FanOutReply =
  /** Children to start now (maybe none), all of `blueprintId`. */
  | { kind: 'start'; blueprintId: string; children: FanOutChild[] }
  /** Every child is in: the collected values in input order. */
  | { kind: 'all'; values: unknown[] }
  /** This child failed the node: the children still in flight, to cancel. */
  | { kind: 'halted'; running: string[] }
  /** Nothing to do: another child failed the node already, the run ended or the node is not running. */
  | { kind: 'pending' | 'stale' | 'not-running' };

export type WaitNodeReply = { outcome: 'waiting' | 'not-running' } | { outcome: 'stale'; runStatus: string };

export type ParkNodeReply = { outcome: 'parked' } | { outcome: 'not-running'; nodeStatus: string } | { outcome: 'stale'; runStatus: string };

/** start-run-4.lua: {'created'} | {'exists', version, status}. */
export function decodeStartRun(reply: ScriptReply, version: string): StartRunReply {
  if (reply[0] === 'created') return { created: true, version, status: 'running' };
  return { created: false, version: String(reply[1]), status: String(reply[2]) as RunStatus };
}

/** start-node-4.lua: `node` and `siblings` as encoded (their needs say how the reads come back). */
export function decodeStartNode(reply: ScriptReply, node: Pick<StoreNode, 'needs'>, siblings: ReadonlyArray<Pick<StoreNode, 'id' | 'needs'>>): StartNodeReply {
  switch (reply[0]) {
    case 'run': {
      const claimed: SiblingReply[] = [];
      const flat = (reply[6] ?? []) as ScriptReply;
      for (let i = 0; i + 4 < flat.length; i += 5) {
        const nodeId = String(flat[i + 1]);
        if (flat[i] === 'done') {
          claimed.push({ kind: 'done', nodeId, readied: splitCsv(flat[i + 2]) });
          continue;
        }
        const needs = siblings.find((s) => s.id === nodeId)!.needs;
        claimed.push({
          kind: 'run',
          nodeId,
          attempt: Number(flat[i + 2]),
          context: decodeReads(flat[i + 3] as ScriptReply, needs.context),
          outputs: decodeReads(flat[i + 4] as ScriptReply, needs.outputs),
        });
      }
      return {
        kind: 'run',
        version: String(reply[1]),
        blueprintId: String(reply[2]),
        attempt: Number(reply[3]),
        context: decodeReads(reply[4] as ScriptReply, node.needs.context),
        outputs: decodeReads(reply[5] as ScriptReply, node.needs.outputs),
        siblings: claimed,
      };
    }
    case 'done':
      return { kind: 'done', readied: splitCsv(reply[1]) };
    case 'ended':
      return { kind: 'ended', runStatus: String(reply[1]) as RunStatus, ...parentField(reply[2]) };
    case 'parked': {
      const wake = reply[2] ? Number(reply[2]) : undefined;
      return { kind: 'parked', nodeStatus: String(reply[1]) as 'waiting' | 'sleeping', attempt: Number(reply[3]), ...(wake === undefined ? {} : { wake }) };
    }
    default:
      return { kind: 'skip', reason: String(reply[1]) };
  }
}

/** complete-node-4.lua; `needsOf` says how each claimed node's reads come back (only called for claims). */
export function decodeCompleteNode(reply: ScriptReply, needsOf: ((nodeId: string) => NodeNeeds) | undefined): CompleteNodeReply {
  if (reply[0] === 'stale') return { kind: 'stale', runStatus: String(reply[1]), ...parentField(reply[2]) };
  if (reply[0] === 'duplicate') return { kind: 'duplicate', nodeStatus: String(reply[1]), ready: splitCsv(reply[2]), claimed: decodeClaims(reply, 3, needsOf) };
  if (reply[0] === 'limit') return { kind: 'limit', contextBytes: Number(reply[1]) };
  return { kind: 'ok', runStatus: String(reply[1]) as RunStatus, ready: splitCsv(reply[3]), claimed: decodeClaims(reply, 4, needsOf), ...parentField(reply[2]) };
}

/** Claimed nodes from `from` on: {nodeId, attempt, ctxReply, outReply} each. */
function decodeClaims(reply: ScriptReply, from: number, needsOf: ((nodeId: string) => NodeNeeds) | undefined): ClaimedNode[] {
  const claimed: ClaimedNode[] = [];
  for (let i = from; i + 3 < reply.length; i += 4) {
    const nodeId = String(reply[i]);
    const needs = needsOf!(nodeId);
    claimed.push({
      nodeId,
      attempt: Number(reply[i + 1]),
      context: decodeReads(reply[i + 2] as ScriptReply, needs.context),
      outputs: decodeReads(reply[i + 3] as ScriptReply, needs.outputs),
    });
  }
  return claimed;
}

/** fail-node-4.lua: the run's ending, or undefined when the run had already ended or the node finished. */
export function decodeFailNode(reply: ScriptReply): RunEnding | undefined {
  return reply[0] === 'failed' ? ending(reply) : undefined;
}

/** cancel-run-4.lua */
export function decodeCancelRun(reply: ScriptReply): CancelRunReply {
  if (reply[0] === 'cancelled') return { outcome: 'cancelled', ending: ending(reply) };
  if (reply[0] === 'missing') return { outcome: 'missing' };
  return { outcome: 'not-running', status: String(reply[1]) as RunStatus };
}

/** redrive-run-4.lua */
export function decodeRedriveRun(reply: ScriptReply): RedriveRunReply {
  if (reply[0] === 'redriven') {
    const readyCsv = String(reply[4] ?? '');
    const deadline = reply[3] ? Number(reply[3]) : undefined;
    return {
      outcome: 'redriven',
      redrives: Number(reply[1]),
      version: String(reply[2]),
      ...(deadline === undefined ? {} : { deadline }),
      ready: readyCsv === '' ? [] : readyCsv.split(','),
      children: (reply.slice(5) as string[]).map(String),
    };
  }
  if (reply[0] === 'missing') return { outcome: 'missing' };
  return { outcome: 'not-redrivable', status: String(reply[1]) as RunStatus, ...parentField(reply[2]) };
}

/** wait-node-4.lua */
export function decodeWaitNode(reply: ScriptReply): WaitNodeReply {
  if (reply[0] === 'stale') return { outcome: 'stale', runStatus: String(reply[1]) };
  return { outcome: reply[0] === 'waiting' ? 'waiting' : 'not-running' };
}

/** release-node-4.lua: the nodes given back (queued again, their attempt undone). */
export type ReleaseNodeReply = { outcome: 'ok'; released: string[] } | { outcome: 'stale'; runStatus: string };

export function decodeReleaseNode(reply: ScriptReply): ReleaseNodeReply {
  if (reply[0] === 'stale') return { outcome: 'stale', runStatus: String(reply[1]) };
  return { outcome: 'ok', released: splitCsv(reply[1]) };
}

/** wait-node-4.lua, for a wait or sleep node. */
export function decodeParkNode(reply: ScriptReply): ParkNodeReply {
  if (reply[0] === 'parked') return { outcome: 'parked' };
  if (reply[0] === 'stale') return { outcome: 'stale', runStatus: String(reply[1]) };
  return { outcome: 'not-running', nodeStatus: String(reply[1]) };
}

/** cancel-run-4.lua called with an error (a run past its deadline): the run's ending, or undefined when it had already ended. */
export function decodeTimeOutRun(reply: ScriptReply): RunEnding | undefined {
  return reply[0] === 'failed' ? ending(reply) : undefined;
}

/** start-fan-out-4.lua, collect-child-4.lua */
export function decodeFanOut(reply: ScriptReply): FanOutReply {
  switch (reply[0]) {
    case 'start': {
      const base = String(reply[1]);
      const common = JSON.parse(String(reply[3])) as Record<string, unknown>;
      const children: FanOutChild[] = [];
      for (let i = 4; i + 1 < reply.length; i += 2) {
        const index = Number(reply[i]);
        children.push({ runId: `${base}-${index}`, index, input: { ...common, ...(JSON.parse(String(reply[i + 1])) as Record<string, unknown>) } });
      }
      return { kind: 'start', blueprintId: String(reply[2]), children };
    }
    case 'all':
      return { kind: 'all', values: reply.slice(1).map((v) => JSON.parse(String(v)) as unknown) };
    case 'halted':
      return { kind: 'halted', running: reply.slice(1).map(String) };
    default:
      return { kind: reply[0] === 'pending' ? 'pending' : reply[0] === 'stale' ? 'stale' : 'not-running' };
  }
}

function splitCsv(value: ScriptReply[number] | undefined): string[] {
  return value ? String(value).split(',') : [];
}

function parentField(value: ScriptReply[number] | undefined): { parent?: ParentLink } {
  return value ? { parent: parseParentLink(String(value)) } : {};
}

/** {tag, parent, childRunId...} */
function ending(reply: ScriptReply): RunEnding {
  return { ...parentField(reply[1]), children: (reply.slice(2) as string[]).map(String) };
}

/** A node's reads: HGETALL's flat list when it needs everything, else HMGET's values in the order of its names. */
function decodeReads(reply: ScriptReply, names: readonly string[] | '*'): Record<string, unknown> {
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
