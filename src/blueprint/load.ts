import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ValidationError, type ValidationIssue } from '../errors.js';
import type { NodeKindRegistry } from '../types/node-kind.js';
import { analyzeBlueprint, jsonPath, type BlueprintAnalysis } from './analyze.js';
import { BLUEPRINT_ID_PATTERN, BlueprintSchema, type Blueprint } from './schema.js';

/** A blueprint that passed validation, with where it came from and what analysis found. */
export interface LoadedBlueprint {
  /** Deep-frozen: node kinds may cache by params object, so nothing may change it after loading. */
  blueprint: Blueprint;
  file: string;
  analysis: BlueprintAnalysis;
  /** sha256 hex of the canonical JSON (keys sorted) of the parsed blueprint */
  version: string;
}

/**
 * Checks a blueprint's JSON against the schema and settles its id (`json.id`, else `defaultId`, which is
 * the file name for files). Returns the blueprint only when there are no issues.
 */
export function parseBlueprint(
  json: unknown,
  file: string,
  defaultId: string | undefined,
): { blueprint?: Blueprint; issues: ValidationIssue[] } {
  const parsed = BlueprintSchema.safeParse(json);
  const issues: ValidationIssue[] = parsed.success
    ? []
    : parsed.error.issues.map((issue) => ({ file, path: jsonPath('$', issue.path), message: issue.message }));
  // Checked on the raw JSON so a missing id is reported alongside schema issues, not after they are fixed.
  const ownId = typeof json === 'object' && json !== null && 'id' in json ? json.id : undefined;
  if (ownId === undefined) {
    if (defaultId === undefined) {
      issues.push({ file, path: '$.id', message: 'blueprint has no id: set "id"' });
    } else if (!BLUEPRINT_ID_PATTERN.test(defaultId)) {
      issues.push({
        file,
        path: '$.id',
        message: `file name "${defaultId}" is not a valid blueprint id (1-100 letters, digits, ".", "_" or "-"): set "id"`,
      });
    }
  }
  if (!parsed.success || issues.length > 0) return { issues };
  return { blueprint: { ...parsed.data, id: parsed.data.id ?? (defaultId as string) }, issues };
}

/** JSON with object keys sorted and undefined members dropped, so equal blueprints hash equally. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const members = Object.keys(value)
      .sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The content hash runs pin their blueprint by: sha256 hex of the canonical JSON (keys sorted). */
export function blueprintVersion(blueprint: Blueprint): string {
  return createHash('sha256').update(canonicalJson(blueprint)).digest('hex');
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}

const FS_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
};

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return (code && FS_ERRORS[code]) ?? (err instanceof Error ? err.message : String(err));
}

/** `*.json` files under a directory, depth-first in name order so loading is deterministic. */
async function walkDirectory(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const entry of entries) {
    const path = join(dir, entry.name);
    // Symlinked directories are not followed: they could loop.
    if (entry.isDirectory()) files.push(...(await walkDirectory(path)));
    else if ((entry.isFile() || entry.isSymbolicLink()) && entry.name.endsWith('.json')) files.push(path);
  }
  return files;
}

async function listFiles(path: string, issues: ValidationIssue[]): Promise<string[]> {
  try {
    const info = await stat(path);
    if (info.isFile()) return [path];
    if (!info.isDirectory()) {
      issues.push({ file: path, path: '$', message: 'not a file or directory' });
      return [];
    }
    const files = await walkDirectory(path);
    if (files.length === 0) issues.push({ file: path, path: '$', message: 'no blueprint files (*.json) in this directory' });
    return files;
  } catch (err) {
    issues.push({ file: path, path: '$', message: `cannot read: ${describeFsError(err)}` });
    return [];
  }
}

/**
 * Offset of the first syntax error, or undefined. V8's messages do not always give a position (an
 * unexpected token is shown as a snippet), and an editor wants a line and column, so we find it ourselves.
 */
