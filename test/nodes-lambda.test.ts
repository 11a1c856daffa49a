import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import type { BlueprintInput } from '../src/blueprint/schema.js';
import { compileGraph } from '../src/engine/graph.js';
import { runInMemory } from '../src/executor/memory-executor.js';
import { ValidationError } from '../src/errors.js';
import { builtinNodeKinds } from '../src/nodes/builtin.js';
import { createLambdaKind } from '../src/nodes/lambda.js';
import type { NodeKindRegistry } from '../src/types/node-kind.js';

/** One request the fake Lambda received. */
interface Invocation {
  functionName: string;
  invocationType: string | undefined;
  body: string;
}

/**
 * A local stand-in for the Lambda Invoke API (`POST /2015-03-31/functions/<name>/invocations`):
 * `echo` returns `{ got: <payload> }`, `fails` reports an unhandled function error, `missing` does not
 * exist, `throttled` answers 429, and `hang` never answers (it resolves `hung` with the response so a test can watch it close).
 */
class FakeLambda {
  readonly invocations: Invocation[] = [];
  private readonly server: Server = createServer((req, res) => void this.handle(req, res));
  private hungWaiters: Array<(res: ServerResponse) => void> = [];
  endpoint = '';

  async start(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.endpoint = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }

  /** Resolves with the response of the next `hang` invocation once it has arrived. */
  nextHang(): Promise<ServerResponse> {
    return new Promise((resolve) => this.hungWaiters.push(resolve));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"message":"unexpected request"}');
      return;
    }
    const functionName = decodeURIComponent(match[1]!);
    const body = Buffer.concat(chunks).toString('utf8');
    const invocationType = req.headers['x-amz-invocation-type'];
    this.invocations.push({ functionName, invocationType: Array.isArray(invocationType) ? invocationType[0] : invocationType, body });
    switch (functionName) {
      case 'fails':
        res
          .writeHead(200, { 'content-type': 'application/json', 'X-Amz-Function-Error': 'Unhandled' })
          .end(JSON.stringify({ errorMessage: 'kaboom', errorType: 'Error' }));
        return;
      case 'missing':
        res
          .writeHead(404, { 'content-type': 'application/json', 'x-amzn-errortype': 'ResourceNotFoundException' })
          .end(JSON.stringify({ Type: 'User', message: 'Function not found: missing' }));
        return;
      case 'throttled':
        res
          .writeHead(429, { 'content-type': 'application/json', 'x-amzn-errortype': 'TooManyRequestsException' })
          .end(JSON.stringify({ Type: 'User', message: 'Rate exceeded', Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' }));
        return;
      case 'hang':
        for (const wake of this.hungWaiters.splice(0)) wake(res);
        return;
      default:
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ got: JSON.parse(body) as unknown }));
    }
  }
}

const lambda = new FakeLambda();
let kinds: NodeKindRegistry;

beforeAll(async () => {
  await lambda.start();
  kinds = builtinNodeKinds().with(
    createLambdaKind({
      endpoint: lambda.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    }),
  );
});
afterAll(() => lambda.stop());

let blueprintSeq = 0;
function compile(blueprint: Omit<BlueprintInput, 'id'>) {
  const registry = new BlueprintRegistry(kinds);
  return compileGraph(registry.add({ id: `lambda-${++blueprintSeq}`, ...blueprint }), kinds);
}

function invocationsOf(functionName: string): Invocation[] {
  return lambda.invocations.filter((i) => i.functionName === functionName);
}

