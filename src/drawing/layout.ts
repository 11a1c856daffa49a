/**
 * A layered ("Sugiyama") layout of a blueprint graph, top to bottom, with no dependencies: the CLI draws
 * it as SVG, the API hands it to the dashboard. Everything is decided by the input order alone, so the
 * same blueprint always gets the same picture.
 *
 * Steps: break cycles (blueprints are acyclic, but a drawing must not loop forever on one that is not),
 * longest-path layers, a placeholder ("dummy") node wherever an edge crosses a layer, barycentre sweeps
 * to reduce crossings (the best order seen wins), then x positions that pull each node towards the
 * nodes it is connected to without breaking the order or overlapping.
 */

/** A node's box; `x`/`y` is its top-left corner. */
export interface LaidOutNode {
  id: string;
  uses: string;
  x: number;
  y: number;
  width: number;
  height: number;
  /** 0 for the top layer (nodes with no incoming edges). */
  layer: number;
}

/** An edge as a polyline from the source's bottom to the target's top (through its placeholder nodes). */
export interface LaidOutEdge {
  source: string;
  target: string;
  /** The edge's action, or `if <condition>`. */
  label?: string;
  points: Array<{ x: number; y: number }>;
}

export interface GraphLayout {
  nodes: LaidOutNode[];
  edges: LaidOutEdge[];
  width: number;
  height: number;
}

/** What the layout reads of a blueprint. */
export interface LayoutInput {
  nodes: Array<{ id: string; uses: string }>;
  edges: Array<{ source: string; target: string; action?: string; condition?: string }>;
}

/** Sizes in SVG user units (px). */
export const LAYOUT_METRICS = {
  nodeHeight: 52,
  minNodeWidth: 132,
  maxNodeWidth: 260,
  /** Rough widths of a character of the node id (bold 13px) and of its kind (12px). */
  idCharWidth: 7.8,
  usesCharWidth: 6.6,
  nodePadding: 36,
  /** Horizontal gap between neighbours in a layer, and the room an edge through a layer takes. */
  nodeGap: 36,
  dummyWidth: 12,
  /** Vertical gap between layers (edge labels live here). */
  layerGap: 64,
  margin: 24,
} as const;

const CROSSING_SWEEPS = 12;
const PLACEMENT_SWEEPS = 8;

interface Vertex {
  /** The node id, or a generated id for a placeholder. */
  key: string;
  node?: { id: string; uses: string };
  width: number;
  layer: number;
  /** Position in its layer (0-based) during ordering. */
  order: number;
  /** Centre x during placement. */
  cx: number;
  /** Room kept free around the centre: the box, or a wider edge label drawn just above it. */
  room: number;
  up: Vertex[];
  down: Vertex[];
}

