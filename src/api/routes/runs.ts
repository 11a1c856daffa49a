import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { Hono } from 'hono/tiny';
import { z } from 'zod';
import type { BlueprintRegistry } from '../../blueprint/load.js';
import { BLUEPRINT_ID_PATTERN, BlueprintSchema, type Blueprint } from '../../blueprint/schema.js';
import { RUN_ID_PATTERN } from '../../types/ids.js';
import type { RunView } from '../../types/run-view.js';
import { isTerminalRunStatus, RunStatuses, type RunStatus } from '../../types/statuses.js';
import { ErrorCodes, NodeNotWaitingError, SwitchyardError, ValidationError } from '../../errors.js';
import type { NodeSignal } from '../../types/node-kind.js';
import type { SignalOutcome } from '../../types/run-view.js';
import { layoutBlueprint } from '../../drawing/layout.js';
import { VERSION_PATTERN, type BlueprintCatalog } from '../../queue/blueprint-catalog.js';
import { sha256, type ApiStore } from '../api-store.js';
import { clip, type ApiEnv, type Principal } from '../env.js';
import { STREAM_ID_PATTERN, type EventFeed } from '../event-feed.js';
import { canonicalJson, issuesOf, parseJsonBody, validate, validationError } from '../json-body.js';
import { requireScope } from '../middleware/auth.js';
import { ApiError, ApiErrorCodes, jsonResponse } from '../respond.js';

/** What the runs routes need of the client (a `SwitchyardClient` has all of it). */
export interface RunsClient {
  start(blueprint: string | object, input: Record<string, unknown>, options: { runId: string; version?: string; timeoutMs?: number; priority?: number }): Promise<{ created: boolean }>;
  get(runId: string): Promise<RunView | undefined>;
  result(runId: string, options: { timeoutMs?: number }): Promise<RunView>;
  cancel(runId: string): Promise<boolean>;
  /** Redrives a failed or cancelled run; without it the redrive route answers 501. */
  redrive?(runId: string): Promise<{ redriven: true; redrives: number } | { redriven: false; status: RunStatus }>;
  /** Answers a waiting node; without it the signals route answers 501. */
  signal?(runId: string, nodeId: string, signal: NodeSignal): Promise<SignalOutcome>;
  store: {
    getStatus(runId: string): Promise<RunStatus | undefined>;
    loadBlueprint(version: string): Promise<unknown | undefined>;
  };
}

export interface RunsRoutesOptions {
  client: RunsClient;
  /** The blueprints `POST /runs` can name, and what inline blueprints are validated with. */
  blueprints: BlueprintRegistry;
  /**
   * Stored blueprints, then `blueprints`: what `POST /runs` can name (and its `version`), and what the
   * subflows of inline blueprints may call. Without it, `blueprints` alone.
   */
  catalog?: BlueprintCatalog;
  /** Tenant tags, idempotency claims, the tenant's run index, a run's blueprint and events keys. */
  store: ApiStore;
  feed: EventFeed;
  /** Runs before each route's scope check: authenticates (sets `principal`) and rate-limits. */
  guard: MiddlewareHandler<ApiEnv>;
  inlineBlueprints: boolean;
  maxWaitSeconds: number;
}

const RunIdParam = z.string().regex(RUN_ID_PATTERN);

const StartRunBody = z
  .object({
    blueprintId: z.string().regex(BLUEPRINT_ID_PATTERN, 'must be 1-100 letters, digits, ".", "_" or "-"').optional(),
    blueprint: z.record(z.string(), z.unknown()).optional(),
    version: z.string().regex(VERSION_PATTERN, 'must be a blueprint version (64 hex digits; GET /blueprints/{id} lists them)').optional(),
    input: z.record(z.string(), z.unknown()).optional(),
    idempotencyKey: z.string().min(1, 'must be 1-200 characters').max(200, 'must be 1-200 characters').optional(),
    /** The run's deadline: past it the run fails with RUN_TIMEOUT. */
    timeoutSeconds: z.number().positive('must be more than 0').max(31_622_400, 'must be at most a year (31622400)').optional(),
    // BullMQ's priorities: 1 is the highest.
    priority: z.number().int('must be a whole number').min(1, 'must be 1 (highest) to 2097152').max(2_097_152, 'must be 1 (highest) to 2097152').optional(),
  })
  .strict();

