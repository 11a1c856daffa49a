import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { analyzeBlueprint } from '../src/blueprint/analyze.js';
import { ConditionError, parseCondition } from '../src/blueprint/condition.js';
import { BlueprintRegistry, blueprintVersion, parseBlueprint } from '../src/blueprint/load.js';
import { formatIssues, ValidationError } from '../src/errors.js';
import { NodeKindRegistry, type NodeKind } from '../src/types/node-kind.js';

/** Small fake kinds: just enough behaviour to exercise params schemas, `check` and `references`. */
const permissive = (name: string): NodeKind => ({ name, run: () => ({}) });
const template: NodeKind<{ template: string }> = { name: 'template', params: z.object({ template: z.string() }), run: () => ({}) };
const route: NodeKind<{ rules: Array<{ when: string; action: string }> }> = {
  name: 'route',
  params: z.object({ rules: z.array(z.object({ when: z.string(), action: z.string() })) }),
  check: (p) =>
    p.rules.flatMap((rule, i) => {
      try {
        parseCondition(rule.when, { roots: ['context', 'outputs'] });
        return [];
      } catch (err) {
        return [{ path: `rules[${i}].when`, message: `condition does not parse: ${(err as Error).message}` }];
      }
    }),
  run: () => ({}),
};
const subflow: NodeKind<{ blueprintId: string }> = {
  name: 'subflow',
  params: z.looseObject({ blueprintId: z.string() }),
  references: (p) => ({ blueprints: [p.blueprintId] }),
  run: () => ({}),
};
const kinds = new NodeKindRegistry([
  template,
  route,
  subflow,
  ...['llm-process', 'llm-condition', 'llm-router', 'output'].map(permissive),
]);
const KNOWN = 'llm-condition, llm-process, llm-router, output, route, subflow, template';

