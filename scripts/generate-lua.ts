/**
 * Expands the run scripts (src/store/lua/*.lua, includes inlined) into src/store/lua/scripts.generated.ts,
 * the LLM limit scripts (src/store/lua/limits/*.lua) into src/store/lua/limits/scripts.generated.ts, the
 * blueprint registry's (src/store/lua/blueprints/*.lua) into src/store/lua/blueprints/scripts.generated.ts
 * and worker recovery's (src/store/lua/recovery/*.lua) into src/store/lua/recovery/scripts.generated.ts,
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
import { loadLuaScripts, renderScriptsModule, type LuaScript, type ScriptsModuleNaming } from '../src/store/lua/loader.js';

const root = join(import.meta.dirname, '..');
const { values } = parseArgs({ options: { check: { type: 'boolean' }, lint: { type: 'boolean' } } });

/** Each folder of scripts and the module generated from it: the run scripts, and the LLM limits' own. */
const FOLDERS: Array<{ folder: string; naming?: ScriptsModuleNaming }> = [
  { folder: 'src/store/lua' },
  { folder: 'src/store/lua/limits', naming: { exportName: 'LIMIT_LUA_SCRIPTS', folder: 'src/store/lua/limits', what: 'The fleet-wide LLM limit scripts' } },
  { folder: 'src/store/lua/blueprints', naming: { exportName: 'BLUEPRINT_SCRIPTS', folder: 'src/store/lua/blueprints', what: "The blueprint registry's scripts" } },
  { folder: 'src/store/lua/recovery', naming: { exportName: 'RECOVERY_SCRIPTS', folder: 'src/store/lua/recovery', what: "Worker recovery's scripts" } },
];

const scripts: LuaScript[] = [];
for (const { folder, naming } of FOLDERS) {
  const dir = join(root, folder);
  const target = join(dir, 'scripts.generated.ts');
  const loaded = loadLuaScripts(dir);
  scripts.push(...loaded);
  const text = renderScriptsModule(loaded, naming);
  const current = existsSync(target) ? readFileSync(target, 'utf8') : undefined;
  if (values.check) {
    if (current !== text) {
      console.error(`${folder}/scripts.generated.ts is out of date with the .lua files: run \`npm run lua\``);
      process.exit(1);
    }
  } else if (current !== text) {
    writeFileSync(target, text);
    console.log(`wrote ${target} (${loaded.length} scripts)`);
  }
}

if (values.lint) {
  const out = mkdtempSync(join(tmpdir(), 'switchyard-lua-'));
  // File names differ between the folders (`<name>-<keys>.lua`; the limit scripts have six keys).
  for (const script of scripts) writeFileSync(join(out, script.file), script.lua);
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
