import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { createLogger, silentLogger } from '../src/logger.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { openScope } from './support/harness.js';
import { killStarted, startCli } from './support/processes.js';

describe('logs', () => {
  afterAll(() => killStarted());

  it('are JSON lines with level, ISO time, msg and the fields of the logger and its children', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l), fields: { component: 'worker' } });
    log.child({ runId: 'r-1', nodeId: 'check_pii', attempt: 2 }).warn('node attempt failed; will retry', { delayMs: 200 });
    log.debug('below the level');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toEqual({ level: 'warn', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), component: 'worker', runId: 'r-1', nodeId: 'check_pii', attempt: 2, delayMs: 200, msg: 'node attempt failed; will retry' });
    silentLogger.child({ a: 1 }).error('nothing');
  });

  it('never write secrets: secret-looking field names at the top level, and known names nested', () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l), level: 'debug', fields: { dbPassword: 'p1' } });
    log.child({ sessionToken: 't1' }).info('calling', {
      apiKey: 'sk-live-1',
      OPENAI_API_KEY: 'sk-live-2',
      clientSecret: 's1',
      headers: { authorization: 'Bearer sy_abc', 'x-api-key': 'sy_def', accept: 'json' },
      request: { body: { password: 'p2' } },
      keep: 'visible',
    });
    const text = lines.join('\n');
    for (const secret of ['p1', 't1', 'sk-live-1', 'sk-live-2', 's1', 'sy_abc', 'sy_def', 'p2']) expect(text).not.toContain(secret);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ dbPassword: '[redacted]', sessionToken: '[redacted]', apiKey: '[redacted]', headers: { authorization: '[redacted]', 'x-api-key': '[redacted]', accept: 'json' }, keep: 'visible' });
  });

  it('a worker process logs JSON lines that carry runId, nodeId and attempt; pretty lines with SWITCHYARD_LOG_FORMAT=pretty', async () => {
    const prefix = `logs${randomBytes(3).toString('hex')}`;
    const env = { REDIS_URL: inject('redisUrl'), SWITCHYARD_PREFIX: prefix, SWITCHYARD_QUEUE: prefix, SWITCHYARD_LOG_LEVEL: 'debug' };
    const registry = await BlueprintRegistry.load(['workflows'], createNodeKinds());
    const scope = openScope({ prefix });
    const client = scope.createClient({ blueprints: registry });
    try {
      const worker = await startCli(['worker', '--blueprints', 'workflows'], env, /worker ready/);
      const run = await client.start('content-moderation', registry.get('content-moderation')!.blueprint.metadata!.sampleInput as Record<string, unknown>);
      expect((await run.result({ timeoutMs: 20_000 })).status).toBe('completed');
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
      const entries = worker.log().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(entries[0]).toMatchObject({ level: 'info', msg: 'worker ready', worker: expect.any(String), concurrency: 64 });
      expect(entries).toContainEqual(expect.objectContaining({ level: 'debug', msg: 'started child run', runId: run.runId, nodeId: 'redact', attempt: 1, worker: expect.any(String) }));
      expect(entries.at(-1)).toMatchObject({ msg: 'worker stopped' });

      const pretty = await startCli(['worker', '--blueprints', 'workflows'], { ...env, SWITCHYARD_LOG_FORMAT: 'pretty', SWITCHYARD_LOG_LEVEL: 'info' }, /worker ready/);
      pretty.child.kill('SIGTERM');
      expect(await pretty.exited).toBe(0);
      expect(pretty.log()).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO.*: worker ready/m);
      expect(() => JSON.parse(pretty.log().split('\n')[0]!)).toThrow();
    } finally {
      await scope.close();
    }
  });
});
