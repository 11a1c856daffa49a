import { afterAll, describe, expect, it } from 'vitest';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { limitConcurrency } from '../../src/llm/limit.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import { openScope } from '../support/harness.js';
import { countedLimit, heldProvider } from '../support/held-llm.js';

describe('back-pressure from the LLM limit', () => {
  const scope = openScope();
  afterAll(() => scope.close());

  it('a worker whose LLM slots are taken leaves new runs to other workers', async () => {
    const blueprint = { id: 'ask', nodes: [{ id: 'q', uses: 'llm-process', params: { promptTemplate: 'question' } }], edges: [] };
    const held = heldProvider();
    // Worker A: one LLM slot, room for 10 jobs. Without back-pressure it would take every queued run.
    const counted = countedLimit(held.provider, 1);
    const registryA = new BlueprintRegistry(createNodeKinds({ llm: counted.provider }));
    registryA.add(blueprint);
    await scope.startWorker({ blueprints: registryA, concurrency: 10, workerId: 'A' });
    const client = scope.createClient({ blueprints: registryA });

    const runs = await Promise.all(Array.from({ length: 10 }, () => client.start('ask')));
    // A holds its one LLM slot (and one job waiting for it); it takes no further jobs.
    await counted.entered(2);

    const bCalled = held.arrived(); // the next request to reach the endpoint can only come from B
    const registryB = new BlueprintRegistry(createNodeKinds({ llm: limitConcurrency(held.provider, 10) }));
    registryB.add(blueprint);
    await scope.startWorker({ blueprints: registryB, concurrency: 10, workerId: 'B' });
    await bCalled;
    held.open();

    const views = await Promise.all(runs.map((run) => run.result({ timeoutMs: 20_000 })));
    expect(views.map((v) => v.status)).toEqual(Array(10).fill('completed'));
    const byWorker = views.map((v) => v.nodes.q!.worker);
    // A's slot was taken once it held one job; a job it fetched before it knew waited in its line.
    // Without back-pressure A would hold all ten.
    expect(byWorker.filter((w) => w === 'A').length).toBeLessThanOrEqual(3);
    expect(byWorker.filter((w) => w === 'B').length).toBeGreaterThanOrEqual(7);
  }, 30_000);
});
