import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isStrictBase64 } from '../../src/domain/base64.ts';

const REFERENCE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

describe('isStrictBase64', () => {
  it('answers as the strict base64 regular expression, on base64 of any bytes and on near misses', () => {
    const near = fc.string({ unit: fc.constantFrom('A', 'z', '0', '+', '/', '=', '-', '_', ' ', '\n', 'é', '\u0100'), maxLength: 14 });
    const encoded = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64'));
    fc.assert(
      fc.property(fc.oneof(near, encoded, fc.string({ maxLength: 12 })), (text) => isStrictBase64(text) === REFERENCE.test(text)),
      { numRuns: 20_000 },
    );
  });

  it('takes padded base64 and refuses the rest', () => {
    expect(['', 'AA==', 'AAA=', 'AAAA', 'AAECAw=='].map(isStrictBase64)).toEqual([true, true, true, true, true]);
    expect(['A', 'AA', 'AA=', '====', 'A===', '=AAA', 'AA=A', 'AA-_', 'AA A', 'AAAA\n'].map(isStrictBase64)).toEqual(Array(10).fill(false));
  });
});
