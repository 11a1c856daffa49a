import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RateLimitedServerOptions {
  /** Requests answered at once; one more is answered 429. */
  maxConcurrent: number;
  /** Requests accepted in any window of `windowMs` (a sliding window from each accepted arrival). */
  perWindow: number;
  windowMs: number;
  /** How long an accepted request takes to answer. */
  latencyMs: number;
  /**
   * Answers these requests (1-based, in arrival order) 429 with `Retry-After` regardless of the limits,
   * as a provider's own throttling would.
   */
  throttle?: { requests: number[]; retryAfterMs: number };
}

/** What the server saw; times are its own clock (Date.now). */
export interface RateLimitedServerStats {
  accepted: number;
  /** 429s answered, over the limits or scripted. */
  rejected: number;
  /** The most requests answered at once. */
  maxInFlight: number;
  /** From the first accepted arrival to the last accepted answer, in ms. */
  busyMs: number;
  /** Requests in flight integrated over time (ms x requests), over the busy period. */
  inFlightMs: number;
  /** Every arrival: when, and whether it was accepted. */
  arrivals: Array<{ at: number; accepted: boolean }>;
  /** When each 429 was sent, with the Retry-After it gave (ms). */
  rejections: Array<{ at: number; retryAfterMs: number }>;
}

/**
 * An OpenAI-compatible Chat Completions server on loopback that enforces an account's limits as a provider
 * does: more than `maxConcurrent` requests at once, or more than `perWindow` in a sliding window, get 429
 * with `Retry-After` (seconds, fractional). Accepted requests answer after `latencyMs` with a usage block.
 */
export async function startRateLimitedServer(options: RateLimitedServerOptions) {
  let inFlight = 0;
  let lastChange = 0;
  let first: number | undefined;
  let last = 0;
  const windowLog: number[] = [];
  const stats: RateLimitedServerStats = { accepted: 0, rejected: 0, maxInFlight: 0, busyMs: 0, inFlightMs: 0, arrivals: [], rejections: [] };
  const finished: Array<{ count: number; resolve: () => void }> = [];

  const change = (delta: number) => {
    const now = Date.now();
    if (inFlight > 0) stats.inFlightMs += inFlight * (now - lastChange);
    lastChange = now;
    inFlight += delta;
    stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
  };
  const reject = (res: ServerResponse, retryAfterMs: number, message: string) => {
    stats.rejected++;
    stats.rejections.push({ at: Date.now(), retryAfterMs });
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': (retryAfterMs / 1000).toFixed(3) });
    res.end(JSON.stringify({ error: { message, type: 'rate_limit_exceeded' } }));
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const now = Date.now();
      const number = stats.arrivals.length + 1;
      while (windowLog.length > 0 && windowLog[0]! <= now - options.windowMs) windowLog.shift();
      const throttled = options.throttle?.requests.includes(number);
      const overConcurrency = inFlight >= options.maxConcurrent;
      const overWindow = windowLog.length >= options.perWindow;
      const accepted = !throttled && !overConcurrency && !overWindow;
      stats.arrivals.push({ at: now, accepted });
      if (throttled) return reject(res, options.throttle!.retryAfterMs, 'throttled');
      if (overConcurrency) return reject(res, 200, `more than ${options.maxConcurrent} requests at once`);
      if (overWindow) return reject(res, Math.max(1, windowLog[0]! + options.windowMs - now), `more than ${options.perWindow} requests per window`);
      windowLog.push(now);
      first ??= now;
      stats.accepted++;
      change(+1);
      let prompt = '';
      try {
        prompt = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messages: Array<{ content: string }> }).messages[0]!.content;
      } catch {
        // not a chat request: answer anyway
      }
      setTimeout(() => {
        // Counted out before the answer is written, so a client that sees the answer never finds us still busy.
        change(-1);
        last = Date.now();
        stats.busyMs = last - first!;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ model: 'limited-1', choices: [{ message: { content: `ok: ${prompt.slice(0, 20)}` } }], usage: { prompt_tokens: Math.ceil(prompt.length / 4), completion_tokens: 5 } }));
        for (const w of finished.filter((w) => stats.accepted >= w.count)) {
          finished.splice(finished.indexOf(w), 1);
          w.resolve();
        }
      }, options.latencyMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    /** Busy time as a share of the allowed concurrency: inFlightMs / (maxConcurrent x busyMs). */
    utilization: () => (stats.busyMs > 0 ? stats.inFlightMs / (options.maxConcurrent * stats.busyMs) : 0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
