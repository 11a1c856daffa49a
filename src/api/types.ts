/**
 * The HTTP API's transport-neutral shapes: `createApi(…)` is also a function from {@link ApiRequest} to
 * {@link ApiResponse}, for callers without a `Request` at hand. The Lambda functions (`hono/aws-lambda`)
 * and the local server (`@hono/node-server`) serve the Hono app's `fetch` instead.
 */

export interface ApiRequest {
  method: string;
  /** The raw (still percent-encoded) path, e.g. `/runs/abc/cancel`. */
  path: string;
  query: Record<string, string | undefined>;
  /** Lower-case header names. */
  headers: Record<string, string | undefined>;
  /** The raw body as a string (undefined when there is none). */
  body: string | undefined;
  sourceIp?: string;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export type ApiHandler = (req: ApiRequest) => Promise<ApiResponse>;
