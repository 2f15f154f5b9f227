/**
 * replay --verify checks the usage rollups against the log (issue 16, section
 * 5): the reviewer deleted 299 of 309 Decrypt records with the append-only
 * trigger disabled, and the rollups (usageStatistics) kept saying 309.
 */
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { sql, type Transaction } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReplay } from '../../src/cli/replay.ts';
import { appendAuditRecord } from '../../src/service/audit.ts';
import type { Database } from '../../src/store/database.ts';
import { replayProjections } from '../../src/store/replay.ts';
import { catchUpUsageRollup } from '../../src/store/usage-rollup.ts';
import { probeRecord } from '../support/audit-records.ts';
import { runKeyledger } from '../support/cli.ts';
import { adminQuery, createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** The environment of a keyledger command on this file's database. */
const onThisDatabase = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ ...process.env, DATABASE_URL: db.url, ...extra });

const account = '111122223333';
const other = '444455556666';
const keyArn = `arn:aws:kms:us-east-1:${account}:key/${randomUUID()}`;
const onKey = { resources: [{ type: 'AWS::KMS::Key', arn: keyArn, accountId: account }] };

async function record(eventName: string, n: number, at: Date, extra = {}): Promise<void> {
  await appendAuditRecord(db.app, probeRecord(account, eventName, n, { ...onKey, ...extra }), at);
}

const decryptTotal = async () =>
  Number(
    (await sql<{ n: string }>`select coalesce(sum(count), 0)::text as n from audit_usage_hourly where event_name = 'Decrypt'`.execute(db.owner)).rows[0]!.n,
  );

