/**
 * A flowcraft worker process for the benchmark: the @flowcraft/bullmq-adapter README setup (one ioredis
 * connection shared by BullMQ, the run context and the coordination store; a FlowRuntime whose options
 * carry the blueprints and the node registry; RedisCoordinationStore; BullMQAdapter.start()).
 *
 * Run as `node --import tsx flowcraft-worker.ts '<WorkerConfig JSON>'` with an IPC channel.
 *
 * Concurrency: BullMQAdapter.processJobs creates its BullMQ Worker with a hard-coded `concurrency: 5`
 * and exposes no option for it, so `config.concurrency` cannot be honoured (a warning is printed when it
 * differs).
 */
import { BullMQAdapter, RedisCoordinationStore } from '@flowcraft/bullmq-adapter';
import { FlowRuntime, type ILogger, type NodeContext, type NodeRegistry, type NodeResult, type WorkflowBlueprint } from 'flowcraft';
import { Redis } from 'ioredis';
import type { WorkerConfig, WorkerMessage } from '../engine.js';
import { FLOWCRAFT_CONCURRENCY, flowcraftBlueprint } from './flowcraft.js';

const config = JSON.parse(process.argv[2] ?? '') as WorkerConfig;

/** Quiet logger: flowcraft's default ConsoleLogger prints several info lines per job. */
const logger: ILogger = {
  debug() {},
  info() {},
  warn(message, meta) {
    console.error(`[flowcraft-worker ${process.pid}] warn: ${message}`, meta ?? '');
  },
  error(message, meta) {
    console.error(`[flowcraft-worker ${process.pid}] error: ${message}`, meta ?? '');
  },
};

/**
 * `template`: no-op cost. Returns a short string (the unrendered template, truncated) so outputs written
 * to Redis are about as large as Switchyard's rendered ones, and the node's `params.action` as its action
 * when there is one: a flowcraft node chooses its outgoing action edges by returning `{ action }`.
 */
async function template(ctx: NodeContext): Promise<NodeResult> {
  const params = ctx.params as { template?: unknown; promptTemplate?: unknown; action?: unknown };
  const text = typeof params.template === 'string' ? params.template : typeof params.promptTemplate === 'string' ? params.promptTemplate : 'ok';
  const result: NodeResult = { output: text.slice(0, 64) };
  if (typeof params.action === 'string') result.action = params.action;
  return result;
}

/**
 * `route` with no rules and a `default` action (a fixed router, Switchyard's way to write one); rules use
 * Switchyard's condition language, which flowcraft cannot evaluate, so they are refused.
 */
async function route(ctx: NodeContext): Promise<NodeResult> {
  const params = ctx.params as { rules?: unknown[]; default?: unknown };
  if ((params.rules?.length ?? 0) > 0 || typeof params.default !== 'string') {
    throw new Error('flowcraft bench worker: only `route` nodes with no rules and a default action are supported');
  }
  return { output: params.default, action: params.default };
}

// `subflow` is flowcraft's built-in SubflowNode (registered by FlowRuntime itself); see flowcraftCaveats.
const registry: NodeRegistry = { template, route };

const blueprints: Record<string, WorkflowBlueprint> = {};
for (const bp of [config.scenario.blueprint, ...config.scenario.children]) {
  blueprints[bp.id] = flowcraftBlueprint(bp) as unknown as WorkflowBlueprint;
}

if (config.concurrency !== FLOWCRAFT_CONCURRENCY) {
  console.error(`[flowcraft-worker ${process.pid}] note: flowcraft's BullMQ worker concurrency is fixed at ${FLOWCRAFT_CONCURRENCY}; ignoring concurrency ${config.concurrency}`);
}

const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
const runtime = new FlowRuntime({ blueprints, registry, logger });
const adapter = new BullMQAdapter({
  runtimeOptions: runtime.options,
  coordinationStore: new RedisCoordinationStore(connection),
  connection,
  queueName: config.namespace,
  defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
});

function send(message: WorkerMessage): void {
  process.send?.(message);
}

process.on('message', (message: { type?: string }) => {
  if (message?.type !== 'stats') return;
  const cpu = process.cpuUsage();
  send({ type: 'stats', pid: process.pid, cpuUserMicros: cpu.user, cpuSystemMicros: cpu.system, rssBytes: process.memoryUsage().rss });
});

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(0), 5000);
  force.unref();
  try {
    await adapter.close();
    await connection.quit();
  } catch (err) {
    console.error(`[flowcraft-worker ${process.pid}] error while closing:`, err);
  }
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
// The orchestrator went away: do not linger.
process.on('disconnect', () => void shutdown());

await connection.ping();
adapter.start();
send({ type: 'ready', pid: process.pid });
