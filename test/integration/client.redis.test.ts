import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { startHarness, type Harness } from '../support/harness.js';
import { Probe, testKinds } from '../support/test-kinds.js';

const probe = new Probe();

describe('client', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ kinds: testKinds(probe) });
  });
  afterAll(() => h.close());

  const versioned = (text: string) => ({
    id: 'pinned',
    nodes: [
      { id: 'hold', uses: 'block', params: { ms: 200 } },
      { id: 'say', uses: 'output', params: { template: text } },
    ],
    edges: [{ source: 'hold', target: 'say' }],
  });

  it('runs every node of a run against the blueprint version it started with', async () => {
    h.registry.add(versioned('v1'));
    const first = await h.client.start('pinned');
    // A redeploy: another client whose registry has a new version under the same id.
    const registry = new BlueprintRegistry(h.kinds);
    registry.add(versioned('v2'));
    const other = h.createClient({ blueprints: registry });
    try {
      const second = await other.start('pinned');
      const [a, b] = await Promise.all([first.result({ timeoutMs: 10_000 }), second.result({ timeoutMs: 10_000 })]);
      expect(a.context.final_output).toBe('v1');
      expect(b.context.final_output).toBe('v2');
      expect(a.version).not.toBe(b.version);
    } finally {
      await other.close();
    }
  });

  it('records retries with exponential backoff in the run\'s events', async () => {
    const run = await h.client.start({ id: 'flaky-events', nodes: [{ id: 'f', uses: 'flaky', params: { failTimes: 2 }, config: { maxRetries: 2, retryDelay: 30 } }], edges: [] });
    const view = await run.result({ timeoutMs: 10_000 });
    expect(view.status).toBe('completed');
    const events = await h.client.events(run.runId);
    const retries = events.filter((e) => e.type === 'node.retrying');
    expect(retries.map((e) => Number(e.delayMs))).toEqual([30, 60]);
    const starts = events.filter((e) => e.type === 'node.started').map((e) => Number(e.at));
    expect(starts).toHaveLength(3);
    // Backoff is a lower bound on the gap between attempts.
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(30);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(60);
    expect(events.at(-1)!.type).toBe('run.completed');
  });

  it('starting with the same run id returns the same run', async () => {
    const first = await h.client.start('pinned', {}, { runId: 'same-id-1' });
    const again = await h.client.start('pinned', {}, { runId: 'same-id-1' });
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    await first.result({ timeoutMs: 10_000 });
  });

  it('result() of a run that already ended resolves at once; of an unknown run it rejects', async () => {
    const run = await h.client.start({ id: 'quick', nodes: [{ id: 'a', uses: 'template', params: { template: 'x' } }], edges: [] });
    await run.result({ timeoutMs: 10_000 });
    expect((await run.result()).status).toBe('completed');
    await expect(h.client.result('nope')).rejects.toThrow(/no run "nope"/);
    await expect(h.client.cancel('nope')).rejects.toThrow(/no run "nope"/);
  });

  it('result() gives up after timeoutMs with a clear error, leaving the run going', async () => {
    const run = await h.client.start({ id: 'forever', nodes: [{ id: 'a', uses: 'block' }], edges: [] });
    await expect(run.result({ timeoutMs: 100 })).rejects.toThrow(/did not end within 100 ms/);
    expect((await run.get())!.status).toBe('running');
    expect(await run.cancel()).toBe(true);
    expect((await run.result()).status).toBe('cancelled');
  });

  it('rejects bad input with clear errors', async () => {
    await expect(h.client.start('missing-blueprint')).rejects.toThrow(/no blueprint "missing-blueprint"/);
    await expect(h.client.start('pinned', {}, { runId: 'has:colon' })).rejects.toThrow(/runId "has:colon"/);
    await expect(h.client.start('pinned', [] as never)).rejects.toThrow(/input must be a JSON object/);
    await expect(h.client.start({ nodes: [{ id: 'a', uses: 'nope' }] })).rejects.toThrow(/unknown node kind "nope"/);
  });

  it('keeps context keys like __proto__ as plain data', async () => {
    const input = JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1}');
    const run = await h.client.start({ id: 'proto', nodes: [{ id: 'a', uses: 'output', params: { template: '{{constructor}}' } }], edges: [] }, input);
    const view = await run.result({ timeoutMs: 10_000 });
    expect(view.context.final_output).toBe('1');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