/** Lays a blueprint out in layers, top to bottom. Deterministic: the same input gives the same layout. */
export function layoutBlueprint(blueprint: LayoutInput): GraphLayout {
  const m = LAYOUT_METRICS;
  const vertices = new Map<string, Vertex>();
  for (const node of blueprint.nodes) {
    if (vertices.has(node.id)) continue;
    const width = clamp(Math.ceil(Math.max(node.id.length * m.idCharWidth, node.uses.length * m.usesCharWidth) + m.nodePadding), m.minNodeWidth, m.maxNodeWidth);
    vertices.set(node.id, { key: node.id, node, width, room: width, layer: 0, order: 0, cx: 0, up: [], down: [] });
  }

  // Edges between known nodes; self-loops and repeats do not affect the layout (they are still drawn).
  const drawn = blueprint.edges.filter((e) => vertices.has(e.source) && vertices.has(e.target));
  const links: Array<[string, string]> = [];
  const seenLinks = new Set<string>();
  for (const { source, target } of drawn) {
    const id = `${source}\u0000${target}`;
    if (source === target || seenLinks.has(id)) continue;
    seenLinks.add(id);
    links.push([source, target]);
  }
  const reversed = findBackEdges([...vertices.keys()], links);
  const directed = links.map(([s, t]) => (reversed.has(`${s}\u0000${t}`) ? ([t, s] as [string, string]) : ([s, t] as [string, string])));
  // Both directions of a 2-cycle become the same directed link; keep it once.
  const unique = [...new Map(directed.map((l) => [`${l[0]}\u0000${l[1]}`, l])).values()];

  assignLayers(vertices, unique);

  // Placeholders: an edge spanning k layers becomes a chain through k-1 of them.
  const chains = new Map<string, Vertex[]>();
  let dummies = 0;
  for (const [s, t] of unique) {
    const source = vertices.get(s)!;
    const target = vertices.get(t)!;
    const chain = [source];
    for (let layer = source.layer + 1; layer < target.layer; layer++) {
      const dummy: Vertex = { key: `\u0000dummy${dummies++}`, width: m.dummyWidth, room: m.dummyWidth, layer, order: 0, cx: 0, up: [], down: [] };
      vertices.set(dummy.key, dummy);
      chain.push(dummy);
    }
    chain.push(target);
    for (let i = 0; i + 1 < chain.length; i++) {
      chain[i]!.down.push(chain[i + 1]!);
      chain[i + 1]!.up.push(chain[i]!);
    }
    chains.set(`${s}\u0000${t}`, chain);
  }

  // A label sits on its edge's first segment, close to the next vertex: keep room for it there.
  for (const edge of drawn) {
    const label = edgeLabel(edge);
    if (label === undefined || edge.source === edge.target) continue;
    const forward = chains.get(`${edge.source}\u0000${edge.target}`);
    const next = forward ? forward[1] : chains.get(`${edge.target}\u0000${edge.source}`)?.at(-2);
    if (next) next.room = Math.max(next.room, labelWidth(label));
  }

  const layers = orderLayers([...vertices.values()]);
  placeHorizontally(layers);

  // Shift so the leftmost box starts at the margin; y follows from the layer.
  let minLeft = Infinity;
  let maxRight = -Infinity;
  for (const layer of layers) {
    for (const v of layer) {
      minLeft = Math.min(minLeft, v.cx - v.room / 2);
      maxRight = Math.max(maxRight, v.cx + v.room / 2);
    }
  }
  if (!Number.isFinite(minLeft)) minLeft = maxRight = 0;
  const shift = m.margin - minLeft;
  const top = (layer: number) => m.margin + layer * (m.nodeHeight + m.layerGap);
  for (const v of vertices.values()) v.cx = round(v.cx + shift);

  const nodes: LaidOutNode[] = [];
  for (const v of vertices.values()) {
    if (!v.node) continue;
    nodes.push({ id: v.node.id, uses: v.node.uses, x: round(v.cx - v.width / 2), y: top(v.layer), width: v.width, height: m.nodeHeight, layer: v.layer });
  }

  const edges: LaidOutEdge[] = drawn.map((edge) => {
    const label = edgeLabel(edge);
    const laid: LaidOutEdge = { source: edge.source, target: edge.target, points: edgePoints(edge.source, edge.target, vertices, chains, reversed, top) };
    if (label !== undefined) laid.label = label;
    return laid;
  });

  const layerCount = layers.length;
  return {
    nodes,
    edges,
    width: round(maxRight - minLeft + 2 * m.margin),
    height: layerCount === 0 ? 2 * m.margin : top(layerCount - 1) + m.nodeHeight + m.margin,
  };
}

/** Edges that close a cycle in a depth-first walk (nodes and their edges in input order). */
function findBackEdges(ids: string[], links: Array<[string, string]>): Set<string> {
  const out = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const [s, t] of links) out.get(s)!.push(t);
  const state = new Map<string, 'open' | 'closed'>();
  const back = new Set<string>();
  for (const root of ids) {
    if (state.has(root)) continue;
    // Iterative DFS: a long chain must not overflow the stack.
    const stack: Array<{ id: string; next: number }> = [{ id: root, next: 0 }];
    state.set(root, 'open');
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const targets = out.get(frame.id)!;
      if (frame.next >= targets.length) {
        state.set(frame.id, 'closed');
        stack.pop();
        continue;
      }
      const target = targets[frame.next++]!;
      const seen = state.get(target);
      if (seen === 'open') back.add(`${frame.id}\u0000${target}`);
      else if (seen === undefined) {
        state.set(target, 'open');
        stack.push({ id: target, next: 0 });
      }
    }
  }
  return back;
}

/** Longest-path layering over the (now acyclic) links: each node one below its lowest predecessor. */
function assignLayers(vertices: Map<string, Vertex>, links: Array<[string, string]>): void {
  const incoming = new Map<string, number>([...vertices.keys()].map((id) => [id, 0]));
  const out = new Map<string, string[]>([...vertices.keys()].map((id) => [id, []]));
  for (const [s, t] of links) {
    incoming.set(t, incoming.get(t)! + 1);
    out.get(s)!.push(t);
  }
  const queue = [...vertices.keys()].filter((id) => incoming.get(id) === 0);
  for (let i = 0; i < queue.length; i++) {
    const v = vertices.get(queue[i]!)!;
    for (const t of out.get(v.key)!) {
      const target = vertices.get(t)!;
      target.layer = Math.max(target.layer, v.layer + 1);
      const left = incoming.get(t)! - 1;
      incoming.set(t, left);
      if (left === 0) queue.push(t);
    }
  }
}