describe('lambda node kind', () => {
  it('sends the rendered payload template and outputs the decoded result to later nodes', async () => {
    const graph = compile({
      nodes: [
        {
          id: 'call',
          uses: 'lambda',
          params: { functionName: 'echo', payload: '{"city": {{city}}, "n": {{count}}}', inputs: { city: ['place', 'city'] } },
        },
        { id: 'say', uses: 'output', params: { template: 'result: {{call}}' } },
      ],
      edges: [{ source: 'call', target: 'say' }],
    });
    const before = invocationsOf('echo').length;
    const run = await runInMemory(graph, { kinds, input: { place: '"Oslo"', count: 3 } });

    expect(run.status).toBe('completed');
    const [sent] = invocationsOf('echo').slice(before);
    expect(sent).toEqual({ functionName: 'echo', invocationType: 'RequestResponse', body: '{"city": "Oslo", "n": 3}' });
    expect(run.outputs.call).toEqual({ got: { city: 'Oslo', n: 3 } });
    expect(run.context.final_output).toBe('result: {"got":{"city":"Oslo","n":3}}');
  });

  it('sends a rendered text that is not JSON as a JSON string', async () => {
    const graph = compile({ nodes: [{ id: 'call', uses: 'lambda', params: { functionName: 'echo', payload: 'hello {{who}}' } }] });
    const run = await runInMemory(graph, { kinds, input: { who: 'world' } });

    expect(run.status).toBe('completed');
    expect(invocationsOf('echo').at(-1)?.body).toBe('"hello world"');
    expect(run.outputs.call).toEqual({ got: 'hello world' });
  });

  it('sends the resolved inputs as a JSON object when there is no payload template', async () => {
    const graph = compile({
      nodes: [
        { id: 'first', uses: 'template', params: { template: 'drafted' } },
        { id: 'call', uses: 'lambda', params: { functionName: 'echo', inputs: { text: 'first', topic: 'topic', absent: 'nowhere' } } },
      ],
      edges: [{ source: 'first', target: 'call' }],
    });
    const run = await runInMemory(graph, { kinds, input: { topic: { name: 'ships' } } });

    expect(run.status).toBe('completed');
    // An input with no value is undefined and so left out of the JSON.
    expect(JSON.parse(invocationsOf('echo').at(-1)!.body)).toEqual({ text: 'drafted', topic: { name: 'ships' } });
    expect(run.outputs.call).toEqual({ got: { text: 'drafted', topic: { name: 'ships' } } });
  });

  it("fails the run without retrying when the function reports an error, with the function's message", async () => {
    const graph = compile({
      nodes: [{ id: 'call', uses: 'lambda', params: { functionName: 'fails', payload: '{}' }, config: { maxRetries: 2, retryDelay: 0 } }],
    });
    const before = invocationsOf('fails').length;
    const run = await runInMemory(graph, { kinds });

    expect(run.status).toBe('failed');
    expect(run.error?.message).toBe('Lambda fails failed: Error: kaboom');
    expect(run.error?.retryable).toBe(false);
    expect(run.nodes.call?.attempts).toBe(1);
    expect(invocationsOf('fails').length - before).toBe(1);
  });

  it('fails the run without retrying when the function does not exist', async () => {
    const graph = compile({
      nodes: [{ id: 'call', uses: 'lambda', params: { functionName: 'missing', payload: '{}' }, config: { maxRetries: 2, retryDelay: 0 } }],
    });
    const run = await runInMemory(graph, { kinds });

    expect(run.status).toBe('failed');
    expect(run.error?.message).toMatch(/ResourceNotFoundException: Function not found: missing/);
    expect(run.error?.retryable).toBe(false);
    expect(run.nodes.call?.attempts).toBe(1);
  });

  it('retries when Lambda throttles, then fails with a retryable error', async () => {
    const graph = compile({
      nodes: [{ id: 'call', uses: 'lambda', params: { functionName: 'throttled', payload: '{}' }, config: { maxRetries: 1, retryDelay: 0 } }],
    });
    const before = invocationsOf('throttled').length;
    const run = await runInMemory(graph, { kinds });

    expect(run.status).toBe('failed');
    expect(run.error?.message).toMatch(/TooManyRequestsException: Rate exceeded/);
    expect(run.error?.retryable).toBe(true);
    expect(run.nodes.call?.attempts).toBe(2);
    expect(invocationsOf('throttled').length - before).toBe(2); // maxAttempts: 1, so the SDK itself did not retry
  });

  it('aborts the HTTP request when the run is cancelled', async () => {
    const graph = compile({ nodes: [{ id: 'call', uses: 'lambda', params: { functionName: 'hang', payload: '{}' } }] });
    const cancel = new AbortController();
    const hung = lambda.nextHang();
    const running = runInMemory(graph, { kinds, signal: cancel.signal });
    const res = await hung;
    const closed = once(res, 'close');

    cancel.abort();
    await closed; // only the SDK dropping the connection closes it: the fake never answers
    expect(res.writableEnded).toBe(false);
    expect((await running).status).toBe('cancelled');
  });

  it.each([
    [{ payload: '{}' }, '$.nodes[0].params.functionName'],
    [{ functionName: 'echo' }, 'needs "payload" (a template) or "inputs"'],
    [{ functionName: 'echo', payload: '{}', qualifier: 'live' }, 'qualifier'],
    [{ functionName: '', inputs: {} }, '$.nodes[0].params.functionName'],
  ])('rejects invalid params %j when the blueprint is added', (params, expected) => {
    const registry = new BlueprintRegistry(kinds);
    let error: unknown;
    try {
      registry.add({ id: 'bad-lambda', nodes: [{ id: 'call', uses: 'lambda', params }] });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).message).toContain(expected);
  });
});
