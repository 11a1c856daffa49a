import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from '../types/redis-client.js';
import { EVENTS_PER_READ, readRunEvents, waitForRunEvents, type RunEvent } from '../store/run-events.js';

export { STREAM_ID_PATTERN, type RunEvent } from '../store/run-events.js';

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
 * Reads runs' event streams (with src/store/run-events.ts), optionally waiting for new events with XREAD
 * BLOCK. A blocked connection can do nothing else, so blocking reads never use the shared client: they
 * take a connection of their own from a small pool (made on demand with `duplicate()`, closed when idle).
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
    this.count = options.count ?? EVENTS_PER_READ;
  }

  /** Events of the stream at `key` after the id `after` (from the start when undefined), oldest first. */
  async range(key: string, after: string | undefined): Promise<RunEvent[]> {
    return readRunEvents(this.redis, key, after, this.count);
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
      const events = await waitForRunEvents(connection.redis, key, after, waitMs, this.count);
      healthy = true;
      return events;
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
