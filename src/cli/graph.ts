import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { parseBlueprint } from '../blueprint/load.js';
import type { Blueprint } from '../blueprint/schema.js';
import { toMermaid } from '../api/mermaid.js';
import { ValidationError } from '../errors.js';
import { layoutBlueprint, renderSvg } from '../drawing/index.js';
import { blueprintPaths, loadRegistry, UsageError, type CliEnv } from './common.js';
import type { Parsed } from './options.js';

/** Where Debian's Chromium lives; SWITCHYARD_CHROMIUM points elsewhere. */
const DEFAULT_CHROMIUM = '/usr/bin/chromium';

export async function graph(positionals: string[], values: Parsed, env: CliEnv): Promise<number> {
  const [target, ...extra] = positionals;
  if (!target) throw new UsageError('name a blueprint id or file: switchyard graph <blueprintId|file.json> [--out file.svg]');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const blueprint = await findBlueprint(target, values, env);
  const out = values.out;
  if (out === undefined) {
    console.log(toMermaid(blueprint));
    return 0;
  }
  const format = extname(out).toLowerCase();
  if (format !== '.svg' && format !== '.png') throw new UsageError(`--out must end in .svg or .png (got "${out}")`);
  const title = typeof blueprint.metadata?.title === 'string' ? `${blueprint.metadata.title} (${blueprint.id})` : blueprint.id;
  const svg = renderSvg(layoutBlueprint(blueprint), { title });
  if (format === '.svg') writeFileSync(out, svg);
  else await writePng(svg, out, env.vars.SWITCHYARD_CHROMIUM || DEFAULT_CHROMIUM);
  console.log(`wrote ${out} (${blueprint.nodes.length} nodes, ${blueprint.edges?.length ?? 0} edges)`);
  return 0;
}

/** A file (drawn as it is, after a schema check) or a registered blueprint id. */
async function findBlueprint(target: string, values: Parsed, env: CliEnv): Promise<Blueprint> {
  if (target.endsWith('.json') || (existsSync(target) && statSync(target).isFile())) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(target, 'utf8'));
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new UsageError(`cannot read ${target} as JSON (${reason})`);
    }
    const { blueprint, issues } = parseBlueprint(json, target, basename(target, '.json'));
    if (!blueprint) throw new ValidationError(issues);
    return blueprint;
  }
  const registry = await loadRegistry(values.blueprints, env);
  const loaded = registry.get(target);
  if (!loaded) throw new UsageError(`no blueprint "${target}" in ${blueprintPaths(values.blueprints).join(', ')} (known: ${registry.ids().join(', ') || 'none'})`);
  return loaded.blueprint;
}

/** Renders the SVG in headless Chromium and screenshots it at twice its size. */
async function writePng(svg: string, out: string, executablePath: string): Promise<void> {
  if (!existsSync(executablePath)) {
    throw new UsageError(`PNG needs Chromium at ${executablePath} (Debian/Ubuntu: apt-get install -y chromium; or set SWITCHYARD_CHROMIUM), or write an .svg instead`);
  }
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    throw new UsageError('PNG needs the playwright-core package (npm install playwright-core), or write an .svg instead');
  }
  const width = Number(/width="([\d.]+)"/.exec(svg)?.[1] ?? 800);
  const height = Number(/height="([\d.]+)"/.exec(svg)?.[1] ?? 600);
  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const page = await browser.newPage({ viewport: { width: Math.ceil(width), height: Math.ceil(height) }, deviceScaleFactor: 2 });
    await page.setContent(`<!doctype html><html><body style="margin:0;background:#fff">${svg}</body></html>`);
    await page.locator('svg').first().screenshot({ path: out });
  } finally {
    await browser.close();
  }
}