/** The exact message the condition parser gives, so expectations do not restate its wording. */
function conditionMessage(source: string, roots?: Array<'context' | 'outputs' | 'output' | 'action'>): string {
  try {
    parseCondition(source, roots ? { roots } : {});
  } catch (err) {
    if (err instanceof ConditionError) return err.message;
  }
  throw new Error(`expected "${source}" not to parse`);
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Writes fixtures (objects as JSON, strings verbatim) into a fresh temp dir and returns its path. */
function writeFixtures(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-blueprints-'));
  tempDirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

/** Loads a fixture dir and returns `<file>: <path>: <message>` lines, with the dir shown as `<dir>`. */
async function issueLines(files: Record<string, unknown>): Promise<string[]> {
  const dir = writeFixtures(files);
  const { issues } = await BlueprintRegistry.check([dir], kinds);
  return formatIssues(issues).split('\n').filter(Boolean).map((line) => line.replaceAll(dir, '<dir>'));
}

const node = (id: string, uses = 'llm-process', extra: Record<string, unknown> = {}) => ({ id, uses, ...extra });
const edge = (source: string, target: string, extra: Record<string, unknown> = {}) => ({ source, target, ...extra });

describe('blueprint validation rejects', () => {
  it('unknown node kinds, listing the known ones', async () => {
    expect(await issueLines({ 'b.json': { nodes: [node('a'), node('b', 'foo')], edges: [edge('a', 'b')] } })).toEqual([
      `<dir>/b.json: $.nodes[1].uses: unknown node kind "foo" (known: ${KNOWN})`,
    ]);
  });

  it('duplicate node ids, naming the first', async () => {
    expect(await issueLines({ 'b.json': { nodes: [node('a'), node('b'), node('a')], edges: [edge('a', 'b')] } })).toEqual([
      '<dir>/b.json: $.nodes[2].id: duplicate node id "a" (first at $.nodes[0])',
    ]);
  });

  it('params failing the kind schema, and problems its check finds', async () => {
    const rules = [{ when: 'context.x > 1', action: 'big' }, { when: 'context.x >', action: 'bad' }];
    const lines = await issueLines({
      'b.json': { nodes: [node('t', 'template', { params: { template: 5 } }), node('r', 'route', { params: { rules } })], edges: [edge('t', 'r')] },
    });
    expect(lines).toEqual([
      '<dir>/b.json: $.nodes[0].params.template: Invalid input: expected string, received number',
      `<dir>/b.json: $.nodes[1].params.rules[1].when: condition does not parse: ${conditionMessage('context.x >')}`,
    ]);
  });

  it('edges to or from missing nodes', async () => {
    expect(await issueLines({ 'b.json': { nodes: [node('a'), node('b')], edges: [edge('a', 'b'), edge('x', 'b'), edge('a', 'y')] } })).toEqual([
      '<dir>/b.json: $.edges[1].source: edge source "x" is not a node',
      '<dir>/b.json: $.edges[2].target: edge target "y" is not a node',
    ]);
  });

  it('self-loops and cycles, each named once', async () => {
    const lines = await issueLines({
      'b.json': {
        nodes: [node('start'), node('a'), node('b'), node('c'), node('d')],
        edges: [edge('start', 'a'), edge('a', 'b'), edge('b', 'c'), edge('c', 'a'), edge('start', 'd'), edge('d', 'd')],
      },
    });
    expect(lines).toEqual(['<dir>/b.json: $.edges[3]: cycle: a -> b -> c -> a', '<dir>/b.json: $.edges[5]: cycle: d -> d']);
  });

  it('unreachable nodes, and a graph with no start node', async () => {
    expect(await issueLines({ 'b.json': { nodes: [node('a'), node('b'), node('c')], edges: [edge('b', 'c'), edge('c', 'b')] } })).toEqual([
      '<dir>/b.json: $.nodes[1]: node "b" is not reachable from any start node',
      '<dir>/b.json: $.nodes[2]: node "c" is not reachable from any start node',
      '<dir>/b.json: $.edges[1]: cycle: b -> c -> b',
    ]);
    expect(await issueLines({ 'b.json': { nodes: [node('a'), node('b')], edges: [edge('a', 'b'), edge('b', 'a')] } })).toEqual([
      '<dir>/b.json: $.nodes: no start node: every node has an incoming edge',
      '<dir>/b.json: $.edges[1]: cycle: a -> b -> a',
    ]);
  });

  it('edge conditions that do not parse', async () => {
    const lines = await issueLines({
      'b.json': { nodes: [node('a'), node('b')], edges: [edge('a', 'b', { condition: 'output.score >= 0.5 &&' })] },
    });
    expect(lines).toEqual([`<dir>/b.json: $.edges[0].condition: condition does not parse: ${conditionMessage('output.score >= 0.5 &&')}`]);
  });

  it('fallbacks naming nothing, themselves, or each other in a ring', async () => {
    const cfg = (fallback: string) => ({ config: { fallback } });
    const lines = await issueLines({
      'b.json': {
        nodes: [node('a', 'llm-process', cfg('nope')), node('b', 'llm-process', cfg('b')), node('c', 'llm-process', cfg('d')), node('d', 'llm-process', cfg('c'))],
        edges: [edge('a', 'b'), edge('b', 'c'), edge('c', 'd')],
      },
    });
    expect(lines).toEqual([
      '<dir>/b.json: $.nodes[0].config.fallback: fallback "nope" is neither a node of this blueprint nor a node kind',
      '<dir>/b.json: $.nodes[1].config.fallback: node "b" names itself as its fallback',
      '<dir>/b.json: $.nodes[2].config.fallback: fallback cycle: c -> d -> c',
    ]);
  });

  it('subflows naming missing blueprints, and recursion across files', async () => {
    const calls = (id: string, extra: unknown[] = []) => ({ nodes: [node('call', 'subflow', { params: { blueprintId: id } }), ...extra] });
    const lines = await issueLines({
      'a/200.json': calls('201'),
      'b/201.json': calls('202'),
      'b/202.json': calls('200'),
      '300.json': calls('999'),
      '301.json': calls('301'),
    });
    expect(lines).toEqual([
      '<dir>/300.json: $.nodes[0].params.blueprintId: subflow blueprint "999" not found',
      '<dir>/301.json: $.nodes[0].params.blueprintId: subflow recursion: 301 -> 301',
      '<dir>/a/200.json: $.nodes[0].params.blueprintId: subflow recursion: 200 -> 201 -> 202 -> 200',
      '<dir>/b/201.json: $.nodes[0].params.blueprintId: subflow recursion: 201 -> 202 -> 200 -> 201',
      '<dir>/b/202.json: $.nodes[0].params.blueprintId: subflow recursion: 202 -> 200 -> 201 -> 202',
    ]);
  });

  it('invalid JSON with line and column, schema issues, bad ids, and ids used by two files', async () => {
    const lines = await issueLines({
      'broken.json': '{\n  "nodes": [\n    { "id": "a", "uses": "output" },\n  ]\n}\n',
      'schema.json': { nodes: [{ id: 'has space', uses: 'output', extra: 1 }], edges: [{ source: 'a' }] },
      'empty.json': { nodes: [] },
      'bad name!.json': { nodes: [node('a')] },
      'x/one.json': { id: 'same', nodes: [node('a')] },
      'y/two.json': { id: 'same', nodes: [node('a')] },
    });
    expect(lines).toEqual([
      `<dir>/bad name!.json: $.id: file name "bad name!" is not a valid blueprint id (1-100 letters, digits, ".", "_" or "-"): set "id"`,
      '<dir>/broken.json: $: invalid JSON: unexpected "]" (line 4, column 3)',
      '<dir>/empty.json: $.nodes: a blueprint needs at least one node',
      '<dir>/schema.json: $.nodes[0].id: must be 1-100 characters of letters, digits, "_" or "-"',
      '<dir>/schema.json: $.nodes[0]: Unrecognized key: "extra"',
      '<dir>/schema.json: $.edges[0].target: Invalid input: expected string, received undefined',
      '<dir>/y/two.json: $.id: duplicate blueprint id "same" (also in <dir>/x/one.json)',
    ]);
  });

  it('invalid JSON of every sort, each with where it breaks', async () => {
    const lines = await issueLines({
      '1.json': '',
      '2.json': '{ "id": "a\\"b", "nodes": [],\n  "x": 1, }',
      '3.json': '{ "id": "abc\n',
      '4.json': '{ "nodes": [] } []',
      '5.json': '{ "n": 01 }',
    });
    expect(lines).toEqual([
      '<dir>/1.json: $: invalid JSON: unexpected end of input (line 1, column 1)',
      '<dir>/2.json: $: invalid JSON: unexpected "}" (line 2, column 11)',
      '<dir>/3.json: $: invalid JSON: unexpected "\\n" (line 1, column 13)',
      '<dir>/4.json: $: invalid JSON: unexpected "[" (line 1, column 17)',
      '<dir>/5.json: $: invalid JSON: unexpected "1" (line 1, column 9)',
    ]);
  });

  it('unreadable paths and empty directories', async () => {
    const dir = writeFixtures({ 'empty/.keep': '' });
    const { issues, registry } = await BlueprintRegistry.check([join(dir, 'missing.json'), join(dir, 'empty')], kinds);
    expect(formatIssues(issues).replaceAll(dir, '<dir>').split('\n')).toEqual([
      '<dir>/missing.json: $: cannot read: no such file or directory',
      '<dir>/empty: $: no blueprint files (*.json) in this directory',
    ]);
    expect(registry.ids()).toEqual([]);
  });

  it('every problem of one file at once, in file order, and load() throws them all', async () => {
    const bad = {
      nodes: [node('a'), node('b', 'nope'), node('a'), node('c', 'template', { params: {} }), node('lonely')],
      edges: [edge('a', 'b', { condition: '(' }), edge('b', 'ghost'), edge('c', 'lonely'), edge('lonely', 'c')],
    };
    const expected = [
      `<dir>/bad.json: $.nodes[1].uses: unknown node kind "nope" (known: ${KNOWN})`,
      '<dir>/bad.json: $.nodes[2].id: duplicate node id "a" (first at $.nodes[0])',
      '<dir>/bad.json: $.nodes[3].params.template: Invalid input: expected string, received undefined',
      '<dir>/bad.json: $.nodes[3]: node "c" is not reachable from any start node',
      '<dir>/bad.json: $.nodes[4]: node "lonely" is not reachable from any start node',
      `<dir>/bad.json: $.edges[0].condition: condition does not parse: ${conditionMessage('(')}`,
      '<dir>/bad.json: $.edges[1].target: edge target "ghost" is not a node',
      '<dir>/bad.json: $.edges[3]: cycle: c -> lonely -> c',
    ];
    expect(await issueLines({ 'bad.json': bad })).toEqual(expected);

    const dir = writeFixtures({ 'bad.json': bad, 'good.json': { nodes: [node('a')] } });
    const error = await BlueprintRegistry.load([dir], kinds).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues).toHaveLength(expected.length);
    expect((error as ValidationError).message.replaceAll(dir, '<dir>')).toBe(expected.join('\n'));
  });
});

describe('blueprint analysis', () => {
  it('finds start and terminal nodes, a stable topological order and fallback-only nodes', async () => {
    const dir = writeFixtures({
      'flow.json': {
        nodes: [
          node('fetch', 'llm-process', { config: { fallback: 'cached', maxRetries: 2 } }),
          node('extract'),
          node('cached', 'template', { params: { template: 'from cache' } }),
          node('classify', 'llm-process', { config: { fallback: 'template' } }),
          node('summarize'),
          node('report', 'output', { config: { joinStrategy: 'any' } }),
          node('audit', 'subflow', { params: { blueprintId: 'audit' } }),
        ],
        edges: [edge('extract', 'summarize'), edge('fetch', 'classify'), edge('fetch', 'summarize'), edge('classify', 'report'), edge('summarize', 'report')],
      },
      'sub/audit.json': { nodes: [node('log', 'output')] },
    });
    const registry = await BlueprintRegistry.load([dir], kinds);
    expect(registry.ids()).toEqual(['audit', 'flow']);
    const flow = registry.get('flow');
    expect(flow?.file).toBe(join(dir, 'flow.json'));
    expect(flow?.analysis).toEqual({
      startNodes: ['fetch', 'extract', 'audit'],
      terminalNodes: ['report', 'audit'],
      topologicalOrder: ['fetch', 'extract', 'classify', 'summarize', 'report', 'audit'],
      fallbackOnly: ['cached'],
      subflows: ['audit'],
    });
    expect(flow?.version).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.isFrozen(flow?.blueprint.nodes[0])).toBe(true);
  });

  it('versions blueprints by content, not key order', () => {
    const a = parseBlueprint({ nodes: [{ id: 'x', uses: 'output', params: { b: 1, a: 2 } }] }, 'a.json', 'same').blueprint!;
    const b = parseBlueprint({ edges: [], nodes: [{ params: { a: 2, b: 1 }, uses: 'output', id: 'x' }], id: 'same' }, 'b.json', undefined).blueprint!;
    expect(blueprintVersion(a)).toBe(blueprintVersion(b));
    expect(blueprintVersion({ ...a, version: '2' })).not.toBe(blueprintVersion(a));
  });

  it('analyzes without a resolver, checking only self-recursion', () => {
    const blueprint = { id: 'p', nodes: [node('s', 'subflow', { params: { blueprintId: 'elsewhere' } })], edges: [] };
    expect(analyzeBlueprint(blueprint, { kinds }).issues).toEqual([]);
  });
});

