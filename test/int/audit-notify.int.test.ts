import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvent, type AuditRecord } from '../../src/service/audit.ts';
import { GroupCommitter } from '../../src/service/group-commit.ts';
import { AUDIT_CHANNEL, AuditFeed, parseAuditNotice } from '../../src/store/audit-notifications.ts';
import { commitFencedAppends } from '../../src/store/fences.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { probeRecord } from '../support/audit-records.ts';
import { waitFor } from '../support/concurrency.ts';

/**
 * The audit channel's notifications: one per distinct account, recipient and
 * operation of a committed transaction, however many records it holds. Other
 * writers notify from a trigger, once per INSERT statement (sql/0034); a group
 * commit batch notifies nothing inside its transaction (sql/0042), its writer
 * relays the same notices after the commit.
 */

let t: TestApp;
let listener: pg.Client;
const received: { payload: string; pid: number }[] = [];

beforeAll(async () => {
  t = await createTestApp();
  listener = new pg.Client({ connectionString: t.db.url });
  await listener.connect();
  listener.on('notification', (n) => {
    if (n.channel === AUDIT_CHANNEL) received.push({ payload: n.payload ?? '', pid: n.processId });
  });
  await listener.query(`LISTEN ${AUDIT_CHANNEL}`);
});
afterAll(async () => {
  await listener?.end();
  await t?.close();
});

const append = (record: AuditRecord) => ({ ...auditEvent(record), recordedAt: new Date(), fences: new Map<string, bigint>() });

describe('audit notifications', () => {
  it('35 records of three account/operation pairs, group-committed, are relayed as one notification per pair and batch, none sent inside a batch', async () => {
    const [alice, carol] = ['111100001111', '222200002222'];
    const records = [
      ...Array.from({ length: 20 }, (_, n) => probeRecord(alice, 'Encrypt', n)),
      ...Array.from({ length: 10 }, (_, n) => probeRecord(alice, 'Decrypt', n)),
      ...Array.from({ length: 5 }, (_, n) => probeRecord(carol, 'Encrypt', n, { recipientAccountId: alice } as Partial<AuditRecord>)),
    ];
    const feed = new AuditFeed(t.db.app, t.app.logger);
    const local = await feed.follow({ accountId: carol });
    try {
      const committer = new GroupCommitter(t.db.app, { notices: feed, maxBatch: 64 });
      const before = received.length;
      const written = await Promise.all(records.map((r) => committer.submit(append(r))));
      expect(written).toEqual(records.map(() => true));
      // This process's follower is woken by the publish itself, before any relay.
      expect(await local.wait(0)).toBe('notified');
      // Closing the feed relays what is still waiting: every notice of the 35 records is sent by then.
      await feed.close();
      // A marker committed (and notified by the trigger) after the relay: once it arrives, nothing else of the batch can.
      await sql`INSERT INTO events (stream_id, stream_version, event_id, type, data, recorded_at)
                VALUES ('marker', 1, gen_random_uuid(), 'AuditRecord', ${JSON.stringify(probeRecord(alice, 'Marker', 0))}::jsonb, now())`.execute(t.db.owner);
      await waitFor(async () => received.slice(before).some((r) => r.payload.endsWith('/Marker')), 'the marker notification');

      const batch = received.slice(before).filter((r) => !r.payload.endsWith('/Marker'));
      const notices = batch.map((r) => parseAuditNotice(r.payload));
      expect(new Set(batch.map((r) => r.pid)).size).toBe(1);
      // Per batch transaction, one notification per distinct account/recipient/operation of its records, and no
      // other: a notification from inside the batch would be a second copy, from the batch's own backend.
      const transactions = [...new Set(notices.map((n) => n.transactionId!))];
      let total = 0;
      for (const xid of transactions) {
        const { rows } = await sql<{ triple: string; count: string }>`
          SELECT concat_ws('/', data->>'accountId', coalesce(data->>'recipientAccountId', ''), data->>'eventName') AS triple, count(*) AS count
            FROM events WHERE transaction_id::text = ${String(xid)} AND type = 'AuditRecord' GROUP BY 1`.execute(t.db.owner);
        total += rows.reduce((sum, r) => sum + Number(r.count), 0);
        const mine = notices.filter((n) => n.transactionId === xid).map((n) => `${n.accountId}/${n.recipientAccountId ?? ''}/${n.eventName}`);
        expect(mine.sort()).toEqual(rows.map((r) => r.triple).sort());
      }
      expect(total).toBe(35);
      expect(notices.map((n) => `${n.accountId}/${n.recipientAccountId ?? ''}/${n.eventName}`).sort()).toEqual(
        expect.arrayContaining([`${alice}//Decrypt`, `${alice}//Encrypt`, `${carol}/${alice}/Encrypt`]),
      );
      expect(committer.stats().batches).toBeLessThan(35);
    } finally {
      local.close();
      await feed.close();
    }
  });

  it('a batch committed without its writer publishing notifies no one', async () => {
    const before = received.length;
    const { written } = await commitFencedAppends(t.db.app, [append(probeRecord('333300003333', 'Encrypt', 0))]);
    expect(written).toEqual([true]);
    await sql`INSERT INTO events (stream_id, stream_version, event_id, type, data, recorded_at)
              VALUES ('marker-2', 1, gen_random_uuid(), 'AuditRecord', ${JSON.stringify(probeRecord('333300003333', 'Marker', 0))}::jsonb, now())`.execute(
      t.db.owner,
    );
    await waitFor(async () => received.slice(before).some((r) => r.payload.endsWith('/Marker')), 'the marker notification');
    expect(received.slice(before).map((r) => parseAuditNotice(r.payload).eventName)).toEqual(['Marker']);
  });

  it('a feed does not wake its own followers twice: the relay’s notifications are skipped by the feed that published them', async () => {
    const account = '444400004444';
    const feed = new AuditFeed(t.db.app, t.app.logger);
    const other = new AuditFeed(t.db.app, t.app.logger);
    const mine = await feed.follow({ accountId: account });
    const theirs = await other.follow({ accountId: account });
    try {
      // Connecting wakes every follower once (records may have come before the LISTEN): drain that first.
      expect(await mine.wait(0)).toBe('notified');
      expect(await theirs.wait(0)).toBe('notified');
      const [mineBefore, theirsBefore] = [feed.wakeups, other.wakeups];
      const before = received.length;
      feed.publish(42n, [{ accountId: account, eventName: 'Encrypt' }]);
      await waitFor(async () => received.length > before, 'the relayed notification');
      expect(received.slice(before).map((r) => r.payload)).toEqual([`42/${account}//Encrypt`]);
      await waitFor(async () => other.wakeups === theirsBefore + 1, 'the other process woken by the relay');
      expect(await theirs.wait(0)).toBe('notified');
      expect(theirs.latestNotified()).toBe(42n);
      expect(await mine.wait(0)).toBe('notified');
      expect(await mine.wait(200)).toBe('timeout');
      expect(feed.wakeups).toBe(mineBefore + 1);
    } finally {
      await feed.close();
      await other.close();
    }
  });

  it('the trigger runs once per statement, over the statement’s rows', async () => {
    const { rows } = await sql<{ row_level: boolean; new_table: string | null }>`
      SELECT (tgtype & 1) = 1 AS row_level, tgnewtable AS new_table FROM pg_trigger
      WHERE tgrelid = 'events'::regclass AND tgname = 'events_notify_audit'`.execute(t.db.owner);
    expect(rows).toEqual([{ row_level: false, new_table: 'inserted' }]);
  });
});
