/**
 * The worker image's Dockerfile, checked by structure (there is no Docker engine on these machines), and
 * its health check (`switchyard health`) run for real.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Instructions per stage (comments dropped, continuation lines joined, heredoc bodies kept with their COPY). */
function parseDockerfile(text: string): { stages: Stage[]; heredocs: Record<string, string> } {
  const stages: Stage[] = [];
  const heredocs: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\')) line = line.slice(0, -1) + ' ' + lines[++i]!;
    const [, op, args] = /^\s*(\w+)\s+(.*)$/.exec(line)!;
    const heredoc = /<<'?(\w+)'?\s+(\S+)/.exec(args!);
    if (heredoc) {
      const body: string[] = [];
      while (lines[++i] !== heredoc[1]) body.push(lines[i]!);
      heredocs[heredoc[2]!] = body.join('\n');
    }
    if (op!.toUpperCase() === 'FROM') {
      const [, from, name] = /^(\S+)(?:\s+AS\s+(\S+))?/i.exec(args!)!;
      stages.push({ from: from!, name, instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push({ op: op!.toUpperCase(), args: args!.trim() });
    }
  }
  return { stages, heredocs };
}

const { stages } = parseDockerfile(dockerfile);
const runtime = stages.at(-1)!;
const args = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op).map((i) => i.args);

describe('Dockerfile', () => {
  it('builds in a node:22-slim stage with npm ci + npm run build, and runs on node:22-slim', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:22-slim$/m);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.from).toBe('${NODE_IMAGE}');
    const build = stages.find((s) => s.name === 'build')!;
    expect(args(build, 'RUN').join('\n')).toMatch(/npm ci\b(?!.*--omit=dev)/);
    expect(args(build, 'RUN')).toContain('npm run build');
  });

  it('ships production dependencies only, with dist/, bin/ and workflows/, and no sources or dev tools', () => {
    const deps = stages.find((s) => s.name === 'deps')!;
    expect(args(deps, 'RUN').join('\n')).toMatch(/npm ci --omit=dev/);
    const copies = args(runtime, 'COPY');
    expect(copies).toContain('--from=deps /app/node_modules/ node_modules/');
    expect(copies).toContain('--from=build /app/dist/ dist/');
    expect(copies).toContain('bin/ bin/');
    expect(copies).toContain('workflows/ workflows/');
    // bin/switchyard.mjs runs src/ through tsx only when both exist; the image has neither, so it runs dist/.
    expect(copies.join('\n')).not.toMatch(/\bsrc\/|tsconfig|--from=build \/app\/node_modules/);
    expect(args(runtime, 'RUN')).toEqual([]);
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const path of ['node_modules', '.git', 'dist', '.serverless']) expect(ignored).toContain(path);
  });

  it('runs `switchyard worker` as a non-root user, stops on SIGTERM and has a health check', () => {
    const user = args(runtime, 'USER');
    expect(user).toHaveLength(1);
    expect(user[0]).not.toMatch(/^(root|0)(:|$)/);
    const order = runtime.instructions.map((i) => i.op);
    expect(order.indexOf('USER')).toBeLessThan(order.indexOf('ENTRYPOINT'));
    expect(args(runtime, 'ENTRYPOINT')).toEqual(['["node", "bin/switchyard.mjs"]']);
    expect(args(runtime, 'CMD')).toEqual(['["worker", "--blueprints", "workflows"]']);
    expect(args(runtime, 'STOPSIGNAL')).toEqual(['SIGTERM']);
    // The worker's own liveness (its heartbeat file), not a Redis PING: see `switchyard health` below.
    const [healthcheck] = args(runtime, 'HEALTHCHECK');
    expect(healthcheck).toMatch(/CMD \["node", "bin\/switchyard\.mjs", "health", "--max-age-seconds", "30"\]$/);
    expect(args(runtime, 'ENV')).toContain('SWITCHYARD_HEARTBEAT_FILE=/tmp/switchyard-heartbeat');
  });
});

describe('the image health check: switchyard health (bin/switchyard.mjs, as the Dockerfile runs it)', () => {
  const health = async (file: string) => {
    try {
      await promisify(execFile)(process.execPath, [join(ROOT, 'bin/switchyard.mjs'), 'health', '--max-age-seconds', '30'], {
        timeout: 20_000,
        env: { PATH: process.env.PATH, SWITCHYARD_HEARTBEAT_FILE: file },
      });
      return 0;
    } catch (err) {
      return (err as { code?: number }).code ?? -1;
    }
  };

  it('passes while the heartbeat file is fresh, fails once it is older than the limit or missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-health-'));
    const file = join(dir, 'switchyard-heartbeat');
    try {
      writeFileSync(file, String(Date.now()));
      expect(await health(file)).toBe(0);
      const minuteAgo = new Date(Date.now() - 60_000);
      utimesSync(file, minuteAgo, minuteAgo);
      expect(await health(file)).toBe(1);
      rmSync(file);
      expect(await health(file)).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