function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const fail = (): never => {
    throw i;
  };
  const skipSpace = () => {
    while (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r') i++;
  };
  const expect = (char: string) => (text[i] === char ? i++ : fail());
  const string = () => {
    expect('"');
    while (text[i] !== '"') {
      const char = text[i];
      if (char === undefined || char < ' ') fail();
      i++;
      if (char === '\\') {
        if (!/^(["\\/bfnrt]|u[0-9a-fA-F]{4})/.test(text.slice(i, i + 5))) fail();
        i++; // past the escaped character, so an escaped quote does not end the string
      }
    }
    i++;
  };
  const value = (): void => {
    skipSpace();
    const open = text[i];
    if (open === '{' || open === '[') {
      const close = open === '{' ? '}' : ']';
      i++;
      skipSpace();
      if (text[i] === close) return void i++;
      for (;;) {
        if (open === '{') {
          skipSpace();
          string();
          skipSpace();
          expect(':');
        }
        value();
        skipSpace();
        if (text[i] === close) return void i++;
        expect(',');
      }
    }
    if (open === '"') return string();
    const literal = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
    literal.lastIndex = i;
    if (!literal.test(text)) fail();
    i = literal.lastIndex;
  };
  try {
    value();
    skipSpace();
    return i < text.length ? i : undefined;
  } catch (at) {
    // Anything but an offset (a stack overflow on absurd nesting) just means "no location".
    return typeof at === 'number' ? at : undefined;
  }
}

function describeJsonError(err: Error, text: string): string {
  const offset = jsonErrorOffset(text);
  if (offset === undefined) return `invalid JSON: ${err.message}`;
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  const found = offset < text.length ? `unexpected ${JSON.stringify(text[offset])}` : 'unexpected end of input';
  return `invalid JSON: ${found} (line ${line}, column ${column})`;
}

async function readJson(file: string, issues: ValidationIssue[]): Promise<{ json: unknown } | undefined> {
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  } catch (err) {
    issues.push({ file, path: '$', message: `cannot read: ${describeFsError(err)}` });
    return undefined;
  }
  try {
    return { json: JSON.parse(text) };
  } catch (err) {
    issues.push({ file, path: '$', message: describeJsonError(err as Error, text) });
    return undefined;
  }
}

/** Puts analysis issues next to the parse issues of the same file; issues about a path itself come first. */
function sortByFile(issues: ValidationIssue[], files: string[]): ValidationIssue[] {
  const fileOrder = new Map(files.map((file, i) => [file, i]));
  const order = (issue: ValidationIssue) => fileOrder.get(issue.file) ?? -1;
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => order(a.issue) - order(b.issue) || a.i - b.i)
    .map((entry) => entry.issue);
}

/** A blueprint file read and parsed as JSON, not yet validated. */
export interface BlueprintFile {
  file: string;
  json: unknown;
  /** The id it gets unless it sets one: the file name without `.json`. */
  defaultId: string;
}

/**
 * Reads blueprint files and directories (directories recursively, every `*.json`, in name order) as JSON,
 * without validating them: what cannot be read or parsed is an issue (JSON errors with line and column).
 * A file named both directly and through its directory is read once.
 */
export async function readBlueprintFiles(paths: readonly string[]): Promise<{ entries: BlueprintFile[]; issues: ValidationIssue[]; files: string[] }> {
  const issues: ValidationIssue[] = [];
  const files: string[] = [];
  const seenFiles = new Set<string>();
  for (const path of paths) {
    for (const file of await listFiles(path, issues)) {
      if (seenFiles.has(resolve(file))) continue;
      seenFiles.add(resolve(file));
      files.push(file);
    }
  }
  const entries: BlueprintFile[] = [];
  for (const file of files) {
    const read = await readJson(file, issues);
    if (read) entries.push({ file, json: read.json, defaultId: basename(file, '.json') });
  }
  return { entries, issues, files };
}

/** The blueprints a process knows, by id. Everything in it passed validation. */
export class BlueprintRegistry {
  readonly kinds: NodeKindRegistry;
  private readonly loaded = new Map<string, LoadedBlueprint>();

  constructor(kinds: NodeKindRegistry) {
    this.kinds = kinds;
  }

  /**
   * Loads files and directories (directories recursively, every `*.json`; id = file name without `.json`
   * unless the file sets `id`). Throws a {@link ValidationError} listing every issue of every file if
   * there are any; otherwise returns a registry holding them all.
   */
  static async load(paths: string[], kinds: NodeKindRegistry): Promise<BlueprintRegistry> {
    const { registry, issues } = await BlueprintRegistry.check(paths, kinds);
    if (issues.length > 0) throw new ValidationError(issues);
    return registry;
  }

  /**
   * As {@link BlueprintRegistry.load}, but returns the issues instead of throwing (for `switchyard validate`).
   * The registry holds the blueprints that had no issues of their own; `files` lists every file read.
   */
  static async check(
    paths: string[],
    kinds: NodeKindRegistry,
  ): Promise<{ registry: BlueprintRegistry; issues: ValidationIssue[]; files: string[] }> {
    // A file named both directly and through its directory is read once, not reported as its own duplicate.
    const { entries, issues, files } = await readBlueprintFiles(paths);

    const byId = new Map<string, { file: string; blueprint: Blueprint }>();
    for (const { file, json, defaultId } of entries) {
      const { blueprint, issues: found } = parseBlueprint(json, file, defaultId);
      issues.push(...found);
      if (!blueprint) continue;
      const earlier = byId.get(blueprint.id);
      if (earlier) {
        issues.push({ file, path: '$.id', message: `duplicate blueprint id "${blueprint.id}" (also in ${earlier.file})` });
        continue;
      }
      byId.set(blueprint.id, { file, blueprint });
    }

    // Analysis runs after every file is parsed, so subflows can name blueprints from any file of the load.
    const registry = new BlueprintRegistry(kinds);
    const resolveBlueprint = (id: string) => byId.get(id)?.blueprint;
    for (const { file, blueprint } of byId.values()) {
      const { analysis, issues: found } = analyzeBlueprint(blueprint, { kinds, resolveBlueprint });
      issues.push(...found.map((issue) => ({ file, ...issue })));
      if (found.length === 0) registry.register({ blueprint, file, analysis, version: blueprintVersion(blueprint) });
    }

    return { registry, issues: sortByFile(issues, files), files };
  }

  /**
   * Validates and registers one blueprint object; subflows may reference blueprints already registered.
   * Adding the same content under the same id again returns the existing entry.
   * @throws {ValidationError} listing every issue, with `file` (default `<inline>`) on each.
   */
  add(json: unknown, file = '<inline>'): LoadedBlueprint {
    const entry = this.validate(json, file);
    const existing = this.loaded.get(entry.blueprint.id);
    if (existing) {
      if (existing.version === entry.version) return existing;
      throw new ValidationError(
        [{ file, path: '$.id', message: `blueprint "${entry.blueprint.id}" is already registered with other content (from ${existing.file})` }],
        { blueprintId: entry.blueprint.id },
      );
    }
    return this.register(entry);
  }

  /**
   * Validates one blueprint object without registering it (inline blueprints of a single run). Without an
   * `id`, it gets `defaultId`. Subflows may reference registered blueprints.
   * @throws {ValidationError} listing every issue.
   */
  validate(json: unknown, file = '<inline>', defaultId?: string): LoadedBlueprint {
    const { blueprint, issues } = parseBlueprint(json, file, defaultId);
    if (!blueprint) throw new ValidationError(issues);
    const { analysis, issues: found } = analyzeBlueprint(blueprint, {
      kinds: this.kinds,
      resolveBlueprint: (id) => this.loaded.get(id)?.blueprint,
    });
    if (found.length > 0) {
      throw new ValidationError(
        found.map((issue) => ({ file, ...issue })),
        { blueprintId: blueprint.id },
      );
    }
    return deepFreeze({ blueprint, file, analysis, version: blueprintVersion(blueprint) });
  }

  get(id: string): LoadedBlueprint | undefined {
    return this.loaded.get(id);
  }

  /** Registered ids, in natural order (`99` before `100`). */
  ids(): string[] {
    return [...this.loaded.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  }

  private register(entry: LoadedBlueprint): LoadedBlueprint {
    const frozen = deepFreeze(entry);
    this.loaded.set(entry.blueprint.id, frozen);
    return frozen;
  }
}
