/** Run states. `completed`, `failed` and `cancelled` are terminal and final. */
export const RunStatuses = {
  running: 'running',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
} as const;
export type RunStatus = (typeof RunStatuses)[keyof typeof RunStatuses];

/**
 * Node states. `done`, `skipped`, `failed` and `cancelled` are terminal. `waiting` (a `wait` node, until a
 * signal or its timeout) and `sleeping` (a durable `sleep`) are parked: no job runs them and no worker
 * slot holds them on purpose; a timed park has `<node>.wake` in run state and a delayed wake job.
 */
export const NodeStatuses = {
  pending: 'pending',
  queued: 'queued',
  running: 'running',
  waiting: 'waiting',
  sleeping: 'sleeping',
  done: 'done',
  skipped: 'skipped',
  failed: 'failed',
  cancelled: 'cancelled',
} as const;
export type NodeStatus = (typeof NodeStatuses)[keyof typeof NodeStatuses];

export function isTerminalRunStatus(status: string): status is 'completed' | 'failed' | 'cancelled' {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

export function isTerminalNodeStatus(status: string): boolean {
  return status === 'done' || status === 'skipped' || status === 'failed' || status === 'cancelled';
}

/** A parked node: it waits for a signal or a timer, with no job running it and no worker slot held. */
export function isParkedNodeStatus(status: string): status is 'waiting' | 'sleeping' {
  return status === 'waiting' || status === 'sleeping';
}
