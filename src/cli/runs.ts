import type { Redis } from 'ioredis';
import { ApiStore } from '../api/api-store.js';
import { LOCAL_TENANT } from '../api/app.js';
import { TENANT_PATTERN } from '../api/keys.js';
import { BlueprintRegistry } from '../blueprint/load.js';
import { SwitchyardClient } from '../client/client.js';
import { compileGraph } from '../engine/graph.js';
import { runInMemory } from '../executor/memory-executor.js';
import { MAX_PRIORITY } from '../queue/node-queue.js';
import type { RunView } from '../types/run-view.js';
import { ErrorCodes, NodeNotWaitingError, SwitchyardError } from '../errors.js';
import type { NodeSignal } from '../types/node-kind.js';
import { readFileSync } from 'node:fs';
import { createNodeKinds } from '../nodes/index.js';
import { blueprintPaths, cliLogger, formatDuration, loadRegistry, openRedis, palette, parseInput, table, UsageError, type CliEnv } from './common.js';
import type { Parsed } from './options.js';
import { createProgressPrinter, followRunEvents } from './progress.js';

/** A client on the environment's Redis (every REDIS_* setting, as the worker reads them), after checking that Redis answers. */
async function openClient(env: CliEnv, registry?: BlueprintRegistry): Promise<SwitchyardClient> {
  const redis = await openRedis(env);
  const client = new SwitchyardClient({
    redis,
    prefix: env.prefix,
    queueName: env.queueName,
    queueShards: env.queueShards,
    runTtlSeconds: env.runTtlSeconds,
    blueprints: registry ?? new BlueprintRegistry(createNodeKinds()),
  });
  // The client does not close a connection it was given: closing the client closes ours too.
  const closeClient = client.close.bind(client);
  client.close = async () => {
    await closeClient();
    await redis.quit().catch(() => undefined);
  };
  return client;
}

function onePositional(positionals: string[], what: string, usage: string): string {
  const [value, ...extra] = positionals;
  if (!value) throw new UsageError(`name the ${what}: ${usage}`);
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  return value;
}

export async function run(positionals: string[], values: Parsed, env: CliEnv): Promise<number> {
  const blueprintId = onePositional(positionals, 'blueprint to run', 'switchyard run <blueprintId> --blueprints <dir>');
  const input = parseInput(values.input);
  const timeoutSeconds = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeoutSeconds !== undefined && !(timeoutSeconds > 0)) throw new UsageError(`--timeout must be a number of seconds > 0 (got "${values.timeout}")`);
  const runTimeoutSeconds = values['timeout-run'] === undefined ? undefined : Number(values['timeout-run']);
  if (runTimeoutSeconds !== undefined && !(runTimeoutSeconds > 0)) throw new UsageError(`--timeout-run must be a number of seconds > 0 (got "${values['timeout-run']}")`);
  const runTimeout = runTimeoutSeconds === undefined ? {} : { timeoutMs: Math.round(runTimeoutSeconds * 1000) };
  const priority = values.priority === undefined ? undefined : Number(values.priority);
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= 1 && priority <= MAX_PRIORITY)) {
    throw new UsageError(`--priority must be a whole number from 1 (highest) to ${MAX_PRIORITY} (got "${values.priority}")`);
  }
  const registry = await loadRegistry(values.blueprints, env);
  const loaded = registry.get(blueprintId);
  if (!loaded) throw new UsageError(`no blueprint "${blueprintId}" in ${blueprintPaths(values.blueprints).join(', ')} (known: ${registry.ids().join(', ') || 'none'})`);

  if (values.local) {
    const view = await runInMemory(compileGraph(loaded, registry.kinds), { kinds: registry.kinds, blueprints: registry, input, logger: cliLogger(env), ...runTimeout });
    return report(view, values);
  }
  const tenant = values.tenant ?? LOCAL_TENANT;
  if (!TENANT_PATTERN.test(tenant)) throw new UsageError(`--tenant must be 1-100 letters, digits, ".", "_" or "-" (got "${tenant}")`);
  const client = await openClient(env, registry);
  try {
    const startedAt = Date.now();
    const handle = await client.start(blueprintId, input, { ...runTimeout, ...(priority === undefined ? {} : { priority }) });
    await recordForTenant(client, handle.runId, tenant, startedAt);
    if (!values.wait) {
      if (values.json) console.log(JSON.stringify({ runId: handle.runId, blueprintId, status: 'running' }));
      else console.log(`started run ${handle.runId} of ${blueprintId}`);
      return 0;
    }
    const timeoutMs = timeoutSeconds === undefined ? undefined : timeoutSeconds * 1000;
    const live = values.progress === true || (!values.json && process.stderr.isTTY === true);
    let view: RunView | undefined;
    if (live) {
      const ended = await showProgress(client, handle.runId, timeoutMs, (line) => process.stderr.write(`${line}\n`), process.stderr.isTTY === true);
      view = ended ? await handle.get() : undefined;
    } else {
      try {
        view = await handle.result(timeoutMs === undefined ? {} : { timeoutMs });
      } catch (err) {
        if (!(err instanceof SwitchyardError && err.code === ErrorCodes.WAIT_TIMEOUT)) throw err;
      }
    }
    if (!view || view.status === 'running') {
      const current = view ?? (await handle.get());
      if (values.json && current) console.log(JSON.stringify(summary(current)));
      console.error(`switchyard run: run ${handle.runId} still ${current?.status ?? 'running'} after ${timeoutSeconds} s (it goes on)`);
      return 1;
    }
    return report(view, values);
  } finally {
    await client.close();
  }
}

