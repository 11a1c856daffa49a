import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The seed example's blueprints, read from ../shared (test data; CI always has it beside the repo). */
export const SEED_DIR = fileURLToPath(new URL('../../../shared/seed-workflows', import.meta.url));
export const WORKFLOWS_DIR = fileURLToPath(new URL('../../workflows', import.meta.url));

export function requireSeeds(): string {
  if (!existsSync(SEED_DIR)) throw new Error(`seed workflows not found at ${SEED_DIR} (expected ../shared beside the repo)`);
  return SEED_DIR;
}

/** The seed's inputs for its four use cases. */
export const SEED_INPUTS: Record<'100' | '200' | '300' | '400', Record<string, unknown>> = {
  '100': { topic: 'Why distributed workflow engines need dead-path elimination' },
  '200': {
    applicantName: 'Ada Lovelace',
    resume: 'Senior engineer. Ten years of TypeScript and Node.js; designed SQL schemas on PostgreSQL; AWS, Docker.',
    coverLetter: 'Dear hiring manager, I am pleased to apply for the senior engineer position. I believe my background is a strong match. Sincerely, Ada Lovelace',
  },
  '300': { initial_review: 'I love the new export feature, it saves me an hour every week. Fantastic work, thank you!' },
  '400': { userId: 'user-77', userPost: 'Just finished my first marathon, feeling proud of everyone who trained with me!' },
};
