import { z } from 'zod';

/** A duration string: a whole number and a unit, ms, s, m, h or d ("250ms", "90s", "15m", "24h", "7d"). */
const DURATION_PATTERN = /^(\d{1,12})(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Longest duration a wait or sleep accepts: a year. */
export const MAX_DURATION_MS = 366 * 86_400_000;

/** Milliseconds of a duration: a number of ms, or a string as {@link DURATION_PATTERN}; undefined when it is neither. */
export function parseDuration(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  const match = DURATION_PATTERN.exec(value.trim());
  if (!match) return undefined;
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** A duration param: whole milliseconds or a duration string, up to {@link MAX_DURATION_MS}. */
export const DurationSchema = z.union([z.number(), z.string()]).superRefine((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'must be whole milliseconds or a duration such as "90s", "15m", "24h", "7d"' });
  else if (ms > MAX_DURATION_MS) ctx.addIssue({ code: 'custom', message: 'must be at most a year' });
});

/** Epoch ms of an ISO 8601 date-time (with a time zone or Z); undefined when `value` is not one. */
export function parseIsoTime(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
