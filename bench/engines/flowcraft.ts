/**
 * flowcraft 2.10.1 + @flowcraft/bullmq-adapter 1.7.1, driven the way flowcraft's documented distributed
 * client drives it (examples/5b_declarative-distributed/src/client.ts in the flowcraft repo):
 *
 * - start: write the run's initial context into the hash `workflow:state:<runId>` (one JSON-encoded field
 *   per key), then add one `executeNode` job `{ runId, blueprintId, nodeId }` per start node to the BullMQ
 *   queue the workers consume.
 * - wait: the adapter publishes the outcome with a plain `SET workflow:status:<runId> <json> EX 86400`
 *   (`{ status: 'completed', payload: WorkflowResult }` or `{ status: 'failed', reason }`); there is no
 *   pub/sub message and no list to block on, so the documented client polls that key (every 500 ms) and
 *   deletes it once read. We poll too, but with one shared poller that MGETs the status keys of every
 *   pending run each POLL_INTERVAL_MS, so the wait adds at most a few ms per run and one round trip per
 *   interval overall.
 *
 * The worker side (flowcraft-worker.ts) is the adapter's README setup. Its BullMQ Worker has a hard-coded
 * `concurrency: 5` (BullMQAdapter.processJobs), so this engine's concurrency is 5 whatever the
 * WorkerConfig says.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Engine, EngineClient, Scenario, WorkerConfig } from '../engine.js';

/** flowcraft's BullMQ adapter runs its BullMQ Worker with this fixed concurrency (not configurable). */
export const FLOWCRAFT_CONCURRENCY = 5;

/** How often the shared poller reads the status keys of pending runs. */
export const POLL_INTERVAL_MS = 5;

/**
 * Scenarios whose flowcraft figures need a caveat next to them.
 * flowcraft's built-in `subflow` node (SubflowNode) works under the distributed adapter, but it runs the
 * whole child blueprint in-process, in memory, inside the single queue job of the parent's subflow node
 * (`runtime.orchestrator.run(...)` with a fresh in-memory WorkflowState): child nodes are not queued,
 * not persisted in Redis and not spread over workers.
 */
export const flowcraftCaveats: Partial<Record<Scenario['name'], string>> = {
  subflow: 'flowcraft runs the child blueprint in-process inside the parent subflow node\'s job (no child jobs, no child state in Redis)',
};

type Blueprint = Scenario['blueprint'];
type NodeDef = Blueprint['nodes'][number];

/**
 * The copy of a scenario blueprint given to flowcraft.
 *
 * flowcraft's distributed fan-in (`BaseDistributedAdapter.isReadyForFanIn`) with the default
 * `joinStrategy: 'all'` counts arrivals until it reaches the number of incoming edges; a branch that was
 * not taken never arrives, so a join after an action/condition router would wait forever. Switchyard
 * counts untaken edges as arrived. To let flowcraft run the same graph we give `joinStrategy: 'any'` to
 * every join (node with >1 incoming edges and no explicit strategy) with a predecessor that only runs
 * when a branch is taken: the target of an edge carrying an `action` or `condition`, or a node reached
 * from such a node along a single unconditional edge (the rest of that branch). This is exact for the
 * benchmark graphs, where a router takes exactly one of its branches; 'any' fires on the first arrival.
 */
export function flowcraftBlueprint(blueprint: Blueprint): Blueprint {
  const edges = blueprint.edges ?? [];
  const incoming = new Map<string, typeof edges>();
  for (const edge of edges) {
    const list = incoming.get(edge.target) ?? [];
    list.push(edge);
    incoming.set(edge.target, list);
  }
  const conditional = new Set<string>();
  for (const edge of edges) if (edge.action !== undefined || edge.condition !== undefined) conditional.add(edge.target);
  // Extend along single-predecessor chains (bounded by the node count, cycles included).
  for (let changed = true, rounds = 0; changed && rounds <= blueprint.nodes.length; rounds++) {
    changed = false;
    for (const node of blueprint.nodes) {
      const into = incoming.get(node.id) ?? [];
      if (!conditional.has(node.id) && into.length === 1 && conditional.has(into[0]!.source)) {
        conditional.add(node.id);
        changed = true;
      }
    }
  }
  const nodes = blueprint.nodes.map((node): NodeDef => {
    const into = incoming.get(node.id) ?? [];
    if (into.length > 1 && node.config?.joinStrategy === undefined && into.some((e) => conditional.has(e.source))) {
      return { ...node, config: { ...node.config, joinStrategy: 'any' } };
    }
    return { ...node };
  });
  return { ...blueprint, nodes, edges: edges.map((e) => ({ ...e })) };
}

/** Start nodes as flowcraft's `analyzeBlueprint` defines them: nodes with no incoming edges. */
export function startNodeIds(blueprint: Blueprint): string[] {
  const targets = new Set((blueprint.edges ?? []).map((e) => e.target));
  return blueprint.nodes.filter((n) => !targets.has(n.id)).map((n) => n.id);
}

/** The version the adapter compares with the run's stored `blueprintVersion` (`metadata.version || null`). */
function blueprintVersion(blueprint: Blueprint): unknown {
  const version = (blueprint.metadata as { version?: unknown } | undefined)?.version;
  return version || null;
}

