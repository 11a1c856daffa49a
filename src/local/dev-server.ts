import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener, type Http2Bindings, type HttpBindings } from '@hono/node-server';
import type { ApiFetch } from '../api/app.js';
import { ApiError, ApiErrorCodes, errorResponse, payloadTooLarge } from '../api/respond.js';

export interface ApiServerOptions {
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** @default '127.0.0.1' (this machine only) */
  host?: string;
  /**
   * Uploads that declare (by content-length) more than this are refused with 413 by the server before
   * the API sees them. The API enforces its own `maxBodyBytes` in any case, also on bodies that stream
   * in without a length. @default no limit of the server's own
   */
  maxBodyBytes?: number;
}

export interface ApiServer {
  /** `http://<host>:<port>` */
  url: string;
  port: number;
  /** Stops accepting requests and drops open connections (long polls included). */
  close(): Promise<void>;
}

/**
 * Serves the API (`createApi(…)`, or anything with a fetch-style `fetch`) over node:http through
 * `@hono/node-server`: the request becomes a `Request` (dot segments resolved, as any URL parser does),
 * its body streams in as the API reads it, and the caller's address is in `c.env.incoming`. An upload
 * refused by its declared length is read and discarded by node:http, so the connection stays usable; one
 * refused while streaming (chunked) gets `connection: close`. A request that cannot even be made a
 * `Request` (a malformed host header or target) is answered with the API's JSON 400.
 */
export async function startApiServer(api: { fetch: ApiFetch }, options: ApiServerOptions = {}): Promise<ApiServer> {
  const host = options.host ?? '127.0.0.1';
  const cap = options.maxBodyBytes;

  const fetch = async (request: Request, env: HttpBindings | Http2Bindings): Promise<Response> => {
    if (cap !== undefined && Number(request.headers.get('content-length')) > cap) return errorResponse(payloadTooLarge(cap));
    try {
      return await api.fetch(request, env);
    } catch {
      // The API answers every error itself; this only guards against a bug in it.
      return errorResponse(new ApiError(500, ApiErrorCodes.INTERNAL, 'internal error'));
    }
  };
  const listener = getRequestListener(fetch, {
    hostname: host,
    errorHandler: (err) => errorResponse(new ApiError(400, ApiErrorCodes.BAD_REQUEST, `the request could not be read: ${err instanceof Error ? err.message : String(err)}`)),
  });
  const server = createServer(listener);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
