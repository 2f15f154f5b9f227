import fc from 'fast-check';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parseJson, parseJsonStrict, readJsonStrictly } from '../../src/json.ts';

/** Every one-character key that JSON may write as an escape, as text and as meant (computed without JSON.parse). */
const ESCAPED: [text: string, meant: string][] = [
  ['\\n', '\n'],
  ['\\t', '\t'],
  ['\\r', '\r'],
  ['\\b', '\b'],
  ['\\f', '\f'],
  ['\\"', '"'],
  ['\\\\', '\\'],
  ['\\/', '/'],
  ['\\u0041', 'A'],
  ['\\u00e9', 'é'],
  ['\\u0000', '\u0000'],
];

/** -0 has no JSON text of its own. */
const noNegativeZero = (v: unknown): unknown =>
  Object.is(v, -0)
    ? 0
    : Array.isArray(v)
      ? v.map(noNegativeZero)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, noNegativeZero(x)]))
        : v;

describe('parseJson', () => {
  it('decodes an escaped key as written, where JSON.parse takes the key objects of that shape had before', () => {
    // V8 follows the one transition a shape has when the raw key text seems to match it:
    // a fresh first key per case gives each case a shape with exactly that one transition.
    let shape = 0;
    const cases: [before: string, text: string, meant: string][] = [
      ...ESCAPED.flatMap(([poison]) => ESCAPED.map(([text, meant]): [string, string, string] => [poison, text, meant])),
      ['ab\\\\', 'ab\\"', 'ab"'],
      ['\\\\x', '\\nx', '\nx'],
    ];
    for (const [before, text, meant] of cases) {
      const first = `shape${shape++}`;
      JSON.parse(`{"${first}": 0, "${before}": 0}`);
      const parsed = parseJson(`{"${first}": 1, "${text}": 1}`) as Record<string, unknown>;
      expect(Object.keys(parsed), `${before} then ${text}`).toEqual([first, meant]);
    }
  });

  it('reads any JSON text back to its value', () => {
    const key = fc.oneof(fc.string({ maxLength: 3 }), fc.constantFrom(...ESCAPED.map(([, meant]) => meant)));
    const value = fc
      .letrec((tie) => ({
        json: fc.oneof(
          { depthSize: 'small' },
          fc.jsonValue({ maxDepth: 1 }),
          fc.array(tie('json'), { maxLength: 3 }),
          fc.dictionary(key, tie('json'), { maxKeys: 3 }),
        ),
      }))
      .json.map(noNegativeZero);
    fc.assert(
      fc.property(value, (v) => {
        expect(parseJson(JSON.stringify(v))).toEqual(v);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps "__proto__" an own key, as JSON.parse does', () => {
    const parsed = parseJson('{"__proto__": {"polluted": true}, "\\n": 1}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(Object.keys(parsed)).toEqual(['__proto__', '\n']);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('throws a SyntaxError on text that is not JSON, on either path', () => {
    expect(() => parseJson('{"a": }')).toThrow(SyntaxError);
    expect(() => parseJson('{"\\n": }')).toThrow(SyntaxError);
  });

  it('is how pg reads json and jsonb columns in this process', () => {
    expect(pg.types.getTypeParser(pg.types.builtins.JSONB)).toBe(parseJson);
    expect(pg.types.getTypeParser(pg.types.builtins.JSON)).toBe(parseJson);
  });
});

describe('parseJsonStrict', () => {
  /** The strict reader alone (what parseJsonStrict answered before its JSON.parse fast path) is the reference. */
  const strictReader = readJsonStrictly;
  const key = fc.oneof(fc.constantFrom('a', 'b', '__proto__', ':', '"', '{', '[', '\\', '\n'), fc.string({ maxLength: 2 }));
  /** JSON text with objects written member by member, so a name may come twice; some texts are cut short or broken. */
  const text = fc
    .letrec((tie) => ({
      json: fc.oneof(
        { depthSize: 'small' },
        fc.jsonValue({ maxDepth: 0 }).map((v) => JSON.stringify(v)),
        fc.array(tie('json'), { maxLength: 3 }).map((items) => `[${items.join(',')}]`),
        fc.array(fc.tuple(key, tie('json')), { maxLength: 4 }).map((members) => `{${members.map(([k, v]) => `${JSON.stringify(k)} : ${v}`).join(', ')}}`),
      ),
    }))
    .json.chain((t) =>
      fc.oneof(
        fc.constant(t),
        fc.nat(t.length).map((cut) => t.slice(0, cut)),
        fc.constant(`${t}}`),
        fc.constant(` \n${t}\t`),
      ),
    );

  it('answers exactly as the strict reader: the same value, the same refusal and message', () => {
    fc.assert(
      fc.property(text, (t) => {
        expect(parseJsonStrict(t)).toEqual(strictReader(t));
      }),
      { numRuns: 3000 },
    );
  });

  it.each([
    ['{"a": 1, "a": 2}', true],
    ['{"x": {"a": 1, "b": {"a": 1}}, "y": [{"a": 1, "a": 1}]}', true],
    ['{"\\u0061": 1, "a": 2}', true],
    ['{"a:b": ":", "c": "\\":"}', false],
    [`${'['.repeat(20)}{"a": 1}${']'.repeat(20)}`, false],
    [`${'['.repeat(33)}1${']'.repeat(33)}`, false],
    ['{"__proto__": 1, "__proto__": 2}', true],
  ])('%s: a name given twice is refused (%s), and the rest as the strict reader reads it', (t, duplicate) => {
    const got = parseJsonStrict(t);
    expect(got).toEqual(strictReader(t));
    if (duplicate) expect(got).toMatchObject({ ok: false, duplicate: true });
  });
});
