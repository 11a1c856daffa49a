import type { Blueprint } from '../blueprint/schema.js';

/** Words Mermaid's flowchart grammar reads as keywords at the start of a statement (`end` closes a subgraph). */
const RESERVED = new Set(['end', 'graph', 'flowchart', 'subgraph', 'style', 'linkStyle', 'classDef', 'class', 'click', 'call', 'href', 'direction', 'default']);

/** Edge labels that need no quoting; anything else is quoted and escaped. */
const PLAIN_LABEL = /^[A-Za-z0-9_.:-][A-Za-z0-9_ .:-]*$/;

/** Mermaid entity codes for the characters that would end a quoted label or be read as HTML. */
function escapeLabel(text: string): string {
  return text.replace(/#/g, '#35;').replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;').replace(/\r?\n/g, ' ');
}

/**
 * The blueprint as a Mermaid flowchart: `graph TD`, one line per node `id["id<br/>uses"]`, one per edge
 * `a --> b` (labelled `-->|action|`, or with the condition when there is no action), and a dotted
 * `-.->|fallback|` line for each node's `config.fallback` that names another node.
 */
export function toMermaid(blueprint: Pick<Blueprint, 'nodes' | 'edges'>): string {
  // Node ids are letters, digits, "_" and "-", all fine in Mermaid ids, except the few keywords.
  const taken = new Set(blueprint.nodes.map((n) => n.id));
  const mermaidId = new Map<string, string>();
  for (const { id } of blueprint.nodes) {
    let safe = id;
    if (RESERVED.has(id)) {
      safe = `${id}_`;
      while (taken.has(safe)) safe += '_';
      taken.add(safe);
    }
    mermaidId.set(id, safe);
  }
  const ref = (id: string) => mermaidId.get(id) ?? id;

  const lines = ['graph TD'];
  for (const node of blueprint.nodes) {
    lines.push(`  ${ref(node.id)}["${escapeLabel(node.id)}<br/>${escapeLabel(node.uses)}"]`);
  }
  for (const edge of blueprint.edges ?? []) {
    const label = edge.action ?? (edge.condition === undefined ? undefined : `if ${edge.condition}`);
    const arrow = label === undefined ? '-->' : PLAIN_LABEL.test(label) ? `-->|${label}|` : `-->|"${escapeLabel(label)}"|`;
    lines.push(`  ${ref(edge.source)} ${arrow} ${ref(edge.target)}`);
  }
  for (const node of blueprint.nodes) {
    const fallback = node.config?.fallback;
    if (fallback !== undefined && mermaidId.has(fallback)) lines.push(`  ${ref(node.id)} -.->|fallback| ${ref(fallback)}`);
  }
  return lines.join('\n');
}
