/**
 * scripts/deploy.ts (`npm run deploy`), run as a process with fake `docker`, `aws`, `git` and `serverless`
 * first (and alone) on PATH: its argument handling, the checks that stop it before anything changes (one
 * line each), the commands a dry run prints, and the commands a real run executes. Docker cannot build
 * here (no daemon, no registry), so the build itself is not run.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUILD_INPUTS, contentHash } from '../scripts/deploy.js';

const ROOT = join(import.meta.dirname, '..');
const SCRIPT = join(ROOT, 'scripts', 'deploy.ts');
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const ACCOUNT = '123456789012';
const REGISTRY = `${ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com`;
const REQUIRED = ['--param=vpcId=vpc-0123456789abcdef0', '--param=privateSubnetIds=subnet-0123456789abcdef0,subnet-0fedcba9876543210'];

type Fake = 'docker' | 'docker-no-buildx' | 'aws' | 'aws-no-credentials' | 'aws-repo-exists' | 'aws-image-exists' | 'git' | 'serverless';

/** Each fake appends its argv (and stdin for docker login) to calls.log, and answers like the real tool. */
const FAKES: Record<Fake, [name: string, body: string]> = {
  docker: ['docker', `if [ "$1" = login ]; then read -r pw; echo "docker $* stdin=$pw" >> "$LOG"; else echo "docker $*" >> "$LOG"; fi\n[ "$1 $2" = "buildx version" ] && echo "github.com/docker/buildx v0.19.3"\nexit 0`],
  'docker-no-buildx': ['docker', `echo "docker $*" >> "$LOG"\n[ "$1" = buildx ] && { echo "docker: unknown command: docker buildx" >&2; exit 1; }\nexit 0`],
  aws: ['aws', AWS({ repo: false, image: false })],
  'aws-no-credentials': ['aws', `echo "aws $*" >> "$LOG"\necho "Unable to locate credentials." >&2\nexit 255`],
  'aws-repo-exists': ['aws', AWS({ repo: true, image: false })],
  'aws-image-exists': ['aws', AWS({ repo: true, image: true })],
  git: ['git', `echo "0123456789ab"`],
  serverless: ['serverless', `echo "serverless $*" >> "$LOG"\nexit 0`],
};

function AWS(state: { repo: boolean; image: boolean }): string {
  return `echo "aws $*" >> "$LOG"
case "$1 $2" in
  "sts get-caller-identity") echo ${ACCOUNT} ;;
  "ecr describe-repositories") ${state.repo ? 'echo "{}"' : 'echo "RepositoryNotFoundException" >&2; exit 254'} ;;
  "ecr describe-images") ${state.image ? 'echo "{}"' : 'echo "ImageNotFoundException" >&2; exit 254'} ;;
  "ecr get-login-password") echo "ecr-password" ;;
esac
exit 0`;
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Runs the script with only the given fakes on PATH; returns its output and the fakes' calls. */
function runDeploy(args: string[], fakes: Fake[], env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sy-deploy-'));
  dirs.push(dir);
  const log = join(dir, 'calls.log');
  writeFileSync(log, '');
  for (const fake of fakes) {
    const [name, body] = FAKES[fake];
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
  const result = spawnSync(process.execPath, [TSX, SCRIPT, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: dir, LOG: log, HOME: dir, ...env },
  });
  return {
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    calls: readFileSync(log, 'utf8').split('\n').filter(Boolean),
  };
}

const ALL: Fake[] = ['docker', 'aws', 'git', 'serverless'];
const expectedTag = () => `c-${contentHash(ROOT).slice(0, 20)}`;

/** One line on stderr, starting `deploy:`, exit 2, and no command that changes anything was run. */
function expectEarlyFailure(result: ReturnType<typeof runDeploy>, message: RegExp) {
  expect(result.status, result.stdout + result.stderr).toBe(2);
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^deploy: /);
  expect(lines[0]).toMatch(message);
  expect(result.calls.filter((c) => /create-repository|docker login|buildx build|^serverless/.test(c))).toEqual([]);
}

