/**
 * The usage rollups of sql/0013, 0016 and 0018: an asynchronous projection of
 * the audit records into counts per hour (by operation and outcome), per day (by
 * principal, key, operation and outcome), per day without the principal, and
 * per day and principal by each of principalActivity's dimensions (operation,
 * source IP, access key, key), folded in the followers' order.
 *
 * The fold is exact, not approximate: a record is counted in the rollups if and
 * only if its (transaction_id, global_position) is at or before the checkpoint,
 * which only ever advances below the in-flight horizon (logHorizon), so no
 * record can commit behind it. Readers (usage-statistics.ts) add the records
 * after the checkpoint from the log in the same statement.
 */
import { sql, type RawBuilder, type Transaction } from 'kysely';
import { logHorizon } from './event-store.ts';
import type { Database, Db } from './database.ts';

export interface UsageRollupPass {
  /** Audit records folded in this pass. */
  records: number;
  /** False when another process held the checkpoint (it is folding): nothing was done. */
  ran: boolean;
  /** No record below the horizon is left unfolded (a full batch may leave some). */
  caughtUp: boolean;
}

/**
 * The migration that last added or changed a rollup: the fold declares it, and
 * the checkpoint refuses a fold that writes another set of rollups (sql/0019).
 */
export const USAGE_FOLD_SCHEMA = '0018';

/** Declares, for this transaction only, the rollups it writes: the checkpoint's guard (sql/0019) asks. */
async function declareFold(trx: Transaction<Database>): Promise<void> {
  await sql`SELECT set_config('keyledger.usage_fold', ${USAGE_FOLD_SCHEMA}, true)`.execute(trx);
}

/*
 * The fold's parts, shared with the check of the rollups against the log
 * (usage-rollup-verify.ts): the same definitions, so a difference is drift,
 * never two readings of a record.
 *
 * RECORD_SCOPES reads a relation named `batch` (global_position,
 * transaction_id, recorded_at, data of audit records) and gives a row per record
 * and account it counts for: its caller's, and the key owner's when that is
 * another account. KEYED_RECORDS reads `rec` (RECORD_SCOPES' rows) and gives a
 * row per record, scope and key it names (key_rank 0 for the first key in arn
 * order, or for none). Each *_FOLD is one rollup's rows over them, in its
 * table's column order (see USAGE_ROLLUPS).
 */
export const RECORD_SCOPES = sql`
        SELECT b.global_position, b.recorded_at, s.scope,
               b.data -> 'userIdentity' ->> 'principalArn' AS principal,
               b.data ->> 'eventName' AS event_name,
               CASE b.data -> 'readOnly' WHEN 'true'::jsonb THEN true WHEN 'false'::jsonb THEN false END AS read_only,
               b.data ->> 'outcome' AS outcome,
               b.data ->> 'errorCode' AS error_code,
               b.data ->> 'sourceIp' AS source_ip,
               b.data -> 'userIdentity' ->> 'accessKeyId' AS access_key_id,
               CASE WHEN jsonb_typeof(b.data -> 'resources') = 'array' THEN b.data -> 'resources' ELSE '[]'::jsonb END AS res
          FROM batch b
          CROSS JOIN LATERAL (
            SELECT b.data ->> 'accountId' AS scope WHERE (b.data ->> 'accountId') IS NOT NULL
            UNION ALL
            SELECT b.data ->> 'recipientAccountId'
             WHERE b.data ? 'recipientAccountId' AND (b.data ->> 'recipientAccountId') IS DISTINCT FROM (b.data ->> 'accountId')
          ) s
`;

export const KEYED_RECORDS = sql`
        SELECT rec.*, k.arn AS key_arn, coalesce(k.rank, 0) AS key_rank
          FROM rec
          LEFT JOIN LATERAL (
            SELECT d.arn, (row_number() OVER (ORDER BY d.arn) - 1)::smallint AS rank
              FROM (SELECT DISTINCT e ->> 'arn' AS arn FROM jsonb_array_elements(rec.res) AS e WHERE e ->> 'type' = 'AWS::KMS::Key') AS d
          ) AS k ON true
`;

const HOURLY_FOLD = sql`SELECT scope, date_trunc('hour', recorded_at, 'UTC'),
               event_name, read_only, outcome, error_code, count(*), max(recorded_at), max(global_position)
          FROM rec GROUP BY 1, 2, 3, 4, 5, 6`;
