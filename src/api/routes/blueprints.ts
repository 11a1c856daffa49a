import type { MiddlewareHandler } from 'hono';
import { Hono } from 'hono/tiny';
import { z } from 'zod';
import type { BlueprintRegistry, LoadedBlueprint } from '../../blueprint/load.js';
import { BLUEPRINT_ID_PATTERN } from '../../blueprint/schema.js';
import { layoutBlueprint } from '../../drawing/layout.js';
import { clip, type ApiEnv } from '../env.js';
import { toMermaid } from '../mermaid.js';
import { ApiError, ApiErrorCodes, jsonResponse } from '../respond.js';

export interface BlueprintsRoutesOptions {
  blueprints: BlueprintRegistry;
  /** Runs before each route: authenticates (any valid key may read blueprints) and rate-limits. */
  guard: MiddlewareHandler<ApiEnv>;
}

const BlueprintIdParam = z.string().regex(BLUEPRINT_ID_PATTERN);

/** `GET /blueprints` (the registered blueprints, summarized) and `GET /blueprints/{id}` (one, with its analysis, Mermaid and layout). */
export function blueprintsRoutes({ blueprints, guard }: BlueprintsRoutesOptions): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.get('/blueprints', guard, () => {
    const list = blueprints.ids().flatMap((id) => {
      const loaded = blueprints.get(id);
      return loaded ? [summarize(loaded)] : [];
    });
    return jsonResponse(200, { blueprints: list });
  });

  app.get('/blueprints/:id', guard, (c) => {
    const raw = c.req.param('id');
    const id = BlueprintIdParam.safeParse(raw);
    const loaded = id.success ? blueprints.get(id.data) : undefined;
    if (!loaded) throw new ApiError(404, ApiErrorCodes.BLUEPRINT_NOT_FOUND, `no blueprint "${clip(raw ?? '')}"`);
    return jsonResponse(200, {
      ...summarize(loaded),
      blueprint: loaded.blueprint,
      analysis: loaded.analysis,
      mermaid: toMermaid(loaded.blueprint),
      layout: layoutBlueprint(loaded.blueprint),
    });
  });

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
