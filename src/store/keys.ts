/**
 * The Redis keys of one run, by name. All share the run's hash tag `{<runId>}`, so each run script touches
 * a single slot and works on Redis Cluster.
 */
export interface RunKeys {
  /** Hash: the run's own fields and every node's `<nodeId>.<field>` (see src/store/run-state.ts). */
  state: string;
  /** Hash: context key -> JSON value. */
  ctx: string;
  /** Hash: node id -> output JSON. */
  outputs: string;
  /** Stream: the run's timeline, capped (see src/store/run-events.ts). */
  events: string;
  /**
   * Hash: fanning-out nodes' per-child inputs and collected values (see src/store/lua/includes/fan-out.lua).
   * The scripts derive it from `state` (same hash tag), so it is not among {@link StoreKeys.scriptKeys}.
   */
  fan: string;
}

/**
 * Every Redis key and channel name Switchyard uses, in one place (as BullMQ's `QueueKeys`). Callers use
 * names ({@link StoreKeys.runKeys}); only the script call needs positions ({@link StoreKeys.scriptKeys}).
 */
export class StoreKeys {
  constructor(readonly prefix: string = 'sy') {}

  /** The run's keys by name. */
  runKeys(runId: string): RunKeys {
    const base = `${this.prefix}:{${runId}}`;
    return { state: `${base}:state`, ctx: `${base}:ctx`, outputs: `${base}:out`, events: `${base}:events`, fan: `${base}:fan` };
  }

  /**
   * The run's keys in the order the run scripts take them (KEYS[1..4]: state, ctx, outputs, events; see
   * src/store/lua/includes/run-context.lua). Built directly, not from {@link runKeys}: it is on every
   * script call.
   */
  scriptKeys(runId: string): [state: string, ctx: string, outputs: string, events: string] {
    const base = `${this.prefix}:{${runId}}`;
    return [`${base}:state`, `${base}:ctx`, `${base}:out`, `${base}:events`];
  }

  /** Published once when the run reaches a terminal state; the message is the status. */
  runEnded(runId: string): string {
    return `${this.prefix}:{${runId}}:ended`;
  }

  /** Carries ids of runs that were cancelled or failed, so workers abort those runs' running nodes. */
  aborts(): string {
    return `${this.prefix}:aborts`;
  }

  /** A blueprint version by content hash (its own slot; never read inside a run script). */
  blueprint(version: string): string {
    return `${this.prefix}:blueprint:${version}`;
  }
}
