import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { Redis } from 'ioredis';
import { BlueprintRegistry } from '../../../src/blueprint/load.js';
import { SwitchyardClient } from '../../../src/client/client.js';
import { compileGraph } from '../../../src/engine/graph.js';
import { runInMemory } from '../../../src/executor/memory-executor.js';
import { createNodeKinds } from '../../../src/nodes/index.js';
import type { RunView } from '../../../src/types/run-view.js';
import { isTerminalRunStatus } from '../../../src/types/statuses.js';
import { ROOT } from '../../support/processes.js';
import { CHILD_BLUEPRINT, generateBlueprints, prng, type ChaosBlueprint, type Shape } from './chaos-blueprints.js';
import { chaosStepKind, type Execution } from './chaos-kinds.js';
import { FaultRedis, RedisProxy } from '../../support/faults.js';

/** A worker child process: `switchyard worker` with the recording node kind. */
export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
  log: () => string;
}

/** What a fault gets to act on, and what it reports. */
export interface FaultContext {
  /** The Redis the proxy points at now. */
  redis: FaultRedis;
  proxy: RedisProxy;
  workers: WorkerProcess[];
  startWorker(): Promise<WorkerProcess>;
  /** A replica of `redis`, when the scenario asked for one. */
  replica?: FaultRedis;
}

export interface ScenarioOptions {
  name: string;
  seed: number;
  runs: number;
  workers?: number;
  concurrency?: number;
  replica?: boolean;
  /** Injects the fault; resolves with the epoch ms at which it ended (kill, Redis answering again, promotion). */
  fault(ctx: FaultContext): Promise<number>;
  /** How long runs may take to end after the fault before they count as lost. */
  deadlineMs: number;
}

/** One run's verdict. */
export interface RunCheck {
  runId: string;
  blueprintId: string;
  shape: Shape;
  /** Ended (any terminal status) before the deadline. */
  ended: boolean;
  endedAt?: number;
  /** Differences from the in-memory executor's final state (empty when equal). */
  mismatches: string[];
}

export interface ScenarioResult {
  name: string;
  seed: number;
  runs: number;
  faultEndedAt: number;
  /** Runs still running when the fault ended. */
  affected: number;
  /** Runs that had not ended by the deadline. */
  lost: string[];
  /** Seconds from the fault's end to the last affected run's end (null when one never ended). */
  recoverySeconds: number | null;
  /** Node executions beyond what the in-memory executor ran, and those whose earlier execution began after the fault (not in flight). */
  duplicates: number;
  duplicatesNotInFlight: string[];
  /** Executions of child runs the in-memory executor never had (a subflow node re-executed starts another child). */
  orphanChildExecutions: number;
  /** Joins that ran before every predecessor's output was there (`all`), or with none (`any`). */
  earlyJoins: string[];
  mismatched: RunCheck[];
  executions: number;
  durationMs: number;
}

const debug = (what: string) => {
  if (process.env.CHAOS_DEBUG) console.log(`[chaos ${new Date().toISOString()}] ${what}`);
};

const WORKER_ENTRY = join(ROOT, 'test/chaos/support/chaos-worker.ts');
const WORKER_BUNDLE = join(ROOT, 'test-output/chaos-worker/chaos-worker.mjs');
let bundled: Promise<string> | undefined;

/**
 * The chaos worker bundled the way the image runs the CLI (scripts/build.mjs: one ESM file from the
 * current sources, dependencies external), built once per suite. A worker started from it boots like a
 * deployed one (about 0.3 s here); under `node --import tsx` the TypeScript transform took 2-3 s of a
 * loaded 2-core box, which the fleet crash counted as recovery time.
 */
function workerBundle(): Promise<string> {
  return (bundled ??= build({
    entryPoints: [WORKER_ENTRY],
    outfile: WORKER_BUNDLE,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    logLevel: 'warning',
  }).then(() => WORKER_BUNDLE));
}

/**
 * Runs one chaos scenario end to end, on resources of its own: a redis-server (AOF, fsync always) behind
 * a loopback proxy (plus a replica when asked), worker processes, a blueprint directory and execution
 * logs in a temp dir. Starts `runs` runs of seeded mixed blueprints, injects the fault once runs are in
 * flight, waits for every run to end (or the deadline), and compares each run with the in-memory
 * executor on the same blueprint, input and run id. Every process it started is killed by pid at the end.
 */
