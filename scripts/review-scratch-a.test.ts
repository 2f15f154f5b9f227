import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestContext } from '../src/service/context.ts';
import { withPooledClient } from '../src/store/database.ts';
import { copyRow } from '../src/store/postgres-text.ts';
import { replayProjections } from '../src/store/replay.ts';
import { createTestApp, type TestApp } from '../test/support/app.ts';

let t: TestApp;
let ctx: RequestContext;
beforeAll(async () => {
  t = await createTestApp();
  ctx = await t.ctx(await t.newAccount('scratch'));
});
afterAll(() => t?.close());

describe('scratch', () => {
  it('pg semantics', async () => {
    const { rows } = await sql<any>`SELECT ('x' || chr(9))::char(12) = 'x'::char(12) AS tab_eq, ('x' || chr(160))::char(12) = 'x'::char(12) AS nbsp_eq,
      'null'::jsonb IS NOT DISTINCT FROM NULL::jsonb AS jnull, '1.0000000000000001'::jsonb = '1'::jsonb AS jnum`.execute(t.db.owner);
    console.log('PG', rows[0]);
  });
  it('copy jsonb with \\v key', async () => {
    await withPooledClient(t.db.owner, async (client) => {
      await client.query('CREATE TEMP TABLE c (doc jsonb)');
      const doc = { '': false, '\u000b': false };
      const line = copyRow([doc]);
      console.log('LINE', JSON.stringify(line));
      await pipeline(Readable.from([line]), client.query(copyFrom('COPY c (doc) FROM STDIN')));
      const r = await client.query('SELECT doc, doc::text AS t FROM c');
      console.log('BACK', JSON.stringify(r.rows));
      const r2 = await client.query(`SELECT $1::jsonb::text AS t`, [JSON.stringify(doc)]);
      console.log('DIRECT', JSON.stringify(r2.rows));
    });
  });
  it('verify misses jsonb null vs SQL NULL', async () => {
    const req = () => ({ ...ctx, requestId: crypto.randomUUID() });
    const key = (await t.app.kms.createKey(req(), { description: 'x' })).keyMetadata;
    const grantee = await t.newUser(ctx.caller.accountId, `g-${crypto.randomUUID().slice(0, 8)}`);
    const { grantId } = await t.app.grants.createGrant(req(), { keyId: key.keyId, granteePrincipal: grantee.principalArn, operations: ['Decrypt'] });
    expect((await replayProjections(t.db.owner, { verify: true })).differences).toEqual([]);
    await sql.raw(`UPDATE grants SET constraints = 'null'::jsonb WHERE grant_id = '${grantId}'`).execute(t.db.owner);
    const { rows } = await sql<any>`SELECT count(*) FILTER (WHERE constraints IS NULL) AS sqlnull, count(*) AS n FROM grants`.execute(t.db.owner);
    console.log('GRANTS', rows[0]);
    console.log('VERIFY jsonb null', (await replayProjections(t.db.owner, { verify: true })).differences);
  });
});
