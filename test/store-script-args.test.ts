import { describe, expect, it } from 'vitest';
import { StoreKeys } from '../src/store/keys.js';
import { encodeCompleteNode, encodeStartNode, encodeTopology, type TopologyNode } from '../src/store/script-args.js';
import { decodeCancelRun, decodeCompleteNode, decodeStartNode } from '../src/store/script-replies.js';

/** The run scripts' argument encoder and reply decoder, without Redis (the scripts' contract headers are the spec). */
const none = { context: [], outputs: [] } as const;
const node = (id: string, targets: number[], inDegree: number, extra: Partial<TopologyNode> = {}): TopologyNode => ({
  id,
  targets,
  inDegree,
  joinAny: false,
  needs: none,
  conditional: false,
  ...extra,
});
// a -> b, a -> c, b -> d, c -> d; d is an 'any' join reading a's output.
const diamond = [node('a', [1, 2], 0), node('b', [3], 1), node('c', [3], 1), node('d', [], 2, { joinAny: true, needs: { context: [], outputs: ['a'] } })];
const keys = new StoreKeys('p');

describe('encodeTopology', () => {
  it('stores the topology 1-based, as the scripts read it', () => {
    const { topology, topologyJson } = encodeTopology(diamond);
    expect(topology).toEqual({ ids: ['a', 'b', 'c', 'd'], any: [0, 0, 0, 1], indeg: [0, 1, 1, 2], out: [[2, 3], [4], [4], []], needs: [[[], []], [[], []], [[], []], [[], ['a']]] });
    expect(JSON.parse(topologyJson)).toEqual(topology);
  });

  it("describes a node's direct targets, and every node a skip can reach when an edge can be left untaken", () => {
    const plain = encodeTopology(diamond).nodes[0]!;
    expect(plain.needs).toBe('');
    expect(plain.targets).toEqual([2, 2, 3, 2, 2, 'b', 1, '0', '', 1, 4, 3, 'c', 1, '0', '', 1, 4]);
    const conditional = encodeTopology([{ ...diamond[0]!, conditional: true }, ...diamond.slice(1)]).nodes[0]!;
    expect(conditional.targets).toEqual([2, 2, 3, 3, 2, 'b', 1, '0', '', 1, 4, 3, 'c', 1, '0', '', 1, 4, 4, 'd', 2, '1', '[[],["a"]]', 0]);
  });
});

describe('script calls', () => {
  const [a, , , d] = encodeTopology(diamond).nodes;
  it('start a node: KEYS, the shared ARGV head, then the node and its siblings', () => {
    const call = encodeStartNode(keys, 'r1', { id: 'd', index: 3, lua: d! }, 'w1', 'start', [{ id: 'a', lua: a! }]);
    expect(call.slice(0, 4)).toEqual(['p:{r1}:state', 'p:{r1}:ctx', 'p:{r1}:out', 'p:{r1}:events']);
    expect(call[4]).toBe('r1');
    expect(call.slice(6)).toEqual(['p:{r1}:ended', 'p:aborts', 'd', 4, 'w1', 'start', '[[],["a"]]', 'a', '']);
  });

  it('complete a node: result, taken flags, claim, topology part, then context writes', () => {
    const call = encodeCompleteNode(keys, 'r1', { id: 'a', index: 0, lua: a! }, { output: { x: 1 }, action: 'go', context: { k: 'v', gone: undefined } }, [true, false], {
      workerId: 'w1',
      max: 2,
    });
    expect(call.slice(8)).toEqual(['a', 1, '{"x":1}', '10', 'go', '', 'w1', 2, ...a!.targets, 'k', '"v"']);
  });
});

describe('script replies', () => {
  it('a start: the node and its siblings, reads decoded by their needs', () => {
    const needs = { context: ['k', 'absent'], outputs: '*' } as const;
    const reply = ['run', 'v1', 'bp', 1, ['"v"', null], ['a', '1'], ['run', 's', 2, [], [], 'done', 't', 'x,y', [], []]];
    expect(decodeStartNode(reply, { needs }, [{ id: 's', needs: none }])).toEqual({
      kind: 'run',
      version: 'v1',
      blueprintId: 'bp',
      attempt: 1,
      context: { k: 'v' },
      outputs: { a: 1 },
      siblings: [
        { kind: 'run', nodeId: 's', attempt: 2, context: {}, outputs: {} },
        { kind: 'done', nodeId: 't', readied: ['x', 'y'] },
      ],
    });
    expect(decodeStartNode(['ended', 'cancelled', '{"runId":"p","nodeId":"n","version":"v"}'], { needs }, [])).toEqual({
      kind: 'ended',
      runStatus: 'cancelled',
      parent: { runId: 'p', nodeId: 'n', version: 'v' },
    });
    expect(decodeStartNode(['skip', 'node pending'], { needs }, [])).toEqual({ kind: 'skip', reason: 'node pending' });
  });

  it('a completion, with claimed nodes', () => {
    expect(decodeCompleteNode(['ok', 'running', '', 'b,c', 'b', 1, ['"v"'], []], () => ({ context: ['k'], outputs: [] }))).toEqual({
      kind: 'ok',
      runStatus: 'running',
      ready: ['b', 'c'],
      claimed: [{ nodeId: 'b', attempt: 1, context: { k: 'v' }, outputs: {} }],
    });
    expect(decodeCompleteNode(['duplicate', 'running', ''], undefined)).toEqual({ kind: 'duplicate', nodeStatus: 'running', ready: [], claimed: [] });
    // A resent completion: what the first call left queued, and what it claimed for this worker.
    expect(decodeCompleteNode(['duplicate', 'done', 'c', 'b', 1, ['"v"'], []], () => ({ context: ['k'], outputs: [] }))).toEqual({
      kind: 'duplicate',
      nodeStatus: 'done',
      ready: ['c'],
      claimed: [{ nodeId: 'b', attempt: 1, context: { k: 'v' }, outputs: {} }],
    });
    expect(decodeCompleteNode(['stale', 'cancelled', ''], undefined)).toEqual({ kind: 'stale', runStatus: 'cancelled' });
  });

  it('a cancellation', () => {
    expect(decodeCancelRun(['cancelled', '', 'c1', 'c2'])).toEqual({ outcome: 'cancelled', ending: { children: ['c1', 'c2'] } });
    expect(decodeCancelRun(['missing'])).toEqual({ outcome: 'missing' });
  });
});
