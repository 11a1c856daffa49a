import type { WorkerConfig, WorkerMessage } from '../engine.js';

/** Worker-process side of the orchestrator protocol: config from argv, `stats` on request. */
export function workerConfig(): WorkerConfig {
  return JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
}

export function reportReady(): void {
  send({ type: 'ready', pid: process.pid });
}

/** Answers `stats` requests, and stops cleanly on SIGTERM (or when the orchestrator goes away). */
export function serveStats(stop: () => Promise<void>): void {
  process.on('message', (message: { type?: string }) => {
    if (message?.type !== 'stats') return;
    const cpu = process.cpuUsage();
    send({ type: 'stats', pid: process.pid, cpuUserMicros: cpu.user, cpuSystemMicros: cpu.system, rssBytes: process.memoryUsage().rss });
  });
  const shutdown = () => void stop().finally(() => process.exit(0));
  process.once('SIGTERM', shutdown);
  process.once('disconnect', shutdown);
}

function send(message: WorkerMessage): void {
  process.send?.(message);
}
