import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { LlmProviderNames, type LlmProviderName } from './types.js';

/**
 * One fleet-wide LLM limit, as a provider's account states it. Every cap is optional; at least one is set.
 * Requests and tokens are counted over a sliding window (a minute) from the moment each request was let go.
 */
export interface LlmLimit {
  /** Requests in flight at once, over every worker. */
  maxConcurrent?: number;
  /** Requests started in any window of a minute. */
  requestsPerMinute?: number;
  /**
   * Tokens in any window of a minute: a request counts its estimate (prompt characters / 4) when it
   * starts, corrected to the provider's reported usage (prompt + completion) when it ends.
   */
  tokensPerMinute?: number;
  /**
   * The length of the "minute", in ms: for tests, and for providers whose windows are not a minute.
   * @default 60000
   */
  windowMs?: number;
}

/** Limits by key: `<provider>:<model>` (e.g. `openai:gpt-4o-mini`), or `<provider>` for any of its models. */
export type LlmLimits = Record<string, LlmLimit>;

/** A limit once resolved: every cap a number (0: none), the key it was found under. */
export interface ResolvedLlmLimit {
  /** The key it was configured under: `<provider>` or `<provider>:<model>`. */
  id: string;
  maxConcurrent: number;
  requestsPerMinute: number;
  tokensPerMinute: number;
  windowMs: number;
}

const Whole = z.number().int().positive();

const LimitSchema = z
  .object({
    maxConcurrent: Whole.optional(),
    requestsPerMinute: Whole.optional(),
    tokensPerMinute: Whole.optional(),
    windowMs: Whole.min(100).max(3_600_000).optional(),
  })
  .strict()
  .refine((l) => l.maxConcurrent !== undefined || l.requestsPerMinute !== undefined || l.tokensPerMinute !== undefined, {
    message: 'set at least one of maxConcurrent, requestsPerMinute, tokensPerMinute',
  });

/** `<provider>` or `<provider>:<model>`; no braces (the id is a Redis hash tag) and no whitespace. */
const KEY_PATTERN = /^([a-z]+)(?::([^\s{}]+))?$/;

const LimitsSchema = z.record(z.string(), LimitSchema);

/** Why `key` is not a limit's key, or undefined when it is one. */
function keyProblem(key: string): string | undefined {
  const match = KEY_PATTERN.exec(key);
  if (match && LlmProviderNames.includes(match[1] as LlmProviderName)) return undefined;
  return `"${key}" is not "<provider>" or "<provider>:<model>" (providers: ${LlmProviderNames.join(', ')}; no spaces or braces)`;
}

/**
 * Checks limits given as JSON (or already parsed) and says every problem at once, in the order of the
 * keys, each with where it is (`openai:gpt-4o.maxConcurrent: …`).
 * @throws {SwitchyardError} CONFIG
 */
export function parseLlmLimits(input: unknown, source: string): LlmLimits {
  const parsed = LimitsSchema.safeParse(input);
  const keys = input !== null && typeof input === 'object' && !Array.isArray(input) ? Object.keys(input) : [];
  const problems: Array<{ at: number; text: string }> = keys.flatMap((key, at) => {
    const problem = keyProblem(key);
    return problem ? [{ at, text: `${key}: ${problem}` }] : [];
  });
  for (const issue of parsed.success ? [] : parsed.error.issues) {
    const at = issue.path.length ? keys.indexOf(String(issue.path[0])) : -1;
    problems.push({ at, text: `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}` });
  }
  if (problems.length > 0) {
    problems.sort((a, b) => a.at - b.at); // stable: a key's own problem before its caps'
    throw new SwitchyardError(ErrorCodes.CONFIG, `${source}: ${problems.map((p) => p.text).join('; ')}`);
  }
  return parsed.data!;
}

/**
 * The fleet-wide LLM limits from the environment (for entry points only): SWITCHYARD_LLM_LIMITS (JSON)
 * and SWITCHYARD_LLM_LIMITS_FILE (a JSON file of the same shape); with both, the variable's keys win over
 * the file's. Undefined when neither is set.
 * @throws {SwitchyardError} CONFIG for a file that cannot be read, JSON that does not parse, or a limit
 * that is not valid
 */
export function llmLimitsFromEnv(env: Record<string, string | undefined>): LlmLimits | undefined {
  const file = env.SWITCHYARD_LLM_LIMITS_FILE?.trim() || undefined;
  const inline = env.SWITCHYARD_LLM_LIMITS?.trim() || undefined;
  if (!file && !inline) return undefined;
  let fromFile: LlmLimits = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new SwitchyardError(ErrorCodes.CONFIG, `SWITCHYARD_LLM_LIMITS_FILE=${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    fromFile = parseLlmLimits(parseJson(text, `SWITCHYARD_LLM_LIMITS_FILE=${file}`), `SWITCHYARD_LLM_LIMITS_FILE=${file}`);
  }
  const fromVar = inline ? parseLlmLimits(parseJson(inline, 'SWITCHYARD_LLM_LIMITS'), 'SWITCHYARD_LLM_LIMITS') : {};
  return { ...fromFile, ...fromVar };
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SwitchyardError(ErrorCodes.CONFIG, `${source}: not valid JSON (${(err as Error).message})`);
  }
}

/** The default "minute" of a limit. */
export const DEFAULT_LIMIT_WINDOW_MS = 60_000;

/**
 * The limit a provider's calls count against: its model's (`openai:gpt-4o-mini`), else its own
 * (`openai`); undefined when neither is configured.
 */
export function findLlmLimit(limits: LlmLimits, provider: string, model: string): ResolvedLlmLimit | undefined {
  const id = [`${provider}:${model}`, provider].find((key) => limits[key] !== undefined);
  if (id === undefined) return undefined;
  const limit = limits[id]!;
  return {
    id,
    maxConcurrent: limit.maxConcurrent ?? 0,
    requestsPerMinute: limit.requestsPerMinute ?? 0,
    tokensPerMinute: limit.tokensPerMinute ?? 0,
    windowMs: limit.windowMs ?? DEFAULT_LIMIT_WINDOW_MS,
  };
}
