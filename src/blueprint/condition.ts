/**
 * A small, safe expression language for edge conditions and route rules, e.g.
 * `action == "approve" && output.score >= 0.5`.
 *
 * Blueprints are data that may come from people we do not fully trust, so conditions are never handed
 * to `eval`/`new Function`. A hand-written tokenizer and Pratt parser build an AST once, and evaluation
 * walks it, reading only own data properties so no getter, method or prototype is ever reached.
 */
import { SwitchyardError, ErrorCodes } from '../errors.js';

/** The names a condition may start from. */
export type ConditionRoot = 'context' | 'outputs' | 'output' | 'action';

/** The values a condition is evaluated against. */
export interface ConditionScope {
  context: Readonly<Record<string, unknown>>;
  outputs: Readonly<Record<string, unknown>>;
  output?: unknown;
  action?: string;
}

/**
 * What a condition reads, found statically: the context keys and output names it names directly, and
 * whether it uses `context` / `outputs` as a whole (then any key may matter).
 */
export interface ConditionReads {
  context: string[];
  outputs: string[];
  wholeContext: boolean;
  wholeOutputs: boolean;
}

/** A condition failed to parse. The message names the problem and its 1-based column. */
export class ConditionError extends SwitchyardError {
  /** 0-based offset into the source (the message shows it as a 1-based column). */
  readonly position: number;
  constructor(message: string, position: number) {
    super(ErrorCodes.CONDITION, message);
    this.name = 'ConditionError';
    this.position = position;
  }
}

/** A parsed condition; safe to keep and evaluate many times. */
export interface Condition {
  readonly source: string;
  readonly reads: ConditionReads;
  /** The truthiness of {@link Condition.value}. Never throws. */
  evaluate(scope: ConditionScope): boolean;
  /** the raw value, before truthiness */
  value(scope: ConditionScope): unknown;
}

const ALL_ROOTS: readonly ConditionRoot[] = ['context', 'outputs', 'output', 'action'];
const MAX_SOURCE_LENGTH = 2_000;
const MAX_DEPTH = 64;
// These are the property names that lead to prototypes; own-data reads already avoid them, but
// rejecting them at parse time gives authors a clear message instead of a silent `undefined`.
const FORBIDDEN_NAMES = new Set(['__proto__', 'constructor', 'prototype']);
// Captured once so later monkey-patching of globals cannot change what evaluation does.
const getOwnDescriptor = Object.getOwnPropertyDescriptor;
const hasOwn = Object.hasOwn;

type BinaryOp = '||' | '&&' | '==' | '!=' | '<' | '<=' | '>' | '>=';
const PRECEDENCE: Readonly<Record<BinaryOp, number>> = {
  '||': 1, '&&': 2, '==': 3, '!=': 3, '<': 4, '<=': 4, '>': 4, '>=': 4,
};
// Longest first, so `<=` wins over `<`.
const OPERATORS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '-', '.', '[', ']', '(', ')'] as const;
const IDENT_START = /[A-Za-z_$]/;
const IDENT_PART = /[A-Za-z0-9_$]/;
const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\', "'": "'", '"': '"', n: '\n', t: '\t', r: '\r' };
const NUMBER = /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

type Token =
  | { kind: 'num'; pos: number; text: string; value: number }
  | { kind: 'str'; pos: number; text: string; value: string }
  | { kind: 'name'; pos: number; text: string }
  | { kind: 'op'; pos: number; text: string }
  | { kind: 'eof'; pos: number; text: '' };

type Node =
  | { kind: 'literal'; value: string | number | boolean | null }
  | { kind: 'root'; name: ConditionRoot }
  | { kind: 'member'; object: Node; key: string }
  | { kind: 'unary'; op: '!' | '-'; operand: Node }
  | { kind: 'binary'; op: BinaryOp; left: Node; right: Node };

/** Throws a ConditionError; the optional hint goes after the column so the message reads naturally. */
function fail(message: string, pos: number, hint?: string): never {
  throw new ConditionError(`${message} at column ${pos + 1}${hint === undefined ? '' : ` (${hint})`}`, pos);
}

