import { basename } from 'node:path';
import { BlueprintRegistry } from '../src/blueprint/load.js';
import { ValidationError } from '../src/errors.js';
import type { NodeKindRegistry } from '../src/types/node-kind.js';
import anyJoin from '../workflows/examples/any-join.json' with { type: 'json' };
import conditions from '../workflows/examples/conditions.json' with { type: 'json' };
import greeting from '../workflows/examples/greeting.json' with { type: 'json' };
import lambda from '../workflows/examples/lambda.json' with { type: 'json' };
import loopPolishStep from '../workflows/examples/loop-polish-step.json' with { type: 'json' };
import loopPolish from '../workflows/examples/loop-polish.json' with { type: 'json' };
import mapGreetings from '../workflows/examples/map-greetings.json' with { type: 'json' };
import nestedSubflows from '../workflows/examples/nested-subflows.json' with { type: 'json' };
import resilience from '../workflows/examples/resilience.json' with { type: 'json' };
import subflowWrapper from '../workflows/examples/subflow-wrapper.json' with { type: 'json' };
import triage from '../workflows/examples/triage.json' with { type: 'json' };
import blogPost from '../workflows/use-cases/blog-post.json' with { type: 'json' };
import contentModerationBan from '../workflows/use-cases/content-moderation-ban.json' with { type: 'json' };
import contentModerationRedact from '../workflows/use-cases/content-moderation-redact.json' with { type: 'json' };
import contentModeration from '../workflows/use-cases/content-moderation.json' with { type: 'json' };
import customerReview from '../workflows/use-cases/customer-review.json' with { type: 'json' };
import jobApplicationDecline from '../workflows/use-cases/job-application-decline.json' with { type: 'json' };
import jobApplicationInvite from '../workflows/use-cases/job-application-invite.json' with { type: 'json' };
import jobApplication from '../workflows/use-cases/job-application.json' with { type: 'json' };
import documentDigestSection from '../workflows/use-cases/document-digest-section.json' with { type: 'json' };
import documentDigest from '../workflows/use-cases/document-digest.json' with { type: 'json' };
import essayWriterRound from '../workflows/use-cases/essay-writer-round.json' with { type: 'json' };
import essayWriter from '../workflows/use-cases/essay-writer.json' with { type: 'json' };
import moderationWithReview from '../workflows/use-cases/moderation-with-review.json' with { type: 'json' };

/**
 * The blueprints of `workflows/`, imported statically so esbuild puts them in each function's bundle (the
 * worker image ships the same directory and loads it with `--blueprints workflows`). A test checks that
 * this list matches the directory: add a line here when you add a file there.
 */
export const BUNDLED_BLUEPRINTS: ReadonlyArray<{ file: string; json: object }> = [
  { file: 'workflows/examples/any-join.json', json: anyJoin },
  { file: 'workflows/examples/conditions.json', json: conditions },
  { file: 'workflows/examples/greeting.json', json: greeting },
  { file: 'workflows/examples/lambda.json', json: lambda },
  { file: 'workflows/examples/loop-polish-step.json', json: loopPolishStep },
  { file: 'workflows/examples/loop-polish.json', json: loopPolish },
  { file: 'workflows/examples/map-greetings.json', json: mapGreetings },
  { file: 'workflows/examples/nested-subflows.json', json: nestedSubflows },
  { file: 'workflows/examples/resilience.json', json: resilience },
  { file: 'workflows/examples/subflow-wrapper.json', json: subflowWrapper },
  { file: 'workflows/examples/triage.json', json: triage },
  { file: 'workflows/use-cases/blog-post.json', json: blogPost },
  { file: 'workflows/use-cases/content-moderation-ban.json', json: contentModerationBan },
  { file: 'workflows/use-cases/content-moderation-redact.json', json: contentModerationRedact },
  { file: 'workflows/use-cases/content-moderation.json', json: contentModeration },
  { file: 'workflows/use-cases/customer-review.json', json: customerReview },
  { file: 'workflows/use-cases/job-application-decline.json', json: jobApplicationDecline },
  { file: 'workflows/use-cases/job-application-invite.json', json: jobApplicationInvite },
  { file: 'workflows/use-cases/job-application.json', json: jobApplication },
  { file: 'workflows/use-cases/document-digest-section.json', json: documentDigestSection },
  { file: 'workflows/use-cases/document-digest.json', json: documentDigest },
  { file: 'workflows/use-cases/essay-writer-round.json', json: essayWriterRound },
  { file: 'workflows/use-cases/essay-writer.json', json: essayWriter },
  { file: 'workflows/use-cases/moderation-with-review.json', json: moderationWithReview },
];

/**
 * Registers blueprints as `BlueprintRegistry.load` would from files: id = file name unless the JSON sets
 * one, so the content hashes (and so the versions runs pin) equal the worker's. Subflow targets must be
 * registered first, so blueprints are added in passes until none is left.
 */
export function loadBundledBlueprints(kinds: NodeKindRegistry, entries = BUNDLED_BLUEPRINTS): BlueprintRegistry {
  const registry = new BlueprintRegistry(kinds);
  let pending = [...entries];
  while (pending.length > 0) {
    const failed: typeof pending = [];
    let lastError: unknown;
    for (const entry of pending) {
      try {
        registry.add({ id: basename(entry.file, '.json'), ...entry.json }, entry.file);
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        failed.push(entry);
        lastError = err;
      }
    }
    // No progress in a pass: what is left is invalid on its own, not waiting for a subflow target.
    if (failed.length === pending.length) throw lastError;
    pending = failed;
  }
  return registry;
}
