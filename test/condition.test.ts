import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { parseCondition, ConditionError, type ConditionReads, type ConditionRoot, type ConditionScope } from '../src/blueprint/condition.js';
import { SwitchyardError, ErrorCodes } from '../src/errors.js';

const scope: ConditionScope = {
  context: {
    user: { name: 'Ada', age: 36, tags: ['a', 'b'], address: null },
    'user-name': 'x',
    count: 3,
    zero: 0,
    empty: '',
    flag: true,
    numStr: '3',
    nan: NaN,
    list: [10, 20, { id: 'x' }],
    nested: { deep: { deeper: { value: 42 } } },
  },
  outputs: { classify: { label: 'spam', score: 0.9 }, fetch: null },
  output: { score: 0.7, items: [1, 2, 3], text: 'hello' },
  action: 'approve',
};

/** Parses `source` and returns the ConditionError it throws (failing the test if it does not). */
function parseError(source: string, roots?: readonly ConditionRoot[]): ConditionError {
  try {
    parseCondition(source, roots ? { roots } : undefined);
  } catch (err) {
    expect(err).toBeInstanceOf(ConditionError);
    return err as ConditionError;
  }
  throw new Error(`expected ${JSON.stringify(source)} to fail to parse`);
}

describe('parseCondition: values', () => {
  const cases: Array<[string, unknown]> = [
    // literals
    ['true', true],
    ['false', false],
    ['null', null],
    ['42', 42],
    ['1.5e2', 150],
    ['2.5E-1', 0.25],
    [String.raw`"a\"b" == 'a"b'`, true],
    [String.raw`'it\'s'`, "it's"],
    [String.raw`"tab\tx\nline\r\\"`, 'tab\tx\nline\r\\'],
    [String.raw`"\u0041\u00e9" == "Aé"`, true],
    // paths
    ['context.user.name', 'Ada'],
    ['context.user.tags[1]', 'b'],
    ['context["user-name"] == "x"', true],
    ["context['user-name']", 'x'],
    ['context.list[2].id', 'x'],
    ['context.list[2]["id"] == "x"', true],
    ['context.list[5]', undefined],
    ['context.nested.deep.deeper.value == 42', true],
    ['  context . count\n==\t3 ', true],
    // missing keys and null
    ['context.missing', undefined],
    ['context.missing == null', true],
    ['context.missing != null', false],
    ['context.missing.deeper.still', undefined],
    ['context.user.address == null', true],
    ['context.user.address.street', undefined],
    ['outputs.fetch == null', true],
    ['outputs.nope == null', true],
    ['context == null', false],
    ['context[0]', undefined],
    // own data only: inherited members and properties of primitives are not visible
    ['context.toString', undefined],
    ['context.hasOwnProperty == null', true],
    ['context.user.tags.map', undefined],
    ['output.items.length == 3', true],
    ['output.text.length', undefined],
    ['action.length', undefined],
    // equality is strict
    ['context.count == 3', true],
    ['context.numStr == 3', false],
    ['context.flag == 1', false],
    ['context.zero == false', false],
    ['context.nan == context.nan', false],
    ['context.nan != context.nan', true],
    ['null == context.missing', true],
    // comparisons need matching types
    ['context.count < 4', true],
    ['context.count >= 3', true],
    ['context.count > 3', false],
    ['context.count <= 2', false],
    ['context.numStr < 4', false],
    ['context.numStr >= "3"', true],
    ['"a" < "b"', true],
    ['"10" < "9"', true],
    ['context.missing < 1', false],
    ['null >= 0', false],
    ['true > false', false],
    // unary
    ['-context.count', -3],
    ['-context.user.name', undefined],
    ['-context.user.name == null', true],
    ['--1', 1],
    ['-1 < 0', true],
    ['-(1)', -1],
    ['!context.zero', true],
    ['!context.empty', true],
    ['!(context.count)', false],
    ['!!context.user', true],
    ['!(context.count == 3)', false],
    ['!context.missing', true],
    // precedence
    ['true || false && false', true],
    ['(true || false) && false', false],
    ['context.count == 3 && context.flag', true],
    ['1 < 2 == true', true],
    ['!context.flag || context.count == 3', true],
    ['!context.flag == false', true],
    ['-1 < 0 && 2 > 1 || false', true],
    // short-circuit, and the result is always a boolean
    ['context.zero && context.missing.x', false],
    ['context.flag || context.missing', true],
    ['context.user.name || false', true],
    ['context.count && context.user.name', true],
    ['context.empty || context.zero', false],
    // the canonical edge condition
    ['action == "approve" && output.score >= 0.5', true],
    ['action == "reject" || output.score < 0.5', false],
    ['outputs.classify.label == "spam" && outputs["classify"].score > 0.8', true],
  ];

  it.each(cases)('%s', (source, expected) => {
    const condition = parseCondition(source);
    expect(condition.source).toBe(source);
    expect(condition.value(scope)).toStrictEqual(expected);
    expect(condition.evaluate(scope)).toBe(Boolean(expected));
  });

  it('evaluates against the bare roots', () => {
    expect(parseCondition('output').value(scope)).toBe(scope.output);
    expect(parseCondition('action').value({ context: {}, outputs: {} })).toBeUndefined();
    expect(parseCondition('output == null').evaluate({ context: {}, outputs: {} })).toBe(true);
  });
});

