import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, it, expect } from 'vitest';
import { withPooledClient } from '../src/store/database.ts';
import { copyRow } from '../src/store/postgres-text.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/database.ts';
let db: TestDatabase;
beforeAll(async () => { db = await createTestDatabase(); });
afterAll(() => db?.drop());
it('x', async () => {
  await withPooledClient(db.owner, async (client) => {
    await client.query('CREATE TABLE c (doc jsonb)');
    const doc = Object.assign(Object.create(null), { '': [], '\f': 0 });
    const line = copyRow([doc]);
    console.log('LINE', JSON.stringify(line));
    await pipeline(Readable.from([line]), client.query(copyFrom('COPY c (doc) FROM STDIN')));
    const r = await client.query('SELECT doc, doc::text AS t FROM c');
    console.log('BACK', JSON.stringify(r.rows), Object.keys(r.rows[0].doc));
    let err; try { expect(r.rows[0].doc).toEqual(doc); } catch (e) { err = String(e).slice(0, 300); }
    console.log('TOEQUAL', err ?? 'equal');
    const plain = { '': [], '\f': 0 };
    try { expect(r.rows[0].doc).toEqual(plain); console.log('plain equal'); } catch (e) { console.log('plain', String(e).slice(0, 200)); }
  });
});
