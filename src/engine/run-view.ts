import type { SerializedError } from '../errors.js';
import type { NodeStatus, RunStatus } from './statuses.js';

/** One node of a run as users see it. */
export interface NodeView {
  status: NodeStatus;
  /** Attempts started so far (0 for a node that never ran). */
  attempts: number;
  error?: SerializedError;
  /** Epoch ms of the last attempt's start and of the node's end. */
  startedAt?: number;
  endedAt?: number;
  /** Which worker ran the last attempt. */
  worker?: string;
}

/** A run as users see it: flowcraft's `{ status, context }` plus per-node states and outputs. */
export interface RunView {
  runId: string;
  blueprintId: string;
  /** Content hash of the blueprint version the run executes. */
  version: string;
  status: RunStatus;
  /** The run's context without internal keys. */
  context: Record<string, unknown>;
  /** Each finished node's output, by node id. */
  outputs: Record<string, unknown>;
  nodes: Record<string, NodeView>;
  /** Why the run failed: the node and the reason. */
  error?: SerializedError & { nodeId?: string };
  createdAt?: number;
  endedAt?: number;
}
