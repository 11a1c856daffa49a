import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { isProcessAlive } from '../src/local/stack.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { startHarness, type Harness } from './support/harness.js';
import { killStarted, runCli, startCli } from './support/processes.js';

const COMMANDS = ['validate', 'worker', 'run', 'status', 'cancel', 'redrive', 'events', 'graph', 'keys', 'health', 'dev'];

describe('switchyard commands against Redis', () => {
  let h: Harness;
  let env: Record<string, string>;

  beforeAll(async () => {
    const registry = await BlueprintRegistry.load(['workflows'], createNodeKinds());
    registry.add({ id: 'nap', nodes: [{ id: 'nap', uses: 'sleep', params: { ms: 300 } }, { id: 'after', uses: 'output', params: { template: 'rested' } }], edges: [{ source: 'nap', target: 'after' }] });
    registry.add({ id: 'long-nap', nodes: [{ id: 'nap', uses: 'sleep', params: { ms: 60_000 } }, { id: 'after', uses: 'output', params: { template: 'rested' } }], edges: [{ source: 'nap', target: 'after' }] });
    h = await startHarness({ blueprints: registry, workers: 1 });
    env = { REDIS_URL: inject('redisUrl'), SWITCHYARD_PREFIX: h.prefix, SWITCHYARD_QUEUE: h.prefix, SWITCHYARD_LOG_LEVEL: 'warn' };
  });
  afterAll(async () => {
    await killStarted();
    await h?.close();
  });

  it('status prints the run view summary, and all of it with --json', async () => {
    const run = await h.client.start('greeting', { name: 'Ada' });
    await run.result({ timeoutMs: 20_000 });
    const text = await runCli(['status', run.runId], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`run ${run.runId}  greeting  completed`);
    expect(text.stdout).toMatch(/greet\s+done\s+1 attempt\s+w1/);
    expect(text.stdout).toMatch(/final\s+done/);
    expect(text.stdout).toContain('Hello, Ada! Welcome to Switchyard.');
    const json = await runCli(['status', run.runId, '--json'], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ runId: run.runId, blueprintId: 'greeting', status: 'completed', nodes: { greet: { status: 'done', worker: 'w1' } } });

    const missing = await runCli(['status', 'no-such-run'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('switchyard status: no run "no-such-run" (or it expired)');
  });

  it('events prints the timeline; --json one object per line; --follow tails until the run ends', async () => {
    const done = await h.client.start('greeting', { name: 'Bo' });
    await done.result({ timeoutMs: 20_000 });
    const text = await runCli(['events', done.runId], env);
    expect(text.code).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z\s+run\.started$/);
    expect(text.stdout).toMatch(/node\.done\s+greet\s+attempt=1\s+startedAt=\d+\s+worker=w1\s+ready=final/);
    expect(lines.at(-1)).toMatch(/run\.completed$/);
    const json = await runCli(['events', done.runId, '--json'], env);
    expect(json.stdout.trim().split('\n').map((l) => JSON.parse(l).type)).toEqual(['run.started', 'node.started', 'node.done', 'node.started', 'node.done', 'run.completed']);

    // Started before the run: follows it live (XREAD BLOCK) and returns when it ends.
    const run = await h.client.start('nap');
    const followed = await runCli(['events', run.runId, '--follow'], env);
    expect(followed.code).toBe(0);
    expect(followed.stdout).toMatch(/node\.started\s+nap/);
    expect(followed.stdout.trim().split('\n').at(-1)).toMatch(/run\.completed$/);
  });

  it('run --wait --progress prints a line per node as it runs and finishes', async () => {
    const { code, stdout, stderr } = await runCli(['run', 'greeting', '--input', '{"name":"Cy"}', '--wait', '--progress'], env);
    expect(code).toBe(0);
    expect(stderr).toMatch(/started\s+run \S+ of greeting/);
    expect(stderr).toMatch(/queued\s+greet/);
    expect(stderr).toMatch(/running\s+greet\s+on w1/);
    expect(stderr).toMatch(/done\s+greet\s+on w1 in \d+ ms/);
    expect(stderr).toMatch(/completed\s+run completed after/);
    expect(stdout).toContain('Hello, Cy! Welcome to Switchyard.');
  });

  it('run --wait --progress shows a map\'s children done so far and a loop\'s iterations; status shows them', async () => {
    const mapped = await runCli(['run', 'map-greetings', '--input', '{"names":["Ada","Bo","Cy"]}', '--wait', '--progress'], env);
    expect(mapped.code).toBe(0);
    expect(mapped.stderr).toMatch(/mapping\s+greet_each\s+0 of 3 done, 2 running/);
    expect(mapped.stderr).toMatch(/mapping\s+greet_each\s+3 of 3 done, 0 running/);
    expect(mapped.stdout).toContain('["Hello, Ada! Welcome to Switchyard.","Hello, Bo! Welcome to Switchyard.","Hello, Cy! Welcome to Switchyard."]');

    const looped = await runCli(['run', 'loop-polish', '--input', '{"draft":"Hello"}', '--wait', '--progress'], env);
    expect(looped.code).toBe(0);
    expect(looped.stderr).toMatch(/waiting\s+polish\s+for child run \S+ \(iteration 3\)/);
    // The iterations' own nodes show under the loop node.
    expect(looped.stderr).toMatch(/polish › done\s+polish/);
    expect(looped.stdout).toContain('Polished: Hello!!!');

    const runId = /started\s+run (\S+) of map-greetings/.exec(mapped.stderr)![1]!;
    const status = await runCli(['status', runId], env);
    expect(status.stdout).toMatch(/greet_each\s+done\s+1 attempt\s+w1\s+.*3 of 3 child runs done/);
  });

  it('cancel cancels a running run once; again it says the run already ended', async () => {
    const run = await h.client.start('long-nap');
    const first = await runCli(['cancel', run.runId], env);
    expect(first).toMatchObject({ code: 0, stdout: `cancelled run ${run.runId}\n` });
    expect((await run.get())!.status).toBe('cancelled');
    const again = await runCli(['cancel', run.runId], env);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`switchyard cancel: run ${run.runId} already ended (cancelled)`);
  });

  it('redrive runs a cancelled run again; a running one it refuses', async () => {
    const run = await h.client.start('long-nap');
    expect((await runCli(['cancel', run.runId], env)).code).toBe(0);
    const first = await runCli(['redrive', run.runId], env);
    expect(first).toMatchObject({ code: 0, stdout: `redrove run ${run.runId} (redrive 1)\n` });
    expect((await run.get())!).toMatchObject({ status: 'running', redrives: 1 });
    const again = await runCli(['redrive', run.runId], env);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`switchyard redrive: run ${run.runId} is running; only a failed or cancelled run can be redriven`);
    await run.cancel();
  });

  it('keys create prints the key once; list shows it without the key; revoke removes it', async () => {
    const created = await runCli(['keys', 'create', '--tenant', 'acme', '--scopes', 'runs:read', '--name', 'ci reader'], env);
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^sy_[A-Za-z0-9_-]{43}$/);
    const id = /created API key (key_\S+) for tenant acme \(runs:read\)/.exec(created.stderr)?.[1];
    expect(id).toBeDefined();

    const list = await runCli(['keys', 'list'], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${id}\\s+acme\\s+runs:read\\s+ci reader`));
    expect(list.stdout).not.toContain(key);
    const listed = JSON.parse((await runCli(['keys', 'list', '--json'], env)).stdout);
    expect(listed).toEqual([expect.objectContaining({ id, tenant: 'acme', scopes: ['runs:read'], name: 'ci reader' })]);

    expect(await runCli(['keys', 'revoke', id!], env)).toMatchObject({ code: 0, stdout: `revoked API key ${id}\n` });
    expect((await runCli(['keys', 'list'], env)).stdout).not.toContain(id!);
    const again = await runCli(['keys', 'revoke', id!], env);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`switchyard keys: no API key "${id}" (switchyard keys list shows them)`);
    expect((await runCli(['keys', 'create', '--tenant', 'acme', '--scopes', 'runs:delete'], env)).stderr.trim()).toBe(
      'switchyard keys: --scopes must list runs:read and/or runs:write, comma-separated (got "runs:delete")',
    );
  });
});

describe('switchyard graph', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-graph-'));

  it('prints Mermaid for a blueprint id', async () => {
    const { code, stdout } = await runCli(['graph', 'content-moderation', '--blueprints', 'workflows']);
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toBe('graph TD');
    expect(stdout).toContain('check_pii["check_pii<br/>llm-condition"]');
    expect(stdout).toContain('decide -->|action_redact| redact');
  });

  it('writes an SVG for a blueprint file', async () => {
    const out = join(dir, 'moderation.svg');
    const { code, stdout } = await runCli(['graph', 'workflows/use-cases/content-moderation.json', '--out', out]);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(`wrote ${out} (9 nodes, 11 edges)`);
    const svg = readFileSync(out, 'utf8');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    for (const id of ['check_pii', 'check_hate', 'check_spam', 'decide', 'ban', 'redact', 'delete_spam', 'approve', 'log']) expect(svg).toContain(`>${id}<`);
    expect(svg).toContain('Content moderation (content-moderation)');
  });

  it.skipIf(!existsSync('/usr/bin/chromium'))('writes a PNG through headless Chromium', async () => {
    const out = join(dir, 'moderation.png');
    const { code, stderr } = await runCli(['graph', 'content-moderation', '--out', out]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(readFileSync(out).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  });

  it('says in one line what is wrong', async () => {
    const unknown = await runCli(['graph', 'nope', '--blueprints', 'workflows']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toMatch(/^switchyard graph: no blueprint "nope" in workflows \(known: .*content-moderation.*\)$/);
    const format = await runCli(['graph', 'greeting', '--out', join(dir, 'x.gif')]);
    expect(format.stderr.trim()).toBe(`switchyard graph: --out must end in .svg or .png (got "${join(dir, 'x.gif')}")`);
    const png = await runCli(['graph', 'greeting', '--out', join(dir, 'x.png')], { SWITCHYARD_CHROMIUM: '/nonexistent/chromium' });
    expect(png.code).toBe(2);
    expect(png.stderr.trim().split('\n')).toHaveLength(1);
    expect(png.stderr).toMatch(/PNG needs Chromium at \/nonexistent\/chromium/);
  });
});

describe('switchyard help and errors', () => {
  it('--help on every command shows its usage with examples', async () => {
    const results = await Promise.all(COMMANDS.map((command) => runCli([command, '--help'])));
    results.forEach((result, i) => {
      expect(result.code, COMMANDS[i]).toBe(0);
      expect(result.stdout, COMMANDS[i]).toMatch(new RegExp(`^switchyard ${COMMANDS[i]}`));
      expect(result.stdout, COMMANDS[i]).toContain('Examples:');
    });
  });

  it('an unreachable Redis is one line, and --verbose adds the stack', async () => {
    const down = { REDIS_URL: 'redis://127.0.0.1:1' };
    const plain = await runCli(['status', 'some-run'], down);
    expect(plain.code).toBe(1);
    expect(plain.stderr.trim()).toBe('switchyard status: cannot reach Redis at 127.0.0.1:1 (REDIS_URL): ECONNREFUSED');
    const verbose = await runCli(['status', 'some-run', '--verbose'], down);
    expect(verbose.stderr).toMatch(/\n\s+at /);
    const option = await runCli(['status', 'x', '--follow']);
    expect(option).toMatchObject({ code: 2 });
    expect(option.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('switchyard dev', () => {
  afterAll(() => killStarted());

  it('starts Redis, the API with the dashboard and two worker processes; Ctrl-C stops all of them', async () => {
    // No REDIS_URL: dev starts a private redis-server, which it must stop too.
    const dev = await startCli(['dev', '--port', '0', '--workers', '2'], { REDIS_URL: '', SWITCHYARD_LOG_LEVEL: 'warn' }, /Start a run:/);
    let redisPid: number;
    let workerPids: number[];
    let apiUrl: string | undefined;
    let exitCode: number | null | undefined;
    try {
      const out = dev.log();
      apiUrl = /api\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      const dashboard = /dashboard\s+(http:\/\/\S+)/.exec(out)?.[1];
      redisPid = Number(/private redis-server, pid (\d+)/.exec(out)?.[1]);
      workerPids = [...out.matchAll(/worker \d \(pid (\d+)\)/g)].map((m) => Number(m[1]));
      expect(apiUrl).toBeDefined();
      expect(dashboard).toBe(`${apiUrl}/dashboard/`);
      expect(out).toMatch(/auth\s+off, for local development only/);
      expect(workerPids).toHaveLength(2);
      for (const pid of [redisPid, ...workerPids]) expect(isProcessAlive(pid)).toBe(true);

      const page = await fetch(dashboard!);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      // A run through the API, carried out by the worker processes.
      const started = await fetch(`${apiUrl}/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ blueprintId: 'greeting', input: { name: 'Dev' } }) });
      expect(started.status).toBe(202);
      const { runId } = (await started.json()) as { runId: string };
      const view = (await (await fetch(`${apiUrl}/runs/${runId}?wait=20`)).json()) as { status: string; context: Record<string, unknown> };
      expect(view).toMatchObject({ status: 'completed', context: { final_output: 'Hello, Dev! Welcome to Switchyard.' } });
      // The run's page on the dashboard (the address the demo prints) leads to the page.
      expect((await fetch(`${dashboard}runs/${runId}`)).status).toBe(200);
      // A run started with the CLI against dev's Redis is listed by its API (and so its dashboard) too.
      const redisUrl = /redis\s+(redis:\/\/\S+)/.exec(out)![1]!;
      const cli = await runCli(['run', 'greeting', '--input', '{"name":"Cli"}', '--wait', '--json'], { REDIS_URL: redisUrl, SWITCHYARD_LOG_LEVEL: 'warn' });
      expect(cli.code).toBe(0);
      const cliRunId = JSON.parse(cli.stdout).runId as string;
      const listed = (await (await fetch(`${apiUrl}/runs`)).json()) as { runs: Array<{ runId: string }> };
      expect(listed.runs.map((r) => r.runId)).toEqual([cliRunId, runId]);
    } finally {
      // Whatever happened above: stop it as Ctrl-C would (a SIGKILL would leave its Redis behind).
      dev.child.kill('SIGINT');
      exitCode = await dev.exited;
    }
    expect(exitCode).toBe(0);
    expect(dev.log()).toMatch(/stopped\n/);
    for (const pid of [redisPid, ...workerPids]) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
    await expect(fetch(`${apiUrl}/blueprints`)).rejects.toThrow();
  });
});
