import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileGraph } from '../src/engine/graph.js';
import { ValidationError } from '../src/errors.js';
import { runInMemory } from '../src/executor/memory-executor.js';
import type { LoadedBlueprint } from '../src/blueprint/load.js';
import type { RunView } from '../src/types/run-view.js';
import { isTerminalRunStatus } from '../src/types/statuses.js';
import { FUZZ_CHILD, blueprintArb } from './support/fuzz-blueprints.js';
import { startHarness, type Harness } from './support/harness.js';

/**
 * Generated blueprints, valid and invalid (test/support/fuzz-blueprints.ts), through the validator and
 * both executors: validation either accepts or throws a ValidationError listing issues (nothing else),
 * every accepted one runs to a terminal state in memory, and a share of them also runs distributed and
 * ends exactly as in memory. No unhandled rejection anywhere.
 *
 * Seeded and replayable: FUZZ_SEED (and FUZZ_PATH from a failure's report) replay a case; FUZZ_RUNS sets
 * the count (default 300 in `npm test`, 5,000 in `npm run test:chaos`), FUZZ_DISTRIBUTED the distributed
 * ones (default 30 / 300).
 */
const CHAOS = process.env.SWITCHYARD_CHAOS === '1';
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.FUZZ_RUNS ?? (CHAOS ? 5_000 : 300));
const DISTRIBUTED = Number(process.env.FUZZ_DISTRIBUTED ?? (CHAOS ? 300 : 30));
const replay = { seed: SEED, ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}) };

let h: Harness;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  h = await startHarness({ workers: 2, concurrency: 16, blueprints: [FUZZ_CHILD] });
  console.log(`fuzz-blueprints: seed ${SEED}, ${RUNS} blueprints, ${DISTRIBUTED} distributed (replay: FUZZ_SEED=${SEED})`);
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await h?.close();
});

const statuses = (v: RunView) => Object.fromEntries(Object.entries(v.nodes).map(([id, n]) => [id, n.status]));
let counter = 0;

describe(`blueprint fuzz (seed ${SEED})`, () => {
  it(`${RUNS} generated blueprints: the validator only ever throws ValidationError; valid ones run in memory (and ${DISTRIBUTED} distributed) alike`, { timeout: 900_000 }, async () => {
    const tally = { valid: 0, invalid: 0, distributed: 0 };
    await fc.assert(
      fc.asyncProperty(blueprintArb, fc.integer({ min: 0, max: 10 }), fc.string({ maxLength: 20 }), async (json, x, name) => {
        const id = `fz${++counter}`;
        let loaded: LoadedBlueprint;
        try {
          // Most get a fresh id so they can be registered side by side; some keep their own (or none).
          const withId = json && typeof json === 'object' && !Array.isArray(json) && !('id' in json) && counter % 7 !== 0 ? { ...json, id } : json;
          loaded = h.registry.add(withId, `<fuzz ${counter}>`);
        } catch (err) {
          expect(err, 'the validator threw something other than a ValidationError').toBeInstanceOf(ValidationError);
          const issues = (err as ValidationError).issues;
          expect(issues.length).toBeGreaterThan(0);
          for (const issue of issues) {
            expect(typeof issue.path).toBe('string');
            expect(issue.path.startsWith('$')).toBe(true);
            expect(typeof issue.message).toBe('string');
            expect(issue.message.length).toBeGreaterThan(0);
          }
          tally.invalid++;
          return;
        }
        tally.valid++;
        const input = { x, name };
        const graph = compileGraph(loaded, h.kinds);
        const expected = await runInMemory(graph, { kinds: h.kinds, blueprints: h.registry, input });
        expect(isTerminalRunStatus(expected.status)).toBe(true);
        if (tally.distributed < DISTRIBUTED) {
          tally.distributed++;
          const actual = await (await h.client.start(loaded.blueprint.id, input)).result({ timeoutMs: 30_000 });
          expect(actual.status).toBe(expected.status);
          expect(statuses(actual)).toEqual(statuses(expected));
          expect(actual.context).toEqual(expected.context);
          expect(actual.outputs).toEqual(expected.outputs);
        }
        expect(unhandled).toEqual([]);
      }),
      { numRuns: RUNS, ...replay },
    );
    console.log(`fuzz-blueprints: ${tally.valid} valid (${tally.distributed} distributed), ${tally.invalid} invalid`);
    expect(unhandled).toEqual([]);
    // Both kinds of case were exercised.
    expect(tally.valid).toBeGreaterThan(RUNS / 5);
    expect(tally.invalid).toBeGreaterThan(RUNS / 5);
  });
});
