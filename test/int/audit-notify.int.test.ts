import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvent, type AuditRecord } from '../../src/service/audit.ts';
import { AUDIT_CHANNEL, parseAuditNotice } from '../../src/store/audit-notifications.ts';
import { commitFencedAppends } from '../../src/store/fences.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { probeRecord } from '../support/audit-records.ts';
import { waitFor } from '../support/concurrency.ts';

/**
 * The audit channel's notifications (sql/0034): one trigger call per INSERT
 * statement, and one notification per distinct account, recipient and
 * operation of a committed batch, however many records it holds.
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
  it('a batch of 35 records of three account/operation pairs sends three notifications of one transaction', async () => {
    const [alice, carol] = ['111100001111', '222200002222'];
    const records = [
      ...Array.from({ length: 20 }, (_, n) => probeRecord(alice, 'Encrypt', n)),
      ...Array.from({ length: 10 }, (_, n) => probeRecord(alice, 'Decrypt', n)),
      ...Array.from({ length: 5 }, (_, n) => probeRecord(carol, 'Encrypt', n, { recipientAccountId: alice } as Partial<AuditRecord>)),
    ];
    const before = received.length;
    const written = await commitFencedAppends(t.db.app, records.map(append));
    expect(written).toEqual(records.map(() => true));
    // A marker committed after the batch: once it arrives, every notification of the batch has (one queue, commit order).
    await commitFencedAppends(t.db.app, [append(probeRecord(alice, 'Marker', 0))]);
    await waitFor(async () => received.slice(before).some((r) => r.payload.endsWith('/Marker')), 'the marker notification');

    const batch = received.slice(before).filter((r) => !r.payload.endsWith('/Marker'));
    const notices = batch.map((r) => parseAuditNotice(r.payload));
    expect(notices.map((n) => `${n.accountId}/${n.recipientAccountId ?? ''}/${n.eventName}`).sort()).toEqual(
      [`${alice}//Decrypt`, `${alice}//Encrypt`, `${carol}/${alice}/Encrypt`].sort(),
    );
    expect(new Set(notices.map((n) => n.transactionId)).size).toBe(1);
    const { rows } = await sql<{ count: string }>`
      SELECT count(*) FROM events WHERE transaction_id::text = ${String(notices[0]!.transactionId)} AND type = 'AuditRecord'`.execute(t.db.owner);
    expect(Number(rows[0]!.count)).toBe(35);
  });

  it('the trigger runs once per statement, over the statement’s rows', async () => {
    const { rows } = await sql<{ row_level: boolean; new_table: string | null }>`
      SELECT (tgtype & 1) = 1 AS row_level, tgnewtable AS new_table FROM pg_trigger
      WHERE tgrelid = 'events'::regclass AND tgname = 'events_notify_audit'`.execute(t.db.owner);
    expect(rows).toEqual([{ row_level: false, new_table: 'inserted' }]);
  });
});
