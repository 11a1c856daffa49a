import { existsSync, readFileSync } from 'node:fs';
import { BlueprintRegistry } from '../blueprint/load.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { createLlmProvider, llmConfigFromEnv, type LlmConfig } from '../llm/index.js';
import { createLogger, parseLogLevel, type LogLevel, type Logger } from '../logger.js';
import { createNodeKinds } from '../nodes/index.js';
import type { AnyNodeKind, NodeKindRegistry } from '../types/node-kind.js';
import { connectRedis, DEFAULT_REDIS_URL, probeRedis, redisTargetFromEnv, withAuthToken, type ConnectionRole, type RedisTarget } from '../redis-connection.js';
import type { RedisClient } from '../store/redis-store.js';

export { DEFAULT_REDIS_URL };

/** Thrown for wrong command-line use: printed as one line, exit code 2. */
export class UsageError extends Error {}

/** Everything the CLI takes from the environment, read once by the entry point. */
export interface CliEnv {
  /**
   * REDIS_URL as given, or undefined. Only for `npm run demo`; commands connect through `openRedis`,
   * which reads every REDIS_* variable.
   */
  redisUrl: string | undefined;
  /** SWITCHYARD_RUN_TTL_SECONDS: how long runs this process starts are kept; undefined: the default (7 days). */
  runTtlSeconds: number | undefined;
  /** SWITCHYARD_HEARTBEAT_FILE: the file a worker touches while it is alive (`switchyard health` reads it). */
  heartbeatFile: string | undefined;
  /** SWITCHYARD_HEARTBEAT_MS: how often the worker writes it. @default 5000 */
  heartbeatMs: number;
  /** SWITCHYARD_RECONCILE_AFTER_MS: a running run with no progress this long is reconciled. @default 15000 */
  reconcileAfterMs: number | undefined;
  /** SWITCHYARD_DEAD_AFTER_MS: a worker whose heartbeat stood still this long is taken for dead. @default 2000 */
  deadAfterMs: number | undefined;
  prefix: string;
  queueName: string;
  /** SWITCHYARD_QUEUE_SHARDS: queue shards (the same on every client and worker). @default 1 */
  queueShards: number;
  logLevel: LogLevel;
  /** SWITCHYARD_LOG_FORMAT: json | pretty; undefined: pretty when stderr is a terminal. */
  logFormat: 'json' | 'pretty' | undefined;
  /** SWITCHYARD_LLM, or 'offline'. The rest of the LLM settings are read (and checked) when node kinds are built. */
  llmProvider: string;
  lambda: { region?: string; endpoint?: string };
  /** SWITCHYARD_API_URL and SWITCHYARD_API_KEY: the HTTP API that `switchyard blueprints` talks to. */
  api: { url?: string; key?: string };
  /** The environment as given, for child processes. */
  vars: NodeJS.ProcessEnv;
}

export const DEFAULT_HEARTBEAT_MS = 5_000;

/** Resolves the CLI's settings from environment variables (SWITCHYARD_LLM* are checked here too). */
export function resolveCliEnv(env: NodeJS.ProcessEnv): CliEnv {
  const level = env.SWITCHYARD_LOG_LEVEL ? parseLogLevel(env.SWITCHYARD_LOG_LEVEL) : 'info';
  if (!level) throw new UsageError(`SWITCHYARD_LOG_LEVEL="${env.SWITCHYARD_LOG_LEVEL}" is not a level (debug, info, warn, error, silent)`);
  const format = env.SWITCHYARD_LOG_FORMAT?.trim().toLowerCase() || undefined;
  if (format !== undefined && format !== 'json' && format !== 'pretty') throw new UsageError(`SWITCHYARD_LOG_FORMAT="${format}" must be json or pretty`);
  return {
    redisUrl: env.REDIS_URL || undefined,
    runTtlSeconds: env.SWITCHYARD_RUN_TTL_SECONDS ? envInt('SWITCHYARD_RUN_TTL_SECONDS', env.SWITCHYARD_RUN_TTL_SECONDS, 1) : undefined,
    heartbeatFile: env.SWITCHYARD_HEARTBEAT_FILE || undefined,
    heartbeatMs: env.SWITCHYARD_HEARTBEAT_MS ? envInt('SWITCHYARD_HEARTBEAT_MS', env.SWITCHYARD_HEARTBEAT_MS, 10) : DEFAULT_HEARTBEAT_MS,
    reconcileAfterMs: env.SWITCHYARD_RECONCILE_AFTER_MS ? envInt('SWITCHYARD_RECONCILE_AFTER_MS', env.SWITCHYARD_RECONCILE_AFTER_MS, 100) : undefined,
    deadAfterMs: env.SWITCHYARD_DEAD_AFTER_MS ? envInt('SWITCHYARD_DEAD_AFTER_MS', env.SWITCHYARD_DEAD_AFTER_MS, 100) : undefined,
    prefix: env.SWITCHYARD_PREFIX || 'sy',
    queueName: env.SWITCHYARD_QUEUE || 'switchyard',
    queueShards: env.SWITCHYARD_QUEUE_SHARDS ? envInt('SWITCHYARD_QUEUE_SHARDS', env.SWITCHYARD_QUEUE_SHARDS, 1) : 1,
    logLevel: level,
    logFormat: format,
    llmProvider: env.SWITCHYARD_LLM || 'offline',
    lambda: { region: env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined, endpoint: env.SWITCHYARD_LAMBDA_ENDPOINT || undefined },
    api: { url: env.SWITCHYARD_API_URL || undefined, key: env.SWITCHYARD_API_KEY || undefined },
    vars: env,
  };
}

