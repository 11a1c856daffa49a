/**
 * The admin path for API keys on AWS, where Redis is reachable only inside the VPC: a function with no
 * HTTP event, invoked with IAM (lambda:InvokeFunction on this one function):
 *
 *   serverless invoke -f keys --data '{"action":"create","tenant":"acme","scopes":["runs:read","runs:write"]}'
 *   serverless invoke -f keys --data '{"action":"list"}'
 *   serverless invoke -f keys --data '{"action":"revoke","id":"key_Q2x9v0aLk1sP"}'
 *
 * `create` returns the new key once, in the invocation's result (which Lambda does not log); the function
 * logs the key's id, tenant and scopes, never the key. Keys are the same as `switchyard keys` makes
 * (src/api/keys.ts): only their SHA-256 is stored.
 */
import { z } from 'zod';
import { API_SCOPES, ApiKeyStore, DEFAULT_SCOPES, TENANT_PATTERN, type ApiKeyInfo, type ApiScope } from '../src/api/keys.js';
import { ErrorCodes, SwitchyardError } from '../src/errors.js';
import type { RedisClient } from '../src/store/redis-store.js';
import { connectRedis, resolveFunctionConfig, type FunctionConfig, type SecretReader } from './config.js';

const KeysEventSchema = z.discriminatedUnion('action', [
  z
    .object({
      action: z.literal('create'),
      tenant: z.string().regex(TENANT_PATTERN, 'must be 1-100 letters, digits, ".", "_" or "-"'),
      scopes: z.array(z.enum(API_SCOPES)).min(1, 'a key needs at least one scope').default([...DEFAULT_SCOPES]),
      name: z.string().trim().min(1, 'must not be empty').max(100).default('admin'),
    })
    .strict(),
  z.object({ action: z.literal('list') }).strict(),
  z.object({ action: z.literal('revoke'), id: z.string().min(1, 'name the key id (keys list shows them)').max(100) }).strict(),
]);

/** What `serverless invoke -f keys --data` takes. */
export type KeysEvent = z.input<typeof KeysEventSchema>;

export type KeysResult =
  | { action: 'create'; key: string; id: string; tenant: string; scopes: ApiScope[]; name: string }
  | { action: 'list'; keys: ApiKeyInfo[] }
  | { action: 'revoke'; id: string; revoked: true };

/** One log line: what happened, never a key (nor the AUTH token). */
export type KeysLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** JSON lines on stdout, which the Lambda runtime ships to CloudWatch Logs. */
const jsonLog: KeysLog = (level, msg, fields) => console.log(JSON.stringify({ level, msg, ...fields }));

/** The invoked handler; `close` is for tests (Lambda never calls it). */
export interface KeysHandler {
  (event: unknown): Promise<KeysResult>;
  close(): Promise<void>;
}

/**
 * Checks the event with zod: one error naming every problem and the accepted shapes.
 * @throws {SwitchyardError} VALIDATION
 */
export function parseKeysEvent(event: unknown): z.output<typeof KeysEventSchema> {
  const parsed = KeysEventSchema.safeParse(typeof event === 'string' ? safeJson(event) : event);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'event'}: ${i.message}`).join('; ');
  throw new SwitchyardError(
    ErrorCodes.VALIDATION,
    `invalid keys event (${problems}); expected {"action":"create","tenant":"acme","scopes":["runs:read","runs:write"],"name"?:"..."}, {"action":"list"} or {"action":"revoke","id":"key_..."}`,
  );
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A handler around a Redis connection opened once per execution environment (reopened after a failure). */
export function createKeysHandler(config: () => FunctionConfig, options: { readSecret?: SecretReader; log?: KeysLog } = {}): KeysHandler {
  const log = options.log ?? jsonLog;
  let opened: Promise<{ redis: RedisClient; store: ApiKeyStore }> | undefined;
  const open = () =>
    (opened ??= (async () => {
      const resolved = config();
      const redis = await connectRedis(resolved.redis, options.readSecret);
      return { redis, store: new ApiKeyStore(redis, resolved.prefix) };
    })().catch((err: unknown) => {
      opened = undefined;
      throw err;
    }));

  const handler = async (event: unknown): Promise<KeysResult> => {
    let request: z.output<typeof KeysEventSchema>;
    try {
      request = parseKeysEvent(event);
    } catch (err) {
      log('warn', 'rejected keys event', { error: (err as Error).message });
      throw err;
    }
    const { store } = await open();
    switch (request.action) {
      case 'create': {
        const { key, id } = await store.create({ tenant: request.tenant, scopes: request.scopes, name: request.name });
        const scopes = [...new Set(request.scopes)];
        // The key goes to the invoker only: not into this line, not into any error.
        log('info', 'API key created', { id, tenant: request.tenant, scopes, name: request.name });
        return { action: 'create', key, id, tenant: request.tenant, scopes, name: request.name };
      }
      case 'list': {
        const keys = await store.list();
        log('info', 'API keys listed', { count: keys.length });
        return { action: 'list', keys };
      }
      case 'revoke': {
        if (!(await store.revoke(request.id))) {
          log('warn', 'no such API key', { id: request.id });
          throw new SwitchyardError(ErrorCodes.VALIDATION, `no API key "${request.id}" ({"action":"list"} shows them)`);
        }
        log('info', 'API key revoked', { id: request.id });
        return { action: 'revoke', id: request.id, revoked: true };
      }
    }
  };
  return Object.assign(handler, {
    async close() {
      const current = opened;
      opened = undefined;
      const built = await current?.catch(() => undefined);
      await built?.redis.quit().catch(() => undefined);
    },
  });
}

// Only this entry point reads process.env (once, at load).
const env = { ...process.env };
export const keys = createKeysHandler(() => resolveFunctionConfig(env));
