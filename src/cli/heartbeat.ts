import { statSync, writeFileSync } from 'node:fs';

/**
 * A worker's liveness as a file: the worker rewrites it every few seconds from a timer, so its mtime
 * goes stale when the event loop stops turning (a busy loop, a deadlock, SIGSTOP) or the worker is
 * draining or gone. `switchyard health` (a container health check) only reads the mtime: no Redis, no
 * network, nothing that can hang.
 */
export interface Heartbeat {
  /** Stops writing (the file stays, and goes stale). Idempotent. */
  stop(): void;
}

/**
 * Writes `file` now and then every `intervalMs`. The timer is unref'd: it never keeps the process alive.
 * A failed write is reported once per failure streak, and writing goes on.
 */
export function startHeartbeat(file: string, intervalMs: number, info: { workerId: string }, onError: (message: string) => void): Heartbeat {
  let failing = false;
  const write = () => {
    try {
      writeFileSync(file, `${JSON.stringify({ pid: process.pid, workerId: info.workerId, at: new Date().toISOString() })}\n`);
      failing = false;
    } catch (err) {
      if (!failing) onError(`cannot write the heartbeat file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      failing = true;
    }
  };
  write();
  const timer = setInterval(write, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

export interface HeartbeatCheck {
  ok: boolean;
  /** One line: how old the heartbeat is, or why there is none. */
  message: string;
}

/** Whether `file` was written within `maxAgeSeconds` of `now`. */
export function checkHeartbeat(file: string, maxAgeSeconds: number, now = Date.now()): HeartbeatCheck {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(file).mtimeMs;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      ok: false,
      message: code === 'ENOENT' ? `no heartbeat file ${file}: the worker has not started (or runs without SWITCHYARD_HEARTBEAT_FILE)` : `cannot read the heartbeat file ${file} (${code ?? (err as Error).message})`,
    };
  }
  const ageSeconds = Math.max(0, (now - mtimeMs) / 1000);
  const age = ageSeconds.toFixed(1);
  if (ageSeconds <= maxAgeSeconds) return { ok: true, message: `worker alive: heartbeat ${age} s old (max ${maxAgeSeconds} s)` };
  return { ok: false, message: `worker unhealthy: heartbeat ${file} is ${age} s old (max ${maxAgeSeconds} s): the worker is stuck, draining or gone` };
}
