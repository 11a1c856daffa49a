import { failureOf, signal } from './support/failure.js';
import { startScriptedServer, type Reply, type ScriptedServer } from './support/scripted-server.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, NonRetryableError } from '../src/errors.js';
import { createBedrockProvider, type BedrockOptions } from '../src/llm/bedrock.js';

type FakeServer = ScriptedServer & { endpoint: string };

const servers: FakeServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function startServer(...replies: Reply[]): Promise<FakeServer> {
  const server = await startScriptedServer(...replies);
  const fake: FakeServer = { ...server, endpoint: `${server.url}` };
  servers.push(fake);
  return fake;
}

/** An answer as Bedrock's restJson1 protocol sends it; errors name their type in `x-amzn-errortype`. */
function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return (res) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': 'test-request-id', ...headers });
    res.end(JSON.stringify(body));
  };
}

function awsError(status: number, type: string, message: string): Reply {
  return json(status, { message }, { 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/` });
}

function converseAnswer(...texts: string[]): Reply {
  return json(200, {
    output: { message: { role: 'assistant', content: texts.map((text) => ({ text })) } },
    stopReason: 'end_turn',
    usage: { inputTokens: 3, outputTokens: 1, totalTokens: 4 },
    metrics: { latencyMs: 12 },
  });
}

const MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';

function provider(server: FakeServer, options: Partial<BedrockOptions> = {}) {
  return createBedrockProvider({ model: MODEL, region: 'us-east-1', endpoint: server.endpoint, ...options });
}


// Fake credentials through the SDK's own default chain. AWS_PROFILE would make the chain skip the
// environment, and IMDS must never be asked: only 127.0.0.1 may be reached.
const ENV = {
  AWS_ACCESS_KEY_ID: 'AKIDSWITCHYARDTEST',
  AWS_SECRET_ACCESS_KEY: 'switchyard-test-secret',
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_BEARER_TOKEN_BEDROCK: undefined,
  AWS_EC2_METADATA_DISABLED: 'true',
} as const;
const savedEnv: Record<string, string | undefined> = {};

beforeAll(() => {
  for (const [name, value] of Object.entries(ENV)) {
    savedEnv[name] = process.env[name];
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

afterAll(() => {
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('Bedrock provider', () => {
  it('calls Converse for the model and returns text and usage', async () => {
    const server = await startServer(converseAnswer('hi'));
    const llm = provider(server);
    expect(llm.name).toBe('bedrock');
    expect(llm.model).toBe(MODEL);

    const completion = await llm.complete({ prompt: 'Say hi', signal: signal() });

    expect(completion).toEqual({ text: 'hi', model: MODEL, usage: { promptTokens: 3, completionTokens: 1 } });
    expect(server.requests).toHaveLength(1);
    const [req] = server.requests;
    expect(req?.method).toBe('POST');
    expect(req?.url).toBe(`/model/${encodeURIComponent(MODEL)}/converse`);
    expect(JSON.parse(req?.body ?? '')).toEqual({ messages: [{ role: 'user', content: [{ text: 'Say hi' }] }] });
    // Signed with the credentials from the environment, for Bedrock in the given region.
    expect(req?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDSWITCHYARDTEST\/\d{8}\/us-east-1\/bedrock\/aws4_request/);
    expect(req?.headers.authorization).not.toContain('switchyard-test-secret');
  });

  it('joins several text blocks', async () => {
    const server = await startServer(converseAnswer('Hello', ', ', 'world'));
    const completion = await provider(server).complete({ prompt: 'x', signal: signal() });
    expect(completion.text).toBe('Hello, world');
  });

  it("turns a ValidationException into a non-retryable error with the service's message", async () => {
    const server = await startServer(awsError(400, 'ValidationException', 'bad model'));
    const err = await failureOf(provider(server).complete({ prompt: 'x', signal: signal() }));

    expect(err).toBeInstanceOf(NonRetryableError);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('bad model');
    expect(err.message).toContain('ValidationException');
    expect(server.requests).toHaveLength(1);
  });

  it('turns UnrecognizedClientException into a non-retryable credentials error', async () => {
    const server = await startServer(awsError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.'));
    const err = await failureOf(provider(server).complete({ prompt: 'x', signal: signal() }));

    expect(err).toBeInstanceOf(NonRetryableError);
    expect(err.message).toContain('credentials');
    expect(err.message).toContain('The security token included in the request is invalid.');
    expect(server.requests).toHaveLength(1);
  });

  it('lets the SDK retry a ThrottlingException, then succeeds', async () => {
    const server = await startServer(awsError(429, 'ThrottlingException', 'Too many requests'), converseAnswer('after throttling'));
    const completion = await provider(server).complete({ prompt: 'x', signal: signal() });

    expect(completion.text).toBe('after throttling');
    expect(server.requests).toHaveLength(2);
  });

  it('fails retryably once the retries for a 500 are spent', async () => {
    const server = await startServer(awsError(500, 'InternalServerException', 'try again'));
    const err = await failureOf(provider(server, { maxRetries: 1 }).complete({ prompt: 'x', signal: signal() }));

    expect(err.retryable).toBe(true);
    expect(err.code).toBe(ErrorCodes.NODE_FAILED);
    expect(err.message).toContain('InternalServerException');
    expect(err.message).toContain('try again');
    expect(err.message).toContain('after 2 attempts');
    expect(server.requests).toHaveLength(2);
  });

  it('times out a hung request and fails retryably', async () => {
    const server = await startServer('hang');
    const err = await failureOf(provider(server, { requestTimeoutMs: 200, maxRetries: 1 }).complete({ prompt: 'x', signal: signal() }));

    expect(err.retryable).toBe(true);
    expect(err.message).toContain('within 200 ms');
    expect(server.requests).toHaveLength(2);
  });

  it("ends at once on the caller's abort, with no further requests", async () => {
    const server = await startServer('hang');
    const controller = new AbortController();
    const pending = provider(server).complete({ prompt: 'x', signal: controller.signal });
    await server.requestCount(1);
    const abortedAt = Date.now();
    controller.abort();
    const err = await failureOf(pending);

    expect(err.code).toBe(ErrorCodes.CANCELLED);
    expect(Date.now() - abortedAt).toBeLessThan(1_000);
    expect(server.requests).toHaveLength(1);
  });
});
