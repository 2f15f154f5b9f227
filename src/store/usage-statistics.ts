/**
 * usageStatistics: request counts grouped by key, principal, operation, day or
 * hour, answered from the usage rollups (usage-rollup.ts) where the question
 * allows, and from the audit records otherwise. Both give the same answer; the
 * rollups make it a read of thousands of rows instead of millions.
 *
 * One statement adds three parts:
 * - the rollup's buckets wholly inside [from, to) (the "inner" range): every
 *   record at or before the checkpoint;
 * - the records of the inner range after the checkpoint, from the log (the tail
 *   the worker has not folded yet);
 * - the records of the partial buckets at both ends, from the log.
 * The checkpoint is read before and after it (see readUsageStatistics), so the
 * rollups and the tail meet exactly at the checkpoint the statement saw.
 *
 * Which rollup: the hourly one (no key, no principal) when neither is grouped or
 * filtered on; when they are and HOUR is not grouped, the daily one by key
 * (without the principal) or, with the principal, the full daily one; none when
 * the filter names something the rollups do not keep (access key, source IP,
 * request, data key, encryption context, an alias's time windows).
 *
 * EXPLAIN notes (10M records): the tail is `(transaction_id, global_position) >
 * (literal checkpoint)`, an Index Cond on events_audit_account_order
 * (accountId, transaction_id, global_position); with the checkpoint as InitPlan
 * parameters the planner could not see how small the tail is and seq-scanned
 * the log (6 s). The edges use events_audit_time; the rollup parts read
 * audit_usage_hourly (tens of thousands of rows for 90 days) or
 * audit_usage_daily.
 */
import { sql, type RawBuilder, type Transaction } from 'kysely';
import { DAY_MS, DENIED_ERROR_CODES, escapeLike, scoped, type AuditQueryFilter } from './audit-queries.ts';
import type { Database, Db } from './database.ts';
import { readUsageRollupCheckpoint, type UsageRollupCheckpoint } from './usage-rollup.ts';

type Executor = Db | Transaction<Database>;

export const USAGE_DIMENSIONS = ['KEY', 'PRINCIPAL', 'OPERATION', 'DAY', 'HOUR'] as const;
export type UsageDimension = (typeof USAGE_DIMENSIONS)[number];

export interface UsageGroup {
  key: string | null;
  principal: string | null;
  operation: string | null;
  day: Date | null;
  hour: Date | null;
  count: number;
  failures: number;
  denied: number;
  /** The newest record of the group. */
  lastSeen: Date | null;
  /** Its log position (the evidence of "last used"). */
  lastPosition: bigint | null;
}

type RollupSource = 'hourly' | 'daily' | 'daily-key';

const HOUR_MS = 3_600_000;

const COLUMN: Record<UsageDimension, keyof UsageGroup> = { KEY: 'key', PRINCIPAL: 'principal', OPERATION: 'operation', DAY: 'day', HOUR: 'hour' };

/**
 * The rollup that can answer this question, if any.
 *
 * @example
 * usageRollupFor({}, ['DAY'])                              // 'hourly'
 * usageRollupFor({}, ['PRINCIPAL', 'DAY'])                 // 'daily'
 * usageRollupFor({ sourceIp: '10.0.0.0/8' }, ['OPERATION']) // null: no rollup keeps source addresses, the log answers
 */
export function usageRollupFor(filter: AuditQueryFilter, dims: readonly UsageDimension[]): RollupSource | null {
  const keptElsewhere =
    filter.accessKeyId != null ||
    filter.sourceIp != null ||
    filter.requestId != null ||
    filter.dataKeyId != null ||
    (filter.encryptionContext != null && Object.keys(filter.encryptionContext).length > 0) ||
    (filter.encryptionContextKeys != null && filter.encryptionContextKeys.length > 0);
  if (keptElsewhere) return null;
  const byPrincipal = dims.includes('PRINCIPAL') || filter.principalArn != null || filter.principalArnPrefix != null;
  const byKeyOrPrincipal = byPrincipal || dims.includes('KEY') || filter.keys != null;
  if (!byKeyOrPrincipal) return 'hourly';
  if (dims.includes('HOUR')) return null;
  if (filter.keys != null) {
    // One key, no alias window, not grouped by key: each matching record is exactly one daily row.
    // (Grouped by key, a ReEncrypt matching key A also counts under its other key B: only the log knows B.)
    const [only, ...more] = filter.keys;
    if (!only || more.length > 0 || only.afterPosition !== undefined || only.beforePosition !== undefined || dims.includes('KEY')) return null;
  }
  return byPrincipal ? 'daily' : 'daily-key';
}

