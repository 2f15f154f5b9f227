import fc from 'fast-check';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { parseJson } from '../../src/json.ts';

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
