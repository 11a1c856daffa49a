import type { Context } from 'hono';
import { Hono } from 'hono/tiny';
import { readDashboardAsset } from '../../dashboard/assets.js';
import { clip, rawPath, type ApiEnv } from '../env.js';
import { ApiError, ApiErrorCodes, jsonResponse } from '../respond.js';

export interface DashboardRoutesOptions {
  /** The dashboard's folder; undefined when it is off or not installed (then `/dashboard…` answers 404). */
  dir: string | undefined;
}

/** The dashboard loads nothing from elsewhere and runs no inline code. */
const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The dashboard's page and files, served to anyone (they hold no data; the page's API calls carry the
 * key its user typed). `/` and `/dashboard` lead to `/dashboard/`, whose files are referenced relative
 * to it, so the page also works below a path prefix (an API Gateway stage). Works on the raw path: the
 * app routes with trailing slashes ignored, and `/dashboard` and `/dashboard/` differ here.
 */
export function dashboardRoutes({ dir }: DashboardRoutesOptions): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  if (dir === undefined) {
    app.all('/dashboard', notServed);
    app.all('/dashboard/*', notServed);
    return app;
  }

  const serve = async (c: Context<ApiEnv>): Promise<Response> => {
    const path = rawPath(c.req.url);
    if (path === '/' || path === '/dashboard') return redirect('dashboard/');
    // Reached with a path the router trimmed ("//", "/dashboard//"…): not one of the dashboard's.
    if (!path.startsWith('/dashboard/')) throw new ApiError(404, ApiErrorCodes.NOT_FOUND, `no route GET ${clip(path)}`);
    let rest: string;
    try {
      rest = decodeURIComponent(path.slice('/dashboard/'.length));
    } catch {
      throw new ApiError(404, ApiErrorCodes.NOT_FOUND, 'no such dashboard file');
    }
    // Pages have addresses of their own too (`/dashboard/runs/<id>`): the page shows them by its hash.
    const page = /^(runs\/[^/]+|runs|blueprints)\/?$/.exec(rest);
    if (page) {
      // Relative to the address asked for: one "../" per "/" after /dashboard/ leads back to it.
      const up = '../'.repeat(rest.split('/').length - 1) || './';
      return redirect(`${up}#/${page[1]!.split('/').map(encodeURIComponent).join('/')}`);
    }
    const asset = await readDashboardAsset(dir, rest);
    if (!asset) throw new ApiError(404, ApiErrorCodes.NOT_FOUND, `no dashboard file "${clip(rest)}"`);
    const headers: Record<string, string> = {
      'content-type': asset.contentType,
      'cache-control': 'no-cache',
      etag: asset.etag,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    };
    if (asset.contentType.startsWith('text/html')) {
      headers['content-security-policy'] = DASHBOARD_CSP;
      headers['x-frame-options'] = 'DENY';
    }
    if (c.req.header('if-none-match') === asset.etag) return new Response(null, { status: 304, headers });
    return new Response(asset.body, { status: 200, headers });
  };

  app.get('/', serve);
  app.get('/dashboard', serve);
  app.get('/dashboard/*', serve);
  return app;
}

function notServed(): never {
  throw new ApiError(404, ApiErrorCodes.NOT_FOUND, 'the dashboard is not served here');
}

/** A redirect relative to the request's own address (so a path prefix in front of the API is kept). */
function redirect(location: string): Response {
  return jsonResponse(302, { location }, { location });
}
