/**
 * Expands the run scripts (src/store/lua/*.lua, includes inlined) into src/store/lua/scripts.generated.ts,
 * which the store imports, so every way the code runs (tsx, vitest, esbuild bundles, the Lambda zips, the
 * worker image) has the Lua without reading files at run time.
 *
 *   tsx scripts/generate-lua.ts            rewrite the generated file (only when it changed)
 *   tsx scripts/generate-lua.ts --check    exit 1 when it is out of date (and write nothing)
 *   tsx scripts/generate-lua.ts --lint     run luacheck (.luacheckrc) on the expanded scripts
 *
 * The scripts are linted expanded, as Redis runs them: an include alone uses locals another include
 * defines, so linting the files one by one reports only noise. A failing lint keeps the expanded files
 * (each include is marked `-- [included "name"]` in them) and says where.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadLuaScripts, renderScriptsModule } from '../src/store/lua/loader.js';

const root = join(import.meta.dirname, '..');
const dir = join(root, 'src', 'store', 'lua');
const target = join(dir, 'scripts.generated.ts');
const { values } = parseArgs({ options: { check: { type: 'boolean' }, lint: { type: 'boolean' } } });

// The run scripts (four keys each, the run's), and the blueprint registry's (src/store/lua/blueprints).
const blueprintsDir = join(dir, 'blueprints');
const modules = [
  { target, scripts: loadLuaScripts(dir), module: undefined },
  {
    target: join(blueprintsDir, 'scripts.generated.ts'),
    scripts: loadLuaScripts(blueprintsDir),
    module: { name: 'BLUEPRINT_SCRIPTS', description: 'The blueprint registry\'s scripts by name, as Redis runs them.', from: 'src/store/lua/blueprints/*.lua' },
  },
];
for (const { target: file, scripts, module } of modules) {
  const text = renderScriptsModule(scripts, module);
  const current = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  if (values.check) {
    if (current !== text) {
      console.error(`${file} is out of date with the .lua files: run \`npm run lua\``);
      process.exit(1);
    }
  } else if (current !== text) {
    writeFileSync(file, text);
    console.log(`wrote ${file} (${scripts.length} scripts)`);
  }
}

if (values.lint) {
  const out = mkdtempSync(join(tmpdir(), 'switchyard-lua-'));
  for (const script of modules.flatMap((m) => m.scripts)) writeFileSync(join(out, script.file), script.lua);
  const lint = spawnSync('luacheck', ['--config', join(root, '.luacheckrc'), '--no-color', out], { stdio: 'inherit' });
  if (lint.error) {
    console.error(`luacheck could not run (${lint.error.message}): apt-get install lua-check`);
    process.exit(1);
  }
  if (lint.status !== 0) {
    console.error(`luacheck: the expanded scripts are kept in ${out}`);
    process.exit(lint.status ?? 1);
  }
  rmSync(out, { recursive: true, force: true });
}
