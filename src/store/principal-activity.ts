/**
 * principalActivity's counts: what one principal did in [from, to), by
 * operation, source IP, access key and key, with failures, denials and the
 * first and last request of each.
 *
 * Answered like usageStatistics (usage-statistics.ts): the whole UTC days in the
 * range from the rollup by principal (sql/0018), plus from the log the records
 * after the rollups' checkpoint and the partial days at both ends, in one
 * statement at a checkpoint read before and after it.
 *
 * EXPLAIN notes (10M records, a principal with 16.5k records in 30 days): the
 * rollup part is an Index Only Scan of audit_usage_principal_daily_group on
 * (scope_account, principal_arn, day), 6.4k index tuples; the tail is an Index
 * Cond on the literal checkpoint (events_follow_order); the two partial days use
 * events_audit_principal (560 records). 36 ms in all, against 260-575 ms
 * reading every record from the heap. The denied attempts listed beside it
 * (service/audit/usage.ts) use events_audit_failures_principal (sql/0020).
 */
import { sql, type RawBuilder, type Transaction } from 'kysely';
import { DAY_MS, DENIED_ERROR_CODES, scoped, type AuditQueryFilter } from './audit-queries.ts';
import type { Database, Db } from './database.ts';
import { activityDimensions, type UsageRollupCheckpoint } from './usage-rollup.ts';
import { afterCheckpointCondition, atStableCheckpoint, logParts, rollupConditions, type RollupRange } from './usage-statistics.ts';

type Executor = Db | Transaction<Database>;

export interface ActivityBucket {
  /** operation | sourceIp | accessKey | key | total */
  dimension: string;
  value: string | null;
  count: number;
  failures: number;
  denied: number;
  first: Date;
  last: Date;
}

export interface PrincipalActivityQuery {
  principalArn: string;
  from: Date;
  to: Date;
}

/**
 * What one principal did in [from, to): a bucket per (dimension, value), and a
 * 'total' bucket (absent when it did nothing). A record counts once under its
 * operation, source IP and access key, and once under each distinct key it
 * names. `rollups: false` reads the log only (the same answer, slower).
 *
 * @example
 * const buckets = await readPrincipalActivity(trx, accountId, { principalArn, from, to });
 */
export async function readPrincipalActivity(
  db: Executor,
  accountId: string,
  query: PrincipalActivityQuery,
  options: { rollups?: boolean } = {},
): Promise<ActivityBucket[]> {
  const filter: AuditQueryFilter = { principalArn: query.principalArn, from: query.from, to: query.to };
  const rows =
    (options.rollups === false
      ? null
      : await atStableCheckpoint(db, filter, DAY_MS, (range, checkpoint) =>
          sumParts(db, [rollupPart(accountId, filter, range), ...logParts(filter, range, checkpoint, (f, after) => logPart(accountId, f, after))]),
        )) ?? (await sumParts(db, [logPart(accountId, filter)]));
  const buckets = rows.map((r): ActivityBucket => ({
    dimension: r.dimension,
    value: r.value,
    count: Number(r.count),
    failures: Number(r.failures),
    denied: Number(r.denied),
    first: r.first,
    last: r.last,
  }));
  // Every record has exactly one operation (null included): the total is their sum.
  const operations = buckets.filter((b) => b.dimension === 'operation');
  if (operations.length === 0) return buckets;
  const total = operations.reduce((t, b) => ({
    ...t,
    count: t.count + b.count,
    failures: t.failures + b.failures,
    denied: t.denied + b.denied,
    first: b.first < t.first ? b.first : t.first,
    last: b.last > t.last ? b.last : t.last,
  }));
  return [...buckets, { ...total, dimension: 'total', value: null }];
}

type SummedRow = { dimension: string; value: string | null; count: string; failures: string; denied: string; first: Date; last: Date };

/** Adds up the parts' rows per (dimension, value). */
async function sumParts(db: Executor, parts: RawBuilder<unknown>[]): Promise<SummedRow[]> {
  const { rows } = await sql<SummedRow>`
    SELECT u.dimension, u.value, sum(u.n)::text AS count,
           coalesce(sum(u.n) FILTER (WHERE u.outcome = 'failure'), 0)::text AS failures,
           coalesce(sum(u.n) FILTER (WHERE u.code IN (${sql.join(DENIED_ERROR_CODES)})), 0)::text AS denied,
           min(u.first_at) AS first, max(u.last_at) AS last
      FROM (${sql.join(parts, sql` UNION ALL `)}) AS u
     GROUP BY u.dimension, u.value`.execute(db);
  return rows;
}

/** The principal's records matching `filter`, one row per record and dimension; `afterCheckpoint`: only those the rollup does not hold. */
function logPart(accountId: string, filter: AuditQueryFilter, afterCheckpoint?: UsageRollupCheckpoint): RawBuilder<unknown> {
  const dims = activityDimensions(
    sql`a.data ->> 'eventName'`,
    sql`a.data ->> 'sourceIp'`,
    sql`a.data -> 'userIdentity' ->> 'accessKeyId'`,
    sql`CASE WHEN jsonb_typeof(a.data -> 'resources') = 'array' THEN a.data -> 'resources' ELSE '[]'::jsonb END`,
  );
  return sql`SELECT d.dimension, d.value, a.data ->> 'outcome' AS outcome, a.data ->> 'errorCode' AS code,
                    1::bigint AS n, a.recorded_at AS first_at, a.recorded_at AS last_at
               FROM ${scoped(accountId, filter, afterCheckpointCondition(afterCheckpoint))} CROSS JOIN LATERAL ${dims} AS d`;
}

/** The principal's whole days in `range`, from the rollup. */
function rollupPart(accountId: string, filter: AuditQueryFilter, range: RollupRange): RawBuilder<unknown> {
  return sql`SELECT r.dimension, r.value, r.outcome, r.error_code AS code, r.count AS n, r.first_at, r.last_at
               FROM audit_usage_principal_daily r
              WHERE ${rollupConditions('r', accountId, filter, range, [sql`r.principal_arn = ${filter.principalArn}`])}`;
}