const DAILY_FOLD = sql`SELECT scope, date_trunc('day', recorded_at, 'UTC'), principal, key_arn, key_rank,
               event_name, read_only, outcome, error_code, count(*), max(recorded_at), max(global_position)
          FROM keyed
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9`;
const KEY_DAILY_FOLD = sql`SELECT scope, date_trunc('day', recorded_at, 'UTC'), key_arn, key_rank,
               event_name, read_only, outcome, error_code, count(*), max(recorded_at), max(global_position)
          FROM keyed
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8`;
const PRINCIPAL_DAILY_FOLD = sql`SELECT rec.scope, rec.principal, date_trunc('day', rec.recorded_at, 'UTC'), d.dimension, d.value,
               rec.outcome, rec.error_code, count(*), min(rec.recorded_at), max(rec.recorded_at)
          FROM rec CROSS JOIN LATERAL ${activityDimensions(sql`rec.event_name`, sql`rec.source_ip`, sql`rec.access_key_id`, sql`rec.res`)} AS d
         WHERE rec.principal IS NOT NULL
         GROUP BY 1, 2, 3, 4, 5, 6, 7`;

/**
 * The next `limit` audit records after `after` in follower order (transaction
 * id, then global position: the order in which none can commit behind another,
 * see logHorizon) among those `until` admits, with the fields RECORD_SCOPES
 * reads: the fold's batch, and the check's chunk (usage-rollup-verify.ts).
 */
export function auditRecordsAfter(after: { transactionId: string; globalPosition: string }, until: RawBuilder<unknown>, limit: number): RawBuilder<unknown> {
  return sql`SELECT global_position, transaction_id, recorded_at, data FROM events
         WHERE type = 'AuditRecord'
           AND (transaction_id, global_position) > (${after.transactionId}::xid8, ${after.globalPosition}::bigint)
           AND ${until}
         ORDER BY transaction_id, global_position
         LIMIT ${limit}`;
}

/**
 * What the CTE `batch` (auditRecordsAfter's rows) held, as one row: its
 * records (count, as text), the newest recorded_at among them, and the last
 * one's place in follower order (as text; null for an empty batch), where the
 * next batch starts.
 */
export const BATCH_SUMMARY = sql`SELECT (SELECT count(*) FROM batch)::text AS records, (SELECT max(recorded_at) FROM batch) AS newest,
             last.transaction_id::text AS transaction_id, last.global_position::text AS global_position
        FROM (SELECT 1) AS one
        LEFT JOIN (SELECT transaction_id, global_position FROM batch ORDER BY transaction_id DESC, global_position DESC LIMIT 1) AS last ON true`;

/** One rollup table: the columns that name a group, then its measures, in the order its fold gives them. */
export interface UsageRollupTable {
  table: 'audit_usage_hourly' | 'audit_usage_daily' | 'audit_usage_key_daily' | 'audit_usage_principal_daily';
  groupBy: readonly string[];
  measures: readonly string[];
  /** Its rows over the CTEs `rec` and `keyed` (see RECORD_SCOPES). */
  fold: RawBuilder<unknown>;
}

export const USAGE_ROLLUPS: readonly UsageRollupTable[] = [
  {
    table: 'audit_usage_hourly',
    groupBy: ['scope_account', 'hour', 'event_name', 'read_only', 'outcome', 'error_code'],
    measures: ['count', 'last_at', 'last_position'],
    fold: HOURLY_FOLD,
  },
  {
    table: 'audit_usage_daily',
    groupBy: ['scope_account', 'day', 'principal_arn', 'key_arn', 'key_rank', 'event_name', 'read_only', 'outcome', 'error_code'],
    measures: ['count', 'last_at', 'last_position'],
    fold: DAILY_FOLD,
  },
  {
    table: 'audit_usage_key_daily',
    groupBy: ['scope_account', 'day', 'key_arn', 'key_rank', 'event_name', 'read_only', 'outcome', 'error_code'],
    measures: ['count', 'last_at', 'last_position'],
    fold: KEY_DAILY_FOLD,
  },
  {
    table: 'audit_usage_principal_daily',
    groupBy: ['scope_account', 'principal_arn', 'day', 'dimension', 'value', 'outcome', 'error_code'],
    measures: ['count', 'first_at', 'last_at'],
    fold: PRINCIPAL_DAILY_FOLD,
  },
];

/** Records folded per transaction by default. */
export const USAGE_ROLLUP_BATCH = 20_000;

/**
 * Folds the next batch of audit records (at most `batchSize`, in follower
 * order, below the horizon) into the rollups and moves the checkpoint past
 * them, in one transaction. A concurrent pass (another worker) is skipped, not
 * waited for: the checkpoint row is taken with SKIP LOCKED.
 *
 * @example
 * let pass;
 * do pass = await advanceUsageRollup(appDb); while (pass.ran && !pass.caughtUp);
 */
