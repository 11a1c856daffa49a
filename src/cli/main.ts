import { parseArgs } from 'node:util';
import { BlueprintRegistry } from '../blueprint/load.js';
import { formatIssues, ValidationError } from '../errors.js';
import { createNodeKinds } from '../nodes/index.js';
import { DEFAULT_CONCURRENCY, SwitchyardWorker } from '../executor/worker.js';
import { FleetLimits } from '../executor/llm-fleet-limit.js';
import { llmLimitsFromEnv } from '../llm/index.js';
import { WORKER_READY_MESSAGE, type WorkerReadyMessage } from '../local/stack.js';
import { cliLogger, DEFAULT_HEARTBEAT_MS, DEFAULT_REDIS_URL, intOption, loadRegistry, openRedis, redisTarget, resolveCliEnv, UsageError, type CliEnv } from './common.js';
import { describeRedisTarget } from '../redis-connection.js';
import { checkHeartbeat, startHeartbeat, type Heartbeat } from './heartbeat.js';
import { blueprints } from './blueprints.js';
import { dev } from './dev.js';
import { graph } from './graph.js';
import { keys } from './keys.js';
import { limits } from './limits.js';
import { cancel, events, redrive, run, signal, status } from './runs.js';
import { OPTIONS, type OptionName, type Parsed } from './options.js';
import { workerOpsFromEnv } from './worker-ops.js';
import type { AnyNodeKind } from '../types/node-kind.js';

const USAGE = `switchyard — run graph-shaped AI-agent workflows on Redis + BullMQ

Usage:
  switchyard dev [--workers N] [--port P] [--auth]          Redis, API, dashboard and workers on this machine
  switchyard worker [--blueprints <dir>] [--concurrency N]  consume node jobs until Ctrl-C
  switchyard run <blueprintId> [--input <json>] [--wait] [--json] [--local]
  switchyard status <runId> [--json]                        a run's state, nodes, result
  switchyard cancel <runId>
  switchyard redrive <runId>                                run a failed or cancelled run's failed part again
  switchyard signal <runId> <nodeId> [--action A] [--payload <json>]   answer a waiting node
  switchyard events <runId> [--follow] [--json]             a run's timeline
  switchyard graph <blueprintId|file> [--out file.svg|file.png]
  switchyard keys create --tenant T | keys list | keys revoke <id>
  switchyard health [--max-age-seconds N]                   exit 0 while the worker's heartbeat file is fresh
  switchyard limits [--json]                                each fleet-wide LLM limit's use now
  switchyard validate <file-or-dir>...
  switchyard blueprints push <dir|file>... | blueprints list   store blueprint versions through the HTTP API

Blueprints come from --blueprints <dir> (repeatable; default ./workflows when it exists).

Environment (Redis: the same settings for the worker and every command; set REDIS_URL or REDIS_HOST):
  REDIS_URL              redis://[:password@]host:port, or rediss:// for TLS
  REDIS_HOST             or an endpoint (ElastiCache): REDIS_HOST, REDIS_PORT (default 6379),
  REDIS_PORT, REDIS_TLS    REDIS_TLS (true|false, default false) and the AUTH token as REDIS_AUTH_TOKEN
  REDIS_AUTH_TOKEN         or REDIS_AUTH_SECRET_ARN (a Secrets Manager secret, read once)
  REDIS_AUTH_SECRET_ARN
  REDIS_CLUSTER          true: cluster mode (ElastiCache cluster mode, Serverless), with REDIS_URL or REDIS_HOST
                         With no REDIS_* variable at all: ${DEFAULT_REDIS_URL} (dev starts a private Redis
                         instead). With some set, exactly those are used: an incomplete or contradictory set
                         (REDIS_PORT without REDIS_HOST, REDIS_URL and REDIS_HOST) is refused, never guessed.
  SWITCHYARD_PREFIX      prefix of Switchyard's Redis keys (default sy)
  SWITCHYARD_QUEUE       BullMQ queue name (default switchyard)
  SWITCHYARD_QUEUE_SHARDS  queue shards (default 1): the same on every worker and client; on a Redis
                         Cluster its shard count, so the queue spreads over them
  SWITCHYARD_LOG_LEVEL   debug | info | warn | error | silent (default info)
  SWITCHYARD_LOG_FORMAT  json | pretty (default: pretty on a terminal, else JSON lines)
  SWITCHYARD_LLM         offline (default: rule-based, no network) | openai | bedrock
  SWITCHYARD_LLM_MODEL   model id for openai/bedrock; OPENAI_API_KEY, OPENAI_BASE_URL, AWS_REGION
  SWITCHYARD_LLM_CONCURRENCY  LLM requests in flight per worker (default 8)
  SWITCHYARD_LLM_LIMITS       fleet-wide LLM limits as JSON: {"openai:gpt-4o-mini": {"maxConcurrent": 5,
                              "requestsPerMinute": 60, "tokensPerMinute": 200000}} ("openai" alone: any model)
  SWITCHYARD_LLM_LIMITS_FILE  the same from a JSON file (the variable's keys win)
  SWITCHYARD_RUN_TTL_SECONDS  how long finished runs (and child runs a worker starts) are kept (default 604800)
  SWITCHYARD_HEARTBEAT_FILE   worker: touch this file every 5 s while alive (for switchyard health)
  SWITCHYARD_API_URL     the HTTP API for switchyard blueprints (default http://127.0.0.1:4280); SWITCHYARD_API_KEY its key

Every command takes --help (options and examples) and --verbose (stack traces on errors).`;

