import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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

/**
 * Switchyard as built in another checkout (BENCH_BASELINE=<dir>, with its own `npm ci`): its worker entry
 * and its client, so one invocation measures an earlier commit beside this one on the same machine and Redis.
 */
export async function switchyardBaselineEngine(dir: string, concurrency: number): Promise<Engine> {
  const root = resolve(dir);
  const load = <T>(path: string) => import(pathToFileURL(resolve(root, path)).href) as Promise<T>;
  const [{ BlueprintRegistry: Registry }, { SwitchyardClient: Client }, { createNodeKinds: kinds }] = await Promise.all([
    load<typeof import('../../src/blueprint/load.js')>('src/blueprint/load.ts'),
    load<typeof import('../../src/client/client.js')>('src/client/client.ts'),
    load<typeof import('../../src/nodes/index.js')>('src/nodes/index.ts'),
  ]);
  return {
    name: 'switchyard-baseline',
    concurrency,
    workerEntry: resolve(root, 'bench/engines/switchyard-worker.ts'),
    async createClient(config) {
      const registry = new Registry(kinds());
      for (const child of config.scenario.children) registry.add(child);
      registry.add(config.scenario.blueprint);
      const client = new Client({ redis: config.redisUrl, prefix: config.namespace, queueName: config.namespace, blueprints: registry });
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
