import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApi } from '../src/api/app.js';
import { compileGraph } from '../src/engine/graph.js';
import { silentLogger } from '../src/logger.js';
import { ErrorCodes, LimitExceededError, ValidationError } from '../src/errors.js';
import { runInMemory } from '../src/executor/memory-executor.js';
import { BlueprintRegistry, createNodeKinds } from '../src/index.js';
import { Limits } from '../src/types/limits.js';
import type { RunView } from '../src/types/run-view.js';
import { startHarness, type Harness } from './support/harness.js';

/**
 * The limits of src/types/limits.ts (README "Limits"): each is enforced with an error naming the limit
 * and the value, the same way by the in-memory executor and the distributed one.
 */
let h: Harness;

/** bp0 -> bp1 -> ... -> bp10 through subflow nodes: bp0's children nest exactly MAX_SUBFLOW_DEPTH deep. */
const depthChain = Array.from({ length: Limits.MAX_SUBFLOW_DEPTH + 1 }, (_, k) =>
  k === Limits.MAX_SUBFLOW_DEPTH
    ? { id: `depth${k}`, nodes: [{ id: 'leaf', uses: 'output', params: { template: 'bottom', outputKey: 'deep' } }] }
    : { id: `depth${k}`, nodes: [{ id: 'down', uses: 'subflow', params: { blueprintId: `depth${k + 1}`, outputs: { deep: 'deep' } } }] },
).reverse();

const big = (bytes: number) => 'a'.repeat(bytes);

beforeAll(async () => {
  h = await startHarness({
    workers: 1,
    blueprints: [
      ...depthChain,
      { id: 'big-output', nodes: [{ id: 'echo', uses: 'template', params: { template: '{{x}}', inputs: { x: 'x' } } }] },
      {
        id: 'context-grows',
        nodes: Array.from({ length: 6 }, (_, i) => ({ id: `w${i + 1}`, uses: 'output', params: { template: '{{x}}', inputs: { x: 'x' }, outputKey: `k${i + 1}` } })),
        edges: Array.from({ length: 5 }, (_, i) => ({ source: `w${i + 1}`, target: `w${i + 2}` })),
      },
    ],
  });
});
afterAll(() => h.close());

async function both(blueprintId: string, input: Record<string, unknown>): Promise<{ memory: RunView; distributed: RunView }> {
  const memory = await runInMemory(compileGraph(h.registry.get(blueprintId)!, h.kinds), { kinds: h.kinds, blueprints: h.registry, input });
  const distributed = await (await h.client.start(blueprintId, input)).result({ timeoutMs: 20_000 });
  return { memory, distributed };
}

const statuses = (v: RunView) => Object.fromEntries(Object.entries(v.nodes).map(([id, n]) => [id, n.status]));

