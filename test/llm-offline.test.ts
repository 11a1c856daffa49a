import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OFFLINE_RULES, answerOffline, createOfflineProvider } from '../src/llm/offline.js';
import essayWriterRound from '../workflows/use-cases/essay-writer-round.json' with { type: 'json' };

/**
 * The seed blueprints' prompt templates, copied verbatim from /work/shared/seed-workflows so these tests
 * fail if a rule stops recognising the prompts the seeds really send.
 */
const SEED = {
  generateOutline: 'Generate a detailed, multi-point blog post outline for the topic: "{{topic}}".',
  draftPost: 'Write a full-length, engaging blog post based on the following outline:\n\n{{outline}}',
  suggestTitles:
    'Suggest 5 catchy, SEO-friendly titles for the following blog post. Respond with a simple numbered list.\n\nPost:\n{{draft}}',
  extractSkills:
    'Extract a list of all technical skills from this resume. Format as a simple comma-separated string:\n\n{{resume}}',
  analyzeTone:
    'Analyze the tone of this cover letter. Respond with a single word: "professional", "casual", or "unprofessional".\n\n{{coverLetter}}',
  checkQualifications:
    "Does this list of skills `{{skills}}` contain all of the following required skills: `TypeScript, Node.js, SQL`? Also, is the cover letter tone `{{tone}}` professional? Respond only 'true' if both conditions are met, otherwise 'false'.",
  interviewEmail:
    'Write a polite and professional email inviting {{applicantName}} to an interview. Mention you were impressed with their resume.',
  rejectionEmail:
    'Write a polite and professional email to {{applicantName}} informing them that you will not be moving forward with their application at this time. Thank them for their interest.',
  summarize: 'Summarize this review in one sentence: {{review}}',
  categorize:
    "Categorize this review into ONLY ONE of: 'Bug Report', 'Feature Request', 'General Feedback'. Review: {{review}}",
  checkSentiment: "Is the sentiment of this summary positive? '{{summary}}'. Respond only 'true' or 'false'.",
  sendToTicketing: '--- SIMULATING API CALL ---\nPOST /api/tickets\nPayload: {{ticket_data}}',
  sendEmailToCustomer: '--- SIMULATING EMAIL SENT ---\nTo: customer@example.com\nBody: {{email_body}}',
  thanksEmail:
    'Write a friendly "thank you" email to a customer for their positive feedback. Mention that you appreciate them highlighting: "{{summary}}".',
  ticketData:
    "Generate a Jira-style ticket in JSON format. The JSON should have two keys: 'title' and 'description'. Title: 'Customer Feedback: {{category}}'. Description: 'User reported an issue summarized as: {{summary}}'.",
  customerReply:
    "Write a polite, reassuring email to a customer. Inform them that you have received their feedback regarding '{{summary}}' and have created a ticket for the team to review. Do not include a subject line.",
  checkPii:
    'Does the following text contain any Personally Identifiable Information (PII) like an email address, phone number, or physical address? Respond only with \'true\' or \'false\'.\n\nText: "{{userPost}}"',
  checkHate:
    'Analyze the following text for hate speech. Respond with only ONE of the following severity levels: \'none\', \'moderate\', or \'severe\'.\n\nText: "{{userPost}}"',
  checkSpam:
    'Does the following text appear to be commercial spam, containing suspicious links or promotional language? Respond only with \'true\' or \'false\'.\n\nText: "{{userPost}}"',
  triage:
    "Given the following analysis of a user post, decide on the single most appropriate action. Respond with ONLY ONE of the following action codes: 'action_ban', 'action_redact', 'action_delete_spam', 'action_approve'.\n\n- Hate Speech Level: {{hate_speech_level}}\n- PII Found: {{pii_found}}\n- Spam Detected: {{spam_detected}}\n\nRules:\n1. If Hate Speech is 'severe', the action is 'action_ban'.\n2. If PII is 'true' (and hate speech is not 'severe'), the action is 'action_redact'.\n3. If Spam is 'true' (and the above are false), the action is 'action_delete_spam'.\n4. Otherwise, the action is 'action_approve'.",
  approvePost:
    'The user post from {{userId}} was analyzed and approved with no issues. Create a simple log message confirming this.',
  banUser:
    "Simulate a database update to ban a user. Respond with a simulated SQL command.\n\nUPDATE users SET status='banned' WHERE id={{userId}};",
  logBan:
    'Simulate writing to a security log. Respond with a simulated log entry.\n\nEVENT: UserBanned\nUSER_ID: {{userId}}\nREASON: {{reason}}\nSEVERITY: critical',
  redactPii:
    'Find any Personally Identifiable Information (PII) in the following text and replace it with \'[REDACTED]\'.\n\nOriginal Text: "{{userPost}}"',
  userWarning:
    'Write a polite, templated warning message to user {{userId}} explaining that their post was edited to remove personal information and reminding them not to share PII.',
  deleteSpam:
    'Simulate the actions of deleting a spam post and flagging the user. Respond with a summary of actions taken for user ID {{userId}}.',
} as const;