function envInt(name: string, raw: string, min: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new UsageError(`${name}="${raw}" must be a whole number >= ${min}`);
  return value;
}

/**
 * The Redis of every command that needs one, from the same resolver as the worker and the functions:
 * REDIS_URL, or REDIS_HOST/REDIS_PORT/REDIS_TLS/REDIS_CLUSTER with REDIS_AUTH_TOKEN or
 * REDIS_AUTH_SECRET_ARN. An incomplete or contradictory set is a usage error naming the variables; only
 * with no REDIS_* variable at all is it redis://127.0.0.1:6379.
 */
export function redisTarget(env: CliEnv): RedisTarget {
  try {
    return redisTargetFromEnv(env.vars);
  } catch (err) {
    if (err instanceof SwitchyardError && err.code === ErrorCodes.CONFIG) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * Connects a command to its Redis after checking that Redis answers, so an unreachable Redis (or a wrong
 * password) is one line naming host:port, never the password. The AUTH secret is read once.
 */
export async function openRedis(env: CliEnv, options: { role?: ConnectionRole; onError?: (message: string) => void } = {}): Promise<RedisClient> {
  const target = await withAuthToken(redisTarget(env));
  await probeRedis(target);
  return connectRedis(target, { role: options.role ?? 'cli', ...(options.onError ? { onError: options.onError } : {}) });
}

/**
 * Node kinds with the LLM provider and Lambda settings the environment chooses; `limit` puts the provider
 * behind the fleet-wide LLM limits (the worker's).
 */
export function nodeKinds(env: CliEnv, limit?: LlmConfig['limit']): NodeKindRegistry {
  return createNodeKinds({ llm: createLlmProvider({ ...llmConfigFromEnv(env.vars), ...(limit ? { limit } : {}) }), lambda: env.lambda });
}

export function cliLogger(env: CliEnv, fields?: Record<string, unknown>): Logger {
  return createLogger({ level: env.logLevel, fields, pretty: env.logFormat === undefined ? undefined : env.logFormat === 'pretty' });
}

/** `--blueprints` as given, or ./workflows when it exists here. */
export function blueprintPaths(given: readonly string[] | undefined): string[] {
  if (given?.length) return [...given];
  if (existsSync('workflows')) return ['workflows'];
  throw new UsageError('--blueprints <dir> is required (there is no ./workflows here)');
}

/** The blueprints of `--blueprints` (or ./workflows), checked against the built-in node kinds and `extraKinds`. */
export async function loadRegistry(
  given: readonly string[] | undefined,
  env: CliEnv,
  limit?: LlmConfig['limit'],
  extraKinds: readonly AnyNodeKind[] = [],
): Promise<BlueprintRegistry> {
  const kinds = nodeKinds(env, limit);
  return BlueprintRegistry.load(blueprintPaths(given), extraKinds.length ? kinds.with(...extraKinds) : kinds);
}

/** A run's initial context from `--input` (JSON, or @file). */
export function parseInput(raw: string | undefined): Record<string, unknown> {
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

/** A whole number >= min from an option, or its default. */
export function intOption(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new UsageError(`--${name} must be a whole number >= ${min} (got "${raw}")`);
  return value;
}

/** Colours for a terminal; plain text elsewhere (and with NO_COLOR). */
export interface Palette {
  dim(s: string): string;
  bold(s: string): string;
  green(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  cyan(s: string): string;
  magenta(s: string): string;
}

export function palette(enabled: boolean): Palette {
  const wrap = (open: number, close: number) => (s: string) => (enabled ? `\u001b[${open}m${s}\u001b[${close}m` : s);
  return { dim: wrap(2, 22), bold: wrap(1, 22), green: wrap(32, 39), red: wrap(31, 39), yellow: wrap(33, 39), cyan: wrap(36, 39), magenta: wrap(35, 39) };
}

/** 850 ms, 1.25 s, 2 min 5 s */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Rows as aligned columns (the last column is not padded). */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visibleLength(cell)))).join('  ').trimEnd());
}

function visibleLength(s: string): number {
  // eslint-disable-next-line no-control-regex -- the ANSI colour codes are what it strips
  return s.replace(/\u001b\[\d+m/g, '').length;
}
