/**
 * The contract between the benchmark orchestrator (bench/run.ts) and each engine under test. Every
 * engine runs its workers in separate OS processes (spawned by the orchestrator) and is driven from the
 * orchestrator's process the way its users drive it (its client API).
 */
import type { BlueprintInput } from '../src/blueprint/schema.js';

/** One benchmark graph: a blueprint in the shared (flowcraft-compatible) format. */
export interface Scenario {
  name: 'chain10' | 'diamond' | 'moderation' | 'wide50' | 'subflow';
  /** The blueprint runs start; node kind `template` everywhere (no-op cost), plus `subflow` in `subflow`. */
  blueprint: BlueprintInput & { id: string };
  /** Blueprints the main one calls (the `subflow` scenario's child). */
  children: Array<BlueprintInput & { id: string }>;
  /** Input of every run. */
  input: Record<string, unknown>;
  /** Node executions one run performs (nodes that run, over parent and child runs; skipped ones excluded). */
  nodeExecutions: number;
}

/** Passed to a worker process as JSON in argv[2]. */
export interface WorkerConfig {
  redisUrl: string;
  /** Queue name / key prefix unique to this engine and scenario, so nothing is shared between measurements. */
  namespace: string;
  concurrency: number;
  scenario: Scenario;
}

/**
 * Messages a worker process sends to the orchestrator over IPC (`process.send`): `ready` once it is
 * consuming; `stats` in reply to a `{ type: 'stats' }` message.
 */
export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'stats'; pid: number; cpuUserMicros: number; cpuSystemMicros: number; rssBytes: number };

/** The orchestrator's side of an engine: starts runs and awaits them as the engine's users would. */
export interface EngineClient {
  /** Starts one run of the scenario; resolves with its run id once the run has been accepted. */
  start(): Promise<string>;
  /** Resolves when the run has finished (rejects if it failed). */
  wait(runId: string): Promise<void>;
  close(): Promise<void>;
}

/** One engine under test. */
export interface Engine {
  /** e.g. `raw-bullmq`, `flowcraft`, `switchyard-c5`, `switchyard`. */
  name: string;
  /** Absolute path of the worker entry (run with tsx), which reads a WorkerConfig from argv[2]. */
  workerEntry: string;
  concurrency: number;
  /** False when the engine cannot run the `subflow` scenario as distributed child runs (then it is not measured). */
  supportsSubflow?: boolean;
  /** Creates the orchestrator-side client (connects to Redis, registers blueprints). */
  createClient(config: WorkerConfig): Promise<EngineClient>;
}