const HELP: Record<string, string> = {
  validate: `switchyard validate <file-or-dir>...

Checks blueprint files (directories: every *.json below them, recursively). Prints every problem as
<file>: <json-path>: <message> and exits 1 when there is any; exits 0 when all are valid.

Examples:
  switchyard validate workflows/
  switchyard validate ../shared/seed-workflows workflows/blog.json`,
  worker: `switchyard worker [--blueprints <dir>] [--concurrency N]

Consumes node jobs from Redis until SIGINT/SIGTERM, then stops taking jobs and lets running nodes finish
within the drain timeout; nodes still running then are aborted and handed back to the queue at once.
Redis: REDIS_URL, or REDIS_HOST/REDIS_PORT/REDIS_TLS/REDIS_CLUSTER with REDIS_AUTH_TOKEN or
REDIS_AUTH_SECRET_ARN (switchyard --help); ${DEFAULT_REDIS_URL} only when no REDIS_* variable is set.

Options:
  --blueprints <dir>   blueprint files or directories (repeatable; default ./workflows); needed by subflows
  --concurrency <N>    node jobs at once (default 64; none taken while its LLM slots are all busy)
  --lock-duration <ms> how long a claim on a running node lasts unrenewed; after a worker dies, its
                       nodes run again elsewhere once this passes (default 30000)
  --drain-timeout <ms> grace period for running nodes on SIGTERM (default SWITCHYARD_DRAIN_TIMEOUT_MS, else
                       90000: under ECS's StopTimeout of 120 s)

Environment (on ECS):
  SWITCHYARD_DRAIN_TIMEOUT_MS  as --drain-timeout
  SWITCHYARD_TASK_PROTECTION   true: protect the task from scale-in while it holds node jobs (through
                               $ECS_AGENT_URI/task-protection/v1/state; skipped when ECS_AGENT_URI is unset)
  SWITCHYARD_METRIC_SERVICE    print one EMF line (Switchyard/RunsFailed, dimension Service) per failed run

Environment:
  SWITCHYARD_RUN_TTL_SECONDS  how long the child runs it starts are kept after they end (default 7 days)
  SWITCHYARD_HEARTBEAT_FILE   rewritten every SWITCHYARD_HEARTBEAT_MS (default ${DEFAULT_HEARTBEAT_MS}) while the worker
                              runs and is not draining; switchyard health checks it
  SWITCHYARD_DEAD_AFTER_MS    a worker whose Redis heartbeat stood still this long is taken for dead and its
                              jobs go back to the queue at once (default 2000)
  SWITCHYARD_RECONCILE_AFTER_MS  a running run with no progress this long is checked, and nodes no job holds
                              are enqueued again (default 15000)

Examples:
  REDIS_URL=redis://127.0.0.1:6380 switchyard worker --blueprints workflows/ --concurrency 32
  REDIS_HOST=my-cache.example.com REDIS_TLS=true REDIS_AUTH_TOKEN=... switchyard worker --blueprints workflows/
  SWITCHYARD_LLM=openai OPENAI_API_KEY=sk-... switchyard worker --blueprints workflows/`,
  run: `switchyard run <blueprintId> [options]

Starts a run. Exit code 0 when the run was started (without --wait) or completed (with --wait), 1 otherwise.
Redis: the worker's settings (REDIS_URL, or REDIS_HOST/REDIS_PORT/REDIS_TLS/REDIS_CLUSTER and the AUTH
token; see switchyard --help); ${DEFAULT_REDIS_URL} only when no REDIS_* variable is set.

Options:
  --blueprints <dir>   blueprint files or directories (repeatable; default ./workflows)
  --input <json>       the run's initial context as a JSON object, or @path to a JSON file
  --wait               wait for the run to end and print its result (with live progress on a terminal)
  --progress           show live progress while waiting, also when not on a terminal (on stderr)
  --timeout <s>        with --wait: give up waiting after this many seconds (the run goes on)
  --timeout-run <s>    the run's deadline: past it the run fails with RUN_TIMEOUT (running nodes are
                       aborted, waiting and sleeping nodes and child runs end)
  --priority <n>       the run's priority, BullMQ's: 1 (highest) to 2097152; its node jobs are taken
                       before those of runs with a larger number (runs without one go first)
  --json               print one JSON object: { runId, blueprintId, status, context, nodes, error? }
  --local              run in this process with the in-memory executor (no Redis, no workers)
  --tenant <tenant>    whose run it is in the HTTP API and dashboard (default local: the tenant of
                       switchyard dev without --auth, so the run shows in its dashboard)

Examples:
  switchyard run greeting --input '{"name":"Ada"}' --wait
  REDIS_HOST=10.0.1.5 REDIS_CLUSTER=true REDIS_AUTH_TOKEN=... switchyard run greeting --wait
  switchyard run content-moderation --input @post.json --wait --json
  switchyard run 100 --blueprints ../shared/seed-workflows --input @topic.json --local --json`,
  status: `switchyard status <runId> [--json]

Prints a run: its status, blueprint, duration and token use, each node (status, attempts, worker, time,
tokens), the error of a failed run and the final output. Exit code 0 when the run exists, 1 otherwise.

Options:
  --json   the whole run view as JSON (status, context, outputs, nodes, error, usage, parent)

Examples:
  switchyard status 3f0c2a5e-8a39-4a59-a2a5-0b8f1f6a4c1d
  switchyard status 3f0c2a5e-8a39-4a59-a2a5-0b8f1f6a4c1d --json | jq .context`,
  cancel: `switchyard cancel <runId>

Cancels a running run and its child runs: running nodes see their AbortSignal fire, nothing more starts.
Exit code 0 when it was cancelled, 1 when it had already ended or does not exist.

Examples:
  switchyard cancel 3f0c2a5e-8a39-4a59-a2a5-0b8f1f6a4c1d`,
  redrive: `switchyard redrive <runId>

Redrives a failed or cancelled run: its failed and cancelled nodes, and the nodes never reached because
of them, run again; done nodes keep their outputs and do not run again (no LLM call is paid twice). A
failed child run of a subflow, map or loop node is redriven in place. The run's status counts redrives.
Exit code 0 when the run runs again, 1 when it is running or completed, or does not exist.

Examples:
  switchyard redrive 3f0c2a5e-8a39-4a59-a2a5-0b8f1f6a4c1d
  switchyard redrive 3f0c2a5e-8a39-4a59-a2a5-0b8f1f6a4c1d && switchyard events 3f0c2a5e-8a39-4a59-a2a5-0b8f1f6a4c1d --follow`,
  signal: `switchyard signal <runId> <nodeId> [--action <action>] [--payload <json>]

Answers a waiting \`wait\` node: --action chooses which of its outgoing edges are taken (as a router's
action does), --payload (JSON, or @path to a JSON file; at most 64 KiB) becomes the node's output.
Exit code 0 when the node was completed; 1 when it is not waiting (already answered, timed out,
cancelled, or not a wait node), the run or node does not exist, or no edge has the action.
\`switchyard run --wait\` prints this command for each node that waits. The run's status (\`status --json\`)
lists what is waiting, with its prompt and actions.

Options:
  --action <action>    one of the actions of the node's outgoing edges
  --payload <json>     the node's output: any JSON value, or @path to a file holding one

Examples:
  switchyard signal 3f0c2a5e-8a39-4a59-a2a5-0b8f1f6a4c1d approve --action approve
  switchyard signal 3f0c2a5e-8a39-4a59-a2a5-0b8f1f6a4c1d review --action reject --payload '{"reason":"too long"}'`,
  events: `switchyard events <runId> [--follow] [--json]

Prints the run's timeline, one event per line: time, type, node and details (worker, attempt, action, the
nodes it made ready or skipped, errors).

Options:
  --follow   keep printing events as they happen until the run ends (XREAD BLOCK, no polling)
  --json     one JSON object per event

Examples:
  switchyard events 3f0c2a5e-8a39-4a59-a2a5-0b8f1f6a4c1d
  switchyard events 3f0c2a5e-8a39-4a59-a2a5-0b8f1f6a4c1d --follow --json | jq -c 'select(.type=="node.done")'`,
  graph: `switchyard graph <blueprintId|file.json> [--blueprints <dir>] [--out file.svg|file.png]

Draws a blueprint: Mermaid flowchart text on stdout, or with --out an SVG file (laid out top to bottom)
or a PNG (the SVG rendered by headless Chromium: needs /usr/bin/chromium and playwright-core).

Options:
  --blueprints <dir>   where to find <blueprintId> (repeatable; default ./workflows)
  --out <file>         write .svg or .png instead of printing Mermaid

Examples:
  switchyard graph content-moderation
  switchyard graph workflows/use-cases/job-application.json --out job-application.svg
  switchyard graph blog-post --out blog-post.png`,
  keys: `switchyard keys create --tenant <tenant> [--scopes runs:read,runs:write] [--name <name>] [--json]
switchyard keys list [--json]
switchyard keys revoke <keyId>

API keys for the HTTP API (switchyard dev --auth, the Lambda API). Only a key's SHA-256 is stored: create
prints the key once (alone on stdout, so it can be captured); list shows ids, tenants, scopes and names.
Redis: the worker's settings (REDIS_URL, or REDIS_HOST/REDIS_PORT/REDIS_TLS/REDIS_CLUSTER and the AUTH
token); ${DEFAULT_REDIS_URL} only when no REDIS_* variable is set. On AWS, where Redis is reachable only
inside the VPC, use the keys function instead: serverless invoke -f keys --data '{"action":"list"}'.

Options:
  --tenant <tenant>    whose runs the key starts and reads (letters, digits, ".", "_", "-")
  --scopes <list>      comma-separated: runs:read, runs:write (default both); admin scopes only when named:
                       blueprints:write (switchyard blueprints push), limits:read (GET /limits)
  --name <name>        a label to recognise the key by (default "cli")

Examples:
  switchyard keys create --tenant acme --name "acme backend"
  KEY=$(switchyard keys create --tenant acme --scopes runs:read)
  switchyard keys list
  switchyard keys revoke key_Q2x9v0aLk1sP`,
  blueprints: `switchyard blueprints push <dir|file>... [--api <url>] [--key <apiKey>] [--json]
switchyard blueprints list [--api <url>] [--key <apiKey>] [--json]

push validates and stores each blueprint file (directories: every *.json below them) as a new version in
the deployment's Redis, through its HTTP API (PUT /blueprints/{id}): new runs of the id start it on the
workers already running, with no deploy. Blueprints that others call are pushed first. Prints one line per
blueprint: id, version, created | unchanged; every problem as <file>: <json-path>: <message>, exit 1.
list shows every blueprint a run can start: id, the version it runs, when that was pushed.

Options:
  --api <url>      the HTTP API (default SWITCHYARD_API_URL, else http://127.0.0.1:4280: switchyard dev)
  --key <apiKey>   an API key with the blueprints:write scope for push (default SWITCHYARD_API_KEY)
  --json           print JSON instead

Examples:
  switchyard blueprints push workflows/
  SWITCHYARD_API_URL=https://abc123.execute-api.eu-west-1.amazonaws.com SWITCHYARD_API_KEY=sy_... switchyard blueprints push workflows/use-cases/blog-post.json
  switchyard blueprints list`,
  limits: `switchyard limits [--json]

Each fleet-wide LLM limit (SWITCHYARD_LLM_LIMITS, SWITCHYARD_LLM_LIMITS_FILE, as the workers that use it
registered it) and its use now: requests in flight, requests and tokens in the current minute, whether a
provider's Retry-After pauses it and until when, and how many requests wait in line. The same as the
API's GET /limits. Redis: the worker's settings (REDIS_URL, or REDIS_HOST/REDIS_PORT/REDIS_TLS/
REDIS_CLUSTER and the AUTH token); ${DEFAULT_REDIS_URL} only when no REDIS_* variable is set.

Options:
  --json               one JSON object: { limits: [{ id, maxConcurrent, requestsPerMinute, tokensPerMinute,
                       inFlight, requests, tokens, pausedUntil, waiting }] } (0: no such cap)

Examples:
  switchyard limits
  switchyard limits --json | jq '.limits[] | select(.waiting > 0)'`,
  health: `switchyard health [--max-age-seconds N] [--file <path>]

A worker's health check (ECS, Docker HEALTHCHECK, Kubernetes exec probe): exit 0 when the worker's
heartbeat file was written within N seconds, else 1 with one line saying why. A worker started with
SWITCHYARD_HEARTBEAT_FILE rewrites that file every 5 s from a timer, only while its event loop turns and
it is not draining, so a hung or stopped worker fails the check. Reads no Redis and no network.

Options:
  --max-age-seconds <N>  how old the heartbeat may be (default 30)
  --file <path>          the heartbeat file (default: SWITCHYARD_HEARTBEAT_FILE)

Examples:
  SWITCHYARD_HEARTBEAT_FILE=/tmp/switchyard-heartbeat switchyard worker --blueprints workflows/ &
  SWITCHYARD_HEARTBEAT_FILE=/tmp/switchyard-heartbeat switchyard health
  switchyard health --file /tmp/switchyard-heartbeat --max-age-seconds 15`,
  dev: `switchyard dev [--blueprints <dir>] [--workers N] [--port P] [--host H] [--auth]

Runs a whole Switchyard on this machine until Ctrl-C: Redis (the REDIS_* settings when any is set, as for
every command; else a private redis-server or valkey-server on a free port in a temp dir), the HTTP API
and the dashboard, and N worker processes.
Ctrl-C stops the workers (they finish their running nodes), the API and the Redis it started.

Options:
  --blueprints <dir>   blueprint files or directories (repeatable; default ./workflows)
  --workers <N>        worker processes (default 2)
  --concurrency <N>    node jobs per worker (default 64)
  --port <P>           API and dashboard port (default 4280; 0 picks a free one)
  --host <H>           address to listen on (default 127.0.0.1: this machine only)
  --auth               require API keys (switchyard keys create); without it auth is off, for local use only

Examples:
  switchyard dev
  switchyard dev --workers 4 --port 8080
  REDIS_URL=redis://127.0.0.1:6379 switchyard dev --auth`,
};