describe('npm run deploy: arguments and checks (each fails early with one line)', () => {
  it('needs --stage, vpcId and two private subnets, and rejects what it cannot use', () => {
    expectEarlyFailure(runDeploy([...REQUIRED], ALL), /--stage is required/);
    expectEarlyFailure(runDeploy(['--stage', 'prod', REQUIRED[1]!], ALL), /missing --param=vpcId=vpc-/);
    expectEarlyFailure(runDeploy(['--stage', 'prod', REQUIRED[0]!], ALL), /missing --param=privateSubnetIds=/);
    expectEarlyFailure(runDeploy(['--stage', 'prod', REQUIRED[0]!, '--param=privateSubnetIds=subnet-0123456789abcdef0'], ALL), /at least two private subnets in different Availability Zones/);
    expectEarlyFailure(runDeploy(['--stage', 'prod', '--param=vpcId=my-vpc', REQUIRED[1]!], ALL), /"my-vpc" is not a VPC id/);
    expectEarlyFailure(runDeploy(['--stage', 'prod', ...REQUIRED, '--param=createVpcEndpoints=true'], ALL), /createVpcEndpoints=true needs --param=routeTableIds=/);
    expectEarlyFailure(runDeploy(['--stage', 'prod', ...REQUIRED, '--param=workerImage=x:latest'], ALL), /do not pass workerImage/);
    expectEarlyFailure(runDeploy(['--stage', 'prod', ...REQUIRED, '--force'], ALL), /unknown argument "--force"/);
    expectEarlyFailure(runDeploy(['--stage', 'prod', ...REQUIRED, '--region', 'mars'], ALL), /"mars" is not an AWS region/);
    expectEarlyFailure(runDeploy(['--stage', ...REQUIRED], ALL), /--stage needs a value/);
  });

  it('stops when docker is missing', () => {
    expectEarlyFailure(runDeploy(['--stage', 'prod', ...REQUIRED], ['aws', 'git', 'serverless']), /docker not found on PATH/);
  });

  it('stops when docker has no buildx', () => {
    expectEarlyFailure(runDeploy(['--stage', 'prod', ...REQUIRED], ['docker-no-buildx', 'aws', 'git', 'serverless']), /docker buildx is not available/);
  });

  it('stops when the aws CLI is missing, or has no credentials', () => {
    expectEarlyFailure(runDeploy(['--stage', 'prod', ...REQUIRED], ['docker', 'git', 'serverless']), /aws CLI not found on PATH/);
    const result = runDeploy(['--stage', 'prod', ...REQUIRED], ['docker', 'aws-no-credentials', 'git', 'serverless']);
    expectEarlyFailure(result, /no AWS credentials: `aws sts get-caller-identity` failed/);
  });
});

describe('npm run deploy -- --dry-run', () => {
  it('prints the repository bootstrap, ECR login, the arm64 buildx push with a content-hash tag, and serverless deploy with that image', () => {
    const result = runDeploy(['--stage', 'prod', ...REQUIRED, '--param=maxTasks=20', '--dry-run'], ALL);
    expect(result.status, result.stderr).toBe(0);
    const tag = expectedTag();
    const image = `${REGISTRY}/switchyard-worker:${tag}`;
    const printed = result.stdout.split('\n').filter((l) => l.startsWith('+ ')).map((l) => l.slice(2));
    expect(printed).toEqual([
      'aws ecr create-repository --repository-name switchyard-worker --image-tag-mutability IMMUTABLE --image-scanning-configuration scanOnPush=true --region us-east-1',
      `aws ecr get-login-password --region us-east-1 | docker login --username AWS --password-stdin ${REGISTRY}`,
      `docker buildx build --platform linux/arm64 --provenance=false --label org.opencontainers.image.revision=0123456789ab --tag ${image} --push .`,
      `serverless deploy --stage prod --region us-east-1 --param=vpcId=vpc-0123456789abcdef0 --param=privateSubnetIds=subnet-0123456789abcdef0,subnet-0fedcba9876543210 --param=maxTasks=20 --param=workerRepository=switchyard-worker --param=workerImage=${image}`,
    ]);
    expect(result.stdout).toContain('dry run: nothing was changed');
    // Only read-only look-ups ran.
    expect(result.calls).toEqual([
      'docker buildx version',
      'aws sts get-caller-identity --query Account --output text',
      'aws ecr describe-repositories --repository-names switchyard-worker --region us-east-1',
      `aws ecr describe-images --repository-name switchyard-worker --image-ids imageTag=${tag} --region us-east-1`,
    ]);
  });

  it('skips the bootstrap when the repository exists, and the build when this content is already pushed (a tag is never pushed twice)', () => {
    const existing = runDeploy(['--stage', 'prod', ...REQUIRED, '--dry-run'], ['docker', 'aws-repo-exists', 'git', 'serverless']);
    expect(existing.status, existing.stderr).toBe(0);
    expect(existing.stdout).not.toContain('create-repository');
    expect(existing.stdout).toContain('docker buildx build');

    const pushed = runDeploy(['--stage', 'prod', ...REQUIRED, '--dry-run', '--region', 'eu-west-1', '--param=workerRepository=team/worker'], ['docker', 'aws-image-exists', 'git', 'serverless']);
    expect(pushed.status, pushed.stderr).toBe(0);
    expect(pushed.stdout).not.toMatch(/docker login|buildx build/);
    expect(pushed.stdout).toContain(`team/worker:${expectedTag()} is already in ECR`);
    expect(pushed.stdout).toContain(`+ serverless deploy --stage prod --region eu-west-1 --param=vpcId=vpc-0123456789abcdef0 --param=privateSubnetIds=subnet-0123456789abcdef0,subnet-0fedcba9876543210 --param=workerRepository=team/worker --param=workerImage=${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/team/worker:${expectedTag()}`);
  });

  it('changes the tag when a build input changes, and only then', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sy-hash-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'Dockerfile'), 'FROM x');
    writeFileSync(join(dir, 'README.md'), 'a');
    const before = contentHash(dir, ['Dockerfile']);
    writeFileSync(join(dir, 'README.md'), 'b');
    expect(contentHash(dir, ['Dockerfile'])).toBe(before);
    writeFileSync(join(dir, 'Dockerfile'), 'FROM y');
    expect(contentHash(dir, ['Dockerfile'])).not.toBe(before);
  });

  it('hashes every path the Dockerfile copies from the build context', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const sources = dockerfile
      .split('\n')
      .filter((line) => /^COPY\s/.test(line) && !/--from=|<</.test(line))
      .flatMap((line) => line.trim().split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources) {
      const path = source.replace(/\/$/, '');
      expect(BUILD_INPUTS.some((input) => path === input || path.startsWith(`${input}/`)), source).toBe(true);
    }
  });
});

