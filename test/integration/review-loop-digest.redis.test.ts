import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { compileGraph } from '../../src/engine/graph.js';
import { MemorySignals, runInMemory } from '../../src/executor/memory-executor.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import { waitForRunEvents } from '../../src/store/run-events.js';
import type { NodeSignal } from '../../src/types/node-kind.js';
import type { RunView, WaitingNode } from '../../src/types/run-view.js';
import { startHarness, type Harness } from '../support/harness.js';
import { WORKFLOWS_DIR } from '../support/seeds.js';

/**
 * The use cases of issue 13, with their sample inputs and the offline provider, on the distributed engine
 * (2 workers) and in memory (runInMemory): the same results on both. moderation-with-review waits for a
 * moderator before a ban (approve, reject, and a timeout: a copy of the blueprint with a 50 ms timeout);
 * essay-writer loops its critic until the score is 8 or more; document-digest maps a summariser over the
 * sections.
 */
interface Started {
  result(): Promise<RunView>;
  signal(nodeId: string, signal: NodeSignal): Promise<unknown>;
  /** Resolves once the node waits, with what the run view lists of it. */
  waiting(nodeId: string): Promise<WaitingNode | undefined>;
}

let h: Harness;
let registry: BlueprintRegistry;
/** A connection of its own for blocking reads of run events. */
let reader: Redis;
const memorySignals = new MemorySignals();
let seq = 0;

beforeAll(async () => {
  registry = await BlueprintRegistry.load([WORKFLOWS_DIR], createNodeKinds());
  const copy = (id: string, change: (bp: { nodes: Array<{ id: string; params: Record<string, unknown> }> }) => void) => {
    const bp = structuredClone(registry.get(id)!.blueprint) as unknown as { nodes: Array<{ id: string; params: Record<string, unknown> }> };
    change(bp);
    registry.add({ ...bp, id: `${id}-test` });
  };
  // Test copies: a review that times out after 50 ms, an essay loop that may run once only.
  copy('moderation-with-review', (bp) => (bp.nodes.find((n) => n.id === 'review')!.params.timeout = 50));
  copy('essay-writer', (bp) => (bp.nodes.find((n) => n.id === 'critique')!.params.maxIterations = 1));
  h = await startHarness({ blueprints: registry, workers: 2, concurrency: 8 });
  reader = h.redis.duplicate();
});
afterAll(async () => {
  reader.disconnect();
  await h.close();
});

const sample = (id: string) => (registry.get(id)!.blueprint.metadata as { sampleInput: Record<string, unknown> }).sampleInput;

/** Blocks on the run's event stream (XREAD BLOCK) until the node waits: no polling, no sleeps. */
async function waitingEvent(runId: string, nodeId: string): Promise<void> {
  const stream = h.client.store.keys.runKeys(runId).events;
  let after: string | undefined;
  for (;;) {
    const events = await waitForRunEvents(reader, stream, after, 10_000);
    for (const e of events) if (e.type === 'node.waiting' && e.node === nodeId) return;
    after = events.at(-1)?.id ?? after;
  }
}

const runners: Record<string, (id: string, input: Record<string, unknown>) => Promise<Started>> = {
  distributed: async (id, input) => {
    const handle = await h.client.start(id, input);
    return {
      result: () => handle.result({ timeoutMs: 60_000 }),
      signal: (nodeId, signal) => handle.signal(nodeId, signal),
      async waiting(nodeId) {
        await waitingEvent(handle.runId, nodeId);
        return (await handle.get())?.waiting?.find((w) => w.nodeId === nodeId);
      },
    };
  },
  memory: async (id, input) => {
    const runId = `mem-${++seq}`;
    const done = runInMemory(compileGraph(registry.get(id)!, registry.kinds), { kinds: registry.kinds, blueprints: registry, input, runId, signals: memorySignals });
    return {
      result: () => done,
      signal: async (nodeId, signal) => memorySignals.signal(runId, nodeId, signal),
      waiting: async (nodeId) => (await memorySignals.whenParked(runId, nodeId)).waiting,
    };
  },
};

const statuses = (view: RunView, ids: string[]) => Object.fromEntries(ids.map((id) => [id, view.nodes[id]?.status]));
const BRANCHES = ['review', 'ban', 'keep_post', 'escalate', 'approve', 'redact', 'delete_spam'];

