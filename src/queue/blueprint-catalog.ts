import { analyzeBlueprint } from '../blueprint/analyze.js';
import { blueprintVersion, parseBlueprint, type BlueprintRegistry, type LoadedBlueprint } from '../blueprint/load.js';
import { BlueprintSchema, type Blueprint } from '../blueprint/schema.js';
import { ErrorCodes, SwitchyardError, ValidationError } from '../errors.js';
import type { NodeKindRegistry } from '../types/node-kind.js';
import type { BlueprintStore, StoredVersion } from '../store/blueprint-store.js';
import type { BlueprintPins } from '../store/run-state.js';

/** A content hash, as versions are written: sha256 hex. */
export const VERSION_PATTERN = /^[0-9a-f]{64}$/;

/** What `push` did. */
export interface PushResult {
  id: string;
  version: string;
  /** False when this content was stored for the id before (pushing it again only makes it the latest). */
  created: boolean;
  /** The version that was the latest before, when there was one and it differs. */
  previous?: string;
}

/** A blueprint as a starter sees it: the version a start runs now, and where it comes from. */
export interface CatalogEntry {
  id: string;
  /** What a start of the id runs: the latest stored version, else the bundled one. */
  loaded: LoadedBlueprint;
  /** `stored`: pushed or seeded into Redis (a push changes it); `bundled`: only in this process's registry. */
  source: 'stored' | 'bundled';
  /** The stored versions, oldest first (empty for a blueprint only bundled). */
  versions: StoredVersion[];
}

/** A run's blueprint and the versions of every blueprint its subflows can reach, as a start pins them. */
export interface PinnedClosure {
  root: LoadedBlueprint;
  /** Every member, the root first. */
  members: LoadedBlueprint[];
  /** Id -> version of every member; undefined when the root calls no other blueprint. */
  pins: BlueprintPins | undefined;
}

/**
 * Blueprints by id and by version, as whoever starts runs sees them: the stored registry in Redis (pushed
 * versions, and the bundled ones seeded there) wins; a blueprint only this process has (its registry)
 * comes next. Versions are content hashes, so each is loaded and analysed once per process.
 */
export class BlueprintCatalog {
  /** Loaded versions (stored ones, validated on load), by version; bounded. */
  private readonly byVersionCache = new Map<string, Promise<LoadedBlueprint | undefined>>();

  constructor(
    readonly store: BlueprintStore,
    readonly registry: BlueprintRegistry | undefined,
    readonly kinds: NodeKindRegistry,
    private readonly maxCached = 500,
  ) {}

  /**
   * The version a start of `id` runs: `version` when given (it must be a stored version of that id, or the
   * bundled one), else the latest stored version, else the bundled one.
   * @throws {SwitchyardError} BLUEPRINT_NOT_FOUND, or VALIDATION for a malformed version
   */
  async resolve(id: string, version?: string): Promise<LoadedBlueprint> {
    const bundled = this.registry?.get(id);
    if (version !== undefined) {
      if (!VERSION_PATTERN.test(version)) {
        throw new SwitchyardError(ErrorCodes.VALIDATION, `version "${clip(version)}" is not a blueprint version (64 hex digits)`, { blueprintId: id });
      }
      if (bundled?.version === version) return bundled;
      const loaded = (await this.store.pushedAt(id, version)) === undefined ? undefined : await this.byVersion(version);
      if (!loaded) throw notFound(`blueprint "${id}" has no version ${version}`, id);
      return loaded;
    }
    const latest = (await this.store.latest([id])).get(id);
    const loaded = latest === undefined ? bundled : await this.byVersion(latest);
    if (!loaded) throw notFound(`no blueprint "${id}" (known: ${(await this.ids()).join(', ') || 'none'})`, id);
    return loaded;
  }

  /** A version of any blueprint, from this process's registry or Redis (stored or a run's pinned copy). */
  byVersion(version: string): Promise<LoadedBlueprint | undefined> {
    const cached = this.byVersionCache.get(version);
    if (cached) return cached;
    const loading = this.load(version);
    this.remember(version, loading);
    // A miss or failure may be stored later (a push): not remembered.
    loading.then(
      (found) => found ?? this.byVersionCache.delete(version),
      () => this.byVersionCache.delete(version),
    );
    return loading;
  }