/** The essay writer's prompts (workflows/use-cases/essay-writer*.json), verbatim. */
const ESSAY = {
  critic:
    'Score the essay below from 1 to 10 for clarity, structure and evidence. Respond with only the score, a whole number from 1 to 10.\nTopic: {{topic}}\n\n{{essay}}',
  revise:
    'Revise the essay below so that it scores higher than the {{score}} out of 10 the critic gave it: make it clearer, better structured and better supported.\nTopic: {{topic}}\n\n{{essay}}',
  draft: '[offline] Write a short essay of about 300 words on the topic below. (74f64b22)',
} as const;

/** Fills `{{name}}` placeholders, as the engine's template rendering does. */
function fill(template: string, values: Record<string, string> = {}): string {
  return template.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (_m, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`test forgot a value for {{${name}}}`);
    return value;
  });
}

const provider = createOfflineProvider();

async function ask(prompt: string): Promise<string> {
  const completion = await provider.complete({ prompt, signal: new AbortController().signal });
  return completion.text;
}

// Realistic inputs.
const POSTS = {
  pii: 'Selling my bike, reach me at jane.doe@example.com or +1 (555) 123-4567.',
  address: 'Come to the party at 221B Baker Street tonight, everyone welcome.',
  spam: 'LIMITED OFFER!!! Buy now and get 70% off at www.cheap-watches.biz',
  bareDomain: 'Best replica watches, see cheap-watches.biz',
  mildHate: 'Honestly, people who drive like that are idiots and I hate them.',
  severeHate: 'They are vermin and we should exterminate them all.',
  clean: 'Had a lovely walk in the park this morning. The tulips are out!',
} as const;

const RESUMES = {
  full: 'Jane Doe, Backend Engineer.\nFive years building services in TypeScript on Node.js, with SQL databases (PostgreSQL) and Redis. Deployed with Docker on AWS.',
  noSql: 'John Roe, Frontend Developer.\nReact and TypeScript every day, some Node.js tooling, lots of CSS.',
  none: 'I ran a bakery for ten years and I love working with people.',
} as const;

const COVER_LETTERS = {
  professional:
    'Dear Hiring Manager,\n\nI am writing to apply for the Backend Engineer position. I would welcome the opportunity to discuss how my experience fits your team.\n\nSincerely,\nJane Doe',
  casual: "Hey there! Saw the job ad, gonna apply btw, it looks fun lol",
  unprofessional: 'Whatever. Your last engineer was lazy and this job sucks, but I need the money.',
} as const;

const REVIEWS = {
  positive: 'I love this app! The new dashboard is fast and easy to use.',
  bug: 'The app crashes every time I open the settings page. Please fix it soon.',
  feature: 'Please add a dark mode. The white screen is too bright at night.',
  complaint: 'Terrible support, I waited two weeks for a reply and got nothing useful.',
} as const;

/** What kind of answer a case expects; decides whether it must carry the `[offline] ` mark. */
type Kind = 'classification' | 'data' | 'generated';

