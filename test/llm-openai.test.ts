import { failureOf, signal } from './support/failure.js';
import { startScriptedServer, type Reply, type ScriptedServer } from './support/scripted-server.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes, NonRetryableError } from '../src/errors.js';
import { createOpenAiProvider, type OpenAiOptions } from '../src/llm/openai.js';

type FakeServer = ScriptedServer & { baseUrl: string };

const servers: FakeServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function startServer(...replies: Reply[]): Promise<FakeServer> {
  const server = await startScriptedServer(...replies);
  const fake: FakeServer = { ...server, baseUrl: `${server.url}/v1` };
  servers.push(fake);
  return fake;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return (res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
}

function chatAnswer(content: string, extra: Record<string, unknown> = {}): Reply {
  return json(200, {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    model: 'gpt-test-0613',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
    ...extra,
  });
}

const API_KEY = 'sk-test-secret-4f8a1c';

function provider(server: FakeServer, options: Partial<OpenAiOptions> = {}) {
  return createOpenAiProvider({ baseUrl: server.baseUrl, model: 'gpt-test', apiKey: API_KEY, retryBaseDelayMs: 1, ...options });
}


describe('OpenAI-compatible provider', () => {
  it('sends the model, the prompt and the key, and returns text, usage and model', async () => {
    const server = await startServer(chatAnswer('hello there'));
    const llm = provider(server);
    expect(llm.name).toBe('openai');
    expect(llm.model).toBe('gpt-test');

    const completion = await llm.complete({ prompt: 'Say hi', signal: signal() });

    expect(completion).toEqual({ text: 'hello there', model: 'gpt-test-0613', usage: { promptTokens: 5, completionTokens: 2 } });
    expect(server.requests).toHaveLength(1);
    const [req] = server.requests;
    expect(req?.method).toBe('POST');
    expect(req?.url).toBe('/v1/chat/completions');
    expect(req?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(req?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(req?.body ?? '')).toEqual({ model: 'gpt-test', messages: [{ role: 'user', content: 'Say hi' }] });
  });

  it('sends no authorization header without a key, and falls back to the configured model', async () => {
    const server = await startServer(json(200, { choices: [{ message: { role: 'assistant', content: 'ok' } }] }));
    const completion = await provider(server, { apiKey: undefined, baseUrl: `${server.baseUrl}/` }).complete({ prompt: 'x', signal: signal() });

    expect(completion).toEqual({ text: 'ok', model: 'gpt-test' });
    expect(server.requests[0]?.headers.authorization).toBeUndefined();
    expect(server.requests[0]?.url).toBe('/v1/chat/completions');
  });

  it('honours Retry-After: 0 on a 429 instead of its own (long) backoff', async () => {
    const server = await startServer(json(429, { error: { message: 'slow down' } }, { 'retry-after': '0' }), chatAnswer('after 429'));
    const completion = await provider(server, { retryBaseDelayMs: 60_000 }).complete({ prompt: 'x', signal: signal() });

    expect(completion.text).toBe('after 429');
    expect(server.requests).toHaveLength(2);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    const past = new Date(Date.now() - 5_000).toUTCString();
    const server = await startServer(json(429, { error: { message: 'slow down' } }, { 'retry-after': past }), chatAnswer('after date'));
    const completion = await provider(server, { retryBaseDelayMs: 60_000 }).complete({ prompt: 'x', signal: signal() });

    expect(completion.text).toBe('after date');
    expect(server.requests).toHaveLength(2);
  });

  it('retries 503s and then succeeds', async () => {
    const unavailable = json(503, { error: { message: 'overloaded' } });
    const server = await startServer(unavailable, unavailable, chatAnswer('third time'));
    const completion = await provider(server).complete({ prompt: 'x', signal: signal() });

    expect(completion.text).toBe('third time');
    expect(server.requests).toHaveLength(3);
  });

  it('gives up after maxRetries with a retryable error quoting the server', async () => {
    const server = await startServer(json(503, { error: { message: 'overloaded' } }));
    const err = await failureOf(provider(server, { maxRetries: 2 }).complete({ prompt: 'x', signal: signal() }));

    expect(err.retryable).toBe(true);
    expect(err.code).toBe(ErrorCodes.NODE_FAILED);
    expect(err.message).toBe(`OpenAI-compatible server at ${server.baseUrl} answered 503 after 3 attempts: overloaded`);
    expect(server.requests).toHaveLength(3);
  });

  it('treats 401 as non-retryable and never repeats the key', async () => {
    // Servers often quote the key back; it must not reach our error (and so the logs).
    const server = await startServer(json(401, { error: { message: `Incorrect API key provided: ${API_KEY}` } }));
    const err = await failureOf(provider(server).complete({ prompt: 'x', signal: signal() }));

    expect(err).toBeInstanceOf(NonRetryableError);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('API key was rejected');
    expect(err.message).not.toContain(API_KEY);
    expect(err.message).not.toContain('4f8a1c');
    expect(server.requests).toHaveLength(1);
  });

  it("treats 400 as non-retryable with the server's message", async () => {
    const server = await startServer(json(400, { error: { message: 'bad thing', type: 'invalid_request_error' } }));
    const err = await failureOf(provider(server).complete({ prompt: 'x', signal: signal() }));

    expect(err).toBeInstanceOf(NonRetryableError);
    expect(err.message).toContain('bad thing');
    expect(err.message).toContain('400');
    expect(server.requests).toHaveLength(1);
  });

  it('times out a hung request, retries it once, then fails retryably', async () => {
    const server = await startServer('hang');
    const err = await failureOf(provider(server, { requestTimeoutMs: 200, maxRetries: 1 }).complete({ prompt: 'x', signal: signal() }));

    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`no answer from ${server.baseUrl} within 200 ms`);
    expect(server.requests).toHaveLength(2);
  });

  it("ends at once on the caller's abort, with no further requests", async () => {
    const server = await startServer('hang');
    const controller = new AbortController();
    const pending = provider(server, { maxRetries: 3 }).complete({ prompt: 'x', signal: controller.signal });
    await server.requestCount(1);
    const abortedAt = Date.now();
    controller.abort();
    const err = await failureOf(pending);

    expect(err.code).toBe(ErrorCodes.CANCELLED);
    expect(err.retryable).toBe(false);
    expect(Date.now() - abortedAt).toBeLessThan(1_000);
    expect(server.requests).toHaveLength(1);
  });

  it("ends a long Retry-After wait on the caller's abort", async () => {
    const server = await startServer(json(503, { error: { message: 'busy' } }, { 'retry-after': '30' }));
    const controller = new AbortController();
    const pending = provider(server).complete({ prompt: 'x', signal: controller.signal });
    await server.requestCount(1);
    controller.abort();
    const err = await failureOf(pending);

    expect(err.code).toBe(ErrorCodes.CANCELLED);
    expect(server.requests).toHaveLength(1);
  });

  it('sends nothing when the signal is already aborted', async () => {
    const server = await startServer(chatAnswer('never'));
    const err = await failureOf(provider(server).complete({ prompt: 'x', signal: AbortSignal.abort() }));

    expect(err.code).toBe(ErrorCodes.CANCELLED);
    expect(server.requests).toHaveLength(0);
  });

  it('retries a body that is not JSON, then names the problem', async () => {
    const server = await startServer((res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>gateway</html>');
    });
    const err = await failureOf(provider(server, { maxRetries: 1 }).complete({ prompt: 'x', signal: signal() }));

    expect(err.retryable).toBe(true);
    expect(err.message).toContain('malformed');
    expect(err.message).toContain('not JSON');
    expect(server.requests).toHaveLength(2);
  });

  it('retries an answer without choices, then names what was missing', async () => {
    const server = await startServer(json(200, { id: 'x', choices: [] }));
    const err = await failureOf(provider(server, { maxRetries: 0 }).complete({ prompt: 'x', signal: signal() }));

    expect(err.retryable).toBe(true);
    expect(err.message).toContain('no choices');
    expect(err.message).toContain('after 1 attempt');
    expect(server.requests).toHaveLength(1);
  });

  it('reports an unreachable server as retryable', async () => {
    const server = await startServer(chatAnswer('unused'));
    const { baseUrl } = server;
    await server.close();
    const err = await failureOf(
      createOpenAiProvider({ baseUrl, model: 'gpt-test', maxRetries: 1, retryBaseDelayMs: 1 }).complete({ prompt: 'x', signal: signal() }),
    );

    expect(err.retryable).toBe(true);
    expect(err.message).toContain('could not reach');
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('rejects bad options early', () => {
    expect(() => createOpenAiProvider({ model: '' })).toThrow(/model/);
    expect(() => createOpenAiProvider({ model: 'm', baseUrl: 'not a url' })).toThrow(/baseUrl/);
    expect(() => createOpenAiProvider({ model: 'm', maxRetries: -1 })).toThrow(/maxRetries/);
  });
});
