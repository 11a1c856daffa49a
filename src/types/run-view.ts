import type { SerializedError } from '../errors.js';
import type { TokenUsage } from './usage.js';
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
  /** A subflow node's child run (a loop node's current or last iteration). */
  childRunId?: string;
  /** A node that ran child runs one after another (a loop: one per iteration, in order), once there is more than one. */
  children?: string[];
  /** A node that fans out to many child runs (a map): how far they are. */
  fanOut?: FanOutProgress;
  /** Tokens an LLM node used. */
  usage?: TokenUsage;
  /** What produced the answer, e.g. `{ provider: 'offline', model: 'offline-rules-1' }`. */
  meta?: Record<string, unknown>;
  /** A `waiting` or `sleeping` node's wake-up time (epoch ms), when it has one. */
  wakeAt?: number;
}

/** A node waiting for a signal, as the run view lists it. */
export interface WaitingNode {
  nodeId: string;
  /** The wait node's prompt, filled from its inputs. */
  prompt: string;
  /** Epoch ms since when it waits. */
  since: number;
  /** Epoch ms when it times out, if it has a timeout. */
  timeoutAt?: number;
  /** The actions a signal may choose: those of the node's outgoing edges. */
  actions: string[];
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
  /** For a child run: the parent run and its subflow node (and, for a map item or loop iteration, its index). */
  parent?: { runId: string; nodeId: string; index?: number };
  /** Tokens used by all LLM nodes of the run (not counting child runs). */
  usage?: TokenUsage;
  /** Nodes waiting for a signal now (`POST /runs/{runId}/signals/{nodeId}` answers them). */
  waiting?: WaitingNode[];
  /** Epoch ms past which the run fails with RUN_TIMEOUT, when it was started with a timeout. */
  deadline?: number;
  /** How many times the run was redriven (`POST /runs/{runId}/redrive`); absent when never. */
  redrives?: number;
}

/** What a signal did: the node's new state (`done`) and the run's. */
export interface SignalOutcome {
  runId: string;
  nodeId: string;
  status: NodeStatus;
  runStatus: RunStatus;
  /** The action the signal chose. */
  action?: string;
}

/** A fanning-out node's children: how many there are and how many ended which way. */
export interface FanOutProgress {
  total: number;
  /** Children that completed. */
  completed: number;
  /** Children that failed or were cancelled. */
  failed: number;
  /** Children started and not yet collected. */
  running: number;
}