const ceilTo = (d: Date, grain: number) => new Date(Math.ceil(d.getTime() / grain) * grain);
const floorTo = (d: Date, grain: number) => new Date(Math.floor(d.getTime() / grain) * grain);

/**
 * Request counts grouped by any of key, principal, operation, day, hour (UTC).
 * A request on two keys (ReEncrypt) counts once under each; one on no key
 * (aliases and principals are not keys) under a null key. Groups come sorted by
 * the dimensions, at most `limit`; with no dimension, one group (the total).
 *
 * @example
 * const perDay = await readUsageStatistics(trx, accountId, { from, to }, ['DAY'], 1000);
 */
export async function readUsageStatistics(
  db: Executor,
  accountId: string,
  filter: AuditQueryFilter,
  groupBy: readonly UsageDimension[],
  limit: number,
  options: { rollups?: boolean } = {},
): Promise<UsageGroup[]> {
  const dims = [...new Set(groupBy)];
  const source = options.rollups === false ? null : usageRollupFor(filter, dims);
  const fromLogOnly = async () => toGroups(await runParts(db, [logPart(accountId, filter, dims)], dims, limit));
  if (source === null) return fromLogOnly();
  const grain = source === 'hourly' ? HOUR_MS : DAY_MS;
  const rows = await atStableCheckpoint(db, filter, grain, (range, checkpoint) =>
    runParts(
      db,
      [rollupPart(source, accountId, filter, dims, range), ...logParts(filter, range, checkpoint, (f, after) => logPart(accountId, f, dims, after))],
      dims,
      limit,
    ),
  );
  return rows ? toGroups(rows) : fromLogOnly();
}

export interface RollupRange {
  innerFrom: Date | null;
  innerTo: Date | null;
  tailTo: Date | null;
  upperEdge: boolean;
}

/**
 * Runs `read` with the rollups' range and checkpoint, so that the rollups and
 * the log's tail meet exactly at the checkpoint the statement saw. The
 * checkpoint goes into the statement as literals, so the planner sees how few
 * records follow it (as InitPlan parameters it guessed a third of the log and
 * scanned all of it). The fold may move it meanwhile: it only moves forward,
 * and every move (a reset too) writes a new version of the row, so the same
 * row version before and after the read is the checkpoint the read saw; else
 * ask again. Null: no whole bucket to take from the rollups, or a fold moving under
 * every attempt (then the log alone answers).
 *
 * @example
 * const rows = await atStableCheckpoint(db, filter, DAY_MS, (range, checkpoint) =>
 *   runParts(db, [rollupPart(source, accountId, filter, dims, range), ...logParts(filter, range, checkpoint, part)], dims, limit),
 * ); // the read's rows, or null: then the log alone answers
 */
export async function atStableCheckpoint<T>(
  db: Executor,
  filter: AuditQueryFilter,
  grain: number,
  read: (range: RollupRange, checkpoint: UsageRollupCheckpoint) => Promise<T>,
): Promise<T | null> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const checkpoint = await readUsageRollupCheckpoint(db);
    const range = rollupRange(filter, grain, checkpoint);
    if (!range) return null;
    const result = await read(range, checkpoint);
    const after = await readUsageRollupCheckpoint(db);
    // Not the position: a reset (resetUsageRollups) moves it back, and a fold may bring it to the same place again.
    if (after.rowVersion === checkpoint.rowVersion) return result;
  }
  return null;
}

/**
 * Which buckets the rollup answers: those wholly inside [from, to), and the
 * last, partial one too when every folded record is before `to` (a range up
 * to now). The log answers the tail after the checkpoint inside [innerFrom,
 * tailTo) and the partial buckets left at the ends. Null: no whole bucket.
 */
