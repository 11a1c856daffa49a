import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { isProcessAlive } from '../src/local/stack.js';
import { ROOT } from './support/processes.js';

/** Runs a command to its end without a terminal (as CI does); bounded by `timeoutMs`. */
function runToEnd(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not end within ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Progress lines look like "  0.012s  [path › ]done       node …". */
const line = (verb: string, node: string, path = '') => new RegExp(`^\\s+\\d+\\.\\d{3}s  ${path ? `${path} › ` : ''}${verb}\\s+${node}\\b`, 'm');

describe('npm run demo', () => {
  it('without a terminal: runs content-moderation over two worker processes, prints progress, result and dashboard URL, exits 0 and leaves no process', async () => {
    const prefix = `demo${randomBytes(3).toString('hex')}`;
    const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: inject('redisUrl'), SWITCHYARD_PREFIX: prefix, SWITCHYARD_QUEUE: prefix };
    delete env.SWITCHYARD_LLM;
    const { code, stdout, stderr } = await runToEnd('npx', ['tsx', 'scripts/demo.ts'], env);
    expect(stderr).toBe('');
    expect(code).toBe(0);

    expect(stdout).toMatch(/^api\s+http:\/\/127\.0\.0\.1:\d+/m);
    expect(stdout).toMatch(/^model\s+offline .*SWITCHYARD_LLM=openai OPENAI_API_KEY=/m);
    const workers = [...stdout.matchAll(/worker (\d) \(pid (\d+)\)/g)].map((m) => ({ index: Number(m[1]), pid: Number(m[2]) }));
    const pids = [...new Set(workers.map((w) => w.pid))];
    expect(pids).toHaveLength(2);

    const runId = /^run (\S+) of content-moderation$/m.exec(stdout)?.[1];
    expect(runId).toBeDefined();
    expect(stdout).toMatch(line('queued', 'check_pii, check_hate, check_spam'));
    for (const node of ['check_pii', 'check_hate', 'check_spam', 'decide', 'redact', 'log']) {
      expect(stdout).toMatch(line('running', node));
      expect(stdout).toMatch(line('done', node));
    }
    expect(stdout).toMatch(/done\s+decide -> action_redact\s+on worker \d \(pid \d+\) in \d+ ms/);
    expect(stdout).toMatch(line('skipped', 'ban, delete_spam, approve'));
    for (const node of ['redact_post', 'warn_user', 'summary']) expect(stdout).toMatch(line('done', node, 'redact'));
    expect(stdout).toMatch(/completed\s+run completed after \d+ ms/);

    expect(stdout).toMatch(/Result: completed in \d+ ms, \d+ tokens/);
    expect(stdout).toContain('MODERATION LOG\nuser: u-1042\naction: action_redact');
    expect(stdout).toContain('mail me at [REDACTED] or call [REDACTED]');
    expect(stdout).toMatch(new RegExp(`See it in the dashboard: http://127\\.0\\.0\\.1:\\d+/dashboard/runs/${runId}`));
    expect(stdout.trim().split('\n').at(-1)).toMatch(/^stopped worker 1 \(pid \d+\), worker 2 \(pid \d+\); the API is closed$/);
    for (const pid of pids) expect(isProcessAlive(pid), `worker pid ${pid}`).toBe(false);
  });

  it('without Redis: runs the use case in this process and says in one line that distribution needs Redis', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: '/nonexistent' };
    delete env.REDIS_URL;
    delete env.SWITCHYARD_LLM;
    const { code, stdout, stderr } = await runToEnd(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', '--input', '{"userId":"u-9","userPost":"Buy now! Limited offer at deals.example.com"}'], env);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const notice = stdout.split('\n').filter((l) => l.includes('Distribution needs Redis'));
    expect(notice).toEqual([expect.stringMatching(/apt-get install -y redis-server .*or set REDIS_URL$/)]);
    expect(stdout).toMatch(/done\s+decide -> action_delete_spam\s+on the demo process/);
    expect(stdout).toMatch(line('skipped', 'ban, redact, approve'));
    expect(stdout).toContain('action: action_delete_spam');
    expect(stdout).toMatch(/Result: completed/);
  });
});
