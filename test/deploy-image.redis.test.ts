/**
 * The worker image's Dockerfile, checked by structure (there is no Docker engine on these machines), and
 * its health-check script run for real against Redis.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { findFreePort } from '../src/local/redis-server.js';

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

const { stages, heredocs } = parseDockerfile(dockerfile);
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
    const [healthcheck] = args(runtime, 'HEALTHCHECK');
    expect(healthcheck).toMatch(/CMD \["node", "healthcheck\.cjs"\]$/);
    expect(args(runtime, 'COPY')).toContain("<<'EOF' healthcheck.cjs");
    // BuildKit heredocs need the dockerfile:1 syntax (the first line).
    expect(dockerfile.split('\n')[0]).toBe('# syntax=docker/dockerfile:1');
  });
});

describe('healthcheck.cjs (from the Dockerfile)', () => {
  const run = async (env: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-health-'));
    const file = join(dir, 'healthcheck.cjs');
    writeFileSync(file, heredocs['healthcheck.cjs']!);
    try {
      await promisify(execFile)(process.execPath, [file], { timeout: 20_000, env: { PATH: process.env.PATH, NODE_PATH: join(ROOT, 'node_modules'), ...env } });
      return 0;
    } catch (err) {
      return (err as { code?: number }).code ?? -1;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('exits 0 when Redis answers PING, 1 when it does not', async () => {
    expect(await run({ REDIS_URL: inject('redisUrl') })).toBe(0);
    expect(await run({ REDIS_URL: `redis://127.0.0.1:${await findFreePort()}` })).toBe(1);
    const url = new URL(inject('redisUrl'));
    // The ECS task's variables (REDIS_HOST/PORT + token); TLS off only because the test Redis has none.
    expect(await run({ REDIS_HOST: url.hostname, REDIS_PORT: url.port || '6379', REDIS_TLS: 'false' })).toBe(0);
  });
});
