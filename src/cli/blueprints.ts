import { readBlueprintFiles, type BlueprintFile } from '../blueprint/load.js';
import { BLUEPRINT_ID_PATTERN } from '../blueprint/schema.js';
import { formatIssues, type ValidationIssue } from '../errors.js';
import { table, UsageError, type CliEnv } from './common.js';
import type { Parsed } from './options.js';

/** `switchyard dev`'s API, where the CLI looks when neither --api nor SWITCHYARD_API_URL says. */
export const DEFAULT_API_URL = 'http://127.0.0.1:4280';

/** How long one API request may take. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * `switchyard blueprints push <dir|file>...` and `switchyard blueprints list`, through the HTTP API (a
 * deployed one, or `switchyard dev`'s), so a blueprint change rolls out without a deploy.
 */
export async function blueprints(positionals: string[], values: Parsed, env: CliEnv): Promise<number> {
  const [action, ...args] = positionals;
  if (action !== 'push' && action !== 'list') {
    throw new UsageError(action ? `unknown action "${action}" (push, list)` : 'name an action: switchyard blueprints push <dir|file>... | blueprints list');
  }
  const api = new ApiCaller(values.api ?? env.api.url ?? DEFAULT_API_URL, values.key ?? env.api.key);
  if (action === 'list') {
    if (args.length) throw new UsageError(`unexpected argument "${args[0]}"`);
    return list(api, values);
  }
  if (args.length === 0) throw new UsageError('name blueprint files or directories: switchyard blueprints push workflows/');
  return push(api, args, values);
}

/** One line per blueprint; every problem as `<file>: <json-path>: <message>`; exit 1 when there was any. */
async function push(api: ApiCaller, paths: string[], values: Parsed): Promise<number> {
  const { entries, issues } = await readBlueprintFiles(paths);
  const byId = new Map<string, BlueprintFile>();
  for (const entry of entries) {
    const id = idOf(entry);
    if (id === undefined) {
      issues.push({ file: entry.file, path: '$', message: 'a blueprint must be a JSON object' });
      continue;
    }
    const earlier = byId.get(id);
    if (earlier) {
      issues.push({ file: entry.file, path: '$.id', message: `duplicate blueprint id "${id}" (also in ${earlier.file})` });
      continue;
    }
    byId.set(id, entry);
  }

  const results: Array<{ id: string; version: string; created: boolean; previous?: string; file: string }> = [];
  const failed = new Set<string>();
  // Called blueprints first, so a subflow can name a blueprint pushed in the same command.
  for (const id of dependencyOrder(byId)) {
    const entry = byId.get(id)!;
    const blocked = callsOf(entry.json).find((called) => failed.has(called));
    if (blocked !== undefined) {
      failed.add(id);
      issues.push({ file: entry.file, path: '$', message: `not pushed: it calls "${blocked}", which was not pushed` });
      continue;
    }
    const reply = await api.call('PUT', `/blueprints/${encodeURIComponent(id)}`, entry.json);
    if (reply.status === 200 || reply.status === 201) {
      const body = reply.body as { version: string; created: boolean; previous?: string };
      results.push({ id, file: entry.file, version: body.version, created: body.created, previous: body.previous });
      continue;
    }
    failed.add(id);
    const error = (reply.body as { error?: { code?: string; message?: string; details?: { issues?: Array<{ path: string; message: string }> } } }).error;
    if (reply.status === 401 || reply.status === 403) {
      throw new Error(`${api.url} refused the request (${reply.status} ${error?.code ?? ''}): ${error?.message ?? 'no message'}; pushing needs an API key with the blueprints:write scope (--key or SWITCHYARD_API_KEY)`);
    }
    const found = error?.details?.issues;
    if (reply.status === 400 && found?.length) {
      for (const issue of found) issues.push({ file: entry.file, path: issue.path, message: issue.message });
    } else {
      issues.push({ file: entry.file, path: '$', message: `${reply.status} ${error?.code ?? ''}: ${error?.message ?? 'no message'}`.replace(/ :/, ':') });
    }
  }

  if (values.json) {
    console.log(JSON.stringify({ pushed: results, issues }));
  } else if (results.length > 0) {
    const rows = results.map((r) => [r.id, r.version, r.created ? 'created' : r.previous ? `latest again (was ${r.previous.slice(0, 12)})` : 'unchanged']);
    console.log(table(rows).join('\n'));
  }
  if (issues.length > 0) {
    console.error(formatIssues(sortByFile(issues, entries.map((e) => e.file))));
    return 1;
  }
  return 0;
}

