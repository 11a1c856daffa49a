/**
 * `npm run bench:recovery`: what recovery (issue 12: heartbeats, the lease, watching, the orphan sweep)
 * costs Redis, against the same workers with recovery off (BullMQ alone: its stalled-job checks and lock
 * renewals). On a private Redis, commands/s (INFO stats total_commands_processed: the commands a script
 * runs count too) for one idle worker (the lease holder), three idle workers, and three workers holding
 * RECOVERY_ACTIVE (default 60) jobs whose nodes wait until the end. RECOVERY_WINDOW_S (default 10) per
 * measurement.
 */
import { Redis } from 'ioredis';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { SwitchyardClient } from '../src/client/client.js';
import { SwitchyardWorker } from '../src/executor/worker.js';
import { startLocalRedis } from '../src/local/redis-server.js';
import { createNodeKinds } from '../src/nodes/index.js';
import type { NodeKind } from '../src/types/node-kind.js';

const WINDOW_MS = Number(process.env.RECOVERY_WINDOW_S ?? 10) * 1000;
const ACTIVE = Number(process.env.RECOVERY_ACTIVE ?? 60);

let release!: () => void;
const held = new Promise<void>((resolve) => (release = resolve));
let started = 0;
const hold: NodeKind = {
  name: 'hold',
  reads: () => ({ context: [], outputs: [] }),
  run: () => {
    started++;
    return held.then(() => ({ output: 'done' }));
  },
};
const registry = new BlueprintRegistry(createNodeKinds().with(hold));
registry.add({ id: 'held', nodes: [{ id: 'h', uses: 'hold', params: {} }], edges: [] });

const redis = await startLocalRedis();
const admin = new Redis(redis.url);

/** Commands/s Redis processed over the window (less the one INFO each end reads). */
async function rate(): Promise<number> {
  const count = async () => Number(/total_commands_processed:(\d+)/.exec(await admin.info('stats'))![1]);
  const before = await count();
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
  return (await count() - before - 1) / (WINDOW_MS / 1000);
}

async function measure(recovery: boolean) {
  const prefix = `rc${recovery ? 'on' : 'off'}`;
  // drainTimeoutMs 0: closing hands the held nodes back at once.
  const start = () => new SwitchyardWorker({ redis: redis.url, prefix, queueName: prefix, kinds: registry.kinds, blueprints: registry, recovery: { enabled: recovery }, drainTimeoutMs: 0 });
  const workers = [start()];
  await workers[0]!.ready();
  await new Promise((resolve) => setTimeout(resolve, 1_000)); // past start-up
  const one = await rate();
  workers.push(start(), start());
  await Promise.all(workers.map((w) => w.ready()));
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const three = await rate();
  const client = new SwitchyardClient({ redis: redis.url, prefix, queueName: prefix, blueprints: registry });
  started = 0;
  await Promise.all(Array.from({ length: ACTIVE }, () => client.start('held')));
  // Every job fetched and its node running (a log of when that happens has no event to await).
  while (started < ACTIVE) await new Promise((resolve) => setTimeout(resolve, 100));
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const busy = await rate();
  await client.close();
  await Promise.all(workers.map((w) => w.close()));
  return { one, three, busy };
}

try {
  const off = await measure(false);
  const on = await measure(true);
  const line = (label: string, a: number, b: number) => console.log(`${label.padEnd(44)} ${a.toFixed(1).padStart(8)} ${b.toFixed(1).padStart(8)}`);
  console.log(`Redis commands/s (window ${WINDOW_MS / 1000} s)            ${'off'.padStart(8)} ${'on'.padStart(8)}`);
  line('one idle worker (the lease holder)', off.one, on.one);
  line('each further idle worker', (off.three - off.one) / 2, (on.three - on.one) / 2);
  line(`per active job (three workers, ${ACTIVE} jobs)`, (off.busy - off.three) / ACTIVE, (on.busy - on.three) / ACTIVE);
} finally {
  release();
  admin.disconnect();
  await redis.stop();
}
