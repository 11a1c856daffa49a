/**
 * Smoke test of the flowcraft engine adapter: `npx tsx bench/engines/flowcraft-smoke.ts`.
 *
 * Starts a private redis, and for each inline scenario spawns one flowcraft worker process (as the
 * orchestrator does), runs 20 runs through the engine client, checks from the run's state hash that the
 * expected nodes (and only those) ran, prints runs/s, then stops the worker and redis.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startLocalRedis, type LocalRedis } from '../../src/local/redis-server.js';
import type { Scenario, WorkerConfig, WorkerMessage } from '../engine.js';
import { flowcraftCaveats, flowcraftEngine } from './flowcraft.js';

const RUNS = 20;
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

type Bp = Scenario['blueprint'];
const t = (id: string, extra: Record<string, unknown> = {}) => ({ id, uses: 'template', params: { template: `node ${id}`, ...extra } });
const e = (source: string, target: string, action?: string) => (action ? { source, target, action } : { source, target });

function chain10(): Scenario {
  const ids = Array.from({ length: 10 }, (_, i) => `n${i + 1}`);
  const blueprint: Bp = { id: 'smoke-chain10', nodes: ids.map((id) => t(id)), edges: ids.slice(1).map((id, i) => e(ids[i]!, id)) };
  return { name: 'chain10', blueprint, children: [], input: { topic: 'smoke' }, nodeExecutions: 10 };
}

function diamond(): Scenario {
  const mids = Array.from({ length: 8 }, (_, i) => `m${i + 1}`);
  const blueprint: Bp = {
    id: 'smoke-diamond',
    nodes: [t('start'), ...mids.map((id) => t(id)), t('join'), t('end')],
    edges: [...mids.map((m) => e('start', m)), ...mids.map((m) => e(m, 'join')), e('join', 'end')],
  };
  return { name: 'diamond', blueprint, children: [], input: { topic: 'smoke' }, nodeExecutions: 11 };
}

/** 3 parallel checks -> router (returns action b2) -> 4 action edges -> join -> end. */
function moderation(): Scenario {
  const checks = ['c1', 'c2', 'c3'];
  const branches = ['b1', 'b2', 'b3', 'b4'];
  const blueprint: Bp = {
    id: 'smoke-moderation',
    nodes: [...checks.map((id) => t(id)), t('router', { action: 'b2' }), ...branches.map((id) => t(id)), t('join'), t('end')],
    edges: [
      ...checks.map((c) => e(c, 'router')),
      ...branches.map((b) => e('router', b, b)),
      ...branches.map((b) => e(b, 'join')),
      e('join', 'end'),
    ],
  };
  return { name: 'moderation', blueprint, children: [], input: { text: 'hello' }, nodeExecutions: 3 + 1 + 1 + 2 };
}

/** a -> sub (child: x -> y -> z) -> b. */
function subflow(): Scenario {
  const child: Bp = { id: 'smoke-child', nodes: [t('x'), t('y'), t('z')], edges: [e('x', 'y'), e('y', 'z')] };
  const blueprint: Bp = {
    id: 'smoke-parent',
    nodes: [t('a'), { id: 'sub', uses: 'subflow', params: { blueprintId: child.id } }, t('b')],
    edges: [e('a', 'sub'), e('sub', 'b')],
  };
  return { name: 'subflow', blueprint, children: [child], input: { topic: 'smoke' }, nodeExecutions: 3 + 3 };
}

/** Parent-blueprint nodes expected to have run (flowcraft keeps `_outputs.<node>` in workflow:state:<runId>). */
const expectedParentNodes: Record<string, string[]> = {
  chain10: Array.from({ length: 10 }, (_, i) => `n${i + 1}`),
  diamond: ['start', ...Array.from({ length: 8 }, (_, i) => `m${i + 1}`), 'join', 'end'],
  moderation: ['c1', 'c2', 'c3', 'router', 'b2', 'join', 'end'],
  subflow: ['a', 'sub', 'b'],
};

