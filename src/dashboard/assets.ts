import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A file to send: body, content type and validator. */
export interface DashboardAsset {
  body: string;
  contentType: string;
  etag: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** A file name the dashboard may serve: no dot files, no "..", nothing outside the folder. */
const SAFE_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$/;

/** Where the dashboard's files live inside the package. */
const PUBLIC_DIR = join('src', 'dashboard', 'public');

/**
 * The dashboard's folder, found from this module's location by walking up to the package root (the
 * folder with package.json), so it is the same whether this code runs from `src/` (tsx, vitest) or from
 * the esbuild bundle in `dist/`. Undefined when the package ships without it (a Lambda bundle) or when
 * this code was bundled as CommonJS.
 */
export function findDashboardDir(from: string | undefined = import.meta.url): string | undefined {
  // A CommonJS bundle (the Lambda functions) has no import.meta.url, and no dashboard files beside it.
  if (typeof from !== 'string' || !from.startsWith('file:')) return undefined;
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) {
      const candidate = join(dir, PUBLIC_DIR);
      if (existsSync(join(candidate, 'index.html'))) return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * Reads a dashboard file by its path below the folder (`app.js`, `views/run.js`); undefined when there
 * is no such file or the path is not one the dashboard serves. Files are read on each request (they are
 * small, and an edited file shows on the next reload).
 */
export async function readDashboardAsset(dir: string, relativePath: string): Promise<DashboardAsset | undefined> {
  const segments = relativePath === '' ? ['index.html'] : relativePath.split('/');
  if (segments.length > 4 || !segments.every((s) => SAFE_SEGMENT.test(s))) return undefined;
  const contentType = CONTENT_TYPES[extname(segments.at(-1)!)];
  if (!contentType) return undefined;
  const root = resolve(dir);
  const file = resolve(root, ...segments);
  if (!file.startsWith(root + sep)) return undefined;
  let body: string;
  try {
    body = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  return { body, contentType, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}
