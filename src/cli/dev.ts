import type { BlueprintRegistry } from '../blueprint/load.js';
import { RedisNotInstalledError } from '../local/redis-server.js';
import { startLocalStack, type LocalStack } from '../local/stack.js';
import { DEFAULT_CONCURRENCY } from '../executor/worker.js';
import { hasRedisSettings, describeRedisTarget } from '../redis-connection.js';
import { blueprintPaths, cliLogger, intOption, loadRegistry, openRedis, palette, redisTarget, UsageError, type CliEnv } from './common.js';
import type { Parsed } from './options.js';

export const DEFAULT_DEV_PORT = 4280;

/** A POST /runs body for a use case (or any blueprint) with its sample input, quoted for a POSIX shell. */
function exampleRunBody(registry: BlueprintRegistry): string {
  const ids = registry.ids();
  const id = ids.find((i) => i === 'content-moderation') ?? ids.find((i) => i === 'greeting') ?? ids[0] ?? 'my-blueprint';
  const input = registry.get(id)?.blueprint.metadata?.sampleInput ?? {};
  return JSON.stringify({ blueprintId: id, input }).replace(/'/g, `'\\''`);
}

/** `switchyard dev`: Redis, API + dashboard and worker processes until Ctrl-C, then all of it stopped. */
export async function dev(positionals: string[], values: Parsed, env: CliEnv): Promise<number> {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const workers = intOption('workers', values.workers, 2, 1);
  const concurrency = values.concurrency === undefined ? undefined : intOption('concurrency', values.concurrency, DEFAULT_CONCURRENCY, 1);
  const port = intOption('port', values.port, DEFAULT_DEV_PORT, 0);
  if (port > 65535) throw new UsageError(`--port must be 0-65535 (got "${values.port}")`);
  const host = values.host ?? '127.0.0.1';
  if (!values.auth && !isLoopback(host)) throw new UsageError(`--host ${host} would let other machines start and cancel runs with auth off: add --auth (API keys)`);
  const paths = blueprintPaths(values.blueprints);
  const registry = await loadRegistry(paths, env);
  const c = palette(process.stdout.isTTY === true);
  // Any REDIS_* setting: that Redis, resolved as for every command (REDIS_URL alone keeps its URL form, as
  // the demo and the printed hints use it); none: a private Redis.
  const target = hasRedisSettings(env.vars) ? redisTarget(env) : undefined;
  const plainUrl = target?.kind === 'url' && !target.cluster ? target.url : undefined;
  const redisConnection =
    target && !plainUrl ? { address: describeRedisTarget(target), connect: () => openRedis(env, { role: 'api' }) } : undefined;

  // Ctrl-C while starting: stop what has started so far, then leave.
  let interrupted = false;
  const early = () => (interrupted = true);
  process.on('SIGINT', early);
  process.on('SIGTERM', early);
  let stack: LocalStack;
  try {
    stack = await startLocalStack({
      redisUrl: plainUrl,
      redisConnection,
      prefix: env.prefix,
      queueName: env.queueName,
      queueShards: env.queueShards,
      registry,
      blueprintPaths: paths,
      workers,
      concurrency,
      workerEnv: { ...env.vars, ...(process.stderr.isTTY && !env.logFormat ? { SWITCHYARD_LOG_FORMAT: 'pretty' } : {}) },
      api: { port, host, auth: values.auth ? 'keys' : 'off', logger: cliLogger(env, { component: 'api' }) },
    });
  } catch (err) {
    if (err instanceof RedisNotInstalledError) throw new Error(err.message, { cause: err });
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UsageError(`port ${port} is in use on ${host}: pass --port <P> (0 picks a free one)`);
    throw err;
  } finally {
    process.off('SIGINT', early);
    process.off('SIGTERM', early);
  }
  if (interrupted) {
    await stack.stop();
    return 0;
  }

  const { redis, api } = stack;
  const redisLine = redis.server
    ? `${redis.url}  ${c.dim(`(private ${redis.server.binary.split('/').pop()}, pid ${redis.server.pid}, stopped on exit)`)}`
    : `${redis.url}  ${c.dim(redis.client ? '(REDIS_* settings)' : '(REDIS_URL)')}`;
  const authLine = values.auth
    ? 'API keys required (switchyard keys create --tenant <tenant>)'
    : c.yellow('off, for local development only: anyone who can reach the port may start and cancel runs (--auth to require API keys)');
  console.log(
    [
      c.bold('switchyard dev: running until Ctrl-C'),
      `  redis      ${redisLine}`,
      `  api        ${api.url}`,
      `  dashboard  ${c.cyan(stack.dashboardUrl())}`,
      `  auth       ${authLine}`,
      `  workers    ${stack.workers.map((w) => `worker ${w.index} (pid ${w.pid})`).join(', ')}`,
      `  blueprints ${registry.ids().length} from ${paths.join(', ')}`,
      `  llm        ${env.llmProvider}${env.llmProvider === 'offline' ? c.dim(' (rule-based, no network; SWITCHYARD_LLM=openai OPENAI_API_KEY=... for a real model)') : ''}`,
      '',
      `Start a run: curl -s ${api.url}/runs -H 'content-type: application/json' -d '${exampleRunBody(registry)}'`,
    ].join('\n'),
  );

  // Until Ctrl-C (or SIGTERM/SIGHUP), or until a worker dies on its own.
  const reason = await new Promise<string>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve(signal));
    for (const w of stack.workers) void w.exited.then((code) => resolve(`worker ${w.index} (pid ${w.pid}) exited on its own (code ${code})`));
  });
  const crashed = reason.startsWith('worker');
  console.log(crashed ? `\n${reason}: stopping everything` : '\nstopping: workers finish their running nodes (Ctrl-C again to kill them)');
  const force = () => void stack.stop({ force: true });
  process.once('SIGINT', force);
  await stack.stop();
  process.off('SIGINT', force);
  console.log('stopped');
  return crashed ? 1 : 0;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
