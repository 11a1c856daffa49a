/** Drawing blueprints: a layered layout and a standalone SVG of it. */
export { layoutBlueprint, LAYOUT_METRICS, type GraphLayout, type LaidOutEdge, type LaidOutNode, type LayoutInput } from './layout.js';
export { edgePath, escapeXml, labelPosition, renderSvg, STATUS_COLOURS, type RenderSvgOptions } from './svg.js';
