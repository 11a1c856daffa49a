/** Switchyard's public API. */
export { SwitchyardClient, RunHandle, type ClientOptions, type StartOptions, type ResultOptions } from './client/client.js';
export { SwitchyardWorker, type WorkerOptions } from './queue/worker.js';
export { BlueprintRegistry, type LoadedBlueprint } from './blueprint/load.js';
export { parseCondition, ConditionError, type Condition, type ConditionScope } from './blueprint/condition.js';
export type { Blueprint, BlueprintInput, NodeDefinition, EdgeDefinition, NodeConfig } from './blueprint/schema.js';
export { NodeKindRegistry, type NodeKind, type NodeContext, type NodeResult, type NodeReads } from './nodes/types.js';
export { builtinNodeKinds, templateKind, outputKind, routeKind } from './nodes/builtin.js';
export { runInMemory, type MemoryRunOptions } from './engine/memory-executor.js';
export { compileGraph, type Graph } from './engine/graph.js';
export type { RunView, NodeView } from './engine/run-view.js';
export { RunStatuses, NodeStatuses, type RunStatus, type NodeStatus } from './engine/statuses.js';
export * from './errors.js';
export type { SwitchyardOptions } from './options.js';
export { startLocalRedis, RedisNotInstalledError, type LocalRedis } from './local/redis-server.js';