export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const began = Date.now();
  const dir = mkdtempSync(join(tmpdir(), `sy-chaos-${options.name}-`));
  const bpDir = join(dir, 'blueprints');
  const execDir = join(dir, 'exec');
  mkdirSync(bpDir);
  mkdirSync(execDir);
  const generated = generateBlueprints(options.seed, options.runs, options.name);
  for (const { blueprint } of generated) writeFileSync(join(bpDir, `${blueprint.id}.json`), JSON.stringify(blueprint));
  writeFileSync(join(bpDir, `${CHILD_BLUEPRINT.id}.json`), JSON.stringify(CHILD_BLUEPRINT));

  const memoryExecutions: Execution[] = [];
  const kinds = createNodeKinds().with(chaosStepKind((e) => memoryExecutions.push(e)));
  const registry = await BlueprintRegistry.load([bpDir], kinds);

  const started: WorkerProcess[] = [];
  let redis: FaultRedis | undefined;
  let replica: FaultRedis | undefined;
  let proxy: RedisProxy | undefined;
  let client: SwitchyardClient | undefined;
  let probe: { stop(): void } | undefined;
  try {
    redis = await FaultRedis.start();
    if (options.replica) {
      replica = await FaultRedis.start({ appendonly: false, extra: ['--replicaof', '127.0.0.1', String(redis.port)] });
      // The fault is a replica that lags by a second, not one that never synced: Redis starts a diskless
      // initial sync only after `repl-diskless-sync-delay` (5 s), and a fault hitting before it promotes an
      // empty replica (every run lost, whatever the engine does).
      await waitForReplicaSync(replica);
    }
    proxy = await RedisProxy.start(redis.port);
    const prefix = `c${options.name.replace(/[^a-z0-9]/gi, '').slice(0, 12)}`;
    const env: Record<string, string> = {
      REDIS_URL: proxy.url,
      SWITCHYARD_PREFIX: prefix,
      SWITCHYARD_QUEUE: prefix,
      SWITCHYARD_LOG_LEVEL: 'info',
      SWITCHYARD_LOG_FORMAT: 'json',
      CHAOS_EXEC_DIR: execDir,
    };
    const args = ['worker', '--blueprints', bpDir, '--concurrency', String(options.concurrency ?? 16)];
    if (process.env.CHAOS_LOCK_DURATION_MS) args.push('--lock-duration', process.env.CHAOS_LOCK_DURATION_MS);
    const startWorker = () => startWorkerProcess(args, env).then((w) => (started.push(w), w));
    debug('redis and proxy up');
    const workers = await Promise.all(Array.from({ length: options.workers ?? 2 }, startWorker));

    debug('workers ready');
    client = new SwitchyardClient({ redis: proxy.url, prefix, queueName: prefix, blueprints: registry });
    const rand = prng(options.seed ^ 0x5eed);
    const launched = await Promise.all(
      generated.map(async ({ blueprint, shape }) => {
        const input = { x: Math.floor(rand() * 10) };
        const handle = await client!.start(blueprint.id, input);
        return { runId: handle.runId, blueprint, shape, input };
      }),
    );

    debug('runs started');
    // The fault hits once a fifth of the executions the runs need have begun (read from the logs).
    await until(() => countLines(execDir) >= Math.max(5, Math.floor(options.runs * 1.2)), 30_000);
    probe = process.env.CHAOS_DEBUG ? debugProbe(proxy.url, prefix) : undefined;
    const faultEndedAt = await options.fault({ redis, proxy, workers, startWorker, replica });

    debug('fault ended');
    const views = new Map<string, RunView>();
    const endedBeforeFault = new Set<string>();
    // Polled, not awaited through pub/sub: an end message published while Redis was down is lost, and
    // the instrument must not depend on what it measures.
    const deadline = faultEndedAt + options.deadlineMs;
    while (views.size < launched.length && Date.now() < deadline) {
      for (const run of launched) {
        if (views.has(run.runId)) continue;
        const view = await client.get(run.runId).catch(() => undefined);
        if (view && isTerminalRunStatus(view.status)) {
          views.set(run.runId, view);
          if ((view.endedAt ?? 0) <= faultEndedAt) endedBeforeFault.add(run.runId);
        }
      }
      if (views.size < launched.length) await new Promise((r) => setTimeout(r, 100));
    }

    // The oracle: the same blueprint, input and run id in memory (child run ids then match too).
    const expected = new Map<string, RunView>(
      await Promise.all(
        launched.map(async (run) => {
          const graph = compileGraph(registry.get(run.blueprint.id)!, kinds);
          return [run.runId, await runInMemory(graph, { kinds, blueprints: registry, input: run.input, runId: run.runId })] as const;
        }),
      ),
    );

    const executions = readExecutions(execDir);
    const checks: RunCheck[] = launched.map((run) => {
      const view = views.get(run.runId);
      return {
        runId: run.runId,
        blueprintId: run.blueprint.id,
        shape: run.shape,
        ended: view !== undefined,
        endedAt: view?.endedAt,
        mismatches: view ? compareRuns(view, expected.get(run.runId)!) : ['did not end'],
      };
    });
    const affected = launched.filter((r) => !endedBeforeFault.has(r.runId));
    const lost = checks.filter((c) => !c.ended).map((c) => c.runId);
    const recoverySeconds = lost.length
      ? null
      : Math.max(0, ...affected.map((r) => ((views.get(r.runId)!.endedAt ?? faultEndedAt) - faultEndedAt) / 1000));
    const dup = countDuplicates(executions, memoryExecutions, faultEndedAt);
    if (process.env.CHAOS_DEBUG) {
      const slowest = affected
        .map((r) => ({ r, s: ((views.get(r.runId)?.endedAt ?? Infinity) - faultEndedAt) / 1000 }))
        .sort((a, b) => b.s - a.s)
        .slice(0, 4);
      for (const { r, s } of slowest) debug(`slow run ${r.runId} ${r.blueprint.id} ended ${s} s after the fault; ${views.get(r.runId)?.status}`);
    }
    return {
      name: options.name,
      seed: options.seed,
      runs: launched.length,
      faultEndedAt,
      affected: affected.length,
      lost,
      recoverySeconds,
      duplicates: dup.duplicates,
      duplicatesNotInFlight: dup.notInFlight,
      orphanChildExecutions: dup.orphans,
      earlyJoins: findEarlyJoins(executions, launched, views),
      mismatched: checks.filter((c) => c.mismatches.length > 0),
      executions: executions.length,
      durationMs: Date.now() - began,
    };
  } finally {
    probe?.stop();
    await client?.close().catch(() => undefined);
    await Promise.all(started.map(killWorker));
    if (process.env.CHAOS_DEBUG) {
      // The workers' JSON logs, to see when and how recovery acted: test-output/chaos-logs/<scenario>-<pid>.log
      const logDir = join(ROOT, 'test-output/chaos-logs');
      mkdirSync(logDir, { recursive: true });
      for (const w of started) writeFileSync(join(logDir, `${options.name}-${w.pid}.log`), w.log());
      // And every execution (run, node, attempt, pid, start time), to follow a slow run node by node.
      writeFileSync(join(logDir, `${options.name}-executions.jsonl`), readExecutions(execDir).map((e) => JSON.stringify(e)).join('\n'));
    }
    await proxy?.close().catch(() => undefined);
    await redis?.stop().catch(() => undefined);
    await replica?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function startWorkerProcess(args: string[], env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [await workerBundle(), ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      log += d;
      if (/worker ready/.test(log)) resolve({ child, pid: child.pid!, exited, log: () => log });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`worker exited (${code}) before it was ready:\n${log}`)));
  });
}

