import { createHash } from 'node:crypto';
import type { Completion, CompletionRequest, LlmProvider } from './types.js';

/**
 * The `offline` provider: a transparent, deterministic, rule-based responder that lets every seed
 * workflow run end to end without a model, a network or a key. It is not a model and does not pretend
 * to be one: texts it makes up start with `[offline] `, and each answer comes from the first rule of
 * {@link OFFLINE_RULES} that matches, using the word lists exported below. No randomness, no clock:
 * the same prompt always gets the same answer.
 */

/** Marks generated text so nobody mistakes it for model output. */
const MARK = '[offline] ';

// ---------------------------------------------------------------------------------------------------
// Word lists. They are exported so the README and the tests show exactly what the rules look for.
// Phrases match case-insensitively on word boundaries.
// ---------------------------------------------------------------------------------------------------

/** Street-type words that end a street address such as `42 Baker Street` or `7 Elm Ave`. */
export const STREET_SUFFIXES: readonly string[] = [
  'Street', 'St', 'Avenue', 'Ave', 'Road', 'Rd', 'Lane', 'Ln', 'Boulevard', 'Blvd', 'Drive', 'Dr',
  'Court', 'Ct', 'Place', 'Pl', 'Terrace', 'Parkway', 'Pkwy', 'Highway', 'Hwy', 'Way',
];

/** Promotional phrases that mark a text as spam (a link does too). */
export const SPAM_PHRASES: readonly string[] = [
  'buy now', 'order now', 'act now', 'click here', 'limited offer', 'limited time', 'special offer',
  'for free', 'free gift', 'free trial', 'free shipping', '100% free', '% off', 'discount', 'promo code',
  'coupon', 'winner', 'you have won', 'cheap', 'best deal', 'great deal', 'deals', 'earn money',
  'make money', 'work from home', 'risk-free', 'guaranteed', 'subscribe now',
];

/** Words that count towards a positive sentiment (a negator just before one makes it count as negative). */
export const POSITIVE_WORDS: readonly string[] = [
  'love', 'loved', 'loves', 'great', 'excellent', 'amazing', 'awesome', 'fantastic', 'good', 'happy',
  'helpful', 'wonderful', 'perfect', 'best', 'recommend', 'easy', 'fast', 'pleased', 'delighted',
  'impressed', 'enjoy', 'enjoyed', 'beautiful', 'smooth', 'reliable', 'thanks', 'thank', 'nice',
  'brilliant', 'superb', 'intuitive', 'useful', 'glad', 'satisfied',
];

/** Words that count towards a negative sentiment (a negator just before one makes it count as positive). */
export const NEGATIVE_WORDS: readonly string[] = [
  'bad', 'terrible', 'awful', 'horrible', 'hate', 'hated', 'poor', 'worst', 'broken', 'crash', 'crashes',
  'crashed', 'crashing', 'bug', 'bugs', 'buggy', 'slow', 'disappointed', 'disappointing', 'useless',
  'frustrating', 'frustrated', 'annoying', 'fail', 'fails', 'failed', 'error', 'errors', 'problem',
  'problems', 'refund', 'confusing', 'unusable', 'angry', 'waste', 'freezes', 'laggy',
];

/** Words that flip the sentiment word right after them (or two after, as in "not very good"). */
export const NEGATORS: readonly string[] = [
  'not', 'no', 'never', 'hardly', "don't", "doesn't", "didn't", "isn't", "wasn't", "aren't", "can't",
  "won't", 'cannot',
];

/** Hate speech rated `severe`: explicit threats and dehumanising words. Kept generic on purpose. */
export const SEVERE_HATE_PHRASES: readonly string[] = [
  'kill them', 'kill all', 'kill every', 'kill those', 'kill you', 'murder them', 'exterminate',
  'wipe them out', 'deserve to die', 'should die', 'should all die', 'subhuman', 'vermin',
];

/** Hate speech rated `moderate`: insults and hostility without a threat. */
export const MODERATE_HATE_PHRASES: readonly string[] = [
  'hate', 'idiot', 'idiots', 'stupid people', 'moron', 'morons', 'imbeciles', 'losers', 'scum',
  'pathetic', 'disgusting people', 'shut up', 'go back to where',
];

/** Words that make a review a bug report. Checked before {@link FEATURE_REQUEST_PHRASES}. */
export const BUG_PHRASES: readonly string[] = [
  'crash', 'crashes', 'crashed', 'crashing', 'bug', 'bugs', 'buggy', 'error', 'errors', 'broken',
  "doesn't work", 'does not work', 'not working', 'stopped working', 'fails', 'failed', 'failure',
  'freezes', 'frozen', 'glitch', 'exception', "won't load", "can't log in", 'cannot log in',
];

