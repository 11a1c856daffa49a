import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { openScope, type TestScope } from './support/harness.js';
import { killStarted, startCli } from './support/processes.js';
import { CHAIN6 } from './support/chain6.js';

/**
 * Issue 12, point 1, on a Redis Cluster with 3 queue shards: a worker process SIGKILLed mid-run is judged
 * dead by its closed connection (its subscription is on one of the masters; the watcher reads every
 * master's CLIENT LIST), not after deadAfterMs of silence, and every run completes on the other worker.
 */

let dir: string;
let registry: BlueprintRegistry;
let scope: TestScope | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sy-recovery-cluster-'));
  writeFileSync(join(dir, 'chain6.json'), JSON.stringify(CHAIN6));
  registry = await BlueprintRegistry.load([dir], createNodeKinds());
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await killStarted();
  await scope?.close();
  scope = undefined;
});

describe('recovery on a Redis Cluster', () => {
  it('a worker SIGKILLed mid-run is judged dead by its closed connection; every run completes on the other', async () => {
    scope = openScope();
    const env = {
      REDIS_URL: '',
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: new URL(inject('redisUrl')).port,
      REDIS_CLUSTER: 'true',
      SWITCHYARD_QUEUE_SHARDS: '3',
      SWITCHYARD_PREFIX: scope.prefix,
      SWITCHYARD_QUEUE: scope.prefix,
      SWITCHYARD_LOG_LEVEL: 'info',
    };
    const [doomed, survivor] = await Promise.all([1, 2].map(() => startCli(['worker', '--blueprints', dir, '--concurrency', '8'], env, /worker ready/)));
    const client = scope.createClient({ blueprints: registry, queueShards: 3 });
    const runs = await Promise.all(Array.from({ length: 20 }, () => client.start('chain6')));
    const waiting = runs.map((run) => run.result({ timeoutMs: 60_000 }));
    // Kill it once it runs something: a node started on it (its worker id holds its pid).
    const doomedPid = doomed!.child.pid!;
    await new Promise<void>((resolve) => {
      const check = async () => {
        const views = await Promise.all(runs.map((run) => client.get(run.runId)));
        if (views.some((v) => Object.values(v?.nodes ?? {}).some((n) => n.status === 'running' && n.worker?.includes(`-${doomedPid}-`)))) return resolve();
        setTimeout(() => void check(), 20); // run state has no event per worker to await
      };
      void check();
    });
    process.kill(doomedPid, 'SIGKILL');
    const views = await Promise.all(waiting);
    expect(views.map((v) => v.status)).toEqual(runs.map(() => 'completed'));
    expect(survivor!.log()).toMatch(/a worker is dead.*its connection to Redis closed|its connection to Redis closed.*a worker is dead/);
  }, 90_000);
});