interface Case {
  name: string;
  prompt: string;
  rule: string;
  kind: Kind;
  /** The exact answer, or a pattern it must match. */
  expected: string | RegExp;
}

const HASHED = /^\[offline\] .+ \([0-9a-f]{8}\)$/;

const CASES: Case[] = [
  // 4.content-moderation/400 — llm-condition (PII, spam) and llm-process (hate speech level).
  { name: 'pii: e-mail and phone', prompt: fill(SEED.checkPii, { userPost: POSTS.pii }), rule: 'boolean-pii', kind: 'classification', expected: 'true' },
  { name: 'pii: street address', prompt: fill(SEED.checkPii, { userPost: POSTS.address }), rule: 'boolean-pii', kind: 'classification', expected: 'true' },
  { name: 'pii: phone only', prompt: fill(SEED.checkPii, { userPost: 'Text me on 555-123-4567 after six.' }), rule: 'boolean-pii', kind: 'classification', expected: 'true' },
  { name: 'pii: clean post', prompt: fill(SEED.checkPii, { userPost: POSTS.clean }), rule: 'boolean-pii', kind: 'classification', expected: 'false' },
  { name: 'pii: a date is not a phone', prompt: fill(SEED.checkPii, { userPost: 'The meetup moved to 2024-05-01 at 18:30.' }), rule: 'boolean-pii', kind: 'classification', expected: 'false' },
  { name: 'pii: spam post', prompt: fill(SEED.checkPii, { userPost: POSTS.spam }), rule: 'boolean-pii', kind: 'classification', expected: 'false' },
  { name: 'spam: link and promotion', prompt: fill(SEED.checkSpam, { userPost: POSTS.spam }), rule: 'boolean-spam', kind: 'classification', expected: 'true' },
  { name: 'spam: bare domain', prompt: fill(SEED.checkSpam, { userPost: POSTS.bareDomain }), rule: 'boolean-spam', kind: 'classification', expected: 'true' },
  { name: 'spam: an e-mail address is not a link', prompt: fill(SEED.checkSpam, { userPost: POSTS.pii }), rule: 'boolean-spam', kind: 'classification', expected: 'false' },
  { name: 'spam: clean post', prompt: fill(SEED.checkSpam, { userPost: POSTS.clean }), rule: 'boolean-spam', kind: 'classification', expected: 'false' },
  { name: 'hate: mild', prompt: fill(SEED.checkHate, { userPost: POSTS.mildHate }), rule: 'choice-hate-speech', kind: 'classification', expected: 'moderate' },
  { name: 'hate: severe', prompt: fill(SEED.checkHate, { userPost: POSTS.severeHate }), rule: 'choice-hate-speech', kind: 'classification', expected: 'severe' },
  { name: 'hate: clean post', prompt: fill(SEED.checkHate, { userPost: POSTS.clean }), rule: 'choice-hate-speech', kind: 'classification', expected: 'none' },
  ...(
    [
      ['severe', 'true', 'true', 'action_ban'],
      ['moderate', 'true', 'true', 'action_redact'],
      ['none', 'true', 'false', 'action_redact'],
      ['none', 'false', 'true', 'action_delete_spam'],
      ['moderate', 'false', 'false', 'action_approve'],
      ['none', 'false', 'false', 'action_approve'],
    ] as const
  ).map(([hate, pii, spam, action]): Case => ({
    name: `triage: hate=${hate} pii=${pii} spam=${spam}`,
    prompt: fill(SEED.triage, { hate_speech_level: hate, pii_found: pii, spam_detected: spam }),
    rule: 'choice-moderation-triage',
    kind: 'classification',
    expected: action,
  })),
  // 402 — redaction keeps the post and only swaps the PII.
  {
    name: 'redact: e-mail and phone',
    prompt: fill(SEED.redactPii, { userPost: POSTS.pii }),
    rule: 'generate-redaction',
    kind: 'data',
    expected: 'Selling my bike, reach me at [REDACTED] or [REDACTED].',
  },
  {
    name: 'redact: street address',
    prompt: fill(SEED.redactPii, { userPost: POSTS.address }),
    rule: 'generate-redaction',
    kind: 'data',
    expected: 'Come to the party at [REDACTED] tonight, everyone welcome.',
  },
  // 401, 403, 400's approve branch, 402's warning — free text.
  { name: 'ban: simulated SQL', prompt: fill(SEED.banUser, { userId: 'u-42' }), rule: 'generate-echo', kind: 'generated', expected: /^\[offline\] Simulate a database update to ban a user\. \([0-9a-f]{8}\)$/ },
  { name: 'ban: log entry', prompt: fill(SEED.logBan, { userId: 'u-42', reason: 'severe' }), rule: 'generate-echo', kind: 'generated', expected: HASHED },
  { name: 'spam: delete and flag', prompt: fill(SEED.deleteSpam, { userId: 'u-42' }), rule: 'generate-echo', kind: 'generated', expected: HASHED },
  { name: 'approve: log message', prompt: fill(SEED.approvePost, { userId: 'u-42' }), rule: 'generate-echo', kind: 'generated', expected: HASHED },
  { name: 'redact: user warning', prompt: fill(SEED.userWarning, { userId: 'u-42' }), rule: 'generate-echo', kind: 'generated', expected: HASHED },

  // 2.job-application/200.
  { name: 'skills: full resume', prompt: fill(SEED.extractSkills, { resume: RESUMES.full }), rule: 'generate-skills', kind: 'data', expected: 'TypeScript, Node.js, SQL, PostgreSQL, Redis, Docker, AWS' },
  { name: 'skills: resume without SQL', prompt: fill(SEED.extractSkills, { resume: RESUMES.noSql }), rule: 'generate-skills', kind: 'data', expected: 'React, TypeScript, Node.js, CSS' },
  { name: 'skills: none known', prompt: fill(SEED.extractSkills, { resume: RESUMES.none }), rule: 'generate-skills', kind: 'generated', expected: '[offline] no known skills found' },
  { name: 'tone: professional letter', prompt: fill(SEED.analyzeTone, { coverLetter: COVER_LETTERS.professional }), rule: 'choice-tone', kind: 'classification', expected: 'professional' },
  { name: 'tone: casual letter', prompt: fill(SEED.analyzeTone, { coverLetter: COVER_LETTERS.casual }), rule: 'choice-tone', kind: 'classification', expected: 'casual' },
  { name: 'tone: rude letter', prompt: fill(SEED.analyzeTone, { coverLetter: COVER_LETTERS.unprofessional }), rule: 'choice-tone', kind: 'classification', expected: 'unprofessional' },
  { name: 'qualified: all skills, professional', prompt: fill(SEED.checkQualifications, { skills: 'TypeScript, Node.js, SQL, PostgreSQL, Redis', tone: 'professional' }), rule: 'boolean-required-skills', kind: 'classification', expected: 'true' },
  { name: 'qualified: skills in another case', prompt: fill(SEED.checkQualifications, { skills: 'sql, typescript, node.js', tone: 'Professional' }), rule: 'boolean-required-skills', kind: 'classification', expected: 'true' },
  { name: 'qualified: PostgreSQL is not SQL', prompt: fill(SEED.checkQualifications, { skills: 'TypeScript, Node.js, PostgreSQL', tone: 'professional' }), rule: 'boolean-required-skills', kind: 'classification', expected: 'false' },
  { name: 'qualified: casual tone', prompt: fill(SEED.checkQualifications, { skills: 'TypeScript, Node.js, SQL', tone: 'casual' }), rule: 'boolean-required-skills', kind: 'classification', expected: 'false' },
  { name: 'qualified: unprofessional tone', prompt: fill(SEED.checkQualifications, { skills: 'TypeScript, Node.js, SQL', tone: 'unprofessional' }), rule: 'boolean-required-skills', kind: 'classification', expected: 'false' },
  { name: 'qualified: no skills found', prompt: fill(SEED.checkQualifications, { skills: '[offline] no known skills found', tone: 'professional' }), rule: 'boolean-required-skills', kind: 'classification', expected: 'false' },
  // 201, 202.
  { name: 'interview e-mail', prompt: fill(SEED.interviewEmail, { applicantName: 'Jane Doe' }), rule: 'generate-echo', kind: 'generated', expected: /^\[offline\] Write a polite and professional email inviting Jane Doe to an interview\. \([0-9a-f]{8}\)$/ },
  { name: 'rejection e-mail', prompt: fill(SEED.rejectionEmail, { applicantName: 'John Roe' }), rule: 'generate-echo', kind: 'generated', expected: HASHED },

  // 3.customer-review/300.
  { name: 'summary: positive review', prompt: fill(SEED.summarize, { review: REVIEWS.positive }), rule: 'generate-summary', kind: 'generated', expected: '[offline] I love this app!' },
  { name: 'summary: bug review', prompt: fill(SEED.summarize, { review: REVIEWS.bug }), rule: 'generate-summary', kind: 'generated', expected: '[offline] The app crashes every time I open the settings page.' },
  { name: 'category: positive review', prompt: fill(SEED.categorize, { review: REVIEWS.positive }), rule: 'choice-review-category', kind: 'classification', expected: 'General Feedback' },
  { name: 'category: bug', prompt: fill(SEED.categorize, { review: REVIEWS.bug }), rule: 'choice-review-category', kind: 'classification', expected: 'Bug Report' },
  { name: 'category: feature request', prompt: fill(SEED.categorize, { review: REVIEWS.feature }), rule: 'choice-review-category', kind: 'classification', expected: 'Feature Request' },
  { name: 'category: complaint', prompt: fill(SEED.categorize, { review: REVIEWS.complaint }), rule: 'choice-review-category', kind: 'classification', expected: 'General Feedback' },
  { name: 'sentiment: positive summary', prompt: fill(SEED.checkSentiment, { summary: '[offline] I love this app!' }), rule: 'boolean-sentiment', kind: 'classification', expected: 'true' },
  { name: 'sentiment: bug summary', prompt: fill(SEED.checkSentiment, { summary: '[offline] The app crashes every time I open the settings page.' }), rule: 'boolean-sentiment', kind: 'classification', expected: 'false' },
  { name: 'sentiment: negated praise', prompt: fill(SEED.checkSentiment, { summary: "[offline] It isn't good and the sync doesn't work." }), rule: 'boolean-sentiment', kind: 'classification', expected: 'false' },
  { name: 'sentiment: complaint', prompt: fill(SEED.checkSentiment, { summary: '[offline] Terrible support, I waited two weeks for a reply and got nothing useful.' }), rule: 'boolean-sentiment', kind: 'classification', expected: 'false' },
  // 300's simulated calls, 301, 302.
  { name: 'ticketing call', prompt: fill(SEED.sendToTicketing, { ticket_data: '{"title":"x"}' }), rule: 'generate-echo', kind: 'generated', expected: HASHED },
  { name: 'customer e-mail call', prompt: fill(SEED.sendEmailToCustomer, { email_body: 'Thanks!' }), rule: 'generate-echo', kind: 'generated', expected: HASHED },
  { name: 'thank-you e-mail', prompt: fill(SEED.thanksEmail, { summary: '[offline] I love this app!' }), rule: 'generate-echo', kind: 'generated', expected: HASHED },
  { name: 'ticket data', prompt: fill(SEED.ticketData, { category: 'Bug Report', summary: '[offline] The app crashes.' }), rule: 'generate-echo', kind: 'generated', expected: HASHED },
  { name: 'customer reply', prompt: fill(SEED.customerReply, { summary: '[offline] The app crashes.' }), rule: 'generate-echo', kind: 'generated', expected: HASHED },

  // 1.blog-post/100.
  { name: 'outline', prompt: fill(SEED.generateOutline, { topic: 'Home composting' }), rule: 'generate-echo', kind: 'generated', expected: /^\[offline\] Generate a detailed, multi-point blog post outline for the topic: "Home composting"\. \([0-9a-f]{8}\)$/ },
  { name: 'draft', prompt: fill(SEED.draftPost, { outline: '1. Why compost\n2. What you need' }), rule: 'generate-echo', kind: 'generated', expected: HASHED },
  {
    name: 'titles',
    prompt: fill(SEED.suggestTitles, { draft: 'Composting at home turns kitchen scraps into rich soil. Here is how.' }),
    rule: 'generate-titles',
    kind: 'data',
    expected: [
      '1. Composting at Home Turns Kitchen Scraps',
      '2. Composting at Home Turns Kitchen Scraps: A Practical Guide',
      '3. What to Know About Composting at Home Turns Kitchen Scraps',
      '4. Composting at Home Turns Kitchen Scraps, Explained',
      '5. Composting at Home Turns Kitchen Scraps: Key Takeaways',
    ].join('\n'),
  },

  // workflows/use-cases/essay-writer-round: the critic's score and the revision.
  { name: 'score: a first draft', prompt: fill(ESSAY.critic, { topic: 'Trees', essay: ESSAY.draft }), rule: 'number-score', kind: 'classification', expected: '6' },
  { name: 'score: one revision', prompt: fill(ESSAY.critic, { topic: 'Trees', essay: `${ESSAY.draft}\n[offline] Revision 1: Revise it.` }), rule: 'number-score', kind: 'classification', expected: '8' },
  {
    name: 'score: at most 10',
    prompt: fill(ESSAY.critic, { topic: 'Trees', essay: [ESSAY.draft, 1, 2, 3].map((l) => (typeof l === 'number' ? `[offline] Revision ${l}: Revise it.` : l)).join('\n') }),
    rule: 'number-score',
    kind: 'classification',
    expected: '10',
  },
  { name: 'score: "out of 10", "answer with a number"', prompt: 'Rate this poem out of 10. Answer with a number only.\n\nRoses are red.', rule: 'number-score', kind: 'classification', expected: '6' },
  {
    name: 'revision: the essay, then a numbered revision line',
    prompt: fill(ESSAY.revise, { topic: 'Trees', essay: `${ESSAY.draft}\n[offline] Revision 1: Revise it.`, score: '7' }),
    rule: 'generate-revision',
    kind: 'generated',
    expected: `${ESSAY.draft}\n[offline] Revision 1: Revise it.\n[offline] Revision 2: Revise the essay below so that it scores higher than the 7 out of 10 the critic gave it: make it clearer, better structured and better supported.`,
  },

  // Not from the seeds: the fallbacks of each family.
  { name: 'boolean default', prompt: "Is the sky blue today? Respond only 'true' or 'false'.", rule: 'boolean-default', kind: 'classification', expected: 'true' },
  { name: 'boolean default, false named first', prompt: "Is this a duplicate? Reply 'false' if unsure, otherwise 'true'.", rule: 'boolean-default', kind: 'classification', expected: 'false' },
  { name: 'choice default', prompt: "Pick one of: 'red', 'green', 'blue'. Which colour is the sea?", rule: 'choice-default', kind: 'classification', expected: 'red' },
  { name: 'titles: count in words', prompt: 'Give me three titles for this post:\n\nRust for web developers', rule: 'generate-titles', kind: 'data', expected: /^1\. Rust for Web Developers\n2\. .+\n3\. .+$/ },
];

