/**
 * SQL of the forensic read side: the audit records (`AuditRecord` events) an
 * account may see, filtered, paged, grouped. Every expression here that an index
 * of sql/0010_audit_indexes.sql is built on is written exactly as it is there.
 *
 * Scope: an account sees the records of requests made in it (`accountId`) and,
 * as CloudTrail's recipientAccountId, records of requests other accounts made
 * on its keys. The two are separate branches of a UNION ALL, so each can use its
 * own index; pages order and limit each branch on its own.
 *
 * EXPLAIN notes (PostgreSQL 18, 2 cores; figures in the bench report):
 * - First page, no filter: Limit -> Index Scan Backward on
 *   events_audit_account_order (accountId = $1, transaction_id < horizon), and
 *   events_audit_by_recipient for the (small) recipient branch. A UNION ALL
 *   subquery got a Gather Merge over a parallel seq scan instead (no Merge
 *   Append): each branch has its own ORDER BY/LIMIT.
 * - Statistics: ANALYZE keeps none for expressions of partial indexes; without
 *   the CREATE STATISTICS of 0010 "accountId = x" was estimated at 0.5% and the
 *   first page walked events_audit_source_ip end to end (1.7 s at 200k records).
 * - Context pair over one day: BitmapOr of one Bitmap Index Scan per UTC day on
 *   events_audit_encryption_context_by_day (@> '[{"tenant":"acme"},{"@day":N}]':
 *   the tenant and day posting lists intersect inside the GIN index), then a
 *   Bitmap Heap Scan of only that tenant's records of those days -> top-N Sort.
 *   (0010's context index without the day made the heap visit every record of
 *   the tenant, all time: 110 ms at 1M records; the planner would not BitmapAnd
 *   it with the time index.)
 * - Principal (exact or LIKE prefix): Bitmap/Index Scan on events_audit_principal
 *   (accountId, principalArn text_pattern_ops, recorded_at).
 * - Key: Bitmap Index Scan on events_audit_resources (jsonb_path_ops @>); an alias
 *   adds one BitmapOr arm per key it pointed at, each with its position window.
 * - sourceIp CIDR: events_audit_source_ip, `<<=` turned into a btree range.
 * - dataKey lineage: events_audit_data_key (0006) and events_audit_destination_ciphertext.
 * - usageStatistics and principalActivity: see usage-statistics.ts and
 *   principal-activity.ts (rollups, plus the log's tail and edges).
 */
import { sql, type RawBuilder, type Transaction } from 'kysely';
import type { AuditRecord } from '../domain/audit-record.ts';
import type { Database, Db } from './database.ts';

type Executor = Db | Transaction<Database>;
type Condition = RawBuilder<unknown>;

/** A key an audit record must name in its resources, optionally only inside a window of the log. */
export interface KeyMatch {
  arn: string;
  /** Only records after this log position (exclusive): when an alias started pointing at the key. */
  afterPosition?: bigint;
  /** Only records before this log position (exclusive): when the alias moved away. */
  beforePosition?: bigint;
}

/** A filter with every reference already resolved (aliases to key windows, IP text to CIDR). */
export interface AuditQueryFilter {
  from?: Date | null;
  /** Exclusive. */
  to?: Date | null;
  eventNames?: readonly string[] | null;
  principalArn?: string | null;
  principalArnPrefix?: string | null;
  accessKeyId?: string | null;
  /** Any of these (an empty list matches nothing). */
  keys?: readonly KeyMatch[] | null;
  outcome?: 'success' | 'failure' | null;
  errorCodes?: readonly string[] | null;
  /** An address or a CIDR block, already validated. */
  sourceIp?: string | null;
  requestId?: string | null;
  dataKeyId?: string | null;
  /** Every pair present in one of the request's encryption contexts. */
  encryptionContext?: Record<string, string> | null;
  /** Every key present in the request's encryption contexts. */
  encryptionContextKeys?: readonly string[] | null;
  readOnly?: boolean | null;
}

/** A position in the page order. */
export interface AuditPosition {
  transactionId: bigint;
  globalPosition: bigint;
}

