/**
 * `npm run deploy -- --stage prod --param=vpcId=vpc-... --param=privateSubnetIds=subnet-a,subnet-b`
 *
 * One command from a checkout to a running stack: builds the worker image for linux/arm64 with
 * `docker buildx`, tags it with the content hash of its build inputs (a tag is never pushed twice: the
 * same inputs reuse the pushed image, other inputs get another tag; the repository is also created
 * tag-immutable), creates the ECR repository the first time (a one-time bootstrap outside the stack:
 * the stack's ECS service needs the image before it can start), logs in to ECR, pushes, and runs
 * `serverless deploy` with `--param=workerImage=<the pushed image>`.
 *
 * Everything that can fail early does, before anything is changed, with one line on stderr: a missing
 * or malformed parameter, no docker, no buildx, no aws CLI, no credentials. `--dry-run` runs the same
 * checks and read-only look-ups (account, repository, image), then prints every command that would
 * change something instead of running it. `--remove` tears the stack down (`serverless remove`).
 *
 * Commands are found on PATH (docker, aws; serverless also in node_modules/.bin), so tests put fakes
 * first on PATH.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** What the Dockerfile copies into the image: the content hash (the image tag) covers exactly these. */
export const BUILD_INPUTS = ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'tsconfig.json', 'scripts/build.mjs', 'scripts/generate-lua.ts', 'bin', 'src', 'workflows'];

export const DEFAULT_REPOSITORY = 'switchyard-worker';
const USAGE = 'usage: npm run deploy -- --stage <stage> [--region <region>] --param=vpcId=<vpc-id> --param=privateSubnetIds=<subnet-a,subnet-b> [--param=<name>=<value> ...] [--dry-run] [--remove]';

/** A problem found before anything changed: printed as one line, exit code 2. */
export class DeployError extends Error {}

export interface DeployArgs {
  stage: string;
  region: string;
  /** Stage parameters in the order given (passed on to serverless). */
  params: Map<string, string>;
  dryRun: boolean;
  remove: boolean;
}

/** Parses and checks the command line (no I/O). */
export function parseDeployArgs(argv: readonly string[], env: Record<string, string | undefined>): DeployArgs {
  let stage: string | undefined;
  let region: string | undefined;
  const params = new Map<string, string>();
  let dryRun = false;
  let remove = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '' || (inline === undefined && v.startsWith('--'))) throw new DeployError(`${flag} needs a value. ${USAGE}`);
      return v;
    };
    switch (flag) {
      case '--stage':
        stage = value();
        break;
      case '--region':
        region = value();
        break;
      case '--param': {
        const pair = value();
        const eq = pair.indexOf('=');
        if (eq < 1) throw new DeployError(`--param needs name=value, got "${pair}"`);
        params.set(pair.slice(0, eq), pair.slice(eq + 1));
        break;
      }
      case '--dry-run':
        dryRun = true;
        break;
      case '--remove':
        remove = true;
        break;
      case '--help':
      case '-h':
        throw new DeployError(USAGE);
      default:
        throw new DeployError(`unknown argument "${arg}". ${USAGE}`);
    }
  }
  if (!stage) throw new DeployError(`--stage is required (for example --stage prod). ${USAGE}`);
  if (!/^[a-zA-Z0-9-]+$/.test(stage)) throw new DeployError(`--stage "${stage}" may contain only letters, digits and hyphens`);
  region ??= env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new DeployError(`--region "${region}" is not an AWS region name (like us-east-1)`);
  if (!remove) checkDeployParams(params);
  return { stage, region, params, dryRun, remove };
}

function checkDeployParams(params: Map<string, string>): void {
  const vpcId = params.get('vpcId');
  if (!vpcId) throw new DeployError('missing --param=vpcId=vpc-... (the VPC of the private subnets)');
  if (!/^vpc-[0-9a-f]+$/.test(vpcId)) throw new DeployError(`--param=vpcId="${vpcId}" is not a VPC id (vpc-...)`);
  const subnets = (params.get('privateSubnetIds') ?? '').split(',').filter(Boolean);
  if (subnets.length === 0) throw new DeployError('missing --param=privateSubnetIds=subnet-a,subnet-b (private subnets in two Availability Zones)');
  const bad = subnets.find((s) => !/^subnet-[0-9a-f]+$/.test(s));
  if (bad) throw new DeployError(`--param=privateSubnetIds: "${bad}" is not a subnet id (subnet-...)`);
  if (subnets.length < 2) throw new DeployError('--param=privateSubnetIds needs at least two private subnets in different Availability Zones (Redis Multi-AZ)');
  if (params.get('createVpcEndpoints') === 'true' && !params.get('routeTableIds')) {
    throw new DeployError('--param=createVpcEndpoints=true needs --param=routeTableIds=rtb-a,rtb-b (the private subnets\' route tables, for the S3 gateway endpoint)');
  }
  if (params.has('workerImage')) throw new DeployError('do not pass workerImage: this script builds, pushes and passes the image (use `npx serverless deploy` to deploy an image by hand)');
  const repository = params.get('workerRepository');
  if (repository !== undefined && !/^[a-z0-9]+(?:[._/-][a-z0-9]+)*$/.test(repository)) throw new DeployError(`--param=workerRepository="${repository}" is not an ECR repository name`);
}

