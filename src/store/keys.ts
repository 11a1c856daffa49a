/**
 * Every Redis key and channel name Switchyard uses, in one place. All keys of one run share the hash tag
 * `{<runId>}`, so each run script touches a single slot and works on Redis Cluster.
 */
export class StoreKeys {
  constructor(readonly prefix: string = 'sy') {}

  /** The four keys of a run, in the order the run scripts take them. */
  run(runId: string): [state: string, ctx: string, outputs: string, events: string] {
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
