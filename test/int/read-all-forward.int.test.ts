import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { appendToStream, LOG_START, readAllForward, type GlobalCheckpoint, type RecordedEvent } from '../../src/store/event-store.ts';
import { finish } from '../support/concurrency.ts';
import { adminQuery, createTestDatabase, databaseUrl, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const at = new Date('2025-01-02T03:04:05.678Z');

/** Appends one event of `type` to a new stream under `prefix`, in the caller's transaction or its own. */
async function appendOne(prefix: string, type: string, trx?: Parameters<typeof appendToStream>[0]): Promise<RecordedEvent> {
  const run = (t: Parameters<typeof appendToStream>[0]) => appendToStream(t, `${prefix}${randomUUID()}`, 'no_stream', [{ type, data: {} }], at);
  const { events } = trx ? await run(trx) : await db.app.transaction().execute(run);
  return events[0]!;
}

/**
 * A follower: reads one event at a time (so every step resumes from a
 * checkpoint) until it has `count` events, or gives up after a while.
 *
 * It polls because another test of this file may hold a transaction open in
 * this database for a moment (the horizon is per database: other test files'
 * transactions do not count). That only ever delays a follower, so waiting is
 * right for "eventually sees"; assertions that something is NOT yet visible
 * need no waiting.
 */
async function follow(prefix: string, after: GlobalCheckpoint, count: number): Promise<{ events: RecordedEvent[]; checkpoint: GlobalCheckpoint }> {
  const events: RecordedEvent[] = [];
  let checkpoint = after;
  const deadline = Date.now() + 10_000;
  while (events.length < count && Date.now() < deadline) {
    const batch = await readAllForward(db.app, { after: checkpoint, limit: 1, streamPrefixes: [prefix] });
    if (batch.length === 0) {
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    events.push(...batch);
    checkpoint = batch.at(-1)!;
  }
  return { events, checkpoint };
}

const types = (events: readonly RecordedEvent[]) => events.map((e) => e.type);

describe('readAllForward', () => {
  it('never skips an event a transaction inserted first but committed last', async () => {
    const prefix = `follow-${randomUUID()}/`;
    await appendOne(prefix, 'before');

    const long = await db.app.startTransaction().execute();
    try {
      const early = await appendOne(prefix, 'long', long);
      const late = await appendOne(prefix, 'short'); // commits while `long` is open
      // The scenario: the open transaction holds the lower position.
      expect(early.globalPosition).toBeLessThan(late.globalPosition);

      const first = await follow(prefix, LOG_START, 1);
      expect(types(first.events)).toEqual(['before']);

      // 'short' is committed and a plain position-ordered read sees it; a follower
      // that took it now would checkpoint past 'long' and never see 'long'.
      const committed = await db.app.selectFrom('events').select('type').where('stream_id', 'like', `${prefix}%`).orderBy('global_position').execute();
      expect(committed.map((r) => r.type)).toEqual(['before', 'short']);
      // ... so it must hold back everything from 'long' on while 'long' is open.
      expect(await readAllForward(db.app, { after: first.checkpoint, streamPrefixes: [prefix] })).toEqual([]);
      expect(await readAllForward(db.app, { after: LOG_START, streamPrefixes: [prefix] })).toHaveLength(1);

      await long.commit().execute();

      const rest = await follow(prefix, first.checkpoint, 2);
      expect(types(rest.events)).toEqual(['long', 'short']);
      expect(rest.events.map((e) => e.eventId)).toEqual([early.eventId, late.eventId]);
      // Exactly once: nothing more after the last checkpoint.
      expect(await readAllForward(db.app, { after: rest.checkpoint, streamPrefixes: [prefix] })).toEqual([]);
    } finally {
      await finish(long);
    }
  });

  it('is not held back by a transaction left open in another database of the cluster', async () => {
    const adminUrl = inject('adminDatabaseUrl');
    const name = `keyledger_test_elsewhere_${randomUUID().slice(0, 8)}`;
    await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
    const elsewhere = new pg.Client({ connectionString: databaseUrl(adminUrl, name) });
    await elsewhere.connect();
    try {
      // An open transaction with an id, and a lock in its own database only.
      await elsewhere.query('BEGIN');
      await elsewhere.query('CREATE TABLE held (x int)');
      const { rows } = await elsewhere.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid');
      const prefix = `elsewhere-${randomUUID()}/`;
      const mine = await appendOne(prefix, 'mine');
      // The cluster's xmin is at or below the other database's transaction, which began first...
      expect(BigInt(rows[0]!.xid)).toBeLessThan(mine.transactionId);
      // ... yet this database's follower reads its own committed event at once.
      expect(types(await readAllForward(db.app, { streamPrefixes: [prefix] }))).toEqual(['mine']);
    } finally {
      await elsewhere.query('ROLLBACK').catch(() => {});
      await elsewhere.end();
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });

  it('refuses to follow inside a REPEATABLE READ transaction (its snapshot would skip what commits meanwhile)', async () => {
    await expect(
      db.app
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute((trx) => readAllForward(trx, { streamPrefixes: [`rr-${randomUUID()}/`] })),
    ).rejects.toThrow(/READ COMMITTED/);
  });

  it('orders by transaction, so a later transaction’s lower position still comes after', async () => {
    const prefix = `order-${randomUUID()}/`;

    // `long` takes its transaction id first but inserts last, so its event has
    // the higher position and the lower transaction id.
    const long = await db.app.startTransaction().execute();
    try {
      await appendOne(`elsewhere-${randomUUID()}/`, 'take-xid', long); // assigns long's xid
      const short = await appendOne(prefix, 'short');
      const late = await appendOne(prefix, 'long', long);
      expect(late.globalPosition).toBeGreaterThan(short.globalPosition);
      expect(late.transactionId).toBeLessThan(short.transactionId);

      // 'short' sits behind long's transaction id: not readable yet.
      expect(await readAllForward(db.app, { streamPrefixes: [prefix] })).toEqual([]);

      await long.commit().execute();

      const all = await follow(prefix, LOG_START, 2);
      expect(types(all.events)).toEqual(['long', 'short']);
      expect(await readAllForward(db.app, { after: all.checkpoint, streamPrefixes: [prefix] })).toEqual([]);
    } finally {
      await finish(long);
    }
  });

  it('never reads an event of a transaction that rolled back, and goes on past it', async () => {
    const prefix = `rollback-${randomUUID()}/`;
    const aborted = await db.app.startTransaction().execute();
    try {
      await appendOne(prefix, 'aborted', aborted);
      await appendOne(prefix, 'kept');
      await aborted.rollback().execute();
    } finally {
      await finish(aborted);
    }

    const all = await follow(prefix, LOG_START, 1);
    expect(types(all.events)).toEqual(['kept']);
    expect(await readAllForward(db.app, { after: all.checkpoint, streamPrefixes: [prefix] })).toEqual([]);
  });

  it('pages through a multi-event transaction across checkpoints, each event once', async () => {
    const prefix = `page-${randomUUID()}/`;
    await db.app.transaction().execute(async (trx) => {
      for (const type of ['a', 'b', 'c', 'd', 'e']) await appendOne(prefix, type, trx);
    });

    const pages: string[][] = [];
    let checkpoint = LOG_START;
    await follow(prefix, LOG_START, 5); // wait until the horizon has passed them
    for (;;) {
      const batch = await readAllForward(db.app, { after: checkpoint, limit: 2, streamPrefixes: [prefix] });
      if (batch.length === 0) break;
      pages.push(types(batch));
      checkpoint = batch.at(-1)!;
    }
    expect(pages).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
  });

  it('filters by type and by stream prefix, taking the prefix literally', async () => {
    const prefix = `filter-${randomUUID()}/`;
    await appendOne(`${prefix}key_`, 'KeyCreated');
    await appendOne(`${prefix}keyX`, 'KeyCreated'); // would match an unescaped LIKE 'key_%'
    await appendOne(`${prefix}key_`, 'KeyDisabled');
    await appendOne(`${prefix}100%`, 'KeyCreated');
    await follow(prefix, LOG_START, 4);

    const read = (options: Parameters<typeof readAllForward>[1]) =>
      readAllForward(db.app, options).then((events) => events.map((e) => `${e.streamId.slice(prefix.length, prefix.length + 4)} ${e.type}`));
    expect(await read({ streamPrefixes: [`${prefix}key_`] })).toEqual(['key_ KeyCreated', 'key_ KeyDisabled']);
    expect(await read({ streamPrefixes: [`${prefix}key_`], types: ['KeyDisabled'] })).toEqual(['key_ KeyDisabled']);
    expect(await read({ streamPrefixes: [`${prefix}100%`, `${prefix}keyX`] })).toEqual(['keyX KeyCreated', '100% KeyCreated']);
  });
});
