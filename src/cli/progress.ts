import type { Redis } from 'ioredis';
import type { StoreKeys } from '../store/keys.js';
import { followRunEvents as followStoredEvents, type FollowOptions } from '../store/run-events.js';
import { readRunHead } from '../store/run-state.js';
import { palette, formatDuration } from './common.js';

export type { FollowOptions } from '../store/run-events.js';

/**
 * Live progress of a run in the terminal: the run's event stream (and its child runs' streams) followed
 * with XREAD BLOCK, one line per thing that happens (a node queued, running, done, skipped, waiting for a
 * child run or a loop's iteration, a map's children done so far, failed, retried), with the time since the
 * run started and the worker that ran each node.
 */

/**
 * What the progress printer shows one line (or two) for: a run event (src/store/run-events.ts) with the
 * run it belongs to, or one the in-process demo makes up in the same shape.
 */
export interface ProgressEvent {
  runId: string;
  /** The stream entry id. */
  id: string;
  /** `run.started`, `node.done`, … */
  type: string;
  /** Epoch ms. */
  at: number;
  node?: string;
  /** Every field of the entry but its id, as stored. */
  fields: Record<string, string>;
  /** For a child run's events: the subflow nodes that lead to it from the followed run, outermost first. */
  path: string[];
  /** On `run.started`: the run's blueprint and the nodes queued first. */
  run?: { blueprintId: string; startNodes: string[] };
}

/**
 * The run's events (src/store/run-events.ts `followRunEvents`) as progress events: oldest first, then live,
 * until the run ends; a `run.started` event carries the run's blueprint and start nodes.
 * @throws {SwitchyardError} RUN_NOT_FOUND when there is no such run
 */
export async function* followRunEvents(redis: Redis, keys: StoreKeys, runId: string, options: FollowOptions = {}): AsyncGenerator<ProgressEvent> {
  for await (const { runId: from, path, event: stored } of followStoredEvents(redis, keys, runId, options)) {
    const { id, ...rest } = stored;
    const fields: Record<string, string> = rest;
    const event: ProgressEvent = { runId: from, id, type: stored.type, at: Number(stored.at), fields, path };
    if (fields.node !== undefined) event.node = fields.node;
    if (stored.type === 'run.started') {
      const { blueprintId, startNodes } = await readRunHead(redis, keys, from);
      event.run = { blueprintId, startNodes };
    }
    yield event;
  }
}

export interface ProgressOptions {
  /** Receives each line. */
  write(line: string): void;
  /** ANSI colours. @default false */
  color?: boolean;
  /** How a worker is named in the lines (e.g. "worker 1 (pid 4242)"). @default its id */
  workerLabel?(workerId: string): string;
  /** Put before the printed `switchyard signal` command (e.g. `REDIS_URL=… ` for a private Redis). @default '' */
  commandPrefix?: string;
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
export function createProgressPrinter(options: ProgressOptions): (event: ProgressEvent) => void {
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
    sleeping: c.dim,
    mapping: c.magenta,
    retrying: c.yellow,
    failed: c.red,
    cancelled: c.red,
    started: c.bold,
    completed: (s) => c.bold(c.green(s)),
  };
  const line = (event: ProgressEvent, verb: string, subject: string, detail = '') => {
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
      case 'node.waiting': {
        if (f.child !== undefined) {
          line(event, 'waiting', node, c.dim(`for child run ${f.child}${f.index ? ` (iteration ${f.index})` : ''}`));
          return;
        }
        const actions = f.actions ? f.actions.split(',') : [];
        const until = f.wake ? `; times out in ${formatDuration(Number(f.wake) - event.at)}` : '';
        line(event, 'waiting', node, `for a signal${f.prompt ? `: ${JSON.stringify(f.prompt)}` : ''}${c.dim(` (actions: ${actions.join(', ') || 'none'}${until})`)}`);
        // How to answer it, ready to copy.
        options.write(`${' '.repeat(10)}signal it: ${options.commandPrefix ?? ''}switchyard signal ${event.runId} ${node}${actions.length ? ` --action ${actions[0]}` : ''}${actions.length > 1 ? c.dim(`   (or ${actions.slice(1).join(', ')})`) : ''}`);
        return;
      }
      case 'node.sleeping':
        line(event, 'sleeping', node, c.dim(`until ${new Date(Number(f.wake)).toISOString()} (${formatDuration(Number(f.wake) - event.at)}; no worker slot held)`));
        return;
      case 'node.progress': {
        // A map's children: "12 of 200 done, 1 failed, 10 running".
        const ended = Number(f.completed ?? 0) + Number(f.failed ?? 0);
        const failed = Number(f.failed ?? 0) > 0 ? c.red(`, ${f.failed} failed`) : '';
        line(event, 'mapping', node, `${ended} of ${f.total ?? '?'} done${failed}${c.dim(`, ${f.running ?? 0} running`)}`);
        return;
      }
      case 'node.retrying':
        line(event, 'retrying', node, `attempt ${f.attempt ?? '?'} failed: ${errorMessage(f.error)}; again in ${formatDuration(Number(f.delayMs ?? 0))}`);
        return;
      case 'node.failed':
        line(event, 'failed', node, c.red(errorMessage(f.error)));
        return;
      case 'nodes.cancelled':
        line(event, 'cancelled', (f.nodes ?? '').split(',').join(', '));
        return;
      case 'run.repaired':
        line(event, 'repaired', (f.nodes ?? '').split(',').join(', '), c.yellow(`re-enqueued: ${f.reason ?? 'no job held them'}`));
        return;
      case 'run.redriven':
        line(event, 'redriven', `redrive ${f.redrives ?? '?'}`, c.yellow(`ready again: ${(f.ready ?? '').split(',').filter(Boolean).join(', ') || 'none'}${f.children ? `; child runs redriven: ${f.children.split(',').join(', ')}` : ''}`));
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