export async function advanceUsageRollup(db: Db, options: { batchSize?: number } = {}): Promise<UsageRollupPass> {
  const batchSize = options.batchSize ?? USAGE_ROLLUP_BATCH;
  return db.transaction().execute(async (trx) => {
    await declareFold(trx);
    const { rows: held } = await sql<{ transaction_id: string; global_position: string }>`
      SELECT transaction_id::text AS transaction_id, global_position::text AS global_position
        FROM audit_usage_checkpoint FOR UPDATE SKIP LOCKED`.execute(trx);
    const checkpoint = held[0];
    if (!checkpoint) return { records: 0, ran: false, caughtUp: false };
    // Its own statement, before the batch is read (see logHorizon).
    const horizon = await logHorizon(trx);
    const { rows } = await sql<{ records: string; newest: Date | null; transaction_id: string | null; global_position: string | null }>`
      WITH batch AS MATERIALIZED (${auditRecordsAfter(
        { transactionId: checkpoint.transaction_id, globalPosition: checkpoint.global_position },
        sql`transaction_id < ${horizon.toString()}::xid8`,
        batchSize,
      )}),
      rec AS MATERIALIZED (${RECORD_SCOPES}),
      hourly AS (
        INSERT INTO audit_usage_hourly AS t (scope_account, hour, event_name, read_only, outcome, error_code, count, last_at, last_position)
        ${HOURLY_FOLD}
        ON CONFLICT (scope_account, hour, event_name, read_only, outcome, error_code)
        DO UPDATE SET count = t.count + excluded.count,
                      last_at = greatest(t.last_at, excluded.last_at),
                      last_position = greatest(t.last_position, excluded.last_position)
      ),
      keyed AS MATERIALIZED (${KEYED_RECORDS}),
      daily AS (
        INSERT INTO audit_usage_daily AS t
               (scope_account, day, principal_arn, key_arn, key_rank, event_name, read_only, outcome, error_code, count, last_at, last_position)
        ${DAILY_FOLD}
        ON CONFLICT (scope_account, day, principal_arn, key_arn, key_rank, event_name, read_only, outcome, error_code)
        DO UPDATE SET count = t.count + excluded.count,
                      last_at = greatest(t.last_at, excluded.last_at),
                      last_position = greatest(t.last_position, excluded.last_position)
      ),
      key_daily AS (
        INSERT INTO audit_usage_key_daily AS t
               (scope_account, day, key_arn, key_rank, event_name, read_only, outcome, error_code, count, last_at, last_position)
        ${KEY_DAILY_FOLD}
        ON CONFLICT (scope_account, day, key_arn, key_rank, event_name, read_only, outcome, error_code)
        DO UPDATE SET count = t.count + excluded.count,
                      last_at = greatest(t.last_at, excluded.last_at),
                      last_position = greatest(t.last_position, excluded.last_position)
      ),
      activity AS (
        INSERT INTO audit_usage_principal_daily AS t
               (scope_account, principal_arn, day, dimension, value, outcome, error_code, count, first_at, last_at)
        ${PRINCIPAL_DAILY_FOLD}
        ON CONFLICT (scope_account, principal_arn, day, dimension, value, outcome, error_code)
        DO UPDATE SET count = t.count + excluded.count,
                      first_at = least(t.first_at, excluded.first_at),
                      last_at = greatest(t.last_at, excluded.last_at)
      )
      ${BATCH_SUMMARY}`.execute(trx);
    const r = rows[0]!;
    const records = Number(r.records);
    if (records > 0) {
      await sql`UPDATE audit_usage_checkpoint
                   SET transaction_id = ${r.transaction_id}::xid8, global_position = ${r.global_position}::bigint,
                       records = records + ${records}, updated_at = now(),
                       newest_recorded_at = greatest(newest_recorded_at, ${r.newest}::timestamptz)`.execute(trx);
    }
    return { records, ran: true, caughtUp: records < batchSize };
  });
}

/**
 * The dimensions principalActivity counts a record under, as a FROM item with
 * columns (dimension, value): its operation, source IP and access key, and each
 * distinct key among its resources (`resources`: a jsonb array). The fold and
 * the log's part of principalActivity both use it, so they count alike.
 *
 * @example
 * const dims = activityDimensions(sql`rec.event_name`, sql`rec.source_ip`, sql`rec.access_key_id`, sql`rec.res`);
 * sql`SELECT d.dimension, d.value FROM rec CROSS JOIN LATERAL ${dims} AS d`
 * // a Decrypt from 10.0.0.7 with AKIA… on one key: ('operation', 'Decrypt'), ('sourceIp', '10.0.0.7'), ('accessKey', 'AKIA…'), ('key', <its ARN>)
 */
export function activityDimensions(
  operation: RawBuilder<unknown>,
  sourceIp: RawBuilder<unknown>,
  accessKeyId: RawBuilder<unknown>,
  resources: RawBuilder<unknown>,
): RawBuilder<unknown> {
  return sql`(SELECT 'operation' AS dimension, ${operation} AS value
              UNION ALL SELECT 'sourceIp', ${sourceIp}
              UNION ALL SELECT 'accessKey', ${accessKeyId}
              UNION ALL SELECT DISTINCT 'key', e ->> 'arn' FROM jsonb_array_elements(${resources}) AS e WHERE e ->> 'type' = 'AWS::KMS::Key')`;
}

