/**
 * Issue 12's reproduction: a six-node chain, three of its nodes 250 ms sleeps. The recovery tests run 20-30
 * of it on two CLI workers and inject a fault mid-run.
 */
export const CHAIN6 = {
  id: 'chain6',
  nodes: [
    { id: 'a', uses: 'template', params: { template: 'a' } },
    { id: 's1', uses: 'sleep', params: { ms: 250 } },
    { id: 'b', uses: 'template', params: { template: 'b' } },
    { id: 's2', uses: 'sleep', params: { ms: 250 } },
    { id: 'c', uses: 'template', params: { template: 'c' } },
    { id: 's3', uses: 'sleep', params: { ms: 250 } },
  ],
  edges: [
    { source: 'a', target: 's1' },
    { source: 's1', target: 'b' },
    { source: 'b', target: 's2' },
    { source: 's2', target: 'c' },
    { source: 'c', target: 's3' },
  ],
};