function rollupRange(filter: AuditQueryFilter, grain: number, checkpoint: UsageRollupCheckpoint): RollupRange | null {
  const innerFrom = filter.from ? ceilTo(filter.from, grain) : null;
  let innerTo = filter.to ? floorTo(filter.to, grain) : null;
  let tailTo = innerTo;
  let upperEdge = filter.to != null && innerTo != null && filter.to.getTime() > innerTo.getTime();
  if (upperEdge && checkpoint.newestRecordedAt && filter.to!.getTime() > checkpoint.newestRecordedAt.getTime()) {
    innerTo = ceilTo(filter.to!, grain);
    tailTo = filter.to!;
    upperEdge = false;
  }
  if (innerFrom && innerTo && innerFrom.getTime() >= innerTo.getTime()) return null;
  return { innerFrom, innerTo, tailTo, upperEdge };
}

/**
 * The newest matching record of each of `keyArns` (a KEY grouping that only
 * wants the last use): from the rollup by key, one index probe per key for its
 * newest day instead of reading every day of every key, plus the log's tail
 * and edges. Keys never used are absent.
 *
 * @example
 * const last = await readLastUse(trx, accountId, { to, outcome: 'success', eventNames: ['Decrypt'] }, arns);
 */
export async function readLastUse(
  db: Executor,
  accountId: string,
  filter: AuditQueryFilter,
  keyArns: readonly string[],
): Promise<Map<string, { lastSeen: Date; lastPosition: bigint }>> {
  const result = new Map<string, { lastSeen: Date; lastPosition: bigint }>();
  if (keyArns.length === 0) return result;
  const add = (groups: { key: string | null; lastSeen: Date | null; lastPosition: bigint | null }[]) => {
    for (const g of groups) {
      if (g.key === null || g.lastSeen === null || g.lastPosition === null || !keyArns.includes(g.key)) continue;
      const seen = result.get(g.key);
      if (!seen || g.lastSeen.getTime() > seen.lastSeen.getTime()) result.set(g.key, { lastSeen: g.lastSeen, lastPosition: g.lastPosition });
    }
  };
  if (usageRollupFor(filter, ['KEY']) !== 'daily-key') {
    add(await readUsageStatistics(db, accountId, filter, ['KEY'], Number.MAX_SAFE_INTEGER));
    return result;
  }
  const found = await atStableCheckpoint(db, filter, DAY_MS, async (range, checkpoint) => {
    const logRows = await runParts(
      db,
      logParts(filter, range, checkpoint, (f, after) => logPart(accountId, f, ['KEY'], after)),
      ['KEY'],
      Number.MAX_SAFE_INTEGER,
    );
    const { rows: rolled } = await sql<{ key: string; last_seen: Date | null; last_position: string | null }>`
      SELECT k.arn AS key, n.last_seen, n.last_position::text AS last_position
        FROM unnest(${[...keyArns]}::text[]) AS k(arn)
        CROSS JOIN LATERAL (
          SELECT max(x.last_at) AS last_seen, max(x.last_position) AS last_position
            FROM audit_usage_key_daily x
           WHERE ${rollupConditions('x', accountId, filter, range, [sql`x.key_arn = k.arn`])}
             AND x.day = (SELECT max(y.day) FROM audit_usage_key_daily y WHERE ${rollupConditions('y', accountId, filter, range, [sql`y.key_arn = k.arn`])})
        ) AS n`.execute(db);
    return { logRows, rolled };
  });
  if (!found) {
    add(await readUsageStatistics(db, accountId, filter, ['KEY'], Number.MAX_SAFE_INTEGER, { rollups: false }));
    return result;
  }
  add(toGroups(found.logRows));
  add(found.rolled.map((r) => ({ key: r.key, lastSeen: r.last_seen, lastPosition: r.last_position === null ? null : BigInt(r.last_position) })));
  return result;
}

/** Adds up the parts' rows into groups. */
async function runParts(db: Executor, parts: RawBuilder<unknown>[], dims: UsageDimension[], limit: number): Promise<Record<string, unknown>[]> {
  const groupExprs = dims.map((d) => sql.ref(`u.${COLUMN[d]}`));
  const selected = dims.map((d) => sql`${sql.ref(`u.${COLUMN[d]}`)} AS ${sql.ref(COLUMN[d])}`);
  const { rows } = await sql<Record<string, unknown>>`
    SELECT ${sql.join(
      [
        ...selected,
        sql`coalesce(sum(u.n), 0)::text AS count`,
        sql`coalesce(sum(u.n) FILTER (WHERE u.outcome = 'failure'), 0)::text AS failures`,
        sql`coalesce(sum(u.n) FILTER (WHERE u.code IN (${sql.join(DENIED_ERROR_CODES)})), 0)::text AS denied`,
        sql`max(u.last_at) AS last_seen`,
        sql`max(u.last_position)::text AS last_position`,
      ],
      sql`, `,
    )}
      FROM (${sql.join(parts, sql` UNION ALL `)}) AS u
     ${groupExprs.length > 0 ? sql`GROUP BY ${sql.join(groupExprs)} ORDER BY ${sql.join(groupExprs.map((e) => sql`${e} NULLS FIRST`))}` : sql``}
     LIMIT ${limit}`.execute(db);
  return rows;
}

