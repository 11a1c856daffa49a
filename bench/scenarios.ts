import type { Scenario } from './engine.js';

/**
 * The benchmark graphs. Every node is a no-op-cost `template` (or a trivially cheap `route`), so what is
 * measured is each engine's own cost per node.
 */
const t = (id: string) => ({ id, uses: 'template', params: { template: id } });
const edge = (source: string, target: string, action?: string) => ({ source, target, ...(action ? { action } : {}) });
const range = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i));

const chain10: Scenario = {
  name: 'chain10',
  blueprint: { id: 'chain10', nodes: range(10, (i) => `n${i}`).map(t), edges: range(9, (i) => `n${i}`).map((s, i) => edge(s, `n${i + 1}`)) },
  children: [],
  input: { seed: 1 },
  nodeExecutions: 10,
};

const diamond: Scenario = {
  name: 'diamond',
  blueprint: {
    id: 'diamond',
    nodes: [t('fan'), ...range(8, (i) => `p${i}`).map(t), t('join'), t('end')],
    edges: [...range(8, (i) => `p${i}`).flatMap((p) => [edge('fan', p), edge(p, 'join')]), edge('join', 'end')],
  },
  children: [],
  input: { seed: 1 },
  nodeExecutions: 11,
};

const moderation: Scenario = {
  name: 'moderation',
  blueprint: {
    id: 'moderation',
    nodes: [
      t('check_a'), t('check_b'), t('check_c'),
      { id: 'router', uses: 'route', params: { rules: [], default: 'b2' } },
      t('b1'), t('b2'), t('b3'), t('b4'), t('log'),
    ],
    edges: [
      edge('check_a', 'router'), edge('check_b', 'router'), edge('check_c', 'router'),
      ...['b1', 'b2', 'b3', 'b4'].flatMap((b) => [edge('router', b, b), edge(b, 'log')]),
    ],
  },
  children: [],
  input: { seed: 1 },
  nodeExecutions: 6,
};

const wide50: Scenario = {
  name: 'wide50',
  blueprint: {
    id: 'wide50',
    nodes: [t('fan'), ...range(50, (i) => `w${i}`).map(t), t('join')],
    edges: range(50, (i) => `w${i}`).flatMap((w) => [edge('fan', w), edge(w, 'join')]),
  },
  children: [],
  input: { seed: 1 },
  nodeExecutions: 52,
};

const subflow: Scenario = {
  name: 'subflow',
  blueprint: {
    id: 'subflow_parent',
    nodes: [t('before'), { id: 'call', uses: 'subflow', params: { blueprintId: 'subflow_child' } }, t('after')],
    edges: [edge('before', 'call'), edge('call', 'after')],
  },
  children: [{ id: 'subflow_child', nodes: [t('c1'), t('c2'), t('c3')], edges: [edge('c1', 'c2'), edge('c2', 'c3')] }],
  input: { seed: 1 },
  nodeExecutions: 6,
};

export const SCENARIOS: Scenario[] = [chain10, diamond, moderation, wide50, subflow];