describe.each(Object.keys(runners))('issue 13 use cases (%s)', (name) => {
  const start = (id: string, input: Record<string, unknown>) => runners[name]!(id, input);

  it('moderation-with-review: the ban waits for a moderator; "approve" bans through the sub-workflow', async () => {
    const run = await start('moderation-with-review', sample('moderation-with-review'));
    const waiting = await run.waiting('review');
    expect(waiting).toMatchObject({ nodeId: 'review', prompt: 'Ban user u-2077 for: severe hate speech?', actions: ['approve', 'reject', 'escalate'] });
    // 24 h from when the node ran (its `since` is stamped a moment after the timeout is computed).
    const DAY = 24 * 3600 * 1000;
    expect(waiting!.timeoutAt! - waiting!.since).toBeGreaterThan(DAY - 60_000);
    expect(waiting!.timeoutAt! - waiting!.since).toBeLessThanOrEqual(DAY);
    await run.signal('review', { action: 'approve', payload: { moderator: 'mod-7' } });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(statuses(view, BRANCHES)).toEqual({ review: 'done', ban: 'done', keep_post: 'skipped', escalate: 'skipped', approve: 'skipped', redact: 'skipped', delete_spam: 'skipped' });
    expect(view.outputs.review).toEqual({ moderator: 'mod-7' });
    expect(String(view.context.moderation_result)).toMatch(/^User banned\.\nUPDATE users SET status = 'suspended' WHERE id = 'u-2077';\n\[offline\] /);
    expect(String(view.context.final_output)).toMatch(/^MODERATION LOG\nuser: u-2077\naction: action_ban\n\nUser banned\./);
  });

  it('moderation-with-review: "reject" approves the post instead', async () => {
    const run = await start('moderation-with-review', sample('moderation-with-review'));
    await run.waiting('review');
    await run.signal('review', { action: 'reject' });
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(statuses(view, BRANCHES)).toEqual({ review: 'done', ban: 'skipped', keep_post: 'done', escalate: 'skipped', approve: 'skipped', redact: 'skipped', delete_spam: 'skipped' });
    expect(view.context.moderation_result).toBe('Approved post by u-2077: a moderator rejected the ban.');
    expect(view.context.final_output).toBe('MODERATION LOG\nuser: u-2077\naction: action_ban\n\nApproved post by u-2077: a moderator rejected the ban.');
  });

  it('moderation-with-review: with no answer before the timeout (50 ms in a test copy) it escalates', async () => {
    const run = await start('moderation-with-review-test', sample('moderation-with-review'));
    const view = await run.result();
    expect(view.status).toBe('completed');
    expect(statuses(view, BRANCHES)).toEqual({ review: 'done', ban: 'skipped', keep_post: 'skipped', escalate: 'done', approve: 'skipped', redact: 'skipped', delete_spam: 'skipped' });
    expect(view.outputs.review).toBeUndefined();
    expect(view.context.moderation_result).toBe(
      'Escalated: no moderator answered within 24 h whether to ban u-2077 for severe hate speech; the case goes to the senior moderators.',
    );
  });

  it('moderation-with-review: a post that is not banned never waits', async () => {
    const view = await (await start('moderation-with-review', sample('content-moderation'))).result();
    expect(view.status).toBe('completed');
    expect(statuses(view, ['review', 'redact'])).toEqual({ review: 'skipped', redact: 'done' });
    expect(String(view.context.moderation_result)).toContain('[REDACTED]');
  });

  it('essay-writer: the critic scores 6, the revision 8: the loop ends "done" after 2 iterations', async () => {
    const view = await (await start('essay-writer', sample('essay-writer'))).result();
    expect(view.status).toBe('completed');
    expect(statuses(view, ['draft', 'critique', 'publish', 'best_effort'])).toEqual({ draft: 'done', critique: 'done', publish: 'done', best_effort: 'skipped' });
    const critique = view.outputs.critique as { iterations: number; last: Record<string, unknown> };
    expect(critique.iterations).toBe(2);
    expect(critique.last).toMatchObject({ verdict: 'accept', score: 8 });
    expect(view.context.score).toBe(8);
    const essay = String(view.context.essay);
    expect(essay.split('\n')).toEqual([
      view.outputs.draft,
      '[offline] Revision 1: Revise the essay below so that it scores higher than the 6 out of 10 the critic gave it: make it clearer, better structured and better supported.',
    ]);
    expect(view.context.final_output).toBe(`${essay}\n\n(the critic's score: 8/10)`);
    if (name === 'distributed') {
      const first = await h.client.get(view.nodes.critique!.children![0]!);
      expect(first).toMatchObject({ blueprintId: 'essay-writer-round', status: 'completed', context: { score: 6, verdict: 'revise' } });
      expect(first!.nodes.accept!.status).toBe('skipped');
    }
  });

  it('essay-writer: with one iteration allowed (a test copy) the loop ends "exhausted" with the revised essay', async () => {
    const view = await (await start('essay-writer-test', sample('essay-writer'))).result();
    expect(view.status).toBe('completed');
    expect(statuses(view, ['publish', 'best_effort'])).toEqual({ publish: 'skipped', best_effort: 'done' });
    expect((view.outputs.critique as { iterations: number }).iterations).toBe(1);
    expect(view.context.score).toBe(6);
    expect(String(view.context.final_output)).toMatch(/\[offline\] Revision 1: [^\n]+\n\n\(best effort after 3 rounds; the critic's last score: 6\/10\)$/);
  });

  it('document-digest: one summary per section, in section order, joined into the digest', async () => {
    const input = sample('document-digest') as { title: string; sections: string[] };
    const view = await (await start('document-digest', input)).result();
    expect(view.status).toBe('completed');
    const expected = input.sections.map((s) => `[offline] ${/^.*?[.!?](?=\s|$)/.exec(s)![0]}`);
    expect(expected[0]).toBe('[offline] Revenue grew 12% over the quarter, driven by the new subscription tier.');
    expect(view.outputs.summarise_sections).toEqual(expected);
    expect(view.context.final_output).toBe(`DIGEST: Quarterly operations report\n\n${JSON.stringify(expected)}`);
  });
});
