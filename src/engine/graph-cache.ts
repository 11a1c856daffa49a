import { analyzeBlueprint } from '../blueprint/analyze.js';
import { BlueprintSchema, type Blueprint } from '../blueprint/schema.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import type { NodeKindRegistry } from '../types/node-kind.js';
import { compileGraph, type Graph } from './graph.js';

/**
 * Compiled graphs by blueprint version (content hash). A run executes against the version stored when it
 * started, so a worker looks graphs up by version and fetches unknown versions from the store once.
 */
export class GraphCache {
  private readonly graphs = new Map<string, Promise<Graph>>();

  constructor(
    private readonly kinds: NodeKindRegistry,
    private readonly fetch: (version: string) => Promise<unknown | undefined>,
    private readonly maxEntries = 500,
  ) {}

  /** Registers a graph compiled elsewhere (e.g. by the client that starts the run). */
  put(graph: Graph): void {
    this.remember(graph.version, Promise.resolve(graph));
  }

  get(version: string): Promise<Graph> {
    const cached = this.graphs.get(version);
    if (cached) return cached;
    const loading = this.load(version);
    this.remember(version, loading);
    loading.catch(() => this.graphs.delete(version)); // a failed fetch may succeed later
    return loading;
  }

  private async load(version: string): Promise<Graph> {
    const json = await this.fetch(version);
    if (json === undefined) {
      throw new SwitchyardError(ErrorCodes.BLUEPRINT_NOT_FOUND, `blueprint version ${version} is not stored (expired?)`);
    }
    const blueprint = BlueprintSchema.parse(json) as Blueprint;
    const { analysis } = analyzeBlueprint(blueprint, { kinds: this.kinds });
    return compileGraph({ blueprint, analysis, version }, this.kinds);
  }

  private remember(version: string, graph: Promise<Graph>): void {
    if (this.graphs.size >= this.maxEntries) {
      const oldest = this.graphs.keys().next().value;
      if (oldest !== undefined) this.graphs.delete(oldest);
    }
    this.graphs.set(version, graph);
  }
}
