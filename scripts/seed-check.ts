/**
 * CI check: the seed example's use cases (../shared/seed-workflows, unchanged) run distributed over two
 * worker processes with the offline provider. Exits 1 if any run does not complete as expected.
 *
 *   npx tsx scripts/seed-check.ts [seed-dir]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { SwitchyardClient } from '../src/client/client.js';
import type { RunView } from '../src/types/run-view.js';
import { startLocalRedis, type LocalRedis } from '../src/local/redis-server.js';
import { createNodeKinds } from '../src/nodes/index.js';

const seedDir = process.argv[2] ?? fileURLToPath(new URL('../../shared/seed-workflows', import.meta.url));
const bin = fileURLToPath(new URL('../bin/switchyard.mjs', import.meta.url));

const INPUTS: Record<string, Record<string, unknown>> = {
  '100': { topic: 'Why workflow engines need dead-path elimination' },
  '200': {
    applicantName: 'Ada Lovelace',
    resume: 'Ten years of TypeScript and Node.js; SQL schema design; AWS.',
    coverLetter: 'Dear hiring manager, I am pleased to apply for the position. Sincerely, Ada Lovelace',
  },
  '300': { initial_review: 'The export keeps crashing and support never answers. Very disappointing.' },
  '400': { userId: 'user-77', userPost: 'Loved the meetup! Slides: mail me at sam@example.com' },
};
const RUNS_EACH = 5;

async function main(): Promise<number> {
  if (!existsSync(seedDir)) {
    console.log(`seed-check: no seed workflows at ${seedDir}; nothing to check`);
    return 0;
  }
  let redis: LocalRedis | undefined;
  const workers: ChildProcess[] = [];
  const url = process.env.REDIS_URL ?? (redis = await startLocalRedis()).url;
  const env = { ...process.env, REDIS_URL: url, SWITCHYARD_PREFIX: `seeds${process.pid}`, SWITCHYARD_QUEUE: `seeds${process.pid}`, SWITCHYARD_LLM: 'offline', SWITCHYARD_LOG_LEVEL: 'warn' };
  const registry = await BlueprintRegistry.load([seedDir], createNodeKinds());
  const client = new SwitchyardClient({ redis: url, prefix: env.SWITCHYARD_PREFIX, queueName: env.SWITCHYARD_QUEUE, blueprints: registry });
  try {
    for (let i = 0; i < 2; i++) {
      // Concurrency 2 per worker, so a batch of runs has to spread over both processes.
      const child = spawn(process.execPath, [bin, 'worker', '--blueprints', seedDir, '--concurrency', '2'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
      workers.push(child);
    }
    let failures = 0;
    const workersUsed = new Set<string>();
    for (const [id, input] of Object.entries(INPUTS)) {
      const handles = await Promise.all(Array.from({ length: RUNS_EACH }, () => client.start(id, input)));
      const views = await Promise.all(handles.map((h) => h.result({ timeoutMs: 60_000 })));
      for (const view of views) {
        Object.values(view.nodes).forEach((n) => n.worker && workersUsed.add(n.worker));
        const problem = check(id, view);
        if (problem) failures++;
        console.log(`${problem ? 'FAIL' : 'ok  '} seed ${id} run ${view.runId}: ${view.status}${problem ? ` (${problem})` : ''}`);
      }
    }
    const pids = new Set([...workersUsed].map((w) => w.split('-').at(-2)));
    console.log(`worker processes used: ${pids.size} (${[...pids].join(', ')})`);
    if (pids.size < 2) {
      console.log('FAIL the runs were not distributed over 2 worker processes');
      failures++;
    }
    console.log(failures === 0 ? 'seed-check: all seed use cases completed' : `seed-check: ${failures} problem(s)`);
    return failures === 0 ? 0 : 1;
  } finally {
    await client.close();
    await Promise.all(workers.map((w) => new Promise<void>((resolve) => {
      if (w.exitCode !== null) return resolve();
      w.once('exit', () => resolve());
      w.kill('SIGTERM');
    })));
    await redis?.stop();
  }
}

function check(id: string, view: RunView): string | undefined {
  if (view.status !== 'completed') return view.error ? `${view.error.nodeId}: ${view.error.message}` : 'did not complete';
  if (id === '400') {
    if (view.context.moderation_result === undefined && view.outputs.approve_post_branch === undefined) return 'no moderation_result nor approve log';
    if (typeof view.context.final_output !== 'string') return 'no final_output';
  }
  return undefined;
}

process.exitCode = await main();