/** Orders each layer by barycentre sweeps (down, then up), keeping the order with the fewest crossings. */
function orderLayers(all: Vertex[]): Vertex[][] {
  const layers: Vertex[][] = [];
  for (const v of all) (layers[v.layer] ??= []).push(v);
  for (let i = 0; i < layers.length; i++) layers[i] ??= [];
  // Start from a depth-first order, so chains stay together before any sweep.
  initialOrder(layers);

  let best = layers.map((layer) => [...layer]);
  let bestCrossings = countAllCrossings(layers);
  for (let sweep = 0; sweep < CROSSING_SWEEPS && bestCrossings > 0; sweep++) {
    const downward = sweep % 2 === 0;
    const range = downward ? layers.map((_, i) => i).slice(1) : layers.map((_, i) => i).slice(0, -1).reverse();
    for (const i of range) {
      const layer = layers[i]!;
      const bary = new Map<Vertex, number>();
      for (const v of layer) {
        const neighbours = downward ? v.up : v.down;
        bary.set(v, neighbours.length === 0 ? v.order : neighbours.reduce((sum, n) => sum + n.order, 0) / neighbours.length);
      }
      // Stable sort: equal barycentres keep their current order.
      layer.sort((a, b) => bary.get(a)! - bary.get(b)! || a.order - b.order);
      layer.forEach((v, order) => (v.order = order));
    }
    const crossings = countAllCrossings(layers);
    if (crossings < bestCrossings) {
      bestCrossings = crossings;
      best = layers.map((layer) => [...layer]);
    }
  }
  best.forEach((layer) => layer.forEach((v, order) => (v.order = order)));
  return best;
}

function initialOrder(layers: Vertex[][]): void {
  const placed = new Set<Vertex>();
  const next = layers.map(() => 0);
  const visit = (root: Vertex) => {
    const stack = [root];
    while (stack.length > 0) {
      const v = stack.pop()!;
      if (placed.has(v)) continue;
      placed.add(v);
      v.order = next[v.layer]!++;
      for (let i = v.down.length - 1; i >= 0; i--) if (!placed.has(v.down[i]!)) stack.push(v.down[i]!);
    }
  };
  for (const layer of layers) for (const v of layer) if (v.up.length === 0) visit(v);
  for (const layer of layers) for (const v of layer) visit(v);
  for (const layer of layers) layer.sort((a, b) => a.order - b.order);
}

function countAllCrossings(layers: Vertex[][]): number {
  let total = 0;
  for (let i = 0; i + 1 < layers.length; i++) {
    const pairs: Array<[number, number]> = [];
    for (const v of layers[i]!) for (const w of v.down) pairs.push([v.order, w.order]);
    pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    // Crossings are inversions of the lower ends once sorted by the upper ends.
    for (let a = 0; a < pairs.length; a++) {
      for (let b = a + 1; b < pairs.length; b++) {
        if (pairs[a]![0] < pairs[b]![0] && pairs[a]![1] > pairs[b]![1]) total++;
      }
    }
  }
  return total;
}

/**
 * Gives each vertex a centre x: layers start packed and centred, then sweeps pull every vertex towards
 * the mean of its neighbours' centres. Each layer's placement is the closest one (least squares) that
 * keeps the order and the gaps, found by pool-adjacent-violators.
 */
function placeHorizontally(layers: Vertex[][]): void {
  const { nodeGap } = LAYOUT_METRICS;
  const widths = layers.map((layer) => layer.reduce((sum, v) => sum + v.room, 0) + nodeGap * Math.max(0, layer.length - 1));
  const widest = Math.max(0, ...widths);
  layers.forEach((layer, i) => {
    let left = (widest - widths[i]!) / 2;
    for (const v of layer) {
      v.cx = left + v.room / 2;
      left += v.room + nodeGap;
    }
  });
  for (let sweep = 0; sweep < PLACEMENT_SWEEPS; sweep++) {
    const downward = sweep % 2 === 0;
    const order = downward ? layers.map((_, i) => i) : layers.map((_, i) => i).reverse();
    for (const i of order) {
      const layer = layers[i]!;
      const desired = layer.map((v) => {
        // Downward sweeps follow the layer above, upward ones the layer below; both on the last sweeps.
        const neighbours = sweep >= PLACEMENT_SWEEPS - 2 ? [...v.up, ...v.down] : downward ? v.up : v.down;
        return neighbours.length === 0 ? v.cx : neighbours.reduce((sum, n) => sum + n.cx, 0) / neighbours.length;
      });
      const placed = closestOrderedPlacement(layer, desired);
      layer.forEach((v, k) => (v.cx = placed[k]!));
    }
  }
}

