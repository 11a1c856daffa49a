import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { startHarness, type Harness } from './support/harness.js';
import { killStarted, runCli, startCli } from './support/processes.js';

/** `switchyard signal`, `run --timeout-run`, and the waiting / sleeping lines of `run --wait` progress. */
const APPROVAL = {
  id: 'cli-approval',
  nodes: [
    { id: 'nap', uses: 'sleep', params: { duration: '20ms' } },
    { id: 'ask', uses: 'wait', params: { prompt: 'Ship {{what}}?', inputs: { what: 'what' }, timeout: '1h' } },
    { id: 'shipped', uses: 'output', params: { template: 'shipped' } },
    { id: 'held', uses: 'output', params: { template: 'held' } },
  ],
  edges: [
    { source: 'nap', target: 'ask' },
    { source: 'ask', target: 'shipped', action: 'ship' },
    { source: 'ask', target: 'held', action: 'hold' },
  ],
};

describe('switchyard signal and run --timeout-run', () => {
  let h: Harness;
  let env: Record<string, string>;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sy-signal-'));
    writeFileSync(join(dir, `${APPROVAL.id}.json`), JSON.stringify(APPROVAL));
    const registry = await BlueprintRegistry.load([dir], createNodeKinds());
    h = await startHarness({ blueprints: registry, workers: 1 });
    env = { REDIS_URL: inject('redisUrl'), SWITCHYARD_PREFIX: h.prefix, SWITCHYARD_QUEUE: h.prefix, SWITCHYARD_LOG_LEVEL: 'warn' };
  });
  afterAll(async () => {
    await killStarted();
    await h?.close();
  });

  it('run --wait shows the sleep and the wait with how to signal it; signal answers it; a second signal exits 1', async () => {
    const running = await startCli(
      ['run', APPROVAL.id, '--blueprints', dir, '--input', '{"what":"v2"}', '--wait', '--progress', '--json'],
      env,
      /signal it: switchyard signal \S+ ask --action ship/,
    );
    const log = running.log();
    expect(log).toMatch(/sleeping\s+nap\s+until \S+Z/);
    expect(log).toMatch(/waiting\s+ask\s+for a signal: "Ship v2\?" \(actions: ship, hold; times out in/);
    const runId = /signal it: switchyard signal (\S+) ask/.exec(log)![1]!;

    const bad = await runCli(['signal', runId, 'ask', '--action', 'maybe'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/no edge of node "ask" has the action "maybe"/);
    const answered = await runCli(['signal', runId, 'ask', '--action', 'ship', '--payload', '{"by":"cli"}'], env);
    expect(answered.stderr).toBe('');
    expect(answered.code).toBe(0);
    expect(answered.stdout).toMatch(/signalled ask of run \S+ with action ship: node done/);
    expect(await running.exited).toBe(0);

    const again = await runCli(['signal', runId, 'ask', '--action', 'hold'], env);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(`switchyard signal: node ask of run ${runId} is done, not waiting for a signal`);
    const view = await h.client.get(runId);
    expect(view).toMatchObject({ status: 'completed', outputs: { ask: { by: 'cli' } }, nodes: { shipped: { status: 'done' }, held: { status: 'skipped' } } });
    expect((await runCli(['signal', runId], env)).code).toBe(2);
  });

  it('run --timeout-run fails the run with RUN_TIMEOUT once its deadline passes', async () => {
    const { code, stdout } = await runCli(['run', APPROVAL.id, '--blueprints', dir, '--timeout-run', '0.5', '--wait', '--json'], env);
    expect(code).toBe(1);
    expect(JSON.parse(stdout)).toMatchObject({ status: 'failed', error: { code: 'RUN_TIMEOUT' } });
    const local = await runCli(['run', APPROVAL.id, '--blueprints', dir, '--timeout-run', '0.3', '--local', '--json'], env);
    expect(JSON.parse(local.stdout)).toMatchObject({ status: 'failed', error: { code: 'RUN_TIMEOUT' } });
  });
});