describe('offline provider', () => {
  it('names itself and its model', () => {
    expect(provider.name).toBe('offline');
    expect(provider.model).toBe('offline-rules-1');
  });

  describe.each(CASES)('$name', ({ prompt, rule, kind, expected }) => {
    it('answers as intended', async () => {
      const text = await ask(prompt);
      if (typeof expected === 'string') expect(text).toBe(expected);
      else expect(text).toMatch(expected);
      expect(answerOffline(prompt)).toEqual({ text, rule });
    });

    it(kind === 'generated' ? 'marks its text with "[offline] "' : 'answers bare, without the mark', async () => {
      const text = await ask(prompt);
      if (kind === 'generated') expect(text.startsWith('[offline] ')).toBe(true);
      else expect(text).not.toContain('[offline]');
      // Classification answers are single choices, never a sentence around one.
      if (kind === 'classification') expect(text).toMatch(/^[\w ]+$/);
    });

    it('is deterministic and estimates usage as ceil(chars / 4)', async () => {
      const signal = new AbortController().signal;
      const first = await provider.complete({ prompt, signal });
      const second = await provider.complete({ prompt, signal, idempotencyKey: 'run-1:node-1' });
      expect(second).toEqual(first);
      expect(first.model).toBe('offline-rules-1');
      expect(first.usage).toEqual({
        promptTokens: Math.ceil(prompt.length / 4),
        completionTokens: Math.ceil(first.text.length / 4),
      });
    });
  });

  it('exercises every documented rule, and documents every rule it uses', () => {
    const names = OFFLINE_RULES.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(CASES.map((c) => c.rule))).toEqual(new Set(names));
    for (const rule of OFFLINE_RULES) expect(rule.description.length).toBeGreaterThan(40);
  });

  it("is documented in README's offline rules list: every rule, in order, with its description", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const listed = [...readme.matchAll(/^ {2}- `([a-z-]+)`: (.*)$/gm)].map((m) => ({ name: m[1]!, description: m[2]! }));
    expect(listed).toEqual(OFFLINE_RULES.map(({ name, description }) => ({ name, description })));
  });

  it('lists its word lists in the rule descriptions', () => {
    const descriptionOf = (name: string) => OFFLINE_RULES.find((r) => r.name === name)?.description ?? '';
    expect(descriptionOf('boolean-spam')).toContain('buy now');
    expect(descriptionOf('choice-hate-speech')).toContain('exterminate');
    expect(descriptionOf('generate-skills')).toContain('Kubernetes');
    expect(descriptionOf('boolean-pii')).toContain('Blvd');
  });

  it('gives different prompts different echo texts', async () => {
    const a = await ask(fill(SEED.interviewEmail, { applicantName: 'Ann' }) + ' Keep it short.');
    const b = await ask(fill(SEED.interviewEmail, { applicantName: 'Ann' }) + ' Keep it long.');
    expect(a.slice(0, -10)).toBe(b.slice(0, -10));
    expect(a).not.toBe(b);
  });

  it('clips a summary to 200 characters of sentence', async () => {
    const text = await ask(fill(SEED.summarize, { review: `${'very '.repeat(80)}long review. Second sentence.` }));
    expect(text.startsWith('[offline] ')).toBe(true);
    expect(text.length).toBeLessThanOrEqual('[offline] '.length + 200);
    expect(text.endsWith('…')).toBe(true);
  });

  it('clips the echoed instruction to 240 characters', async () => {
    const text = await ask(`Write ${'a very '.repeat(60)}long instruction.`);
    expect(text).toMatch(HASHED);
    expect(text.length).toBeLessThanOrEqual('[offline] '.length + 240 + ' (12345678)'.length);
  });

  it('rejects when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    await expect(provider.complete({ prompt: 'hi', signal: controller.signal })).rejects.toThrow('cancelled');
  });

  describe('without network or clock', () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
      vi.restoreAllMocks();
    });

    it('never calls fetch and answers the same at any time', async () => {
      const fetchSpy = vi.spyOn(globalThis, 'fetch').mockRejectedValue(new Error('no network in tests'));
      vi.setSystemTime(new Date('2020-01-01T00:00:00Z'));
      const before = CASES.map((c) => answerOffline(c.prompt).text);
      vi.setSystemTime(new Date('2035-06-15T12:00:00Z'));
      const after = await Promise.all(CASES.map((c) => ask(c.prompt)));
      expect(after).toEqual(before);
      expect(fetchSpy).not.toHaveBeenCalled();
    });
  });
});