/**
 * Records the run as the tenant's, as the HTTP API does for the runs it starts, so the dashboard lists it
 * and the API serves it to that tenant (`local`: the API of `switchyard dev` without --auth).
 */
async function recordForTenant(client: SwitchyardClient, runId: string, tenant: string, startedAt: number): Promise<void> {
  const store = new ApiStore(client.store.redis, client.store.keys);
  const tagged = await store.tagRun(runId, tenant);
  if (tagged.outcome === 'ok') await store.indexRun(tenant, runId, startedAt, tagged.ttlSeconds);
}

/** Prints the run's progress until it ends (true) or `timeoutMs` passes (false). */
async function showProgress(client: SwitchyardClient, runId: string, timeoutMs: number | undefined, write: (line: string) => void, color: boolean): Promise<boolean> {
  const timeout = new AbortController();
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => timeout.abort(), timeoutMs);
  const print = createProgressPrinter({ write, color });
  try {
    for await (const event of followRunEvents(client.store.redis as Redis, client.store.keys, runId, { children: true, signal: timeout.signal })) print(event);
  } finally {
    clearTimeout(timer);
  }
  return !timeout.signal.aborted;
}

export function summary(view: RunView) {
  return {
    runId: view.runId,
    blueprintId: view.blueprintId,
    status: view.status,
    context: view.context,
    nodes: Object.fromEntries(Object.entries(view.nodes).map(([id, n]) => [id, { status: n.status, attempts: n.attempts }])),
    ...(view.error ? { error: view.error } : {}),
  };
}

function report(view: RunView, values: Parsed): number {
  if (values.json) {
    console.log(JSON.stringify(summary(view)));
  } else {
    console.log(`run ${view.runId} of ${view.blueprintId}: ${view.status}`);
    for (const [id, n] of Object.entries(view.nodes)) console.log(`  ${n.status.padEnd(9)} ${id}${n.attempts > 1 ? ` (${n.attempts} attempts)` : ''}`);
    if (view.error) console.log(`error in ${view.error.nodeId ?? 'run'}: ${view.error.message}`);
    if (view.context.final_output !== undefined) console.log(`\nfinal_output:\n${String(view.context.final_output)}`);
  }
  return view.status === 'completed' ? 0 : 1;
}

