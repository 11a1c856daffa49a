import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** How the server answers one request; `hang` never answers. */
export type Reply = ((res: ServerResponse, req: SeenRequest) => void) | 'hang';

/** A loopback server that answers from a script (its last reply repeats) and records every request. */
export interface ScriptedServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: SeenRequest[];
  /** Resolves once `count` requests have arrived (so tests wait on events, never on sleeps). */
  requestCount(count: number): Promise<void>;
  close(): Promise<void>;
}

export async function startScriptedServer(...replies: Reply[]): Promise<ScriptedServer> {
  const requests: SeenRequest[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const seen: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(seen);
      const reply = replies[Math.min(requests.length, replies.length) - 1] ?? 'hang';
      if (reply !== 'hang') reply(res, seen);
      for (const w of waiters.filter((w) => requests.length >= w.count)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    requestCount: (count) => (requests.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))),
    close: () =>
      new Promise((resolve) => {
        // Hung requests keep their sockets open; close them or `close` would wait for ever.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
