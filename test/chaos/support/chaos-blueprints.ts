/**
 * Seeded blueprints for the chaos suite, every node a `chaos-step` (or a `route` / `subflow`), in the
 * shapes issue 12 names: chains, diamonds, routers (exclusive branches joined by dead-path elimination),
 * `any` joins, subflows, retries, and random DAGs. Outputs are deterministic: nodes read predecessors'
 * outputs only behind `all` joins (an `any` join only watches them), so the in-memory executor's final
 * state is the oracle whatever the order of execution.
 */

/** A small seeded PRNG (mulberry32): the same seed gives the same blueprints and inputs. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Node {
  id: string;
  uses: string;
  params: Record<string, unknown>;
  config?: Record<string, unknown>;
}
interface Edge {
  source: string;
  target: string;
  action?: string;
  condition?: string;
}
export interface ChaosBlueprint {
  id: string;
  nodes: Node[];
  edges: Edge[];
}

export const SHAPES = ['chain', 'diamond', 'router', 'any-join', 'subflow', 'retries', 'random'] as const;
export type Shape = (typeof SHAPES)[number];

/** The child blueprint subflow nodes call (registered once per scenario). */
export const CHILD_BLUEPRINT: ChaosBlueprint = {
  id: 'chaos-child',
  nodes: [
    { id: 'c1', uses: 'chaos-step', params: { value: 'child-1', ms: 120 } },
    { id: 'c2', uses: 'chaos-step', params: { value: 'child-2', preds: ['c1'], ms: 120, key: 'childResult' } },
  ],
  edges: [{ source: 'c1', target: 'c2' }],
};

/** Generates `count` blueprints cycling through the shapes, ids `<prefix>-<i>-<shape>`. */
export function generateBlueprints(seed: number, count: number, prefix = 'chaos'): Array<{ blueprint: ChaosBlueprint; shape: Shape }> {
  const rand = prng(seed);
  const int = (min: number, max: number) => min + Math.floor(rand() * (max - min + 1));
  const ms = () => int(40, 300);
  const step = (id: string, extra: Record<string, unknown> = {}, config?: Record<string, unknown>): Node => ({
    id,
    uses: 'chaos-step',
    params: { value: `${id}-${int(0, 999)}`, ms: ms(), ...extra },
    ...(config ? { config } : {}),
  });
  const out: Array<{ blueprint: ChaosBlueprint; shape: Shape }> = [];
  for (let i = 0; i < count; i++) {
    const shape = SHAPES[i % SHAPES.length]!;
    const id = `${prefix}-${i}-${shape}`;
    const nodes: Node[] = [];
    const edges: Edge[] = [];
    switch (shape) {
      case 'chain':
      case 'retries': {
        const n = int(3, 7);
        for (let k = 0; k < n; k++) {
          // Planned failures stay below maxRetries, so a re-execution after a fault (which counts as an
          // attempt) cannot turn a success into a failure.
          const flaky = shape === 'retries' && rand() < 0.5;
          nodes.push(step(`s${k}`, { preds: k ? [`s${k - 1}`] : [], ...(flaky ? { failTimes: 1 } : {}), ...(k === n - 1 ? { key: 'result' } : {}) },
            flaky ? { maxRetries: 3, retryDelay: 50 } : undefined));
          if (k) edges.push({ source: `s${k - 1}`, target: `s${k}` });
        }
        break;
      }
      case 'diamond': {
        const width = int(2, 5);
        nodes.push(step('top'));
        const mids = Array.from({ length: width }, (_, k) => `m${k}`);
        for (const m of mids) {
          nodes.push(step(m, { preds: ['top'] }));
          edges.push({ source: 'top', target: m });
        }
        nodes.push(step('join', { preds: mids, key: 'result' }));
        for (const m of mids) edges.push({ source: m, target: 'join' });
        break;
      }
      case 'router': {
        nodes.push(step('pre'));
        nodes.push({ id: 'route', uses: 'route', params: { rules: [{ when: 'context.x > 6', action: 'high' }, { when: 'context.x > 3', action: 'mid' }], default: 'low' } });
        edges.push({ source: 'pre', target: 'route' });
        const branches = ['high', 'mid', 'low'];
        for (const b of branches) {
          nodes.push(step(`b_${b}`, { preds: ['pre'] }));
          edges.push({ source: 'route', target: `b_${b}`, action: b });
          nodes.push(step(`b2_${b}`, { preds: [`b_${b}`] }));
          edges.push({ source: `b_${b}`, target: `b2_${b}` });
        }
        nodes.push(step('merge', { preds: branches.map((b) => `b2_${b}`), key: 'result' }));
        for (const b of branches) edges.push({ source: `b2_${b}`, target: 'merge' });
        break;
      }
      case 'any-join': {
        const width = int(2, 4);
        nodes.push(step('top'));
        const mids = Array.from({ length: width }, (_, k) => `m${k}`);
        for (const m of mids) {
          nodes.push(step(m));
          edges.push({ source: 'top', target: m });
        }
        nodes.push(step('first', { watch: mids }, { joinStrategy: 'any' }));
        for (const m of mids) edges.push({ source: m, target: 'first' });
        // After the `any` join, an `all` join that waits for every branch too.
        nodes.push(step('last', { preds: ['first', ...mids], key: 'result' }));
        edges.push({ source: 'first', target: 'last' });
        for (const m of mids) edges.push({ source: m, target: 'last' });
        break;
      }
      case 'subflow': {
        nodes.push(step('pre', { key: 'seed' }));
        nodes.push({ id: 'sub', uses: 'subflow', params: { blueprintId: CHILD_BLUEPRINT.id, inputs: { seed: 'seed' }, outputs: { fromChild: 'childResult' } } });
        nodes.push(step('post', { preds: ['sub'], key: 'result' }));
        edges.push({ source: 'pre', target: 'sub' }, { source: 'sub', target: 'post' });
        break;
      }
      case 'random': {
        const n = int(4, 12);
        for (let k = 0; k < n; k++) {
          const sources = k === 0 ? [] : [...new Set(Array.from({ length: int(1, Math.min(3, k)) }, () => int(0, k - 1)))];
          const join = sources.length > 1 && rand() < 0.3 ? 'any' : 'all';
          const preds = sources.map((s) => `n${s}`);
          nodes.push(step(`n${k}`, join === 'any' ? { watch: preds } : { preds }, join === 'any' ? { joinStrategy: 'any' } : undefined));
          for (const s of sources) {
            const condition = rand() < 0.25 ? `context.x > ${int(0, 9)}` : undefined;
            edges.push({ source: `n${s}`, target: `n${k}`, ...(condition ? { condition } : {}) });
          }
        }
        break;
      }
    }
    out.push({ blueprint: { id, nodes, edges }, shape });
  }
  return out;
}