  /**
   * The root and every blueprint its subflows can reach, transitively, each at the version a start runs
   * now (latest stored, else bundled): what a run pins when it starts. One round trip per level of
   * subflows (ids the registry already names are looked up together).
   * @throws {SwitchyardError} BLUEPRINT_NOT_FOUND naming a blueprint that is nowhere
   */
  async closure(root: LoadedBlueprint): Promise<PinnedClosure> {
    if (root.analysis.subflows.length === 0) return { root, members: [root], pins: undefined };
    const members = new Map<string, LoadedBlueprint>([[root.blueprint.id, root]]);
    let wanted = this.missing(root, members);
    while (wanted.length > 0) {
      const resolved = await this.resolveLatest(wanted);
      for (const [id, loaded] of resolved) members.set(id, loaded);
      const absent = wanted.find((id) => !members.has(id));
      if (absent !== undefined) {
        const caller = [...members.values()].find((m) => m.analysis.subflows.includes(absent))?.blueprint.id ?? root.blueprint.id;
        throw notFound(`blueprint "${caller}" calls subflow blueprint "${absent}", which is not stored or registered`, absent);
      }
      wanted = [...new Set([...resolved.values()].flatMap((loaded) => this.missing(loaded, members)))];
    }
    const pins: Record<string, string> = {};
    for (const [id, loaded] of members) pins[id] = loaded.version;
    return { root, members: [...members.values()], pins };
  }

  /**
   * Validates a blueprint and stores it as a new version of its id (or finds the same content stored
   * already). Its subflows may name any stored or registered blueprint.
   * @throws {ValidationError} listing every issue (`file` on each, default `<request>`)
   */
  async push(json: unknown, options: { defaultId?: string; file?: string } = {}): Promise<PushResult> {
    const loaded = await this.validate(json, options.file ?? '<request>', options.defaultId);
    const id = loaded.blueprint.id;
    const stored = await this.store.push(id, loaded.version, loaded.blueprint);
    if (stored.outcome === 'exists') throw new Error('push-blueprint: "exists" in push mode');
    this.remember(loaded.version, Promise.resolve(loaded));
    const result: PushResult = { id, version: loaded.version, created: stored.outcome === 'created' };
    if (stored.previous !== undefined && stored.previous !== loaded.version) result.previous = stored.previous;
    return result;
  }

  /**
   * Stores each blueprint of `registry` (bundled with this deployment) whose id has no stored version yet,
   * as its first version. Idempotent and safe to run from many processes at once; a stored version is
   * never replaced. Returns the ids it stored.
   */
  async seed(registry: BlueprintRegistry): Promise<string[]> {
    const ids = registry.ids();
    const outcomes = await Promise.all(
      ids.map((id) => {
        const loaded = registry.get(id)!;
        return this.store.push(id, loaded.version, loaded.blueprint, 'seed');
      }),
    );
    return ids.filter((_, i) => outcomes[i]!.outcome !== 'exists');
  }

  /**
   * Validates a blueprint object (schema and analysis); its subflows may name stored or registered
   * blueprints, which are looked up (transitively, for recursion checks) before analysis.
   * @throws {ValidationError} listing every issue
   */
  async validate(json: unknown, file = '<inline>', defaultId?: string): Promise<LoadedBlueprint> {
    const { blueprint, issues } = parseBlueprint(json, file, defaultId);
    if (!blueprint) throw new ValidationError(issues);
    const own = analyzeBlueprint(blueprint, { kinds: this.kinds });
    // Everything the subflows can reach, as a start would see it now; the blueprint itself stands in for
    // its id (so a ring back to it is found).
    const known = new Map<string, Blueprint>([[blueprint.id, blueprint]]);
    let wanted = own.analysis.subflows.filter((id) => id !== blueprint.id);
    while (wanted.length > 0) {
      const resolved = await this.resolveLatest(wanted);
      for (const [id, loaded] of resolved) known.set(id, loaded.blueprint);
      wanted = [...new Set([...resolved.values()].flatMap((loaded) => loaded.analysis.subflows.filter((id) => !known.has(id))))];
    }
    const { analysis, issues: found } = analyzeBlueprint(blueprint, { kinds: this.kinds, resolveBlueprint: (id) => known.get(id) });
    if (found.length > 0) throw new ValidationError(found.map((issue) => ({ file, ...issue })), { blueprintId: blueprint.id });
    return { blueprint: deepFreeze(blueprint), file, analysis, version: blueprintVersion(blueprint) };
  }

