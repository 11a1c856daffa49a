/**
 * `npm run demo`: a distributed AI-agent workflow on this machine, from a fresh clone, with no network and
 * no key. Starts Redis (REDIS_URL, else a private redis-server/valkey-server), the HTTP API and dashboard,
 * and two worker processes; runs the content-moderation use case (or --blueprint/--input) with live
 * progress; prints the result and the run's dashboard page. On a terminal it then stays up until Ctrl-C;
 * otherwise (CI) it stops at once. Either way it stops everything it started.
 *
 * Without Redis it runs the use case in this process with the in-memory executor instead.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { formatDuration, nodeKinds, palette, parseInput, resolveCliEnv, UsageError, type CliEnv } from '../src/cli/common.js';
import { createProgressPrinter, followRunEvents, type ProgressEvent } from '../src/cli/progress.js';
import { compileGraph } from '../src/engine/graph.js';
import { runInMemory } from '../src/executor/memory-executor.js';
import type { RunView } from '../src/types/run-view.js';
import { formatIssues, ValidationError } from '../src/errors.js';
import { createLogger } from '../src/logger.js';
import { RedisNotInstalledError } from '../src/local/redis-server.js';
import { startLocalStack, type LocalStack } from '../src/local/stack.js';
import { NodeKindRegistry, type NodeContext, type NodeKind } from '../src/types/node-kind.js';

const WORKFLOWS = fileURLToPath(new URL('../workflows', import.meta.url));
const DEFAULT_BLUEPRINT = 'content-moderation';

const HELP = `npm run demo [-- options]

Runs a distributed AI-agent workflow on this machine: Redis (REDIS_URL, else a private redis-server on a
free port), the HTTP API and dashboard, and 2 worker processes; shows each node as it is queued, runs,
finishes or is skipped, and on which worker; prints the result and the run's page on the dashboard.
On a terminal it stays up until Ctrl-C; otherwise it exits after the result. It stops all it started.

Options:
  --blueprint <id>     the blueprint to run (default ${DEFAULT_BLUEPRINT}); any in workflows/ or --blueprints
  --input <json>       its input as a JSON object, or @file.json (default: the blueprint's metadata.sampleInput)
  --blueprints <dir>   more blueprint files or directories (repeatable)
  --workers <N>        worker processes (default 2)
  --verbose            stack traces on errors

Examples:
  npm run demo
  npm run demo -- --blueprint job-application
  npm run demo -- --input '{"userId":"u-7","userPost":"Buy now! Limited offer at deals.example.com"}'
  SWITCHYARD_LLM=openai OPENAI_API_KEY=sk-... npm run demo`;

const print = (line = '') => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: {
      blueprint: { type: 'string' },
      input: { type: 'string' },
      blueprints: { type: 'string', multiple: true },
      workers: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      verbose: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    print(HELP);
    return 0;
  }
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (see npm run demo -- --help)`);
  const workers = values.workers === undefined ? 2 : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 16) throw new UsageError(`--workers must be a whole number 1-16 (got "${values.workers}")`);

  const env = resolveCliEnv(process.env);
  const color = process.stdout.isTTY === true;
  const c = palette(color);
  const paths = [WORKFLOWS, ...(values.blueprints ?? [])];
  const registry = await BlueprintRegistry.load(paths, nodeKinds(env));
  const blueprintId = values.blueprint ?? DEFAULT_BLUEPRINT;
  const loaded = registry.get(blueprintId);
  if (!loaded) throw new UsageError(`no blueprint "${blueprintId}" (known: ${registry.ids().join(', ')})`);
  const sample = loaded.blueprint.metadata?.sampleInput;
  const input = values.input === undefined ? (isObject(sample) ? sample : {}) : parseInput(values.input);

  print(c.bold(`Switchyard demo: the ${blueprintId} agent workflow, its nodes spread over worker processes`));
  const modelLine =
    env.llmProvider === 'offline'
      ? `model      offline rule-based responder (no network, no key; not a model). For a real one: SWITCHYARD_LLM=openai OPENAI_API_KEY=sk-... npm run demo`
      : `model      ${env.llmProvider}${env.vars.SWITCHYARD_LLM_MODEL ? ` (${env.vars.SWITCHYARD_LLM_MODEL})` : ''}`;

  // Ctrl-C at any point: stop following, stop everything, exit 130.
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  let stack: LocalStack;
  try {
    stack = await startLocalStack({
      redisUrl: env.redisUrl,
      prefix: env.prefix,
      queueName: env.queueName,
      registry,
      blueprintPaths: paths,
      workers,
      // Worker logs only when something goes wrong: the progress lines tell the story.
      workerEnv: { ...env.vars, SWITCHYARD_LOG_LEVEL: env.vars.SWITCHYARD_LOG_LEVEL || 'warn' },
      api: { port: 0, host: '127.0.0.1', auth: 'off', logger: createLogger({ level: 'warn' }) },
    });
  } catch (err) {
    if (!(err instanceof RedisNotInstalledError)) throw err;
    return runInProcess(env, registry, blueprintId, input, color, modelLine);
  }

  try {
    const { redis, api } = stack;
    print(`redis      ${redis.url}  ${c.dim(redis.server ? `(private ${redis.server.binary.split('/').pop()}, pid ${redis.server.pid}, in ${redis.server.dir})` : '(REDIS_URL)')}`);
    print(`api        ${api.url}  ${c.dim('(auth off: for local development only)')}`);
    print(`dashboard  ${c.cyan(stack.dashboardUrl())}`);
    print(`workers    ${stack.workers.map((w) => `worker ${w.index} (pid ${w.pid})`).join(', ')}`);
    print(modelLine);
    print();

    // Started through the API, as the dashboard and any client would: the run belongs to the local tenant.
    const response = await fetch(`${api.url}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ blueprintId, input }),
    });
    const body = (await response.json()) as { runId?: string; error?: { message?: string } };
    if (response.status !== 202 || !body.runId) throw new Error(`POST /runs answered ${response.status}: ${body.error?.message ?? JSON.stringify(body)}`);
    const runId = body.runId;
    print(`run ${c.bold(runId)} of ${c.bold(blueprintId)}`);
    print(c.dim(`input ${clip(JSON.stringify(input), 160)}`));
    print();

    const labels = new Map(stack.workers.map((w) => [w.workerId, `worker ${w.index} (pid ${w.pid})`]));
    // A waiting node's signal command must reach this demo's Redis (a private one, not 6379).
    const progress = createProgressPrinter({ write: print, color, workerLabel: (id) => labels.get(id) ?? id, commandPrefix: `REDIS_URL=${redis.url} ` });
    for await (const event of followRunEvents(stack.client.store.redis as Redis, stack.client.store.keys, runId, { children: true, signal: interrupt.signal })) {
      progress(event);
    }
    if (interrupt.signal.aborted) {
      print('\ninterrupted: stopping everything');
      return 130;
    }
    const view = await stack.client.get(runId);
    if (!view) throw new Error(`run ${runId} disappeared`);
    printResult(view, color);
    print();
    print(`See it in the dashboard: ${c.cyan(stack.dashboardUrl(runId))}`);

    if (process.stdout.isTTY && !interrupt.signal.aborted) {
      print(c.dim(`\nThe API and dashboard stay up until Ctrl-C (REDIS_URL=${redis.url} switchyard status ${runId} works meanwhile).`));
      await new Promise<void>((resolve) => interrupt.signal.addEventListener('abort', () => resolve(), { once: true }));
      print();
    }
    return view.status === 'completed' ? 0 : 1;
  } finally {
    // A second Ctrl-C while the workers drain kills them.
    process.off('SIGINT', onSignal);
    process.once('SIGINT', () => void stack.stop({ force: true }));
    await stack.stop();
    const left = [...stack.workers.map((w) => `worker ${w.index} (pid ${w.pid})`), ...(stack.redis.server ? [`redis (pid ${stack.redis.server.pid})`] : [])];
    print(c.dim(`stopped ${left.join(', ')}${stack.redis.server ? ' and removed its temp dir' : ''}; the API is closed`));
  }
}

/** The run's outcome: its final output (or context) and, for a failed run, which node failed and why. */
function printResult(view: RunView, color: boolean): void {
  const c = palette(color);
  const took = view.createdAt && view.endedAt ? ` in ${formatDuration(view.endedAt - view.createdAt)}` : '';
  const tokens = view.usage ? `, ${view.usage.promptTokens + view.usage.completionTokens} tokens` : '';
  const paint = view.status === 'completed' ? c.green : c.red;
  print();
  print(paint(c.bold(`Result: ${view.status}${took}${tokens}`)));
  if (view.error) print(c.red(`failed at ${view.error.nodeId ?? 'the run'}: ${view.error.message}`));
  const output = view.context.final_output;
  if (output !== undefined) {
    print(c.dim('final_output:'));
    print(String(output));
  } else {
    print(c.dim('context:'));
    print(JSON.stringify(view.context, null, 2));
  }
}