export interface AuditRow {
  globalPosition: bigint;
  transactionId: bigint;
  eventId: string;
  data: AuditRecord;
}

/** The error codes counted as "denied". */
export const DENIED_ERROR_CODES = ['AccessDeniedException'] as const;

const ACCOUNT = sql`(data ->> 'accountId')`;
const PRINCIPAL = sql`(data -> 'userIdentity' ->> 'principalArn')`;
const EVENT_NAME = sql`(data ->> 'eventName')`;

/**
 * `text` as a LIKE pattern matching itself (backslash is LIKE's default escape).
 *
 * @example
 * escapeLike('50%_off') // the text 50\%\_off: as a LIKE pattern, it matches '50%_off' only
 */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, '\\$&');
}

/** The WHERE conditions of a filter, scope excluded. */
function conditions(f: AuditQueryFilter): Condition[] {
  const c: Condition[] = [];
  if (f.from) c.push(sql`recorded_at >= ${f.from}`);
  if (f.to) c.push(sql`recorded_at < ${f.to}`);
  if (f.eventNames) {
    c.push(f.eventNames.length === 0 ? sql`false` : sql`${EVENT_NAME} IN (${sql.join(f.eventNames)})`);
  }
  if (f.principalArn != null) c.push(sql`${PRINCIPAL} = ${f.principalArn}`);
  if (f.principalArnPrefix != null) c.push(sql`${PRINCIPAL} LIKE ${`${escapeLike(f.principalArnPrefix)}%`}`);
  if (f.accessKeyId != null) c.push(sql`(data -> 'userIdentity' ->> 'accessKeyId') = ${f.accessKeyId}`);
  if (f.keys) {
    if (f.keys.length === 0) c.push(sql`false`);
    else {
      const arms = f.keys.map((k) => {
        const parts: Condition[] = [sql`(data -> 'resources') @> ${JSON.stringify([{ arn: k.arn }])}::jsonb`];
        if (k.afterPosition !== undefined) parts.push(sql`global_position > ${k.afterPosition.toString()}::bigint`);
        if (k.beforePosition !== undefined) parts.push(sql`global_position < ${k.beforePosition.toString()}::bigint`);
        return sql`(${sql.join(parts, sql` AND `)})`;
      });
      c.push(sql`(${sql.join(arms, sql` OR `)})`);
    }
  }
  if (f.outcome) c.push(sql`(data ->> 'outcome') = ${f.outcome}`);
  if (f.errorCodes) {
    c.push(f.errorCodes.length === 0 ? sql`false` : sql`(data ->> 'errorCode') IN (${sql.join(f.errorCodes)})`);
  }
  if (f.sourceIp != null) c.push(sql`audit_source_ip(data) <<= ${f.sourceIp}::inet`);
  // request-<id> is the record's own stream: the unique (stream_id, stream_version) index finds it.
  if (f.requestId != null) c.push(sql`stream_id = ${`request-${f.requestId}`}`);
  if (f.dataKeyId != null) {
    c.push(sql`data -> 'additionalEventData' ? 'dataKeyId'`);
    c.push(sql`(data -> 'additionalEventData' ->> 'dataKeyId') = ${f.dataKeyId}`);
  }
  if (f.encryptionContext && Object.keys(f.encryptionContext).length > 0) c.push(contextContainment(f.encryptionContext, f.from, f.to));
  if (f.encryptionContextKeys && f.encryptionContextKeys.length > 0) {
    c.push(sql`audit_encryption_context_keys(data) @> ${[...f.encryptionContextKeys]}::text[]`);
  }
  if (f.readOnly != null) c.push(sql`(data -> 'readOnly') = ${f.readOnly ? 'true' : 'false'}::jsonb`);
  return c;
}

/** Up to this many UTC days, a context filter asks the index for each day (sql/0014). */
const MAX_CONTEXT_DAYS = 31;
/** A UTC day, in milliseconds. */
export const DAY_MS = 86_400_000;

