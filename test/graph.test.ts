import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { layoutBlueprint, type GraphLayout, type LayoutInput } from '../src/drawing/layout.js';
import { renderSvg, STATUS_COLOURS } from '../src/drawing/svg.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { requireSeeds, WORKFLOWS_DIR } from './support/seeds.js';

const STYLE_CSS = fileURLToPath(new URL('../src/dashboard/public/style.css', import.meta.url));

/** Every edge goes down a layer (a blueprint is acyclic), and its polyline runs from source to target. */
function expectEdgesGoDown(layout: GraphLayout): void {
  const byId = new Map(layout.nodes.map((n) => [n.id, n]));
  for (const edge of layout.edges) {
    const source = byId.get(edge.source)!;
    const target = byId.get(edge.target)!;
    expect(target.layer, `${edge.source} -> ${edge.target}`).toBeGreaterThan(source.layer);
    expect(edge.points[0]!.y).toBe(source.y + source.height);
    expect(edge.points.at(-1)!.y).toBe(target.y);
    for (let i = 0; i + 1 < edge.points.length; i++) expect(edge.points[i + 1]!.y).toBeGreaterThanOrEqual(edge.points[i]!.y);
  }
}

/** No two boxes overlap, and every box is inside the drawing. */
function expectNoOverlap(layout: GraphLayout): void {
  const nodes = layout.nodes;
  for (let a = 0; a < nodes.length; a++) {
    const n = nodes[a]!;
    expect(n.x).toBeGreaterThanOrEqual(0);
    expect(n.y).toBeGreaterThanOrEqual(0);
    expect(n.x + n.width).toBeLessThanOrEqual(layout.width);
    expect(n.y + n.height).toBeLessThanOrEqual(layout.height);
    for (let b = a + 1; b < nodes.length; b++) {
      const m = nodes[b]!;
      const apart = n.x + n.width <= m.x || m.x + m.width <= n.x || n.y + n.height <= m.y || m.y + m.height <= n.y;
      expect(apart, `${n.id} overlaps ${m.id}`).toBe(true);
    }
  }
}

/** Random DAGs: edges only from an earlier node to a later one. */
const dag = fc
  .integer({ min: 1, max: 14 })
  .chain((size) =>
    fc.record({
      size: fc.constant(size),
      // Pairs a < b, built rather than filtered (a one-node graph has none to offer).
      edges:
        size < 2
          ? fc.constant([] as Array<[number, number]>)
          : fc.uniqueArray(
              fc.tuple(fc.nat(size - 2), fc.nat(size - 2)).map(([a, gap]): [number, number] => [a, Math.min(size - 1, a + 1 + gap)]),
              { maxLength: size * 2, selector: ([a, b]) => `${a}-${b}` },
            ),
    }),
  )
  .map(({ size, edges }): LayoutInput => ({
    nodes: Array.from({ length: size }, (_, i) => ({ id: `n${i}${'x'.repeat(i % 4 * 5)}`, uses: i % 3 === 0 ? 'llm-process' : 'template' })),
    edges: edges.map(([a, b]) => ({ source: `n${a}${'x'.repeat(a % 4 * 5)}`, target: `n${b}${'x'.repeat(b % 4 * 5)}` })),
  }));

