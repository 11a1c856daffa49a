import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import { waitForRunEvents, type RunEvent } from '../../src/store/run-events.js';
import { openScope, type TestScope } from '../support/harness.js';
import { killStarted, startCli } from '../support/processes.js';

/**
 * Durability: a sleep parks in Redis (node `sleeping`, a `wake` time, a delayed wake job) and holds no
 * worker. Killing every worker process (SIGKILL, by pid) loses nothing: a worker started later wakes it.
 */
const NAP = {
  id: 'durable-nap',
  nodes: [
    { id: 'nap', uses: 'sleep', params: { duration: '3s' } },
    { id: 'after', uses: 'output', params: { template: 'rested' } },
  ],
  edges: [{ source: 'nap', target: 'after' }],
};

describe('a durable sleep survives killing every worker', () => {
  let scope: TestScope;
  let reader: Redis;
  let env: Record<string, string>;

  beforeAll(() => {
    scope = openScope();
    reader = scope.redis.duplicate();
    env = { REDIS_URL: inject('redisUrl'), SWITCHYARD_PREFIX: scope.prefix, SWITCHYARD_QUEUE: scope.prefix };
  });
  afterAll(async () => {
    await killStarted();
    reader.disconnect();
    await scope.close();
  });

  /** Blocks on the run's events (XREAD BLOCK) until one matches. */
  async function waitForEvent(stream: string, match: (e: RunEvent) => boolean): Promise<RunEvent> {
    let after: string | undefined;
    for (;;) {
      const events = await waitForRunEvents(reader, stream, after, 10_000);
      const found = events.find(match);
      if (found) return found;
      after = events.at(-1)?.id ?? after;
    }
  }

  it('a 3 s sleep: both workers killed while it sleeps, a new worker completes the run, the sleep runs once', async () => {
    const registry = new BlueprintRegistry(createNodeKinds());
    registry.add(NAP);
    const client = scope.createClient({ blueprints: registry });
    const workers = await Promise.all([1, 2].map(() => startCli(['worker', '--blueprints', 'workflows', '--lock-duration', '1000'], env, /worker ready/)));
    const run = await client.start(NAP.id);
    const events = client.store.keys.runKeys(run.runId).events;
    const slept = await waitForEvent(events, (e) => e.type === 'node.sleeping' && e.node === 'nap');
    const parked = await run.get();
    expect(parked!.nodes.nap).toMatchObject({ status: 'sleeping', attempts: 1, wakeAt: Number((slept as { wake: string }).wake) });
    // The state says why no job runs it: sleeping, with its wake time.
    expect(await scope.redis.hget(client.store.keys.runKeys(run.runId).state, 'nap.wake')).toBe((slept as { wake: string }).wake);

    for (const w of workers) w.child.kill('SIGKILL');
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([null, null]);

    const rescuer = await startCli(['worker', '--blueprints', 'workflows'], env, /worker ready/);
    const view = await run.result({ timeoutMs: 30_000 });
    expect(view.status).toBe('completed');
    expect(view.context.final_output).toBe('rested');
    expect(view.nodes.nap).toMatchObject({ status: 'done', attempts: 1 });
    // Woken no earlier than its wake time.
    expect(view.nodes.nap!.endedAt!).toBeGreaterThanOrEqual(Number((slept as { wake: string }).wake));
    rescuer.child.kill('SIGTERM');
    expect(await rescuer.exited).toBe(0);
  });
});