/**
 * Folds until nothing below the horizon is left (or another process is
 * folding). Returns the records folded.
 *
 * @example
 * await catchUpUsageRollup(appDb, { onProgress: (n) => console.log(n) });
 */
export async function catchUpUsageRollup(db: Db, options: { batchSize?: number; onProgress?: (records: number) => void } = {}): Promise<number> {
  let total = 0;
  for (;;) {
    const pass = await advanceUsageRollup(db, options);
    total += pass.records;
    if (pass.records > 0) options.onProgress?.(total);
    if (!pass.ran || pass.caughtUp) return total;
  }
}

/**
 * Empties the rollups and puts the checkpoint back to the start, in one
 * transaction, so the fold rebuilds them from the log (queries meanwhile read
 * what is not folded from the log). Needs the owner's connection (TRUNCATE).
 *
 * @example
 * await resetUsageRollups(ownerDb);
 * await catchUpUsageRollup(appDb);
 */
export async function resetUsageRollups(owner: Db): Promise<void> {
  await owner.transaction().execute(async (trx) => {
    await declareFold(trx);
    await sql`SELECT 1 FROM audit_usage_checkpoint FOR UPDATE`.execute(trx);
    await sql`TRUNCATE audit_usage_hourly, audit_usage_daily, audit_usage_key_daily, audit_usage_principal_daily`.execute(trx);
    await sql`UPDATE audit_usage_checkpoint
                 SET transaction_id = '0'::xid8, global_position = 0, records = 0, updated_at = now(), newest_recorded_at = NULL`.execute(trx);
  });
}

/** How far the fold has got. */
export interface UsageRollupCheckpoint {
  /** The last folded record's place in follower order. */
  transactionId: bigint;
  globalPosition: bigint;
  /** Records folded so far. */
  records: number;
  updatedAt: Date;
  /** The newest recorded_at among the folded records (null before any). */
  newestRecordedAt: Date | null;
  /** The row's version (its xmin): every fold and every reset writes a new one. */
  rowVersion: string;
}

/**
 * How far the fold has got: the checkpoint and the records folded so far.
 *
 * @example
 * await readUsageRollupCheckpoint(db) // { transactionId: 918n, globalPosition: 52311n, records: 50000, updatedAt, newestRecordedAt, rowVersion: '1043' }
 */
export async function readUsageRollupCheckpoint(db: Db | Transaction<Database>): Promise<UsageRollupCheckpoint> {
  const { rows } = await sql<{
    transaction_id: string;
    global_position: string;
    records: string;
    updated_at: Date;
    newest_recorded_at: Date | null;
    row_version: string;
  }>`
    SELECT transaction_id::text AS transaction_id, global_position::text AS global_position, records::text AS records, updated_at, newest_recorded_at,
           xmin::text AS row_version
      FROM audit_usage_checkpoint`.execute(db);
  const r = rows[0]!;
  return {
    transactionId: BigInt(r.transaction_id),
    globalPosition: BigInt(r.global_position),
    records: Number(r.records),
    updatedAt: r.updated_at,
    newestRecordedAt: r.newest_recorded_at,
    rowVersion: r.row_version,
  };
}

/** At most this many waiting records are counted (the status says "more than"). */
export const USAGE_ROLLUP_WAITING_CAP = 100_000;

/**
 * The fold's progress for `worker --status`: records folded, when it last moved,
 * and how many audit records wait after the checkpoint (counted up to USAGE_ROLLUP_WAITING_CAP).
 *
 * @example
 * await readUsageRollupStatus(db) // { folded: 50000, updatedAt, waiting: 12, waitingCapped: false }
 */
export async function readUsageRollupStatus(db: Db): Promise<{ folded: number; updatedAt: Date; waiting: number; waitingCapped: boolean }> {
  const checkpoint = await readUsageRollupCheckpoint(db);
  const { rows } = await sql<{ waiting: string }>`
    SELECT count(*)::text AS waiting FROM (
      SELECT 1 FROM events
       WHERE type = 'AuditRecord'
         AND (transaction_id, global_position) > (${checkpoint.transactionId.toString()}::xid8, ${checkpoint.globalPosition.toString()}::bigint)
       LIMIT ${USAGE_ROLLUP_WAITING_CAP + 1}) AS w`.execute(db);
  const waiting = Number(rows[0]!.waiting);
  return {
    folded: checkpoint.records,
    updatedAt: checkpoint.updatedAt,
    waiting: Math.min(waiting, USAGE_ROLLUP_WAITING_CAP),
    waitingCapped: waiting > USAGE_ROLLUP_WAITING_CAP,
  };
}
