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

  /**
   * One fleet-wide LLM limit's keys, in the order its scripts take them (see
   * src/store/lua/limits/includes/limit-context.lua); all share the tag `{llm:<limitId>}`, one slot.
   */
  llmLimitKeys(limitId: string): [leases: string, window: string, tokens: string, state: string, queue: string, waiters: string] {
    const base = `${this.prefix}:{llm:${limitId}}`;
    return [`${base}:leases`, `${base}:window`, `${base}:tokens`, `${base}:state`, `${base}:queue`, `${base}:waiters`];
  }

  /** Hash: limit id -> the limit as the workers that use it configured it (for GET /limits, switchyard limits). */
  llmLimits(): string {
    return `${this.prefix}:llm-limits`;
  }

  /** Carries the id of a limit that may have room again (a slot released, the head of its line served). */
  llmLimitWake(): string {
    return `${this.prefix}:llm-limits:wake`;
  }

  /**
   * Sorted set: the ids of running runs, scored by the last time the reconciler saw them progress (at
   * first their start). Its own slot, one key for the whole deployment: written with a separate ZADD
   * after the start-run script (a run script cannot touch it on a cluster), removed from lazily by the
   * reconciler when it finds a run ended. See src/executor/recovery.ts.
   */
  runningRuns(): string {
    return `${this.prefix}:running`;
  }

  /** Hash: worker id -> its heartbeat (JSON: sequence number, time, the jobs it holds with their lock tokens). */
  workers(): string {
    return `${this.prefix}:workers`;
  }

  /** The recovery lease: the id of the one worker that watches the others and reconciles runs (SET NX PX). */
  recoveryLease(): string {
    return `${this.prefix}:recovery-lease`;
  }

  /**
   * A run's pinned copy of a blueprint version by content hash, stored when a run starts, with a TTL that
   * outlives the runs using it (its own slot; never read inside a run script).
   */
  blueprint(version: string): string {
    return `${this.prefix}:blueprint:${version}`;
  }

  /**
   * The stored (pushed or seeded) blueprints, which never expire. All share the hash tag `{bp}`, so the
   * push script touches one slot: `latest` (hash: blueprint id -> its latest version), `versions` (sorted
   * set per id: version -> first push time, epoch ms) and `stored` (string per version: the blueprint JSON).
   */
  blueprintRegistry(id: string, version: string): BlueprintRegistryKeys {
    return { latest: this.blueprintLatest(), versions: this.blueprintVersions(id), stored: this.storedBlueprint(version) };
  }

  /** Hash: blueprint id -> latest stored version. */
  blueprintLatest(): string {
    return `${this.prefix}:{bp}:latest`;
  }

  /** Sorted set: the stored versions of one blueprint id, scored by first push time (epoch ms). */
  blueprintVersions(id: string): string {
    return `${this.prefix}:{bp}:versions:${id}`;
  }

  /** String: a stored blueprint version's JSON (never expires). */
  storedBlueprint(version: string): string {
    return `${this.prefix}:{bp}:stored:${version}`;
  }
}

/** The keys the push script takes (KEYS[1..3] of push-blueprint-3.lua), by name. */
export interface BlueprintRegistryKeys {
  latest: string;
  versions: string;
  stored: string;
}
