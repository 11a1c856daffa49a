import { NodeStatuses, type NodeStatus } from '../types/statuses.js';
import type { GraphLayout, LaidOutEdge, LaidOutNode } from './layout.js';

/** Fill, border and text colour of a node in each state (the dashboard's style.css uses the same). */
export const STATUS_COLOURS: Record<NodeStatus, { fill: string; stroke: string; text: string }> = {
  pending: { fill: '#f8f9fa', stroke: '#adb5bd', text: '#495057' },
  queued: { fill: '#e7f5ff', stroke: '#4dabf7', text: '#1864ab' },
  running: { fill: '#fff3bf', stroke: '#f08c00', text: '#7c4a03' },
  waiting: { fill: '#fff0f6', stroke: '#d6336c', text: '#a61e4d' },
  sleeping: { fill: '#e6fcf5', stroke: '#0ca678', text: '#087f5b' },
  done: { fill: '#ebfbee', stroke: '#2f9e44', text: '#1b5e20' },
  skipped: { fill: '#f1f3f5', stroke: '#ced4da', text: '#868e96' },
  failed: { fill: '#fff5f5', stroke: '#e03131', text: '#a61e1e' },
  cancelled: { fill: '#f3f0ff', stroke: '#7048e8', text: '#4c2d9e' },
};

/** A node drawn without a state (a blueprint rather than a run). */
const PLAIN = { fill: '#ffffff', stroke: '#495057', text: '#212529' };
const EDGE_COLOUR = '#868e96';
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
const LEGEND_HEIGHT = 36;
const TITLE_HEIGHT = 32;
/** How far along its first segment an edge label sits (0 at the source, 1 at the next point). */
const LABEL_AT = 0.7;

export interface RenderSvgOptions {
  /** Node id to state (pending, queued, running, done, skipped, failed, cancelled); adds a legend. */
  statuses?: Record<string, string>;
  /** Drawn above the graph and used as the SVG's accessible title. */
  title?: string;
}

/**
 * The layout as a standalone SVG document: colours are presentation attributes (no CSS), so any SVG
 * viewer or rasteriser draws it the same. Every text is escaped. With `statuses`, nodes are coloured by
 * state and a legend explains the colours; nodes without a known state are drawn as pending.
 */
