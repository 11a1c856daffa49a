import type { Redis, Cluster } from 'ioredis';
import { childRunId } from '../types/ids.js';
import { isTerminalRunStatus } from '../types/statuses.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import type { StoreKeys } from './keys.js';
import type { RedisClient } from '../types/redis-client.js';
import { readRunStatus } from './run-state.js';

/**
 * A run's timeline: the events the run scripts append to its capped stream (src/store/lua, `emit`), and
 * the one reader of that stream (a range, a blocking wait, and a follow of a run and its child runs).
 */

/**
 * What every event has: its stream entry id, and the epoch-ms time of the transition. Values are as the
 * stream stores them (strings: `at: "1767261600000"`), which is also how the API serves them.
 */
type EventHead = {
  id: string;
  at: string;
};

/** Where and when the node's attempt ran (on the events that end an attempt). */
type AttemptFields = {
  node: string;
  /** The attempt number, from 1 ('0' for a node that never started). */
  attempt: string;
  /** Epoch ms, or '' when the node never started. */
  startedAt: string;
  /** The worker id, or '' when the node never started. */
  worker: string;
};

/** start-run: the run was created (its start nodes are queued). */
export type RunStartedEvent = EventHead & { type: 'run.started' };
/** A run reached a terminal state (always its last event). */
export type RunEndedEvent = EventHead & { type: 'run.completed' | 'run.failed' | 'run.cancelled' };
/** A worker claimed a node (start-node, or a claim by complete-node). */
export type NodeStartedEvent = EventHead & { type: 'node.started'; node: string; attempt: string; worker: string };
/** complete-node: the node's result was applied; what it made ready and skipped, comma-joined. */
export type NodeDoneEvent = EventHead & AttemptFields & { type: 'node.done'; action?: string; ready?: string; skipped?: string };
/** retry-node: a failed attempt that will be retried after `delayMs`; `error` is SerializedError JSON. */
export type NodeRetryingEvent = EventHead & AttemptFields & { type: 'node.retrying'; error: string; delayMs: string };
/** fail-node: the node failed for good; `error` is SerializedError JSON. */
export type NodeFailedEvent = EventHead & AttemptFields & { type: 'node.failed'; error: string };
/** release-node: a stopping worker gave the node back, its attempt undone (`attempt` is the one before). */
export type NodeReleasedEvent = EventHead & { type: 'node.released'; node: string; attempt: string; worker: string };
/**
 * wait-node: a node gave up its worker slot until its child run ends (`child`; `index`: a loop's
 * iteration), or a wait node parked until a signal (`prompt`, `actions` comma-joined, and `wake`, epoch
 * ms, when it has a timeout).
 */
export type NodeWaitingEvent = EventHead & { type: 'node.waiting'; node: string; child?: string; index?: string; attempt?: string; prompt?: string; actions?: string; wake?: string };
/** wait-node: a durable sleep parked until `wake` (epoch ms). */
export type NodeSleepingEvent = EventHead & { type: 'node.sleeping'; node: string; attempt: string; wake: string };
/**
 * start-fan-out and collect-child: how a fanning-out node's (a map's) children stand. Written when the
 * fan-out starts, on a failure, every 1% of the children and at the end.
 */
export type NodeProgressEvent = EventHead & { type: 'node.progress'; node: string; total: string; completed: string; failed: string; running: string };
/** fail-node and cancel-run: the run's unfinished nodes, comma-joined, were cancelled. */
export type NodesCancelledEvent = EventHead & { type: 'nodes.cancelled'; nodes: string };

/**
 * redrive-run: the failed or cancelled run runs again (its `redrives`-th redrive): `ready` nodes were queued,
 * `reset` ones went back to pending, `inPlace` ones (subflow/map/loop) wait for their `children` runs, which
 * are redriven in turn; all comma-joined.
 */
export type RunRedrivenEvent = EventHead & { type: 'run.redriven'; redrives: string; ready: string; reset: string; inPlace: string; children: string };

/** One entry of a run's event stream, as the run scripts write it. */
export type RunEvent =
  | RunStartedEvent
  | RunEndedEvent
  | NodeStartedEvent
  | NodeDoneEvent
  | NodeRetryingEvent
  | NodeFailedEvent
  | NodeWaitingEvent
  | NodeReleasedEvent
  | NodeSleepingEvent
  | NodeProgressEvent
  | NodesCancelledEvent
  | RunRepairedEvent
  | RunRedrivenEvent;

export type RunEventType = RunEvent['type'];

/**
 * The reconciler found the run's `nodes` (comma-joined) queued or running with no job that holds them, and
 * enqueued them again (src/executor/recovery.ts; the one event not written by a run script).
 */
export type RunRepairedEvent = EventHead & { type: 'run.repaired'; nodes: string; reason: string };

/** A Redis stream id (`<ms>-<seq>`), or a bare millisecond time. */
export const STREAM_ID_PATTERN = /^\d{1,20}(-\d{1,20})?$/;

/** How many events one read returns: about all a run's stream keeps (the scripts cap it near 1000). */
export const EVENTS_PER_READ = 1000;