/** Splits the source into tokens; the last one is always `eof`. */
function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') { i++; continue; }
    const start = i;
    if (ch === '"' || ch === "'") {
      const [value, end] = readString(src, i);
      tokens.push({ kind: 'str', pos: start, text: src.slice(start, end), value });
      i = end;
    } else if (ch >= '0' && ch <= '9') {
      NUMBER.lastIndex = i;
      const text = NUMBER.exec(src)![0];
      i += text.length;
      // `1abc` or `1e` is almost certainly a typo; reading it as `1` then a name would hide that.
      if (i < src.length && IDENT_PART.test(src[i]!)) fail('invalid number', start);
      tokens.push({ kind: 'num', pos: start, text, value: Number(text) });
    } else if (IDENT_START.test(ch)) {
      while (i < src.length && IDENT_PART.test(src[i]!)) i++;
      tokens.push({ kind: 'name', pos: start, text: src.slice(start, i) });
    } else {
      const three = src.slice(i, i + 3);
      if (three === '===' || three === '!==') {
        fail(`"${three}" is not supported`, i, `use "${three.slice(0, 2)}", which is already strict`);
      }
      const op = OPERATORS.find((o) => src.startsWith(o, i));
      if (op === undefined) {
        // A lone `=`, `&` or `|` is nearly always a typo for the doubled operator.
        const doubled = ch === '=' || ch === '&' || ch === '|';
        if (doubled) fail(`unexpected "${ch}"`, i, `did you mean "${ch === '=' ? '==' : ch + ch}"?`);
        fail(`unexpected character ${showChar(String.fromCodePoint(src.codePointAt(i)!))}`, i);
      }
      tokens.push({ kind: 'op', pos: i, text: op });
      i += op.length;
    }
  }
  tokens.push({ kind: 'eof', pos: src.length, text: '' });
  return tokens;
}

/** Reads a quoted string starting at `start`; returns its value and the index after the closing quote. */
function readString(src: string, start: number): [string, number] {
  const quote = src[start];
  let out = '';
  let i = start + 1;
  while (i < src.length) {
    const ch = src[i]!;
    if (ch === quote) return [out, i + 1];
    if (ch !== '\\') { out += ch; i++; continue; }
    const esc = src[i + 1];
    if (esc !== undefined && hasOwn(ESCAPES, esc)) { out += ESCAPES[esc]; i += 2; continue; }
    if (esc === 'u') {
      const hex = src.slice(i + 2, i + 6);
      if (!/^[0-9A-Fa-f]{4}$/.test(hex)) fail('invalid \\u escape (expected 4 hex digits)', i);
      out += String.fromCharCode(parseInt(hex, 16));
      i += 6;
      continue;
    }
    if (esc === undefined) break;
    fail(isPrintable(esc) ? `invalid escape "\\${esc}"` : `invalid escape "\\" followed by ${showChar(esc)}`, i);
  }
  return fail('unterminated string', start);
}

function isPrintable(ch: string): boolean {
  return /^[^\p{C}\p{Z}]$/u.test(ch);
}

