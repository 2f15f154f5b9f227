import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { openDatabase, type Db } from '../../src/store/database.ts';
import { migrateToLatest, SqlFileMigrationProvider } from '../../src/store/migrations.ts';
import { appendAuditRecord, type AuditRecord } from '../../src/service/audit.ts';
import type { AuditQueryFilter } from '../../src/store/audit-queries.ts';
import { readPrincipalActivity, type ActivityBucket } from '../../src/store/principal-activity.ts';
import { advanceUsageRollup, catchUpUsageRollup, readUsageRollupCheckpoint, resetUsageRollups } from '../../src/store/usage-rollup.ts';
import {
  atStableCheckpoint,
  readLastUse,
  readUsageStatistics,
  usageRollupFor,
  USAGE_DIMENSIONS,
  type UsageDimension,
} from '../../src/store/usage-statistics.ts';
import { startUsageRollupLoop } from '../../src/worker/usage-rollup-loop.ts';
import { adminQuery, createTestDatabase, databaseUrl, type TestDatabase } from '../support/database.ts';

/**
 * The usage rollups answer exactly what the log answers: for every grouping and
 * every filter, at every point of the fold (nothing folded, part, all), the
 * groups equal a plain scan of the audit records. The log is synthetic records
 * with the variety that matters: two accounts and cross-account requests
 * (recipientAccountId), requests on no key, one key and two keys (ReEncrypt),
 * failures and denials, read-only and not, unauthenticated requests, times over
 * four days at any minute.
 */