  /** Every id a start can name: stored and bundled, in natural order. */
  async ids(): Promise<string[]> {
    const stored = await this.store.allLatest();
    return sortIds(new Set([...stored.keys(), ...(this.registry?.ids() ?? [])]));
  }

  /** Every blueprint a start can name, with the version it runs and the stored versions. */
  async list(): Promise<CatalogEntry[]> {
    const stored = await this.store.allLatest();
    const ids = sortIds(new Set([...stored.keys(), ...(this.registry?.ids() ?? [])]));
    const entries = await Promise.all(ids.map((id) => this.entry(id, stored.get(id))));
    return entries.filter((e): e is CatalogEntry => e !== undefined);
  }

  /** One blueprint as {@link list} shows it; undefined when it is neither stored nor bundled. */
  async get(id: string): Promise<CatalogEntry | undefined> {
    return this.entry(id, (await this.store.latest([id])).get(id));
  }

  private async entry(id: string, latest: string | undefined): Promise<CatalogEntry | undefined> {
    if (latest === undefined) {
      const bundled = this.registry?.get(id);
      return bundled && { id, loaded: bundled, source: 'bundled', versions: [] };
    }
    const [loaded, versions] = await Promise.all([this.byVersion(latest), this.store.versions(id)]);
    return loaded && { id, loaded, source: 'stored', versions };
  }

  private remember(version: string, loading: Promise<LoadedBlueprint | undefined>): void {
    if (!this.byVersionCache.has(version) && this.byVersionCache.size >= this.maxCached) {
      const oldest = this.byVersionCache.keys().next().value;
      if (oldest !== undefined) this.byVersionCache.delete(oldest);
    }
    this.byVersionCache.set(version, loading);
  }

  /** The subflow ids of `loaded` not yet in `members`. */
  private missing(loaded: LoadedBlueprint, members: ReadonlyMap<string, unknown>): string[] {
    return loaded.analysis.subflows.filter((id) => !members.has(id));
  }

  /** Each id at the version a start runs now (latest stored, else bundled); ids found nowhere are left out. */
  private async resolveLatest(ids: readonly string[]): Promise<Map<string, LoadedBlueprint>> {
    const latest = await this.store.latest(ids);
    const found = new Map<string, LoadedBlueprint>();
    await Promise.all(
      ids.map(async (id) => {
        const version = latest.get(id);
        const loaded = version === undefined ? this.registry?.get(id) : await this.byVersion(version);
        if (loaded) found.set(id, loaded);
      }),
    );
    return found;
  }

  private async load(version: string): Promise<LoadedBlueprint | undefined> {
    for (const id of this.registry?.ids() ?? []) {
      const bundled = this.registry!.get(id)!;
      if (bundled.version === version) return bundled;
    }
    const json = await this.store.load(version);
    if (json === undefined) return undefined;
    // Stored versions passed validation when they were stored; this only rebuilds the analysis.
    const blueprint = BlueprintSchema.parse(json) as Blueprint;
    const { analysis } = analyzeBlueprint(blueprint, { kinds: this.kinds });
    return deepFreeze({ blueprint, file: `<stored ${blueprint.id}@${version.slice(0, 12)}>`, analysis, version });
  }
}

/** Ids in natural order (`99` before `100`), as the registry lists them. */
function sortIds(ids: Iterable<string>): string[] {
  return [...ids].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

function notFound(message: string, blueprintId: string): SwitchyardError {
  return new SwitchyardError(ErrorCodes.BLUEPRINT_NOT_FOUND, message, { blueprintId, retryable: false });
}

function clip(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}
