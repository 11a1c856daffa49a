import type { parseArgs, ParseArgsConfig } from 'node:util';

/**
 * Every option of the `switchyard` command, as node:util parseArgs takes them. Its own module so that the
 * subcommands (which receive the parsed values) do not import the entry point that imports them.
 */
export const OPTIONS = {
  blueprints: { type: 'string', multiple: true },
  concurrency: { type: 'string' },
  'lock-duration': { type: 'string' },
  'drain-timeout': { type: 'string' },
  input: { type: 'string' },
  wait: { type: 'boolean' },
  progress: { type: 'boolean' },
  timeout: { type: 'string' },
  'timeout-run': { type: 'string' },
  action: { type: 'string' },
  payload: { type: 'string' },
  priority: { type: 'string' },
  json: { type: 'boolean' },
  local: { type: 'boolean' },
  follow: { type: 'boolean', short: 'f' },
  out: { type: 'string', short: 'o' },
  tenant: { type: 'string' },
  scopes: { type: 'string' },
  name: { type: 'string' },
  workers: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  auth: { type: 'boolean' },
  'max-age-seconds': { type: 'string' },
  file: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  verbose: { type: 'boolean' },
  api: { type: 'string' },
  key: { type: 'string' },
} satisfies ParseArgsConfig['options'];

export type OptionName = keyof typeof OPTIONS;
/** The parsed option values a subcommand receives. */
export type Parsed = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values'];