/** SHA-256 over the build inputs' paths and contents: equal inputs, equal image. */
export function contentHash(root: string, inputs: readonly string[] = BUILD_INPUTS): string {
  const hash = createHash('sha256');
  const files: string[] = [];
  const walk = (path: string) => {
    const abs = join(root, path);
    if (statSync(abs).isDirectory()) for (const entry of readdirSync(abs).sort()) walk(join(path, entry));
    else files.push(path);
  };
  for (const input of inputs) walk(input);
  for (const file of files.sort()) {
    hash.update(relative(root, join(root, file)).split('\\').join('/')).update('\0');
    hash.update(readFileSync(join(root, file))).update('\0');
  }
  return hash.digest('hex');
}

/** Finds an executable on PATH (what a shell would run), or undefined. */
function which(command: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A command as a user would type it (single-quoted where the shell needs it). */
export function shellLine(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

interface Io {
  out: (line: string) => void;
  env: Record<string, string | undefined>;
}

class Runner {
  constructor(
    private readonly io: Io,
    private readonly dryRun: boolean,
  ) {}

  /** A read-only look-up: always runs (in a dry run too); returns stdout, or undefined when it failed. */
  query(argv: string[]): string | undefined {
    const result = spawnSync(argv[0]!, argv.slice(1), { env: this.io.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return result.status === 0 ? result.stdout.trim() : undefined;
  }

  /** A command that changes something: printed, and run unless this is a dry run. */
  change(argv: string[], options: { display?: string; input?: string; command?: string } = {}): void {
    this.io.out(`+ ${options.display ?? shellLine(argv)}`);
    if (this.dryRun) return;
    const spawnOptions: SpawnSyncOptions = { env: this.io.env, stdio: [options.input === undefined ? 'inherit' : 'pipe', 'inherit', 'inherit'] };
    if (options.input !== undefined) spawnOptions.input = options.input;
    const result = spawnSync(options.command ?? argv[0]!, argv.slice(1), spawnOptions);
    if (result.status !== 0) {
      const failure = new Error(`${argv.slice(0, 3).join(' ')} failed (exit ${result.status ?? result.signal ?? result.error?.message})`);
      (failure as Error & { exitCode?: number }).exitCode = result.status ?? 1;
      throw failure;
    }
  }
}

/** Runs a deploy (or a dry run, or a removal); returns the process exit code. */
export function deploy(argv: readonly string[], io: Io): number {
  let args: DeployArgs;
  try {
    args = parseDeployArgs(argv, io.env);
  } catch (err) {
    if (err instanceof DeployError) return fail(err.message);
    throw err;
  }
  const path = io.env.PATH;
  // `npm run` puts node_modules/.bin on PATH; run directly, the project's own serverless (osls) is used.
  const serverless = which('serverless', path) ?? which('serverless', join(ROOT, 'node_modules', '.bin'));
  if (!serverless) return fail('serverless not found: run `npm ci` in the project first');
  const run = new Runner(io, args.dryRun);
  const serverlessArgs = (command: string, extra: string[]) => ['serverless', command, '--stage', args.stage, '--region', args.region, ...extra];

  try {
    if (args.remove) {
      if (!which('aws', path)) return fail('aws CLI not found on PATH: install AWS CLI v2 (https://docs.aws.amazon.com/cli/)');
      if (run.query(['aws', 'sts', 'get-caller-identity', '--query', 'Account', '--output', 'text']) === undefined) return fail(NO_CREDENTIALS);
      run.change(serverlessArgs('remove', []), { command: serverless });
      io.out(`deploy: stack ${STACK(args)} removed. Kept (delete by hand when no longer needed): the final Redis snapshot (ElastiCache > Backups), the Redis AUTH secret (Secrets Manager), the ECR repository and its images.`);
      return done(args, io);
    }

    if (!which('docker', path)) return fail('docker not found on PATH: install Docker with the buildx plugin to build the worker image');
    if (run.query(['docker', 'buildx', 'version']) === undefined) return fail('docker buildx is not available: install the Docker buildx plugin (`docker buildx version` must work)');
    if (!which('aws', path)) return fail('aws CLI not found on PATH: install AWS CLI v2 (https://docs.aws.amazon.com/cli/)');
    const account = run.query(['aws', 'sts', 'get-caller-identity', '--query', 'Account', '--output', 'text']);
    if (!account || !/^\d{12}$/.test(account)) return fail(NO_CREDENTIALS);

    const repository = args.params.get('workerRepository') ?? DEFAULT_REPOSITORY;
    const registry = `${account}.dkr.ecr.${args.region}.amazonaws.com`;
    const tag = `c-${contentHash(ROOT).slice(0, 20)}`;
    const image = `${registry}/${repository}:${tag}`;
    const commit = run.query(['git', '-C', ROOT, 'rev-parse', '--short=12', 'HEAD']) ?? 'unknown';
    io.out(`deploy: stage ${args.stage}, region ${args.region}, account ${account}`);
    io.out(`deploy: worker image ${image} (content hash of ${BUILD_INPUTS.join(', ')}; commit ${commit})`);

    const region = ['--region', args.region];
    if (run.query(['aws', 'ecr', 'describe-repositories', '--repository-names', repository, ...region]) === undefined) {
      // One-time bootstrap, outside the stack (the stack's service needs an image before it starts).
      run.change(['aws', 'ecr', 'create-repository', '--repository-name', repository, '--image-tag-mutability', 'IMMUTABLE', '--image-scanning-configuration', 'scanOnPush=true', ...region]);
    }
    if (run.query(['aws', 'ecr', 'describe-images', '--repository-name', repository, '--image-ids', `imageTag=${tag}`, ...region]) !== undefined) {
      io.out(`deploy: ${repository}:${tag} is already in ECR (same build inputs): not rebuilding`);
    } else {
      const password = args.dryRun ? '' : run.query(['aws', 'ecr', 'get-login-password', ...region]);
      if (password === undefined) return fail('aws ecr get-login-password failed: check the credentials\' ECR permissions');
      run.change(['docker', 'login', '--username', 'AWS', '--password-stdin', registry], {
        display: `aws ecr get-login-password --region ${args.region} | docker login --username AWS --password-stdin ${registry}`,
        input: password,
      });
      run.change([
        'docker', 'buildx', 'build', '--platform', 'linux/arm64', '--provenance=false',
        '--label', `org.opencontainers.image.revision=${commit}`, '--tag', image, '--push', ROOT === process.cwd() ? '.' : ROOT,
      ]);
    }
    const params = [...args.params].map(([name, value]) => `--param=${name}=${value}`);
    if (!args.params.has('workerRepository')) params.push(`--param=workerRepository=${repository}`);
    params.push(`--param=workerImage=${image}`);
    run.change(serverlessArgs('deploy', params), { command: serverless });
    return done(args, io);
  } catch (err) {
    const exitCode = (err as { exitCode?: number }).exitCode;
    if (exitCode === undefined) throw err;
    io.out(`deploy: ${(err as Error).message}`);
    return exitCode;
  }
}

const NO_CREDENTIALS = 'no AWS credentials: `aws sts get-caller-identity` failed (set AWS_PROFILE, or run `aws configure` / `aws sso login`)';
const STACK = (args: DeployArgs) => `switchyard-${args.stage}`;

function fail(message: string): number {
  process.stderr.write(`deploy: ${message}\n`);
  return 2;
}

/** What to do next, with this stage's names (README "Deploy to AWS" shows the same commands). */
function done(args: DeployArgs, io: Io): number {
  if (args.dryRun) io.out('deploy: dry run: nothing was changed');
  if (args.remove) return 0;
  // The region flag only when it is not serverless.yml's default, so the usual commands read as in the README.
  const stage = ['--stage', args.stage, ...(args.region === 'us-east-1' ? [] : ['--region', args.region])];
  io.out('deploy: next steps (the HTTP API URL is the stack output HttpApiUrl, shown by `npx serverless info`):');
  for (const line of [
    `npx serverless info ${stage.join(' ')}`,
    `npx serverless invoke -f keys ${stage.join(' ')} --data '{"action":"create","tenant":"acme","scopes":["runs:read","runs:write"]}'`,
    `curl -s -X POST "$URL/runs" -H "authorization: Bearer $KEY" -H 'content-type: application/json' -d '{"blueprintId":"greeting","input":{"name":"AWS"}}'`,
    `curl -s "$URL/runs/$RUN_ID?wait=20" -H "authorization: Bearer $KEY"`,
    `npx serverless logs -f backlog ${stage.join(' ')} --tail`,
    // A blueprint change needs no deploy: push it with a key that has blueprints:write.
    `npx serverless invoke -f keys ${stage.join(' ')} --data '{"action":"create","tenant":"ops","scopes":["blueprints:write"]}'`,
    'SWITCHYARD_API_URL=$URL SWITCHYARD_API_KEY=$OPS_KEY npx switchyard blueprints push workflows/',
  ]) {
    io.out(`  ${line}`);
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = deploy(process.argv.slice(2), { out: (line) => console.log(line), env: process.env });
}
