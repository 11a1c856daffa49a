/**
 * The path a new user follows after `npm run deploy`, played on loopback with the real handlers, in the
 * order README "Deploy to AWS" gives it: the `keys` admin function creates the first keys (printed once,
 * never logged); `switchyard blueprints push` (here: PUT /blueprints/{id} through the deployed HTTP handler)
 * stores a blueprint version; a run of it starts through POST /runs on a password-protected Redis whose
 * token the functions read from (a fake) Secrets Manager; a worker that never had that blueprint runs it,
 * and, while it holds the run's job, protects its ECS task from scale-in (a fake ECS agent endpoint),
 * clearing the protection once idle; GET /runs/{id}?wait= gives the result.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiFromConfig, createHttpHandler, type HttpHandler } from '../functions/http.js';
import { createKeysHandler, type KeysHandler } from '../functions/keys.js';
import { resolveFunctionConfig } from '../functions/config.js';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import type { LlmProvider } from '../src/llm/types.js';
import { startLocalRedis, type LocalRedis } from '../src/local/redis-server.js';
import { createNodeKinds } from '../src/nodes/index.js';
import { readSecretFromSecretsManager } from '../src/redis-connection.js';
import type { SwitchyardWorker } from '../src/index.js';
import { OFF, ON, startFakeAgent } from './support/fake-ecs-agent.js';
import { sendJson, startJsonServer } from './support/fake-http.js';
import { startTestWorker } from './support/harness.js';

const TOKEN = `Tok3n${randomBytes(16).toString('hex')}`;
const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:switchyard-redis-DpLoYd';

/** An LLM that answers only once the test lets it: the worker holds the node's job meanwhile. */
function heldLlm() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const arrivals: Array<() => void> = [];
  let arrived = 0;
  const provider: LlmProvider = {
    name: 'openai',
    model: 'held',
    async complete(request) {
      arrived++;
      arrivals.splice(0).forEach((wake) => wake());
      await gate;
      return { text: `reviewed: ${request.prompt.slice(0, 40)}`, model: 'held' };
    },
  };
  return { provider, release, arrived: () => (arrived > 0 ? Promise.resolve() : new Promise<void>((resolve) => arrivals.push(resolve))) };
}