async function killWorker(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode === null && w.child.signalCode === null) process.kill(w.pid, 'SIGKILL');
  await w.exited;
}

/** Waits for `condition`, checking every 50 ms (a log file has no event to await), at most `ms`. */
export async function until(condition: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function countLines(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).length, 0);
}

function readExecutions(dir: string): Execution[] {
  return readdirSync(dir).flatMap((f) =>
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Execution),
  );
}

function compareRuns(actual: RunView, expected: RunView): string[] {
  const diffs: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
  if (actual.status !== expected.status) diffs.push(`status ${actual.status} != ${expected.status}`);
  const statuses = (v: RunView) => Object.fromEntries(Object.entries(v.nodes).map(([id, n]) => [id, n.status]));
  if (!same(statuses(actual), statuses(expected))) diffs.push(`nodes ${JSON.stringify(statuses(actual))} != ${JSON.stringify(statuses(expected))}`);
  if (!same(actual.context, expected.context)) diffs.push(`context ${JSON.stringify(actual.context)} != ${JSON.stringify(expected.context)}`);
  if (!same(actual.outputs, expected.outputs)) diffs.push(`outputs ${JSON.stringify(actual.outputs)} != ${JSON.stringify(expected.outputs)}`);
  return diffs;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]));
  return value;
}