/** The options each command takes (besides --help and --verbose). */
const COMMAND_OPTIONS: Record<string, readonly OptionName[]> = {
  validate: [],
  worker: ['blueprints', 'concurrency', 'lock-duration', 'drain-timeout'],
  run: ['blueprints', 'input', 'wait', 'progress', 'timeout', 'timeout-run', 'json', 'local', 'tenant', 'priority'],
  status: ['json'],
  cancel: [],
  redrive: [],
  signal: ['action', 'payload', 'json'],
  events: ['follow', 'json'],
  graph: ['blueprints', 'out'],
  keys: ['tenant', 'scopes', 'name', 'json'],
  health: ['max-age-seconds', 'file'],
  limits: ['json'],
  dev: ['blueprints', 'workers', 'concurrency', 'port', 'host', 'auth'],
  blueprints: ['api', 'key', 'json'],
};

/** Entry point: returns the process exit code. Only this file reads process.env and argv. */
/** What an embedding program adds to the command (the chaos tests' recording worker). */
export interface MainOptions {
  /** Node kinds the `worker` command offers besides the built-in ones. @default none */
  kinds?: readonly AnyNodeKind[];
}

/** Runs one `switchyard` command; resolves with its exit code. */
export async function main(argv: string[], mainOptions: MainOptions = {}): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const allowed = COMMAND_OPTIONS[command];
  if (!allowed) {
    console.error(`switchyard: unknown command "${command}" (commands: ${Object.keys(COMMAND_OPTIONS).join(', ')}; see switchyard --help)`);
    return 2;
  }
  const options = Object.fromEntries([...allowed, 'help', 'verbose'].map((name) => [name, OPTIONS[name as OptionName]]));
  let values: Parsed;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, options, allowPositionals: true, strict: true }) as { values: Parsed; positionals: string[] });
  } catch (err) {
    console.error(`switchyard ${command}: ${(err as Error).message}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP[command]);
    return 0;
  }
  try {
    const env = resolveCliEnv(process.env);
    switch (command) {
      case 'validate':
        return await validate(positionals);
      case 'worker':
        return await worker(positionals, values, env, mainOptions.kinds ?? []);
      case 'run':
        return await run(positionals, values, env);
      case 'status':
        return await status(positionals, values, env);
      case 'cancel':
        return await cancel(positionals, env);
      case 'redrive':
        return await redrive(positionals, env);
      case 'signal':
        return await signal(positionals, values, env);
      case 'events':
        return await events(positionals, values, env);
      case 'graph':
        return await graph(positionals, values, env);
      case 'keys':
        return await keys(positionals, values, env);
      case 'health':
        return health(positionals, values, env);
      case 'limits':
        return await limits(positionals, values, env);
      case 'dev':
        return await dev(positionals, values, env);
      case 'blueprints':
        return await blueprints(positionals, values, env);
      default:
        throw new UsageError(`unknown command "${command}"`);
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
    console.error(`switchyard ${command}: ${oneLine(err)}`);
    if (values.verbose && err instanceof Error && err.stack) console.error(err.stack);
    return 1;
  }
}

function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0] ?? text;
}

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

async function worker(positionals: string[], values: Parsed, env: CliEnv, extraKinds: readonly AnyNodeKind[]): Promise<number> {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const concurrency = intOption('concurrency', values.concurrency, DEFAULT_CONCURRENCY, 1);
  const lockDurationMs = values['lock-duration'] === undefined ? undefined : intOption('lock-duration', values['lock-duration'], 30_000, 1000);
  // Drain grace period, ECS task scale-in protection, the RunsFailed metric line.
  const ops = workerOpsFromEnv(process.env, values, cliLogger(env));
  // Fleet-wide LLM limits (SWITCHYARD_LLM_LIMITS, SWITCHYARD_LLM_LIMITS_FILE), checked before anything starts.
  const llmLimits = llmLimitsFromEnv(env.vars);
  // REDIS_URL, or an ElastiCache endpoint (REDIS_HOST, REDIS_PORT, REDIS_TLS, REDIS_AUTH_TOKEN as ECS
  // injects it from Secrets Manager, REDIS_CLUSTER) as the Fargate task definition sets it.
  const warn = cliLogger(env);
  const redis = await openRedis(env, { role: 'worker', onError: (error) => warn.warn('redis connection error', { error }) });
  const fleet = llmLimits ? new FleetLimits({ redis, prefix: env.prefix, limits: llmLimits, logger: cliLogger(env) }) : undefined;
  const registry = await loadRegistry(values.blueprints, env, fleet && ((provider) => fleet.wrap(provider)), extraKinds);
  const runTtlSeconds = env.runTtlSeconds;
  const w = new SwitchyardWorker({
    redis,
    prefix: env.prefix,
    queueName: env.queueName,
    queueShards: env.queueShards,
    kinds: registry.kinds,
    blueprints: registry,
    seedBlueprints: true,
    concurrency,
    lockDurationMs,
    runTtlSeconds,
    recovery: { reconcileAfterMs: env.reconcileAfterMs, deadAfterMs: env.deadAfterMs },
    logger: cliLogger(env),
    ...ops,
  });
  const log = cliLogger(env, { worker: w.id });
  // Signal handlers first, so a SIGTERM that arrives while the worker starts still drains it. They stay
  // installed while draining: a repeated SIGTERM does not cut the drain short (ECS sends SIGKILL after
  // its StopTimeout); a second Ctrl-C does.
  let stopRequested: ((reason: string) => void) | undefined;
  let pendingStop: string | undefined;
  const onSignal = (reason: string) => (stopRequested ? stopRequested(reason) : (pendingStop ??= reason));
  const onSigterm = () => onSignal('SIGTERM');
  let interrupts = 0;
  const onSigint = () => (++interrupts > 1 ? process.exit(130) : onSignal('SIGINT'));
  process.on('SIGTERM', onSigterm);
  process.on('SIGINT', onSigint);
  await Promise.all([w.ready(), fleet?.ready()]);
  log.info('worker ready', {
    concurrency,
    blueprints: registry.ids().length,
    redis: describeRedisTarget(redisTarget(env)),
    ...(llmLimits ? { llmLimits: Object.keys(llmLimits) } : {}),
  });
  const heartbeat: Heartbeat | undefined = env.heartbeatFile
    ? startHeartbeat(env.heartbeatFile, env.heartbeatMs, { workerId: w.id }, (error) => log.warn('heartbeat', { error }))
    : undefined;
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (reason: string) => {
      if (stopping) return;
      stopping = true;
      // A draining worker is not healthy any more: its heartbeat goes stale.
      heartbeat?.stop();
      log.info('draining: finishing running nodes, taking no new ones', { signal: reason });
      resolve();
    };
    stopRequested = stop;
    if (pendingStop) stop(pendingStop);
    if (process.send) {
      // Started by `switchyard dev` or the demo: say we are ready, and drain when our parent goes away.
      const ready: WorkerReadyMessage = { type: WORKER_READY_MESSAGE, workerId: w.id };
      process.send(ready);
      process.once('disconnect', () => stop('parent exited'));
      process.channel?.unref();
    }
  });
  await w.close();
  await fleet?.close();
  await redis.quit().catch(() => undefined);
  log.info('worker stopped');
  return 0;
}

/** `switchyard health`: the worker's heartbeat file is fresh (exit 0) or not (exit 1, one line why). */
function health(positionals: string[], values: Parsed, env: CliEnv): number {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const maxAgeSeconds = intOption('max-age-seconds', values['max-age-seconds'], 30, 1);
  const file = values.file ?? env.heartbeatFile;
  if (!file) throw new UsageError('name the heartbeat file: --file <path>, or SWITCHYARD_HEARTBEAT_FILE as the worker has it');
  const result = checkHeartbeat(file, maxAgeSeconds);
  if (result.ok) console.log(result.message);
  else console.error(`switchyard health: ${result.message}`);
  return result.ok ? 0 : 1;
}