/**
 * `context` is contained in one of the request's encryption contexts. Over a
 * range of at most MAX_CONTEXT_DAYS days, one arm per UTC day with the day
 * element sql/0014 indexes (a BitmapOr of exact tenant-day posting lists);
 * otherwise the plain containment. The time range itself is a condition too.
 */
function contextContainment(context: Record<string, string>, from: Date | null | undefined, to: Date | null | undefined): Condition {
  const contexts = sql`audit_encryption_contexts_by_day(data, recorded_at)`;
  if (from && to && to.getTime() > from.getTime()) {
    const first = Math.floor(from.getTime() / DAY_MS);
    const last = Math.floor((to.getTime() - 1) / DAY_MS);
    if (last - first < MAX_CONTEXT_DAYS) {
      const arms: Condition[] = [];
      for (let day = first; day <= last; day++) arms.push(sql`${contexts} @> ${JSON.stringify([context, { '@day': day }])}::jsonb`);
      return sql`(${sql.join(arms, sql` OR `)})`;
    }
  }
  return sql`${contexts} @> ${JSON.stringify([context])}::jsonb`;
}

/**
 * The audit records `accountId` may see that match `filter`, as a FROM item
 * named `a` with the columns `selected`: its own requests, and requests of other
 * accounts on its keys (recipientAccountId).
 *
 * @example
 * await sql`SELECT count(*) AS n FROM ${scoped('111122223333', { outcome: 'failure' })}`.execute(db) // rows: [{ n: '12' }]
 */
export function scoped(accountId: string, filter: AuditQueryFilter, extra: Condition[] = []): RawBuilder<unknown> {
  const [own, recipient] = branches(accountId, filter, extra);
  return sql`(
    SELECT global_position, transaction_id, event_id, recorded_at, data FROM events WHERE ${own}
    UNION ALL
    SELECT global_position, transaction_id, event_id, recorded_at, data FROM events WHERE ${recipient}
  ) AS a`;
}

/** The WHERE clauses of the two scope branches (own requests; other accounts' requests on our keys). */
function branches(accountId: string, filter: AuditQueryFilter, extra: Condition[]): [RawBuilder<unknown>, RawBuilder<unknown>] {
  const where = [...conditions(filter), ...extra];
  const rest = where.length > 0 ? sql` AND ${sql.join(where, sql` AND `)}` : sql``;
  return [
    sql`type = 'AuditRecord' AND ${ACCOUNT} = ${accountId}${rest}`,
    sql`type = 'AuditRecord' AND data ? 'recipientAccountId' AND (data ->> 'recipientAccountId') = ${accountId}
       AND ${ACCOUNT} IS DISTINCT FROM ${accountId}${rest}`,
  ];
}

type RawRow = { global_position: string; transaction_id: string; event_id: string; data: AuditRecord };

const toRow = (r: RawRow): AuditRow => ({
  globalPosition: BigInt(r.global_position),
  transactionId: BigInt(r.transaction_id),
  eventId: r.event_id,
  data: r.data,
});

export interface AuditPageQuery {
  filter: AuditQueryFilter;
  /** Page order: 'desc' newest first. */
  direction: 'asc' | 'desc';
  /** Records strictly after this position in `direction`. */
  after?: AuditPosition | null;
  /** Records strictly before this position in `direction`. */
  before?: AuditPosition | null;
  /** How many, and from which end of the (after, before) window. */
  limit: number;
  fromEnd: boolean;
  horizon: bigint;
}

const positionSql = (p: AuditPosition) => sql`(${p.transactionId.toString()}::xid8, ${p.globalPosition.toString()}::bigint)`;

/**
 * One page of audit records in (transaction_id, global_position) order, below
 * the horizon. Returned in `direction` order whichever end it was taken from.
 *
 * @example
 * const horizon = await logHorizon(db);
 * await readAuditPage(db, '111122223333', { filter: { outcome: 'failure' }, direction: 'desc', limit: 50, fromEnd: false, horizon })
 * // up to 50 AuditRows { globalPosition, transactionId, eventId, data }, newest first
 */
