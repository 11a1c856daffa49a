import { Redis } from 'ioredis';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import { SwitchyardWorker } from '../../src/executor/worker.js';
import { reportReady, serveStats, workerConfig } from './ipc.js';

const config = workerConfig();
const registry = new BlueprintRegistry(createNodeKinds());
for (const child of config.scenario.children) registry.add(child);
registry.add(config.scenario.blueprint);
const worker = new SwitchyardWorker({
  redis: new Redis(config.redisUrl, { maxRetriesPerRequest: null }),
  prefix: config.namespace,
  queueName: config.namespace,
  kinds: registry.kinds,
  blueprints: registry,
  concurrency: config.concurrency,
});
await worker.ready();
serveStats(() => worker.close());
reportReady();