function toGroups(rows: Record<string, unknown>[]): UsageGroup[] {
  return rows.map((r) => ({
    key: (r['key'] as string | undefined) ?? null,
    principal: (r['principal'] as string | undefined) ?? null,
    operation: (r['operation'] as string | undefined) ?? null,
    day: (r['day'] as Date | undefined) ?? null,
    hour: (r['hour'] as Date | undefined) ?? null,
    count: Number(r['count']),
    failures: Number(r['failures']),
    denied: Number(r['denied']),
    lastSeen: (r['last_seen'] as Date | null) ?? null,
    lastPosition: r['last_position'] != null ? BigInt(r['last_position'] as string) : null,
  }));
}

/**
 * The audit records matching `filter`, one row per record (per key of it when
 * grouped by key), with the columns every part has. `afterCheckpoint`: only the
 * records the rollups do not hold yet.
 */
function logPart(accountId: string, filter: AuditQueryFilter, dims: UsageDimension[], afterCheckpoint?: UsageRollupCheckpoint): RawBuilder<unknown> {
  const byKey = dims.includes('KEY');
  const keys = byKey
    ? sql`LEFT JOIN LATERAL (SELECT DISTINCT e ->> 'arn' AS arn FROM jsonb_array_elements(
             CASE WHEN jsonb_typeof(a.data -> 'resources') = 'array' THEN a.data -> 'resources' ELSE '[]'::jsonb END) AS e
           WHERE e ->> 'type' = 'AWS::KMS::Key') AS k ON true`
    : sql``;
  return sql`SELECT ${byKey ? sql`k.arn` : sql`NULL::text`} AS key,
                    a.data -> 'userIdentity' ->> 'principalArn' AS principal,
                    a.data ->> 'eventName' AS operation,
                    date_trunc('day', a.recorded_at, 'UTC') AS day,
                    date_trunc('hour', a.recorded_at, 'UTC') AS hour,
                    a.data ->> 'outcome' AS outcome, a.data ->> 'errorCode' AS code,
                    1::bigint AS n, a.recorded_at AS last_at, a.global_position AS last_position
               FROM ${scoped(accountId, filter, afterCheckpointCondition(afterCheckpoint))} ${keys}`;
}

/**
 * The records after `checkpoint` (none: every record), as extra conditions for
 * `scoped`. The digits were read from the database; inlined as literals so the
 * planner sees how few records follow the checkpoint.
 *
 * @example
 * afterCheckpointCondition(checkpoint) // [sql`(transaction_id, global_position) > ('918'::xid8, '52311'::bigint)`], digits inlined
 * afterCheckpointCondition(undefined)  // []
 */
export function afterCheckpointCondition(checkpoint: UsageRollupCheckpoint | undefined): RawBuilder<unknown>[] {
  if (!checkpoint) return [];
  return [
    sql`(transaction_id, global_position) > (${sql.lit(checkpoint.transactionId.toString())}::xid8, ${sql.lit(checkpoint.globalPosition.toString())}::bigint)`,
  ];
}

/**
 * What the log adds to the rollups over `range`: the tail after the checkpoint,
 * and the partial buckets at the ends, each built by `part` (its filter, and the
 * checkpoint for the tail).
 *
 * @example
 * logParts({ from, to }, range, checkpoint, (f, after) => logPart(accountId, f, dims, after))
 * // [the tail after the checkpoint, then the partial bucket before range.innerFrom and after range.innerTo when there are any]
 */