/**
 * Without Redis: the same blueprint in this process with the in-memory executor (same transitions, same
 * node kinds), with a line per node as it runs and finishes.
 */
async function runInProcess(env: CliEnv, registry: BlueprintRegistry, blueprintId: string, input: Record<string, unknown>, color: boolean, modelLine: string): Promise<number> {
  const c = palette(color);
  print(c.yellow('redis      none found, so this runs in this one process. Distribution needs Redis: apt-get install -y redis-server (macOS: brew install redis), or set REDIS_URL'));
  print(modelLine);
  print();
  const runId = randomUUID();
  const progress = createProgressPrinter({ write: print, color });
  const emit = (type: string, at: number, ctx: NodeContext, fields: Record<string, string> = {}) =>
    progress({ runId: ctx.runId, id: `${at}-0`, type, at, node: ctx.nodeId, fields: { type, node: ctx.nodeId, ...fields }, path: ctx.runId === runId ? [] : [ctx.blueprintId] });
  const kinds = reportingKinds(nodeKinds(env), emit);
  const loaded = registry.get(blueprintId)!;
  const graph = compileGraph(loaded, kinds);
  const start = Date.now();
  progress({ runId, id: '0-0', type: 'run.started', at: start, fields: { type: 'run.started' }, path: [], run: { blueprintId, startNodes: graph.startNodes.map((n) => n.id) } });
  const view = await runInMemory(graph, { kinds, blueprints: registry, input, runId });
  const skipped = Object.entries(view.nodes).filter(([, n]) => n.status === 'skipped').map(([id]) => id);
  const end: ProgressEvent = { runId, id: '1-0', type: `run.${view.status}`, at: Date.now(), fields: { type: `run.${view.status}` }, path: [] };
  if (skipped.length) progress({ ...end, type: 'nodes.skipped', fields: { type: 'nodes.skipped', nodes: skipped.join(',') } });
  progress(end);
  view.createdAt = start;
  view.endedAt = end.at;
  printResult(view, color);
  print();
  print(c.dim('No dashboard without Redis: it reads runs from Redis.'));
  return view.status === 'completed' ? 0 : 1;
}