/** Words that make a review a feature request. */
export const FEATURE_REQUEST_PHRASES: readonly string[] = [
  'please add', 'could you add', 'can you add', 'would love', 'wish', 'feature', 'support for',
  'it would be nice', 'it would be great', 'should have', 'add an option', "i'd like", 'missing',
];

/** Words that make a text's tone `unprofessional`. Checked before {@link CASUAL_MARKERS}. */
export const RUDE_PHRASES: readonly string[] = [
  'whatever', 'sucks', 'crap', 'damn', 'stupid', 'idiot', 'dumb', 'wtf', 'shut up', "don't care",
  'lazy', 'hell',
];

/** Markers of a `casual` tone. */
export const CASUAL_MARKERS: readonly string[] = [
  'hey', 'hiya', 'yo', 'gonna', 'wanna', 'kinda', 'lol', 'btw', 'yeah', 'cool', 'thx', '!!', ':)',
];

/** A skill with its canonical spelling and the spellings that count as it. */
interface KnownSkill {
  name: string;
  aliases: readonly string[];
  /** Skills that are also common English words (Go, Rust, Swift …) only match with their capital. */
  caseSensitive?: boolean;
}

const KNOWN_SKILL_TABLE: readonly KnownSkill[] = [
  { name: 'TypeScript', aliases: ['TypeScript', 'TS'] },
  { name: 'JavaScript', aliases: ['JavaScript', 'JS', 'ECMAScript'] },
  { name: 'Node.js', aliases: ['Node.js', 'NodeJS', 'Node'] },
  { name: 'SQL', aliases: ['SQL'] },
  { name: 'PostgreSQL', aliases: ['PostgreSQL', 'Postgres'] },
  { name: 'MySQL', aliases: ['MySQL'] },
  { name: 'SQLite', aliases: ['SQLite'] },
  { name: 'MongoDB', aliases: ['MongoDB', 'Mongo'] },
  { name: 'Redis', aliases: ['Redis'] },
  { name: 'GraphQL', aliases: ['GraphQL'] },
  { name: 'REST', aliases: ['REST', 'RESTful'], caseSensitive: true },
  { name: 'Python', aliases: ['Python'] },
  { name: 'Java', aliases: ['Java'] },
  { name: 'Kotlin', aliases: ['Kotlin'] },
  { name: 'Go', aliases: ['Go', 'Golang'], caseSensitive: true },
  { name: 'Rust', aliases: ['Rust'], caseSensitive: true },
  { name: 'C++', aliases: ['C++'] },
  { name: 'C#', aliases: ['C#'] },
  { name: 'Ruby', aliases: ['Ruby'] },
  { name: 'PHP', aliases: ['PHP'] },
  { name: 'Swift', aliases: ['Swift'], caseSensitive: true },
  { name: 'Scala', aliases: ['Scala'] },
  { name: 'React', aliases: ['React', 'React.js', 'ReactJS'] },
  { name: 'Angular', aliases: ['Angular'] },
  { name: 'Vue', aliases: ['Vue', 'Vue.js'] },
  { name: 'Next.js', aliases: ['Next.js', 'NextJS'] },
  { name: 'Express', aliases: ['Express', 'Express.js'], caseSensitive: true },
  { name: 'Django', aliases: ['Django'] },
  { name: 'Flask', aliases: ['Flask'], caseSensitive: true },
  { name: 'Spring', aliases: ['Spring', 'Spring Boot'], caseSensitive: true },
  { name: 'HTML', aliases: ['HTML', 'HTML5'] },
  { name: 'CSS', aliases: ['CSS', 'CSS3'] },
  { name: 'AWS', aliases: ['AWS', 'Amazon Web Services'] },
  { name: 'Azure', aliases: ['Azure'] },
  { name: 'GCP', aliases: ['GCP', 'Google Cloud'] },
  { name: 'Docker', aliases: ['Docker'] },
  { name: 'Kubernetes', aliases: ['Kubernetes', 'K8s'] },
  { name: 'Terraform', aliases: ['Terraform'] },
  { name: 'Linux', aliases: ['Linux'] },
  { name: 'Git', aliases: ['Git'] },
  { name: 'CI/CD', aliases: ['CI/CD'] },
  { name: 'Kafka', aliases: ['Kafka'] },
  { name: 'RabbitMQ', aliases: ['RabbitMQ'] },
  { name: 'Elasticsearch', aliases: ['Elasticsearch'] },
];