describe('the deployed path, on loopback', () => {
  let server: LocalRedis;
  let admin: Redis;
  let secrets: Awaited<ReturnType<typeof startJsonServer>>;
  const prefix = `dp${randomBytes(4).toString('hex')}`;
  let env: Record<string, string>;
  const saved = { ...process.env };
  const logLines: string[] = [];
  const closers: Array<() => Promise<void>> = [];
  let keys: KeysHandler;
  let http: HttpHandler;

  beforeAll(async () => {
    server = await startLocalRedis();
    admin = new Redis(server.url, { maxRetriesPerRequest: null });
    await admin.config('SET', 'requirepass', TOKEN);
    await admin.auth(TOKEN);
    secrets = await startJsonServer((_req, _body, res) =>
      sendJson(res, 200, { ARN: SECRET_ARN, Name: 'switchyard-redis', SecretString: TOKEN }, { 'content-type': 'application/x-amz-json-1.1' }),
    );
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    });
    // What serverless.yml gives the functions: the endpoint and the secret's ARN, never the token.
    env = { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(server.port), REDIS_TLS: 'false', REDIS_CLUSTER: 'false', REDIS_AUTH_SECRET_ARN: SECRET_ARN, SWITCHYARD_PREFIX: prefix, SWITCHYARD_QUEUE: prefix };
    const capture = (...args: unknown[]) => void logLines.push(args.map(String).join(' '));
    const spies = [vi.spyOn(console, 'log').mockImplementation(capture), vi.spyOn(console, 'error').mockImplementation(capture), vi.spyOn(console, 'warn').mockImplementation(capture)];
    closers.push(async () => spies.forEach((s) => s.mockRestore()));
    keys = createKeysHandler(() => resolveFunctionConfig(env), { readSecret: readSecretFromSecretsManager });
    closers.push(() => keys.close());
    http = createHttpHandler(() => createApiFromConfig(resolveFunctionConfig(env), readSecretFromSecretsManager));
    closers.push(() => http.close());
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    process.env = saved;
    await secrets?.close();
    admin?.disconnect();
    await server?.stop();
  });

  /** An API Gateway v2 (HTTP API) event, as the deployed routes deliver it. */
  const request = (method: string, path: string, key: string, body?: unknown, query = '') => ({
    version: '2.0',
    routeKey: `${method} ${path}`,
    rawPath: path,
    rawQueryString: query,
    isBase64Encoded: false,
    headers: { 'content-type': 'application/json', host: 'abc.execute-api.us-east-1.amazonaws.com', authorization: `Bearer ${key}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    requestContext: { http: { method, path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl/8.5.0' }, requestId: randomBytes(4).toString('hex'), routeKey: `${method} ${path}`, stage: '$default' },
  });

  it('first keys, a pushed blueprint, a run on a worker that never had it, scale-in protection while busy', async () => {
    // 1. The first keys, from the admin function (IAM-invoked; no network path to Redis needed).
    const runsKey = await keys({ action: 'create', tenant: 'acme', scopes: ['runs:read', 'runs:write'] });
    const opsKey = await keys({ action: 'create', tenant: 'acme', scopes: ['blueprints:write'], name: 'ops' });
    if (runsKey.action !== 'create' || opsKey.action !== 'create') throw new Error('not create results');

    // 2. A blueprint pushed as data: stored by content hash, no deploy.
    const blueprint = {
      id: 'deploy-check',
      nodes: [
        { id: 'review', uses: 'llm-process', params: { promptTemplate: 'Review this post: {{post}}', inputs: { post: 'post' } } },
        { id: 'answer', uses: 'output', params: { template: '{{review}}', inputs: { review: 'review' } } },
      ],
      edges: [{ source: 'review', target: 'answer' }],
    };
    expect((await http(request('PUT', '/blueprints/deploy-check', runsKey.key, blueprint))).statusCode).toBe(403);
    const pushed = await http(request('PUT', '/blueprints/deploy-check', opsKey.key, blueprint));
    expect(pushed.statusCode, pushed.body).toBe(201);
    const { version } = JSON.parse(pushed.body) as { version: string };

    // 3. A worker with no blueprints of its own, on ECS (task protection through the agent endpoint).
    const agent = await startFakeAgent();
    closers.push(() => agent.close());
    const llm = heldLlm();
    const workerRedis = new Redis({ port: server.port, password: TOKEN, maxRetriesPerRequest: null });
    const worker: SwitchyardWorker = await startTestWorker({
      redis: workerRedis,
      prefix,
      blueprints: new BlueprintRegistry(createNodeKinds({ llm: llm.provider })),
      workerId: 'fargate-task-1',
      taskProtection: { agentUri: agent.agentUri, clearAfterIdleMs: 50 },
    });
    closers.push(async () => {
      await worker.close();
      workerRedis.disconnect();
    });
    expect(agent.requests).toEqual([]);

    // 4. The first run, through the start endpoint: the pushed version, on the worker that never had it.
    const started = await http(request('POST', '/runs', runsKey.key, { blueprintId: 'deploy-check', input: { post: 'Shipping on Friday' } }));
    expect(started.statusCode, started.body).toBe(202);
    const { runId } = JSON.parse(started.body) as { runId: string };
    await llm.arrived();
    await agent.until((r) => r.length >= 1);
    expect(agent.requests.map((r) => r.body)).toEqual([ON]); // busy: protected from scale-in

    llm.release();
    const done = await http(request('GET', `/runs/${runId}`, runsKey.key, undefined, 'wait=15'));
    expect(done.statusCode, done.body).toBe(200);
    const view = JSON.parse(done.body) as { status: string; version: string; context: Record<string, unknown>; nodes: Record<string, { worker?: string }> };
    expect(view).toMatchObject({ status: 'completed', context: { final_output: 'reviewed: Review this post: Shipping on Friday' } });
    expect(view.nodes.review!.worker).toBe('fargate-task-1');
    expect((await admin.hget(`${prefix}:{${runId}}:state`, 'version'))).toBe(version);
    await agent.until((r) => r.length >= 2);
    expect(agent.requests.map((r) => r.body)).toEqual([ON, OFF]); // idle: scale-in may take the task again

    // Nothing the functions logged carries a key or the AUTH token.
    for (const line of logLines) {
      for (const secret of [runsKey.key, opsKey.key, TOKEN]) expect(line).not.toContain(secret);
    }
  });
});
