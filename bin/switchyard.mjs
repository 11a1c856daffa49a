#!/usr/bin/env node
// Runs the CLI from source in a development checkout (tsx is a devDependency, so the code is never
// stale), and from the esbuild bundle in dist/ where tsx is not installed.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
const bundle = new URL('../dist/cli.mjs', import.meta.url);

let main;
if (existsSync(source) && (await canImport('tsx/esm/api'))) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(source.href));
} else if (existsSync(bundle)) {
  ({ main } = await import(bundle.href));
} else {
  console.error('switchyard: no build found; run `npm ci` (or `npm run build`) in the switchyard package');
  process.exit(1);
}
process.exitCode = await main(process.argv.slice(2));

async function canImport(specifier) {
  try {
    await import(specifier);
    return true;
  } catch {
    return false;
  }
}
