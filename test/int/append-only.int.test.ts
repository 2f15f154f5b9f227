import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/database.ts';
import { appendToStream, readStream } from '../../src/store/event-store.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
const stream = `key-${randomUUID()}`;
beforeAll(async () => {
  db = await createTestDatabase();
  // Rows for the refused statements to hit: the refusal must not depend on an empty table.
  await db.app.transaction().execute((trx) =>
    appendToStream(
      trx,
      stream,
      'no_stream',
      [
        { type: 'KeyCreated', data: { a: 1 } },
        { type: 'KeyDisabled', data: {} },
      ],
      new Date(),
    ),
  );
});
afterAll(() => db?.drop());

const MUTATIONS = [
  ['UPDATE', `UPDATE events SET type = 'Forged'`],
  ['UPDATE of one row', `UPDATE events SET data = '{}' WHERE stream_version = 1`],
  ['DELETE', 'DELETE FROM events'],
  ['DELETE of no row', 'DELETE FROM events WHERE false'],
  ['TRUNCATE', 'TRUNCATE events'],
] as const;

const run = (as: Db, statement: string) => sql.raw(statement).execute(as);

/** The log must read back exactly as appended after every refused statement. */
async function expectLogIntact(): Promise<void> {
  const events = await readStream(db.owner, stream);
  expect(events.map((e) => [e.streamVersion, e.type, e.data])).toEqual([
    [1n, 'KeyCreated', { a: 1 }],
    [2n, 'KeyDisabled', {}],
  ]);
}

describe('the app role', () => {
  it('is the role its sessions actually run as', async () => {
    const { rows } = await sql<{ current_user: string }>`select current_user`.execute(db.app);
    expect(rows[0]!.current_user).toBe('keyledger_app');
  });

  it.each(MUTATIONS)('has no privilege to %s events', async (_, statement) => {
    await expect(run(db.app, statement)).rejects.toMatchObject({
      code: '42501',
      message: 'permission denied for table events',
    });
    await expectLogIntact();
  });

  it.each([
    ['disable the trigger', 'ALTER TABLE events DISABLE TRIGGER events_append_only'],
    ['drop the trigger', 'DROP TRIGGER events_append_only ON events'],
  ])('cannot %s', async (_, statement) => {
    await expect(run(db.app, statement)).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/^must be owner of (table|relation) events$/),
    });
  });

  it('can append and read', async () => {
    const other = `key-${randomUUID()}`;
    await db.app.transaction().execute((trx) => appendToStream(trx, other, 'no_stream', [{ type: 'KeyCreated', data: {} }], new Date()));
    expect((await readStream(db.app, other)).map((e) => e.type)).toEqual(['KeyCreated']);
  });
});

describe('the owner', () => {
  it('has the privileges, so what stops it below is the trigger', async () => {
    const { rows } = await sql<{ ok: boolean }>`
      select has_table_privilege('events', 'UPDATE')
         and has_table_privilege('events', 'DELETE')
         and has_table_privilege('events', 'TRUNCATE') as ok`.execute(db.owner);
    expect(rows[0]!.ok).toBe(true);
  });

  it.each(MUTATIONS)('is refused by the trigger to %s events', async (_, statement) => {
    const verb = statement.split(' ')[0];
    await expect(run(db.owner, statement)).rejects.toMatchObject({
      code: '42501',
      message: `the event log is append-only: ${verb} on events refused`,
    });
    await expectLogIntact();
  });

  it.each(MUTATIONS)('is refused to %s events even with triggers set to replica mode', async (_, statement) => {
    const verb = statement.split(' ')[0];
    // One session: the setting is per connection, and must not leak into the pool.
    await db.owner.connection().execute(async (session) => {
      await sql`set session_replication_role = replica`.execute(session);
      try {
        await expect(run(session, statement)).rejects.toMatchObject({
          message: `the event log is append-only: ${verb} on events refused`,
        });
      } finally {
        await sql`reset session_replication_role`.execute(session);
      }
    });
    await expectLogIntact();
  });
});
