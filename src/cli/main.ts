import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BlueprintRegistry } from '../blueprint/load.js';
import { SwitchyardClient } from '../client/client.js';
import { ErrorCodes, formatIssues, SwitchyardError, ValidationError } from '../errors.js';
import { compileGraph } from '../engine/graph.js';
import { runInMemory } from '../engine/memory-executor.js';
import type { RunView } from '../engine/run-view.js';
import { createLogger, type LogLevel } from '../logger.js';
import { createLlmProvider, llmConfigFromEnv } from '../llm/index.js';
import { createNodeKinds } from '../nodes/index.js';
import type { NodeKindRegistry } from '../nodes/types.js';
import { SwitchyardWorker } from '../queue/worker.js';

/** Thrown for wrong command-line use: printed as one line, exit code 2. */
class UsageError extends Error {}

const USAGE = `switchyard — run graph-shaped AI-agent workflows on Redis + BullMQ

Usage:
  switchyard validate <file-or-dir>...
  switchyard worker --blueprints <dir> [--concurrency N] [--lock-duration ms]
  switchyard run <blueprintId> --blueprints <dir> [--input <json>|@file] [--wait] [--timeout <s>] [--json] [--local]

Environment:
  REDIS_URL              Redis to use (default redis://127.0.0.1:6379)
  SWITCHYARD_PREFIX      prefix of Switchyard's Redis keys (default sy)
  SWITCHYARD_QUEUE       BullMQ queue name (default switchyard)
  SWITCHYARD_LOG_LEVEL   debug | info | warn | error | silent (default info)
  SWITCHYARD_LLM         offline (default: rule-based, no network) | openai | bedrock
  SWITCHYARD_LLM_MODEL   model id for openai/bedrock; OPENAI_API_KEY, OPENAI_BASE_URL, AWS_REGION
  SWITCHYARD_LLM_CONCURRENCY  LLM requests in flight per worker (default 8)

Run 'switchyard <command> --help' for a command's options and examples.`;

const HELP: Record<string, string> = {
  validate: `switchyard validate <file-or-dir>...

Checks blueprint files (directories: every *.json below them, recursively). Prints every problem as
<file>: <json-path>: <message> and exits 1 when there is any; exits 0 when all are valid.

Examples:
  switchyard validate workflows/
  switchyard validate ../shared/seed-workflows workflows/blog.json`,
  worker: `switchyard worker --blueprints <dir> [--concurrency N]

Consumes node jobs from Redis until SIGINT/SIGTERM, then stops taking jobs and lets running nodes finish.

Options:
  --blueprints <dir>   blueprint files or directories (repeatable); needed by subflows
  --concurrency <N>    node jobs at once (default 16)
  --lock-duration <ms> how long a claim on a running node lasts unrenewed; after a worker dies, its
                       nodes run again elsewhere once this passes (default 30000)

Examples:
  REDIS_URL=redis://127.0.0.1:6380 switchyard worker --blueprints workflows/ --concurrency 32`,
  run: `switchyard run <blueprintId> --blueprints <dir> [options]

Starts a run. Exit code 0 when the run was started (without --wait) or completed (with --wait), 1 otherwise.

Options:
  --blueprints <dir>   blueprint files or directories (repeatable)
  --input <json>       the run's initial context as a JSON object, or @path to a JSON file
  --wait               wait for the run to end and print its result
  --timeout <s>        with --wait: give up waiting after this many seconds (the run goes on)
  --json               print one JSON object: { runId, blueprintId, status, context, nodes, error? }
  --local              run in this process with the in-memory executor (no Redis, no workers)

Examples:
  switchyard run greeting --blueprints workflows/ --input '{"name":"Ada"}' --wait
  switchyard run 100 --blueprints ../shared/seed-workflows --input @topic.json --local --json`,
};

