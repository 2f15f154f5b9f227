import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPooledClient } from '../../src/store/database.ts';
import { copyRow, postgresTextArray, postgresTimestamp } from '../../src/store/postgres-text.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

// Postgres is the oracle: what it reads from our COPY text, and what it prints.
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** Any text Postgres can hold (no NUL), weighted towards the characters the formats escape or quote. */
const text = fc
  .oneof(
    fc.string({ unit: 'grapheme', maxLength: 12 }),
    fc.string({ unit: fc.constantFrom('\\', '\t', '\n', '\r', '\v', '\f', ' ', '"', ',', '{', '}', 'N', 'U', 'L', 'n', 'a', 'é', '🔑'), maxLength: 8 }),
    fc.constantFrom('', 'NULL', 'null', 'Null', '\\N'),
  )
  .filter((s) => !s.includes('\u0000'));
const instant = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true });

describe('Postgres text formats', () => {
  it('prints a text[] as array_out does', async () => {
    await withPooledClient(db.owner, async (client) => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.option(text, { nil: null }), { maxLength: 5 }), async (items) => {
          const { rows } = await client.query<{ printed: string }>('SELECT $1::text[]::text AS printed', [items]);
          expect(postgresTextArray(items)).toBe(rows[0]!.printed);
        }),
        { numRuns: 300 },
      );
    });
  });

  it('prints a timestamptz as Postgres does in UTC with DateStyle ISO', async () => {
    await withPooledClient(db.owner, async (client) => {
      await client.query("BEGIN; SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO'");
      await fc.assert(
        fc.asyncProperty(instant, async (date) => {
          const { rows } = await client.query<{ printed: string }>('SELECT $1::timestamptz::text AS printed', [date.toISOString()]);
          expect(postgresTimestamp(date)).toBe(rows[0]!.printed);
        }),
        { numRuns: 300 },
      );
      // Fractions with trailing zeros, and none.
      for (const iso of ['2026-03-01T12:00:00.000Z', '2026-03-01T12:00:00.250Z', '2026-03-01T12:00:10.100Z', '2026-03-01T00:00:00.001Z']) {
        const { rows } = await client.query<{ printed: string }>('SELECT $1::timestamptz::text AS printed', [iso]);
        expect(postgresTimestamp(new Date(iso))).toBe(rows[0]!.printed);
      }
      await client.query('ROLLBACK');
    });
  });

  it('reads json, jsonb and arrays of them through parseJson, whatever JSON.parse met before', async () => {
    await withPooledClient(db.owner, async (client) => {
      // Each read gets a shape of its own: a first key of two bytes, fresh in this process (jsonb orders
      // keys by length in bytes, so it stays first), and an earlier object of that shape whose second key was
      // `ab\`, after which JSON.parse reads `ab"` as `ab\`. The earlier object is kept alive, so its
      // shape outlives any garbage collection meanwhile.
      let fresh = 0x41; // ~A, ~B, ...
      const read = async (cast: string): Promise<{ meant: string[]; got: unknown; poisoned: object }> => {
        const first = `~${String.fromCharCode(fresh++)}`;
        const poisoned = JSON.parse(JSON.stringify({ [first]: 0, 'ab\\': 0 })) as object;
        const { rows } = await client.query<{ v: unknown }>(`SELECT ${cast} AS v`, [JSON.stringify({ [first]: 1, 'ab"': 2 })]);
        return { meant: [first, 'ab"'].sort(), got: rows[0]!.v, poisoned };
      };
      const keys = (x: unknown) => Object.keys(x as object).sort();
      for (const cast of ['$1::json', '$1::jsonb']) {
        const { meant, got } = await read(cast);
        expect(keys(got), cast).toEqual(meant);
      }
      for (const cast of ['ARRAY[[$1::jsonb, NULL]]', 'ARRAY[[$1::json, NULL]]']) {
        const { meant, got, poisoned } = await read(cast);
        const [[element, missing]] = got as [[unknown, unknown]];
        expect(keys(element), cast).toEqual(meant);
        expect(missing).toBeNull();
        expect(keys(poisoned).length).toBe(2);
      }
    });
  });

  it('writes rows that COPY reads back as the same values', async () => {
    await withPooledClient(db.owner, async (client) => {
      await client.query('CREATE TABLE copied (n int, t text, b boolean, big bigint, at timestamptz, list text[], doc jsonb)');
      const row = fc.tuple(
        fc.integer(),
        fc.option(text, { nil: null }),
        fc.boolean(),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        instant,
        fc.array(fc.option(text, { nil: null }), { maxLength: 4 }),
        fc.option(fc.dictionary(text, fc.oneof(text, fc.integer(), fc.boolean(), fc.array(text, { maxLength: 2 }))), { nil: null }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 5 }), async (rows) => {
          await client.query('TRUNCATE copied');
          await pipeline(Readable.from([rows.map((r) => copyRow(r)).join('')]), client.query(copyFrom('COPY copied (n, t, b, big, at, list, doc) FROM STDIN')));
          const back = await client.query<{ n: number; t: string | null; b: boolean; big: string; at: Date; list: (string | null)[]; doc: unknown }>(
            'SELECT n, t, b, big::text AS big, at, list, doc FROM copied ORDER BY ctid',
          );
          expect(back.rows.map((r) => [r.n, r.t, r.b, BigInt(r.big), r.at, r.list, r.doc])).toEqual(rows);
        }),
        { numRuns: 200 },
      );
    });
  });
});