/** The technical terms the skills rule recognises, in their canonical spelling. */
export const KNOWN_SKILLS: readonly string[] = KNOWN_SKILL_TABLE.map((s) => s.name);

// ---------------------------------------------------------------------------------------------------
// Matching helpers.
// ---------------------------------------------------------------------------------------------------

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * A pattern for a phrase: spaces match any whitespace; a boundary is required only on a side that is a
 * word character, so `% off` and `!!` still match inside `50% off!!`.
 */
function phrasePattern(phrase: string): string {
  const body = phrase.split(/\s+/).map(escapeRegExp).join('\\s+').replace(/'/g, "['’]");
  const start = /^\w/.test(phrase) ? '(?<![\\w])' : '';
  const end = /\w$/.test(phrase) ? '(?![\\w])' : '';
  return start + body + end;
}

function phraseListRegExp(phrases: readonly string[]): RegExp {
  return new RegExp(phrases.map(phrasePattern).join('|'), 'i');
}

const SPAM_RE = phraseListRegExp(SPAM_PHRASES);
const SEVERE_HATE_RE = phraseListRegExp(SEVERE_HATE_PHRASES);
const MODERATE_HATE_RE = phraseListRegExp(MODERATE_HATE_PHRASES);
const BUG_RE = phraseListRegExp(BUG_PHRASES);
const FEATURE_RE = phraseListRegExp(FEATURE_REQUEST_PHRASES);
const RUDE_RE = phraseListRegExp(RUDE_PHRASES);
const CASUAL_RE = phraseListRegExp(CASUAL_MARKERS);

