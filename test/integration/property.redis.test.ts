import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileGraph } from '../../src/engine/graph.js';
import { runInMemory } from '../../src/executor/memory-executor.js';
import { startHarness, type Harness } from '../support/harness.js';
import { Probe, testKinds } from '../support/test-kinds.js';

/**
 * Random DAGs run distributed (2 workers, concurrency 4) must end exactly as they do in memory: same run
 * status, same node states, same context. Besides route and output nodes they hold `wait` nodes (which
 * park and time out with a fixed action) and durable `sleep` nodes (which park until a wake job). Conditions read only the input and the source node's own
 * output/action, and templates read predecessors' outputs only behind `all` joins, so every result is
 * determined by the graph even though the order of execution is not. `map` nodes run a child per item of
 * the input's list (item 0's child fails: kept as its error), `loop` nodes count up in a child run per
 * iteration until a bound or their limit (their edges' actions are "done" and "exhausted").
 */

interface GenNode {
  /** `wait` and `sleep` park (durable): a wait times out with action 'a' or 'b' (no signal comes), a sleep wakes. */
  kind: 'route' | 'output' | 'wait' | 'sleep' | 'map' | 'loop';
  threshold: number;
  /** map: children in flight; loop: its iteration limit. */
  limit: number;
  join: 'all' | 'any';
  sources: number[];
  edgeSpecs: Array<{ action?: 'a' | 'b'; condition?: string }>;
}

const conditionArb = fc.oneof(
  fc.integer({ min: 0, max: 10 }).map((k) => `context.x > ${k}`),
  fc.constantFrom('output == "a"', 'action != "b"', '!(context.x == 3) && true', 'context.missing == null || context.x <= 2'),
);

const nodeArb = (index: number): fc.Arbitrary<GenNode> =>
  fc.record({
    kind: fc.constantFrom('route', 'output', 'route', 'output', 'wait', 'sleep', 'map', 'loop'),
    threshold: fc.integer({ min: 0, max: 10 }),
    limit: fc.integer({ min: 1, max: 4 }),
    join: fc.constantFrom('all', 'any'),
    sources: index === 0 ? fc.constant([]) : fc.uniqueArray(fc.integer({ min: 0, max: index - 1 }), { maxLength: 3 }),
    edgeSpecs: fc.array(
      fc.record({ action: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }), condition: fc.option(conditionArb, { nil: undefined, freq: 3 }) }),
      { minLength: 3, maxLength: 3 },
    ),
  }) as fc.Arbitrary<GenNode>;

const graphArb = fc.integer({ min: 1, max: 40 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => nodeArb(i))));

const LOOP_ACTIONS = { a: 'done', b: 'exhausted' } as const;

let counter = 0;
function toBlueprint(nodes: GenNode[]) {
  const id = `prop${++counter}`;
  return {
    id,
    nodes: nodes.map((n, i) => {
      const config = n.sources.length > 1 ? { joinStrategy: n.join } : undefined;
      if (n.kind === 'wait') {
        // Times out (no signal): the same action wherever it runs, so the outcome is determined.
        return { id: `n${i}`, uses: 'wait', params: { prompt: 'p', timeout: 5 + (n.threshold % 4) * 5, timeoutAction: n.threshold > 5 ? 'a' : 'b' }, ...(config ? { config } : {}) };
      }
      if (n.kind === 'sleep') return { id: `n${i}`, uses: 'sleep', params: { duration: `${1 + n.threshold}ms` }, ...(config ? { config } : {}) };
      if (n.kind === 'route') {
        return { id: `n${i}`, uses: 'route', params: { rules: [{ when: `context.x > ${n.threshold}`, action: 'a' }], default: 'b' }, ...(config ? { config } : {}) };
      }
      if (n.kind === 'map') {
        const params = { items: 'list', blueprintId: 'prop-item', inputs: { x: 'x' }, concurrency: n.limit, continueOnError: true };
        return { id: `n${i}`, uses: 'map', params, ...(config ? { config } : {}) };
      }
      if (n.kind === 'loop') {
        const params = { blueprintId: 'prop-count', carry: { n: 'n' }, until: `context.n > ${n.threshold % 6}`, maxIterations: n.limit, outputs: { [`k${i}`]: 'n' } };
        return { id: `n${i}`, uses: 'loop', params, ...(config ? { config } : {}) };
      }
      // Behind an `all` join every predecessor has finished or been skipped, so reading their outputs is deterministic.
      const preds = n.sources.length > 1 && n.join === 'any' ? [] : n.sources.map((s) => `n${s}`);
      const template = `x={{x}}` + preds.map((p) => ` ${p}={{${p}}}`).join('');
      return { id: `n${i}`, uses: 'output', params: { template, inputs: { x: 'x' }, outputKey: `k${i}` }, ...(config ? { config } : {}) };
    }),
    edges: nodes.flatMap((n, i) =>
      n.sources.map((s, j) => {
        const spec = n.edgeSpecs[j]!;
        // Actions only mean something on edges out of route and wait nodes (and loops: "done" / "exhausted").
        const kind = nodes[s]!.kind;
        const action = kind === 'route' || kind === 'wait' ? spec.action : kind === 'loop' && spec.action ? LOOP_ACTIONS[spec.action] : undefined;
        return { source: `n${s}`, target: `n${i}`, ...(action ? { action } : {}), ...(spec.condition ? { condition: spec.condition } : {}) };
      }),
    ),
  };
}

describe('distributed execution matches the in-memory executor', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ kinds: testKinds(new Probe()), workers: 2, concurrency: 4 });
    h.registry.add({
      id: 'prop-item',
      nodes: [
        { id: 'check', uses: 'route', params: { rules: [{ when: 'context.item == 0', action: 'zero' }], default: 'other' } },
        { id: 'explode', uses: 'boom', params: { message: 'item zero', retryable: false } },
        { id: 'say', uses: 'output', params: { template: 'item {{item}} at x={{x}}', inputs: { item: 'item', x: 'x' } } },
      ],
      edges: [{ source: 'check', target: 'explode', action: 'zero' }, { source: 'check', target: 'say', action: 'other' }],
    });
    h.registry.add({ id: 'prop-count', nodes: [{ id: 'step', uses: 'inc' }] });
  });
  afterAll(() => h.close());

  it('on random DAGs of 1-40 nodes', async () => {
    await fc.assert(
      fc.asyncProperty(graphArb, fc.integer({ min: 0, max: 10 }), fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 6 }), async (nodes, x, list) => {
        const blueprint = toBlueprint(nodes);
        const loaded = h.registry.add(blueprint);
        const expected = await runInMemory(compileGraph(loaded, h.kinds), { kinds: h.kinds, blueprints: h.registry, input: { x, list } });
        const actual = await (await h.client.start(blueprint.id, { x, list })).result({ timeoutMs: 20_000 });
        expect(actual.status).toBe(expected.status);
        expect(statuses(actual.nodes)).toEqual(statuses(expected.nodes));
        expect(actual.context).toEqual(expected.context);
        expect(actual.outputs).toEqual(expected.outputs);
        expect(fanOuts(actual.nodes)).toEqual(fanOuts(expected.nodes));
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 60) },
    );
  });
});

function fanOuts(nodes: Record<string, { fanOut?: unknown; children?: string[] }>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(nodes).map(([id, n]) => [id, { fanOut: n.fanOut, iterations: n.children?.length }]));
}

function statuses(nodes: Record<string, { status: string }>): Record<string, string> {
  return Object.fromEntries(Object.entries(nodes).map(([id, n]) => [id, n.status]));
}
