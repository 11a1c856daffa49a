import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';

/** Many runs at once over 2 workers: every run completes with the right result. */
const chain10 = {
  id: 'chain10',
  nodes: Array.from({ length: 10 }, (_, i) => ({
    id: `s${i}`,
    uses: i === 9 ? 'output' : 'template',
    params: i === 0 ? { template: '{{seed}}', inputs: { seed: 'seed' } } : { template: `{{prev}}.${i}`, inputs: { prev: `s${i - 1}` } },
  })),
  edges: Array.from({ length: 9 }, (_, i) => ({ source: `s${i}`, target: `s${i + 1}` })),
};

const diamond8 = {
  id: 'diamond8',
  nodes: [
    { id: 'fan', uses: 'template', params: { template: '{{seed}}', inputs: { seed: 'seed' } } },
    ...Array.from({ length: 8 }, (_, i) => ({ id: `p${i}`, uses: 'template', params: { template: `{{f}}-${i}`, inputs: { f: 'fan' } } })),
    {
      id: 'join',
      uses: 'template',
      params: { template: Array.from({ length: 8 }, (_, i) => `{{p${i}}}`).join(',') },
    },
    { id: 'out', uses: 'output', params: { template: '{{join}}' } },
  ],
  edges: [
    ...Array.from({ length: 8 }, (_, i) => ({ source: 'fan', target: `p${i}` })),
    ...Array.from({ length: 8 }, (_, i) => ({ source: `p${i}`, target: 'join' })),
    { source: 'join', target: 'out' },
  ],
};

describe('200 concurrent runs over 2 workers', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ blueprints: [chain10, diamond8], workers: 2, concurrency: 16 });
  });
  afterAll(() => h.close());

  it('of a 10-node chain all complete correctly', async () => {
    const handles = await Promise.all(Array.from({ length: 200 }, (_, i) => h.client.start('chain10', { seed: `r${i}` })));
    const views = await Promise.all(handles.map((run) => run.result({ timeoutMs: 120_000 })));
    views.forEach((view, i) => {
      expect(view.status).toBe('completed');
      expect(view.context.final_output).toBe(`r${i}.1.2.3.4.5.6.7.8.9`);
    });
    const workersUsed = new Set(views.flatMap((v) => Object.values(v.nodes).map((n) => n.worker)));
    expect(workersUsed).toEqual(new Set(['w1', 'w2']));
  });

  it('of an 8-wide diamond all complete correctly', async () => {
    const handles = await Promise.all(Array.from({ length: 200 }, (_, i) => h.client.start('diamond8', { seed: `r${i}` })));
    const views = await Promise.all(handles.map((run) => run.result({ timeoutMs: 120_000 })));
    views.forEach((view, i) => {
      expect(view.status).toBe('completed');
      expect(view.context.final_output).toBe(Array.from({ length: 8 }, (_, p) => `r${i}-${p}`).join(','));
      expect(Object.values(view.nodes).every((n) => n.status === 'done' && n.attempts === 1)).toBe(true);
    });
  });
});