const EMAIL_RE = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;
// Seven or more digits with single spaces, dots or dashes between them, an optional `+country` and an
// optional `(area)`: `555-123-4567`, `(555) 123 4567`, `+44 20 7946 0958`.
const PHONE_RE = /(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d(?:[ .-]?\d){5,14}(?![\w])/g;
const ISO_DATE_RE = /^\d{4}-\d{2}-\d{2}$/;
// A house number, one to three capitalised words, a street type: `221B Baker Street`, `7 Elm Ave.`.
// Capitalised words keep "3 miles down the road" from counting as an address.
const ADDRESS_RE = new RegExp(
  `\\b\\d{1,6}[A-Za-z]?\\s+(?:[A-Z][A-Za-z'.-]*\\s+){1,3}(?:${STREET_SUFFIXES.map(escapeRegExp).join('|')})\\b\\.?`,
  'g',
);
// A link: a URL, `www.…`, or a bare domain with a common top-level domain (not the domain of an e-mail).
const LINK_RE =
  /\bhttps?:\/\/\S+|\bwww\.\S+|(?<![@\w.-])[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|biz|info|co|xyz|shop|online|site|top|click|store|app|ru|cn)\b/i;

function findPhones(text: string): string[] {
  return [...text.matchAll(PHONE_RE)]
    .map((m) => m[0])
    .filter((s) => {
      const digits = s.replace(/\D/g, '').length;
      return digits >= 7 && digits <= 15 && !ISO_DATE_RE.test(s);
    });
}

function hasPii(text: string): boolean {
  return new RegExp(EMAIL_RE.source).test(text) || findPhones(text).length > 0 || new RegExp(ADDRESS_RE.source).test(text);
}

function redactPii(text: string): string {
  const phones = new Set(findPhones(text));
  return text
    .replace(EMAIL_RE, '[REDACTED]')
    .replace(ADDRESS_RE, '[REDACTED]')
    .replace(PHONE_RE, (m) => (phones.has(m) ? '[REDACTED]' : m));
}

function isSpam(text: string): boolean {
  return LINK_RE.test(text) || SPAM_RE.test(text);
}

const POSITIVE = new Set(POSITIVE_WORDS);
const NEGATIVE = new Set(NEGATIVE_WORDS);
const NEGATOR = new Set(NEGATORS);

/** Positive minus negative word count; a negator one or two words before a word flips it. */
function sentimentScore(text: string): number {
  const words = text.toLowerCase().replace(/’/g, "'").match(/[a-z]+(?:'[a-z]+)?/g) ?? [];
  let score = 0;
  words.forEach((word, i) => {
    const polarity = POSITIVE.has(word) ? 1 : NEGATIVE.has(word) ? -1 : 0;
    if (polarity === 0) return;
    const negated = [words[i - 1], words[i - 2]].some((w) => w !== undefined && NEGATOR.has(w));
    score += negated ? -polarity : polarity;
  });
  return score;
}

function hateSeverity(text: string): 'none' | 'moderate' | 'severe' {
  if (SEVERE_HATE_RE.test(text)) return 'severe';
  if (MODERATE_HATE_RE.test(text)) return 'moderate';
  return 'none';
}

function findSkills(text: string): string[] {
  const found: Array<{ name: string; at: number; order: number }> = [];
  KNOWN_SKILL_TABLE.forEach((skill, order) => {
    // Boundaries include `+`, `#`, `.` and `/` so `Java` is not found in `JavaScript`, nor `SQL` in `PostgreSQL`.
    const pattern = skill.aliases.map((a) => `(?<![\\w+#./])${escapeRegExp(a)}(?![\\w+#/])`).join('|');
    const match = new RegExp(pattern, skill.caseSensitive ? '' : 'i').exec(text);
    if (match) found.push({ name: skill.name, at: match.index, order });
  });
  return found.sort((a, b) => a.at - b.at || a.order - b.order).map((f) => f.name);
}

/** `required` all appear, as whole terms and ignoring case, in `list`. */
function containsAllSkills(list: string, required: readonly string[]): boolean {
  return required.every((skill) => new RegExp(`(?<![\\w+#])${escapeRegExp(skill)}(?![\\w+#])`, 'i').test(list));
}

// ---------------------------------------------------------------------------------------------------
// Reading a prompt.
// ---------------------------------------------------------------------------------------------------

/** What the rules look at, computed once per prompt. */
interface PromptParts {
  prompt: string;
  /** The first paragraph: where the seed prompts put the instruction and the answer format. */
  head: string;
  /** The instruction: the first sentence, cut at the first `:` (the material follows a colon). */
  lead: string;
  /** The text under analysis (see {@link subjectOf}). */
  subject: string;
  /** The quoted choices after "one of" / "single word" / "action codes", if any. */
  choices: string[] | undefined;
  /** The prompt asks for `true`/`false`: the words of that request, else undefined. */
  booleanAsk: string | undefined;
}

const BLANK_LINE = /\n[ \t]*\n/;
const CHOICE_MARKER = /\b(?:one of|single word|one word|action codes?|one category|one label)\b[^'"`\n:]*:?/i;
const QUOTED_ITEM = /\s*(['"`])([^'"`\n]{1,80}?)\1/y;
const ITEM_SEPARATOR = /\s*,?\s*(?:(?:or|and)\s+)?/y;
// Either order: "Respond only 'true' or 'false'", "Reply 'false' if …, otherwise 'true'", "true/false".
const BOOLEAN_ASK =
  /\b(?:respond|answer|reply|return)\b[^\n]*?\b(?:true\b[^\n]*?\bfalse|false\b[^\n]*?\btrue)\b|\b(?:true\s*(?:or|\/)\s*false|false\s*(?:or|\/)\s*true)\b/i;

function firstSentence(text: string): string {
  const collapsed = text.replace(/\s+/g, ' ').trim();
  const end = /[.!?](?=\s|$)/.exec(collapsed);
  return end ? collapsed.slice(0, end.index + 1) : collapsed;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1).trimEnd()}…`;
}

function unquote(text: string): string {
  const t = text.trim();
  return t.length >= 2 && /^["'`]/.test(t) && t.endsWith(t[0]!) ? t.slice(1, -1) : t;
}

function parseChoices(head: string): { choices: string[]; span: [number, number] } | undefined {
  const marker = CHOICE_MARKER.exec(head);
  if (!marker) return undefined;
  const choices: string[] = [];
  let pos = marker.index + marker[0].length;
  for (;;) {
    if (choices.length > 0) {
      ITEM_SEPARATOR.lastIndex = pos;
      pos += ITEM_SEPARATOR.exec(head)?.[0].length ?? 0;
    }
    QUOTED_ITEM.lastIndex = pos;
    const item = QUOTED_ITEM.exec(head);
    if (!item) break;
    choices.push(item[2]!.trim());
    pos = QUOTED_ITEM.lastIndex;
  }
  return choices.length >= 2 ? { choices, span: [marker.index, pos] } : undefined;
}

/**
 * The text under analysis.
 * - With a blank line (most seed prompts: instruction, blank line, material): everything after the first
 *   blank line, without a leading `Label:` (`Text:`, `Post:`) and without enclosing double quotes.
 * - Otherwise, once the answer instruction (`Respond …`) and the choice list are left out: a quoted span
 *   if one opens before the first `:` (from that quote to the last one of its kind), else what follows
 *   the first `:`, else the whole prompt.
 */
function subjectOf(prompt: string, choiceSpan: [number, number] | undefined): string {
  const blank = BLANK_LINE.exec(prompt);
  if (blank) {
    const body = prompt.slice(blank.index + blank[0].length).trim();
    return unquote(body.replace(/^[A-Za-z][A-Za-z ]{0,30}:[ \t]*\n?/, ''));
  }
  let rest = choiceSpan ? prompt.slice(0, choiceSpan[0]) + prompt.slice(choiceSpan[1]) : prompt;
  const respond = [...rest.matchAll(/\b(?:Respond|Answer|Reply)\s+(?:only|with|in)\b/gi)].at(-1);
  if (respond) rest = rest.slice(0, respond.index);
  const colon = rest.indexOf(':');
  const quote = /(?:^|[\s(])(['"`])/.exec(rest);
  if (quote && (colon < 0 || quote.index < colon)) {
    const open = quote.index + quote[0].length;
    const close = rest.lastIndexOf(quote[1]!);
    return (close > open ? rest.slice(open, close) : rest.slice(open)).trim();
  }
  if (colon >= 0) return unquote(rest.slice(colon + 1).trim().replace(/[.\s]+$/, ''));
  return rest.trim();
}

function readPrompt(prompt: string): PromptParts {
  const blank = BLANK_LINE.exec(prompt);
  const head = blank ? prompt.slice(0, blank.index) : prompt;
  const parsed = parseChoices(head);
  return {
    prompt,
    head,
    lead: firstSentence(head).split(':')[0]!,
    subject: subjectOf(prompt, parsed?.span),
    choices: parsed?.choices,
    booleanAsk: BOOLEAN_ASK.exec(head)?.[0],
  };
}

/** The choice whose text matches `pattern`, if any. */
function choiceLike(choices: readonly string[], pattern: RegExp): string | undefined {
  return choices.find((c) => pattern.test(c));
}

// ---------------------------------------------------------------------------------------------------
// The rules, in the order they are tried.
// ---------------------------------------------------------------------------------------------------

interface OfflineRule {
  name: string;
  description: string;
  /** The answer, or undefined when the rule does not apply. */
  answer(parts: PromptParts): string | undefined;
}

const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];
const TITLE_COUNT_RE = new RegExp(`\\b(\\d+|${NUMBER_WORDS.join('|')})\\b[^.\\n]{0,60}?\\btitles?\\b`, 'i');
const TITLE_PATTERNS: ReadonlyArray<(base: string) => string> = [
  (b) => b,
  (b) => `${b}: A Practical Guide`,
  (b) => `What to Know About ${b}`,
  (b) => `${b}, Explained`,
  (b) => `${b}: Key Takeaways`,
  (b) => `Getting Started with ${b}`,
  (b) => `Why ${b} Matters`,
  (b) => `${b} in Practice`,
  (b) => `A Closer Look at ${b}`,
  (b) => `${b}: Lessons Learned`,
];
const MAX_TITLES = 20;

function titleCase(word: string): string {
  return word.length <= 3 && /^(a|an|the|of|and|or|in|on|for|to|at|by|with)$/i.test(word)
    ? word.toLowerCase()
    : word.charAt(0).toUpperCase() + word.slice(1);
}

function titlesFor(post: string, count: number): string {
  // A post written by this provider starts with the marker and ends with its hash: neither makes a title.
  const text = post.replace(/^\s*\[offline\]\s*/, '').replace(/\s*\([0-9a-f]{8}\)\s*$/, '');
  const words = text
    .split(/\s+/)
    .map((w) => w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, ''))
    .filter((w) => w.length > 0)
    .slice(0, 6);
  const base = words.length > 0 ? words.map((w, i) => (i === 0 ? w.charAt(0).toUpperCase() + w.slice(1) : titleCase(w))).join(' ') : 'Untitled Post';
  return Array.from({ length: count }, (_, i) => {
    const pattern = TITLE_PATTERNS[i % TITLE_PATTERNS.length]!;
    const round = Math.floor(i / TITLE_PATTERNS.length);
    return `${i + 1}. ${pattern(base)}${round > 0 ? ` (Part ${round + 1})` : ''}`;
  }).join('\n');
}

function list(words: readonly string[]): string {
  return words.join(', ');
}

/** "from 1 to 10", "1-10", "between 1 and 10", "out of 10". */
const SCALE_RE = /\b(?:1|one)\s*(?:to|-|–|and)\s*(?:10|ten)\b|\bout of (?:10|ten)\b/i;
/** "Respond with only the score", "Answer with a number". */
const NUMBER_ASK_RE = /\b(?:respond|answer|reply|return)\b[^\n]*\b(?:score|number|integer)\b/i;
const REVISION_LINE_RE = /^\[offline\] Revision \d+: /gm;

/** How many revision lines generate-revision has added to `text`. */
function revisionsIn(text: string): number {
  return [...text.matchAll(REVISION_LINE_RE)].length;
}

const RULES: readonly OfflineRule[] = [
  {
    name: 'boolean-required-skills',
    description:
      'A true/false question whether a quoted list of skills contains all of the "required skills" (and, when it asks, whether a quoted tone is professional): "true" iff every required skill appears in the list as a whole term, ignoring case, and the tone says "professional" but not "unprofessional"/"not professional"; else "false".',
    answer(p) {
      if (p.booleanAsk === undefined) return undefined;
      const required = /\brequired skills?\s*:?\s*(['"`])(.*?)\1/i.exec(p.prompt);
      if (!required) return undefined;
      const listed = /\bskills\s*(['"`])(.*?)\1/i.exec(p.prompt)?.[2] ?? p.prompt.slice(0, required.index);
      const skills = required[2]!.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
      let ok = containsAllSkills(listed, skills);
      const tone = /\btone\s*(['"`])(.*?)\1/i.exec(p.prompt);
      if (tone) ok &&= /\bprofessional\b/i.test(tone[2]!) && !/\b(?:un|non-?)professional\b|\bnot\s+professional\b/i.test(tone[2]!);
      return String(ok);
    },
  },
  {
    name: 'boolean-pii',
    description:
      'A true/false question about PII / personally identifiable information: "true" iff the text under analysis has an e-mail address, a phone number (7 to 15 digits with spaces, dots or dashes, an optional +country code and (area) code; ISO dates excluded) or a street address (a house number, one to three capitalised words and a street type: ' +
      `${list(STREET_SUFFIXES)}).`,
    answer: (p) => (p.booleanAsk !== undefined && /\bPII\b|personally identifiable/i.test(p.lead) ? String(hasPii(p.subject)) : undefined),
  },
  {
    name: 'boolean-spam',
    description: `A true/false question about spam: "true" iff the text under analysis has a link (http(s)://…, www.…, or a bare domain such as example.com that is not part of an e-mail address) or promotional language: ${list(SPAM_PHRASES)}.`,
    answer: (p) => (p.booleanAsk !== undefined && /\bspam\b/i.test(p.lead) ? String(isSpam(p.subject)) : undefined),
  },
  {
    name: 'boolean-sentiment',
    description: `A true/false question whether a text's sentiment is positive (or negative): counts positive words (${list(POSITIVE_WORDS)}) against negative words (${list(NEGATIVE_WORDS)}); a negator one or two words before (${list(NEGATORS)}) flips a word. "true" iff the asked-for side has strictly more.`,
    answer(p) {
      if (p.booleanAsk === undefined || !/\bsentiment\b/i.test(p.lead)) return undefined;
      const score = sentimentScore(p.subject);
      const asksNegative = /\bnegative\b/i.test(p.lead) && !/\bpositive\b/i.test(p.lead);
      return String(asksNegative ? score < 0 : score > 0);
    },
  },
  {
    name: 'boolean-default',
    description: 'Any other true/false question: the first of "true"/"false" the prompt names (usually "true").',
    answer: (p) => (p.booleanAsk === undefined ? undefined : (/\b(true|false)\b/i.exec(p.booleanAsk)?.[1]?.toLowerCase() ?? 'true')),
  },
  {
    name: 'choice-moderation-triage',
    description:
      'A choice among action codes given analysis lines "Hate Speech Level: x", "PII Found: y", "Spam Detected: z": applies the seed\'s own order: a severe level picks the code with "ban", PII "true" the one with "redact", spam "true" the one with "spam", else the one with "approve" (or the last code).',
    answer(p) {
      if (!p.choices) return undefined;
      const line = (label: string) => new RegExp(`^\\s*(?:[-*•]\\s*)?${label}\\s*:\\s*(.*)$`, 'im').exec(p.prompt)?.[1];
      const hate = line('hate[ _-]?speech(?:[ _-]?level)?');
      const pii = line('pii(?:[ _-]?found)?');
      const spam = line('spam(?:[ _-]?detected)?');
      if (hate === undefined && pii === undefined && spam === undefined) return undefined;
      const c = p.choices;
      if (hate !== undefined && /\bsevere\b/i.test(hate)) return choiceLike(c, /ban/i) ?? c[0];
      if (pii !== undefined && /\btrue\b/i.test(pii)) return choiceLike(c, /redact/i) ?? c[0];
      if (spam !== undefined && /\btrue\b/i.test(spam)) return choiceLike(c, /spam/i) ?? c[0];
      return choiceLike(c, /approve|allow|accept/i) ?? c.at(-1);
    },
  },
  {
    name: 'choice-hate-speech',
    description: `A choice of severity ('none' | 'moderate' | 'severe'): "severe" for threats and dehumanising words (${list(SEVERE_HATE_PHRASES)}), "moderate" for insults (${list(MODERATE_HATE_PHRASES)}), else "none".`,
    answer(p) {
      if (!p.choices || !choiceLike(p.choices, /^severe$/i)) return undefined;
      const level = hateSeverity(p.subject);
      return choiceLike(p.choices, new RegExp(`^${level}$`, 'i')) ?? p.choices[0];
    },
  },
  {
    name: 'choice-review-category',
    description: `A choice of review category ('Bug Report' | 'Feature Request' | 'General Feedback'): bug words (${list(BUG_PHRASES)}) pick the bug choice, request words (${list(FEATURE_REQUEST_PHRASES)}) the feature choice, else the general/feedback one.`,
    answer(p) {
      if (!p.choices) return undefined;
      const bug = choiceLike(p.choices, /\bbug/i);
      const feature = choiceLike(p.choices, /\bfeature|\brequest/i);
      if (!bug && !feature) return undefined;
      if (bug && BUG_RE.test(p.subject)) return bug;
      if (feature && FEATURE_RE.test(p.subject)) return feature;
      return choiceLike(p.choices, /general|feedback|other/i) ?? p.choices.find((c) => c !== bug && c !== feature) ?? p.choices[0];
    },
  },
  {
    name: 'choice-tone',
    description: `A choice of tone ('professional' | 'casual' | 'unprofessional'): rude words (${list(RUDE_PHRASES)}) give "unprofessional", casual markers (${list(CASUAL_MARKERS)}) give "casual", else "professional".`,
    answer(p) {
      if (!p.choices) return undefined;
      const professional = choiceLike(p.choices, /^professional$/i);
      if (!professional) return undefined;
      if (RUDE_RE.test(p.subject)) return choiceLike(p.choices, /unprofessional|rude/i) ?? professional;
      if (CASUAL_RE.test(p.subject)) return choiceLike(p.choices, /casual|informal/i) ?? professional;
      return professional;
    },
  },
  {
    name: 'choice-default',
    description: 'Any other choice among quoted options after "one of" / "single word" / "action codes": the first option.',
    answer: (p) => p.choices?.[0],
  },
  {
    name: 'generate-skills',
    description: `A request to extract (or list) skills: the known technical terms found in the text, comma-separated, in the order they first appear (${list(KNOWN_SKILLS)}); "[offline] no known skills found" when there is none. Not marked otherwise: it is an extract of the input, read by later prompts.`,
    answer(p) {
      if (!/\b(?:extract|list|find|identify)\b.*\bskills\b/i.test(p.lead)) return undefined;
      const skills = findSkills(p.subject);
      return skills.length > 0 ? skills.join(', ') : `${MARK}no known skills found`;
    },
  },
  {
    name: 'generate-summary',
    description: 'A request to summarize: "[offline] " and the first sentence of the text under analysis (at most 200 characters).',
    answer: (p) =>
      /\bsummari[sz]e\b/i.test(p.lead) ? MARK + (clip(firstSentence(p.subject), 200) || '(empty text)') : undefined,
  },
  {
    name: 'generate-redaction',
    description:
      'A request to replace PII with [REDACTED] (or to redact/remove/mask it): the text under analysis with every e-mail address, phone number and street address (as in boolean-pii) replaced by "[REDACTED]". Not marked: it is the input, edited.',
    answer(p) {
      const asks = /\[REDACTED\]/.test(p.lead) || /^\s*(?:please\s+)?(?:redact|remove|mask|strip)\b/i.test(p.lead);
      return asks && /\bPII\b|personal(?:ly identifiable)?\s+(?:information|data|details)/i.test(p.lead) ? redactPii(p.subject) : undefined;
    },
  },
  {
    name: 'generate-titles',
    description:
      'A request to suggest N titles (5 when no number is given, at most 20): N numbered lines "1. …", each a fixed pattern around the first six words of the post (a leading "[offline] " and a trailing hash are left out). Not marked: the lines must stay a plain numbered list.',
    answer(p) {
      if (!/\btitles?\b/i.test(p.lead) || !/\b(?:suggest|propose|generate|give|write|list|brainstorm|create)\b/i.test(p.lead)) {
        return undefined;
      }
      const n = TITLE_COUNT_RE.exec(p.lead)?.[1]?.toLowerCase();
      const parsed = n === undefined ? 5 : /^\d+$/.test(n) ? Number(n) : NUMBER_WORDS.indexOf(n);
      return titlesFor(p.subject, Math.min(Math.max(parsed, 1), MAX_TITLES));
    },
  },
  {
    name: 'generate-revision',
    description:
      'A request to revise (rewrite, improve) a text, the text after the first blank line: that text, then a line "[offline] Revision N: " and the request\'s first sentence (at most 160 characters), N being one more than the revision lines ("[offline] Revision k: …") the text already has. Not marked otherwise: it is the input, carried on.',
    answer(p) {
      if (!/^\s*(?:please\s+)?(?:revise|rewrite|improve)\b/i.test(p.lead) || !BLANK_LINE.test(p.prompt)) return undefined;
      const text = p.prompt.slice(BLANK_LINE.exec(p.prompt)!.index).trim();
      const n = revisionsIn(text) + 1;
      return `${text}\n${MARK}Revision ${n}: ${clip(firstSentence(p.head), 160)}`;
    },
  },
  {
    name: 'number-score',
    description:
      'A request to score (rate, grade) a text from 1 to 10 (or out of 10) that asks for only a number: a bare whole number, 6 plus 2 for each revision line ("[offline] Revision k: …", as generate-revision writes them) in the text after the first blank line, at most 10. Not a judgement of the text: it makes a loop that revises until a score is reached end after a known number of rounds (6, 8: the second round).',
    answer(p) {
      if (!/\b(?:score|rate|grade)\b/i.test(p.lead) || !SCALE_RE.test(p.head) || !NUMBER_ASK_RE.test(p.head)) return undefined;
      const blank = BLANK_LINE.exec(p.prompt);
      const text = blank ? p.prompt.slice(blank.index) : p.subject;
      return String(Math.min(10, 6 + 2 * revisionsIn(text)));
    },
  },
  {
    name: 'generate-echo',
    description:
      'Anything else: "[offline] ", the prompt\'s first instruction (its first non-empty line, cut after the first sentence, whitespace collapsed, at most 240 characters), and in parentheses the first 8 hex digits of the SHA-256 of the whole prompt, so different prompts give different texts.',
    answer(p) {
      const firstLine = p.prompt.split('\n').find((l) => l.trim() !== '') ?? '';
      const hash = createHash('sha256').update(p.prompt).digest('hex').slice(0, 8);
      return `${MARK}${clip(firstSentence(firstLine), 240) || '(empty prompt)'} (${hash})`;
    },
  },
];

/** Every rule of the offline provider, in the order they are tried, described in plain words. */
export const OFFLINE_RULES: ReadonlyArray<{ name: string; description: string }> = RULES.map(({ name, description }) => ({
  name,
  description,
}));

/** The offline answer to a prompt and the rule (a name from {@link OFFLINE_RULES}) that gave it. */
export interface OfflineAnswer {
  text: string;
  rule: string;
}

/** Answers `prompt` by the first matching rule of {@link OFFLINE_RULES}. Pure: same prompt, same answer. */
export function answerOffline(prompt: string): OfflineAnswer {
  const parts = readPrompt(prompt);
  for (const rule of RULES) {
    const text = rule.answer(parts);
    if (text !== undefined) return { text, rule: rule.name };
  }
  // Unreachable: generate-echo always answers. Kept so a future rule table cannot return nothing.
  return { text: MARK, rule: 'generate-echo' };
}

/** Rough token count: about four characters per token, as OpenAI's rule of thumb has it. */
function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/**
 * Creates the `offline` provider (model `offline-rules-1`): answers by {@link answerOffline}, with token
 * usage estimated as ceil(characters / 4). It never touches the network; only an aborted signal makes
 * it throw (with the signal's reason, as the other node kinds do).
 */
export function createOfflineProvider(): LlmProvider {
  return {
    name: 'offline',
    model: 'offline-rules-1',
    async complete(request: CompletionRequest): Promise<Completion> {
      request.signal.throwIfAborted();
      const { text } = answerOffline(request.prompt);
      return {
        text,
        model: 'offline-rules-1',
        usage: { promptTokens: estimateTokens(request.prompt), completionTokens: estimateTokens(text) },
      };
    },
  };
}