export function renderSvg(layout: GraphLayout, options: RenderSvgOptions = {}): string {
  const { statuses, title } = options;
  const titleOffset = title === undefined ? 0 : TITLE_HEIGHT;
  const legendOffset = statuses === undefined ? 0 : LEGEND_HEIGHT;
  const legendWidth = statuses === undefined ? 0 : legendMinWidth();
  const width = Math.max(layout.width, legendWidth, title === undefined ? 0 : title.length * 8 + 48);
  const height = layout.height + titleOffset + legendOffset;
  const dx = round((width - layout.width) / 2);

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" font-family="${escapeXml(FONT)}">`,
  );
  parts.push(`<title>${escapeXml(title ?? 'Blueprint graph')}</title>`);
  parts.push(
    '<defs><marker id="sy-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">' +
      `<path d="M 0 0 L 10 5 L 0 10 z" fill="${EDGE_COLOUR}"/></marker></defs>`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  if (title !== undefined) {
    parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="600" fill="#212529">${escapeXml(title)}</text>`);
  }
  parts.push(`<g transform="translate(${dx} ${titleOffset})">`);
  for (const edge of layout.edges) parts.push(renderEdge(edge));
  for (const edge of layout.edges) {
    const label = renderEdgeLabel(edge);
    if (label) parts.push(label);
  }
  for (const node of layout.nodes) parts.push(renderNode(node, statuses === undefined ? undefined : (statuses[node.id] ?? 'pending')));
  parts.push('</g>');
  if (statuses !== undefined) parts.push(renderLegend(width, titleOffset + layout.height));
  parts.push('</svg>');
  return parts.join('\n');
}

/** A smooth path through the points: vertical tangents, so edges leave and enter nodes straight. */
export function edgePath(points: ReadonlyArray<{ x: number; y: number }>): string {
  if (points.length === 0) return '';
  const [first, ...rest] = points;
  let d = `M ${first!.x} ${first!.y}`;
  let prev = first!;
  for (const p of rest) {
    const bend = (p.y - prev.y) / 2;
    d += ` C ${prev.x} ${round(prev.y + bend)} ${p.x} ${round(p.y - bend)} ${p.x} ${p.y}`;
    prev = p;
  }
  return d;
}

/**
 * Where an edge's label goes: on its first segment, most of the way down. Edges fanning out of one node
 * (a router's actions) are far apart there, so their labels do not overlap.
 */
export function labelPosition(points: ReadonlyArray<{ x: number; y: number }>): { x: number; y: number } | undefined {
  if (points.length < 2) return undefined;
  const a = points[0]!;
  const b = points[1]!;
  // The point at t on the segment's cubic (control points straight below a and above b).
  const t = LABEL_AT;
  const alongX = 3 * (1 - t) * t ** 2 + t ** 3;
  const alongY = 1.5 * t * (1 - t) + t ** 3;
  return { x: round(a.x + (b.x - a.x) * alongX), y: round(a.y + (b.y - a.y) * alongY) };
}

function renderEdge(edge: LaidOutEdge): string {
  return `<path d="${edgePath(edge.points)}" fill="none" stroke="${EDGE_COLOUR}" stroke-width="1.5" marker-end="url(#sy-arrow)"/>`;
}

function renderEdgeLabel(edge: LaidOutEdge): string | undefined {
  if (edge.label === undefined) return undefined;
  const at = labelPosition(edge.points);
  if (!at) return undefined;
  const text = truncate(edge.label, 28);
  const width = round(text.length * 6.2 + 12);
  const full = text === edge.label ? '' : `<title>${escapeXml(edge.label)}</title>`;
  return (
    `<g>${full}<rect x="${round(at.x - width / 2)}" y="${at.y - 9}" width="${width}" height="18" rx="9" fill="#ffffff" stroke="#dee2e6"/>` +
    `<text x="${at.x}" y="${at.y + 4}" text-anchor="middle" font-size="11" fill="#495057">${escapeXml(text)}</text></g>`
  );
}

function renderNode(node: LaidOutNode, status: string | undefined): string {
  const colours = status === undefined ? PLAIN : (STATUS_COLOURS[status as NodeStatus] ?? STATUS_COLOURS.pending);
  const dashed = status === 'skipped' ? ' stroke-dasharray="5 3"' : '';
  const cx = node.x + node.width / 2;
  const maxChars = Math.max(4, Math.floor((node.width - 20) / 7.6));
  const label = status === undefined ? `${node.id} (${node.uses})` : `${node.id} (${node.uses}): ${status}`;
  return (
    `<g data-node-id="${escapeXml(node.id)}"${status === undefined ? '' : ` data-status="${escapeXml(status)}"`}>` +
    `<title>${escapeXml(label)}</title>` +
    `<rect x="${node.x}" y="${node.y}" width="${node.width}" height="${node.height}" rx="8" fill="${colours.fill}" stroke="${colours.stroke}" stroke-width="${status === 'running' ? 2.5 : 1.5}"${dashed}/>` +
    `<text x="${cx}" y="${node.y + 22}" text-anchor="middle" font-size="13" font-weight="600" fill="${colours.text}">${escapeXml(truncate(node.id, maxChars))}</text>` +
    `<text x="${cx}" y="${node.y + 39}" text-anchor="middle" font-size="11.5" fill="${status === undefined ? '#868e96' : colours.text}" fill-opacity="0.8">${escapeXml(truncate(node.uses, maxChars + 2))}</text>` +
    '</g>'
  );
}

function legendMinWidth(): number {
  return Object.keys(STATUS_COLOURS).reduce((sum, status) => sum + legendItemWidth(status), 0) + 24;
}

function legendItemWidth(status: string): number {
  return 22 + status.length * 7 + 14;
}

function renderLegend(width: number, top: number): string {
  const items = Object.values(NodeStatuses);
  const total = items.reduce((sum, status) => sum + legendItemWidth(status), 0);
  let x = round((width - total) / 2);
  const y = top + 12;
  const parts = ['<g aria-label="legend">'];
  for (const status of items) {
    const c = STATUS_COLOURS[status];
    const dashed = status === 'skipped' ? ' stroke-dasharray="3 2"' : '';
    parts.push(`<rect x="${x}" y="${y}" width="14" height="14" rx="3" fill="${c.fill}" stroke="${c.stroke}" stroke-width="1.5"${dashed}/>`);
    parts.push(`<text x="${x + 20}" y="${y + 11}" font-size="12" fill="#495057">${status}</text>`);
    x += legendItemWidth(status);
  }
  parts.push('</g>');
  return parts.join('');
}

/** Escapes text for XML content and attribute values. */
export function escapeXml(text: string): string {
  // Control characters are not allowed in XML at all, escaped or not.
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
