/**
 * functions/keys.ts, the admin function `serverless invoke -f keys` calls: the real handler on loopback,
 * against a password-protected Redis whose AUTH token it reads from a (fake) Secrets Manager, as deployed.
 * The key it creates then starts a run through the HTTP start handler.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiFromConfig, createHttpHandler, type HttpHandler } from '../functions/http.js';
import { createKeysHandler, parseKeysEvent, type KeysHandler } from '../functions/keys.js';
import { resolveFunctionConfig } from '../functions/config.js';
import { loadBundledBlueprints } from '../functions/workflows.js';
import { startLocalRedis, type LocalRedis } from '../src/local/redis-server.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { readSecretFromSecretsManager } from '../src/redis-connection.js';
import type { SwitchyardWorker } from '../src/index.js';
import { sendJson, startJsonServer } from './support/fake-http.js';
import { startTestWorker } from './support/harness.js';

const TOKEN = `Tok3n${randomBytes(16).toString('hex')}`;
const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:switchyard-redis-AbCdEf';

describe('keys admin function', () => {
  let server: LocalRedis;
  let admin: Redis;
  let secrets: Awaited<ReturnType<typeof startJsonServer>>;
  const secretCalls: string[] = [];
  const prefix = `fk${randomBytes(4).toString('hex')}`;
  let env: Record<string, string>;
  const saved = { ...process.env };
  const logLines: string[] = [];
  let handler: KeysHandler;
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    server = await startLocalRedis();
    admin = new Redis(server.url, { maxRetriesPerRequest: null });
    await admin.config('SET', 'requirepass', TOKEN);
    await admin.auth(TOKEN);
    secrets = await startJsonServer((req, body, res) => {
      secretCalls.push(`${req.headers['x-amz-target']} ${body.SecretId}`);
      sendJson(res, 200, { ARN: SECRET_ARN, Name: 'switchyard-redis', SecretString: TOKEN }, { 'content-type': 'application/x-amz-json-1.1' });
    });
    // What the AWS SDK reads: credentials and the (fake) Secrets Manager endpoint.
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    });
    // The environment serverless.yml gives the functions: endpoint and secret ARN, never the token.
    env = { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(server.port), REDIS_TLS: 'false', REDIS_CLUSTER: 'false', REDIS_AUTH_SECRET_ARN: SECRET_ARN, SWITCHYARD_PREFIX: prefix, SWITCHYARD_QUEUE: prefix };
    // The function's own logger (JSON lines through console, as on Lambda), captured: everything it prints.
    const capture = (...args: unknown[]) => void logLines.push(args.map(String).join(' '));
    const spies = [vi.spyOn(console, 'log').mockImplementation(capture), vi.spyOn(console, 'error').mockImplementation(capture), vi.spyOn(console, 'warn').mockImplementation(capture)];
    closers.push(async () => spies.forEach((s) => s.mockRestore()));
    handler = createKeysHandler(() => resolveFunctionConfig(env), { readSecret: readSecretFromSecretsManager });
    closers.push(() => handler.close());
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    process.env = saved;
    await secrets?.close();
    admin?.disconnect();
    await server?.stop();
  });

  it('creates a key (returned once, never logged) that starts a run through the HTTP start handler; lists and revokes it', async () => {
    const created = await handler({ action: 'create', tenant: 'acme', scopes: ['runs:read', 'runs:write'] });
    expect(created).toMatchObject({ action: 'create', tenant: 'acme', scopes: ['runs:read', 'runs:write'], name: 'admin' });
    if (created.action !== 'create') throw new Error('not a create result');
    expect(created.key).toMatch(/^sy_[A-Za-z0-9_-]{43}$/);
    expect(created.id).toMatch(/^key_/);
    expect(secretCalls).toEqual([`secretsmanager.GetSecretValue ${SECRET_ARN}`]);
    // Stored as its digest only.
    const stored = await admin.hgetall(`${prefix}:apikeys`);
    expect(Object.keys(stored)).toEqual([created.id]);
    expect(JSON.stringify(stored)).not.toContain(created.key);

    // The key works against the deployed start handler (auth on, as by default), with a worker running the run.
    const blueprints = loadBundledBlueprints(createNodeKinds());
    const workerRedis = new Redis({ port: server.port, password: TOKEN, maxRetriesPerRequest: null });
    const worker: SwitchyardWorker = await startTestWorker({ redis: workerRedis, prefix, blueprints, concurrency: 4, workerId: 'keys-fn' });
    closers.push(async () => {
      await worker.close();
      workerRedis.disconnect();
    });
    const http: HttpHandler = createHttpHandler(() => createApiFromConfig(resolveFunctionConfig(env), readSecretFromSecretsManager));
    closers.push(() => http.close());
    const body = JSON.stringify({ blueprintId: 'greeting', input: { name: 'Acme' } });
    const event = (headers: Record<string, string>) => ({
      version: '2.0',
      routeKey: 'POST /runs',
      rawPath: '/runs',
      rawQueryString: '',
      isBase64Encoded: false,
      headers: { 'content-type': 'application/json', host: 'abc.execute-api.us-east-1.amazonaws.com', ...headers },
      body,
      requestContext: { http: { method: 'POST', path: '/runs', protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl/8.5.0' }, requestId: 'r1', routeKey: 'POST /runs', stage: '$default' },
    });
    expect((await http(event({}))).statusCode).toBe(401);
    const started = await http(event({ authorization: `Bearer ${created.key}` }));
    expect(started.statusCode, started.body).toBe(202);
    const { runId } = JSON.parse(started.body);
    const done = await http({ ...event({ authorization: `Bearer ${created.key}` }), routeKey: 'GET /runs/{runId}', rawPath: `/runs/${runId}`, rawQueryString: 'wait=15', body: undefined as unknown as string, requestContext: { http: { method: 'GET', path: `/runs/${runId}` } } });
    expect(done.statusCode, done.body).toBe(200);
    expect(JSON.parse(done.body)).toMatchObject({ status: 'completed', context: { final_output: 'Hello, Acme! Welcome to Switchyard.' } });

    const listed = await handler({ action: 'list' });
    expect(listed).toEqual({ action: 'list', keys: [expect.objectContaining({ id: created.id, tenant: 'acme', scopes: ['runs:read', 'runs:write'], name: 'admin' })] });
    expect(JSON.stringify(listed)).not.toContain(created.key);
    expect(await handler({ action: 'revoke', id: created.id })).toEqual({ action: 'revoke', id: created.id, revoked: true });
    expect((await http(event({ authorization: `Bearer ${created.key}` }))).statusCode).toBe(401);
    await expect(handler({ action: 'revoke', id: created.id })).rejects.toThrow(`no API key "${created.id}"`);

    // What the function logged: ids, tenants and scopes; never the key, never the AUTH token.
    expect(logLines.map((l) => JSON.parse(l).msg).filter((m) => !m.includes('redis'))).toEqual(['API key created', 'API keys listed', 'API key revoked', 'no such API key']);
    expect(JSON.parse(logLines[0]!)).toMatchObject({ level: 'info', id: created.id, tenant: 'acme', scopes: ['runs:read', 'runs:write'] });
    for (const line of logLines) {
      expect(line).not.toContain(created.key);
      expect(line).not.toContain(created.key.slice(3));
      expect(line).not.toContain(TOKEN);
    }
    // The secret was read once for the keys handler and once for the HTTP handler's build.
    expect(secretCalls).toHaveLength(2);
  });

  it('rejects a malformed event with one clear error naming the problems and the accepted shapes', async () => {
    const bad = async (event: unknown) => {
      const err = await handler(event).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err, JSON.stringify(event)).toBeInstanceOf(Error);
      expect(err!.message.split('\n')).toHaveLength(1);
      expect(err!.message).toMatch(/^invalid keys event \(.*\); expected \{"action":"create"/);
      return err!.message;
    };
    expect(await bad({ action: 'create', tenant: 'no spaces allowed' })).toMatch(/tenant: must be 1-100 letters/);
    expect(await bad({ action: 'create', tenant: 'acme', scopes: ['runs:admin'] })).toMatch(/scopes\.0:/);
    expect(await bad({ action: 'create', tenant: 'acme', scopes: [] })).toMatch(/a key needs at least one scope/);
    expect(await bad({ action: 'delete' })).toMatch(/action:/);
    expect(await bad({ action: 'revoke' })).toMatch(/id:/);
    expect(await bad({ action: 'list', key: 'sy_not-to-be-echoed' })).not.toContain('sy_not-to-be-echoed');
    expect(await bad(null)).toMatch(/event:/);
    // A JSON string (as some invokers send) is read as the event.
    expect(parseKeysEvent('{"action":"list"}')).toEqual({ action: 'list' });
    const rejected = logLines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'rejected keys event');
    expect(rejected).toHaveLength(7);
    for (const line of rejected) expect(line).toMatchObject({ level: 'warn', error: expect.stringMatching(/^invalid keys event/) });
    expect(JSON.stringify(rejected)).not.toContain('sy_not-to-be-echoed');
  });
});
