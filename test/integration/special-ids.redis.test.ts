import { afterAll, beforeAll, expect, it } from 'vitest';
import { compileGraph } from '../../src/engine/graph.js';
import { runInMemory } from '../../src/executor/memory-executor.js';
import { startHarness, type Harness } from '../support/harness.js';

/**
 * Node ids and context keys that are names of Object.prototype's members are ordinary ids (the fuzz of
 * issue 12 found a node "__proto__" missing from the distributed run view: it became the nodes object's
 * prototype instead of a key).
 */
let h: Harness;
const BLUEPRINT = {
  id: 'special-ids',
  nodes: [
    { id: '__proto__', uses: 'output', params: { template: 'p {{x}}', inputs: { x: 'x' }, outputKey: '__proto__' } },
    { id: 'constructor', uses: 'output', params: { template: 'c', outputKey: 'toString' } },
    { id: 'hasOwnProperty', uses: 'template', params: { template: 'h {{a}}', inputs: { a: '__proto__' } } },
  ],
  edges: [
    { source: '__proto__', target: 'hasOwnProperty' },
    { source: 'constructor', target: 'hasOwnProperty' },
  ],
};

beforeAll(async () => {
  h = await startHarness({ blueprints: [BLUEPRINT], workers: 1 });
});
afterAll(() => h.close());

it('node ids and context keys such as "__proto__" and "constructor" are kept as keys by both executors', async () => {
  const expected = await runInMemory(compileGraph(h.registry.get(BLUEPRINT.id)!, h.kinds), { kinds: h.kinds, input: { x: 1 } });
  const actual = await (await h.client.start(BLUEPRINT.id, { x: 1 })).result({ timeoutMs: 10_000 });
  for (const view of [expected, actual]) {
    expect(view.status).toBe('completed');
    expect(Object.keys(view.nodes).sort()).toEqual(['__proto__', 'constructor', 'hasOwnProperty']);
    expect(Object.getPrototypeOf(view.nodes)).toBe(Object.prototype);
    expect(Object.hasOwn(view.nodes, '__proto__')).toBe(true);
    expect(Object.hasOwn(view.outputs, '__proto__')).toBe(true);
    expect(Object.hasOwn(view.context, '__proto__')).toBe(true);
    expect(view.outputs.hasOwnProperty).toBe('h p 1');
    expect(view.context.toString).toBe('c');
  }
  expect(actual.nodes).toEqual(expect.objectContaining({ __proto__: expect.objectContaining({ status: 'done' }) }));
  expect(JSON.stringify(actual.outputs)).toBe(JSON.stringify(expected.outputs));
});
