/**
 * `npm run bench:profile -- <scenario> [runs]`: where a Switchyard node execution spends its time.
 * Runs one scenario (default chain10, 2,000 runs, 300 in flight) against a private Redis with one worker
 * process under `node --cpu-prof`, then prints: throughput, CPU seconds of Redis / client / worker and
 * the cores each kept busy, Redis commands and microseconds per node execution (INFO commandstats;
 * script time includes the commands inside it), and the worker's hottest functions.
 * PROFILE_CONCURRENCY (default: the worker's, 64) sets the worker's concurrency, PROFILE_IN_FLIGHT (300) the runs kept
 * in flight, PROFILE_CPU=0 skips the CPU profile, PROFILE_TOP (20) the number of functions listed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startLocalRedis } from '../src/local/redis-server.js';
import type { WorkerMessage } from './engine.js';
import { switchyardEngine } from './engines/switchyard.js';
import { SCENARIOS } from './scenarios.js';
import { DEFAULT_CONCURRENCY } from '../src/executor/worker.js';

const scenario = SCENARIOS.find((s) => s.name === (process.argv[2] ?? 'chain10'));
if (!scenario) throw new Error(`unknown scenario; choose ${SCENARIOS.map((s) => s.name).join(', ')}`);
const RUNS = Number(process.argv[3] ?? 2000);
const CONCURRENCY = Number(process.env.PROFILE_CONCURRENCY ?? DEFAULT_CONCURRENCY);
const IN_FLIGHT = Number(process.env.PROFILE_IN_FLIGHT ?? 300);
const CPU_PROF = process.env.PROFILE_CPU !== '0';
const profDir = mkdtempSync(join(tmpdir(), 'switchyard-prof-'));
const redis = await startLocalRedis();
const engine = switchyardEngine('switchyard', CONCURRENCY);
const config = { redisUrl: redis.url, namespace: 'prof', concurrency: CONCURRENCY, scenario };
const profArgs = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
const child = spawn(process.execPath, [...profArgs, '--import', 'tsx', engine.workerEntry, JSON.stringify(config)], {
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const stats = () =>
  new Promise<Extract<WorkerMessage, { type: 'stats' }>>((resolve) => {
    const onMessage = (m: WorkerMessage) => m.type === 'stats' && (child.off('message', onMessage), resolve(m));
    child.on('message', onMessage);
    child.send({ type: 'stats' });
  });
try {
  await new Promise<void>((resolve) => child.on('message', (m: WorkerMessage) => m.type === 'ready' && resolve()));
  const client = await engine.createClient(config);
  const admin = new Redis(redis.url);
  for (let i = 0; i < 20; i++) await client.wait(await client.start());
  await admin.config('RESETSTAT');
  const redisCpu = async () => {
    const info = await admin.info('cpu');
    return Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
  };
  const [redis0, client0, worker0, t0] = [await redisCpu(), process.cpuUsage(), await stats(), performance.now()];
  let started = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (started < RUNS) {
      started++;
      await client.wait(await client.start());
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  const [redis1, client1, worker1] = [await redisCpu(), process.cpuUsage(client0), await stats()];
  const nodes = RUNS * scenario.nodeExecutions;
  const workerCpu = (worker1.cpuUserMicros - worker0.cpuUserMicros + worker1.cpuSystemMicros - worker0.cpuSystemMicros) / 1e6;
  console.log(`${scenario.name}: ${RUNS} runs, ${(nodes / seconds).toFixed(0)} node executions/s`);
  const clientCpu = (client1.user + client1.system) / 1e6;
  console.log(`CPU seconds: redis ${(redis1 - redis0).toFixed(2)}, client ${clientCpu.toFixed(2)}, worker ${workerCpu.toFixed(2)} (${((workerCpu / nodes) * 1000).toFixed(3)} s per 1,000 nodes)`);
  const cores = (s: number) => (s / seconds).toFixed(2);
  console.log(`cores busy: redis ${cores(redis1 - redis0)}, client ${cores(clientCpu)}, worker ${cores(workerCpu)}, total ${cores(redis1 - redis0 + clientCpu + workerCpu)} of ${availableParallelism()}`);
  console.log('\nRedis commands per node execution (calls, microseconds):');
  const rows = [...(await admin.info('commandstats')).matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g)]
    .map((m) => ({ command: m[1]!, calls: Number(m[2]) / nodes, usec: Number(m[3]) / nodes }))
    .sort((a, b) => b.usec - a.usec);
  for (const row of rows.slice(0, 12)) console.log(`  ${row.command.padEnd(16)} ${row.calls.toFixed(2).padStart(6)} ${row.usec.toFixed(1).padStart(8)} us`);
  admin.disconnect();
  await client.close();
} finally {
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  await redis.stop();
}
printHotFunctions();

function printHotFunctions(): void {
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return;
  const profile = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)!.callFrame;
    const where = frame.url.replace(/.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|bench)\//, '$1/');
    const key = `${frame.functionName || '(anonymous)'} ${where}${where ? `:${frame.lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0));
    total += profile.timeDeltas[i] ?? 0;
  });
  console.log(`\nworker CPU profile (${profDir}), self time:`);
  for (const [key, time] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.PROFILE_TOP ?? 20))) console.log(`  ${((time / total) * 100).toFixed(1).padStart(5)}% ${key}`);
}