describe('replay --verify and the usage rollups', () => {
  it('finds the rollups equal to the log after folding in small batches', async () => {
    const at = new Date('2026-12-01T10:15:00.000Z');
    await db.app.transaction().execute(async (trx) => {
      for (let i = 0; i < 309; i++) await appendAuditRecord(trx, probeRecord(account, 'Decrypt', i, onKey), new Date(at.getTime() + i * 1000));
    });
    await record('Encrypt', 0, at);
    await record('Decrypt', 1000, at, { outcome: 'failure', errorCode: 'AccessDeniedException' });
    // Another account's request on this account's key: counted for both.
    await appendAuditRecord(db.app, probeRecord(other, 'GenerateDataKey', 2000, { ...onKey, recipientAccountId: account }), at);
    // A ReEncrypt on two keys (the second counts under key_rank 1), and a refusal before anyone was identified (no principal).
    const second = { type: 'AWS::KMS::Key', arn: `arn:aws:kms:us-east-1:${account}:key/${randomUUID()}`, accountId: account };
    await record('ReEncrypt', 4000, at, { resources: [...onKey.resources, second] });
    await record('GenerateRandom', 5000, at, {
      resources: [],
      outcome: 'failure',
      errorCode: 'UnrecognizedClientException',
      userIdentity: { type: 'Unknown', principalArn: null, accountId: null, accessKeyId: null },
    });
    expect(await catchUpUsageRollup(db.app, { batchSize: 7 })).toBe(314);
    // Committed after the fold: not in the rollups yet, and no difference.
    await record('Decrypt', 3000, at);

    const result = await replayProjections(db.owner, { verify: true });
    expect(result.differences).toEqual([]);
    expect(result.auditRecords).toBe(314);
    // In chunks of 1, 2 and 7 records (a group's counts spread over many chunks and merged): the same.
    for (const rollupChunk of [1, 2, 7]) {
      const progress: number[] = [];
      const chunked = await replayProjections(db.owner, { verify: true, rollupChunk, onRollupProgress: (done, total) => progress.push(done, total) });
      expect(chunked.differences).toEqual([]);
      expect(chunked.auditRecords).toBe(314);
      expect(progress.slice(-2)).toEqual([314, 314]);
    }
    expect(await decryptTotal()).toBe(310);
  });

  it("reports the reviewer's deletion precisely: 309 Decrypts in the rollups, 10 in the log", async () => {
    const { rows } = await sql<{ event_id: string }>`
      select event_id::text from events where data->>'eventName' = 'Decrypt' and data->>'outcome' = 'success' and data->>'accountId' = ${account}
       and (data->'requestParameters'->>'n')::int < 309 order by global_position limit 299`.execute(db.owner);
    expect(rows).toHaveLength(299);
    for (const statement of [
      'ALTER TABLE events DISABLE TRIGGER events_append_only',
      `DELETE FROM events WHERE event_id IN (${rows.map((r) => `'${r.event_id}'`).join(', ')})`,
      'ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only',
    ]) {
      await adminQuery(db.url, statement);
    }

    const result = await replayProjections(db.owner, { verify: true });
    const hourly = result.differences.filter((d) => d.startsWith('audit_usage_hourly:'));
    const group =
      `{"scope_account":"${account}","hour":"2026-12-01T10:00:00+00:00",` + `"event_name":"Decrypt","read_only":false,"outcome":"success","error_code":null}`;
    expect(hourly).toEqual([`audit_usage_hourly: ${group}: count 309 in the rollup, 10 in the log`]);
    // The same group in every rollup, and the checkpoint's count.
    for (const rollup of ['audit_usage_daily', 'audit_usage_key_daily']) {
      expect(
        result.differences.filter((d) => d.startsWith(`${rollup}:`) && /"event_name":"Decrypt"/.test(d) && /count 309 in the rollup, 10 in the log/.test(d)),
      ).toHaveLength(1);
    }
    // By principal: its Decrypts, and the source IP and key it used for them and the rest.
    const activity = result.differences.filter((d) => d.startsWith('audit_usage_principal_daily:'));
    expect(activity.filter((d) => /"dimension":"operation","value":"Decrypt".*count 309 in the rollup, 10 in the log/.test(d))).toHaveLength(1);
    expect(activity.filter((d) => /"dimension":"sourceIp","value":"10\.9\.9\.9"/.test(d))).toHaveLength(1);
    expect(activity.filter((d) => /"dimension":"key"/.test(d))).toHaveLength(1);
    expect(result.differences).toContain('audit_usage_checkpoint: 314 records folded, 15 in the log up to the checkpoint');
    // Folded a few records at a time, the partial counts merge to the same differences.
    expect((await replayProjections(db.owner, { verify: true, rollupChunk: 4 })).differences).toEqual(result.differences);
    // Verifying wrote nothing.
    expect(await decryptTotal()).toBe(310);

    // Without the rollups: the key projections alone, which agree with the log.
    const skipped = await replayProjections(db.owner, { verify: true, rollups: false });
    expect(skipped.differences).toEqual([]);
    expect(skipped.auditRecords).toBe(0);
    expect(skipped.timings.rollups).toBe(0);

    // The CLI says so and fails.
    const cli = await runKeyledger(['replay', '--verify'], { env: onThisDatabase() });
    expect(cli.code).toBe(1);
    expect(cli.stdout).toMatch(/audit_usage_hourly: .*"event_name":"Decrypt".*count 309 in the rollup, 10 in the log/);
    const skippedCli = await runKeyledger(['replay', '--verify', '--skip-rollups'], { env: onThisDatabase() });
    expect(skippedCli.code).toBe(0);
    expect(skippedCli.stdout).toMatch(/^projections match the log \(\d+ events replayed: 0 keys, 0 aliases; usage rollups skipped\)\n$/);
    // A rebuild without them leaves them as they are.
    expect((await replayProjections(db.owner, { verify: false, rollups: false })).differences).toEqual([]);
    expect(await decryptTotal()).toBe(310);
  });

  it('rebuilds the rollups from the log, after which they verify', async () => {
    const rebuilt = await replayProjections(db.owner, { verify: false, rollupChunk: 3 });
    expect(rebuilt.differences.some((d) => /count 309 in the rollup, 10 in the log/.test(d))).toBe(true);
    expect(await decryptTotal()).toBe(11);
    expect((await replayProjections(db.owner, { verify: true })).differences).toEqual([]);
    // The fold goes on from its checkpoint.
    expect(await catchUpUsageRollup(db.app)).toBe(1);
    expect((await replayProjections(db.owner, { verify: true })).differences).toEqual([]);
  });

  it('refuses a chunk that is not a positive integer, and says what a read-only server needs', async () => {
    await expect(replayProjections(db.owner, { verify: true, rollupChunk: 0 })).rejects.toThrow(/chunk must be a positive integer, not 0/);
    const env = onThisDatabase({ PGOPTIONS: '-c default_transaction_read_only=on' });
    const readOnly = await runKeyledger(['replay', '--verify'], { env });
    expect(readOnly.code).not.toBe(0);
    expect(readOnly.stderr).toMatch(/temporary tables, which a read-only server refuses: run it on the primary, or skip the rollups/);
    expect((await runKeyledger(['replay', '--verify', '--skip-rollups'], { env })).code).toBe(0);
    const rebuilt = await runKeyledger(['replay', '--skip-rollups'], { env: onThisDatabase() });
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stdout).toMatch(/^replayed \d+ events: projections rebuilt \(0 keys, 0 aliases; usage rollups skipped; nothing differed\)\n$/);
  });

  it('draws the rollups check as its own progress bar on a terminal, ending at the count of the log', async () => {
    let drawn = '';
    const terminal = Object.assign(new PassThrough(), { isTTY: true, columns: 100 });
    terminal.on('data', (chunk: Buffer) => (drawn += chunk.toString()));
    const io = { stdout: new PassThrough(), stderr: terminal as unknown as NodeJS.WriteStream, env: onThisDatabase() };
    expect(await runReplay(['--verify'], io)).toBe(0);
    // This database has audit records only: no key, alias or grant event, so no bar for them.
    expect(drawn.split('\n').filter(Boolean)).toEqual([expect.stringMatching(/\rusage rollups \[#{40}\] 100% {2}16\/16$/)]);
    drawn = '';
    expect(await runReplay(['--verify', '--skip-rollups'], io)).toBe(0);
    expect(drawn).toBe('');
  });

  it('holds key writes only while it rebuilds the projections, not through the rollups check', async () => {
    // Fired at the check's first chunk, each on a connection of its own opened beforehand (so that no
    // connection set-up delays it past the check's end): a write to each projection, which the
    // rebuild's EXCLUSIVE locks would refuse (NOWAIT) if they were still held; and the worker's
    // fold, which is what waits: the checkpoint is locked until the check commits.
    let checkDone = false;
    const write = whenFired((trx) =>
      sql`LOCK TABLE keys, key_tags, aliases, grants IN ROW EXCLUSIVE MODE NOWAIT`.execute(trx).then(() => ({ beforeTheEnd: !checkDone })),
    );
    const fold = whenFired((trx) => sql`LOCK TABLE audit_usage_checkpoint IN ROW SHARE MODE NOWAIT`.execute(trx));
    const folded = fold.result.then(
      () => 'locked',
      (error: { code?: string }) => error.code,
    );
    await Promise.all([write.ready, fold.ready]);
    const rebuilt = await replayProjections(db.owner, {
      verify: false,
      rollupChunk: 1,
      onRollupProgress: () => {
        write.fire();
        fold.fire();
      },
    });
    checkDone = true;
    expect(rebuilt.differences).toEqual([]);
    // The write got its locks, and while the check was still running (else this proves nothing).
    await expect(write.result).resolves.toEqual({ beforeTheEnd: true });
    // 55P03 lock_not_available.
    await expect(folded).resolves.toBe('55P03');
  });

  it('finds a rollup row edited by hand, and one the log never produced', async () => {
    await adminQuery(db.url, `UPDATE audit_usage_hourly SET count = count + 5 WHERE event_name = 'Encrypt'`);
    await adminQuery(
      db.url,
      `INSERT INTO audit_usage_hourly (scope_account, hour, event_name, read_only, outcome, error_code, count, last_at, last_position)
       VALUES ('${account}', '2026-12-02T00:00:00Z', 'GenerateDataKey', false, 'success', NULL, 7, '2026-12-02T00:10:00Z', 1)`,
    );
    const { differences } = await replayProjections(db.owner, { verify: true });
    expect(differences).toEqual([
      expect.stringMatching(/^audit_usage_hourly: .*"event_name":"Encrypt".*: count 6 in the rollup, 1 in the log$/),
      expect.stringMatching(
        /^audit_usage_hourly: .*"event_name":"GenerateDataKey".*: count 7, last_at .*, last_position 1 in the rollup, but the log has no such record$/,
      ),
    ]);
  });
});

/**
 * Runs `work` in a transaction on a connection of the owner pool opened now
 * (`ready` once it has answered), but only once `fire` is called: its first
 * statement then goes out at once.
 */
function whenFired<T>(work: (trx: Transaction<Database>) => Promise<T>): { ready: Promise<void>; fire: () => void; result: Promise<T> } {
  let fire!: () => void;
  const fired = new Promise<void>((resolve) => (fire = resolve));
  let connected!: () => void;
  const ready = new Promise<void>((resolve) => (connected = resolve));
  const result = db.owner.connection().execute(async (conn) => {
    await sql`SELECT 1`.execute(conn);
    connected();
    await fired;
    return conn.transaction().execute(work);
  });
  return { ready, fire, result };
}
