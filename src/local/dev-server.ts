import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULT_MAX_BODY_BYTES } from '../api/app.js';
import { errorResponse, payloadTooLarge } from '../api/respond.js';
import type { ApiHandler, ApiRequest, ApiResponse } from '../api/types.js';

export interface ApiServerOptions {
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** @default '127.0.0.1' (this machine only) */
  host?: string;
  /**
   * The API's body limit (`ApiOptions.maxBodyBytes`). The server reads at most one byte more, so the API
   * itself answers 413 at the limit, and a larger upload is refused without buffering it. @default 262144
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

/** After a 413 the rest of an upload is read and thrown away for this long, so the client sees the answer instead of a reset. */
const DISCARD_UPLOAD_MS = 5_000;

/**
 * Serves an API handler over node:http, as API Gateway would: the path as sent (still percent-encoded),
 * the query decoded (a repeated parameter keeps its first value), lower-case header names, the body as a
 * UTF-8 string.
 */
export async function startApiServer(handler: ApiHandler, options: ApiServerOptions = {}): Promise<ApiServer> {
  const host = options.host ?? '127.0.0.1';
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const capBytes = maxBodyBytes + 1;

  const server = createServer((req, res) => {
    serve(req, res).catch((err: unknown) => {
      // The handler answers every error itself; this only guards against a broken socket or a buggy handler.
      if (!res.headersSent) writeResponse(res, { status: 500, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: '{"error":{"code":"INTERNAL","message":"internal error"}}' });
      else res.destroy(err instanceof Error ? err : undefined);
    });
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, capBytes);
    if (body === 'too-large') {
      refuseUpload(req, res, maxBodyBytes);
      return;
    }
    // Split by hand: `new URL('//x', base)` would read a path starting with "//" as a host.
    const target = req.url ?? '/';
    const at = target.indexOf('?');
    const path = at === -1 ? target : target.slice(0, at);
    const query: Record<string, string | undefined> = {};
    for (const [name, value] of new URLSearchParams(at === -1 ? '' : target.slice(at + 1))) if (!(name in query)) query[name] = value;
    const headers: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
    }
    const apiRequest: ApiRequest = {
      method: (req.method ?? 'GET').toUpperCase(),
      path,
      query,
      headers,
      body,
      sourceIp: req.socket.remoteAddress,
    };
    writeResponse(res, await handler(apiRequest));
  }

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

/**
 * The body as a string, or 'too-large' as soon as it passes `capBytes` (by its content-length, or while
 * reading): what was read so far is dropped and nothing more is kept.
 */
function readBody(req: IncomingMessage, capBytes: number): Promise<string | undefined | 'too-large'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > capBytes) return Promise.resolve('too-large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > capBytes) {
        chunks.length = 0;
        req.off('data', onData);
        req.off('end', onEnd);
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(size === 0 ? undefined : Buffer.concat(chunks).toString('utf8'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', reject);
  });
}

/**
 * Answers 413 and closes the connection. The rest of the upload is read and discarded (not kept) for a
 * few seconds: closing a socket with unread data makes the client see a reset instead of the answer.
 */
function refuseUpload(req: IncomingMessage, res: ServerResponse, maxBodyBytes: number): void {
  res.shouldKeepAlive = false;
  writeResponse(res, errorResponse(payloadTooLarge(maxBodyBytes)), { connection: 'close' });
  req.resume();
  const timer = setTimeout(() => req.destroy(), DISCARD_UPLOAD_MS);
  timer.unref();
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
}

function writeResponse(res: ServerResponse, response: ApiResponse, extraHeaders: Record<string, string> = {}): void {
  const body = Buffer.from(response.body, 'utf8');
  res.writeHead(response.status, { ...response.headers, ...extraHeaders, 'content-length': String(body.length) });
  res.end(body);
}
