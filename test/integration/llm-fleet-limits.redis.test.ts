/**
 * Issue 14's fleet test: four `switchyard worker` processes against an OpenAI-compatible server that
 * answers 429 above 5 requests at once or 60 per window (a "minute" of 4 s here, through the limit's
 * windowMs, so the window turns over several times within the test). With the shared limits set to match,
 * the server rejects nothing and never sees more than 5 at once; without them (each worker's own 8 slots,
 * 32 in all) the same load is a 429 storm. Measured figures are printed, not asserted.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import type { RunView } from '../../src/types/run-view.js';
import { openScope, type TestScope } from '../support/harness.js';
import { killStarted, startCli } from '../support/processes.js';
import { startRateLimitedServer } from '../support/rate-limited-server.js';

const RUNS = 120;
const WINDOW_MS = 4_000;
const BLUEPRINT = {
  id: 'ask',
  nodes: [{ id: 'q', uses: 'llm-process', params: { promptTemplate: 'Summarize support ticket number {{n}} in one line.', inputs: { n: 'n' } } }],
  edges: [],
};

const dir = mkdtempSync(join(tmpdir(), 'sy-fleet-'));
writeFileSync(join(dir, 'ask.json'), JSON.stringify(BLUEPRINT));

/** Four worker processes on `scope`'s prefix with `extraEnv`, 120 runs through them; what the server and the runs saw. */
async function fleetRun(scope: TestScope, extraEnv: Record<string, string>) {
  const server = await startRateLimitedServer({ maxConcurrent: 5, perWindow: 60, windowMs: WINDOW_MS, latencyMs: 350 });
  try {
    const env = {
      REDIS_URL: inject('redisUrl'),
      SWITCHYARD_PREFIX: scope.prefix,
      SWITCHYARD_QUEUE: scope.prefix,
      SWITCHYARD_LOG_LEVEL: 'info',
      SWITCHYARD_LOG_FORMAT: 'json',
      SWITCHYARD_LLM: 'openai',
      SWITCHYARD_LLM_MODEL: 'limited-1',
      OPENAI_BASE_URL: server.url,
      OPENAI_API_KEY: 'sk-test',
      ...extraEnv,
    };
    const workers = await Promise.all([1, 2, 3, 4].map(() => startCli(['worker', '--blueprints', dir], env, /worker ready/)));
    const registry = new BlueprintRegistry(createNodeKinds());
    registry.add(BLUEPRINT);
    const client = scope.createClient({ blueprints: registry });
    const started = Date.now();
    const runs = await Promise.all(Array.from({ length: RUNS }, (_, n) => client.start('ask', { n })));
    const views: RunView[] = await Promise.all(runs.map((r) => r.result({ timeoutMs: 120_000 })));
    const wallMs = Date.now() - started;
    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
    const waits = views.map((v) => v.nodes.q?.meta?.llmWaitMs).filter((ms): ms is number => typeof ms === 'number');
    const figures = {
      completed: views.filter((v) => v.status === 'completed').length,
      failed: views.filter((v) => v.status === 'failed').length,
      accepted: server.stats.accepted,
      rejected429: server.stats.rejected,
      maxInFlight: server.stats.maxInFlight,
      busyMs: server.stats.busyMs,
      utilization: Number(server.utilization().toFixed(3)),
      wallMs,
      nodeAttempts: views.reduce((sum, v) => sum + (v.nodes.q?.attempts ?? 0), 0),
      llmWaitMs: waits.length ? { mean: Math.round(waits.reduce((a, b) => a + b, 0) / waits.length), max: Math.max(...waits) } : undefined,
    };
    return { views, figures, server };
  } finally {
    await server.close();
  }
}

describe('four workers against a provider that allows 5 at once and 60 per window', () => {
  const scopes: TestScope[] = [];
  afterAll(async () => {
    await killStarted();
    await Promise.all(scopes.map((s) => s.close()));
  });

  it('with the shared limits set to match: no 429, never more than 5 in flight, the server kept busy', async () => {
    const scope = openScope();
    scopes.push(scope);
    const limits = JSON.stringify({ 'openai:limited-1': { maxConcurrent: 5, requestsPerMinute: 60, windowMs: WINDOW_MS } });
    const { views, figures } = await fleetRun(scope, { SWITCHYARD_LLM_LIMITS: limits });
    console.log(`[fleet] with shared limits: ${JSON.stringify(figures)}`);
    expect(views.every((v) => v.status === 'completed')).toBe(true);
    expect(views.every((v) => v.nodes.q!.attempts === 1)).toBe(true);
    expect(figures.rejected429).toBe(0);
    expect(figures.accepted).toBe(RUNS);
    expect(figures.maxInFlight).toBeLessThanOrEqual(5);
    // Every node says how long it waited for a slot.
    expect(views.every((v) => typeof v.nodes.q!.meta?.llmWaitMs === 'number')).toBe(true);
  });

  it('without them (8 slots per worker, 32 in all): the same load is a 429 storm', async () => {
    const scope = openScope();
    scopes.push(scope);
    const { figures } = await fleetRun(scope, {});
    console.log(`[fleet] without shared limits: ${JSON.stringify(figures)}`);
    expect(figures.rejected429).toBeGreaterThan(0);
    expect(figures.maxInFlight).toBeLessThanOrEqual(5);
  });
});