/**
 * Centres as close as possible (least squares) to `desired` such that each vertex sits at least its
 * half-width + gap + its neighbour's half-width right of its left neighbour.
 */
function closestOrderedPlacement(layer: Vertex[], desired: number[]): number[] {
  const { nodeGap } = LAYOUT_METRICS;
  // Subtracting each vertex's minimal offset from the first turns the gaps into "non-decreasing".
  const offsets: number[] = [];
  let offset = 0;
  layer.forEach((v, k) => {
    if (k > 0) offset += layer[k - 1]!.room / 2 + nodeGap + v.room / 2;
    offsets.push(offset);
  });
  const blocks: Array<{ sum: number; count: number }> = [];
  desired.forEach((d, k) => {
    blocks.push({ sum: d - offsets[k]!, count: 1 });
    while (blocks.length > 1) {
      const last = blocks[blocks.length - 1]!;
      const prev = blocks[blocks.length - 2]!;
      if (prev.sum / prev.count <= last.sum / last.count) break;
      prev.sum += last.sum;
      prev.count += last.count;
      blocks.pop();
    }
  });
  const out: number[] = [];
  for (const block of blocks) for (let i = 0; i < block.count; i++) out.push(block.sum / block.count + offsets[out.length]!);
  return out;
}

function edgePoints(
  source: string,
  target: string,
  vertices: Map<string, Vertex>,
  chains: Map<string, Vertex[]>,
  reversed: Set<string>,
  top: (layer: number) => number,
): Array<{ x: number; y: number }> {
  const { nodeHeight } = LAYOUT_METRICS;
  const s = vertices.get(source)!;
  if (source === target) {
    // A self-loop: out of the right side and back in.
    const right = s.cx + s.width / 2;
    const y = top(s.layer);
    return [
      { x: right, y: y + nodeHeight * 0.3 },
      { x: right + 24, y: y + nodeHeight * 0.3 },
      { x: right + 24, y: y + nodeHeight * 0.7 },
      { x: right, y: y + nodeHeight * 0.7 },
    ];
  }
  const key = `${source}\u0000${target}`;
  const flipped = reversed.has(key);
  const chain = flipped ? chains.get(`${target}\u0000${source}`) : chains.get(key);
  if (!chain) return [];
  const points: Array<{ x: number; y: number }> = [];
  chain.forEach((v, i) => {
    if (i === 0) points.push({ x: round(portX(v, chain[1]!, 'down')), y: top(v.layer) + nodeHeight });
    else if (i === chain.length - 1) points.push({ x: round(portX(v, chain[i - 1]!, 'up')), y: top(v.layer) });
    else {
      points.push({ x: v.cx, y: top(v.layer) });
      points.push({ x: v.cx, y: top(v.layer) + nodeHeight });
    }
  });
  return flipped ? points.reverse() : points;
}

/** Where an edge leaves or enters a node: spread along its side in the order of the other ends. */
function portX(v: Vertex, other: Vertex, side: 'up' | 'down'): number {
  const ends = side === 'down' ? v.down : v.up;
  if (ends.length <= 1) return v.cx;
  const sorted = [...ends].sort((a, b) => a.order - b.order);
  const index = sorted.indexOf(other);
  const spacing = Math.min(18, (v.width - 24) / (ends.length - 1));
  return v.cx + (index - (ends.length - 1) / 2) * spacing;
}

/** The text drawn on an edge: its action, or its condition. */
function edgeLabel(edge: { action?: string; condition?: string }): string | undefined {
  return edge.action ?? (edge.condition === undefined ? undefined : `if ${edge.condition}`);
}

/** The width src/graph/svg.ts gives a label (at most 28 characters are drawn). */
function labelWidth(label: string): number {
  return Math.min(label.length, 28) * 6.2 + 12 - LAYOUT_METRICS.nodeGap / 2;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