describe('limits', () => {
  it('MAX_NODE_OUTPUT_BYTES: an output over it fails the node without retry, naming the limit and the size', async () => {
    const { memory, distributed } = await both('big-output', { x: big(Limits.MAX_NODE_OUTPUT_BYTES) });
    for (const run of [memory, distributed]) {
      expect(run.status).toBe('failed');
      expect(run.nodes.echo).toMatchObject({ status: 'failed', attempts: 1 });
      expect(run.error).toMatchObject({ code: ErrorCodes.LIMIT_EXCEEDED, nodeId: 'echo', retryable: false });
      expect(run.error!.message).toBe(`the node's output (bytes of JSON) is ${Limits.MAX_NODE_OUTPUT_BYTES + 2}, over the limit MAX_NODE_OUTPUT_BYTES (${Limits.MAX_NODE_OUTPUT_BYTES})`);
    }
    // Just under it is fine.
    const ok = await both('big-output', { x: big(Limits.MAX_NODE_OUTPUT_BYTES - 2) });
    expect([ok.memory.status, ok.distributed.status]).toEqual(['completed', 'completed']);
  });

  it('MAX_CONTEXT_BYTES: the write that takes the context over it fails its node, and nothing of it is applied', async () => {
    // Input 200,002 bytes; each node writes another 200,002: the fifth write would make 1,200,012.
    const { memory, distributed } = await both('context-grows', { x: big(200_000) });
    for (const run of [memory, distributed]) {
      expect(run.status).toBe('failed');
      expect(statuses(run)).toEqual({ w1: 'done', w2: 'done', w3: 'done', w4: 'done', w5: 'failed', w6: 'cancelled' });
      expect(run.error).toMatchObject({ code: ErrorCodes.LIMIT_EXCEEDED, nodeId: 'w5', retryable: false });
      expect(run.error!.message).toContain(`is 1200012, over the limit MAX_CONTEXT_BYTES (${Limits.MAX_CONTEXT_BYTES})`);
      expect(Object.keys(run.context).sort()).toEqual(['k1', 'k2', 'k3', 'k4', 'x']);
      expect(run.outputs.w5).toBeUndefined();
    }
  });

  it('MAX_CONTEXT_BYTES: an input over it is refused at start by both executors', async () => {
    const input = { x: big(Limits.MAX_CONTEXT_BYTES) };
    const message = `the run's input (bytes of JSON) is ${Limits.MAX_CONTEXT_BYTES + 2}, over the limit MAX_CONTEXT_BYTES (${Limits.MAX_CONTEXT_BYTES})`;
    await expect(h.client.start('big-output', input)).rejects.toThrow(message);
    await expect(h.client.start('big-output', input)).rejects.toBeInstanceOf(LimitExceededError);
    await expect(runInMemory(compileGraph(h.registry.get('big-output')!, h.kinds), { kinds: h.kinds, input })).rejects.toThrow(message);
  });

  it('MAX_CONTEXT_BYTES: the API answers an input over it with 413 LIMIT_EXCEEDED (when its body limit lets the input through)', async () => {
    const api = createApi({ client: h.client, blueprints: h.registry, auth: { mode: 'off' }, maxBodyBytes: 4 * 1024 * 1024, logger: silentLogger, dashboard: false });
    const body = JSON.stringify({ blueprintId: 'big-output', input: { x: big(Limits.MAX_CONTEXT_BYTES) } });
    const res = await api.fetch(new Request('http://local/runs', { method: 'POST', headers: { 'content-type': 'application/json' }, body }));
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      error: {
        code: 'LIMIT_EXCEEDED',
        message: `the run's input (bytes of JSON) is ${Limits.MAX_CONTEXT_BYTES + 2}, over the limit MAX_CONTEXT_BYTES (${Limits.MAX_CONTEXT_BYTES})`,
        details: { limit: 'MAX_CONTEXT_BYTES', value: Limits.MAX_CONTEXT_BYTES + 2, max: Limits.MAX_CONTEXT_BYTES },
      },
    });
    await api.close();
  });

  it('MAX_CONTEXT_BYTES is the same number in completeNode\'s Lua', () => {
    const lua = readFileSync(new URL('../src/store/lua/complete-node-4.lua', import.meta.url), 'utf8');
    expect(Number(/local MAX_CONTEXT_BYTES = (\d+)/.exec(lua)?.[1])).toBe(Limits.MAX_CONTEXT_BYTES);
  });

  it('MAX_NODES_PER_BLUEPRINT: validation names the limit and the count', () => {
    const chain = (n: number) => ({
      nodes: Array.from({ length: n }, (_, i) => ({ id: `n${i}`, uses: 'template', params: { template: 'x' } })),
      edges: Array.from({ length: n - 1 }, (_, i) => ({ source: `n${i}`, target: `n${i + 1}` })),
    });
    const registry = new BlueprintRegistry(createNodeKinds());
    expect(() => registry.add({ id: 'max', ...chain(Limits.MAX_NODES_PER_BLUEPRINT) })).not.toThrow();
    let error: unknown;
    try {
      registry.add({ id: 'over', ...chain(Limits.MAX_NODES_PER_BLUEPRINT + 1) });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues).toEqual([
      { file: '<inline>', path: '$.nodes', message: `a blueprint has ${Limits.MAX_NODES_PER_BLUEPRINT + 1} nodes, over the limit MAX_NODES_PER_BLUEPRINT (${Limits.MAX_NODES_PER_BLUEPRINT})` },
    ]);
  });

  it('MAX_SUBFLOW_DEPTH: validation refuses a blueprint whose subflows nest deeper', () => {
    const registry = new BlueprintRegistry(createNodeKinds());
    for (const bp of depthChain) registry.add(bp);
    expect(() =>
      registry.add({ id: 'too-deep', nodes: [{ id: 'down', uses: 'subflow', params: { blueprintId: 'depth0' } }] }),
    ).toThrow(`subflow depth ${Limits.MAX_SUBFLOW_DEPTH + 1} is over the limit MAX_SUBFLOW_DEPTH (${Limits.MAX_SUBFLOW_DEPTH}): too-deep -> depth0 -> depth1`);
  });

  it('MAX_SUBFLOW_DEPTH: a child run deeper than it is refused when it starts, in both executors', async () => {
    // At the limit: completes.
    const { memory, distributed } = await both('depth0', {});
    expect([memory.status, distributed.status]).toEqual(['completed', 'completed']);
    expect(distributed.context.deep).toBe('bottom');

    // The same blueprint run one level down (as a child run itself) would nest one deeper: refused.
    const graph = compileGraph(h.registry.get('depth0')!, h.kinds);
    const deeper = await runInMemory(graph, { kinds: h.kinds, blueprints: h.registry, subflowDepth: 1 });
    expect(deeper.status).toBe('failed');
    expect(deeper.error!.message).toContain(`the subflow depth of a child run of "depth10" is ${Limits.MAX_SUBFLOW_DEPTH + 1}, over the limit MAX_SUBFLOW_DEPTH`);

    // Distributed: the run gets a parent link (to a run that is not there) before its first node runs.
    const worker = h.workers[0]!;
    await worker.close();
    const run = await h.client.start('depth0', {});
    await h.redis.hset(`${h.prefix}:{${run.runId}}:state`, 'parent', JSON.stringify({ runId: 'ghost-parent', nodeId: 'n', version: 'v' }));
    h.workers[0] = await h.startWorker({ blueprints: h.registry, workerId: 'w-again' });
    const view = await run.result({ timeoutMs: 20_000 });
    expect(view.status).toBe('failed');
    expect(view.error!.message).toContain(`the subflow depth of a child run of "depth10" is ${Limits.MAX_SUBFLOW_DEPTH + 1}, over the limit MAX_SUBFLOW_DEPTH`);
  });
});
