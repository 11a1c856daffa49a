import fc from 'fast-check';

/**
 * Generated blueprints for the fuzz tests: well-formed DAGs of the built-in deterministic kinds (template,
 * output, route, sleep, subflow to a registered child), half of them then damaged in one of many ways
 * (unknown kinds, broken or cyclic edges, conditions that do not parse, random params with
 * prototype-polluting keys, unicode and duplicate ids, wrong types, too many nodes...). Values stay
 * deterministic whatever the order of execution: nodes read only the input (`x`, `name`), conditions only
 * `context.x`, the source's `output` and `action`, and every node writes its own context key.
 */

/** The child blueprint `subflow` nodes of generated blueprints call (register it first). */
export const FUZZ_CHILD = {
  id: 'fuzz-child',
  nodes: [{ id: 'inner', uses: 'output', params: { template: 'child of {{seed}}', inputs: { seed: 'seed' }, outputKey: 'made' } }],
};

const EVIL_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '__defineGetter__', 'valueOf'];
const evilKey = fc.constantFrom(...EVIL_KEYS);
const weirdString = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  evilKey,
  fc.constantFrom('', ' ', 'a:b', 'a.b', '{{x}}', '\u0000', '😀', 'é', 'n0', 'start', 'x'.repeat(101)),
);

const condition = fc.oneof(
  fc.integer({ min: 0, max: 10 }).map((k) => `context.x > ${k}`),
  fc.constantFrom('action == "a"', 'action != "b"', 'output == "hi"', '!(context.x == 3) && true', 'context.missing == null || context.x <= 2', 'context["x"] >= 5'),
);
const badCondition = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom('context.x >', 'constructor.constructor("return 1")()', 'context.__proto__.polluted == 1', '((((', 'output["__proto__"]', 'a'.repeat(2100), '!'.repeat(100) + 'true'),
);

interface GenNode {
  kind: 'template' | 'output' | 'route' | 'sleep' | 'subflow';
  join: 'all' | 'any';
  sources: number[];
  edges: Array<{ action?: 'a' | 'b'; condition?: string }>;
  retries?: number;
}

const genNode = (index: number): fc.Arbitrary<GenNode> =>
  fc.record({
    kind: fc.constantFrom('template', 'output', 'route', 'sleep', 'subflow', 'output'),
    join: fc.constantFrom('all', 'any'),
    sources: index === 0 ? fc.constant([]) : fc.uniqueArray(fc.integer({ min: 0, max: index - 1 }), { minLength: 1, maxLength: 3 }),
    edges: fc.array(fc.record({ action: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }), condition: fc.option(condition, { nil: undefined, freq: 3 }) }), {
      minLength: 3,
      maxLength: 3,
    }),
    retries: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
  }) as fc.Arbitrary<GenNode>;

type Json = Record<string, any>;

function build(nodes: GenNode[], ids: string[]): Json {
  return {
    nodes: nodes.map((n, i) => {
      const config: Json = {};
      if (n.sources.length > 1) config.joinStrategy = n.join;
      if (n.retries !== undefined) Object.assign(config, { maxRetries: n.retries, retryDelay: 0 });
      const base = { id: ids[i], ...(Object.keys(config).length ? { config } : {}) };
      switch (n.kind) {
        case 'route':
          return { ...base, uses: 'route', params: { rules: [{ when: `context.x > ${i % 10}`, action: 'a' }], default: 'b' } };
        case 'sleep':
          return { ...base, uses: 'sleep', params: { ms: 0 } };
        case 'subflow':
          return { ...base, uses: 'subflow', params: { blueprintId: FUZZ_CHILD.id, inputs: { seed: 'name' }, outputs: { [`c${i}`]: 'made' } } };
        case 'template':
          return { ...base, uses: 'template', params: { template: `t${i} {{x}}`, inputs: { x: 'x' } } };
        default:
          return { ...base, uses: 'output', params: { template: `o${i} {{name}} {{x}}`, inputs: { name: 'name', x: ['missing', 'x'] }, outputKey: `k${i}` } };
      }
    }),
    edges: nodes.flatMap((n, i) =>
      n.sources.map((s, j) => {
        const spec = n.edges[j]!;
        const action = nodes[s]!.kind === 'route' ? spec.action : undefined;
        return { source: ids[s], target: ids[i], ...(action ? { action } : {}), ...(spec.condition ? { condition: spec.condition } : {}) };
      }),
    ),
  };
}

