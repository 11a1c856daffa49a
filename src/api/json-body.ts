import type { z } from 'zod';
import { jsonPath } from '../blueprint/analyze.js';
import { ApiError, ApiErrorCodes, type RequestIssue } from './respond.js';

/**
 * Deeper JSON is refused before parsing: V8 parses any depth, but stringifying and walking it later
 * (hashing, storing, validating) recurse and would overflow the stack on a hostile body.
 */
export const MAX_JSON_DEPTH = 64;

/** Parses a request body; undefined for an empty one. Throws 400 naming the parse error. */
export function parseJsonBody(body: string | undefined): unknown {
  if (body === undefined || body.trim() === '') return undefined;
  const depth = nestingDepth(body);
  if (depth > MAX_JSON_DEPTH) {
    throw new ApiError(400, ApiErrorCodes.INVALID_JSON, `invalid JSON body: nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new ApiError(400, ApiErrorCodes.INVALID_JSON, `invalid JSON body: ${(err as Error).message}`);
  }
}

/** Deepest bracket nesting outside strings, in one pass (the text need not be valid JSON). */
function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c /* \ */) i++;
      else if (char === 0x22 /* " */) inString = false;
    } else if (char === 0x22) inString = true;
    else if (char === 0x7b /* { */ || char === 0x5b /* [ */) deepest = Math.max(deepest, ++depth);
    else if (char === 0x7d /* } */ || char === 0x5d /* ] */) depth--;
  }
  return deepest;
}

/** zod issues as located request issues, `$`-rooted at `base`. */
export function issuesOf(error: z.ZodError, base = '$'): RequestIssue[] {
  return error.issues.map((issue) => ({ path: jsonPath(base, issue.path), message: issue.message }));
}

/** 400 VALIDATION listing every issue. */
export function validationError(issues: RequestIssue[], what = 'request'): ApiError {
  const summary = issues
    .slice(0, 3)
    .map((i) => `${i.path}: ${i.message}`)
    .join('; ');
  const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : '';
  return new ApiError(400, ApiErrorCodes.VALIDATION, `invalid ${what}: ${summary}${more}`, { issues });
}

/** Parses `value` with `schema`, or throws 400 VALIDATION listing every issue. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, base = '$', what = 'request'): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw validationError(issuesOf(parsed.error, base), what);
  return parsed.data;
}

/** JSON with object keys sorted, so equal bodies hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    const members = Object.keys(record)
      .sort()
      .filter((key) => record[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