const A = '111111111111';
const B = '222222222222';
const keyArn = (acct: string, n: number) => `arn:aws:kms:us-east-1:${acct}:key/00000000-0000-4000-8000-00000000000${n}`;
const KEYS_A = [1, 2, 3].map((n) => keyArn(A, n));
const KEYS_B = [4].map((n) => keyArn(B, n));
const principals = (acct: string) => ['alice', 'bob', 'carol'].map((n) => `arn:aws:iam::${acct}:user/${n}`);
const OPERATIONS = ['Encrypt', 'Decrypt', 'GenerateDataKey', 'ReEncrypt', 'DescribeKey', 'ListKeys'];
const DAY0 = Date.parse('2026-04-01T00:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const RECORDS = 500;

let db: TestDatabase;

/** A deterministic generator, so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function syntheticRecord(r: () => number): { record: AuditRecord; at: Date } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const roll = r();
  // 80% account A; 12% account B (a tenth of them on A's keys); 8% unauthenticated.
  const accountId = roll < 0.8 ? A : roll < 0.92 ? B : null;
  const crossAccount = accountId === B && r() < 0.4;
  const operation = pick(OPERATIONS);
  const keyPool = accountId === A || crossAccount ? KEYS_A : KEYS_B;
  let resources: AuditRecord['resources'] = [];
  if (operation === 'ReEncrypt') {
    const [k1, k2] = [pick(keyPool), pick(keyPool)];
    resources = [k1, k2].map((arn) => ({ arn, type: 'AWS::KMS::Key', accountId: arn.split(':')[4]! }));
  } else if (operation !== 'ListKeys' && r() < 0.9) {
    const arn = pick(keyPool);
    resources = [{ arn, type: 'AWS::KMS::Key', accountId: arn.split(':')[4]! }];
    if (r() < 0.2) resources.push({ arn: `arn:aws:kms:us-east-1:${arn.split(':')[4]}:alias/app`, type: 'AWS::KMS::Alias', accountId: arn.split(':')[4]! });
  }
  const failed = r() < 0.15;
  const errorCode = failed ? pick(['AccessDeniedException', 'AccessDeniedException', 'NotFoundException', 'InvalidCiphertextException']) : undefined;
  const at = new Date(DAY0 + Math.floor(r() * 4 * DAY) + Math.floor(r() * 1000));
  const record: AuditRecord = {
    eventVersion: '1.0',
    eventSource: 'kms',
    eventName: operation,
    eventTime: at.toISOString(),
    requestId: randomUUID(),
    awsRegion: 'us-east-1',
    accountId,
    userIdentity: accountId
      ? { type: 'IAMUser', principalArn: pick(principals(accountId)), accountId, accessKeyId: `AKIA${Math.floor(r() * 3)}` }
      : { type: 'Unknown', principalArn: null, accountId: null, accessKeyId: null },
    sourceIp: `10.0.${Math.floor(r() * 4)}.1`,
    userAgent: 'test',
    requestParameters: { encryptionContext: { tenant: pick(['acme', 'globex']) } },
    responseElements: null,
    resources,
    readOnly: operation === 'DescribeKey' || operation === 'ListKeys',
    outcome: failed ? 'failure' : 'success',
    ...(errorCode ? { errorCode } : {}),
    ...(crossAccount ? { recipientAccountId: A } : {}),
  } as AuditRecord;
  return { record, at };
}

const FILTERS: { name: string; filter: AuditQueryFilter }[] = [
  { name: 'everything', filter: {} },
  { name: 'aligned days', filter: { from: new Date(DAY0 + DAY), to: new Date(DAY0 + 3 * DAY) } },
  { name: 'unaligned range', filter: { from: new Date(DAY0 + 5 * HOUR + 17 * 60_000), to: new Date(DAY0 + 2 * DAY + 13 * HOUR + 1) } },
  { name: 'inside one hour', filter: { from: new Date(DAY0 + 30 * HOUR + 60_000), to: new Date(DAY0 + 30 * HOUR + 50 * 60_000) } },
  { name: 'from only', filter: { from: new Date(DAY0 + 36 * HOUR + 1) } },
  { name: 'to only', filter: { to: new Date(DAY0 + 50 * HOUR - 1) } },
  { name: 'up to after every record', filter: { from: new Date(DAY0 + 5 * HOUR + 17 * 60_000), to: new Date(DAY0 + 9 * DAY + 7 * HOUR + 5) } },
  { name: 'to only, after every record', filter: { to: new Date(DAY0 + 9 * DAY + 7 * HOUR + 5) } },
  { name: 'operations', filter: { eventNames: ['Decrypt', 'ReEncrypt'] } },
  { name: 'no operation', filter: { eventNames: [] } },
  { name: 'failures', filter: { outcome: 'failure' } },
  { name: 'successes over a range', filter: { outcome: 'success', from: new Date(DAY0 + 7 * HOUR), to: new Date(DAY0 + 80 * HOUR) } },
  { name: 'error codes', filter: { errorCodes: ['AccessDeniedException'] } },
  { name: 'read-only', filter: { readOnly: true } },
  { name: 'not read-only', filter: { readOnly: false } },
  { name: 'principal', filter: { principalArn: principals(A)[1]! } },
  { name: 'principal prefix', filter: { principalArnPrefix: `arn:aws:iam::${A}:user/` } },
  { name: 'principal prefix with LIKE characters', filter: { principalArnPrefix: `arn:aws:iam::${A}:user/_%` } },
  { name: 'one key', filter: { keys: [{ arn: KEYS_A[0]! }] } },
  { name: 'one key over a range', filter: { keys: [{ arn: KEYS_A[2]! }], from: new Date(DAY0 + 11 * HOUR), to: new Date(DAY0 + 3 * DAY) } },
  { name: 'two keys', filter: { keys: [{ arn: KEYS_A[0]! }, { arn: KEYS_A[1]! }] } },
  { name: 'a key window', filter: { keys: [{ arn: KEYS_A[1]!, afterPosition: 40n }] } },
  { name: 'an encryption context', filter: { encryptionContext: { tenant: 'acme' } } },
  { name: 'a source address', filter: { sourceIp: '10.0.1.0/24' } },
];

const GROUPINGS: UsageDimension[][] = [
  [],
  ['DAY'],
  ['HOUR'],
  ['OPERATION'],
  ['KEY'],
  ['PRINCIPAL'],
  ['DAY', 'OPERATION'],
  ['KEY', 'OPERATION'],
  ['PRINCIPAL', 'DAY'],
  ['KEY', 'HOUR'],
  ['KEY', 'PRINCIPAL', 'OPERATION', 'DAY'],
];

const BIG = 1_000_000;
const fromLog = (account: string, filter: AuditQueryFilter, dims: UsageDimension[]) =>
  readUsageStatistics(db.app, account, filter, dims, BIG, { rollups: false });
const answer = (account: string, filter: AuditQueryFilter, dims: UsageDimension[]) => readUsageStatistics(db.app, account, filter, dims, BIG);

/** Every grouping x filter, for both accounts: the rollup answer equals the log's. */
async function expectSameAnswers(): Promise<void> {
  for (const account of [A, B]) {
    for (const { name, filter } of FILTERS) {
      for (const dims of GROUPINGS) {
        const [expected, actual] = await Promise.all([fromLog(account, filter, dims), answer(account, filter, dims)]);
        expect(actual, `${account} ${name} by [${dims.join(', ')}]`).toEqual(expected);
      }
    }
  }
}

const ACTIVITY_RANGES: { name: string; from: Date; to: Date }[] = [
  { name: 'all four days', from: new Date(DAY0), to: new Date(DAY0 + 4 * DAY) },
  { name: 'aligned days', from: new Date(DAY0 + DAY), to: new Date(DAY0 + 3 * DAY) },
  { name: 'unaligned range', from: new Date(DAY0 + 5 * HOUR + 17 * 60_000), to: new Date(DAY0 + 2 * DAY + 13 * HOUR + 1) },
  { name: 'inside one day', from: new Date(DAY0 + 30 * HOUR + 60_000), to: new Date(DAY0 + 40 * HOUR) },
  { name: 'up to after every record', from: new Date(DAY0 + 5 * HOUR + 17 * 60_000), to: new Date(DAY0 + 9 * DAY + 7 * HOUR + 5) },
  { name: 'before every record', from: new Date(DAY0 - 3 * DAY), to: new Date(DAY0 - DAY) },
];
// B's principals too: from A, their requests on A's keys.
const ACTIVITY_PRINCIPALS = [...principals(A).slice(0, 2), principals(B)[0]!, 'arn:aws:iam::111111111111:user/nobody'];

const sortedBuckets = (buckets: ActivityBucket[]) =>
  [...buckets].sort((x, y) => x.dimension.localeCompare(y.dimension) || String(x.value).localeCompare(String(y.value)));
/** principalActivity's meaning, computed in JS from the raw records: the answer the queries must give. */
function oracleActivity(
  records: { recorded_at: Date; data: AuditRecord }[],
  account: string,
  principalArn: string,
  range: { from: Date; to: Date },
): ActivityBucket[] {
  const buckets = new Map<string, ActivityBucket>();
  const add = (dimension: string, value: string | null, data: AuditRecord, at: Date) => {
    const id = `${dimension}\u0000${value ?? '\u0001'}`;
    const b = buckets.get(id) ?? { dimension, value, count: 0, failures: 0, denied: 0, first: at, last: at };
    b.count++;
    if (data.outcome === 'failure') b.failures++;
    if (data.errorCode === 'AccessDeniedException') b.denied++;
    if (at < b.first) b.first = at;
    if (at > b.last) b.last = at;
    buckets.set(id, b);
  };
  for (const { recorded_at: at, data } of records) {
    const recipient = (data as { recipientAccountId?: string | null }).recipientAccountId;
    const inScope = data.accountId === account || (recipient === account && data.accountId !== account);
    if (!inScope || data.userIdentity?.principalArn !== principalArn || at < range.from || at >= range.to) continue;
    add('total', null, data, at);
    add('operation', data.eventName ?? null, data, at);
    add('sourceIp', data.sourceIp ?? null, data, at);
    add('accessKey', data.userIdentity.accessKeyId ?? null, data, at);
    const resources = Array.isArray(data.resources) ? data.resources : [];
    const keys = new Set(resources.filter((r) => r.type === 'AWS::KMS::Key').map((r) => r.arn ?? null));
    for (const k of keys) add('key', k, data, at);
  }
  return [...buckets.values()];
}

const activity = async (account: string, principalArn: string, range: { from: Date; to: Date }, rollups = true) =>
  sortedBuckets(await readPrincipalActivity(db.app, account, { principalArn, ...range }, { rollups }));

/** Every principal x range, for both accounts: principalActivity with the rollup equals the log's. */
async function expectSameActivity(): Promise<void> {
  for (const account of [A, B]) {
    for (const principalArn of ACTIVITY_PRINCIPALS) {
      for (const range of ACTIVITY_RANGES) {
        const [expected, actual] = await Promise.all([activity(account, principalArn, range, false), activity(account, principalArn, range)]);
        expect(actual, `${account} ${principalArn} ${range.name}`).toEqual(expected);
      }
    }
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  const r = rng(20260401);
  for (let i = 0; i < RECORDS; i += 50) {
    await db.app.transaction().execute(async (trx) => {
      for (let j = i; j < Math.min(RECORDS, i + 50); j++) {
        const { record, at } = syntheticRecord(r);
        await appendAuditRecord(trx, record, at);
      }
    });
  }
});
afterAll(() => db?.drop());

describe('usage rollups', () => {
  it('picks the hourly rollup without key or principal, the daily one with them, none for what they do not keep', () => {
    expect(usageRollupFor({}, ['DAY'])).toBe('hourly');
    expect(usageRollupFor({ eventNames: ['Decrypt'], outcome: 'failure' }, ['HOUR', 'OPERATION'])).toBe('hourly');
    expect(usageRollupFor({}, ['KEY'])).toBe('daily-key');
    expect(usageRollupFor({ keys: [{ arn: 'k' }] }, ['OPERATION', 'DAY'])).toBe('daily-key');
    expect(usageRollupFor({ principalArn: 'p' }, ['DAY'])).toBe('daily');
    expect(usageRollupFor({ keys: [{ arn: 'k' }] }, ['PRINCIPAL'])).toBe('daily');
    expect(usageRollupFor({}, ['KEY', 'HOUR'])).toBeNull();
    expect(usageRollupFor({ keys: [{ arn: 'k' }] }, ['KEY'])).toBeNull();
    expect(usageRollupFor({ keys: [{ arn: 'k', afterPosition: 1n }] }, [])).toBeNull();
    expect(usageRollupFor({ encryptionContext: { tenant: 'acme' } }, ['DAY'])).toBeNull();
    expect(usageRollupFor({ sourceIp: '10.0.0.0/8' }, ['DAY'])).toBeNull();
    expect(usageRollupFor({ dataKeyId: 'x' }, [])).toBeNull();
  });

  it('answers like the log before any fold, part way, and caught up', async () => {
    expect((await readUsageRollupCheckpoint(db.app)).records).toBe(0);
    await expectSameAnswers();
    await expectSameActivity();
    // Part way: the rollups hold the first records, the tail comes from the log.
    expect((await advanceUsageRollup(db.app, { batchSize: 137 })).records).toBe(137);
    expect((await advanceUsageRollup(db.app, { batchSize: 100 })).records).toBe(100);
    await expectSameAnswers();
    await expectSameActivity();
    const folded = await catchUpUsageRollup(db.app, { batchSize: 90 });
    expect(folded).toBe(RECORDS - 237);
    expect((await readUsageRollupCheckpoint(db.app)).records).toBe(RECORDS);
    await expectSameAnswers();
    await expectSameActivity();
  }, 120_000);

  it('really reads the rollups once caught up (a tampered rollup shows)', async () => {
    await catchUpUsageRollup(db.app);
    const honest = await answer(A, { from: new Date(DAY0), to: new Date(DAY0 + 4 * DAY) }, ['DAY']);
    const honestByKey = await answer(A, {}, ['KEY']);
    await sql`UPDATE audit_usage_hourly SET count = count + 1000 WHERE scope_account = ${A}`.execute(db.owner);
    await sql`UPDATE audit_usage_daily SET count = count + 1000 WHERE scope_account = ${A}`.execute(db.owner);
    await sql`UPDATE audit_usage_key_daily SET count = count + 1000 WHERE scope_account = ${A}`.execute(db.owner);
    try {
      const tampered = await answer(A, { from: new Date(DAY0), to: new Date(DAY0 + 4 * DAY) }, ['DAY']);
      expect(tampered.map((g) => g.count)).not.toEqual(honest.map((g) => g.count));
      expect((await answer(A, {}, ['KEY'])).map((g) => g.count)).not.toEqual(honestByKey.map((g) => g.count));
      expect((await answer(A, {}, ['PRINCIPAL'])).map((g) => g.count)).not.toEqual((await fromLog(A, {}, ['PRINCIPAL'])).map((g) => g.count));
      // What the rollups cannot answer still comes from the log alone.
      expect(await answer(A, { encryptionContext: { tenant: 'acme' } }, ['DAY'])).toEqual(await fromLog(A, { encryptionContext: { tenant: 'acme' } }, ['DAY']));
    } finally {
      await sql`UPDATE audit_usage_hourly SET count = count - 1000 WHERE scope_account = ${A}`.execute(db.owner);
      await sql`UPDATE audit_usage_daily SET count = count - 1000 WHERE scope_account = ${A}`.execute(db.owner);
      await sql`UPDATE audit_usage_key_daily SET count = count - 1000 WHERE scope_account = ${A}`.execute(db.owner);
    }
    expect(await answer(A, { from: new Date(DAY0), to: new Date(DAY0 + 4 * DAY) }, ['DAY'])).toEqual(honest);
    expect(await answer(A, {}, ['KEY'])).toEqual(honestByKey);
  });

  it('principalActivity really reads its rollup once caught up (a tampered rollup shows in every dimension)', async () => {
    await catchUpUsageRollup(db.app);
    const bob = principals(A)[1]!;
    const whole = ACTIVITY_RANGES[0]!;
    const honest = await activity(A, bob, whole);
    const countsOf = (buckets: ActivityBucket[], dimension: string) => buckets.filter((b) => b.dimension === dimension).map((b) => b.count);
    const DIMENSIONS = ['total', 'operation', 'sourceIp', 'accessKey', 'key'];
    for (const d of DIMENSIONS) expect(countsOf(honest, d).length, d).toBeGreaterThan(0);
    await sql`UPDATE audit_usage_principal_daily SET count = count + 1000 WHERE scope_account = ${A} AND principal_arn = ${bob}`.execute(db.owner);
    try {
      const tampered = await activity(A, bob, whole);
      for (const d of DIMENSIONS) expect(countsOf(tampered, d), d).not.toEqual(countsOf(honest, d));
      // A range with no whole day comes from the log alone.
      expect(await activity(A, bob, ACTIVITY_RANGES[3]!)).toEqual(await activity(A, bob, ACTIVITY_RANGES[3]!, false));
    } finally {
      await sql`UPDATE audit_usage_principal_daily SET count = count - 1000 WHERE scope_account = ${A} AND principal_arn = ${bob}`.execute(db.owner);
    }
    expect(await activity(A, bob, whole)).toEqual(honest);
  });

  it('principalActivity counts what the records say (computed here from the raw records), odd records included, at every point of the fold', async () => {
    // Records the synthetic log lacks, on one day, folded in separate passes so their groups (with nulls) meet in the upsert.
    const alice = principals(A)[0]!;
    const day = DAY0 + 2 * DAY;
    const odd = (n: number): AuditRecord => {
      const base = {
        ...syntheticRecord(rng(900 + n)).record,
        accountId: A,
        userIdentity: { type: 'IAMUser', principalArn: alice, accountId: A, accessKeyId: null },
      };
      const shapes: Partial<AuditRecord>[] = [
        { sourceIp: undefined, eventName: undefined },
        { resources: { not: 'an array' } as unknown as AuditRecord['resources'] },
        {
          resources: [
            { arn: KEYS_A[0]!, type: 'AWS::KMS::Key', accountId: A },
            { arn: KEYS_A[0]!, type: 'AWS::KMS::Key', accountId: A },
          ],
        },
        { resources: [{ type: 'AWS::KMS::Key', accountId: A } as AuditRecord['resources'][number]], outcome: 'failure', errorCode: 'AccessDeniedException' },
      ];
      return JSON.parse(JSON.stringify({ ...base, ...shapes[n % shapes.length] })) as AuditRecord;
    };
    const ranges = [ACTIVITY_RANGES[0]!, ACTIVITY_RANGES[2]!, ACTIVITY_RANGES[4]!, { from: new Date(day + HOUR + 1), to: new Date(day + 3 * DAY) }];
    const check = async () => {
      const { rows } = await sql<{ recorded_at: Date; data: AuditRecord }>`SELECT recorded_at, data FROM events WHERE type = 'AuditRecord'`.execute(db.owner);
      for (const account of [A, B]) {
        for (const principalArn of [alice, principals(A)[1]!, principals(B)[0]!]) {
          for (const range of ranges) {
            const expected = sortedBuckets(oracleActivity(rows, account, principalArn, range));
            expect(await activity(account, principalArn, range), `${account} ${principalArn} ${range.from.toISOString()}`).toEqual(expected);
          }
        }
      }
    };
    await catchUpUsageRollup(db.app);
    for (let n = 0; n < 4; n++) await appendAuditRecord(db.app, odd(n), new Date(day + (n + 2) * HOUR));
    await check();
    await catchUpUsageRollup(db.app);
    for (let n = 4; n < 8; n++) await appendAuditRecord(db.app, odd(n), new Date(day + (n + 2) * HOUR));
    await check();
    await advanceUsageRollup(db.app, { batchSize: 2 });
    await check();
    await catchUpUsageRollup(db.app);
    await check();
    // The groups with nulls met in the upsert: each group is one row.
    const { rows: dup } = await sql<{ n: string }>`
      SELECT count(*)::text AS n FROM (
        SELECT 1 FROM audit_usage_principal_daily
         GROUP BY scope_account, principal_arn, day, dimension, value, outcome, error_code HAVING count(*) > 1) AS d`.execute(db.owner);
    expect(dup[0]!.n).toBe('0');
    const { rows: nulls } = await sql<{ dimension: string }>`
      SELECT DISTINCT dimension FROM audit_usage_principal_daily
       WHERE principal_arn = ${alice} AND day = ${new Date(day)} AND value IS NULL ORDER BY dimension`.execute(db.owner);
    expect(nulls.map((r) => r.dimension)).toEqual(['accessKey', 'key', 'operation', 'sourceIp']);
  });

  it('takes the last, partial bucket from the rollups when every folded record is before the end', async () => {
    await catchUpUsageRollup(db.app);
    const newest = new Date(DAY0 + 6 * DAY + 10 * HOUR + 20 * 60_000);
    await appendAuditRecord(db.app, { ...syntheticRecord(rng(7)).record, accountId: A, eventName: 'Newest', outcome: 'success' } as AuditRecord, newest);
    const upToNow = { from: new Date(DAY0 + 6 * DAY), to: new Date(newest.getTime() + 60_000) };
    // Not folded yet: the tail from the log.
    expect((await answer(A, upToNow, ['HOUR'])).map((g) => g.count)).toEqual([1]);
    await catchUpUsageRollup(db.app);
    expect((await answer(A, upToNow, ['HOUR'])).map((g) => g.count)).toEqual([1]);
    // Now its hour (10:00, which ends after `to`) comes from the rollup: a tampered row shows.
    await sql`UPDATE audit_usage_hourly SET count = count + 1000 WHERE scope_account = ${A} AND event_name = 'Newest'`.execute(db.owner);
    try {
      expect((await answer(A, upToNow, ['HOUR'])).map((g) => g.count)).toEqual([1001]);
      expect((await answer(A, { from: upToNow.from, to: new Date(newest.getTime() + 1) }, ['OPERATION'])).map((g) => g.count)).toEqual([1001]);
      // An end at or before the newest record: that hour is read from the log.
      expect((await answer(A, { from: upToNow.from, to: newest }, ['HOUR'])).map((g) => g.count)).toEqual([]);
      expect((await answer(A, { from: upToNow.from, to: new Date(newest.getTime() - 1) }, ['OPERATION'])).map((g) => g.count)).toEqual([]);
    } finally {
      await sql`UPDATE audit_usage_hourly SET count = count - 1000 WHERE scope_account = ${A} AND event_name = 'Newest'`.execute(db.owner);
    }
  });

  it("readLastUse: each key's newest use, as the log has it, at every point of the fold", async () => {
    const arns = [...KEYS_A, ...KEYS_B, keyArn(A, 9)];
    const questions: AuditQueryFilter[] = [
      { outcome: 'success', eventNames: ['Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKey'] },
      { to: new Date(DAY0 + 2 * DAY + 5 * HOUR + 1) },
      { from: new Date(DAY0 + 7 * HOUR), to: new Date(DAY0 + 9 * DAY) },
      { errorCodes: ['AccessDeniedException'], readOnly: false },
    ];
    const check = async () => {
      for (const account of [A, B]) {
        for (const f of questions) {
          const expected = new Map(
            (await fromLog(account, f, ['KEY'])).filter((g) => g.key && arns.includes(g.key)).map((g) => [g.key!, g.lastSeen!.toISOString()]),
          );
          const actual = new Map([...(await readLastUse(db.app, account, f, arns))].map(([k, v]) => [k, v.lastSeen.toISOString()]));
          expect(actual, `${account} ${JSON.stringify(f)}`).toEqual(expected);
        }
      }
    };
    for (let i = 0; i < 5; i++)
      await appendAuditRecord(db.app, { ...syntheticRecord(rng(400 + i)).record, accountId: A } as AuditRecord, new Date(DAY0 + 30 * HOUR + i));
    await check();
    await advanceUsageRollup(db.app, { batchSize: 3 });
    await check();
    await catchUpUsageRollup(db.app);
    await check();
  });

  it('equals the log for random filters and groupings', async () => {
    await catchUpUsageRollup(db.app);
    const instant = fc.integer({ min: -2 * HOUR, max: 4 * DAY + 2 * HOUR }).map((ms) => new Date(DAY0 + ms));
    const filter = fc.record(
      {
        from: instant,
        to: instant,
        eventNames: fc.subarray(OPERATIONS, { minLength: 1 }),
        outcome: fc.constantFrom('success' as const, 'failure' as const),
        errorCodes: fc.subarray(['AccessDeniedException', 'NotFoundException'], { minLength: 1 }),
        readOnly: fc.boolean(),
        principalArn: fc.constantFrom(...principals(A)),
        keys: fc.constantFrom(...KEYS_A).map((arn) => [{ arn }]),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(filter, fc.subarray([...USAGE_DIMENSIONS]), fc.constantFrom(A, B), async (f, dims, account) => {
        expect(await answer(account, f, dims)).toEqual(await fromLog(account, f, dims));
      }),
      { numRuns: 60, seed: 6 },
    );
  });

  it('never folds past a transaction still in flight, and counts it once it commits', async () => {
    await catchUpUsageRollup(db.app);
    const at = new Date(DAY0 + DAY + 3 * HOUR);
    const probe = (n: number): AuditRecord =>
      ({ ...syntheticRecord(rng(n)).record, eventName: 'Probe', accountId: A, outcome: 'success', recipientAccountId: undefined }) as AuditRecord;
    const long = await db.app.startTransaction().execute();
    try {
      await appendAuditRecord(long, probe(1), at);
      await appendAuditRecord(db.app, probe(2), at);
      await appendAuditRecord(db.app, probe(3), at);
      // Records 2 and 3 committed, but after 1 in follower order: the fold waits for 1.
      await catchUpUsageRollup(db.app);
      const { transactionId } = await readUsageRollupCheckpoint(db.app);
      const { rows } = await sql<{ xid: string }>`SELECT pg_current_xact_id()::text AS xid`.execute(long);
      expect(transactionId < BigInt(rows[0]!.xid)).toBe(true);
      const probes = () => answer(A, { eventNames: ['Probe'] }, ['OPERATION']);
      expect((await probes()).map((g) => g.count)).toEqual([2]);
      await long.commit().execute();
      expect((await probes()).map((g) => g.count)).toEqual([3]);
      await catchUpUsageRollup(db.app);
      expect((await probes()).map((g) => g.count)).toEqual([3]);
      expect(await probes()).toEqual(await fromLog(A, { eventNames: ['Probe'] }, ['OPERATION']));
    } finally {
      if (!long.isCommitted && !long.isRolledBack) await long.rollback().execute();
    }
  });

  it('two folds at once: one runs, the other skips, nothing is counted twice', async () => {
    for (let i = 0; i < 30; i++)
      await appendAuditRecord(db.app, { ...syntheticRecord(rng(100 + i)).record, accountId: A } as AuditRecord, new Date(DAY0 + i * HOUR));
    const passes = await Promise.all([advanceUsageRollup(db.app, { batchSize: 1000 }), advanceUsageRollup(db.app, { batchSize: 1000 })]);
    expect(passes.map((p) => p.records).reduce((a, b) => a + b)).toBe(30);
    await catchUpUsageRollup(db.app);
    const { rows } = await sql<{ n: string }>`SELECT count(*)::text AS n FROM events WHERE type = 'AuditRecord'`.execute(db.owner);
    expect((await readUsageRollupCheckpoint(db.app)).records).toBe(Number(rows[0]!.n));
    await expectSameAnswers();
    await expectSameActivity();
  });

  it('answers exactly while the fold moves under the query', async () => {
    // A log the rollups are far behind on, then folds of a few records at a time, without pause,
    // while the same questions are asked: the checkpoint moves between (and during) the queries.
    for (let i = 0; i < 200; i++)
      await appendAuditRecord(db.app, { ...syntheticRecord(rng(300 + i)).record, accountId: A } as AuditRecord, new Date(DAY0 + (i % 90) * HOUR));
    const questions: [AuditQueryFilter, UsageDimension[]][] = [
      [{}, ['DAY']],
      [{ from: new Date(DAY0 + 5 * HOUR + 1), to: new Date(DAY0 + 3 * DAY) }, ['OPERATION']],
      [{ principalArnPrefix: `arn:aws:iam::${A}:` }, ['KEY']],
    ];
    const expected = await Promise.all(questions.map(([f, d]) => fromLog(A, f, d)));
    const carol = principals(A)[2]!;
    const expectedActivity = await activity(A, carol, ACTIVITY_RANGES[2]!, false);
    let folding = true;
    const fold = (async () => {
      while (folding) if ((await advanceUsageRollup(db.app, { batchSize: 3 })).caughtUp) break;
    })();
    try {
      for (let round = 0; round < 15; round++) {
        for (const [i, [f, d]] of questions.entries()) expect(await answer(A, f, d)).toEqual(expected[i]);
        expect(await activity(A, carol, ACTIVITY_RANGES[2]!)).toEqual(expectedActivity);
      }
    } finally {
      folding = false;
      await fold;
    }
    await catchUpUsageRollup(db.app);
    for (const [i, [f, d]] of questions.entries()) expect(await answer(A, f, d)).toEqual(expected[i]);
    expect(await activity(A, carol, ACTIVITY_RANGES[2]!)).toEqual(expectedActivity);
  });

  it('refuses to move the checkpoint for a fold that does not write every rollup (a worker from before the last rollup migration)', async () => {
    await catchUpUsageRollup(db.app);
    await appendAuditRecord(db.app, { ...syntheticRecord(rng(77)).record, accountId: A } as AuditRecord, new Date(DAY0 + 3 * HOUR));
    const before = await readUsageRollupCheckpoint(db.app);
    // What an old fold's transaction does last, after writing the rollups it knows.
    const oldFold = (declares?: string) =>
      db.app.transaction().execute(async (trx) => {
        if (declares) await sql`SELECT set_config('keyledger.usage_fold', ${declares}, true)`.execute(trx);
        await sql`INSERT INTO audit_usage_hourly (scope_account, hour, event_name, read_only, outcome, error_code, count, last_at, last_position)
                  VALUES (${A}, ${new Date(DAY0)}, 'Old', false, 'success', NULL, 1, ${new Date(DAY0)}, 1)`.execute(trx);
        await sql`UPDATE audit_usage_checkpoint SET records = records + 1, updated_at = now()`.execute(trx);
      });
    await expect(oldFold()).rejects.toThrow(/declares nothing\): upgrade the worker/);
    await expect(oldFold('0016')).rejects.toThrow(/declares 0016\): upgrade the worker/);
    expect(await readUsageRollupCheckpoint(db.app)).toEqual(before);
    expect((await answer(A, { eventNames: ['Old'] }, ['OPERATION'])).length).toBe(0);
    expect((await advanceUsageRollup(db.app)).records).toBe(1);
  });

  it('resetUsageRollups empties the rollups and the fold rebuilds them; answers stay the same throughout', async () => {
    await catchUpUsageRollup(db.app);
    const question: [AuditQueryFilter, UsageDimension[]] = [
      { from: new Date(DAY0 + 5 * HOUR + 1), to: new Date(DAY0 + 3 * DAY) },
      ['KEY', 'PRINCIPAL', 'OPERATION', 'DAY'],
    ];
    const bob = principals(A)[1]!;
    const before = { usage: await answer(A, ...question), activity: await activity(A, bob, ACTIVITY_RANGES[2]!) };
    await resetUsageRollups(db.owner);
    const { rows } = await sql<{ n: string }>`
      SELECT ((SELECT count(*) FROM audit_usage_hourly) + (SELECT count(*) FROM audit_usage_daily)
            + (SELECT count(*) FROM audit_usage_key_daily) + (SELECT count(*) FROM audit_usage_principal_daily))::text AS n`.execute(db.owner);
    expect(rows[0]!.n).toBe('0');
    expect(await readUsageRollupCheckpoint(db.app)).toMatchObject({ transactionId: 0n, globalPosition: 0n, records: 0, newestRecordedAt: null });
    expect({ usage: await answer(A, ...question), activity: await activity(A, bob, ACTIVITY_RANGES[2]!) }).toEqual(before);
    await catchUpUsageRollup(db.app);
    expect({ usage: await answer(A, ...question), activity: await activity(A, bob, ACTIVITY_RANGES[2]!) }).toEqual(before);
    await expectSameAnswers();
  });

  it('a read during which the rollups were reset and refolded to the same place is asked again', async () => {
    await catchUpUsageRollup(db.app);
    let reads = 0;
    const answered = await atStableCheckpoint(db.app, { from: new Date(DAY0), to: new Date(DAY0 + 4 * DAY) }, DAY, async (_range, seen) => {
      reads++;
      if (reads === 1) {
        // The rollups this read would have used are emptied, then rebuilt to the very same position.
        await resetUsageRollups(db.owner);
        await catchUpUsageRollup(db.app);
        const now = await readUsageRollupCheckpoint(db.app);
        expect([now.transactionId, now.globalPosition]).toEqual([seen.transactionId, seen.globalPosition]);
      }
      return reads;
    });
    expect(answered).toBe(2);
  });

  it("the worker's loop keeps the rollups caught up, and stops", async () => {
    for (let i = 0; i < 10; i++)
      await appendAuditRecord(db.app, { ...syntheticRecord(rng(200 + i)).record, accountId: A } as AuditRecord, new Date(DAY0 + i * HOUR));
    const { rows } = await sql<{ n: string }>`SELECT count(*)::text AS n FROM events WHERE type = 'AuditRecord'`.execute(db.owner);
    const loop = startUsageRollupLoop(db.app, createLogger('silent'), 20);
    try {
      await expect.poll(async () => (await readUsageRollupCheckpoint(db.app)).records, { timeout: 10_000 }).toBe(Number(rows[0]!.n));
    } finally {
      await loop.stop();
    }
    await loop.stop();
  });
});

