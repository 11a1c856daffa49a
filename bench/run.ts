/**
 * `npm run bench`: Switchyard side by side with raw BullMQ and flowcraft (2.10.1 + @flowcraft/bullmq-adapter
 * 1.7.1) on the same Redis, in the same invocation. Not a test. See README "Performance".
 *
 * BENCH_RUNS (default 500) runs launched at once per scenario, BENCH_REPS (default 3) repetitions (medians
 * are reported), BENCH_SOAK_RUNS (default 20000; 0 skips) for the worker-RSS soak, BENCH_SCALE=0 skips the
 * 1/2/4-worker scaling run, BENCH_ONLY=chain10,diamond limits the scenarios, BENCH_ENGINES=switchyard,flowcraft
 * limits the engines, BENCH_RAW=0 skips raw BullMQ, BENCH_TTL=0, BENCH_REDIS_BENCHMARK=0 and BENCH_CLUSTER=0 (the
 * one-Redis vs 3-master-cluster scenario, bench/cluster.ts) skip those. BENCH_BASELINE=<dir> (a checkout of an earlier commit, after
 * its own `npm ci`) adds `switchyard-baseline` at the default concurrency, and `ratioVsBaseline` for
 * `switchyard`: before/after figures from one invocation.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startLocalRedis, type LocalRedis } from '../src/local/redis-server.js';
import type { Engine, Scenario, WorkerConfig, WorkerMessage } from './engine.js';
import { switchyardBaselineEngine, switchyardEngine } from './engines/switchyard.js';
import { SCENARIOS } from './scenarios.js';
import { runClusterScenario } from './cluster.js';
import { DEFAULT_CONCURRENCY } from '../src/executor/worker.js';
import { median, medianOf, percentile, round } from './stats.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 500);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const UNLOADED_RUNS = Number(process.env.BENCH_UNLOADED ?? 30);
const MONITOR_RUNS = 10;
const SOAK_RUNS = Number(process.env.BENCH_SOAK_RUNS ?? 20_000);
const SCALE = process.env.BENCH_SCALE !== '0';
const ONLY = process.env.BENCH_ONLY?.split(',');
const ENGINES = process.env.BENCH_ENGINES?.split(',');
const RAW = process.env.BENCH_RAW !== '0';
const BASELINE = process.env.BENCH_BASELINE;
const RESULTS = fileURLToPath(new URL('./results/latest.json', import.meta.url));
const RAW_WORKER = fileURLToPath(new URL('./engines/raw-worker.ts', import.meta.url));

interface Figures {
  runsPerSec?: number;
  nodesPerSec?: number;
  latencyP50Ms?: number;
  latencyP95Ms?: number;
  latencyP99Ms?: number;
  unloadedP50Ms?: number;
  unloadedP95Ms?: number;
  commandsPerNode?: number;
  roundTripsPerNode?: number;
  workerCpuSecPer1000Nodes?: number;
  redisBytesPerRun?: number;
  [key: string]: number | undefined;
}

let server: LocalRedis | undefined;
let redisUrl: string;
let admin = undefined as unknown as Redis;
const children = new Set<ChildProcess>();

async function main(): Promise<void> {
  redisUrl = process.env.REDIS_URL ?? (server = await startLocalRedis()).url;
  admin = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const engines: Engine[] = [];
  try {
    const { flowcraftEngine } = (await import(String('./engines/flowcraft.js'))) as { flowcraftEngine: Engine };
    engines.push(flowcraftEngine);
  } catch (err) {
    console.warn(`flowcraft engine unavailable: ${(err as Error).message}`);
  }
  // At flowcraft's concurrency, at 16, and at the default (64): jobs in flight are the knob for fast nodes.
  engines.push(switchyardEngine('switchyard-c5', 5), switchyardEngine('switchyard-c16', 16), switchyardEngine('switchyard', DEFAULT_CONCURRENCY));
  if (BASELINE) engines.push(await switchyardBaselineEngine(BASELINE, DEFAULT_CONCURRENCY));
  if (ENGINES) engines.splice(0, engines.length, ...engines.filter((e) => ENGINES.includes(e.name)));
  const scenarios = SCENARIOS.filter((s) => !ONLY || ONLY.includes(s.name));
  console.log(`bench: ${RUNS} runs at once, ${REPS} reps, Redis ${redisUrl}, ${cpus().length} cores\n`);

  const reps: Record<string, Record<string, Figures[]>> = {};
  const push = (scenario: string, engine: string, figures: Figures) => {
    ((reps[scenario] ??= {})[engine] ??= []).push(figures);
  };
  for (let rep = 1; rep <= REPS; rep++) {
    for (const scenario of scenarios) {
      if (RAW) for (const concurrency of [5, 16, DEFAULT_CONCURRENCY]) push(scenario.name, `raw-bullmq-c${concurrency}`, await measureRaw(scenario, concurrency, rep));
      for (const engine of engines) {
        if (scenario.name === 'subflow' && engine.supportsSubflow === false) continue;
        const figures = await measureEngine(engine, scenario, rep).catch((err: Error) => {
          console.warn(`  ${engine.name} ${scenario.name}: ${err.message}`);
          return undefined;
        });
        if (figures) push(scenario.name, engine.name, figures);
      }
      console.log(`rep ${rep}/${REPS} ${scenario.name} done`);
    }
  }

  const results: Record<string, Record<string, Figures>> = {};
  for (const [scenario, byEngine] of Object.entries(reps)) {
    results[scenario] = {};
    for (const [engine, list] of Object.entries(byEngine)) results[scenario][engine] = medianOf(list);
    addRatios(results[scenario]);
  }
  const extra: Record<string, unknown> = {};
  if (SOAK_RUNS > 0) extra.soak = await soak();
  if (process.env.BENCH_TTL !== '0') extra.ttl = await ttlReclaim();
  if (SCALE) extra.scale = await scale();
  if (process.env.BENCH_REDIS_BENCHMARK !== '0') extra.redisBenchmark = redisBenchmark();
  // One Redis vs a 3-master cluster with 3 queue shards (bench/cluster.ts): how the work divides.
  if (process.env.BENCH_CLUSTER !== '0') extra.cluster = await runClusterScenario();
  printTable(results);
  console.log(JSON.stringify(extra, null, 2));
  mkdirSync(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
  writeFileSync(RESULTS, JSON.stringify({ at: new Date().toISOString(), runs: RUNS, reps: REPS, cores: cpus().length, results, ...extra }, null, 2));
  console.log(`\nwrote ${RESULTS}`);
}

function addRatios(byEngine: Record<string, Figures>): void {
  const flowcraft = byEngine.flowcraft?.nodesPerSec;
  for (const [name, figures] of Object.entries(byEngine)) {
    if (name.startsWith('raw')) continue;
    const concurrency = name === 'switchyard' || name === 'switchyard-baseline' ? DEFAULT_CONCURRENCY : Number(/-c(\d+)$/.exec(name)?.[1] ?? 5);
    const raw = byEngine[`raw-bullmq-c${concurrency}`]?.nodesPerSec;
    if (flowcraft && figures.nodesPerSec) figures.ratioVsFlowcraft = round(figures.nodesPerSec / flowcraft);
    if (raw && figures.nodesPerSec) figures.ratioVsRaw = round(figures.nodesPerSec / raw);
    const baseline = byEngine['switchyard-baseline']?.nodesPerSec;
    if (name === 'switchyard' && baseline && figures.nodesPerSec) figures.ratioVsBaseline = round(figures.nodesPerSec / baseline);
  }
}

/** Spawns a worker process (tsx) and waits for its `ready`. */
async function spawnWorker(entry: string, config: WorkerConfig): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  await new Promise<void>((resolve, reject) => {
    child.on('message', (m: WorkerMessage) => m.type === 'ready' && resolve());
    child.once('exit', (code) => reject(new Error(`worker ${entry} exited (${code}) before it was ready`)));
  });
  return child;
}

