import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPooledClient } from '../src/store/database.ts';
import { copyRow } from '../src/store/postgres-text.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/database.ts';

// Postgres is the oracle: what it reads from our COPY text, and what it prints.
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** Any text Postgres can hold (no NUL), weighted towards the characters the formats escape or quote. */
const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: fc.constantFrom('\\', '\t', '\n', '\r', '\v', '\f', ' ', '"', ',', '{', '}', 'N', 'U', 'L', 'n', 'a', 'é', '🔑'), maxLength: 8 }),
  fc.constantFrom('', 'NULL', 'null', 'Null', '\\N'),
).filter((s) => !s.includes('\u0000'));
const instant = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true });

describe('repro', () => {
  it('copy roundtrip with seed', async () => {
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
      let last: any;
      const r = await fc.check(
        fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 5 }), async (rows) => {
          await client.query('TRUNCATE copied');
          await pipeline(Readable.from([rows.map((r) => copyRow(r)).join('')]), client.query(copyFrom('COPY copied (n, t, b, big, at, list, doc) FROM STDIN')));
          const back = await client.query<any>('SELECT n, t, b, big::text AS big, at, list, doc FROM copied ORDER BY ctid');
          last = { docs: rows.map((r) => r[6]), back: back.rows.map((r: any) => r.doc) };
          expect(back.rows.map((r: any) => [r.n, r.t, r.b, BigInt(r.big), r.at, r.list, r.doc])).toEqual(rows);
        }),
        { numRuns: 2000 },
      );
      if (r.failed) {
        const docs = (r.counterexample![0] as any[]).map((x) => x[6]);
        console.log('FAILDOCS', JSON.stringify(docs, (k, v) => v), docs.map((d: any) => d && Object.keys(d).map((k) => [...k].map((c) => c.codePointAt(0)!.toString(16)))));
        console.log('PROTO', docs.map((d: any) => d && Object.getPrototypeOf(d)));
      } else console.log('no failure');
    });
  });
});