export async function readAuditPage(db: Executor, accountId: string, q: AuditPageQuery): Promise<AuditRow[]> {
  const extra: Condition[] = [sql`transaction_id < ${q.horizon.toString()}::xid8`];
  const greater = q.direction === 'asc' ? sql`>` : sql`<`;
  const lesser = q.direction === 'asc' ? sql`<` : sql`>`;
  if (q.after) extra.push(sql`(transaction_id, global_position) ${greater} ${positionSql(q.after)}`);
  if (q.before) extra.push(sql`(transaction_id, global_position) ${lesser} ${positionSql(q.before)}`);
  // Taking the page from the far end reverses the scan; the rows are put back in order below.
  const scanDesc = (q.direction === 'desc') !== q.fromEnd;
  const dir = scanDesc ? sql`DESC` : sql`ASC`;
  // Each branch ordered and limited on its own: Postgres does not merge-append
  // the two branches of a UNION ALL subquery, and would sort the whole account.
  const [own, recipient] = branches(accountId, q.filter, extra);
  const order = sql`ORDER BY transaction_id ${dir}, global_position ${dir} LIMIT ${q.limit}`;
  const { rows } = await sql<RawRow>`
    (SELECT global_position, transaction_id, event_id, data FROM events WHERE ${own} ${order})
    UNION ALL
    (SELECT global_position, transaction_id, event_id, data FROM events WHERE ${recipient} ${order})
    ${order}`.execute(db);
  const page = rows.map(toRow);
  return q.fromEnd ? page.reverse() : page;
}

/**
 * Whether any matching record lies strictly beyond `from` in `direction` ('asc': greater), below the horizon.
 *
 * @example
 * await auditRecordExistsBeyond(db, '111122223333', filter, last, 'desc', horizon) // true when an older matching record follows `last`: hasNextPage
 */
export async function auditRecordExistsBeyond(
  db: Executor,
  accountId: string,
  filter: AuditQueryFilter,
  from: AuditPosition,
  direction: 'asc' | 'desc',
  horizon: bigint,
): Promise<boolean> {
  const cmp = direction === 'asc' ? sql`>` : sql`<`;
  const [own, recipient] = branches(accountId, filter, [
    sql`transaction_id < ${horizon.toString()}::xid8`,
    sql`(transaction_id, global_position) ${cmp} ${positionSql(from)}`,
  ]);
  const { rows } = await sql<{ one: number }>`
    SELECT 1 AS one WHERE EXISTS (SELECT 1 FROM events WHERE ${own}) OR EXISTS (SELECT 1 FROM events WHERE ${recipient})`.execute(db);
  return rows.length > 0;
}

/**
 * Every record that names `dataKeyId` as the data key it generated or used, oldest first (at most `limit`).
 *
 * @example
 * await readDataKeyRecords(db, '111122223333', dataKeyId, 100) // [the GenerateDataKey record, then each Decrypt of it], oldest first
 */
export async function readDataKeyRecords(db: Executor, accountId: string, dataKeyId: string, limit: number): Promise<AuditRow[]> {
  const { rows } = await sql<RawRow>`
    SELECT global_position, transaction_id, event_id, data FROM ${scoped(accountId, { dataKeyId })}
     ORDER BY global_position LIMIT ${limit}`.execute(db);
  return rows.map(toRow);
}

/**
 * Counts of the uses of a data key beyond the first rows read (lineage of a very hot data key).
 *
 * @example
 * await countDataKeyRecords(db, '111122223333', dataKeyId) // { total: 1204, failures: 3, denied: 2 }
 */
export async function countDataKeyRecords(db: Executor, accountId: string, dataKeyId: string): Promise<{ total: number; failures: number; denied: number }> {
  const { rows } = await sql<{ total: string; failures: string; denied: string }>`
    SELECT count(*) AS total,
           count(*) FILTER (WHERE (data ->> 'outcome') = 'failure') AS failures,
           count(*) FILTER (WHERE (data ->> 'errorCode') IN (${sql.join(DENIED_ERROR_CODES)})) AS denied
      FROM ${scoped(accountId, { dataKeyId })}`.execute(db);
  const r = rows[0]!;
  return { total: Number(r.total), failures: Number(r.failures), denied: Number(r.denied) };
}