function workerStats(child: ChildProcess): Promise<Extract<WorkerMessage, { type: 'stats' }>> {
  return new Promise((resolve) => {
    const onMessage = (m: WorkerMessage) => {
      if (m.type !== 'stats') return;
      child.off('message', onMessage);
      resolve(m);
    };
    child.on('message', onMessage);
    child.send({ type: 'stats' });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function commandsProcessed(): Promise<number> {
  const info = await admin.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
}

async function usedMemory(): Promise<number> {
  const info = await admin.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

async function clientAddresses(): Promise<Set<string>> {
  const list = (await admin.client('LIST')) as string;
  return new Set(list.split('\n').map((line) => /addr=(\S+)/.exec(line)?.[1]).filter((a): a is string => !!a));
}

async function measureRaw(scenario: Scenario, concurrency: number, rep: number): Promise<Figures> {
  const namespace = `raw${concurrency}_${scenario.name}_${rep}`;
  const total = RUNS * scenario.nodeExecutions;
  const child = await spawnWorker(RAW_WORKER, { redisUrl, namespace, concurrency, scenario });
  /** A queue filled with `total` no-op jobs. */
  const fill = async (name: string) => {
    const queue = new Queue(name, { connection: admin, prefix: `{${name}}` });
    for (let i = 0; i < total; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, total - i) }, () => ({ name: 'noop', data: { n: 1 }, opts: { removeOnComplete: true } })));
    }
    return queue;
  };
  /** Has the worker process drain the queue; resolves with the ms it took. */
  const drain = (name: string) => {
    const drained = new Promise<number>((resolve) => {
      const onMessage = (m: { type: string; ms: number }) => m.type === 'drained' && (child.off('message', onMessage), resolve(m.ms));
      child.on('message', onMessage);
    });
    child.send({ type: 'go', queue: name, expect: total });
    return drained;
  };
  const clear = async (queue: Queue) => {
    await queue.obliterate({ force: true });
    await queue.close();
  };
  // Warm-up batch, unmeasured, as every engine gets a warm-up burst.
  const warm = await fill(`${namespace}_warm`);
  await drain(warm.name);
  await clear(warm);
  const queue = await fill(namespace);
  const before = await workerStats(child);
  const commands = await commandsProcessed();
  const ms = await drain(namespace);
  const after = await workerStats(child);
  const commandsPerNode = ((await commandsProcessed()) - commands) / total;
  await clear(queue);
  await stop(child);
  return {
    nodesPerSec: total / (ms / 1000),
    commandsPerNode,
    workerCpuSecPer1000Nodes: cpuSeconds(before, after) / total * 1000,
  };
}