async function list(api: ApiCaller, values: Parsed): Promise<number> {
  const reply = await api.call('GET', '/blueprints');
  if (reply.status !== 200) {
    const error = (reply.body as { error?: { code?: string; message?: string } }).error;
    throw new Error(`${api.url} answered ${reply.status} ${error?.code ?? ''}: ${error?.message ?? 'no message'}`);
  }
  const found = (reply.body as { blueprints: Array<{ id: string; version: string; pushedAt?: number; versions?: unknown[]; title?: string }> }).blueprints;
  if (values.json) {
    console.log(JSON.stringify(found));
    return 0;
  }
  if (found.length === 0) {
    console.log('no blueprints (switchyard blueprints push <dir>)');
    return 0;
  }
  const rows = found.map((b) => [b.id, b.version.slice(0, 12), b.pushedAt === undefined ? 'bundled' : new Date(b.pushedAt).toISOString(), String(b.versions?.length ?? 0), b.title ?? '']);
  console.log(table([['id', 'version', 'pushed', 'versions', 'title'], ...rows]).join('\n'));
  return 0;
}

/** The HTTP API, with the key when there is one. */
class ApiCaller {
  readonly url: string;

  constructor(url: string, private readonly key: string | undefined) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--api "${url}" is not a URL (such as ${DEFAULT_API_URL})`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`--api "${url}" must be an http or https URL`);
    this.url = url.replace(/\/+$/, '');
  }

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.key) headers.authorization = `Bearer ${this.key}`;
    let response: Response;
    try {
      response = await fetch(this.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(`cannot reach the API at ${this.url} (${cause?.code ?? cause?.message ?? (err as Error).message}): start one (switchyard dev) or set --api / SWITCHYARD_API_URL`, { cause: err });
    }
    const text = await response.text();
    try {
      return { status: response.status, body: text ? JSON.parse(text) : {} };
    } catch {
      return { status: response.status, body: { error: { message: text.slice(0, 200) } } };
    }
  }
}

/** The id a file's blueprint gets: its own `id`, else the file name; undefined when it is not an object. */
function idOf(entry: BlueprintFile): string | undefined {
  const json = entry.json;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const own = (json as { id?: unknown }).id;
  return typeof own === 'string' ? own : entry.defaultId;
}

/** The blueprint ids a blueprint's nodes name in `params.blueprintId` (subflow and its kin), roughly: the server checks. */
function callsOf(json: unknown): string[] {
  const nodes = (json as { nodes?: unknown } | null)?.nodes;
  if (!Array.isArray(nodes)) return [];
  return nodes.flatMap((node) => {
    const id = (node as { params?: { blueprintId?: unknown } } | null)?.params?.blueprintId;
    return typeof id === 'string' && BLUEPRINT_ID_PATTERN.test(id) ? [id] : [];
  });
}

/** Ids with the blueprints they call (among these) first; a ring is left in file order (the server names it). */
function dependencyOrder(byId: ReadonlyMap<string, BlueprintFile>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string) => {
    if (state.has(id)) return;
    state.set(id, 'visiting');
    for (const called of callsOf(byId.get(id)!.json)) if (byId.has(called)) visit(called);
    state.set(id, 'done');
    order.push(id);
  };
  for (const id of byId.keys()) visit(id);
  return order;
}

/** Issues grouped by file, in the order the files were read. */
function sortByFile(issues: ValidationIssue[], files: string[]): ValidationIssue[] {
  const rank = new Map(files.map((file, i) => [file, i]));
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => (rank.get(a.issue.file) ?? -1) - (rank.get(b.issue.file) ?? -1) || a.i - b.i)
    .map((e) => e.issue);
}
