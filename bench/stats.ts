/** Small statistics helpers for the benchmark. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const median = (values: readonly number[]) => percentile(values, 50);

/** Median of each numeric field over repetitions (fields missing in a repetition are skipped). */
export function medianOf<T extends Record<string, number | undefined>>(reps: readonly T[]): T {
  const out: Record<string, number> = {};
  const keys = new Set(reps.flatMap((r) => Object.keys(r)));
  for (const key of keys) {
    const values = reps.map((r) => r[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    if (values.length) out[key] = median(values);
  }
  return out as T;
}

export const round = (value: number | undefined, digits = 2) => (value === undefined || !Number.isFinite(value) ? undefined : Number(value.toFixed(digits)));
