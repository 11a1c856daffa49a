import type { BlueprintRegistry, LoadedBlueprint } from '../blueprint/load.js';
import { ErrorCodes, LimitExceededError, SwitchyardError } from '../errors.js';
import { jsonBytes, Limits } from '../types/limits.js';
import { compileGraph, type Graph } from '../engine/graph.js';
import { RUN_ID_PATTERN } from '../types/ids.js';
import type { RunStatus } from '../types/statuses.js';
import type { ParentLink, RedisStore, RunEnding } from '../store/redis-store.js';
import type { NodeQueue } from './node-queue.js';

/**
 * Starting and ending runs, shared by the client (runs users start) and the worker (child runs of
 * subflow nodes): store the blueprint version, create the run, enqueue its start nodes; on the end of a
 * run, cancel its children and tell its parent.
 */
export class RunService {
  private readonly graphs = new WeakMap<LoadedBlueprint, Graph>();
  /** Blueprint versions this process stored, and when: re-stored once an hour to keep their TTL ahead. */
  private readonly saved = new Map<string, number>();

  constructor(
    readonly store: RedisStore,
    readonly queue: NodeQueue,
    readonly registry: BlueprintRegistry | undefined,
    private readonly defaultTtlSeconds: number,
  ) {}

  /** The compiled graph of a loaded blueprint (cached per loaded blueprint). */
  graphFor(loaded: LoadedBlueprint): Graph {
    let graph = this.graphs.get(loaded);
    if (!graph) {
      graph = compileGraph(loaded, this.registry?.kinds ?? failNoRegistry());
      this.graphs.set(loaded, graph);
    }
    return graph;
  }

  /** A registered blueprint by id, or a clear error naming the known ones. */
  blueprint(id: string): LoadedBlueprint {
    const loaded = this.registry?.get(id);
    if (!loaded) {
      throw new SwitchyardError(ErrorCodes.BLUEPRINT_NOT_FOUND, `no blueprint "${id}" (known: ${this.registry?.ids().join(', ') || 'none'})`, {
        blueprintId: id,
        retryable: false,
      });
    }
    return loaded;
  }

  /**
   * Creates the run (or finds the one with this id) and enqueues its start nodes. Enqueueing again for an
   * existing running run is harmless (same job ids) and recovers a start that died in between.
   */
  async start(
    loaded: LoadedBlueprint,
    input: Record<string, unknown>,
    options: { runId: string; ttlSeconds?: number; parent?: ParentLink },
  ): Promise<{ created: boolean; status: RunStatus; graph: Graph }> {
    if (!RUN_ID_PATTERN.test(options.runId)) {
      throw new SwitchyardError(ErrorCodes.VALIDATION, `runId "${options.runId}" must be 1-128 letters, digits, "_" or "-"`);
    }
    let inputBytes = 0;
    for (const value of Object.values(input)) inputBytes += jsonBytes(value);
    if (inputBytes > Limits.MAX_CONTEXT_BYTES) {
      throw new LimitExceededError('MAX_CONTEXT_BYTES', inputBytes, Limits.MAX_CONTEXT_BYTES, 'the run\'s input (bytes of JSON)', { runId: options.runId });
    }
    if (options.parent) await this.checkSubflowDepth(options.parent, loaded.blueprint.id);
    const graph = this.graphFor(loaded);
    const ttlSeconds = options.ttlSeconds ?? this.defaultTtlSeconds;
    const savedAt = this.saved.get(graph.version);
    if (savedAt === undefined || Date.now() - savedAt > 3_600_000 || ttlSeconds > this.defaultTtlSeconds) {
      await this.store.saveBlueprint(graph.version, loaded.blueprint, Math.max(ttlSeconds, this.defaultTtlSeconds));
      this.saved.set(graph.version, Date.now());
    }
    const started = await this.store.startRun({
      runId: options.runId,
      blueprintId: graph.blueprintId,
      version: graph.version,
      topology: graph.topology,
      topologyJson: graph.topologyJson,
      input,
      ttlSeconds,
      parent: options.parent,
    });
    if (started.status === 'running' && started.version === graph.version) {
      // One job starts them all: the worker that takes it claims the other start nodes itself.
      await this.queue.enqueueStart(options.runId, graph.version, graph.startNodes);
    }
    return { created: started.created, status: started.status, graph };
  }

  /**
   * Refuses a child run deeper than {@link Limits.MAX_SUBFLOW_DEPTH}: counts its ancestors through their
   * parent links (one read each; validation already keeps blueprints within the limit, so this guards
   * blueprints registered without their subflow targets).
   */
  private async checkSubflowDepth(parent: ParentLink, blueprintId: string): Promise<void> {
    let depth = 0;
    for (let link: ParentLink | undefined = parent; link; link = await this.store.getParent(link.runId)) {
      if (++depth > Limits.MAX_SUBFLOW_DEPTH) {
        throw new LimitExceededError('MAX_SUBFLOW_DEPTH', depth, Limits.MAX_SUBFLOW_DEPTH, `the subflow depth of a child run of "${blueprintId}"`, {
          nodeId: parent.nodeId,
        });
      }
    }
  }

  /** Cancels a running run and, in turn, its child runs. */
  async cancel(runId: string, reason = 'cancelled by request'): Promise<'cancelled' | 'not-running' | 'missing'> {
    const outcome = await this.store.cancelRun(runId, reason);
    if (outcome.outcome === 'cancelled') await this.afterEnding(outcome.ending, runId);
    return outcome.outcome;
  }

  /** What ending a run leaves to do: cancel its children, tell its parent. */
  async afterEnding(ending: RunEnding | undefined, childRunId?: string): Promise<void> {
    if (!ending) return;
    await Promise.all(ending.children.map((child) => this.cancel(child, 'parent run ended')));
    if (ending.parent && childRunId) await this.notifyParent(ending.parent, childRunId);
  }

  /** Enqueues the job that resumes a parent's subflow node with its child's result (idempotent per child). */
  notifyParent(parent: ParentLink, childRunId: string): Promise<void> {
    return this.queue.enqueueResume(parent, childRunId);
  }
}

function failNoRegistry(): never {
  throw new SwitchyardError(ErrorCodes.CONFIG, 'no blueprint registry configured');
}
