import type { Redis } from 'ioredis';
import type { LuaTopology } from '../engine/graph.js';
import { childRunId } from '../engine/ids.js';
import { isTerminalRunStatus } from '../engine/statuses.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import type { StoreKeys } from '../store/keys.js';
import { palette, formatDuration } from './common.js';

/**
 * Live progress of a run in the terminal: the run's event stream (and its child runs' streams) followed
 * with XREAD BLOCK, one line per thing that happens (a node queued, running, done, skipped, waiting for a
 * child run, failed, retried), with the time since the run started and the worker that ran each node.
 */

/** One entry of a run's event stream. */
export interface RunEvent {
  runId: string;
  /** The stream entry id. */
  id: string;
  /** `run.started`, `node.done`, … */
  type: string;
  /** Epoch ms. */
  at: number;
  node?: string;
  /** Every field of the entry, as stored. */
  fields: Record<string, string>;
  /** For a child run's events: the subflow nodes that lead to it from the followed run, outermost first. */
  path: string[];
  /** On `run.started`: the run's blueprint and the nodes queued first. */
  run?: { blueprintId: string; startNodes: string[] };
}

export interface FollowOptions {
  /** Follow child runs (subflows) too. @default false */
  children?: boolean;
  /** Stops following (the generator returns). */
  signal?: AbortSignal;
  /** Start after this stream id. @default '0' (the whole history, then live) */
  from?: string;
  /**
   * Longest single XREAD BLOCK. When nothing arrives for this long the run's status is read once, so a run
   * whose end event was trimmed away or that expired does not keep us waiting. @default 10000
   */
  blockMs?: number;
}

const END_EVENTS = new Set(['run.completed', 'run.failed', 'run.cancelled']);

/**
 * The run's events, oldest first, then live as they happen, until the run ends (its `run.*` end event is
 * the last one yielded). Blocking reads use a connection of their own.
 * @throws {SwitchyardError} RUN_NOT_FOUND when there is no such run
 */
export async function* followRunEvents(redis: Redis, keys: StoreKeys, runId: string, options: FollowOptions = {}): AsyncGenerator<RunEvent> {
  const stateKey = keys.run(runId)[0];
  if ((await redis.hget(stateKey, 'status')) === null) throw new SwitchyardError(ErrorCodes.RUN_NOT_FOUND, `no run "${runId}" (or it expired)`, { runId });
  const blockMs = options.blockMs ?? 10_000;
  const reader = redis.duplicate();
  reader.on('error', () => undefined); // surfaced by the pending command instead
  const onAbort = () => reader.disconnect();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const streams = new Map<string, { runId: string; last: string; path: string[]; parentStream?: string; node?: string }>();
  streams.set(keys.run(runId)[3], { runId, last: options.from ?? '0', path: [] });
  try {
    for (;;) {
      if (options.signal?.aborted) return;
      const names = [...streams.keys()];
      let reply: Array<[string, Array<[string, string[]]>]> | null;
      try {
        reply = (await reader.xread('BLOCK', blockMs, 'STREAMS', ...names, ...names.map((n) => streams.get(n)!.last))) as typeof reply;
      } catch (err) {
        if (options.signal?.aborted) return;
        throw err;
      }
      if (!reply) {
        const status = await redis.hget(stateKey, 'status');
        if (status === null || isTerminalRunStatus(status)) return;
        continue;
      }
      // Entries of several streams in one reply: in time order (stream ids are server time, then sequence).
      const batch = reply.flatMap(([name, entries]) => entries.map(([id, flat]) => ({ name, id, flat })));
      batch.sort((a, b) => compareStreamIds(a.id, b.id));
      for (const { name, id, flat } of batch) {
        const source = streams.get(name);
        if (!source) continue;
        // A stream added by an earlier entry of this batch: read the rest again together with it, in order.
        if (streams.size !== names.length || [...streams.keys()].some((key, i) => key !== names[i])) break;
        source.last = id;
        const fields: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
        const event: RunEvent = { runId: source.runId, id, type: fields.type ?? '', at: Number(fields.at), fields, path: source.path };
        if (fields.node !== undefined) event.node = fields.node;
        if (event.type === 'run.started') event.run = await describeRun(redis, keys, source.runId);
        yield event;
        if (options.children && event.node) {
          // A subflow node's child run has a derived id, so its stream is read from the node's start on (and
          // its events come in time order with the parent's); dropped again when the node ends.
          const child = event.type === 'node.started' ? childRunId(source.runId, event.node, Number(fields.attempt)) : fields.child;
          const childStream = child === undefined ? undefined : keys.run(child)[3];
          if (child && childStream && !streams.has(childStream) && (event.type === 'node.started' || event.type === 'node.waiting')) {
            streams.set(childStream, { runId: child, last: '0', path: [...source.path, event.node], parentStream: name, node: event.node });
          }
          if (event.type === 'node.done' || event.type === 'node.failed' || event.type === 'node.retrying') {
            for (const [key, s] of streams) if (s.parentStream === name && s.node === event.node) streams.delete(key);
          }
        }
        if (END_EVENTS.has(event.type)) {
          if (source.runId === runId) return;
          streams.delete(name);
        }
      }
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    reader.disconnect();
  }
}

function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}