describe('BlueprintRegistry.add', () => {
  it('registers inline blueprints that may call registered ones, and rejects bad ones', async () => {
    const registry = await BlueprintRegistry.load([writeFixtures({ '201.json': { nodes: [node('email', 'output')] } })], kinds);
    const inline = { id: 'inline-1', nodes: [node('call', 'subflow', { params: { blueprintId: '201' } })] };
    const added = registry.add(inline);
    expect(added.file).toBe('<inline>');
    expect(added.analysis.subflows).toEqual(['201']);
    expect(registry.add(structuredClone(inline))).toBe(added);
    expect(registry.get('inline-1')).toBe(added);

    expect(() => registry.add({ nodes: [node('a')] })).toThrow('<inline>: $.id: blueprint has no id: set "id"');
    expect(() => registry.add({ id: 'inline-1', nodes: [node('b')] }, 'api')).toThrow(
      'api: $.id: blueprint "inline-1" is already registered with other content (from <inline>)',
    );
    expect(() => registry.add({ id: 'x', nodes: [node('a', 'subflow', { params: { blueprintId: 'nope' } })] })).toThrow(
      '<inline>: $.nodes[0].params.blueprintId: subflow blueprint "nope" not found',
    );
    expect(registry.ids()).toEqual(['201', 'inline-1']);
  });
});

describe('the seed workflows', () => {
  it('all load with permissive kinds', async () => {
    const dir = join(dirname(fileURLToPath(import.meta.url)), '../../shared/seed-workflows');
    expect(existsSync(dir)).toBe(true);
    const registry = await BlueprintRegistry.load([dir], kinds);
    expect(registry.ids()).toEqual(['100', '200', '201', '202', '300', '301', '302', '400', '401', '402', '403']);
    const moderation = registry.get('400');
    expect(moderation?.file).toBe(join(dir, '4.content-moderation/400.json'));
    expect(moderation?.analysis.startNodes).toEqual(['check_for_pii', 'check_for_hate_speech', 'check_for_spam']);
    expect(moderation?.analysis.terminalNodes).toEqual(['final_log']);
    expect(moderation?.analysis.subflows).toEqual(['401', '402', '403']);
    expect(moderation?.analysis.fallbackOnly).toEqual([]);
  });
});
