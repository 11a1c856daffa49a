/** Switchyard's public API. */
export { SwitchyardClient, RunHandle, type ClientOptions, type StartOptions, type ResultOptions, type RedriveOutcome } from './client/client.js';
export { SwitchyardWorker, type WorkerOptions } from './executor/worker.js';
export { BlueprintRegistry, type LoadedBlueprint } from './blueprint/load.js';
export { parseCondition, ConditionError, type Condition, type ConditionScope } from './blueprint/condition.js';
export type { Blueprint, BlueprintInput, NodeDefinition, EdgeDefinition, NodeConfig } from './blueprint/schema.js';
export {
  NodeKindRegistry,
  type NodeKind,
  type NodeContext,
  type NodeResult,
  type NodeReads,
  type NodeSignal,
  type ParkRequest,
  type FanOut,
  type ChildRunOptions,
} from './types/node-kind.js';
export { builtinNodeKinds, templateKind, outputKind, routeKind, sleepKind } from './nodes/builtin.js';
export { waitKind } from './nodes/wait.js';
export { runInMemory, MemorySignals, type MemoryRunOptions } from './executor/memory-executor.js';
export { compileGraph, type Graph } from './engine/graph.js';
export type { RunView, NodeView, WaitingNode, SignalOutcome, FanOutProgress } from './types/run-view.js';
export { RunStatuses, NodeStatuses, type RunStatus, type NodeStatus } from './types/statuses.js';
export * from './errors.js';
export { queueShardPrefixes, type SwitchyardOptions } from './options.js';
export { MAX_PRIORITY } from './queue/node-queue.js';
export { startLocalRedis, RedisNotInstalledError, type LocalRedis } from './local/redis-server.js';
export { createNodeKinds, type NodeKindsOptions } from './nodes/index.js';
export { subflowKind } from './nodes/subflow.js';
export { mapKind, MAX_MAP_ITEMS, MAX_MAP_CONCURRENCY } from './nodes/map.js';
export { loopKind, MAX_LOOP_ITERATIONS } from './nodes/loop.js';
export { createLlmKinds } from './nodes/llm.js';
export { createLambdaKind, type LambdaKindOptions } from './nodes/lambda.js';
export { createLlmProvider, llmConfigFromEnv, type LlmConfig, type LlmProvider, type TokenUsage } from './llm/index.js';
export { createOfflineProvider, OFFLINE_RULES } from './llm/offline.js';
