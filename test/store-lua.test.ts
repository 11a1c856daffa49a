import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandIncludes, loadLuaScripts, LuaIncludeError, renderScriptsModule } from '../src/store/lua/loader.js';
import { LUA_SCRIPTS } from '../src/store/lua/scripts.generated.js';

/** The Lua loader (includes) and the generated module the store imports. */
const LUA_DIR = join(import.meta.dirname, '..', 'src', 'store', 'lua');

const from = (files: Record<string, string>) => (name: string) => files[name];

describe('expandIncludes', () => {
  it('inlines each include once, at its first mention, includes of includes first', () => {
    const text = expandIncludes('main-1.lua', '--- @include "b"\n--- @include "a"\nreturn b()', from({
      a: 'local function a() return 1 end\n',
      b: '--- @include "a"\nlocal function b() return a() end\n',
    }));
    expect(text).toBe(['-- [included "b"]', '-- [included "a"]', 'local function a() return 1 end', 'local function b() return a() end', 'return b()'].join('\n'));
    expect(text.match(/local function a/g)).toHaveLength(1);
  });

  it('accepts names with the .lua suffix and leaves other comments alone', () => {
    expect(expandIncludes('m', '-- @include "x" is just a comment\n--- @include "x.lua"', from({ x: 'X' }))).toBe('-- @include "x" is just a comment\n-- [included "x"]\nX');
  });

  it('names a missing include, where it was asked for and the chain that led there', () => {
    const run = () => expandIncludes('main-4.lua', '--- @include "a"', from({ a: 'local x = 1\n--- @include "nope"' }));
    expect(run).toThrow(LuaIncludeError);
    expect(run).toThrow('Lua include "nope" not found (line 2 of a; included via main-4.lua -> a)');
  });

  it('names an include cycle', () => {
    const run = () => expandIncludes('main-4.lua', '--- @include "a"', from({ a: '--- @include "b"', b: '--- @include "a"' }));
    expect(run).toThrow(LuaIncludeError);
    expect(run).toThrow('Lua include cycle: main-4.lua -> a -> b -> a');
  });
});

describe('the run scripts', () => {
  it('scripts.generated.ts is in step with the .lua files (run `npm run lua` after changing them)', () => {
    expect(readFileSync(join(LUA_DIR, 'scripts.generated.ts'), 'utf8')).toBe(renderScriptsModule(loadLuaScripts(LUA_DIR)));
  });

  it('are all generated, four keys each, with the contract header on top and no include left', () => {
    expect(Object.keys(LUA_SCRIPTS).sort()).toEqual(['cancel-run', 'collect-child', 'complete-node', 'fail-node', 'redrive-run', 'release-node', 'retry-node', 'start-fan-out', 'start-node', 'start-run', 'wait-node']);
    for (const [name, { numberOfKeys, lua }] of Object.entries(LUA_SCRIPTS)) {
      expect(numberOfKeys, name).toBe(4);
      expect(lua, name).toMatch(/^--\[\[\n\w+: [\s\S]*?\nKEYS: [\s\S]*?\nARGV: [\s\S]*?\nReturns:[\s\S]*?\nEvents: [\s\S]*?\n\]\]\n/);
      expect(lua, name).not.toMatch(/^--- @include/m);
      // The shared head is defined once, however many includes need it.
      expect(lua.match(/^local stateKey, ctxKey, outKey, eventsKey = /gm), name).toHaveLength(1);
    }
  });
});
