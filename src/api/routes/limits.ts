import type { MiddlewareHandler } from 'hono';
import { Hono } from 'hono/tiny';
import { limitUseJson, type LlmLimitStore } from '../../store/llm-limits.js';
import type { ApiEnv } from '../env.js';
import { requireScope } from '../middleware/auth.js';
import { jsonResponse } from '../respond.js';

export interface LimitsRoutesOptions {
  /** The fleet-wide LLM limits in the client's Redis, under its prefix. */
  limits: LlmLimitStore;
  /** Runs before each route: authenticates and rate-limits. */
  guard: MiddlewareHandler<ApiEnv>;
}

/**
 * `GET /limits` (scope `limits:read`, an operator's): each fleet-wide LLM limit as the workers registered
 * it, with its use now (in flight, requests and tokens in the current minute, paused until, waiting).
 */
export function limitsRoutes({ limits, guard }: LimitsRoutesOptions): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.get('/limits', guard, requireScope('limits:read'), async () => jsonResponse(200, { limits: (await limits.list()).map(limitUseJson) }));
  return app;
}
