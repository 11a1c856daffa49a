import type { z } from 'zod';
import type { RunView } from './run-view.js';
import type { TokenUsage } from './usage.js';

/** What a node's run returns. */
export interface NodeResult {
  /** Stored as the node's output (`outputs[nodeId]`). Must be JSON-serialisable. */
  output?: unknown;
  /** Chooses which outgoing edges with an `action` are taken. */
  action?: string;
  /** Context keys this node writes. */
  context?: Record<string, unknown>;
  /** Tokens used (LLM nodes); summed per run. */
  usage?: TokenUsage;
  /** What produced the result (e.g. the LLM provider and model), shown in the run view. */
  meta?: Record<string, unknown>;
  /**
   * Set by a node that started a child run and waits for it without holding a worker slot: the engine
   * calls the kind's `resume` with the child's final state when it ends.
   */
  waitFor?: { runId: string };
  /**
   * Parks the node without holding a worker slot (the `wait` and durable `sleep` kinds): it becomes
   * `waiting` (with `signal`) or `sleeping` (a timer only) and completes later, from a signal or when
   * `until` passes, in the same completion transition as any node.
   */
  park?: ParkRequest;
  /**
   * Set by a node that runs many child runs of one blueprint (map): the engine starts them, at most
   * `concurrency` at a time, hands each ended child to the kind's `collect`, and once all are in calls
   * its `gather` with the collected values in input order. No worker slot waits meanwhile.
   */
  fanOut?: FanOut;
}

/** How a node parks; see {@link NodeResult.park}. */
export interface ParkRequest {
  /** Epoch ms when the node wakes on its own (a sleep's end, a wait's timeout). */
  until?: number;
  /** Set for a node that waits for a signal: the text shown to whoever answers. */
  signal?: { prompt: string };
  /** The action the node completes with when `until` passes (a wait's `timeoutAction`); none for a sleep. */
  wakeAction?: string;
}

/** What completes a waiting node: `action` routes its outgoing edges, `payload` becomes its output. */
export interface NodeSignal {
  action?: string;
  payload?: unknown;
}

/** The child runs of a fanning-out node: one per entry of `each`, whose input is `input` merged with that entry. */
export interface FanOut {
  /** The registered blueprint every child runs. */
  blueprintId: string;
  /** Input every child gets (once stored, not per child). */
  input?: Record<string, unknown>;
  /** Per child, in order: its own input keys (over `input`). At least one entry. */
  each: Array<Record<string, unknown>>;
  /** Children in flight at most. */
  concurrency: number;
}

/** Starting child runs, for the subflow kind. */
export interface ChildRuns {
  /**
   * Starts a run of a registered blueprint as a child of this node and returns its run id. Idempotent per
   * node attempt: a redelivered job gets the same child back instead of a second one.
   */
  start(blueprintId: string, input: Record<string, unknown>, options?: ChildRunOptions): Promise<string>;
}

export interface ChildRunOptions {
  /**
   * For a node that starts several child runs one after another (loop: the iteration, from 1): part of
   * the child's derived id and of its parent link, so each is a run of its own and the child's view
   * says which it is.
   */
  index?: number;
}

/** A minimal structured logger; node kinds must never log secrets. */
export interface NodeLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Everything a node kind receives. Node kinds never touch Redis or queues. */
export interface NodeContext<P = Record<string, unknown>> {
  runId: string;
  nodeId: string;
  blueprintId: string;
  params: P;
  /** The part of the run's context this node declared it reads (all of it when it declared nothing). */
  context: Readonly<Record<string, unknown>>;
  /** Outputs of other nodes, by node id (again only what the node declared it reads). */
  outputs: Readonly<Record<string, unknown>>;
  /** Resolves an input name: a context key if present, else a node id's output; undefined when neither. */
  resolve(name: string): unknown;
  /** Fires on cancellation of the run and on the node's timeout. */
  signal: AbortSignal;
  /** 1 for the first attempt. */
  attempt: number;
  /** `<runId>:<nodeId>`: the same on every attempt and redelivery, for de-duplicating side effects. */
  idempotencyKey: string;
  logger: NodeLogger;
  /** Child runs (subflows). */
  runs: ChildRuns;
}

/** What a node reads from the run, so a worker fetches only that. */
export interface NodeReads {
  context: readonly string[];
  outputs: readonly string[];
}

/** A worker-local resource with a fixed number of slots (one object per resource, shared by kinds). */
export interface SlotPool {
  readonly capacity: number;
}

/** A kind of node: `uses` in a blueprint names one. */
export interface NodeKind<P = Record<string, unknown>> {
  /** The name blueprints use in `uses`. */
  readonly name: string;
  /** Validates `params` when a blueprint is validated; its issues are reported with their JSON path. */
  readonly params?: z.ZodType<P>;
  /** Names of context keys / node outputs the node reads; without it (or when it returns undefined) the node receives the whole state. */
  reads?(params: P): NodeReads | undefined;
  /** Static checks beyond the schema (e.g. parse conditions); return messages with a relative JSON path. */
  check?(params: P): Array<{ path: string; message: string }>;
  /** Other blueprints this node calls (a subflow kind returns its `blueprintId`), so loading can check they exist and do not recurse. */
  references?(params: P): { blueprints?: string[] };
  run(ctx: NodeContext<P>): Promise<NodeResult> | NodeResult;
  /**
   * Slots that nodes of this kind share within one worker (the LLM kinds: the provider's limit of
   * requests in flight). A worker whose slots are all taken takes no new jobs and claims no extra
   * successors, so other workers get them instead of waiting in its line.
   */
  readonly slots?: SlotPool;
  /**
   * For kinds whose `run` returns `waitFor`: the result once the child run ended (throw to fail the node).
   * It may return `waitFor` again (a loop's next iteration) to go on waiting for another child.
   */
  resume?(ctx: NodeContext<P>, child: RunView): Promise<NodeResult> | NodeResult;
  /**
   * For kinds whose `run` returns `fanOut`: what one ended child run contributes (JSON-serialisable; its
   * index is `child.parent.index`). Throwing fails the node, and the engine cancels the children still
   * in flight.
   */
  collect?(ctx: NodeContext<P>, child: RunView): Promise<unknown> | unknown;
  /** For kinds whose `run` returns `fanOut`: the node's result from every child's collected value, in input order. */
  gather?(ctx: NodeContext<P>, values: unknown[]): Promise<NodeResult> | NodeResult;
}

/**
 * A node kind of any params: kinds take different params, and the registry holds them all (a kind's own
 * code sees its params typed; the registry only passes them through after the kind's schema parsed them).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above; `unknown` would reject every typed kind
export type AnyNodeKind = NodeKind<any>;

/** Node kinds by name. */
export class NodeKindRegistry {
  private readonly kinds = new Map<string, AnyNodeKind>();

  constructor(kinds: Iterable<AnyNodeKind> = []) {
    for (const kind of kinds) this.register(kind);
  }

  /** Adds a node kind; a later registration with the same name replaces the earlier one. */
  register(kind: AnyNodeKind): this {
    this.kinds.set(kind.name, kind);
    return this;
  }

  get(name: string): AnyNodeKind | undefined {
    return this.kinds.get(name);
  }

  has(name: string): boolean {
    return this.kinds.has(name);
  }

  names(): string[] {
    return [...this.kinds.keys()].sort();
  }

  /** A copy with more kinds added (for tests and plugins). */
  with(...kinds: AnyNodeKind[]): NodeKindRegistry {
    const copy = new NodeKindRegistry(this.kinds.values());
    for (const kind of kinds) copy.register(kind);
    return copy;
  }
}
