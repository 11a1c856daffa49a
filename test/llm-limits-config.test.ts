import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes, SwitchyardError } from '../src/errors.js';
import { findLlmLimit, llmLimitsFromEnv, parseLlmLimits } from '../src/llm/limits-config.js';
import { createOpenAiProvider } from '../src/llm/openai.js';
import { RateLimitedError } from '../src/llm/types.js';
import { signal } from './support/failure.js';
import { startScriptedServer, type Reply, type ScriptedServer } from './support/scripted-server.js';

describe('fleet-wide LLM limits: configuration', () => {
  it('reads SWITCHYARD_LLM_LIMITS and SWITCHYARD_LLM_LIMITS_FILE; the variable wins key by key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-limits-'));
    const file = join(dir, 'limits.json');
    writeFileSync(file, JSON.stringify({ openai: { maxConcurrent: 4 }, 'openai:gpt-4o-mini': { requestsPerMinute: 10 } }));
    expect(llmLimitsFromEnv({})).toBeUndefined();
    expect(llmLimitsFromEnv({ SWITCHYARD_LLM_LIMITS_FILE: file, SWITCHYARD_LLM_LIMITS: '{"openai:gpt-4o-mini":{"maxConcurrent":5,"requestsPerMinute":60,"tokensPerMinute":200000}}' })).toEqual({
      openai: { maxConcurrent: 4 },
      'openai:gpt-4o-mini': { maxConcurrent: 5, requestsPerMinute: 60, tokensPerMinute: 200000 },
    });
  });

  it('finds the model\'s limit, else the provider\'s, with every cap resolved', () => {
    const limits = { openai: { maxConcurrent: 4 }, 'bedrock:anthropic.claude-3-5-haiku-20241022-v1:0': { tokensPerMinute: 1000, windowMs: 5000 } };
    expect(findLlmLimit(limits, 'openai', 'gpt-4o')).toEqual({ id: 'openai', maxConcurrent: 4, requestsPerMinute: 0, tokensPerMinute: 0, windowMs: 60_000 });
    expect(findLlmLimit(limits, 'bedrock', 'anthropic.claude-3-5-haiku-20241022-v1:0')).toMatchObject({ id: 'bedrock:anthropic.claude-3-5-haiku-20241022-v1:0', tokensPerMinute: 1000, windowMs: 5000 });
    expect(findLlmLimit(limits, 'bedrock', 'other')).toBeUndefined();
  });

  it('says every problem at once, each with where it is', () => {
    const problems = (input: unknown) => {
      try {
        parseLlmLimits(input, 'SWITCHYARD_LLM_LIMITS');
      } catch (err) {
        expect(err).toBeInstanceOf(SwitchyardError);
        expect((err as SwitchyardError).code).toBe(ErrorCodes.CONFIG);
        return (err as Error).message;
      }
      return 'no error';
    };
    expect(problems({ 'openai:gpt-4o': { maxConcurrent: 0, requestsPerMinute: 1.5 }, 'anthropic:x': { maxConcurrent: 1 }, openai: {} })).toBe(
      'SWITCHYARD_LLM_LIMITS: openai:gpt-4o.maxConcurrent: Too small: expected number to be >0; openai:gpt-4o.requestsPerMinute: Invalid input: expected int, received number; anthropic:x: "anthropic:x" is not "<provider>" or "<provider>:<model>" (providers: offline, openai, bedrock; no spaces or braces); openai: set at least one of maxConcurrent, requestsPerMinute, tokensPerMinute',
    );
    expect(problems({ openai: { maxConcurrent: 1, burst: 3 } })).toMatch(/^SWITCHYARD_LLM_LIMITS: openai: Unrecognized key: "burst"/);
    expect(problems([1])).toMatch(/^SWITCHYARD_LLM_LIMITS: /);
    expect(() => llmLimitsFromEnv({ SWITCHYARD_LLM_LIMITS: '{nope' })).toThrow(/^SWITCHYARD_LLM_LIMITS: not valid JSON/);
    expect(() => llmLimitsFromEnv({ SWITCHYARD_LLM_LIMITS_FILE: '/no/such/limits.json' })).toThrow('SWITCHYARD_LLM_LIMITS_FILE=/no/such/limits.json: cannot read the file (ENOENT)');
  });
});

describe('the OpenAI provider under a fleet-wide limit', () => {
  const servers: ScriptedServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  const reply = (status: number, headers: Record<string, string>): Reply => (res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ error: { message: 'slow down' } }));
  };

  it('hands a 429 or 503 with Retry-After back at once instead of waiting it out itself', async () => {
    for (const status of [429, 503]) {
      const server = await startScriptedServer(reply(status, { 'retry-after': '30' }));
      servers.push(server);
      const llm = createOpenAiProvider({ baseUrl: server.url, model: 'm', retryBaseDelayMs: 1 });
      const err = await llm.complete({ prompt: 'x', signal: signal(), handBackRetryAfter: true }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RateLimitedError);
      expect(err).toMatchObject({ status, retryAfterMs: 30_000, retryable: true });
      expect(server.requests).toHaveLength(1);
    }
  });

  it('still retries on its own a 429 that gives no Retry-After', async () => {
    const server = await startScriptedServer(reply(429, {}), (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ message: { content: 'after all' } }] }));
    });
    servers.push(server);
    const llm = createOpenAiProvider({ baseUrl: server.url, model: 'm', retryBaseDelayMs: 1 });
    expect((await llm.complete({ prompt: 'x', signal: signal(), handBackRetryAfter: true })).text).toBe('after all');
    expect(server.requests).toHaveLength(2);
  });
});