/** A signal to a waiting node: `action` routes its edges, `payload` (any JSON, at most 64 KiB) is its output. */
const SignalBody = z
  .object({
    action: z.string().min(1, 'must be 1-100 characters').max(100, 'must be 1-100 characters').optional(),
    payload: z.unknown().optional(),
  })
  .strict();
const MAX_PAYLOAD_BYTES = 64 * 1024;
const NodeIdParam = z.string().regex(/^[A-Za-z0-9_-]{1,200}$/);

const WaitSeconds = z
  .string()
  .regex(/^\d{1,6}(\.\d{1,3})?$/, 'must be a number of seconds (0-25)')
  .transform(Number);

const GetRunQuery = z.object({ wait: WaitSeconds.optional() });

const EventsQuery = z.object({
  after: z.string().regex(STREAM_ID_PATTERN, 'must be an event id, such as 1700000000000-0').optional(),
  wait: WaitSeconds.optional(),
});

/** Most runs `GET /runs` returns at once. */
const MAX_LIST_LIMIT = 200;
const ListRunsQuery = z.object({
  status: z.enum(Object.values(RunStatuses)).optional(),
  blueprintId: z.string().regex(BLUEPRINT_ID_PATTERN, 'must be 1-100 letters, digits, ".", "_" or "-"').optional(),
  limit: z
    .string()
    .regex(/^\d{1,3}$/, `must be a whole number from 1 to ${MAX_LIST_LIMIT}`)
    .transform(Number)
    .pipe(z.number().int().min(1, `must be a whole number from 1 to ${MAX_LIST_LIMIT}`).max(MAX_LIST_LIMIT, `must be a whole number from 1 to ${MAX_LIST_LIMIT}`))
    .optional(),
});

/** Cancelling takes no options yet; an empty body or `{}`. */
const CancelBody = z.object({}).strict();
/** Nor does redriving. */
const RedriveBody = z.object({}).strict();

/**
 * `/runs` and everything below it: start, list, read (with a long poll), cancel, events (with a long
 * poll), a run's blueprint, and signals to waiting nodes. Every route authenticates through `guard`, then
 * checks its scope; a run of another tenant is indistinguishable from no run (404).
 */