interface Worker {
  child: ChildProcess;
  pid: number;
  stats(): Promise<Extract<WorkerMessage, { type: 'stats' }>>;
}

async function spawnWorker(config: WorkerConfig): Promise<Worker> {
  const child = spawn(process.execPath, ['--import', 'tsx', flowcraftEngine.workerEntry, JSON.stringify(config)], {
    cwd: REPO_ROOT,
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  const pid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('worker not ready within 20 s')), 20_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`worker exited before ready (code ${code}, signal ${signal})`));
    });
    child.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve(m.pid);
      }
    });
  });
  return {
    child,
    pid,
    stats: () =>
      new Promise((resolve) => {
        const on = (m: WorkerMessage) => {
          if (m.type === 'stats') {
            child.off('message', on);
            resolve(m);
          }
        };
        child.on('message', on);
        child.send({ type: 'stats' });
      }),
  };
}

async function stopWorker(worker: Worker): Promise<void> {
  const { child, pid } = worker;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(pid, 'SIGTERM');
  const timer = setTimeout(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 5000);
  await exited;
  clearTimeout(timer);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

async function runScenario(redis: LocalRedis, inspect: Redis, scenario: Scenario): Promise<void> {
  const config: WorkerConfig = {
    redisUrl: redis.url,
    namespace: `smoke-flowcraft-${scenario.name}`,
    concurrency: flowcraftEngine.concurrency,
    scenario,
  };
  const worker = await spawnWorker(config);
  const client = await flowcraftEngine.createClient(config);
  try {
    // One warm-up run, checked node by node.
    const first = await client.start();
    await withTimeout(client.wait(first), 15_000, `${scenario.name} warm-up run`);
    const ran = (await inspect.hkeys(`workflow:state:${first}`))
      .filter((k) => k.startsWith('_outputs.'))
      .map((k) => k.slice('_outputs.'.length))
      .sort();
    const expected = [...expectedParentNodes[scenario.name]!].sort();
    if (JSON.stringify(ran) !== JSON.stringify(expected)) {
      throw new Error(`${scenario.name}: nodes that ran ${JSON.stringify(ran)}, expected ${JSON.stringify(expected)}`);
    }

    const t0 = performance.now();
    const ids = await Promise.all(Array.from({ length: RUNS }, () => client.start()));
    await withTimeout(Promise.all(ids.map((id) => client.wait(id))), 30_000, `${scenario.name} runs`);
    const seconds = (performance.now() - t0) / 1000;
    const stats = await worker.stats();
    const caveat = flowcraftCaveats[scenario.name];
    console.log(
      `${scenario.name.padEnd(10)} ${String(RUNS).padStart(3)} runs in ${(seconds * 1000).toFixed(0).padStart(5)} ms = ${(RUNS / seconds).toFixed(1).padStart(7)} runs/s` +
        `  (${((RUNS * scenario.nodeExecutions) / seconds).toFixed(0)} nodes/s; worker cpu ${((stats.cpuUserMicros + stats.cpuSystemMicros) / 1000).toFixed(0)} ms, rss ${(stats.rssBytes / 2 ** 20).toFixed(0)} MiB)` +
        (caveat ? `\n           note: ${caveat}` : ''),
    );
  } finally {
    await client.close();
    await stopWorker(worker);
  }
}

const redis = await startLocalRedis();
const inspect = new Redis(redis.url, { maxRetriesPerRequest: null });
let failed = false;
try {
  for (const scenario of [chain10(), diamond(), moderation(), subflow()]) {
    try {
      await runScenario(redis, inspect, scenario);
    } catch (err) {
      failed = true;
      console.error(`${scenario.name}: FAILED: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
} finally {
  await inspect.quit();
  await redis.stop();
}
process.exit(failed ? 1 : 0);