describe('parseCondition: reads', () => {
  const none: ConditionReads = { context: [], outputs: [], wholeContext: false, wholeOutputs: false };
  const cases: Array<[string, ConditionReads]> = [
    ['context.a && context.b.c', { ...none, context: ['a', 'b'] }],
    ['context["user-name"] == context.a || context.a || context["a"]', { ...none, context: ['user-name', 'a'] }],
    ['outputs.classify.label == "x" && outputs["fetch"] != null', { ...none, outputs: ['classify', 'fetch'] }],
    ['context == null', { ...none, wholeContext: true }],
    ['context[0] && context.a', { ...none, context: ['a'], wholeContext: true }],
    ['!outputs', { ...none, wholeOutputs: true }],
    ['output.x && action == "y" && output["context"]', none],
    ['"context.a" == "outputs.b"', none],
    ['(context.x.y[0] == 1) && -outputs.n.score < 0', { ...none, context: ['x'], outputs: ['n'] }],
  ];

  it.each(cases)('%s', (source, expected) => {
    expect(parseCondition(source).reads).toEqual(expected);
  });
});

describe('parseCondition: errors', () => {
  const cases: Array<[string, string]> = [
    ['', 'empty condition'],
    [' \n\t ', 'empty condition'],
    ['foo', 'unknown name "foo" at column 1 (did you mean context.foo?)'],
    ['context.a == bar', 'unknown name "bar" at column 14 (did you mean context.bar?)'],
    ['a and b', 'unknown name "a" at column 1 (did you mean context.a?)'],
    ['context.a and true', 'unexpected "and" at column 11'],
    ['undefined', 'unknown name "undefined" at column 1 (did you mean null?)'],
    ['Context.a', 'unknown name "Context" at column 1 (did you mean context?)'],
    ['context.__proto__', '"__proto__" is not allowed at column 9'],
    ['context["constructor"]', '"constructor" is not allowed at column 9'],
    ['output.x.prototype', '"prototype" is not allowed at column 10'],
    [String.raw`context["\u005f_proto__"].polluted`, '"__proto__" is not allowed at column 9'],
    ['context.a == "abc', 'unterminated string at column 14'],
    [String.raw`"abc\"`, 'unterminated string at column 1'],
    [String.raw`"a\x"`, String.raw`invalid escape "\x" at column 3`],
    [String.raw`"\u12g4"`, String.raw`invalid \u escape (expected 4 hex digits) at column 2`],
    ['context.a == (1', 'expected ")" at column 16'],
    ['(context.a == 1))', 'unexpected ")" at column 17'],
    ['()', 'unexpected ")" at column 2'],
    ['context.a ==', 'unexpected end of condition at column 13'],
    ['!', 'unexpected end of condition at column 2'],
    ['context.a = 1', 'unexpected "=" at column 11 (did you mean "=="?)'],
    ['context.a & context.b', 'unexpected "&" at column 11 (did you mean "&&"?)'],
    ['context.a | context.b', 'unexpected "|" at column 11 (did you mean "||"?)'],
    ['context.a === 1', '"===" is not supported at column 11 (use "==", which is already strict)'],
    ['context.a !== 1', '"!==" is not supported at column 11 (use "!=", which is already strict)'],
    ['context.a # x', 'unexpected character "#" at column 11'],
    ['context.a + 1', 'unexpected character "+" at column 11'],
    ['context.é', 'unexpected character "é" at column 9'],
    ['é == 1', 'unexpected character "é" at column 1'],
    ['true \u0001', 'unexpected character U+0001 at column 6'],
    ['"a\\\n"', 'invalid escape "\\" followed by U+000A at column 3'],
    ['context.', 'expected a name after "." at column 9'],
    ['context.1', 'expected a name after "." at column 9'],
    ['context[context.a]', 'expected a string or a non-negative integer inside "[]" at column 9'],
    ['context[-1]', 'expected a string or a non-negative integer inside "[]" at column 9'],
    ['context[1.5]', 'expected a string or a non-negative integer inside "[]" at column 9'],
    ['context[1e3]', 'expected a string or a non-negative integer inside "[]" at column 9'],
    ['context["a"', 'expected "]" at column 12'],
    ['context["a" "b"]', 'expected "]" at column 13'],
    ['1abc', 'invalid number at column 1'],
    ['1e', 'invalid number at column 1'],
    ['context.a context.b', 'unexpected "context" at column 11'],
    ['context.a 1', 'unexpected number 1 at column 11'],
    ['context.a "x"', 'unexpected string at column 11'],
    ['"a".length', 'unexpected "." at column 4'],
    ['(output).x', 'unexpected "." at column 9'],
    ['.5', 'unexpected "." at column 1'],
  ];

  it.each(cases)('%j', (source, message) => {
    const err = parseError(source);
    expect(err.message).toBe(message);
    expect(err.message).not.toContain('\n');
    expect(err).toBeInstanceOf(SwitchyardError);
    expect(err.code).toBe(ErrorCodes.CONDITION);
    expect(err.name).toBe('ConditionError');
    const column = /at column (\d+)/.exec(message);
    expect(err.position).toBe(column ? Number(column[1]) - 1 : 0);
  });

  it('rejects roots that are not allowed and lists the available ones', () => {
    expect(parseError('action == "x"', ['context', 'outputs']).message).toBe(
      '"action" is not available here at column 1 (available: context, outputs)',
    );
    expect(parseError('context.a && output.b', ['context']).message).toBe(
      '"output" is not available here at column 14 (available: context)',
    );
    expect(parseError('foo', ['output']).message).toBe('unknown name "foo" at column 1 (available: output)');
    expect(parseError('output', []).message).toBe('"output" is not available here at column 1 (no names are available)');
    expect(parseCondition('output.ok', { roots: ['output'] }).evaluate({ context: {}, outputs: {}, output: { ok: 1 } })).toBe(true);
  });

  it('limits source length', () => {
    expect(() => parseCondition('1' + ' '.repeat(1_999))).not.toThrow();
    const err = parseError('1' + ' '.repeat(2_000));
    expect(err.message).toBe('condition is too long (more than 2000 characters) at column 2001');
  });

  it('limits nesting depth', () => {
    expect(parseCondition('('.repeat(64) + 'true' + ')'.repeat(64)).evaluate(scope)).toBe(true);
    expect(parseError('('.repeat(65) + 'true' + ')'.repeat(65)).message).toBe(
      'condition nests too deeply (more than 64 levels) at column 65',
    );
    expect(parseCondition('!'.repeat(64) + 'true').evaluate(scope)).toBe(true);
    expect(parseError('!'.repeat(65) + 'true').message).toMatch(/nests too deeply .* at column 65$/);
    expect(parseError('-'.repeat(40) + '('.repeat(40) + '1' + ')'.repeat(40)).message).toMatch(/nests too deeply/);
    // Long flat chains are not nesting and stay within the length limit.
    expect(parseCondition(Array.from({ length: 300 }, () => 'true').join('&&')).evaluate(scope)).toBe(true);
  });
});

