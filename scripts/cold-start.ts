/**
 * Cold-start benchmark of the packaged Lambda functions (not a test): extracts each function zip that
 * `npm run package` wrote to .serverless/, then, in a fresh Node process per sample, requires the bundled
 * handler as the Lambda runtime would and reports the median time to load it. With REDIS_URL set, it
 * also times the first answer (GET /blueprints for the HTTP functions, one tick for `backlog`), which
 * includes connecting to Redis and validating the bundled blueprints.
 *
 *   npm run package && npm run bench:cold                  # import only
 *   REDIS_URL=redis://127.0.0.1:6379 npm run bench:cold    # import + first answer
 *   npm run bench:cold -- --samples 30 --no-source-maps
 *
 * The deployed functions run with NODE_OPTIONS=--enable-source-maps (serverless.yml), so that is the
 * default here too. Numbers are from this machine's Node (the Lambda runtime is Node 22 on a fraction of
 * a vCPU at 512 MB), so read them as relative, and as a lower bound.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { inflateRawSync } from 'node:zlib';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGE_DIR = join(ROOT, '.serverless');
const TEMPLATE = join(PACKAGE_DIR, 'cloudformation-template-update-stack.json');

/** The files of a zip archive (stored or deflated entries, no ZIP64: what serverless writes), by path. */
export function readZip(path: string): Map<string, Buffer> {
  const zip = readFileSync(path);
  // The end-of-central-directory record is in the last 22 + 65535 (comment) bytes.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 65535); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${path}: not a zip file`);
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const files = new Map<string, Buffer>();
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`${path}: bad central directory entry`);
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localHeader = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (name.endsWith('/')) continue;
    const dataStart = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
    const data = zip.subarray(dataStart, dataStart + compressedSize);
    if (method === 0) files.set(name, Buffer.from(data));
    else if (method === 8) files.set(name, inflateRawSync(data));
    else throw new Error(`${path}: ${name}: unsupported compression method ${method}`);
  }
  return files;
}

/** Each packaged function: its name, zip, and handler (`file.export`) from the packaged template. */
export function packagedFunctions(): Array<{ name: string; zip: string; handler: string }> {
  const template = JSON.parse(readFileSync(TEMPLATE, 'utf8')) as { Resources: Record<string, { Type: string; Properties: { Code: { S3Key: string }; Handler: string } }> };
  return Object.values(template.Resources)
    .filter((r) => r.Type === 'AWS::Lambda::Function')
    .map((r) => {
      const zipName = String(r.Properties.Code.S3Key).split('/').pop()!;
      return { name: zipName.replace(/\.zip$/, ''), zip: join(PACKAGE_DIR, zipName), handler: String(r.Properties.Handler) };
    });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Runs in the child: load the handler like the runtime does; optionally call it once. */
const CHILD = `
const t0 = performance.now();
const mod = require(process.env.BENCH_FILE);
const loaded = performance.now();
const handler = mod[process.env.BENCH_EXPORT];
if (typeof handler !== 'function') { console.error('no handler ' + process.env.BENCH_EXPORT); process.exit(3); }
const report = (extra) => { process.stdout.write(JSON.stringify({ importMs: loaded - t0, processMs: loaded, ...extra }) + '\\n'); process.exit(0); };
if (!process.env.BENCH_INVOKE) report({});
const event = process.env.BENCH_INVOKE === 'http'
  ? { version: '2.0', routeKey: 'GET /blueprints', rawPath: '/blueprints', rawQueryString: '', headers: { host: 'bench' }, isBase64Encoded: false,
      requestContext: { http: { method: 'GET', path: '/blueprints', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' }, requestId: 'bench', routeKey: 'GET /blueprints', stage: '$default' } }
  : { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} };
const log = process.stdout.write.bind(process.stdout);
process.stdout.write = () => true; // the backlog line is not part of the report
Promise.resolve(handler(event, {})).then((result) => {
  process.stdout.write = log;
  if (result && result.statusCode !== undefined && result.statusCode !== 200) { console.error('first answer ' + result.statusCode + ' ' + result.body); process.exit(4); }
  report({ firstAnswerMs: performance.now() });
}, (err) => { process.stdout.write = log; console.error(err); process.exit(4); });
`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { samples: { type: 'string', default: '15' }, 'no-source-maps': { type: 'boolean', default: false } } });
  const samples = Number(values.samples);
  if (!Number.isInteger(samples) || samples < 1) throw new Error('--samples must be a whole number >= 1');
  if (!existsSync(TEMPLATE)) {
    console.error('no package yet: running `npm run package`');
    execFileSync('npm', ['run', 'package'], { cwd: ROOT, stdio: 'inherit' });
  }
  const redisUrl = process.env.REDIS_URL;
  const work = mkdtempSync(join(tmpdir(), 'sy-cold-'));
  const rows: string[][] = [['function', 'zip KiB', 'bundle KiB', 'import ms (median)', 'process start -> loaded ms', ...(redisUrl ? ['-> first answer ms'] : [])]];
  try {
    for (const fn of packagedFunctions()) {
      const dir = join(work, fn.name);
      let bundleBytes = 0;
      for (const [name, data] of readZip(fn.zip)) {
        mkdirSync(dirname(join(dir, name)), { recursive: true });
        writeFileSync(join(dir, name), data);
        if (name.endsWith('.js')) bundleBytes += data.length;
      }
      const dot = fn.handler.lastIndexOf('.');
      const file = join(dir, `${fn.handler.slice(0, dot)}.js`);
      const results: Array<{ importMs: number; processMs: number; firstAnswerMs?: number }> = [];
      for (let i = 0; i < samples; i++) {
        const child = spawnSync(process.execPath, [...(values['no-source-maps'] ? [] : ['--enable-source-maps']), '-e', CHILD], {
          cwd: dir,
          encoding: 'utf8',
          env: {
            PATH: process.env.PATH,
            // The Lambda runtime provides the AWS SDK v3 (left out of the bundles) on its NODE_PATH.
            NODE_PATH: join(ROOT, 'node_modules'),
            BENCH_FILE: file,
            BENCH_EXPORT: fn.handler.slice(dot + 1),
            ...(redisUrl
              ? { BENCH_INVOKE: fn.name === 'backlog' ? 'backlog' : 'http', REDIS_URL: redisUrl, SWITCHYARD_AUTH: 'off', SWITCHYARD_PREFIX: 'bench', SWITCHYARD_QUEUE: 'bench' }
              : {}),
          },
        });
        if (child.status !== 0) throw new Error(`${fn.name}: sample ${i + 1} exited ${child.status}: ${child.stderr}`);
        results.push(JSON.parse(child.stdout.trim().split('\n').pop()!));
      }
      rows.push([
        fn.name,
        (readFileSync(fn.zip).length / 1024).toFixed(0),
        (bundleBytes / 1024).toFixed(0),
        median(results.map((r) => r.importMs)).toFixed(1),
        median(results.map((r) => r.processMs)).toFixed(1),
        ...(redisUrl ? [median(results.map((r) => r.firstAnswerMs!)).toFixed(1)] : []),
      ]);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  console.log(`Cold start of the packaged functions: ${samples} fresh processes each, Node ${process.version}, source maps ${values['no-source-maps'] ? 'off' : 'on'}\n`);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  rows.forEach((r, i) => {
    console.log(`| ${r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`);
    if (i === 0) console.log(`|${widths.map((w, c) => (c === 0 ? ':' : '-') + '-'.repeat(w) + (c === 0 ? '-' : ':')).join('|')}|`);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