function cpuSeconds(before: { cpuUserMicros: number; cpuSystemMicros: number }, after: { cpuUserMicros: number; cpuSystemMicros: number }): number {
  return (after.cpuUserMicros - before.cpuUserMicros + after.cpuSystemMicros - before.cpuSystemMicros) / 1e6;
}

async function measureEngine(engine: Engine, scenario: Scenario, rep: number): Promise<Figures> {
  const namespace = `${engine.name.replace(/[^a-z0-9]/gi, '')}_${scenario.name}_${rep}`;
  const config: WorkerConfig = { redisUrl, namespace, concurrency: engine.concurrency, scenario };
  const known = await clientAddresses();
  const child = await spawnWorker(engine.workerEntry, config);
  const workerAddresses = [...(await clientAddresses())].filter((a) => !known.has(a));
  const client = await engine.createClient(config);
  try {
    const once = async () => {
      const started = performance.now();
      await client.wait(await client.start());
      return performance.now() - started;
    };
    for (let i = 0; i < 10; i++) await once(); // warm-up: JIT, connections, caches
    const unloaded: number[] = [];
    for (let i = 0; i < UNLOADED_RUNS; i++) unloaded.push(await once());
    // Warm-up burst: the measured path itself (runs in flight at once: JIT of the concurrent code paths,
    // connection buffers, Redis allocations), unmeasured. A first burst is up to a third slower for every
    // engine, and would otherwise weigh most on the fastest, whose measured burst is shortest.
    await Promise.all(Array.from({ length: RUNS }, once));

    const memoryBefore = await usedMemory();
    const statsBefore = await workerStats(child);
    const commandsBefore = await commandsProcessed();
    const startedAt = performance.now();
    const latencies = await Promise.all(Array.from({ length: RUNS }, once));
    const seconds = (performance.now() - startedAt) / 1000;
    const commands = (await commandsProcessed()) - commandsBefore;
    const statsAfter = await workerStats(child);
    const memoryAfter = await usedMemory();
    const nodes = RUNS * scenario.nodeExecutions;
    const roundTripsPerNode = await monitorSample(workerAddresses, once, scenario);
    return {
      runsPerSec: RUNS / seconds,
      nodesPerSec: nodes / seconds,
      latencyP50Ms: percentile(latencies, 50),
      latencyP95Ms: percentile(latencies, 95),
      latencyP99Ms: percentile(latencies, 99),
      unloadedP50Ms: median(unloaded),
      unloadedP95Ms: percentile(unloaded, 95),
      commandsPerNode: commands / nodes,
      roundTripsPerNode,
      workerCpuSecPer1000Nodes: (cpuSeconds(statsBefore, statsAfter) / nodes) * 1000,
      redisBytesPerRun: (memoryAfter - memoryBefore) / RUNS,
    };
  } finally {
    await client.close();
    await stop(child);
  }
}