/** The node kinds, each reporting when a node starts, waits for a child run and finishes. */
function reportingKinds(kinds: NodeKindRegistry, emit: (type: string, at: number, ctx: NodeContext, fields?: Record<string, string>) => void): NodeKindRegistry {
  const wrapped = kinds.names().map((name) => {
    const kind = kinds.get(name)!;
    const wrapper: NodeKind = Object.create(kind);
    const begun = new Map<string, number>();
    wrapper.run = async (ctx) => {
      const at = Date.now();
      begun.set(`${ctx.runId}:${ctx.nodeId}`, at);
      emit('node.started', at, ctx, { attempt: String(ctx.attempt), worker: 'the demo process' });
      const result = await kind.run(ctx);
      if (result.waitFor) emit('node.waiting', Date.now(), ctx, { child: result.waitFor.runId });
      else emit('node.done', Date.now(), ctx, { startedAt: String(at), worker: 'the demo process', ...(result.action ? { action: result.action } : {}) });
      return result;
    };
    if (kind.resume) {
      wrapper.resume = async (ctx, child) => {
        const result = await kind.resume!(ctx, child);
        const at = begun.get(`${ctx.runId}:${ctx.nodeId}`);
        emit('node.done', Date.now(), ctx, { worker: 'the demo process', ...(at ? { startedAt: String(at) } : {}), ...(result.action ? { action: result.action } : {}) });
        return result;
      };
    }
    return wrapper;
  });
  return new NodeKindRegistry(wrapped);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ValidationError) console.error(formatIssues(err.issues));
    else console.error(`demo: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    if (process.argv.includes('--verbose') && err instanceof Error) console.error(err.stack);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