export function runsRoutes(options: RunsRoutesOptions): Hono<ApiEnv> {
  const { client, blueprints, store, feed, guard, maxWaitSeconds } = options;
  const read = requireScope('runs:read');
  const write = requireScope('runs:write');
  const app = new Hono<ApiEnv>();

  const runLinks = (runId: string) => {
    const self = `/runs/${runId}`;
    return { self, wait: `${self}?wait=${maxWaitSeconds}`, cancel: `${self}/cancel`, events: `${self}/events` };
  };

  /** The run, when it exists and belongs to the caller's tenant; another tenant's run is indistinguishable from none. */
  const requireOwnRun = async (rawRunId: string | undefined, principal: Principal): Promise<string> => {
    const notFound = () => new ApiError(404, ApiErrorCodes.RUN_NOT_FOUND, `no run "${clip(rawRunId ?? '')}"`);
    const parsed = RunIdParam.safeParse(rawRunId);
    if (!parsed.success) throw notFound();
    const owner = await store.ownerOf(parsed.data);
    if (owner !== principal.tenant) throw notFound();
    return parsed.data;
  };

  app.post('/runs', guard, write, async (c) => {
    const principal = c.get('principal');
    const raw = parseJsonBody(await c.req.text());
    if (raw === undefined) throw validationError([{ path: '$', message: 'the body must be a JSON object' }]);
    const parsed = StartRunBody.safeParse(raw);
    const issues = parsed.success ? [] : issuesOf(parsed.error);
    if (isObject(raw) && ('blueprintId' in raw) === ('blueprint' in raw)) {
      issues.push({ path: '$', message: 'give exactly one of "blueprintId" (a registered blueprint) and "blueprint" (inline)' });
    }
    if (isObject(raw) && 'version' in raw && 'blueprint' in raw) {
      issues.push({ path: '$.version', message: 'a version names a stored version of "blueprintId"; an inline blueprint has none' });
    }
    // JSON.parse keeps "__proto__" as an own key, but copying the input (zod does) would set a prototype instead.
    if (isObject(raw) && isObject(raw.input) && Object.hasOwn(raw.input, '__proto__')) {
      issues.push({ path: '$.input', message: 'the key "__proto__" is not allowed' });
    }
    if (!parsed.success || issues.length > 0) throw validationError(issues);
    const body = parsed.data;

    let target: string | object;
    let version: string | undefined = body.version;
    if (body.blueprint !== undefined) {
      if (!options.inlineBlueprints) {
        throw new ApiError(403, ApiErrorCodes.INLINE_BLUEPRINTS_DISABLED, 'inline blueprints are disabled on this server: start a registered blueprint with "blueprintId"');
      }
      // The blueprint as parsed, not zod's copy, so the blueprint schema sees exactly what was sent.
      target = (raw as { blueprint: object }).blueprint;
      await checkInlineBlueprint(options.catalog ?? blueprints, target);
    } else {
      const id = body.blueprintId as string;
      const notFound = () => new ApiError(404, ApiErrorCodes.BLUEPRINT_NOT_FOUND, `no blueprint "${id}" (GET /blueprints lists them)`);
      if (options.catalog) {
        // The version to start, settled (and checked) before the idempotency claim: the latest stored, else the bundled one.
        try {
          version = (await options.catalog.resolve(id, body.version)).version;
        } catch (err) {
          if (!(err instanceof SwitchyardError && err.code === ErrorCodes.BLUEPRINT_NOT_FOUND)) throw err;
          throw body.version === undefined ? notFound() : new ApiError(404, ApiErrorCodes.BLUEPRINT_NOT_FOUND, err.message);
        }
      } else {
        const loaded = blueprints.get(id);
        if (!loaded) throw notFound();
        if (body.version !== undefined && body.version !== loaded.version) {
          throw new ApiError(404, ApiErrorCodes.BLUEPRINT_NOT_FOUND, `blueprint "${id}" has no version ${body.version}`);
        }
      }
      target = id;
    }
    const input = body.input ?? {};

    // Claimed before starting, with the run id it will use: a request that dies half-way is completed by
    // its retry (same body, same run id; starting is idempotent per run id) instead of starting twice.
    let runId: string = randomUUID();
    let replayed = false;
    if (body.idempotencyKey !== undefined) {
      const bodyHash = sha256(canonicalJson({ blueprintId: body.blueprintId, blueprint: body.blueprint === undefined ? undefined : target, version: body.version, input, priority: body.priority }));
      const claim = await store.reserveIdempotencyKey(principal.tenant, body.idempotencyKey, bodyHash, runId);
      if (claim.outcome === 'conflict') {
        throw new ApiError(409, ApiErrorCodes.IDEMPOTENCY_CONFLICT, 'this idempotencyKey was already used with a different request body');
      }
      runId = claim.runId;
      replayed = claim.outcome === 'replay';
    }
    const startedAt = Date.now();
    const handle = await client.start(target, input, {
      runId,
      ...(version === undefined ? {} : { version }),
      ...(body.timeoutSeconds === undefined ? {} : { timeoutMs: Math.round(body.timeoutSeconds * 1000) }),
      ...(body.priority === undefined ? {} : { priority: body.priority }),
    });
    const tagged = await store.tagRun(runId, principal.tenant);
    if (tagged.outcome !== 'ok') throw new Error(`run ${runId} could not be tagged with its tenant (${tagged.outcome})`);
    await store.indexRun(principal.tenant, runId, startedAt, tagged.ttlSeconds);
    if (body.idempotencyKey !== undefined && handle.created) {
      await store.settleIdempotencyKey(principal.tenant, body.idempotencyKey, tagged.ttlSeconds);
    }
    const status = handle.created ? 'running' : ((await client.store.getStatus(runId)) ?? 'running');
    const headers: Record<string, string> = { location: `/runs/${runId}` };
    if (replayed) headers['idempotent-replayed'] = 'true';
    return jsonResponse(202, { runId, status, links: runLinks(runId) }, headers);
  });

  app.get('/runs', guard, read, async (c) => {
    const query = validate(ListRunsQuery, c.req.query(), '$.query', 'query');
    const runs = await store.recentRuns(c.get('principal').tenant, query.limit ?? 50, (run) => {
      return (query.status === undefined || run.status === query.status) && (query.blueprintId === undefined || run.blueprintId === query.blueprintId);
    });
    return jsonResponse(200, { runs: runs.map((run) => ({ ...run, links: { self: `/runs/${run.runId}` } })), now: Date.now() });
  });

  app.get('/runs/:runId', guard, read, async (c) => {
    const query = validate(GetRunQuery, c.req.query(), '$.query', 'query');
    const runId = await requireOwnRun(c.req.param('runId'), c.get('principal'));
    const waitSeconds = Math.min(query.wait ?? 0, maxWaitSeconds);
    let view: RunView | undefined;
    if (waitSeconds > 0) {
      try {
        view = await client.result(runId, { timeoutMs: Math.round(waitSeconds * 1000) });
      } catch (err) {
        if (!(err instanceof SwitchyardError && err.code === ErrorCodes.WAIT_TIMEOUT)) throw err;
        view = await client.get(runId);
      }
    } else {
      view = await client.get(runId);
    }
    if (!view) throw new ApiError(404, ApiErrorCodes.RUN_NOT_FOUND, `no run "${runId}"`);
    return jsonResponse(200, view);
  });

  app.post('/runs/:runId/cancel', guard, write, async (c) => {
    validate(CancelBody, parseJsonBody(await c.req.text()) ?? {});
    const runId = await requireOwnRun(c.req.param('runId'), c.get('principal'));
    if (await client.cancel(runId)) return jsonResponse(202, { runId, status: 'cancelled' });
    const status = await client.store.getStatus(runId);
    throw new ApiError(409, ApiErrorCodes.RUN_ENDED, `run "${runId}" already ended (${status ?? 'expired'})`, { runId, status });
  });

  /**
   * Redrives a failed or cancelled run (its failed part runs again, done nodes keep their outputs): 202
   * with the run's redrive count; 409 RUN_NOT_REDRIVABLE for a running or completed run.
   */
  app.post('/runs/:runId/redrive', guard, write, async (c) => {
    validate(RedriveBody, parseJsonBody(await c.req.text()) ?? {});
    const runId = await requireOwnRun(c.req.param('runId'), c.get('principal'));
    if (!client.redrive) throw new ApiError(501, ApiErrorCodes.NOT_IMPLEMENTED, 'this server\'s client cannot redrive runs');
    const outcome = await client.redrive(runId);
    if (outcome.redriven) {
      // The run's keys no longer expire: reading its owner again re-arms the tenant tag to the full TTL
      // (it had been shortened to the ended run's remaining time).
      await requireOwnRun(runId, c.get('principal'));
      return jsonResponse(202, { runId, status: 'running', redrives: outcome.redrives });
    }
    throw new ApiError(409, ApiErrorCodes.RUN_NOT_REDRIVABLE, `run "${runId}" is ${outcome.status}: only a failed or cancelled run can be redriven`, { runId, status: outcome.status });
  });

  /**
   * The run's timeline, or the part after `after`. With `wait`, an empty answer is held until events
   * come (or the wait ends), unless the run has already ended: a dashboard's live feed, over plain HTTP.
   */
  app.get('/runs/:runId/events', guard, read, async (c) => {
    const query = validate(EventsQuery, c.req.query(), '$.query', 'query');
    const runId = await requireOwnRun(c.req.param('runId'), c.get('principal'));
    const key = store.eventsKey(runId);
    const waitSeconds = Math.min(query.wait ?? 0, maxWaitSeconds);
    let events = await feed.range(key, query.after);
    let status = await client.store.getStatus(runId);
    if (events.length === 0 && waitSeconds > 0 && status !== undefined && !isTerminalRunStatus(status)) {
      // Blocks from `after` itself, so an event added since the read above is returned at once.
      events = await feed.wait(key, query.after, waitSeconds * 1000);
      if (events.length > 0) status = await client.store.getStatus(runId);
    }
    const cursor = events.at(-1)?.id ?? query.after;
    return jsonResponse(200, { runId, status, events, ...(cursor === undefined ? {} : { cursor }), now: Date.now() });
  });

  /** The blueprint version a run executes (inline and child runs too), laid out for drawing. */
  app.get('/runs/:runId/blueprint', guard, read, async (c) => {
    const runId = await requireOwnRun(c.req.param('runId'), c.get('principal'));
    const { blueprintId, version } = await store.runBlueprint(runId);
    const stored = version ? BlueprintSchema.safeParse(await client.store.loadBlueprint(version)) : undefined;
    const blueprint: Pick<Blueprint, 'nodes' | 'edges' | 'metadata'> | undefined = stored?.success ? stored.data : blueprintId ? blueprints.get(blueprintId)?.blueprint : undefined;
    if (!blueprint) throw new ApiError(404, ApiErrorCodes.BLUEPRINT_NOT_FOUND, `the blueprint of run "${runId}" is no longer stored`);
    return jsonResponse(200, { runId, blueprintId, version, blueprint: { ...blueprint, id: blueprintId }, layout: layoutBlueprint(blueprint) });
  });

  /**
   * Answers a waiting `wait` node: 200 with the node's new state; 409 naming the node's status when it is
   * not waiting (a second signal, one that lost to the timeout, a run that ended); 404 for an unknown run
   * or node (or another tenant's run); 400 for an action none of its edges has; 413 for a payload over 64 KiB.
   */
  app.post('/runs/:runId/signals/:nodeId', guard, write, async (c) => {
    const raw = parseJsonBody(await c.req.text());
    const body = validate(SignalBody, raw ?? {});
    const runId = await requireOwnRun(c.req.param('runId'), c.get('principal'));
    const rawNodeId = c.req.param('nodeId');
    const nodeId = NodeIdParam.safeParse(rawNodeId);
    if (!nodeId.success) throw new ApiError(404, ApiErrorCodes.NODE_NOT_FOUND, `run "${runId}" has no node "${clip(rawNodeId ?? '')}"`);
    if (body.payload !== undefined && Buffer.byteLength(JSON.stringify(body.payload), 'utf8') > MAX_PAYLOAD_BYTES) {
      throw new ApiError(413, ApiErrorCodes.PAYLOAD_TOO_LARGE, `the payload must be at most ${MAX_PAYLOAD_BYTES} bytes of JSON`);
    }
    const signal: NodeSignal = {};
    if (body.action !== undefined) signal.action = body.action;
    // The payload as parsed (zod's copy could turn a "__proto__" key into a prototype).
    if (isObject(raw) && Object.hasOwn(raw, 'payload')) signal.payload = raw.payload;
    if (!client.signal) throw new ApiError(501, ApiErrorCodes.NOT_IMPLEMENTED, 'this server\'s client cannot deliver signals');
    try {
      return jsonResponse(200, await client.signal(runId, nodeId.data, signal));
    } catch (err) {
      if (err instanceof NodeNotWaitingError) {
        throw new ApiError(409, ApiErrorCodes.NODE_NOT_WAITING, `node "${nodeId.data}" is ${err.status}, not waiting for a signal`, { runId, nodeId: nodeId.data, status: err.status });
      }
      if (err instanceof SwitchyardError && err.code === ErrorCodes.NODE_NOT_FOUND) throw new ApiError(404, ApiErrorCodes.NODE_NOT_FOUND, err.message);
      if (err instanceof SwitchyardError && err.code === ErrorCodes.RUN_NOT_FOUND) throw new ApiError(404, ApiErrorCodes.RUN_NOT_FOUND, `no run "${runId}"`);
      if (err instanceof SwitchyardError && err.code === ErrorCodes.VALIDATION) throw validationError([{ path: '$.action', message: err.message }]);
      throw err;
    }
  });

  return app;
}

/** Validates an inline blueprint before anything is stored, listing every issue at its place in the body. */
async function checkInlineBlueprint(blueprints: Pick<BlueprintRegistry | BlueprintCatalog, 'validate'>, blueprint: object): Promise<void> {
  try {
    await blueprints.validate(blueprint, '<inline>', 'inline');
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const issues = err.issues.map((i) => ({ path: i.path.replace(/^\$/, '$.blueprint'), message: i.message }));
    throw validationError(issues, 'blueprint');
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