/** The part of BullMQ 5's Queue the client uses. */
interface QueueLike {
  addBulk(jobs: Array<{ name: string; data: unknown; opts?: Record<string, unknown> }>): Promise<unknown>;
  close(): Promise<void>;
}
type QueueCtor = new (name: string, opts: { connection: Redis; defaultJobOptions?: Record<string, unknown> }) => QueueLike;

/**
 * BullMQ as the adapter resolves it: @flowcraft/bullmq-adapter depends on bullmq ^5 and gets its own copy
 * (node_modules/@flowcraft/bullmq-adapter/node_modules/bullmq) while Switchyard uses bullmq 6. The client
 * adds jobs with that same BullMQ 5, as a flowcraft user would.
 */
function adapterBullmqQueue(): QueueCtor {
  const require = createRequire(import.meta.resolve('@flowcraft/bullmq-adapter'));
  return (require('bullmq') as { Queue: QueueCtor }).Queue;
}

interface Pending {
  resolve(): void;
  reject(err: Error): void;
}

export const flowcraftEngine: Engine = {
  name: 'flowcraft',
  workerEntry: fileURLToPath(new URL('./flowcraft-worker.ts', import.meta.url)),
  concurrency: FLOWCRAFT_CONCURRENCY,
  // Its subflow node runs the child in-process (see flowcraftCaveats): not a distributed child run, so not compared.
  supportsSubflow: false,
  async createClient(config: WorkerConfig): Promise<EngineClient> {
    const blueprint = config.scenario.blueprint;
    const starts = startNodeIds(blueprint);
    if (starts.length === 0) throw new Error(`flowcraft: blueprint "${blueprint.id}" has no start node`);
    const versionJson = JSON.stringify(blueprintVersion(flowcraftBlueprint(blueprint)));
    const inputFields: string[] = [];
    for (const [key, value] of Object.entries(config.scenario.input)) inputFields.push(key, JSON.stringify(value));

    const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
    const poller = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
    const Queue = adapterBullmqQueue();
    const queue = new Queue(config.namespace, {
      connection: redis,
      defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
    });

    const pending = new Map<string, Pending>();
    const waited = new Set<string>();
    let timer: NodeJS.Timeout | undefined;
    let polling = false;
    let closed = false;

    const settle = (runId: string, status: { status?: string; reason?: string }, p: Pending): void => {
      if (status.status === 'completed') p.resolve();
      else p.reject(new Error(`flowcraft run ${runId} ${status.status ?? 'ended'}: ${status.reason ?? 'no reason given'}`));
    };

    const poll = async (): Promise<void> => {
      timer = undefined;
      if (closed || polling) return;
      const ids = [...waited];
      if (ids.length === 0) return;
      polling = true;
      try {
        const values = await poller.mget(ids.map((id) => `workflow:status:${id}`));
        const done: string[] = [];
        values.forEach((raw, i) => {
          if (raw === null) return;
          const runId = ids[i]!;
          let status: { status?: string; reason?: string };
          try {
            status = JSON.parse(raw) as typeof status;
          } catch {
            status = { status: 'failed', reason: `unparsable status ${raw.slice(0, 200)}` };
          }
          done.push(`workflow:status:${runId}`);
          waited.delete(runId);
          const p = pending.get(runId);
          pending.delete(runId);
          if (p) settle(runId, status, p);
        });
        // The documented client deletes the status key once it has read it.
        if (done.length > 0) await poller.del(...done);
      } catch (err) {
        if (!closed) {
          for (const p of pending.values()) p.reject(err instanceof Error ? err : new Error(String(err)));
          pending.clear();
          waited.clear();
        }
      } finally {
        polling = false;
      }
      schedule();
    };
    const schedule = (): void => {
      if (!closed && timer === undefined && waited.size > 0) timer = setTimeout(() => void poll(), POLL_INTERVAL_MS);
    };

    return {
      async start() {
        const runId = randomUUID();
        // Initial context plus blueprintVersion: handleJob compares the stored `blueprintVersion` with the
        // blueprint's (null when unversioned) before anything else and silently drops the job when they
        // differ; undefined (not written yet) !== null, so without this field every start job is dropped.
        await redis.hset(`workflow:state:${runId}`, ...inputFields, 'blueprintVersion', versionJson);
        await queue.addBulk(starts.map((nodeId) => ({
          name: 'executeNode',
          data: { runId, blueprintId: blueprint.id, nodeId },
          // Same job id scheme as the adapter's own enqueueJob.
          opts: { jobId: `${runId}_${nodeId}` },
        })));
        return runId;
      },
      wait(runId) {
        if (closed) return Promise.reject(new Error('flowcraft client is closed'));
        return new Promise<void>((resolve, reject) => {
          pending.set(runId, { resolve, reject });
          waited.add(runId);
          schedule();
        });
      },
      async close() {
        closed = true;
        if (timer) clearTimeout(timer);
        for (const [runId, p] of pending) p.reject(new Error(`flowcraft client closed before run ${runId} finished`));
        pending.clear();
        waited.clear();
        await queue.close();
        await Promise.allSettled([redis.quit(), poller.quit()]);
      },
    };
  },
};
