/**
 * One small error hierarchy for everything Switchyard throws. Each error has a stable `code`, says
 * whether retrying can help (`retryable`), carries run/node/blueprint context, and keeps its `cause`.
 * Errors that cross the queue are serialised with {@link serializeError} and rebuilt on the other side.
 */
export const ErrorCodes = {
  VALIDATION: 'VALIDATION',
  BLUEPRINT_NOT_FOUND: 'BLUEPRINT_NOT_FOUND',
  RUN_NOT_FOUND: 'RUN_NOT_FOUND',
  NODE_FAILED: 'NODE_FAILED',
  NODE_TIMEOUT: 'NODE_TIMEOUT',
  CANCELLED: 'CANCELLED',
  CONDITION: 'CONDITION',
  ROUTE_NO_MATCH: 'ROUTE_NO_MATCH',
  UNKNOWN_NODE_KIND: 'UNKNOWN_NODE_KIND',
  WAIT_TIMEOUT: 'WAIT_TIMEOUT',
  /** The run passed its deadline (`timeoutSeconds` / `timeoutMs` at start) and failed. */
  RUN_TIMEOUT: 'RUN_TIMEOUT',
  /** A signal named a node the run does not have. */
  NODE_NOT_FOUND: 'NODE_NOT_FOUND',
  /** A signal reached a node that is not waiting for one (not yet, no longer, or not a `wait` node). */
  NODE_NOT_WAITING: 'NODE_NOT_WAITING',
  CONFIG: 'CONFIG',
  /** The run's stored state cannot go on (lost writes in a failover): the reconciler failed it. */
  RUN_INCONSISTENT: 'RUN_INCONSISTENT',
  /** A limit of src/types/limits.ts was exceeded; the message names the limit and the value. */
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Where an error happened. */
export interface ErrorContext {
  runId?: string;
  nodeId?: string;
  blueprintId?: string;
  attempt?: number;
}

export interface SwitchyardErrorOptions extends ErrorContext {
  retryable?: boolean;
  cause?: unknown;
}

export class SwitchyardError extends Error {
  readonly code: ErrorCode;
  /** Whether running the same thing again may succeed. */
  readonly retryable: boolean;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, options: SwitchyardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SwitchyardError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    const { retryable: _r, cause: _c, ...context } = options;
    this.context = context;
  }
}

/** A signal reached a node that is not `waiting`: `status` is the node's (or the run's, once it ended). */
export class NodeNotWaitingError extends SwitchyardError {
  constructor(
    message: string,
    readonly status: string,
    options: SwitchyardErrorOptions = {},
  ) {
    super(ErrorCodes.NODE_NOT_WAITING, message, options);
    this.name = 'NodeNotWaitingError';
  }
}

/** A blueprint (or a set of them) failed validation; `issues` lists every problem. */
export class ValidationError extends SwitchyardError {
  readonly issues: readonly ValidationIssue[];
  constructor(issues: readonly ValidationIssue[], options: SwitchyardErrorOptions = {}) {
    super(ErrorCodes.VALIDATION, formatIssues(issues), options);
    this.name = 'ValidationError';
    this.issues = issues;
  }
}

/** One problem found in a blueprint file. `path` is a JSON path such as `$.nodes[2].uses`. */
export interface ValidationIssue {
  file: string;
  path: string;
  message: string;
}

/** `<file>: <json-path>: <message>`, one per line. */
export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => `${i.file}: ${i.path}: ${i.message}`).join('\n');
}

/** A node's work failed. Retryable unless the node kind says otherwise. */
export class NodeError extends SwitchyardError {
  constructor(message: string, options: SwitchyardErrorOptions = {}) {
    super(ErrorCodes.NODE_FAILED, message, { retryable: true, ...options });
    this.name = 'NodeError';
  }
}

/** Thrown by node kinds for failures that retrying cannot fix (bad params, a 400 from an API). */
export class NonRetryableError extends SwitchyardError {
  constructor(message: string, options: Omit<SwitchyardErrorOptions, 'retryable'> = {}) {
    super(ErrorCodes.NODE_FAILED, message, { ...options, retryable: false });
    this.name = 'NonRetryableError';
  }
}

/**
 * A limit of src/types/limits.ts was exceeded (a node output, the run's context, the subflow depth):
 * never retryable, since the same work would exceed it again.
 */
export class LimitExceededError extends SwitchyardError {
  readonly limit: string;
  readonly value: number;
  readonly max: number;
  constructor(limit: string, value: number, max: number, what: string, options: Omit<SwitchyardErrorOptions, 'retryable'> = {}) {
    super(ErrorCodes.LIMIT_EXCEEDED, `${what} is ${value}, over the limit ${limit} (${max})`, { ...options, retryable: false });
    this.name = 'LimitExceededError';
    this.limit = limit;
    this.value = value;
    this.max = max;
  }
}

/** The wire form of an error, as stored in Redis and returned by the API. */
export interface SerializedError {
  code: string;
  message: string;
  retryable: boolean;
  name?: string;
  nodeId?: string;
  attempt?: number;
  cause?: SerializedError;
}

/** Turns any thrown value into its wire form, keeping the cause chain (3 levels at most). */
export function serializeError(err: unknown, depth = 0): SerializedError {
  if (err instanceof SwitchyardError) {
    const out: SerializedError = { code: err.code, message: err.message, retryable: err.retryable, name: err.name };
    if (err.context.nodeId) out.nodeId = err.context.nodeId;
    if (err.context.attempt !== undefined) out.attempt = err.context.attempt;
    if (err.cause !== undefined && depth < 3) out.cause = serializeError(err.cause, depth + 1);
    return out;
  }
  if (err instanceof Error) {
    const out: SerializedError = { code: ErrorCodes.NODE_FAILED, message: err.message || err.name, retryable: true, name: err.name };
    if (err.cause !== undefined && depth < 3) out.cause = serializeError(err.cause, depth + 1);
    return out;
  }
  return { code: ErrorCodes.NODE_FAILED, message: String(err), retryable: true };
}

/** Rebuilds a {@link SwitchyardError} from its wire form. */
export function deserializeError(wire: SerializedError): SwitchyardError {
  const known = Object.values(ErrorCodes) as string[];
  const code = (known.includes(wire.code) ? wire.code : ErrorCodes.INTERNAL) as ErrorCode;
  const err = new SwitchyardError(code, wire.message, {
    retryable: wire.retryable,
    nodeId: wire.nodeId,
    attempt: wire.attempt,
    cause: wire.cause ? deserializeError(wire.cause) : undefined,
  });
  if (wire.name) err.name = wire.name;
  return err;
}
