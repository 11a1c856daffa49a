import type { Blueprint } from '../blueprint/schema.js';
import type { StoreKeys } from './keys.js';
import { BLUEPRINT_SCRIPTS } from './lua/blueprints/scripts.generated.js';
import type { RedisClient } from '../types/redis-client.js';

/** A stored version of a blueprint id, and when it was first pushed (or seeded). */
export interface StoredVersion {
  version: string;
  /** Epoch ms. */
  pushedAt: number;
}

/** What storing a version did (push-blueprint-3.lua's reply). */
export type PushOutcome =
  /** A version new to this id; it is now the latest. */
  | { outcome: 'created'; previous: string | undefined }
  /** The version was stored before (the same content); it is now the latest. */
  | { outcome: 'stored'; previous: string | undefined }
  /** Seed mode only: the id has a stored version already, and nothing changed. */
  | { outcome: 'exists'; latest: string };

/** The registry's scripts under the names they are registered by (versioned, as the run scripts are). */
const SCRIPTS = {
  sy2PushBlueprint: BLUEPRINT_SCRIPTS['push-blueprint'],
} as const;

/**
 * Blueprints as data: the registry of stored versions (pushed through the API, or seeded from the
 * blueprints bundled with a deployment), which never expire, and the copies runs pin when they start
 * (which keep a TTL). Versions are content hashes, so a stored version never changes. Validation is the
 * caller's (src/queue/blueprint-catalog.ts): only valid blueprints reach this store.
 */
export class BlueprintStore {
  constructor(
    readonly redis: RedisClient,
    readonly keys: StoreKeys,
  ) {
    for (const [name, { numberOfKeys, lua }] of Object.entries(SCRIPTS)) {
      if (!(name in redis)) redis.defineCommand(name, { numberOfKeys, lua });
    }
  }

  /**
   * Stores a version and makes it its id's latest (one script call); with `mode: 'seed'`, only when the id
   * has no stored version yet (concurrent seeders: exactly one stores it).
   */
  async push(id: string, version: string, blueprint: Blueprint, mode: 'push' | 'seed' = 'push'): Promise<PushOutcome> {
    const keys = this.keys.blueprintRegistry(id, version);
    const push = (this.redis as unknown as Record<'sy2PushBlueprint', (...args: Array<string | number>) => Promise<[string, string]>>).sy2PushBlueprint;
    const [outcome, other] = await push.call(this.redis, keys.latest, keys.versions, keys.stored, id, version, JSON.stringify(blueprint), Date.now(), mode);
    if (outcome === 'exists') return { outcome, latest: other };
    if (outcome === 'created' || outcome === 'stored') return { outcome, previous: other || undefined };
    throw new Error(`push-blueprint replied "${outcome}"`);
  }

  /** The latest stored version of each id asked for (one HMGET); ids never stored are left out. */
  async latest(ids: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    if (ids.length === 0) return found;
    const versions = await this.redis.hmget(this.keys.blueprintLatest(), ...ids);
    ids.forEach((id, i) => {
      const version = versions[i];
      if (version) found.set(id, version);
    });
    return found;
  }

  /** Every stored id and its latest version. */
  async allLatest(): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.redis.hgetall(this.keys.blueprintLatest())));
  }

  /** The stored versions of an id, oldest first; empty when it was never stored. */
  async versions(id: string): Promise<StoredVersion[]> {
    const flat = await this.redis.zrange(this.keys.blueprintVersions(id), 0, -1, 'WITHSCORES');
    const list: StoredVersion[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) list.push({ version: flat[i]!, pushedAt: Number(flat[i + 1]) });
    return list;
  }

  /** When this version of the id was first stored; undefined when it is not a stored version of that id. */
  async pushedAt(id: string, version: string): Promise<number | undefined> {
    const score = await this.redis.zscore(this.keys.blueprintVersions(id), version);
    return score === null ? undefined : Number(score);
  }

  /**
   * A version's JSON: the registry's copy, else a run's pinned copy (one GET, a second only when the
   * first misses). Undefined when neither is stored.
   */
  async load(version: string): Promise<unknown | undefined> {
    const json = (await this.redis.get(this.keys.storedBlueprint(version))) ?? (await this.redis.get(this.keys.blueprint(version)));
    return json === null ? undefined : JSON.parse(json);
  }
}