/**
 * Top-level commands the worker process sends per node execution, seen with MONITOR over a few runs
 * (one at a time). Commands inside Lua scripts are not top level; a MULTI..EXEC block counts once.
 * Blocking waits for the next job (BZPOPMIN) are left out: they are idle time, not work.
 */
async function monitorSample(workerAddresses: string[], once: () => Promise<number>, scenario: Scenario): Promise<number> {
  const addresses = new Set(workerAddresses);
  const monitor = await admin.monitor();
  monitor.on('error', (err: Error) => console.warn(`monitor: ${err.message}`));
  let count = 0;
  let inMulti = false;
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (!addresses.has(source)) return;
    const command = String(args[0]).toLowerCase();
    if (command === 'bzpopmin') return;
    if (command === 'multi') inMulti = true;
    if (command === 'exec') inMulti = false;
    if (!inMulti || command === 'multi') count++;
  });
  for (let i = 0; i < MONITOR_RUNS; i++) await once();
  monitor.disconnect();
  return count / (MONITOR_RUNS * scenario.nodeExecutions);
}

/** Worker RSS after 1,000 and after SOAK_RUNS runs of chain10 (500 in flight). */
async function soak(): Promise<Record<string, number>> {
  const scenario = SCENARIOS.find((s) => s.name === 'chain10')!;
  const engine = switchyardEngine('switchyard', DEFAULT_CONCURRENCY);
  const config: WorkerConfig = { redisUrl, namespace: 'soak', concurrency: DEFAULT_CONCURRENCY, scenario };
  const child = await spawnWorker(engine.workerEntry, config);
  const client = await engine.createClient(config);
  const samples: Record<string, number> = {};
  let done = 0;
  let next = 0;
  const lane = async () => {
    while (next < SOAK_RUNS) {
      next++;
      await client.wait(await client.start());
      done++;
      if (done === 1000) samples.rssAt1000RunsMb = (await workerStats(child)).rssBytes / 2 ** 20;
    }
  };
  const startedAt = performance.now();
  await Promise.all(Array.from({ length: 500 }, lane));
  samples[`rssAt${SOAK_RUNS}RunsMb`] = (await workerStats(child)).rssBytes / 2 ** 20;
  samples.rssGrowthPercent = ((samples[`rssAt${SOAK_RUNS}RunsMb`]! - samples.rssAt1000RunsMb!) / samples.rssAt1000RunsMb!) * 100;
  samples.soakNodesPerSec = (SOAK_RUNS * scenario.nodeExecutions) / ((performance.now() - startedAt) / 1000);
  await client.close();
  await stop(child);
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, round(v, 1)!]));
}

/**
 * Redis memory one finished chain10 run holds (MEMORY USAGE of each of its keys, over 500 runs), and that
 * its keys are gone once their (2 s) TTL has passed. used_memory deltas are not used here: BullMQ's own
 * event stream grows meanwhile and would be counted against the runs.
 */
