import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { createLlmProvider } from '../../src/llm/index.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import { startHarness, type Harness } from '../support/harness.js';
import { sendJson, startJsonServer } from '../support/fake-http.js';

/**
 * The LLM kinds and the lambda kind on real workers (Redis + BullMQ), against local servers that speak
 * the OpenAI Chat Completions, Bedrock Converse and Lambda Invoke wire protocols.
 */
const agent = {
  id: 'agent',
  nodes: [
    { id: 'ask', uses: 'llm-process', params: { promptTemplate: 'Say hello to {{name}}', inputs: { name: 'name' } } },
    { id: 'check', uses: 'llm-condition', params: { promptTemplate: 'CONDITION: is "{{greeting}}" friendly?', inputs: { greeting: 'ask' } } },
    { id: 'route', uses: 'llm-router', params: { promptTemplate: 'ROUTE: pick approve or reject' } },
    { id: 'invoke', uses: 'lambda', params: { functionName: 'shout', payload: '{"text": "{{greeting}}"}', inputs: { greeting: 'ask' } } },
    { id: 'rejected', uses: 'template', params: { template: 'no' } },
    { id: 'final', uses: 'output', params: { template: '{{loud}}', inputs: { loud: 'invoke' } } },
  ],
  edges: [
    { source: 'ask', target: 'check' },
    { source: 'check', target: 'route', action: 'true' },
    { source: 'route', target: 'invoke', action: 'approve' },
    { source: 'route', target: 'rejected', action: 'reject' },
    { source: 'invoke', target: 'final' },
  ],
};

describe('LLM and Lambda node kinds on distributed workers', () => {
  let openai: Awaited<ReturnType<typeof startJsonServer>>;
  let bedrock: Awaited<ReturnType<typeof startJsonServer>>;
  let lambda: Awaited<ReturnType<typeof startJsonServer>>;
  const prompts: string[] = [];
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID = 'test';
    process.env.AWS_SECRET_ACCESS_KEY = 'test';
    delete process.env.AWS_PROFILE;
    openai = await startJsonServer((req, body, res) => {
      const prompt = String(body.messages?.[0]?.content ?? '');
      prompts.push(prompt);
      const text = prompt.startsWith('CONDITION') ? 'True.' : prompt.startsWith('ROUTE') ? ' approve \n' : 'hello Ada';
      sendJson(res, 200, { id: 'c1', model: body.model, choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } });
    });
    bedrock = await startJsonServer((req, body, res) => {
      sendJson(res, 200, { output: { message: { role: 'assistant', content: [{ text: `bedrock says: ${body.messages[0].content[0].text}` }] } }, stopReason: 'end_turn', usage: { inputTokens: 7, outputTokens: 3, totalTokens: 10 } });
    });
    lambda = await startJsonServer((req, body, res) => {
      if (req.url === '/2015-03-31/functions/shout/invocations') sendJson(res, 200, { loud: String(body.text).toUpperCase() });
      else sendJson(res, 404, { message: 'Function not found' }, { 'x-amzn-errortype': 'ResourceNotFoundException' });
    });
  });
  afterAll(async () => {
    process.env = savedEnv;
    await Promise.all([openai.close(), bedrock.close(), lambda.close()]);
  });

  it('runs llm-process, llm-condition, llm-router (OpenAI-compatible) and lambda, recording token usage per node and per run', async () => {
    const kinds = createNodeKinds({
      llm: createLlmProvider({ provider: 'openai', model: 'test-model', openai: { apiKey: 'sk-test', baseUrl: openai.url } }),
      lambda: { endpoint: lambda.url, region: 'us-east-1', maxAttempts: 1 },
    });
    const registry = new BlueprintRegistry(kinds);
    registry.add(agent);
    const h: Harness = await startHarness({ blueprints: registry });
    try {
      const view = await (await h.client.start('agent', { name: 'Ada' })).result({ timeoutMs: 20_000 });
      expect(view.status).toBe('completed');
      expect(view.outputs).toMatchObject({ ask: 'hello Ada', check: 'true', route: 'approve', invoke: { loud: 'HELLO ADA' } });
      expect(view.nodes.rejected!.status).toBe('skipped');
      expect(view.context.final_output).toBe('{"loud":"HELLO ADA"}');
      expect(view.nodes.ask).toMatchObject({ usage: { promptTokens: 10, completionTokens: 5 }, meta: { provider: 'openai', model: 'test-model' } });
      expect(view.usage).toEqual({ promptTokens: 30, completionTokens: 15 });
      expect(prompts).toContain('CONDITION: is "hello Ada" friendly?');
    } finally {
      await h.close();
    }
  });

  it('runs llm-process on Bedrock (Converse API)', async () => {
    const kinds = createNodeKinds({ llm: createLlmProvider({ provider: 'bedrock', model: 'anthropic.test', bedrock: { endpoint: bedrock.url, region: 'us-east-1' } }) });
    const registry = new BlueprintRegistry(kinds);
    registry.add({ id: 'ask', nodes: [{ id: 'ask', uses: 'llm-process', params: { promptTemplate: 'Hi {{who}}', inputs: { who: 'who' } } }] });
    const h = await startHarness({ blueprints: registry });
    try {
      const view = await (await h.client.start('ask', { who: 'there' })).result({ timeoutMs: 20_000 });
      expect(view.status).toBe('completed');
      expect(view.outputs.ask).toBe('bedrock says: Hi there');
      expect(view.usage).toEqual({ promptTokens: 7, completionTokens: 3 });
      expect(view.nodes.ask!.meta).toMatchObject({ provider: 'bedrock' });
    } finally {
      await h.close();
    }
  });
});