/** A well-formed blueprint (valid unless its random ids collide with nothing: they are unique). */
export const wellFormedArb: fc.Arbitrary<Json> = fc
  .integer({ min: 1, max: 25 })
  .chain((n) => fc.tuple(fc.tuple(...Array.from({ length: n }, (_, i) => genNode(i))), fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), { minLength: n, maxLength: n })))
  .map(([nodes, ids]) => build(nodes, ids));

/** One way of damaging a blueprint (or replacing it with something that is no blueprint at all). */
const damage: fc.Arbitrary<(bp: Json) => unknown> = fc.oneof(
  fc.constant((bp: Json) => ({ ...bp, nodes: [] })),
  fc.constant((bp: Json) => ({ ...bp, edges: [...bp.edges, { source: bp.nodes[bp.nodes.length - 1].id, target: bp.nodes[0].id }] })), // cycle (or self-loop)
  fc.constant((bp: Json) => ({ ...bp, nodes: [...bp.nodes, { ...bp.nodes[0] }] })), // duplicate id
  weirdString.map((s) => (bp: Json) => ({ ...bp, nodes: bp.nodes.map((n: Json, i: number) => (i === 0 ? { ...n, uses: s } : n)) })),
  weirdString.map((s) => (bp: Json) => ({ ...bp, nodes: bp.nodes.map((n: Json, i: number) => (i === 0 ? { ...n, id: s } : n)) })),
  weirdString.map((s) => (bp: Json) => ({ ...bp, edges: [...bp.edges, { source: bp.nodes[0].id, target: s }] })),
  badCondition.map((c) => (bp: Json) => ({ ...bp, edges: [...bp.edges.slice(1), ...(bp.edges[0] ? [{ ...bp.edges[0], condition: c }] : [])] })),
  fc.object({ key: fc.oneof(evilKey, fc.string({ maxLength: 6 })), maxDepth: 3, withNullPrototype: true }).map((params) => (bp: Json) => ({
    ...bp,
    nodes: bp.nodes.map((n: Json, i: number) => (i === 0 ? { ...n, params } : n)),
  })),
  fc.tuple(evilKey, fc.jsonValue({ maxDepth: 2 })).map(([k, v]) => (bp: Json) => JSON.parse(JSON.stringify(bp).replace(/^\{/, () => `{${JSON.stringify(k)}:${JSON.stringify(v)},`))),
  fc.tuple(evilKey, fc.jsonValue({ maxDepth: 2 })).map(([k, v]) => (bp: Json) => ({
    ...bp,
    nodes: bp.nodes.map((n: Json, i: number) => (i === 0 ? JSON.parse(JSON.stringify({ ...n, params: { ...n.params } }).replace('"params":{', () => `"params":{${JSON.stringify(k)}:${JSON.stringify(v)},`)) : n)),
  })),
  fc.record({ joinStrategy: fc.constantFrom('all', 'any', 'some', 1), maxRetries: fc.oneof(fc.integer({ min: -2, max: 60 }), fc.double()), timeout: fc.oneof(fc.integer({ min: -1, max: 5 }), fc.constant(1e20)), fallback: weirdString }, { requiredKeys: [] }).map(
    (config) => (bp: Json) => ({ ...bp, nodes: bp.nodes.map((n: Json, i: number) => (i === 0 ? { ...n, config } : n)) }),
  ),
  fc.constantFrom('subflow-missing', 'subflow-self').map((what) => (bp: Json) => ({
    ...bp,
    id: 'fuzz-self',
    nodes: [...bp.nodes, { id: 'sub_x', uses: 'subflow', params: { blueprintId: what === 'subflow-self' ? 'fuzz-self' : 'no-such-blueprint' } }],
  })),
  fc.constant((bp: Json) => ({ ...bp, nodes: Array.from({ length: 1001 }, (_, i) => ({ id: `m${i}`, uses: 'sleep', params: { ms: 0 } })) })),
  fc.jsonValue({ maxDepth: 3 }).map((v) => () => v),
  fc.constantFrom(null, undefined, 42, 'blueprint', [], [{}], { nodes: 'x' }, { nodes: [null] }, { nodes: [{ id: 'a' }] }, { nodes: [{ id: 'a', uses: 'template' }], edges: {} }).map((v) => () => v),
  fc.jsonValue({ maxDepth: 2 }).map((v) => (bp: Json) => ({ ...bp, metadata: v, version: v })),
);

/** Blueprints, about half well-formed and half damaged. */
export const blueprintArb: fc.Arbitrary<unknown> = fc.oneof(wellFormedArb, fc.tuple(wellFormedArb, damage).map(([bp, hurt]) => hurt(bp)));
