import { pino, type DestinationStream, type Logger as PinoLogger, type LoggerOptions as PinoOptions } from 'pino';
import pinoPretty from 'pino-pretty';
import type { NodeLogger } from './types/node-kind.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

export interface Logger extends NodeLogger {
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  /** Lines below this level are dropped. @default 'info' */
  level?: LogLevel;
  /** Fields on every line (a child's fields are added to them). */
  fields?: Record<string, unknown>;
  /** Receives each line (one JSON object, no newline), synchronously. @default stderr */
  write?: (line: string) => void;
  /** Human-readable lines instead of JSON. @default true when there is no `write` and stderr is a terminal */
  pretty?: boolean;
}

/** Field names whose values are never written, whatever the caller passes (top-level fields and child fields). */
const SECRET_FIELD = /(pass(word)?|secret|token|api[-_]?key|authorization|credential|cookie)/i;
const CENSOR = '[redacted]';

/**
 * Secrets nested one or two levels down (a request's headers, an error's config) are removed by pino's own
 * redaction; the top-level names are caught by SECRET_FIELD before they reach pino.
 */
const SECRET_NAMES = ['authorization', 'password', 'passwd', 'token', 'accessToken', 'refreshToken', 'apiKey', 'api_key', 'apikey', 'secret', 'clientSecret', 'credentials', 'cookie', 'x-api-key'];
const REDACT_PATHS = SECRET_NAMES.flatMap((name) => {
  const key = /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `["${name}"]`;
  return [`*${key}`, `*.*${key}`];
});

function redactTop(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = SECRET_FIELD.test(k) ? CENSOR : v;
  return out;
}

/** Shared destinations: one synchronous writer per kind for the whole process, so no line is lost on exit. */
let jsonStderr: DestinationStream | undefined;
let prettyStderr: DestinationStream | undefined;

function destinationFor(options: LoggerOptions): DestinationStream {
  if (options.write) {
    const write = options.write;
    return { write: (chunk: string) => write(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk) };
  }
  if (options.pretty ?? process.stderr.isTTY === true) {
    prettyStderr ??= pinoPretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
    return prettyStderr;
  }
  jsonStderr ??= pino.destination({ dest: 2, sync: true });
  return jsonStderr;
}

function wrap(log: PinoLogger): Logger {
  const at = (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: Record<string, unknown>) => {
    if (!log.isLevelEnabled(level)) return;
    if (fields === undefined) log[level](msg);
    else log[level](redactTop(fields), msg);
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => wrap(log.child(redactTop(fields))),
  };
}

/**
 * A structured logger on pino: JSON lines (`{"level":"info","time":"<ISO>","msg":…, …fields}`) on stderr, or
 * pretty lines when stderr is a terminal. Secret-looking fields are written as "[redacted]".
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const config: PinoOptions = {
    level: options.level ?? 'info',
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT_PATHS, censor: CENSOR },
  };
  const root = pino(config, destinationFor(options));
  return wrap(options.fields ? root.child(redactTop(options.fields)) : root);
}

const noop = () => undefined;
/** Drops everything. */
/**
 * A child logger made on first use: hot paths (a worker runs thousands of nodes a second) pass per-node
 * loggers around that are mostly never written to, and creating a pino child each time costs CPU.
 */
export function lazyChild(parent: Logger, fields: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  const get = () => (child ??= parent.child(fields));
  return {
    debug: (msg, extra) => get().debug(msg, extra),
    info: (msg, extra) => get().info(msg, extra),
    warn: (msg, extra) => get().warn(msg, extra),
    error: (msg, extra) => get().error(msg, extra),
    child: (more) => lazyChild(parent, { ...fields, ...more }),
  };
}

export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop, child: () => silentLogger };

/** A level name from user input (an environment variable); undefined when it names none. */
export function parseLogLevel(text: string | undefined): LogLevel | undefined {
  const lower = text?.trim().toLowerCase();
  return LOG_LEVELS.find((l) => l === lower);
}