/** The run's blueprint and start nodes, from the topology stored with the run. */
async function describeRun(redis: Redis, keys: StoreKeys, runId: string): Promise<{ blueprintId: string; startNodes: string[] }> {
  const [blueprintId, topo] = await redis.hmget(keys.run(runId)[0], 'blueprintId', 'topo');
  let startNodes: string[] = [];
  if (topo) {
    const topology = JSON.parse(topo) as LuaTopology;
    startNodes = topology.ids.filter((_, i) => topology.indeg[i] === 0);
  }
  return { blueprintId: blueprintId ?? '', startNodes };
}

export interface ProgressOptions {
  /** Receives each line. */
  write(line: string): void;
  /** ANSI colours. @default false */
  color?: boolean;
  /** How a worker is named in the lines (e.g. "worker 1 (pid 4242)"). @default its id */
  workerLabel?(workerId: string): string;
}

/**
 * Turns run events into progress lines:
 *
 *     0.004s  running    check_pii                on worker 1
 *     0.009s  done       check_pii -> true        on worker 1 in 5 ms
 *     0.012s  redact ›  queued     mask_pii
 *
 * The clock starts at the first event seen (the followed run's start).
 */
export function createProgressPrinter(options: ProgressOptions): (event: RunEvent) => void {
  const c = palette(options.color ?? false);
  const worker = (id: string | undefined) => (id ? options.workerLabel?.(id) ?? id : 'a worker');
  let t0: number | undefined;
  const runStarts = new Map<string, number>();
  const verbs: Record<string, (s: string) => string> = {
    queued: c.dim,
    running: c.cyan,
    done: c.green,
    skipped: c.yellow,
    waiting: c.magenta,
    retrying: c.yellow,
    failed: c.red,
    cancelled: c.red,
    started: c.bold,
    completed: (s) => c.bold(c.green(s)),
  };
  const line = (event: RunEvent, verb: string, subject: string, detail = '') => {
    t0 ??= event.at;
    const elapsed = `${((event.at - t0) / 1000).toFixed(3)}s`.padStart(8);
    const where = event.path.length ? c.magenta(`${event.path.join(' › ')} › `) : '';
    const paint = verbs[verb] ?? ((s: string) => s);
    const text = `${c.dim(elapsed)}  ${where}${paint(verb.padEnd(10))} ${detail ? subject.padEnd(24) : subject}${detail ? ` ${detail}` : ''}`;
    options.write(text.trimEnd());
  };

  return (event) => {
    const f = event.fields;
    const node = event.node ?? '?';
    switch (event.type) {
      case 'run.started': {
        runStarts.set(event.runId, event.at);
        const what = event.path.length ? `child run ${event.runId}` : `run ${event.runId}`;
        line(event, 'started', `${what}${event.run?.blueprintId ? ` of ${event.run.blueprintId}` : ''}`);
        if (event.run?.startNodes.length) line(event, 'queued', event.run.startNodes.join(', '));
        return;
      }
      case 'node.started':
        line(event, 'running', node, `on ${worker(f.worker)}${Number(f.attempt) > 1 ? c.yellow(` (attempt ${f.attempt})`) : ''}`);
        return;
      case 'node.done': {
        const took = f.startedAt ? ` in ${formatDuration(event.at - Number(f.startedAt))}` : '';
        line(event, 'done', f.action ? `${node} -> ${f.action}` : node, c.dim(`on ${worker(f.worker)}${took}`));
        if (f.ready) line(event, 'queued', f.ready.split(',').join(', '));
        if (f.skipped) line(event, 'skipped', f.skipped.split(',').join(', '));
        return;
      }
      case 'node.waiting':
        line(event, 'waiting', node, c.dim(`for child run ${f.child ?? '?'}`));
        return;
      case 'node.retrying':
        line(event, 'retrying', node, `attempt ${f.attempt ?? '?'} failed: ${errorMessage(f.error)}; again in ${formatDuration(Number(f.delayMs ?? 0))}`);
        return;
      case 'node.failed':
        line(event, 'failed', node, c.red(errorMessage(f.error)));
        return;
      case 'nodes.cancelled':
        line(event, 'cancelled', (f.nodes ?? '').split(',').join(', '));
        return;
      case 'nodes.skipped': // not in Redis streams (node.done lists what it skipped): the in-process demo's summary
        line(event, 'skipped', (f.nodes ?? '').split(',').join(', '));
        return;
      case 'run.completed':
      case 'run.failed':
      case 'run.cancelled': {
        const status = event.type.slice(4);
        const what = event.path.length ? 'child run' : 'run';
        line(event, status, `${what} ${status} after ${formatDuration(event.at - (runStarts.get(event.runId) ?? t0 ?? event.at))}`);
        return;
      }
      default:
        line(event, event.type, node === '?' ? '' : node);
    }
  };
}

function errorMessage(json: string | undefined): string {
  if (!json) return 'unknown error';
  try {
    const parsed = JSON.parse(json) as { message?: unknown };
    return typeof parsed.message === 'string' ? parsed.message : json;
  } catch {
    return json;
  }
}