/**
 * The seed workflows' decision chains, run step by step through the provider the way the engine feeds
 * one node's answer into the next prompt: the branch each realistic input ends on.
 */
describe('seed decision chains', () => {
  it.each([
    { post: POSTS.pii, action: 'action_redact' },
    { post: POSTS.address, action: 'action_redact' },
    { post: POSTS.spam, action: 'action_delete_spam' },
    { post: POSTS.mildHate, action: 'action_approve' },
    { post: POSTS.severeHate, action: 'action_ban' },
    { post: POSTS.clean, action: 'action_approve' },
  ])('moderation routes "$post" to $action', async ({ post, action }) => {
    const [pii, hate, spam] = await Promise.all([
      ask(fill(SEED.checkPii, { userPost: post })),
      ask(fill(SEED.checkHate, { userPost: post })),
      ask(fill(SEED.checkSpam, { userPost: post })),
    ]);
    const route = await ask(fill(SEED.triage, { hate_speech_level: hate, pii_found: pii, spam_detected: spam }));
    // llm-router uses the trimmed answer as the action.
    expect(route.trim()).toBe(action);
  });

  it.each([
    { resume: RESUMES.full, letter: COVER_LETTERS.professional, qualified: 'true' },
    { resume: RESUMES.noSql, letter: COVER_LETTERS.professional, qualified: 'false' },
    { resume: RESUMES.full, letter: COVER_LETTERS.casual, qualified: 'false' },
    { resume: RESUMES.full, letter: COVER_LETTERS.unprofessional, qualified: 'false' },
    { resume: RESUMES.none, letter: COVER_LETTERS.professional, qualified: 'false' },
  ])('job application: qualified=$qualified', async ({ resume, letter, qualified }) => {
    const skills = await ask(fill(SEED.extractSkills, { resume }));
    const tone = await ask(fill(SEED.analyzeTone, { coverLetter: letter }));
    expect(await ask(fill(SEED.checkQualifications, { skills, tone }))).toBe(qualified);
  });

  it.each([
    { review: REVIEWS.positive, positive: 'true', category: 'General Feedback' },
    { review: REVIEWS.bug, positive: 'false', category: 'Bug Report' },
    { review: REVIEWS.complaint, positive: 'false', category: 'General Feedback' },
  ])('customer review: positive=$positive, $category', async ({ review, positive, category }) => {
    const summary = await ask(fill(SEED.summarize, { review }));
    expect(await ask(fill(SEED.categorize, { review }))).toBe(category);
    // llm-condition takes "true" when the answer contains it.
    expect(await ask(fill(SEED.checkSentiment, { summary }))).toBe(positive);
  });

  it("essay writer: these are the loop body's prompts", () => {
    const prompt = (id: string) => essayWriterRound.nodes.find((n) => n.id === id)?.params.promptTemplate;
    expect([prompt('critic'), prompt('revise')]).toEqual([ESSAY.critic, ESSAY.revise]);
  });

  it('essay writer: the score rises by 2 with each revision, so a round of 8 or more comes second', async () => {
    let essay: string = ESSAY.draft;
    const scores: string[] = [];
    for (let round = 1; round <= 3; round++) {
      const score = await ask(fill(ESSAY.critic, { topic: 'Trees', essay }));
      scores.push(score);
      essay = await ask(fill(ESSAY.revise, { topic: 'Trees', essay, score }));
      expect(essay.split('\n')).toHaveLength(round + 1);
    }
    expect(scores).toEqual(['6', '8', '10']);
  });

  it('blog post: titles come from the offline draft without its mark or hash', async () => {
    const outline = await ask(fill(SEED.generateOutline, { topic: 'Home composting' }));
    const draft = await ask(fill(SEED.draftPost, { outline }));
    const titles = await ask(fill(SEED.suggestTitles, { draft }));
    const lines = titles.split('\n');
    expect(lines).toHaveLength(5);
    lines.forEach((line, i) => expect(line).toMatch(new RegExp(`^${i + 1}\\. \\S`)));
    expect(titles).not.toMatch(/offline|[0-9a-f]{8}/);
  });
});