/** A database of its own, migrated up to `migration` (included), for `body`; dropped after. */
async function atMigration(migration: string, body: (owner: Db) => Promise<void>): Promise<void> {
  const adminUrl = inject('adminDatabaseUrl');
  const name = `keyledger_test_m${migration.slice(0, 4)}_${randomUUID().slice(0, 8)}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const owner = openDatabase(databaseUrl(adminUrl, name), { as: 'owner', max: 2 });
  try {
    const migrator = new Migrator({ db: owner, provider: new SqlFileMigrationProvider() });
    expect((await migrator.migrateTo(migration)).error).toBeUndefined();
    await body(owner);
  } finally {
    await owner.destroy();
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

describe('migration 0016 (the rollup by key)', () => {
  it('fills audit_usage_key_daily from what the daily rollup already holds', async () => {
    await atMigration('0015_audit_grant_use', async (owner) => {
      // A fold that got somewhere before the upgrade: two principals' rows for one key and day.
      await sql`INSERT INTO audit_usage_daily
                  (scope_account, day, principal_arn, key_arn, key_rank, event_name, read_only, outcome, error_code, count, last_at, last_position) VALUES
        (${A}, '2026-04-01Z', 'p1', 'k1', 0, 'Decrypt', false, 'success', NULL, 3, '2026-04-01T05:00Z', 10),
        (${A}, '2026-04-01Z', 'p2', 'k1', 0, 'Decrypt', false, 'success', NULL, 4, '2026-04-01T07:00Z', 12),
        (${A}, '2026-04-01Z', 'p2', 'k1', 0, 'Decrypt', false, 'failure', 'AccessDeniedException', 1, '2026-04-01T08:00Z', 13),
        (${A}, '2026-04-02Z', NULL, NULL, 0, 'ListKeys', true, 'success', NULL, 2, '2026-04-02T01:00Z', 20)`.execute(owner);
      expect(await migrateToLatest(owner)).toContain('0016_audit_usage_by_key');
      const { rows } = await sql<Record<string, unknown>>`
        SELECT key_arn, event_name, outcome, count::int AS count, last_position::int AS last_position
          FROM audit_usage_key_daily ORDER BY day, outcome DESC`.execute(owner);
      expect(rows).toEqual([
        { key_arn: 'k1', event_name: 'Decrypt', outcome: 'success', count: 7, last_position: 12 },
        { key_arn: 'k1', event_name: 'Decrypt', outcome: 'failure', count: 1, last_position: 13 },
        { key_arn: null, event_name: 'ListKeys', outcome: 'success', count: 2, last_position: 20 },
      ]);
    });
  });
});

describe('migration 0018 (the rollup by principal)', () => {
  it('fills audit_usage_principal_daily from the log up to the checkpoint, and the fold goes on from there', async () => {
    await atMigration('0017_audit_usage_newest', async (owner) => {
      const r = rng(18);
      for (let i = 0; i < 120; i++) {
        const { record, at } = syntheticRecord(r);
        await appendAuditRecord(owner, record, at);
      }
      // A fold that had got to the 70th record before the upgrade.
      await sql`UPDATE audit_usage_checkpoint c SET transaction_id = e.transaction_id, global_position = e.global_position, records = 70,
                       newest_recorded_at = (SELECT max(recorded_at) FROM (SELECT recorded_at FROM events WHERE type = 'AuditRecord'
                                                                            ORDER BY transaction_id, global_position LIMIT 70) AS f)
                  FROM (SELECT transaction_id, global_position FROM events WHERE type = 'AuditRecord'
                         ORDER BY transaction_id, global_position OFFSET 69 LIMIT 1) AS e`.execute(owner);
      expect(await migrateToLatest(owner)).toContain('0018_audit_principal_activity');
      const { rows } = await sql<{ held: string; expected: string }>`
        SELECT (SELECT coalesce(sum(count), 0) FROM audit_usage_principal_daily WHERE dimension = 'operation')::text AS held,
               (SELECT count(*)
                       + count(*) FILTER (WHERE data ? 'recipientAccountId' AND (data ->> 'recipientAccountId') IS DISTINCT FROM (data ->> 'accountId'))
                  FROM (SELECT data FROM events WHERE type = 'AuditRecord' ORDER BY transaction_id, global_position LIMIT 70) AS folded
                 WHERE (data -> 'userIdentity' ->> 'principalArn') IS NOT NULL)::text AS expected`.execute(owner);
      expect(Number(rows[0]!.held)).toBe(Number(rows[0]!.expected));
      expect(Number(rows[0]!.held)).toBeGreaterThan(0);
      const same = async () => {
        for (const account of [A, B]) {
          for (const principalArn of ACTIVITY_PRINCIPALS) {
            for (const range of ACTIVITY_RANGES) {
              const q = { principalArn, ...range };
              expect(sortedBuckets(await readPrincipalActivity(owner, account, q)), `${account} ${principalArn} ${range.name}`).toEqual(
                sortedBuckets(await readPrincipalActivity(owner, account, q, { rollups: false })),
              );
            }
          }
        }
      };
      await same();
      expect(await catchUpUsageRollup(owner)).toBe(50);
      await same();
    });
  });
});
