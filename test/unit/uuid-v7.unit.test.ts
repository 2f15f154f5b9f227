import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { uuidV7, uuidV7From } from '../../src/domain/uuid-v7.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const timeOf = (id: string) => Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);
const unixMs = fc.integer({ min: 0, max: 2 ** 48 - 1 });
const v4 = fc.uuid({ version: 4 });

describe('uuidV7From', () => {
  it('puts the time in the first 48 bits, then version 7, and keeps the version 4 id’s random bits and variant', () => {
    expect(uuidV7From(0x0190_1234_5678, '0b1f4a9e-5c2d-4e3f-9a8b-7c6d5e4f3a2b')).toBe('01901234-5678-7e3f-9a8b-7c6d5e4f3a2b');
    fc.assert(
      fc.property(unixMs, v4, (ms, random) => {
        const id = uuidV7From(ms, random);
        expect(id).toMatch(V7);
        expect(timeOf(id)).toBe(ms);
        // Everything after the version nibble is the random id's: its 74 remaining random bits and its variant.
        expect(id.slice(15)).toBe(random.slice(15));
      }),
      { numRuns: 500 },
    );
  });

  it('sorts as its time does, as text and as a uuid (byte order): a later millisecond sorts after', () => {
    fc.assert(
      fc.property(unixMs, unixMs, v4, v4, (a, b, ra, rb) => {
        fc.pre(a !== b);
        const [x, y] = [uuidV7From(a, ra), uuidV7From(b, rb)];
        expect(x < y).toBe(a < b);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a time outside 48 bits, a fraction, and random bits that are not a version 4 uuid', () => {
    for (const ms of [-1, 2 ** 48, 1.5, Number.NaN]) expect(() => uuidV7From(ms, randomUUID())).toThrow(RangeError);
    for (const random of ['', 'not a uuid', '0b1f4a9e-5c2d-7e3f-9a8b-7c6d5e4f3a2b', '0b1f4a9e-5c2d-4e3f-ca8b-7c6d5e4f3a2b', randomUUID().toUpperCase()]) {
      expect(() => uuidV7From(0, random)).toThrow(RangeError);
    }
  });
});

describe('uuidV7', () => {
  it('carries the wall clock’s time, and two ids are never the same', () => {
    const before = Date.now();
    const ids = Array.from({ length: 1000 }, () => uuidV7());
    const after = Date.now();
    for (const id of ids) {
      expect(id).toMatch(V7);
      expect(timeOf(id)).toBeGreaterThanOrEqual(before);
      expect(timeOf(id)).toBeLessThanOrEqual(after);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });
});
