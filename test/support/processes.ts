import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/switchyard.mjs', import.meta.url));
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const started = new Set<ChildProcess>();

/** Runs the CLI to the end; resolves with its exit code and output. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A long-running CLI process (a worker), resolved once a stderr log line matches `readyWhen`. */
export function startCli(
  args: string[],
  env: Record<string, string>,
  readyWhen: RegExp,
): Promise<{ child: ChildProcess; log: () => string; stdout: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let log = '';
  // stdout alone too (metric lines), besides the interleaved log of both streams.
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    started.delete(child);
    resolve(code);
  }));
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      log += d;
      if (readyWhen.test(log)) resolve({ child, log: () => log, stdout: () => stdout, exited });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => reject(new Error(`process exited (${code}) before it was ready:\n${log}`)));
  });
}

/** Kills (by pid) every process a test started and did not stop itself. */
export async function killStarted(): Promise<void> {
  await Promise.all(
    [...started].map(
      (child) =>
        new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          if (child.pid) process.kill(child.pid, 'SIGKILL');
        }),
    ),
  );
}