type StreamEntry = [id: string, fields: string[]];

/** A stream entry as a {@link RunEvent}. The stream is written by the run scripts only, so it is trusted. */
export function parseRunEvent([id, fields]: StreamEntry): RunEvent {
  // Built on a null prototype so a field named "__proto__" stays a field; then copied to a plain object.
  const event: Record<string, string> = Object.create(null);
  event.id = id;
  for (let i = 0; i + 1 < fields.length; i += 2) event[fields[i]!] = fields[i + 1]!;
  return { ...event } as RunEvent;
}

/** Events of the stream `events` (a run's `runKeys(runId).events`) after the id `after` (from the start when undefined), oldest first. */
export async function readRunEvents(redis: RedisClient, events: string, after: string | undefined, count = EVENTS_PER_READ): Promise<RunEvent[]> {
  const entries = await redis.xrange(events, after === undefined ? '-' : `(${after}`, '+', 'COUNT', count);
  return entries.map(parseRunEvent);
}

/**
 * Waits up to `waitMs` (XREAD BLOCK) for events of `events` after `after` (from the start when undefined)
 * and returns them, those already there at once; `[]` when none came. A blocked connection can do nothing
 * else: pass a dedicated one, never a shared client.
 */
export async function waitForRunEvents(
  connection: RedisClient,
  events: string,
  after: string | undefined,
  waitMs: number,
  count = EVENTS_PER_READ,
): Promise<RunEvent[]> {
  const reply = (await connection.xread('COUNT', count, 'BLOCK', Math.max(1, Math.round(waitMs)), 'STREAMS', events, after ?? '0-0')) as Array<
    [string, StreamEntry[]]
  > | null;
  return (reply?.[0]?.[1] ?? []).map(parseRunEvent);
}

/** An event of a followed run or of one of its child runs. */
export interface FollowedRunEvent {
  /** The run whose stream it came from. */
  runId: string;
  /** For a child run's events: the subflow nodes that lead to it from the followed run, outermost first. */
  path: string[];
  event: RunEvent;
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

const END_EVENTS = new Set<string>(['run.completed', 'run.failed', 'run.cancelled']);

/**
 * The run's events, oldest first, then live as they happen, until the run ends (its `run.*` end event is
 * the last one yielded). With `children`, a subflow node's child run is followed from the node's start to
 * its end, its events interleaved in time order. Blocking reads use a connection of their own.
 * @throws {SwitchyardError} RUN_NOT_FOUND when there is no such run
 */
export async function* followRunEvents(redis: Redis | Cluster, keys: StoreKeys, runId: string, options: FollowOptions = {}): AsyncGenerator<FollowedRunEvent> {
  if ((await readRunStatus(redis, keys, runId)) === undefined) throw new SwitchyardError(ErrorCodes.RUN_NOT_FOUND, `no run "${runId}" (or it expired)`, { runId });
  const blockMs = options.blockMs ?? 10_000;
  const reader = redis.duplicate() as Redis | Cluster;
  reader.on('error', () => undefined); // surfaced by the pending command instead
  const onAbort = () => reader.disconnect();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const streams = new Map<string, { runId: string; last: string; path: string[]; parentStream?: string; node?: string }>();
  streams.set(keys.runKeys(runId).events, { runId, last: options.from ?? '0', path: [] });
  try {
    for (;;) {
      if (options.signal?.aborted) return;
      const names = [...streams.keys()];
      let reply: Array<[string, StreamEntry[]]> | null;
      try {
        reply = (await reader.xread('BLOCK', blockMs, 'STREAMS', ...names, ...names.map((n) => streams.get(n)!.last))) as typeof reply;
      } catch (err) {
        if (options.signal?.aborted) return;
        throw err;
      }
      if (!reply) {
        const status = await readRunStatus(redis, keys, runId);
        if (status === undefined || isTerminalRunStatus(status)) return;
        continue;
      }
      // Entries of several streams in one reply: in time order (stream ids are server time, then sequence).
      const batch = reply.flatMap(([name, entries]) => entries.map((entry) => ({ name, entry })));
      batch.sort((a, b) => compareStreamIds(a.entry[0], b.entry[0]));
      for (const { name, entry } of batch) {
        const source = streams.get(name);
        if (!source) continue;
        // A stream added by an earlier entry of this batch: read the rest again together with it, in order.
        if (streams.size !== names.length || [...streams.keys()].some((key, i) => key !== names[i])) break;
        const event = parseRunEvent(entry);
        source.last = event.id;
        yield { runId: source.runId, path: source.path, event };
        if (options.children && 'node' in event) {
          // A subflow node's child run has a derived id, so its stream is read from the node's start on (and
          // its events come in time order with the parent's); dropped again when the node ends.
          const child =
            event.type === 'node.started' ? childRunId(source.runId, event.node, Number(event.attempt)) : event.type === 'node.waiting' ? event.child : undefined;
          const childStream = child === undefined ? undefined : keys.runKeys(child).events;
          if (child && childStream && !streams.has(childStream)) {
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