async function ttlReclaim(): Promise<Record<string, number>> {
  const scenario = SCENARIOS.find((s) => s.name === 'chain10')!;
  const namespace = 'ttl';
  const config: WorkerConfig = { redisUrl, namespace, concurrency: DEFAULT_CONCURRENCY, scenario };
  const engine = switchyardEngine('switchyard', DEFAULT_CONCURRENCY);
  const child = await spawnWorker(engine.workerEntry, config);
  const { BlueprintRegistry } = await import('../src/blueprint/load.js');
  const { SwitchyardClient } = await import('../src/client/client.js');
  const { createNodeKinds } = await import('../src/nodes/index.js');
  const registry = new BlueprintRegistry(createNodeKinds());
  registry.add(scenario.blueprint);
  const client = new SwitchyardClient({ redis: redisUrl, prefix: namespace, queueName: namespace, blueprints: registry, runTtlSeconds: 2 });
  const handles = await Promise.all(Array.from({ length: 500 }, () => client.start('chain10', {})));
  await Promise.all(handles.map((h) => h.result()));
  const keys = await admin.keys(`${namespace}:{*`);
  let bytes = 0;
  for (const key of keys) bytes += Number(await admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
  await new Promise((resolve) => setTimeout(resolve, 4000)); // a benchmark may wait for the clock: the TTL is the point
  const keysLeft = (await admin.keys(`${namespace}:{*`)).length;
  await client.close();
  await stop(child);
  return { bytesPerFinishedRun: round(bytes / 500, 0)!, runKeysHeld: keys.length, runKeysAfterTtl: keysLeft };
}

/** chain10 throughput with 1, 2 and 4 Switchyard worker processes, and Redis commands/s at each. */
async function scale(): Promise<Array<Record<string, number>>> {
  const scenario = SCENARIOS.find((s) => s.name === 'chain10')!;
  const out: Array<Record<string, number>> = [];
  for (const processes of [1, 2, 4]) {
    const engine = switchyardEngine('switchyard', DEFAULT_CONCURRENCY);
    const config: WorkerConfig = { redisUrl, namespace: `scale${processes}`, concurrency: DEFAULT_CONCURRENCY, scenario };
    const workers = await Promise.all(Array.from({ length: processes }, () => spawnWorker(engine.workerEntry, config)));
    const client = await engine.createClient(config);
    const once = async () => client.wait(await client.start());
    for (let i = 0; i < 20; i++) await once();
    const commandsBefore = await commandsProcessed();
    const startedAt = performance.now();
    await Promise.all(Array.from({ length: RUNS * 2 }, once));
    const seconds = (performance.now() - startedAt) / 1000;
    const commands = (await commandsProcessed()) - commandsBefore;
    out.push({ workerProcesses: processes, nodesPerSec: round((RUNS * 2 * scenario.nodeExecutions) / seconds, 0)!, redisCommandsPerSec: round(commands / seconds, 0)! });
    await client.close();
    await Promise.all(workers.map(stop));
  }
  return out;
}

/** This machine's Redis ceiling for simple commands, for the scale estimate. */
function redisBenchmark(): Record<string, number> | undefined {
  try {
    const port = new URL(redisUrl).port || '6379';
    const output = execFileSync('redis-benchmark', ['-p', port, '-q', '-n', '200000', '-c', '50', '-t', 'set,get,incr'], { encoding: 'utf8' });
    const figures: Record<string, number> = {};
    for (const match of output.matchAll(/(\w+): ([\d.]+) requests per second/g)) figures[`${match[1]}PerSec`] = Number(match[2]);
    return figures;
  } catch {
    return undefined;
  }
}

function printTable(results: Record<string, Record<string, Figures>>): void {
  const columns: Array<[keyof Figures, string]> = [
    ['nodesPerSec', 'nodes/s'], ['runsPerSec', 'runs/s'], ['ratioVsFlowcraft', 'x flowcraft'], ['ratioVsRaw', 'x raw'],
    ['ratioVsBaseline', 'x baseline'], ['latencyP50Ms', 'p50 ms'], ['latencyP99Ms', 'p99 ms'], ['unloadedP50Ms', 'idle p50 ms'], ['commandsPerNode', 'cmds/node'],
    ['roundTripsPerNode', 'RT/node'], ['workerCpuSecPer1000Nodes', 'cpu s/1k'], ['redisBytesPerRun', 'B/run'],
  ];
  for (const [scenario, byEngine] of Object.entries(results)) {
    console.log(`\n${scenario}`);
    console.log(['engine'.padEnd(20), ...columns.map(([, label]) => label.padStart(11))].join(''));
    for (const [engine, figures] of Object.entries(byEngine)) {
      console.log([engine.padEnd(20), ...columns.map(([key]) => String(round(figures[key], key === 'nodesPerSec' || key === 'redisBytesPerRun' ? 0 : 2) ?? '-').padStart(11))].join(''));
    }
  }
}

try {
  await main();
} finally {
  await Promise.all([...children].map(stop));
  admin?.disconnect();
  await server?.stop();
}
