import type { MiddlewareHandler } from 'hono';
import { Hono } from 'hono/tiny';
import { z } from 'zod';
import type { BlueprintRegistry, LoadedBlueprint } from '../../blueprint/load.js';
import { BLUEPRINT_ID_PATTERN } from '../../blueprint/schema.js';
import { layoutBlueprint } from '../../drawing/layout.js';
import { VERSION_PATTERN, type BlueprintCatalog, type CatalogEntry } from '../../queue/blueprint-catalog.js';
import { clip, type ApiEnv } from '../env.js';
import { parseJsonBody, validate, validationError } from '../json-body.js';
import { requireScope } from '../middleware/auth.js';
import { toMermaid } from '../mermaid.js';
import { ApiError, ApiErrorCodes, jsonResponse } from '../respond.js';

export interface BlueprintsRoutesOptions {
  /** The blueprints bundled with this deployment (listed when there is no catalog). */
  blueprints: BlueprintRegistry;
  /**
   * Stored blueprints (pushed, or seeded from the bundle) and the bundled ones: what `GET` lists and `PUT`
   * stores into. Without it the routes serve `blueprints` alone, read-only.
   */
  catalog?: BlueprintCatalog;
  /** Runs before each route: authenticates (any valid key may read blueprints) and rate-limits. */
  guard: MiddlewareHandler<ApiEnv>;
}

const BlueprintIdParam = z.string().regex(BLUEPRINT_ID_PATTERN);

const GetBlueprintQuery = z.object({ version: z.string().regex(VERSION_PATTERN, 'must be a blueprint version (64 hex digits)').optional() });

/**
 * `GET /blueprints` (every blueprint a run can start, summarized: the version a start runs and the stored
 * versions), `GET /blueprints/{id}[?version=]` (one, with its analysis, Mermaid and layout) and
 * `PUT /blueprints/{id}` (validates and stores a new version: scope `blueprints:write`).
 */
export function blueprintsRoutes({ blueprints, catalog, guard }: BlueprintsRoutesOptions): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.get('/blueprints', guard, async () => {
    if (!catalog) {
      const list = blueprints.ids().flatMap((id) => {
        const loaded = blueprints.get(id);
        return loaded ? [summarize(loaded)] : [];
      });
      return jsonResponse(200, { blueprints: list });
    }
    return jsonResponse(200, { blueprints: (await catalog.list()).map((entry) => summarizeEntry(entry)) });
  });

  app.get('/blueprints/:id', guard, async (c) => {
    const raw = c.req.param('id');
    const query = validate(GetBlueprintQuery, c.req.query(), '$.query', 'query');
    const id = BlueprintIdParam.safeParse(raw);
    const missing = () => new ApiError(404, ApiErrorCodes.BLUEPRINT_NOT_FOUND, `no blueprint "${clip(raw ?? '')}"`);
    if (!id.success) throw missing();
    let summary: ReturnType<typeof summarize> & Partial<ReturnType<typeof summarizeEntry>>;
    let loaded: LoadedBlueprint | undefined;
    if (catalog) {
      const entry = await catalog.get(id.data);
      if (!entry) throw missing();
      loaded = query.version === undefined ? entry.loaded : await catalog.resolve(id.data, query.version);
      summary = summarizeEntry(entry, loaded);
    } else {
      loaded = blueprints.get(id.data);
      if (!loaded || (query.version !== undefined && query.version !== loaded.version)) throw missing();
      summary = summarize(loaded);
    }
    return jsonResponse(200, {
      ...summary,
      blueprint: loaded.blueprint,
      analysis: loaded.analysis,
      mermaid: toMermaid(loaded.blueprint),
      layout: layoutBlueprint(loaded.blueprint),
    });
  });

  if (catalog) {
    app.put('/blueprints/:id', guard, requireScope('blueprints:write'), async (c) => {
      const raw = c.req.param('id') ?? '';
      const id = BlueprintIdParam.safeParse(raw);
      if (!id.success) {
        throw validationError([{ path: '$.id', message: `"${clip(raw)}" in the path is not a blueprint id (1-100 letters, digits, ".", "_" or "-")` }], 'blueprint');
      }
      const body = parseJsonBody(await c.req.text());
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw validationError([{ path: '$', message: 'the body must be a blueprint (a JSON object with "nodes")' }], 'blueprint');
      }
      if ('id' in body && body.id !== id.data) {
        throw validationError([{ path: '$.id', message: `must be the id in the path ("${id.data}") or left out` }], 'blueprint');
      }
      const pushed = await catalog.push(body, { defaultId: id.data, file: '<request>' });
      const self = `/blueprints/${pushed.id}`;
      return jsonResponse(pushed.created ? 201 : 200, { ...pushed, links: { self, version: `${self}?version=${pushed.version}` } }, pushed.created ? { location: self } : {});
    });
  }

  return app;
}

function summarize(loaded: LoadedBlueprint) {
  const { blueprint, analysis } = loaded;
  const text = (key: string) => {
    const value = blueprint.metadata?.[key];
    return typeof value === 'string' ? value : undefined;
  };
  return {
    id: blueprint.id,
    version: loaded.version,
    title: text('title'),
    description: text('description'),
    startNodes: analysis.startNodes,
    terminalNodes: analysis.terminalNodes,
    nodeCount: blueprint.nodes.length,
  };
}

/**
 * A catalog entry, at the version a start runs or the one asked for; a stored one also with the version a
 * start runs (`latest`), when the version shown was pushed, and every stored version (oldest first). A
 * blueprint only bundled (never stored) is shown as before blueprints were data.
 */
function summarizeEntry(entry: CatalogEntry, shown: LoadedBlueprint = entry.loaded) {
  if (entry.source === 'bundled') return summarize(shown);
  return {
    ...summarize(shown),
    latest: entry.loaded.version,
    pushedAt: entry.versions.find((v) => v.version === shown.version)?.pushedAt,
    versions: entry.versions,
  };
}