describe('layoutBlueprint', () => {
  it('lays out every registered blueprint with edges going down and no overlaps, the same way every time', async () => {
    const registry = await BlueprintRegistry.load([WORKFLOWS_DIR], createNodeKinds());
    expect(registry.ids().length).toBeGreaterThan(5);
    for (const id of registry.ids()) {
      const blueprint = registry.get(id)!.blueprint;
      const layout = layoutBlueprint(blueprint);
      expect(layout.nodes.map((n) => n.id)).toEqual(blueprint.nodes.map((n) => n.id));
      expect(layout.edges).toHaveLength(blueprint.edges.length);
      expectEdgesGoDown(layout);
      expectNoOverlap(layout);
      // Deterministic: a fresh copy of the same blueprint lays out identically.
      expect(layoutBlueprint(structuredClone(blueprint))).toEqual(layout);
    }
  });

  it('puts the three checks of seed 400 in the first layer and the final log in the last', () => {
    const seed = JSON.parse(readFileSync(join(requireSeeds(), '4.content-moderation', '400.json'), 'utf8')) as LayoutInput;
    const layout = layoutBlueprint(seed);
    const layerOf = (id: string) => layout.nodes.find((n) => n.id === id)!.layer;
    const first = layout.nodes.filter((n) => n.layer === 0).map((n) => n.id);
    expect(first.sort()).toEqual(['check_for_hate_speech', 'check_for_pii', 'check_for_spam']);
    expect(layerOf('triage_post')).toBe(1);
    for (const branch of ['ban_user_branch', 'redact_post_branch', 'delete_spam_branch', 'approve_post_branch']) expect(layerOf(branch)).toBe(2);
    expect(layerOf('final_log')).toBe(3);
    expectEdgesGoDown(layout);
    expectNoOverlap(layout);
    // The router's actions label its edges.
    expect(layout.edges.filter((e) => e.source === 'triage_post').map((e) => e.label)).toEqual(['action_ban', 'action_redact', 'action_delete_spam', 'action_approve']);
  });

  it('keeps random DAGs layered, apart and deterministic', () => {
    fc.assert(
      fc.property(dag, (input) => {
        const layout = layoutBlueprint(input);
        expectEdgesGoDown(layout);
        expectNoOverlap(layout);
        // Longest path: a node sits exactly one layer below its lowest predecessor.
        for (const node of layout.nodes) {
          const preds = input.edges.filter((e) => e.target === node.id).map((e) => layout.nodes.find((n) => n.id === e.source)!.layer);
          expect(node.layer).toBe(preds.length === 0 ? 0 : Math.max(...preds) + 1);
        }
        expect(layoutBlueprint(input)).toEqual(layout);
      }),
      { numRuns: 150 },
    );
  });

  it('routes a long edge around the layers it crosses', () => {
    const layout = layoutBlueprint({
      nodes: [
        { id: 'a', uses: 'template' },
        { id: 'b', uses: 'template' },
        { id: 'c', uses: 'template' },
      ],
      edges: [
        { source: 'a', target: 'b' },
        { source: 'b', target: 'c' },
        { source: 'a', target: 'c', condition: 'context.x == 1' },
      ],
    });
    const long = layout.edges[2]!;
    expect(long.label).toBe('if context.x == 1');
    // Through a placeholder in b's layer (two points), which must not sit on b.
    expect(long.points).toHaveLength(4);
    const b = layout.nodes[1]!;
    const through = long.points[1]!.x;
    expect(through < b.x || through > b.x + b.width).toBe(true);
  });

  it('survives what validation would reject: cycles, self-loops, unknown nodes, no edges', () => {
    const layout = layoutBlueprint({
      nodes: [
        { id: 'a', uses: 'x' },
        { id: 'b', uses: 'x' },
        { id: 'c', uses: 'x' },
      ],
      edges: [
        { source: 'a', target: 'b' },
        { source: 'b', target: 'c' },
        { source: 'c', target: 'a' },
        { source: 'b', target: 'b' },
        { source: 'a', target: 'ghost' },
      ],
    });
    expect(layout.nodes.map((n) => n.layer)).toEqual([0, 1, 2]);
    expect(layout.edges).toHaveLength(4);
    expectNoOverlap(layout);
    // The back edge is drawn upwards, from c's top to a's bottom.
    const back = layout.edges.find((e) => e.source === 'c')!;
    expect(back.points[0]!.y).toBeGreaterThan(back.points.at(-1)!.y);
    expect(layoutBlueprint({ nodes: [{ id: 'solo', uses: 'output' }], edges: [] }).nodes[0]).toMatchObject({ x: 24, y: 24, layer: 0 });
  });
});

describe('renderSvg', () => {
  const layout = layoutBlueprint({
    nodes: [
      { id: 'start', uses: 'template' },
      { id: 'risky', uses: '<script>alert("x")</script> & co' },
    ],
    edges: [{ source: 'start', target: 'risky', condition: 'a < 3 && b > "x"' }],
  });

  it('escapes every label', () => {
    const svg = renderSvg(layout, { title: 'Tom & Jerry <3' });
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('&lt;script&gt;');
    expect(svg).toContain('Tom &amp; Jerry &lt;3');
    expect(svg).toContain('>if a &lt; 3 &amp;&amp; b &gt; &quot;x&quot;</text>');
    // eslint-disable-next-line no-control-regex -- a control character is what must not reach the SVG
    expect(renderSvg(layoutBlueprint({ nodes: [{ id: 'n', uses: 'bad\u0001char' }], edges: [] }))).not.toMatch(/[\u0001]/);
    // Well-formed: every opened element is closed.
    const opened = (svg.match(/<(svg|g|text|title|defs|marker)[\s>]/g) ?? []).length;
    const closed = (svg.match(/<\/(svg|g|text|title|defs|marker)>/g) ?? []).length;
    expect(opened).toBe(closed);
  });

  it('colours nodes by state and explains the colours in a legend', () => {
    const svg = renderSvg(layout, { statuses: { start: 'done', risky: 'running' } });
    const node = (id: string) => svg.match(new RegExp(`<g data-node-id="${id}" data-status="([a-z]+)">.*?<rect [^>]*fill="([^"]+)" stroke="([^"]+)"`))!;
    expect(node('start').slice(1)).toEqual(['done', STATUS_COLOURS.done.fill, STATUS_COLOURS.done.stroke]);
    expect(node('risky').slice(1)).toEqual(['running', STATUS_COLOURS.running.fill, STATUS_COLOURS.running.stroke]);
    for (const status of Object.keys(STATUS_COLOURS)) expect(svg).toContain(`>${status}</text>`);
    // Without states: no legend, no status attributes.
    const plain = renderSvg(layout);
    expect(plain).not.toContain('data-status');
    expect(plain).not.toContain('legend');
    // Distinct colours for distinct states.
    expect(new Set(Object.values(STATUS_COLOURS).map((c) => c.stroke)).size).toBe(Object.keys(STATUS_COLOURS).length);
  });

  it('uses the same colours as the dashboard', () => {
    const css = readFileSync(STYLE_CSS, 'utf8');
    for (const [status, { fill, stroke }] of Object.entries(STATUS_COLOURS)) {
      expect(css, status).toContain(`--status-${status}-fill: ${fill};`);
      expect(css, status).toContain(`--status-${status}-stroke: ${stroke};`);
    }
  });
});