/**
 * Duplicates: per run and node, executions beyond the in-memory executor's (which has no faults). Each
 * one is allowed only when the execution it repeats began before the fault ended (it was in flight, or
 * its result was not yet durable, when the fault hit).
 */
function countDuplicates(executions: Execution[], memory: Execution[], faultEndedAt: number) {
  const key = (e: Execution) => `${e.runId}:${e.nodeId}`;
  const expectedCount = new Map<string, number>();
  for (const e of memory) expectedCount.set(key(e), (expectedCount.get(key(e)) ?? 0) + 1);
  const byNode = new Map<string, Execution[]>();
  for (const e of executions) byNode.set(key(e), [...(byNode.get(key(e)) ?? []), e]);
  let duplicates = 0;
  let orphans = 0;
  const notInFlight: string[] = [];
  for (const [k, list] of byNode) {
    const want = expectedCount.get(k);
    if (want === undefined) {
      orphans += list.length;
      continue;
    }
    const extra = list.length - want;
    if (extra <= 0) continue;
    duplicates += extra;
    const sorted = [...list].sort((a, b) => a.at - b.at);
    // The repeated executions are the later ones; the ones they repeat began before them.
    for (let i = 0; i < extra; i++) {
      if (sorted[i]!.at > faultEndedAt) notInFlight.push(`${k} (executions at ${sorted.map((e) => e.at - faultEndedAt).join(', ')} ms from the fault's end)`);
    }
  }
  return { duplicates, orphans, notInFlight };
}

/** Every execution of a join saw its predecessors: all of the finished ones (`all`), at least one (`any`). */
function findEarlyJoins(
  executions: Execution[],
  launched: Array<{ runId: string; blueprint: ChaosBlueprint }>,
  views: Map<string, RunView>,
): string[] {
  const early: string[] = [];
  const byRun = new Map(launched.map((r) => [r.runId, r]));
  for (const e of executions) {
    const run = byRun.get(e.runId);
    const view = views.get(e.runId);
    if (!run || !view) continue;
    const node = run.blueprint.nodes.find((n) => n.id === e.nodeId)!;
    const incoming = run.blueprint.edges.filter((edge) => edge.target === e.nodeId).map((edge) => edge.source);
    if (incoming.length < 2) continue;
    if (node.config?.joinStrategy === 'any') {
      if (e.seen.length === 0) early.push(`${e.runId}:${e.nodeId} (any join saw no predecessor)`);
    } else {
      const done = incoming.filter((id) => view.nodes[id]?.status === 'done');
      const missing = done.filter((id) => !e.seen.includes(id));
      if (missing.length) early.push(`${e.runId}:${e.nodeId} (ran before ${missing.join(', ')})`);
    }
  }
  return early;
}

/** CHAOS_DEBUG: every 500 ms, the workers' beats (job counts) and the queue's lists, to see recovery act. */
function debugProbe(url: string, prefix: string): { stop(): void } {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false });
  redis.on('error', () => undefined);
  const q = `{${prefix}q}:${prefix}`;
  const timer = setInterval(() => {
    void (async () => {
      const beats = await redis.hgetall(`${prefix}:workers`);
      const jobs = Object.entries(beats).map(([w, b]) => `${w}:${(JSON.parse(b) as { seq: number; jobs: unknown[] }).seq}/${(JSON.parse(b) as { jobs: unknown[] }).jobs.length}`);
      const [active, wait, delayed, keys, running] = await Promise.all([
        redis.llen(`${q}:active`),
        redis.llen(`${q}:wait`),
        redis.zcard(`${q}:delayed`),
        redis.dbsize(),
        redis.zcard(`${prefix}:running`),
      ]);
      debug(`probe beats ${jobs.join(' ')} active ${active} wait ${wait} delayed ${delayed} keys ${keys} running-index ${running}`);
    })().catch((err: unknown) => debug(`probe: ${String(err)}`));
  }, 500);
  return { stop: () => (clearInterval(timer), redis.disconnect()) };
}

/** Waits until the replica has finished its initial sync with its primary (link up, no sync in progress). */
async function waitForReplicaSync(replica: FaultRedis): Promise<void> {
  const redis = replica.connect();
  try {
    const end = Date.now() + 30_000;
    for (;;) {
      const info = await redis.info('replication');
      if (/master_link_status:up/.test(info) && /master_sync_in_progress:0/.test(info)) return;
      if (Date.now() > end) throw new Error(`the replica did not finish its initial sync within 30 s:\n${info}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    redis.disconnect();
  }
}