/** Messages must stay on one line, so control characters, separators and the like are shown as `U+XXXX`. */
function showChar(ch: string): string {
  return isPrintable(ch) ? `"${ch}"` : `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

function describe(tok: Token): string {
  switch (tok.kind) {
    case 'str': return 'string';
    case 'num': return `number ${tok.text}`;
    case 'eof': return 'end of condition';
    default: return `"${tok.text}"`;
  }
}

class Parser {
  private readonly tokens: Token[];
  private index = 0;
  private depth = 0;
  readonly reads = { context: new Set<string>(), outputs: new Set<string>(), wholeContext: false, wholeOutputs: false };

  constructor(src: string, private readonly roots: readonly ConditionRoot[]) {
    this.tokens = tokenize(src);
  }

  parse(): Node {
    const node = this.parseBinary(1);
    const tok = this.peek();
    if (tok.kind !== 'eof') fail(`unexpected ${describe(tok)}`, tok.pos);
    return node;
  }

  private peek(): Token {
    return this.tokens[this.index]!;
  }

  /** Consumes a token; `eof` is never consumed, so every error can point at a real position. */
  private next(): Token {
    const tok = this.peek();
    if (tok.kind !== 'eof') this.index++;
    return tok;
  }

  private isOp(text: string): boolean {
    return this.peek().kind === 'op' && this.peek().text === text;
  }

  private expectOp(text: string): void {
    const tok = this.next();
    if (tok.kind !== 'op' || tok.text !== text) fail(`expected "${text}"`, tok.pos);
  }

  /** Guards the recursive paths (parentheses, unary operators) so deep input cannot exhaust the stack. */
  private nested<T>(pos: number, fn: () => T): T {
    if (++this.depth > MAX_DEPTH) fail(`condition nests too deeply (more than ${MAX_DEPTH} levels)`, pos);
    const result = fn();
    this.depth--;
    return result;
  }

  /** Pratt loop: binds operators at or above `minPrec`; all binary operators are left-associative. */
  private parseBinary(minPrec: number): Node {
    let left = this.parseUnary();
    for (;;) {
      const tok = this.peek();
      const prec = tok.kind === 'op' ? PRECEDENCE[tok.text as BinaryOp] : undefined;
      if (prec === undefined || prec < minPrec) return left;
      this.next();
      const right = this.parseBinary(prec + 1);
      left = { kind: 'binary', op: tok.text as BinaryOp, left, right };
    }
  }

  private parseUnary(): Node {
    const tok = this.peek();
    if (tok.kind === 'op' && (tok.text === '!' || tok.text === '-')) {
      this.next();
      const op = tok.text;
      return this.nested(tok.pos, () => ({ kind: 'unary', op, operand: this.parseUnary() }));
    }
    return this.parsePrimary();
  }

  private parsePrimary(): Node {
    const tok = this.next();
    switch (tok.kind) {
      case 'num':
      case 'str':
        return { kind: 'literal', value: tok.value };
      case 'eof':
        return fail('unexpected end of condition', tok.pos);
      case 'op':
        if (tok.text !== '(') return fail(`unexpected "${tok.text}"`, tok.pos);
        return this.nested(tok.pos, () => {
          const inner = this.parseBinary(1);
          this.expectOp(')');
          return inner;
        });
      case 'name':
        if (tok.text === 'true') return { kind: 'literal', value: true };
        if (tok.text === 'false') return { kind: 'literal', value: false };
        if (tok.text === 'null') return { kind: 'literal', value: null };
        return this.parsePath(tok);
    }
  }

  private parsePath(tok: Token & { kind: 'name' }): Node {
    const name = tok.text;
    if (!(ALL_ROOTS as readonly string[]).includes(name)) fail(`unknown name "${name}"`, tok.pos, unknownNameHint(name, this.roots));
    const root = name as ConditionRoot;
    if (!this.roots.includes(root)) fail(`"${root}" is not available here`, tok.pos, available(this.roots));
    let node: Node = { kind: 'root', name: root };
    let first = true;
    while (this.isOp('.') || this.isOp('[')) {
      const { key, byName } = this.parseAccessor();
      if (first) this.noteRead(root, byName ? key : undefined);
      first = false;
      node = { kind: 'member', object: node, key };
    }
    if (first) this.noteRead(root, undefined);
    return node;
  }

  /** Parses `.name`, `["key"]` or `[0]`; `byName` is false for integer indexes. */
  private parseAccessor(): { key: string; byName: boolean } {
    if (this.next().text === '.') {
      const tok = this.next();
      if (tok.kind !== 'name') fail('expected a name after "."', tok.pos);
      return { key: checkName(tok.text, tok.pos), byName: true };
    }
    const tok = this.next();
    let result: { key: string; byName: boolean };
    if (tok.kind === 'str') {
      result = { key: checkName(tok.value, tok.pos), byName: true };
    } else if (tok.kind === 'num' && /^\d+$/.test(tok.text) && Number.isSafeInteger(tok.value)) {
      result = { key: String(tok.value), byName: false };
    } else {
      return fail('expected a string or a non-negative integer inside "[]"', tok.pos);
    }
    this.expectOp(']');
    return result;
  }

  private noteRead(root: ConditionRoot, key: string | undefined): void {
    if (root === 'context') {
      if (key === undefined) this.reads.wholeContext = true;
      else this.reads.context.add(key);
    } else if (root === 'outputs') {
      if (key === undefined) this.reads.wholeOutputs = true;
      else this.reads.outputs.add(key);
    }
  }
}

function checkName(name: string, pos: number): string {
  if (FORBIDDEN_NAMES.has(name)) fail(`"${name}" is not allowed`, pos);
  return name;
}

function available(roots: readonly ConditionRoot[]): string {
  return roots.length > 0 ? `available: ${roots.join(', ')}` : 'no names are available';
}

/** Most unknown names are context keys written without the prefix; a few are habits from other languages. */
function unknownNameHint(name: string, roots: readonly ConditionRoot[]): string {
  const lower = name.toLowerCase();
  const habits: Record<string, string> = { and: '&&', or: '||', not: '!', undefined: 'null', true: 'true', false: 'false', null: 'null' };
  if (hasOwn(habits, lower)) return `did you mean ${habits[lower]}?`;
  if ((roots as readonly string[]).includes(lower)) return `did you mean ${lower}?`;
  if (roots.includes('context')) return `did you mean context.${name}?`;
  return available(roots);
}

/**
 * Reads an own data property, or gives `undefined`. Getters are never invoked and prototypes never
 * consulted; the try/catch is for Proxy traps, the one way a descriptor lookup can throw.
 */
function readOwn(base: unknown, key: string): unknown {
  if (base === null || typeof base !== 'object') return undefined;
  try {
    const desc = getOwnDescriptor(base, key);
    return desc !== undefined && hasOwn(desc, 'value') ? desc.value : undefined;
  } catch {
    return undefined;
  }
}

function evaluateNode(node: Node, scope: ConditionScope): unknown {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'root':
      return scope[node.name];
    case 'member':
      return readOwn(evaluateNode(node.object, scope), node.key);
    case 'unary': {
      const v = evaluateNode(node.operand, scope);
      if (node.op === '!') return !v;
      return typeof v === 'number' ? -v : undefined;
    }
    case 'binary': {
      const left = evaluateNode(node.left, scope);
      // `&&` and `||` return booleans (not the operand, as JS does) so a condition's value is predictable.
      if (node.op === '&&') return Boolean(left) && Boolean(evaluateNode(node.right, scope));
      if (node.op === '||') return Boolean(left) || Boolean(evaluateNode(node.right, scope));
      const right = evaluateNode(node.right, scope);
      if (node.op === '==') return (left ?? null) === (right ?? null);
      if (node.op === '!=') return (left ?? null) !== (right ?? null);
      // No JS coercion: `null >= 0` or `"10" > 9` would otherwise be true.
      const comparable =
        (typeof left === 'number' && typeof right === 'number') || (typeof left === 'string' && typeof right === 'string');
      if (!comparable) return false;
      const [a, b] = [left as number | string, right as number | string];
      switch (node.op) {
        case '<': return a < b;
        case '<=': return a <= b;
        case '>': return a > b;
        case '>=': return a >= b;
      }
    }
  }
}

/**
 * Parses a condition. Throws {@link ConditionError} with the column of the problem.
 *
 * @param options.roots - the names the condition may use. @default all four: context, outputs, output, action
 */
export function parseCondition(source: string, options: { roots?: readonly ConditionRoot[] } = {}): Condition {
  if (source.length > MAX_SOURCE_LENGTH) fail(`condition is too long (more than ${MAX_SOURCE_LENGTH} characters)`, MAX_SOURCE_LENGTH);
  if (source.trim() === '') throw new ConditionError('empty condition', 0);
  const parser = new Parser(source, options.roots ?? ALL_ROOTS);
  const ast = parser.parse();
  const { reads } = parser;
  return {
    source,
    reads: {
      context: [...reads.context],
      outputs: [...reads.outputs],
      wholeContext: reads.wholeContext,
      wholeOutputs: reads.wholeOutputs,
    },
    evaluate: (scope) => Boolean(evaluateNode(ast, scope)),
    value: (scope) => evaluateNode(ast, scope),
  };
}