describe('parseCondition: prototype safety', () => {
  it('cannot reach a JSON "__proto__" key or anything inherited', () => {
    const context = JSON.parse('{"__proto__": {"polluted": 1}, "a": 1}') as Record<string, unknown>;
    const s: ConditionScope = { context, outputs: {} };
    expect(parseCondition('context.polluted').value(s)).toBeUndefined();
    expect(parseCondition('context.a == 1').evaluate(s)).toBe(true);
    expect(parseCondition('context.valueOf == null && context.toString == null').evaluate(s)).toBe(true);
    expect(parseError('context.__proto__.polluted').message).toContain('"__proto__" is not allowed');
    expect(parseError("context['__proto__']").message).toContain('"__proto__" is not allowed');
  });

  it('never invokes getters, own or inherited', () => {
    let calls = 0;
    const trap = {
      get secret(): unknown {
        calls++;
        throw new Error('getter was invoked');
      },
    };
    class WithGetter {
      plain = 'yes';
      get derived(): unknown {
        calls++;
        return 'no';
      }
    }
    const arr: unknown[] = [1];
    Object.defineProperty(arr, '1', { get: () => { calls++; return 2; }, enumerable: true });
    const s: ConditionScope = { context: { trap, arr }, outputs: { w: new WithGetter() }, output: trap };
    for (const source of ['context.trap.secret', 'output.secret', 'outputs.w.derived', 'context.arr[1]', 'output["secret"]']) {
      expect(parseCondition(source).value(s)).toBeUndefined();
      expect(parseCondition(`${source} == null`).evaluate(s)).toBe(true);
    }
    expect(parseCondition('outputs.w.plain == "yes" && context.arr[0] == 1').evaluate(s)).toBe(true);
    expect(calls).toBe(0);
  });

  it('does not throw on a Proxy whose traps throw', () => {
    const hostile = new Proxy({}, {
      getOwnPropertyDescriptor() {
        throw new Error('trap');
      },
    });
    const s: ConditionScope = { context: { hostile }, outputs: {} };
    expect(parseCondition('context.hostile.x').value(s)).toBeUndefined();
    expect(parseCondition('context.hostile.x == null').evaluate(s)).toBe(true);
  });

  it('leaves Object.prototype untouched after many evaluations', () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    const polluted = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 2}}}') as Record<string, unknown>;
    const sources = ['context.polluted', 'context.a.b.c == null', 'outputs.x[0]', '!context', 'output.polluted || context.polluted'];
    for (let i = 0; i < 200; i++) {
      for (const source of sources) parseCondition(source).evaluate({ context: polluted, outputs: polluted, output: polluted });
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before);
  });
});

