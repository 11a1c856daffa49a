import { API_SCOPES, ApiKeyStore, DEFAULT_SCOPES, type ApiScope } from '../api/keys.js';
import { openRedis, table, UsageError, type CliEnv } from './common.js';
import type { Parsed } from './options.js';

export async function keys(positionals: string[], values: Parsed, env: CliEnv): Promise<number> {
  const [action, ...args] = positionals;
  if (!action) throw new UsageError('name an action: switchyard keys create --tenant <tenant> | keys list | keys revoke <keyId>');
  if (action !== 'create' && action !== 'list' && action !== 'revoke') throw new UsageError(`unknown action "${action}" (create, list, revoke)`);
  if (action !== 'revoke' && args.length) throw new UsageError(`unexpected argument "${args[0]}"`);
  if (action === 'revoke' && args.length !== 1) throw new UsageError(args.length ? `unexpected argument "${args[1]}"` : 'name the key: switchyard keys revoke <keyId>');
  if (action !== 'create') {
    for (const name of ['tenant', 'scopes', 'name'] as const) {
      if (values[name] !== undefined) throw new UsageError(`--${name} is only for keys create`);
    }
  }
  const scopes = action === 'create' ? parseScopes(values.scopes) : [];
  if (action === 'create' && !values.tenant) throw new UsageError('--tenant <tenant> is required: whose runs the key may start and read');

  const redis = await openRedis(env, { role: 'api' });
  try {
    const store = new ApiKeyStore(redis, env.prefix);
    switch (action) {
      case 'create': {
        const created = await store.create({ tenant: values.tenant!, scopes, name: values.name ?? 'cli' });
        if (values.json) {
          console.log(JSON.stringify({ ...created, tenant: values.tenant, scopes, name: values.name ?? 'cli' }));
        } else {
          // The key alone on stdout (KEY=$(switchyard keys create …)); the note on stderr.
          console.log(created.key);
          console.error(`created API key ${created.id} for tenant ${values.tenant} (${scopes.join(', ')}); it is shown only this once: store it now`);
        }
        return 0;
      }
      case 'list': {
        const list = await store.list();
        if (values.json) {
          console.log(JSON.stringify(list));
        } else if (list.length === 0) {
          console.log('no API keys (switchyard keys create --tenant <tenant>)');
        } else {
          const rows = list.map((k) => [k.id, k.tenant, k.scopes.join(','), k.name, new Date(k.createdAt).toISOString()]);
          console.log(table([['id', 'tenant', 'scopes', 'name', 'created'], ...rows]).join('\n'));
        }
        return 0;
      }
      case 'revoke': {
        const id = args[0]!;
        if (!(await store.revoke(id))) {
          console.error(`switchyard keys: no API key "${id}" (switchyard keys list shows them)`);
          return 1;
        }
        console.log(`revoked API key ${id}`);
        return 0;
      }
    }
  } finally {
    redis.disconnect();
  }
}

function parseScopes(raw: string | undefined): ApiScope[] {
  // The admin scopes (blueprints:write, limits:read) are accepted by name but never given by default, nor offered here.
  if (raw === undefined) return [...DEFAULT_SCOPES];
  const scopes = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = scopes.find((s) => !(API_SCOPES as readonly string[]).includes(s));
  if (unknown !== undefined || scopes.length === 0) throw new UsageError(`--scopes must list ${DEFAULT_SCOPES.join(' and/or ')}, comma-separated (got "${raw}")`);
  return [...new Set(scopes)] as ApiScope[];
}