/** A run as readable lines: header, timing and tokens, one row per node, error, final output. */
export function describeRunView(view: RunView, color = false): string[] {
  const c = palette(color);
  const paint = view.status === 'completed' ? c.green : view.status === 'running' ? c.cyan : c.red;
  const lines = [`run ${view.runId}  ${view.blueprintId}  ${paint(view.status)}`];
  const facts: string[] = [];
  if (view.createdAt) facts.push(`started ${new Date(view.createdAt).toISOString()}`);
  if (view.createdAt && view.endedAt) facts.push(`took ${formatDuration(view.endedAt - view.createdAt)}`);
  else if (view.createdAt) facts.push(`running for ${formatDuration(Date.now() - view.createdAt)}`);
  if (view.usage) facts.push(`tokens ${view.usage.promptTokens + view.usage.completionTokens} (prompt ${view.usage.promptTokens}, completion ${view.usage.completionTokens})`);
  if (view.parent) facts.push(`child of run ${view.parent.runId} (node ${view.parent.nodeId})`);
  if (view.redrives) facts.push(`redriven ${view.redrives} time${view.redrives === 1 ? '' : 's'}`);
  if (facts.length) lines.push(facts.join('  ·  '));
  const rows = Object.entries(view.nodes).map(([id, n]) => [
    id,
    n.status,
    n.attempts === 0 ? '' : `${n.attempts} attempt${n.attempts === 1 ? '' : 's'}`,
    n.worker ?? '',
    n.startedAt && n.endedAt ? formatDuration(n.endedAt - n.startedAt) : '',
    n.usage ? `${n.usage.promptTokens + n.usage.completionTokens} tokens` : '',
    nodeDetail(n),
  ]);
  lines.push('', ...table([['node', 'status', 'attempts', 'worker', 'time', 'tokens', ''], ...rows]).map((l) => `  ${l}`));
  if (view.error) lines.push('', c.red(`error in ${view.error.nodeId ?? 'run'}: ${view.error.message}`));
  if (view.context.final_output !== undefined) lines.push('', 'final_output:', String(view.context.final_output));
  return lines;
}

/** The last column of a node's row: its children (a map's progress, a loop's iterations), else its error. */
function nodeDetail(n: RunView['nodes'][string]): string {
  if (n.fanOut) {
    const { total, completed, failed, running } = n.fanOut;
    return `${completed + failed} of ${total} child runs done${failed ? `, ${failed} failed` : ''}${running ? `, ${running} running` : ''}${n.error ? `: ${n.error.message}` : ''}`;
  }
  if (n.children) return `${n.children.length} iterations, last child run ${n.childRunId ?? n.children.at(-1)}`;
  return n.childRunId ? `child run ${n.childRunId}` : n.error ? n.error.message : '';
}

export async function status(positionals: string[], values: Parsed, env: CliEnv): Promise<number> {
  const runId = onePositional(positionals, 'run', 'switchyard status <runId>');
  const client = await openClient(env);
  try {
    const view = await client.get(runId);
    if (!view) throw new SwitchyardError(ErrorCodes.RUN_NOT_FOUND, `no run "${runId}" (or it expired)`);
    if (values.json) console.log(JSON.stringify(view, null, 2));
    else console.log(describeRunView(view, process.stdout.isTTY === true).join('\n'));
    return 0;
  } finally {
    await client.close();
  }
}

export async function cancel(positionals: string[], env: CliEnv): Promise<number> {
  const runId = onePositional(positionals, 'run', 'switchyard cancel <runId>');
  const client = await openClient(env);
  try {
    if (await client.cancel(runId)) {
      console.log(`cancelled run ${runId}`);
      return 0;
    }
    const current = await client.store.getStatus(runId);
    console.error(`switchyard cancel: run ${runId} already ended (${current ?? 'expired'})`);
    return 1;
  } finally {
    await client.close();
  }
}

