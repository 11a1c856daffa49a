// Draws a blueprint's layout (from the API: src/graph/layout.ts) as inline SVG. Colours come from
// style.css by each node's data-status, so a live update only changes attributes.
import { s } from './util.js';

const GLYPHS = { pending: '', queued: '…', running: '●', done: '✓', skipped: '↷', failed: '✕', cancelled: '⊘' };
let markerSeq = 0;

/** A smooth path through the points (vertical tangents), as src/graph/svg.ts draws it. */
function edgePath(points) {
  if (points.length === 0) return '';
  let d = `M ${points[0].x} ${points[0].y}`;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    const bend = (b.y - a.y) / 2;
    d += ` C ${a.x} ${a.y + bend} ${b.x} ${b.y - bend} ${b.x} ${b.y}`;
  }
  return d;
}

/** On the first segment, most of the way down (as src/graph/svg.ts places it). */
function labelPosition(points) {
  if (points.length < 2) return undefined;
  const [a, b] = points;
  const t = 0.7;
  const alongX = 3 * (1 - t) * t ** 2 + t ** 3;
  const alongY = 1.5 * t * (1 - t) + t ** 3;
  return { x: a.x + (b.x - a.x) * alongX, y: a.y + (b.y - a.y) * alongY };
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text;
}

/**
 * The graph as an `<svg>`. With `onSelect`, nodes are buttons (focusable, Enter/Space or click calls
 * `onSelect(nodeId)`); `statuses` (node id → state) colours them.
 */
export function drawGraph(layout, { statuses, onSelect, label = 'Blueprint graph' } = {}) {
  const markerId = `arrow-${++markerSeq}`;
  const svg = s('svg', {
    class: 'graph',
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    width: layout.width,
    height: layout.height,
    role: 'group',
    'aria-label': label,
  });
  svg.append(
    s('defs', {}, s('marker', { id: markerId, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow-head' }))),
  );
  const edges = s('g', { class: 'edges', 'aria-hidden': 'true' });
  const labels = s('g', { class: 'edge-labels', 'aria-hidden': 'true' });
  for (const edge of layout.edges) {
    edges.append(s('path', { class: 'edge', d: edgePath(edge.points), 'marker-end': `url(#${markerId})`, 'data-source': edge.source, 'data-target': edge.target }));
    const at = edge.label === undefined ? undefined : labelPosition(edge.points);
    if (at) {
      const text = truncate(edge.label, 28);
      const width = text.length * 6.2 + 12;
      labels.append(
        s('g', { class: 'edge-label', 'data-source': edge.source, 'data-target': edge.target },
          s('title', {}, edge.label),
          s('rect', { x: at.x - width / 2, y: at.y - 9, width, height: 18, rx: 9 }),
          s('text', { x: at.x, y: at.y + 4, 'text-anchor': 'middle' }, text)),
      );
    }
  }
  svg.append(edges, labels);
  const nodes = s('g', { class: 'nodes' });
  for (const node of layout.nodes) {
    const maxChars = Math.max(4, Math.floor((node.width - 28) / 7.6));
    const cx = node.x + node.width / 2;
    const g = s('g', {
      class: onSelect ? 'node interactive' : 'node',
      'data-node-id': node.id,
      'data-max-chars': maxChars + 2,
      'data-status': statuses ? (statuses[node.id] ?? 'pending') : undefined,
      role: onSelect ? 'button' : undefined,
      tabindex: onSelect ? 0 : undefined,
    });
    g.append(
      s('title', {}, ''),
      s('rect', { class: 'frame', x: node.x, y: node.y, width: node.width, height: node.height, rx: 8 }),
      s('text', { class: 'node-id', x: cx, y: node.y + 22, 'text-anchor': 'middle' }, truncate(node.id, maxChars)),
      s('text', { class: 'node-uses', x: cx, y: node.y + 39, 'text-anchor': 'middle' }, truncate(node.uses, maxChars + 2)),
      s('text', { class: 'node-glyph', x: node.x + node.width - 12, y: node.y + 16, 'text-anchor': 'middle', 'aria-hidden': 'true' }, ''),
    );
    if (onSelect) {
      g.addEventListener('click', () => onSelect(node.id));
      g.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          onSelect(node.id);
        }
      });
    }
    nodes.append(g);
  }
  svg.append(nodes);
  const uses = new Map(layout.nodes.map((n) => [n.id, n.uses]));
  svg.__uses = uses;
  if (statuses) setStatuses(svg, statuses);
  else for (const g of svg.querySelectorAll('g.node')) describe(g, uses.get(g.dataset.nodeId), undefined);
  return svg;
}

/**
 * Shows how far nodes with child runs are (a map's children done, a loop's iterations) in place of their
 * kind, and in their description; `labels` maps node id to `{ text, short }` (short: on the node), a node
 * without one shows its kind again.
 */
export function setProgress(svg, labels) {
  const uses = svg.__uses ?? new Map();
  for (const g of svg.querySelectorAll('g.node')) {
    const id = g.dataset.nodeId;
    const label = labels[id];
    if ((g.dataset.progress ?? '') === (label?.text ?? '')) continue;
    g.dataset.progress = label?.text ?? '';
    const kind = uses.get(id) ?? '';
    g.querySelector('.node-uses').textContent = truncate(label ? label.short : kind, Number(g.dataset.maxChars) || 12);
    describe(g, kind, g.dataset.status);
  }
}

/** Sets each node's state (and the edges' look: taken, or dead once their target was skipped). */
export function setStatuses(svg, statuses) {
  const uses = svg.__uses ?? new Map();
  for (const g of svg.querySelectorAll('g.node')) {
    const id = g.dataset.nodeId;
    const status = statuses[id] ?? 'pending';
    if (g.dataset.status !== status || !g.hasAttribute('aria-label')) {
      g.dataset.status = status;
      g.querySelector('.node-glyph').textContent = GLYPHS[status] ?? '';
      describe(g, uses.get(id), status);
    }
  }
  for (const el of svg.querySelectorAll('.edge, .edge-label')) {
    const from = statuses[el.dataset.source];
    const to = statuses[el.dataset.target];
    const state = to === 'skipped' || (from === 'skipped' && to !== 'done') ? 'dead' : from === 'done' && to && to !== 'pending' ? 'taken' : 'idle';
    el.setAttribute('data-state', state);
  }
}

function describe(g, uses, status) {
  const id = g.dataset.nodeId;
  const progress = g.dataset.progress ? `, ${g.dataset.progress}` : '';
  const text = `${id} (${uses ?? 'node'})${status ? `: ${status}` : ''}${progress}`;
  g.setAttribute('aria-label', g.getAttribute('role') === 'button' ? `${text}. Show details` : text);
  g.querySelector('title').textContent = text;
}
