import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';

const chain = {
  id: 'chain',
  nodes: [
    { id: 'a', uses: 'template', params: { template: 'hello {{name}}', inputs: { name: 'name' } } },
    { id: 'b', uses: 'output', params: { template: '{{greeting}}!', inputs: { greeting: 'a' } } },
  ],
  edges: [{ source: 'a', target: 'b' }],
};

describe('smoke', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ blueprints: [chain] });
  });
  afterAll(() => h.close());

  it('runs a two-node chain to completion', async () => {
    const run = await h.client.start('chain', { name: 'Ada' });
    const view = await run.result({ timeoutMs: 10_000 });
    expect(view.status).toBe('completed');
    expect(view.context).toEqual({ name: 'Ada', final_output: 'hello Ada!' });
    expect(view.nodes.a).toMatchObject({ status: 'done', attempts: 1 });
  });
});
