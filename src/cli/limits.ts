import { limitUseJson, LlmLimitStore } from '../store/llm-limits.js';
import { formatDuration, openRedis, table, UsageError, type CliEnv } from './common.js';
import type { Parsed } from './options.js';

/** `switchyard limits`: each fleet-wide LLM limit's use now, read from Redis as GET /limits reads it. */
export async function limits(positionals: string[], values: Parsed, env: CliEnv): Promise<number> {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const redis = await openRedis(env, { role: 'cli' });
  try {
    const list = await new LlmLimitStore(redis, env.prefix).list();
    if (values.json) {
      console.log(JSON.stringify({ limits: list.map(limitUseJson) }));
    } else if (list.length === 0) {
      console.log('no fleet-wide LLM limits (a worker registers its limit when started with SWITCHYARD_LLM_LIMITS or SWITCHYARD_LLM_LIMITS_FILE)');
    } else {
      const now = Date.now();
      const rows = list.map((l) => [
        l.id,
        of(l.inFlight, l.maxConcurrent),
        of(l.requests, l.requestsPerMinute),
        of(l.tokens, l.tokensPerMinute),
        l.pausedUntil === undefined ? '-' : `${formatDuration(Math.max(0, l.pausedUntil - now))} more`,
        String(l.waiting),
      ]);
      const minute = list.some((l) => l.windowMs !== 60_000) ? 'window' : 'minute';
      console.log(table([['limit', 'in flight', `requests/${minute}`, `tokens/${minute}`, 'paused', 'waiting'], ...rows]).join('\n'));
    }
    return 0;
  } finally {
    redis.disconnect();
  }
}

/** `3/5`, or `3` when there is no such cap. */
function of(used: number, cap: number): string {
  return cap > 0 ? `${used.toLocaleString('en-US')}/${cap.toLocaleString('en-US')}` : used.toLocaleString('en-US');
}
