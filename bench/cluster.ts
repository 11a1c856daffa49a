/**
 * The cluster scenario of `npm run bench` (alone: `npm run bench:cluster`): one Redis with one queue shard
 * against a private 3-master Redis Cluster with 1 and with 3 queue shards, on this machine. A client and a worker
 * (default concurrency) in this process run BENCH_CLUSTER_RUNS (default 1,000) runs of each graph, 300 in
 * flight; then, per master, the share of Redis commands (INFO commandstats, commands inside scripts
 * included), commands and µs of Redis CPU (INFO cpu) per node execution. Both setups share the same two
 * cores, so throughput cannot grow here: what shows is whether the work divides over the masters.
 * BENCH_CLUSTER_ONLY=chain10 limits the graphs.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis } from 'ioredis';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { SwitchyardClient } from '../src/client/client.js';
import { SwitchyardWorker } from '../src/executor/worker.js';
import { startLocalRedisCluster } from '../src/local/redis-cluster.js';
import { startLocalRedis } from '../src/local/redis-server.js';
import { createNodeKinds } from '../src/nodes/index.js';
import type { RedisClient } from '../src/types/redis-client.js';
import { SCENARIOS } from './scenarios.js';

const RUNS = Number(process.env.BENCH_CLUSTER_RUNS ?? 1000);
const IN_FLIGHT = 300;
const ONLY = process.env.BENCH_CLUSTER_ONLY?.split(',') ?? ['chain10', 'moderation'];
const RESULTS = fileURLToPath(new URL('./results/cluster.json', import.meta.url));

/** One master's figures over the measured runs. */
export interface MasterFigures {
  master: string;
  /** Share of all masters' commands, %. */
  commandShare: number;
  commandsPerNode: number;
  /** µs of this master's CPU (user + sys) per node execution. */
  cpuMicrosPerNode: number;
}

export interface ClusterRow {
  setup: 'one Redis, 1 shard' | '3-master cluster, 1 shard' | '3-master cluster, 3 shards';
  scenario: string;
  nodesPerSec: number;
  masters: MasterFigures[];
}

async function masterStats(node: Redis): Promise<{ calls: number; cpu: number }> {
  const [stats, cpu] = await Promise.all([node.info('commandstats'), node.info('cpu')]);
  const calls = [...stats.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  const seconds = Number(/used_cpu_user:([\d.]+)/.exec(cpu)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(cpu)?.[1]);
  return { calls, cpu: seconds };
}

/** Runs `RUNS` runs of the scenario on the connection and measures every master. */
async function measure(setup: ClusterRow['setup'], connect: () => RedisClient, masters: Redis[], queueShards: number): Promise<ClusterRow[]> {
  const rows: ClusterRow[] = [];
  for (const scenario of SCENARIOS.filter((s) => ONLY.includes(s.name) && s.children.length === 0)) {
    const registry = new BlueprintRegistry(createNodeKinds());
    registry.add(scenario.blueprint);
    const prefix = `bc${scenario.name}${queueShards}`;
    const [clientRedis, workerRedis] = [connect(), connect()];
    const client = new SwitchyardClient({ redis: clientRedis, prefix, queueName: prefix, queueShards, blueprints: registry });
    const worker = new SwitchyardWorker({ redis: workerRedis, prefix, queueName: prefix, queueShards, kinds: registry.kinds, blueprints: registry });
    await worker.ready();
    const runOne = async () => (await client.start(scenario.blueprint.id, scenario.input)).result({ timeoutMs: 120_000 });
    for (let i = 0; i < 50; i++) await runOne(); // warm up (scripts loaded, graphs compiled)
    await Promise.all(masters.map((m) => m.config('RESETSTAT')));
    const before = await Promise.all(masters.map(masterStats));
    const t0 = performance.now();
    let started = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (started < RUNS) {
          started++;
          const view = await runOne();
          if (view.status !== 'completed') throw new Error(`run ${view.runId} ${view.status}`);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const after = await Promise.all(masters.map(masterStats));
    const nodes = RUNS * scenario.nodeExecutions;
    const calls = after.map((a, i) => a.calls - before[i]!.calls);
    const total = calls.reduce((s, c) => s + c, 0);
    rows.push({
      setup,
      scenario: scenario.name,
      nodesPerSec: Math.round(nodes / seconds),
      masters: masters.map((m, i) => ({
        master: `${m.options.host}:${m.options.port}`,
        commandShare: Math.round((1000 * calls[i]!) / total) / 10,
        commandsPerNode: Math.round((10 * calls[i]!) / nodes) / 10,
        cpuMicrosPerNode: Math.round((1e6 * (after[i]!.cpu - before[i]!.cpu)) / nodes),
      })),
    });
    await worker.close();
    await client.close();
    await Promise.all([clientRedis, workerRedis].map((r) => r.quit().catch(() => undefined)));
  }
  return rows;
}

/** Runs both setups and prints one table; returns the rows (also written to bench/results/cluster.json). */
export async function runClusterScenario(): Promise<ClusterRow[]> {
  const rows: ClusterRow[] = [];
  const single = await startLocalRedis();
  try {
    const admin = new Redis(single.url);
    rows.push(...(await measure('one Redis, 1 shard', () => new Redis(single.url, { maxRetriesPerRequest: null }), [admin], 1)));
    admin.disconnect();
  } finally {
    await single.stop();
  }
  const cluster = await startLocalRedisCluster({ masters: 3 });
  try {
    const admins = cluster.urls.map((url) => new Redis(url));
    const connect = () => new Cluster([{ host: '127.0.0.1', port: cluster.ports[0]! }], { redisOptions: { maxRetriesPerRequest: null } }) as unknown as RedisClient;
    // One queue shard first: the starting point (run state spreads, the whole queue on one master).
    rows.push(...(await measure('3-master cluster, 1 shard', connect, admins, 1)));
    rows.push(...(await measure('3-master cluster, 3 shards', connect, admins, 3)));
    admins.forEach((a) => a.disconnect());
  } finally {
    await cluster.stop();
  }
  console.log(`\ncluster scenario: ${RUNS} runs, ${IN_FLIGHT} in flight, one worker (concurrency 64) and the client in one process`);
  console.log('| setup | scenario | node exec/s | master | share of commands | Redis cmds / node | Redis CPU µs / node |');
  console.log('|---|---|---:|---|---:|---:|---:|');
  for (const row of rows) {
    for (const [i, m] of row.masters.entries()) {
      console.log(`| ${i === 0 ? row.setup : ''} | ${i === 0 ? row.scenario : ''} | ${i === 0 ? row.nodesPerSec.toLocaleString('en-US') : ''} | ${m.master} | ${m.commandShare} % | ${m.commandsPerNode} | ${m.cpuMicrosPerNode} |`);
    }
  }
  mkdirSync(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
  writeFileSync(RESULTS, JSON.stringify({ runs: RUNS, inFlight: IN_FLIGHT, rows }, null, 2) + '\n');
  return rows;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runClusterScenario().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