export async function redrive(positionals: string[], env: CliEnv): Promise<number> {
  const runId = onePositional(positionals, 'run', 'switchyard redrive <runId>');
  const client = await openClient(env);
  try {
    const outcome = await client.redrive(runId);
    if (outcome.redriven) {
      console.log(`redrove run ${runId} (redrive ${outcome.redrives})`);
      return 0;
    }
    console.error(`switchyard redrive: run ${runId} is ${outcome.status}; only a failed or cancelled run can be redriven`);
    return 1;
  } finally {
    await client.close();
  }
}

export async function signal(positionals: string[], values: Parsed, env: CliEnv): Promise<number> {
  const [runId, nodeId, ...extra] = positionals;
  if (!runId || !nodeId) throw new UsageError('name the run and the waiting node: switchyard signal <runId> <nodeId> [--action A] [--payload <json>]');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const body: NodeSignal = {};
  if (values.action !== undefined) body.action = values.action;
  if (values.payload !== undefined) body.payload = parsePayload(values.payload);
  const client = await openClient(env);
  try {
    const done = await client.signal(runId, nodeId, body);
    if (values.json) console.log(JSON.stringify(done));
    else console.log(`signalled ${nodeId} of run ${runId}${done.action ? ` with action ${done.action}` : ''}: node ${done.status}, run ${done.runStatus}`);
    return 0;
  } catch (err) {
    if (err instanceof NodeNotWaitingError) {
      console.error(`switchyard signal: node ${nodeId} of run ${runId} is ${err.status}, not waiting for a signal`);
      return 1;
    }
    throw err;
  } finally {
    await client.close();
  }
}

/** --payload: any JSON value, or @path to a file holding one. */
function parsePayload(raw: string): unknown {
  let text = raw;
  if (raw.startsWith('@')) {
    try {
      text = readFileSync(raw.slice(1), 'utf8');
    } catch (err) {
      throw new UsageError(`--payload ${raw}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--payload is not valid JSON: ${(err as Error).message}`);
  }
}

export async function events(positionals: string[], values: Parsed, env: CliEnv): Promise<number> {
  const runId = onePositional(positionals, 'run', 'switchyard events <runId>');
  const client = await openClient(env);
  const print = (id: string, fields: Record<string, string>) => {
    if (values.json) console.log(JSON.stringify({ id, ...fields }));
    else console.log(formatEventLine(id, fields));
  };
  try {
    if (values.follow) {
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      try {
        for await (const event of followRunEvents(client.store.redis as Redis, client.store.keys, runId, { signal: stop.signal })) print(event.id, event.fields);
      } finally {
        process.off('SIGINT', onSignal);
      }
      return 0;
    }
    const list = await client.events(runId);
    if (list.length === 0 && (await client.store.getStatus(runId)) === undefined) throw new SwitchyardError(ErrorCodes.RUN_NOT_FOUND, `no run "${runId}" (or it expired)`);
    for (const { id, ...fields } of list) print(id, fields);
    return 0;
  } finally {
    await client.close();
  }
}

/** `2026-01-02T10:00:00.123Z  node.done        check_pii  attempt=1 worker=… action=true` */
export function formatEventLine(id: string, fields: Record<string, string>): string {
  const at = Number(fields.at);
  const time = Number.isFinite(at) ? new Date(at).toISOString() : id;
  const { type = '?', node, at: _at, ...rest } = fields;
  const details = Object.entries(rest).map(([k, v]) => `${k}=${k === 'error' ? errorText(v) : v}`);
  return [time, type.padEnd(15), (node ?? '').padEnd(node ? 16 : 0), ...details].filter(Boolean).join('  ').trimEnd();
}

function errorText(json: string): string {
  try {
    const parsed = JSON.parse(json) as { message?: string };
    return JSON.stringify(parsed.message ?? json);
  } catch {
    return JSON.stringify(json);
  }
}