/**
 * The ReEncrypt records whose result was the ciphertext `ciphertextId`.
 *
 * @example
 * await readReEncryptionsInto(db, '111122223333', ciphertextId) // [the ReEncrypt record that produced it], usually one
 */
export async function readReEncryptionsInto(db: Executor, accountId: string, ciphertextId: string): Promise<AuditRow[]> {
  const { rows } = await sql<RawRow>`
    SELECT global_position, transaction_id, event_id, data FROM ${scoped(accountId, {}, [
      sql`data -> 'additionalEventData' ? 'destinationCiphertextId'`,
      sql`(data -> 'additionalEventData' ->> 'destinationCiphertextId') = ${ciphertextId}`,
    ])} ORDER BY global_position`.execute(db);
  return rows.map(toRow);
}

/**
 * The newest failed records matching `filter` (denied attempts, with an errorCodes filter).
 *
 * @example
 * await readNewestRecords(db, '111122223333', { errorCodes: DENIED_ERROR_CODES }, 10) // the 10 newest denied requests, newest first
 */
export async function readNewestRecords(db: Executor, accountId: string, filter: AuditQueryFilter, limit: number): Promise<AuditRow[]> {
  const { rows } = await sql<RawRow>`
    SELECT global_position, transaction_id, event_id, data FROM ${scoped(accountId, filter)}
     ORDER BY recorded_at DESC, global_position DESC LIMIT ${limit}`.execute(db);
  return rows.map(toRow);
}

/**
 * The alias streams of `accountId` whose events ever named `keyId` as their target.
 *
 * @example
 * await readAliasStreamsOfKey(db, '111122223333', keyId) // ['alias-111122223333-alias/orders', …], sorted
 */
export async function readAliasStreamsOfKey(db: Executor, accountId: string, keyId: string): Promise<string[]> {
  const prefix = `alias-${accountId}-`;
  const { rows } = await sql<{ stream_id: string }>`
    SELECT DISTINCT stream_id FROM events
     WHERE type IN ('AliasCreated', 'AliasUpdated', 'AliasDeleted')
       AND stream_id LIKE ${`${escapeLike(prefix)}%`}
       AND ((data ->> 'targetKeyId') = ${keyId} OR (data ->> 'previousTargetKeyId') = ${keyId})
     ORDER BY stream_id`.execute(db);
  return rows.map((r) => r.stream_id);
}

/**
 * The streams of the grants created on `keyId` up to `asOf` (retired or not: fold each to know).
 *
 * @example
 * await readGrantStreamsOfKey(db, keyId, asOf) // ['grant-0c23…', …]: fold each stream to know whether it was live at asOf
 */
export async function readGrantStreamsOfKey(db: Executor, keyId: string, asOf: Date): Promise<string[]> {
  const rows = await db
    .selectFrom('events')
    .select('stream_id')
    .distinct()
    .where('type', '=', 'GrantCreated')
    .where(sql<string>`data ->> 'keyId'`, '=', keyId)
    .where('recorded_at', '<=', asOf)
    .execute();
  return rows.map((r) => r.stream_id);
}

/**
 * The audit records written in the same transactions as `transactionIds` (the requests behind lifecycle events).
 *
 * @example
 * await readAuditRecordsOfTransactions(db, [lifecycleEvent.transactionId]) // [the DisableKey request's AuditRecord]
 * await readAuditRecordsOfTransactions(db, [])                            // [] without a query
 */
export async function readAuditRecordsOfTransactions(db: Executor, transactionIds: readonly bigint[]): Promise<AuditRow[]> {
  if (transactionIds.length === 0) return [];
  const { rows } = await sql<RawRow>`
    SELECT global_position, transaction_id, event_id, data FROM events
     WHERE transaction_id = ANY(${transactionIds.map(String)}::xid8[]) AND type = 'AuditRecord'
     ORDER BY global_position`.execute(db);
  return rows.map(toRow);
}
