import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlueprintRegistry } from '../../src/blueprint/load.js';
import { createNodeKinds } from '../../src/nodes/index.js';
import type { RunView } from '../../src/types/run-view.js';
import { startHarness, type Harness } from '../support/harness.js';
import { requireSeeds, SEED_INPUTS, WORKFLOWS_DIR } from '../support/seeds.js';

/** The four agent use cases, ours and the seed's, distributed over 2 workers with the offline provider. */
describe('agent use cases (offline provider, 2 workers)', () => {
  let h: Harness;
  let registry: BlueprintRegistry;
  beforeAll(async () => {
    registry = await BlueprintRegistry.load([WORKFLOWS_DIR, requireSeeds()], createNodeKinds());
    h = await startHarness({ blueprints: registry, workers: 2, concurrency: 16 });
  });
  afterAll(() => h.close());

  const run = async (id: string, input: Record<string, unknown>): Promise<RunView> =>
    (await h.client.start(id, input)).result({ timeoutMs: 60_000 });
  const sample = (id: string) => (registry.get(id)!.blueprint.metadata as { sampleInput: Record<string, unknown> }).sampleInput;

  it('seed 100 (blog post) completes', async () => {
    const view = await run('100', SEED_INPUTS['100']);
    expect(view.status).toBe('completed');
    expect(String(view.context.final_output)).toMatch(/--- TITLES ---[\s\S]+--- DRAFT ---/);
    expect(view.nodes.generate_outline!.meta).toMatchObject({ provider: 'offline', model: 'offline-rules-1' });
    expect(view.nodes.generate_outline!.meta!.prompt).toBe(`Generate a detailed, multi-point blog post outline for the topic: "${SEED_INPUTS['100'].topic}".`);
    expect(view.usage!.promptTokens).toBeGreaterThan(0);
  });

  it('seed 200 (job application) takes the interview branch through a sub-workflow; the join completes', async () => {
    const view = await run('200', SEED_INPUTS['200']);
    expect(view.status).toBe('completed');
    expect(view.nodes.send_interview_email).toMatchObject({ status: 'done' });
    expect(view.nodes.send_interview_email!.childRunId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(view.nodes.send_rejection_email!.status).toBe('skipped');
    expect(String(view.context.final_output)).toContain('Final email sent to Ada Lovelace');
    expect(String(view.context.final_output)).toContain('inviting Ada Lovelace to an interview');
    const child = await h.client.get(view.nodes.send_interview_email!.childRunId!);
    expect(child).toMatchObject({ blueprintId: '201', status: 'completed', parent: { runId: view.runId, nodeId: 'send_interview_email' } });
  });

  it('seed 200 without SQL skills takes the rejection branch', async () => {
    const view = await run('200', { ...SEED_INPUTS['200'], resume: 'Designer. Figma, Photoshop, TypeScript.' });
    expect(view.status).toBe('completed');
    expect(view.nodes.send_rejection_email!.status).toBe('done');
    expect(view.nodes.send_interview_email!.status).toBe('skipped');
  });

  it('seed 300 (customer review) completes on the positive and the negative path', async () => {
    const positive = await run('300', SEED_INPUTS['300']);
    expect(positive.status).toBe('completed');
    expect(positive.nodes.positive_branch!.status).toBe('done');
    expect(positive.context.final_positive_reply).toBeTypeOf('string');
    const negative = await run('300', { initial_review: 'The app crashes every time I upload a photo. Terrible and broken.' });
    expect(negative.status).toBe('completed');
    expect(negative.nodes.negative_branch!.status).toBe('done');
    expect(negative.context).toHaveProperty('generated_ticket');
    expect(negative.nodes.send_to_ticketing_system!.status).toBe('done');
  });

  it('seed 400 (content moderation) puts the approve log and final_output in the context', async () => {
    const view = await run('400', SEED_INPUTS['400']);
    expect(view.status).toBe('completed');
    expect(view.nodes.approve_post_branch!.status).toBe('done');
    expect(String(view.context.final_output)).toContain('CONTENT MODERATION COMPLETE');
  });

  it.each([
    ['a post with contact details is redacted', 'mail me at jo@example.com', 'redact_post_branch', /\[REDACTED\]/],
    ['spam is deleted', 'BUY NOW!!! 90% discount at http://cheap-pills.example', 'delete_spam_branch', /./],
  ])('seed 400: %s', async (_name, userPost, branch, result) => {
    const view = await run('400', { userId: 'u1', userPost });
    expect(view.status).toBe('completed');
    expect(view.nodes[branch]!.status).toBe('done');
    expect(String(view.context.moderation_result)).toMatch(result);
    expect(view.context.final_output).toBeTypeOf('string');
  });

  it.each(['blog-post', 'job-application', 'customer-review', 'content-moderation', 'essay-writer'])('our %s use case completes with its sample input', async (id) => {
    const view = await run(id, sample(id));
    expect(view.status).toBe('completed');
    expect(view.context.final_output).toBeTypeOf('string');
    expect(Object.values(view.nodes).some((n) => n.meta?.provider === 'offline')).toBe(true);
  });

  it('every example in workflows/examples completes with its sample input (lambda needs AWS: validated only)', async () => {
    const examples = registry.ids().filter((id) => registry.get(id)!.file.includes('/examples/') && id !== 'lambda');
    expect(examples.length).toBeGreaterThanOrEqual(6);
    for (const id of examples) {
      const input = (registry.get(id)!.blueprint.metadata as { sampleInput?: Record<string, unknown> } | undefined)?.sampleInput ?? {};
      const view = await run(id, input);
      expect([id, view.status]).toEqual([id, 'completed']);
    }
  });

  it('50 concurrent runs of each use case complete, on both workers', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['100', SEED_INPUTS['100']], ['200', SEED_INPUTS['200']], ['300', SEED_INPUTS['300']], ['400', SEED_INPUTS['400']],
      ['blog-post', sample('blog-post')], ['job-application', sample('job-application')],
      ['customer-review', sample('customer-review')], ['content-moderation', sample('content-moderation')],
    ];
    for (const [id, input] of cases) {
      const handles = await Promise.all(Array.from({ length: 50 }, () => h.client.start(id, input)));
      const views = await Promise.all(handles.map((r) => r.result({ timeoutMs: 120_000 })));
      expect(views.filter((v) => v.status !== 'completed').map((v) => `${id}: ${v.status} ${v.error?.message ?? ''}`)).toEqual([]);
      // Same input, same offline answers: every run of a use case ends with the same result.
      expect(new Set(views.map((v) => JSON.stringify(v.context))).size).toBe(1);
      expect(new Set(views.flatMap((v) => Object.values(v.nodes).map((n) => n.worker).filter(Boolean)))).toEqual(new Set(['w1', 'w2']));
    }
  });
});
