import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { startLocalRedis } from '../../src/local/redis-server.js';
import { flowcraftEngine } from './flowcraft.js';
import { SCENARIOS } from '../scenarios.js';
import type { WorkerConfig } from '../engine.js';
const redis = await startLocalRedis();
const inspect = new Redis(redis.url);
for (const scenario of SCENARIOS) {
  const config: WorkerConfig = { redisUrl: redis.url, namespace: `real-${scenario.name}`, concurrency: 5, scenario };
  const child = spawn(process.execPath, ['--import', 'tsx', flowcraftEngine.workerEntry, JSON.stringify(config)], { cwd: '/work/main', stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((r) => child.on('message', (m: any) => m.type === 'ready' && r()));
  const client = await flowcraftEngine.createClient(config);
  const id = await client.start(); await client.wait(id);
  const ran = (await inspect.hkeys(`workflow:state:${id}`)).filter((k) => k.startsWith('_outputs.')).length;
  const t0 = performance.now();
  const ids = await Promise.all(Array.from({ length: 100 }, () => client.start()));
  await Promise.all(ids.map((i) => client.wait(i)));
  const s = (performance.now() - t0) / 1000;
  console.log(scenario.name, 'parent outputs', ran, 'expected execs', scenario.nodeExecutions, (100 / s).toFixed(1), 'runs/s');
  await client.close();
  const ex = new Promise((r) => child.once('exit', r)); process.kill(child.pid!, 'SIGTERM'); await ex;
}
console.log('keys left in redis:', await inspect.dbsize());
await inspect.quit(); await redis.stop();