describe('npm run deploy (fakes for docker, aws and serverless)', () => {
  it('logs in with the ECR password on stdin, builds and pushes, then deploys the pushed image', () => {
    const result = runDeploy(['--stage', 'prod', ...REQUIRED], ['docker', 'aws-repo-exists', 'git', 'serverless']);
    expect(result.status, result.stderr).toBe(0);
    const image = `${REGISTRY}/switchyard-worker:${expectedTag()}`;
    const changes = result.calls.filter((c) => !/describe-|get-caller-identity|buildx version|get-login-password/.test(c));
    expect(changes).toEqual([
      `docker login --username AWS --password-stdin ${REGISTRY} stdin=ecr-password`,
      `docker buildx build --platform linux/arm64 --provenance=false --label org.opencontainers.image.revision=0123456789ab --tag ${image} --push .`,
      `serverless deploy --stage prod --region us-east-1 --param=vpcId=vpc-0123456789abcdef0 --param=privateSubnetIds=subnet-0123456789abcdef0,subnet-0fedcba9876543210 --param=workerRepository=switchyard-worker --param=workerImage=${image}`,
    ]);
    expect(result.stdout).toContain(`npx serverless invoke -f keys --stage prod --data '{"action":"create","tenant":"acme","scopes":["runs:read","runs:write"]}'`);
  });

  it('--remove runs serverless remove and says what is kept', () => {
    const result = runDeploy(['--stage', 'prod', '--remove'], ['aws', 'serverless']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.calls.filter((c) => c.startsWith('serverless'))).toEqual(['serverless remove --stage prod --region us-east-1']);
    expect(result.stdout).toMatch(/Kept .*snapshot.*secret.*ECR repository/);
  });
});

describe('README "Deploy to AWS"', () => {
  it('shows only commands that `npm run deploy` runs or prints (its dry run and next steps) or that these tests run', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Deploy to AWS'), readme.indexOf('\n## ', readme.indexOf('## Deploy to AWS') + 5));
    expect(section.length).toBeGreaterThan(1000);
    const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
    // Continuation lines joined, comments dropped.
    const commands = blocks
      .flatMap((b) => b.replace(/\\\n\s*/g, '').split('\n'))
      .map((l) => l.replace(/\s+#.*$/, '').trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(commands.length).toBeGreaterThan(5);

    const dry = runDeploy(['--stage', 'prod', ...REQUIRED, '--dry-run'], ALL);
    const removal = runDeploy(['--stage', 'prod', '--remove', '--dry-run'], ['aws', 'serverless']);
    const printed = [...dry.stdout.split('\n'), ...removal.stdout.split('\n')].map((l) => l.replace(/^\+ |^\s+/, '').trim());
    const ran = [
      `npm run deploy -- --stage prod ${REQUIRED.join(' ')} --dry-run`,
      `npm run deploy -- --stage prod ${REQUIRED.join(' ')}`,
      'npm run deploy -- --stage prod --remove',
      'npm run package',
      'cfn-lint -t .serverless/cloudformation-template-update-stack.json -i W3005',
    ];
    const printedServerless = printed.filter((l) => l.startsWith('serverless ')).map((l) => `npx ${l.replace(/ --region us-east-1/, '')}`);
    for (const command of commands) {
      const known = ran.includes(command) || printed.includes(command) || printedServerless.includes(command);
      expect(known, `README command not exercised: ${command}`).toBe(true);
    }
  });
});
