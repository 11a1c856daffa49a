/**
 * The HTTP API's transport-neutral shapes. The Lambda adapters (`functions/`) and the local server
 * (`src/local/dev-server.ts`) both turn their requests into an {@link ApiRequest} and write back the
 * {@link ApiResponse}; the handler itself knows nothing about either.
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
