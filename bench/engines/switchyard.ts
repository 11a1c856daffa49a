import { fileURLToPath } from 'node:url';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { SwitchyardClient } from '../../src/client/client.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import type { Engine } from '../engine.js';

/** Switchyard at a given worker concurrency, driven through its client. */
export function switchyardEngine(name: string, concurrency: number): Engine {
  return {
    name,
    concurrency,
    workerEntry: fileURLToPath(new URL('./switchyard-worker.ts', import.meta.url)),
    async createClient(config) {
      const registry = new BlueprintRegistry(createNodeKinds());
      for (const child of config.scenario.children) registry.add(child);
      registry.add(config.scenario.blueprint);
      const client = new SwitchyardClient({ redis: config.redisUrl, prefix: config.namespace, queueName: config.namespace, blueprints: registry });
      return {
        start: async () => (await client.start(config.scenario.blueprint.id, config.scenario.input)).runId,
        async wait(runId) {
          const view = await client.result(runId, { timeoutMs: 300_000 });
          if (view.status !== 'completed') throw new Error(`run ${runId} ${view.status}: ${view.error?.message ?? ''}`);
        },
        close: () => client.close(),
      };
    },
  };
}
