import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from '../store/redis-store.js';

/** One event of a run's timeline: its stream id and its fields (`type`, `at`, `node`, …). */
export type RunEvent = Record<string, string> & { id: string };

/** A Redis stream id (`<ms>-<seq>`), or a bare millisecond time. */
export const STREAM_ID_PATTERN = /^\d{1,20}(-\d{1,20})?$/;

export interface EventFeedOptions {
  /** Blocking reads open at most this many connections at once; beyond that a read answers at once. @default 16 */
  maxConnections?: number;
  /** An idle connection is closed after this long. @default 10000 */
  idleMs?: number;
  /** Events per answer. @default 1000 (a run's stream keeps about that many) */
  count?: number;
}

interface Pooled {
  redis: Redis | Cluster;
  idleTimer?: NodeJS.Timeout;
}

/**
 * Reads runs' event streams, optionally waiting for new events with XREAD BLOCK. A blocked connection
 * can do nothing else, so blocking reads never use the shared client: they take a connection of their
 * own from a small pool (made on demand with `duplicate()`, closed when idle).
 */
export class EventFeed {
  private readonly idle: Pooled[] = [];
  private readonly all = new Set<Pooled>();
  private closed = false;
  private readonly maxConnections: number;
  private readonly idleMs: number;
  private readonly count: number;

  constructor(
    private readonly redis: RedisClient,
    options: EventFeedOptions = {},
  ) {
    this.maxConnections = options.maxConnections ?? 16;
    this.idleMs = options.idleMs ?? 10_000;
    this.count = options.count ?? 1000;
  }

  /** Events of the stream at `key` after the id `after` (from the start when undefined), oldest first. */
  async range(key: string, after: string | undefined): Promise<RunEvent[]> {
    const entries = await this.redis.xrange(key, after === undefined ? '-' : `(${after}`, '+', 'COUNT', this.count);
    return entries.map(toEvent);
  }

  /**
   * Waits up to `waitMs` for events after `after` and returns them (those already there at once); `[]`
   * when none came, or when every pooled connection is busy (the caller simply polls again).
   */
  async wait(key: string, after: string | undefined, waitMs: number): Promise<RunEvent[]> {
    const connection = this.acquire();
    if (!connection) return [];
    let healthy = false;
    try {
      const reply = (await connection.redis.xread('COUNT', this.count, 'BLOCK', Math.max(1, Math.round(waitMs)), 'STREAMS', key, after ?? '0-0')) as
        | Array<[string, Array<[string, string[]]>]>
        | null;
      healthy = true;
      return (reply?.[0]?.[1] ?? []).map(toEvent);
    } finally {
      this.release(connection, healthy);
    }
  }

  /** Closes every connection at once; reads still blocked end with an error. */
  async close(): Promise<void> {
    this.closed = true;
    this.idle.length = 0;
    for (const pooled of this.all) {
      clearTimeout(pooled.idleTimer);
      pooled.redis.disconnect();
    }
    this.all.clear();
  }

  private acquire(): Pooled | undefined {
    if (this.closed) return undefined;
    const pooled = this.idle.pop();
    if (pooled) {
      clearTimeout(pooled.idleTimer);
      return pooled;
    }
    if (this.all.size >= this.maxConnections) return undefined;
    const redis = this.redis.duplicate() as Redis | Cluster;
    // Errors surface as rejected commands; an unhandled 'error' event would only add noise.
    redis.on('error', () => undefined);
    const made: Pooled = { redis };
    this.all.add(made);
    return made;
  }

  private release(pooled: Pooled, healthy: boolean): void {
    if (!healthy || this.closed) {
      this.all.delete(pooled);
      pooled.redis.disconnect();
      return;
    }
    pooled.idleTimer = setTimeout(() => {
      const at = this.idle.indexOf(pooled);
      if (at !== -1) this.idle.splice(at, 1);
      this.all.delete(pooled);
      pooled.redis.quit().catch(() => undefined);
    }, this.idleMs);
    pooled.idleTimer.unref();
    this.idle.push(pooled);
  }
}

function toEvent([id, fields]: [string, string[]]): RunEvent {
  // Built on a null prototype so a field named "__proto__" stays a field; then copied to a plain object.
  const event: Record<string, string> = Object.create(null);
  event.id = id;
  for (let i = 0; i + 1 < fields.length; i += 2) event[fields[i]!] = fields[i + 1]!;
  return { ...event } as RunEvent;
}