const OPTIONS = {
  blueprints: { type: 'string', multiple: true },
  concurrency: { type: 'string' },
  'lock-duration': { type: 'string' },
  input: { type: 'string' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  local: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  verbose: { type: 'boolean' },
} satisfies ParseArgsConfig['options'];

type Parsed = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values'];

/** Entry point: returns the process exit code. Only this file reads process.env and argv. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  let values: Parsed;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (err) {
    console.error(`switchyard ${command}: ${(err as Error).message}`);
    return 2;
  }
  if (values.help) {
    const help = HELP[command];
    console.log(help ?? USAGE);
    return help ? 0 : 2;
  }
  try {
    switch (command) {
      case 'validate':
        return await validate(positionals);
      case 'worker':
        return await worker(values);
      case 'run':
        return await run(positionals, values);
      default:
        throw new UsageError(`unknown command "${command}" (commands: validate, worker, run; see switchyard --help)`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`switchyard ${command}: ${err.message}`);
      return 2;
    }
    if (err instanceof ValidationError) {
      console.error(formatIssues(err.issues));
      return 1;
    }
    console.error(`switchyard ${command}: ${err instanceof Error ? err.message : String(err)}`);
    if (values.verbose && err instanceof Error && err.stack) console.error(err.stack);
    return 1;
  }
}

const redisUrl = () => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Key prefix and queue name, so several Switchyards can share one Redis. */
const namespace = () => ({ prefix: process.env.SWITCHYARD_PREFIX ?? 'sy', queueName: process.env.SWITCHYARD_QUEUE ?? 'switchyard' });
/** Node kinds with the LLM provider and Lambda settings the environment chooses. */
const nodeKinds = (): NodeKindRegistry =>
  createNodeKinds({
    llm: createLlmProvider(llmConfigFromEnv(process.env)),
    lambda: { region: process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION, endpoint: process.env.SWITCHYARD_LAMBDA_ENDPOINT || undefined },
  });
const logger = () => createLogger({ level: (process.env.SWITCHYARD_LOG_LEVEL as LogLevel | undefined) ?? 'info' });

async function validate(paths: string[]): Promise<number> {
  if (paths.length === 0) throw new UsageError('name at least one blueprint file or directory');
  // Validation never calls a model: the offline provider stands in for whatever is configured.
  const { issues, files } = await BlueprintRegistry.check(paths, createNodeKinds());
  if (issues.length > 0) {
    console.log(formatIssues(issues));
    return 1;
  }
  console.log(`${files.length} blueprint file${files.length === 1 ? '' : 's'} valid`);
  return 0;
}

async function loadRegistry(values: Parsed): Promise<BlueprintRegistry> {
  if (!values.blueprints?.length) throw new UsageError('--blueprints <dir> is required');
  return BlueprintRegistry.load(values.blueprints, nodeKinds());
}

async function worker(values: Parsed): Promise<number> {
  const concurrency = values.concurrency === undefined ? 16 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError(`--concurrency must be a whole number >= 1 (got "${values.concurrency}")`);
  const lockDurationMs = values['lock-duration'] === undefined ? undefined : Number(values['lock-duration']);
  if (lockDurationMs !== undefined && !(Number.isInteger(lockDurationMs) && lockDurationMs >= 1000)) {
    throw new UsageError(`--lock-duration must be a whole number of ms >= 1000 (got "${values['lock-duration']}")`);
  }
  const registry = await loadRegistry(values);
  const log = logger();
  const w = new SwitchyardWorker({ redis: redisUrl(), ...namespace(), kinds: registry.kinds, blueprints: registry, concurrency, lockDurationMs, logger: log });
  await w.ready();
  log.info('worker ready', { concurrency, blueprints: registry.ids().length });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('draining: finishing running nodes, taking no new ones', { signal });
      process.once('SIGINT', () => process.exit(130)); // a second Ctrl-C forces the exit
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await w.close();
  log.info('worker stopped');
  return 0;
}

function parseInput(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined) return {};
  let text = raw;
  if (raw.startsWith('@')) {
    try {
      text = readFileSync(raw.slice(1), 'utf8');
    } catch (err) {
      throw new UsageError(`--input ${raw}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--input is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new UsageError('--input must be a JSON object');
  return input as Record<string, unknown>;
}

async function run(positionals: string[], values: Parsed): Promise<number> {
  const [blueprintId, ...extra] = positionals;
  if (!blueprintId) throw new UsageError('name the blueprint to run: switchyard run <blueprintId> --blueprints <dir>');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const input = parseInput(values.input);
  const timeoutSeconds = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeoutSeconds !== undefined && !(timeoutSeconds > 0)) throw new UsageError(`--timeout must be a number of seconds > 0 (got "${values.timeout}")`);
  const registry = await loadRegistry(values);
  const loaded = registry.get(blueprintId);
  if (!loaded) throw new UsageError(`no blueprint "${blueprintId}" in ${values.blueprints!.join(', ')} (known: ${registry.ids().join(', ') || 'none'})`);

  if (values.local) {
    const view = await runInMemory(compileGraph(loaded, registry.kinds), { kinds: registry.kinds, blueprints: registry, input, logger: logger() });
    return report(view, values);
  }
  const client = new SwitchyardClient({ redis: redisUrl(), ...namespace(), blueprints: registry });
  try {
    const handle = await client.start(blueprintId, input);
    if (!values.wait) {
      if (values.json) console.log(JSON.stringify({ runId: handle.runId, blueprintId, status: 'running' }));
      else console.log(`started run ${handle.runId} of ${blueprintId}`);
      return 0;
    }
    let view: RunView;
    try {
      view = await handle.result(timeoutSeconds === undefined ? {} : { timeoutMs: timeoutSeconds * 1000 });
    } catch (err) {
      if (err instanceof SwitchyardError && err.code === ErrorCodes.WAIT_TIMEOUT) {
        const current = await handle.get();
        if (values.json && current) console.log(JSON.stringify(summary(current)));
        console.error(`switchyard run: run ${handle.runId} still ${current?.status ?? 'running'} after ${timeoutSeconds} s (it goes on)`);
        return 1;
      }
      throw err;
    }
    return report(view, values);
  } finally {
    await client.close();
  }
}

function summary(view: RunView) {
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
