import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalEvent, canonicalJson, CanonicalJsonError } from '../../src/domain/canonical-event.ts';

/** Object members in reverse order, with whitespace: another text of the same value. */
function restyle(v: unknown): string {
  if (Array.isArray(v)) return `[ ${v.map(restyle).join(' , ')} ]`;
  if (v !== null && typeof v === 'object')
    return `{ ${Object.entries(v)
      .reverse()
      .map(([k, x]) => `${JSON.stringify(k)} :\n${restyle(x)}`)
      .join(', ')} }`;
  return JSON.stringify(v);
}

describe('canonical JSON', () => {
  it('writes numbers as exact decimals, never through a double', () => {
    const cases: [string, string][] = [
      ['1.10', '1.1'],
      ['1E3', '1000'],
      ['-0', '0'],
      ['-0.0e5', '0'],
      ['0.000', '0'],
      ['1e-7', '0.0000001'],
      ['-12.5e-1', '-1.25'],
      ['12345678901234567890', '12345678901234567890'],
      ['9007199254740993', '9007199254740993'],
      ['0.1000000000000000055511151231257827', '0.1000000000000000055511151231257827'],
      ['100', '100'],
      ['1.5E+2', '150'],
    ];
    for (const [text, canonical] of cases) expect(canonicalJson(text), text).toBe(canonical);
    expect(canonicalJson('9007199254740993')).not.toBe(canonicalJson('9007199254740992'));
  });

  it('sorts members by UTF-16 code units and escapes as JSON.stringify', () => {
    expect(canonicalJson('{"b": 1, "a": {"\\u00e9": "\\n\\u0041", "z": [true, false, null]}, "\\ud83d\\ude00": 0, "\\ufb33": 0}')).toBe(
      '{"a":{"z":[true,false,null],"\u00e9":"\\nA"},"b":1,"\ud83d\ude00":0,"\ufb33":0}',
    );
  });

  it('gives one text per value, whatever the order and spacing, and reads back as the value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const c = canonicalJson(JSON.stringify(v));
        expect(canonicalJson(restyle(v))).toBe(c);
        expect(canonicalJson(c)).toBe(c);
        expect(c).not.toMatch(/\s(?=(?:[^"\\]|\\.|"(?:[^"\\]|\\.)*")*$)/);
        expect(JSON.parse(c)).toEqual(JSON.parse(JSON.stringify(v)));
      }),
      { numRuns: 500 },
    );
  });

  it('refuses what has no one canonical reading', () => {
    for (const bad of ['{"a":1,"a":2}', '{"a":1', '01', '1.', '"\u0001"', '"\\x"', '[1,]', '1e5000', 'nul', '{} x']) {
      expect(() => canonicalJson(bad), bad).toThrow(CanonicalJsonError);
    }
  });
});

describe('canonical event', () => {
  it("is one canonical JSON object of the event's fields, time to the microsecond", () => {
    const text = canonicalEvent({
      eventId: '00000000-0000-4000-8000-000000000001',
      streamId: 'key-1',
      streamVersion: 3n,
      type: 'KeyCreated',
      dataJson: '{"policy": {"b": 2, "a": 1.0}}',
      metadataJson: '{}',
      recordedAt: new Date('2026-12-05T03:04:05.123Z'),
    });
    expect(text).toBe(
      '{"data":{"policy":{"a":1,"b":2}},"eventId":"00000000-0000-4000-8000-000000000001","metadata":{},' +
        '"recordedAt":"2026-12-05T03:04:05.123000Z","streamId":"key-1","streamVersion":"3","type":"KeyCreated"}',
    );
    expect(canonicalJson(text)).toBe(text);
    expect(() =>
      canonicalEvent({ eventId: 'x', streamId: 's', streamVersion: 1n, type: 't', dataJson: '{}', metadataJson: '{}', recordedAt: '2026-12-05 03:04:05' }),
    ).toThrow(CanonicalJsonError);
  });
});
