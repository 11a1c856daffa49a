/** Run states. `completed`, `failed` and `cancelled` are terminal and final. */
export const RunStatuses = {
  running: 'running',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
} as const;
export type RunStatus = (typeof RunStatuses)[keyof typeof RunStatuses];

/** Node states. `done`, `skipped`, `failed` and `cancelled` are terminal. */
export const NodeStatuses = {
  pending: 'pending',
  queued: 'queued',
  running: 'running',
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