export function logParts(
  filter: AuditQueryFilter,
  range: RollupRange,
  checkpoint: UsageRollupCheckpoint,
  part: (filter: AuditQueryFilter, afterCheckpoint?: UsageRollupCheckpoint) => RawBuilder<unknown>,
): RawBuilder<unknown>[] {
  const { innerFrom, innerTo, tailTo, upperEdge } = range;
  const parts = [part({ ...filter, from: innerFrom, to: tailTo }, checkpoint)];
  if (innerFrom && filter.from && filter.from.getTime() < innerFrom.getTime()) parts.push(part({ ...filter, to: innerFrom }));
  if (upperEdge) parts.push(part({ ...filter, from: innerTo }));
  return parts;
}

/**
 * The WHERE of a rollup table aliased `r` (bucket column hour or day) for the
 * rollup's part of `range`: scope, buckets, and the filters every rollup keeps.
 *
 * @example
 * sql`SELECT sum(r.count) FROM audit_usage_daily r WHERE ${rollupConditions('r', '111122223333', { outcome: 'failure' }, range)}`
 * // WHERE r.scope_account = $1 AND r.day >= $2 AND r.day < $3 AND r.outcome = $4
 */
export function rollupConditions(
  r: string,
  accountId: string,
  filter: AuditQueryFilter,
  range: RollupRange,
  extra: RawBuilder<unknown>[] = [],
  bucket = 'day',
): RawBuilder<unknown> {
  const col = (name: string) => sql.ref(`${r}.${name}`);
  const c: RawBuilder<unknown>[] = [sql`${col('scope_account')} = ${accountId}`, ...extra];
  if (range.innerFrom) c.push(sql`${col(bucket)} >= ${range.innerFrom}`);
  if (range.innerTo) c.push(sql`${col(bucket)} < ${range.innerTo}`);
  if (filter.eventNames) c.push(filter.eventNames.length === 0 ? sql`false` : sql`${col('event_name')} IN (${sql.join(filter.eventNames)})`);
  if (filter.outcome) c.push(sql`${col('outcome')} = ${filter.outcome}`);
  if (filter.errorCodes) c.push(filter.errorCodes.length === 0 ? sql`false` : sql`${col('error_code')} IN (${sql.join(filter.errorCodes)})`);
  if (filter.readOnly != null) c.push(sql`${col('read_only')} = ${filter.readOnly}`);
  return sql.join(c, sql` AND `);
}

/** The rollup's buckets in the range matching `filter` (already known to be answerable). */
function rollupPart(source: RollupSource, accountId: string, filter: AuditQueryFilter, dims: UsageDimension[], range: RollupRange): RawBuilder<unknown> {
  if (source === 'hourly') {
    return sql`SELECT NULL::text AS key, NULL::text AS principal, r.event_name AS operation,
                      date_trunc('day', r.hour, 'UTC') AS day, r.hour AS hour,
                      r.outcome, r.error_code AS code, r.count AS n, r.last_at, r.last_position
                 FROM audit_usage_hourly r WHERE ${rollupConditions('r', accountId, filter, range, [], 'hour')}`;
  }
  // Every key's row when grouped by key or filtered on one key; else the record's first row only.
  const extra: RawBuilder<unknown>[] = [];
  if (filter.keys != null) extra.push(sql`r.key_arn = ${filter.keys[0]!.arn}`);
  else if (!dims.includes('KEY')) extra.push(sql`r.key_rank = 0`);
  if (source === 'daily-key') {
    return sql`SELECT r.key_arn AS key, NULL::text AS principal, r.event_name AS operation,
                      r.day AS day, NULL::timestamptz AS hour,
                      r.outcome, r.error_code AS code, r.count AS n, r.last_at, r.last_position
                 FROM audit_usage_key_daily r WHERE ${rollupConditions('r', accountId, filter, range, extra)}`;
  }
  if (filter.principalArn != null) extra.push(sql`r.principal_arn = ${filter.principalArn}`);
  if (filter.principalArnPrefix != null) extra.push(sql`r.principal_arn LIKE ${`${escapeLike(filter.principalArnPrefix)}%`}`);
  return sql`SELECT r.key_arn AS key, r.principal_arn AS principal, r.event_name AS operation,
                    r.day AS day, NULL::timestamptz AS hour,
                    r.outcome, r.error_code AS code, r.count AS n, r.last_at, r.last_position
               FROM audit_usage_daily r WHERE ${rollupConditions('r', accountId, filter, range, extra)}`;
}
