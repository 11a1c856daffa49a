/**
 * The `output` kind's `"as": "number"`: a model's text answer ("Score: 8/10") becomes a number in the
 * context, so a condition can compare it (`context.score >= 8`); a text with no number fails the node.
 */
import { describe, expect, it } from 'vitest';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { compileGraph } from '../src/engine/graph.js';
import { runInMemory } from '../src/executor/memory-executor.js';
import { createNodeKinds } from '../src/nodes/index.js';

function scored(answer: string) {
  const registry = new BlueprintRegistry(createNodeKinds());
  registry.add({
    id: 'scored',
    nodes: [
      { id: 'answer', uses: 'template', params: { template: answer } },
      { id: 'score', uses: 'output', params: { template: '{{a}}', inputs: { a: 'answer' }, outputKey: 'score', as: 'number' } },
      { id: 'gate', uses: 'route', params: { rules: [{ when: 'context.score >= 8', action: 'accept' }], default: 'revise' } },
      { id: 'accept', uses: 'output', params: { template: 'accepted' } },
      { id: 'revise', uses: 'output', params: { template: 'revise' } },
    ],
    edges: [
      { source: 'answer', target: 'score' },
      { source: 'score', target: 'gate' },
      { source: 'gate', target: 'accept', action: 'accept' },
      { source: 'gate', target: 'revise', action: 'revise' },
    ],
  });
  return runInMemory(compileGraph(registry.get('scored')!, registry.kinds), { kinds: registry.kinds, blueprints: registry, input: {} });
}

describe('output "as": "number"', () => {
  it('reads the first number of the text, and conditions compare it as a number', async () => {
    expect(await scored('Score: 8/10')).toMatchObject({ status: 'completed', context: { score: 8, final_output: 'accepted' } });
    expect(await scored('7')).toMatchObject({ status: 'completed', context: { score: 7, final_output: 'revise' } });
    expect((await scored('10')).context.score).toBe(10);
  });

  it('fails the node, not retried, when the text has no number', async () => {
    const view = await scored('excellent');
    expect(view.status).toBe('failed');
    expect(view.nodes.score).toMatchObject({ status: 'failed', attempts: 1 });
    expect(view.error?.message).toMatch(/"as": "number" found no number in "excellent"/);
  });
});