describe('parseCondition: properties', () => {
  const fragments = [
    'context', 'outputs', 'output', 'action', 'foo', '.', '[', ']', '(', ')', '"a"', "'b'", '"', "'", '\\', '\\u',
    '0', '1.5', '1e3', '-', '!', '==', '!=', '<', '<=', '>', '>=', '&&', '||', '=', '&', '|', ' ', 'a', 'true', 'null',
    '__proto__', 'constructor', '#', '\n',
  ];
  const tokenSoup = fc.array(fc.constantFrom(...fragments), { maxLength: 30 }).map((parts) => parts.join(''));
  const anySource = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 40 }), tokenSoup);
  const key = fc.constantFrom('a', 'b', 'user-name', '0', '1', 'constructor', 'toString');
  const jsonScope = fc.record({
    context: fc.dictionary(key, fc.jsonValue({ maxDepth: 3 })),
    outputs: fc.dictionary(key, fc.jsonValue({ maxDepth: 3 })),
    output: fc.jsonValue({ maxDepth: 3 }),
    action: fc.option(fc.string({ maxLength: 5 }), { nil: undefined }),
  });

  it('throws nothing but ConditionError, whatever the input', () => {
    fc.assert(
      fc.property(anySource, (source) => {
        try {
          parseCondition(source);
        } catch (err) {
          if (!(err instanceof ConditionError)) throw err;
          expect(err.message).toMatch(/^(empty condition$|.* at column \d+)/);
          expect(err.message).not.toMatch(/[\n\r\u2028\u2029]/);
          expect(err.position).toBeGreaterThanOrEqual(0);
          expect(err.position).toBeLessThanOrEqual(source.length);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('never throws while evaluating against random JSON scopes', () => {
    const parsable = tokenSoup.filter((source) => {
      try {
        parseCondition(source);
        return true;
      } catch {
        return false;
      }
    });
    const fixed = fc.constantFrom(
      'context.a.b[0] == outputs["user-name"]', 'output[1].a < output[0]', '-output == -context.a', '!outputs.b || action >= "m"',
      'context[0].a && outputs.toString', 'context.a.b.c.d.e != null',
    );
    fc.assert(
      fc.property(fc.oneof(parsable, fixed), jsonScope, (source, s) => {
        const condition = parseCondition(source);
        expect(typeof condition.evaluate(s)).toBe('boolean');
        condition.value(s);
      }),
      { numRuns: 1_000 },
    );
  });
});
