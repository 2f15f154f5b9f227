/**
 * The usage rollups checked against the log (issue 16, section 5): every
 * rollup row (sql/0013, 0016, 0018) must equal the fold of the audit records
 * up to the rollups' checkpoint, and the checkpoint's record count and newest
 * time must be the log's. A record deleted, inserted or rewritten in the log
 * after it was folded (or a rollup row edited) shows as a group whose counts
 * differ, named with both numbers: "count 309 in the rollup, 10 in the log".
 *
 * The log is folded again with the fold's own definitions (usage-rollup.ts:
 * RECORD_SCOPES, KEYED_RECORDS, USAGE_ROLLUPS), a chunk of records at a time in
 * follower order, into temporary tables that hold each chunk's partial rows;
 * the comparison merges them per group (counts add up, first and last times
 * take their extremes), as the fold's own upserts do. Only a chunk's records
 * and the partial rows are ever held: folded in one statement, every record's
 * fields went to temporary files (17.5 GiB at 10M records, and before that
 * more than the 46 GB of free disk).
 */
import { sql, type RawBuilder } from 'kysely';
import type pg from 'pg';
import type { Db } from './database.ts';
import { auditRecordsAfter, BATCH_SUMMARY, KEYED_RECORDS, RECORD_SCOPES, USAGE_FOLD_SCHEMA, USAGE_ROLLUPS, type UsageRollupTable } from './usage-rollup.ts';

/** Differing rows listed per rollup, each way. */
const MAX_LISTED = 50;

/** Audit records folded per statement by default: what the check holds at once. */
export const USAGE_CHECK_CHUNK = 100_000;

export interface UsageRollupCheckOptions {
  /** Audit records folded per statement (USAGE_CHECK_CHUNK by default). */
  chunk?: number;
  /** Called after each chunk: records folded so far, and the checkpoint's count (what the live rollups say they hold). */
  onProgress?: (done: number, total: number) => void;
}

export interface UsageRollupCheck {
  /** One line per difference (empty when the rollups equal the log). */
  differences: string[];
  /** Audit records in the log up to the checkpoint. */
  records: number;
  /**
   * Rewrites the rollups and the checkpoint's count and newest time from this
   * fold, in the same transaction (which must hold audit_usage_checkpoint
   * locked, so no fold runs meanwhile).
   */
  repair: () => Promise<void>;
}

/** How a measure's partial values (one per chunk) merge into the group's: as the fold's upserts merge a batch into a row. */
const MERGE: Record<string, 'sum' | 'min' | 'max'> = { count: 'sum', first_at: 'min', last_at: 'max', last_position: 'max' };

const columnsOf = (r: UsageRollupTable) => [...r.groupBy, ...r.measures];
const columnList = (r: UsageRollupTable) => sql.join(columnsOf(r).map((c) => sql.ref(c)));
const partialTable = (r: UsageRollupTable) => sql.table(`pg_temp.check_${r.table}`);
const CHUNKS = sql.table('pg_temp.check_audit_usage_chunks');

/** A rollup's rows as the log folds to them: its chunks' partial rows merged per group, in its table's column order. */
function mergedRows(r: UsageRollupTable): RawBuilder<unknown> {
  const measures = r.measures.map((m) => {
    const merge = MERGE[m];
    if (!merge) throw new Error(`no merge for ${r.table}.${m}`);
    // sum(bigint) is numeric: back to the column's type, so rows compare as the live table's.
    return merge === 'sum' ? sql`sum(${sql.ref(m)})::bigint AS ${sql.ref(m)}` : sql`${sql.raw(merge)}(${sql.ref(m)}) AS ${sql.ref(m)}`;
  });
  const groupBy = sql.join(r.groupBy.map((c) => sql.ref(c)));
  return sql`SELECT ${groupBy}, ${sql.join(measures)} FROM ${partialTable(r)} GROUP BY ${groupBy}`;
}

/** Rows on one side and not the other, both ways (as multisets), up to MAX_LISTED + 1 each. */
function differingRows(r: UsageRollupTable): RawBuilder<unknown> {
  const live = sql`SELECT ${columnList(r)} FROM ${sql.table(r.table)}`;
  const folded = mergedRows(r);
  return sql`
    (SELECT ${sql.lit(r.table)} AS rollup, 'live' AS side, to_jsonb(x) AS row FROM (${live} EXCEPT ALL ${folded}) x LIMIT ${MAX_LISTED + 1})
    UNION ALL
    (SELECT ${sql.lit(r.table)}, 'log', to_jsonb(x) FROM (${folded} EXCEPT ALL ${live}) x LIMIT ${MAX_LISTED + 1})`;
}

interface DiffRow {
  rollup: string;
  side: 'live' | 'log';
  row: Record<string, unknown>;
}

async function run(db: Db, client: pg.ClientBase, query: RawBuilder<unknown>): Promise<pg.QueryResult> {
  const compiled = query.compile(db);
  return client.query(compiled.sql, [...compiled.parameters]);
}

/**
 * Folds the log up to the rollups' checkpoint again and compares it with the
 * rollups, in the caller's snapshot: run it in a REPEATABLE READ transaction
 * (its own, in a replay), with TimeZone UTC. The fold's partial
 * rows are temporary tables, dropped at the transaction's end.
 *
 * @example
 * const check = await checkUsageRollups(db, client);
 * check.differences // ['audit_usage_hourly: {...}: count 309 in the rollup, 10 in the log']
 * if (check.differences.length > 0) await check.repair();
 */
export async function checkUsageRollups(db: Db, client: pg.ClientBase, options: UsageRollupCheckOptions = {}): Promise<UsageRollupCheck> {
  const chunk = options.chunk ?? USAGE_CHECK_CHUNK;
  if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`chunk must be a positive integer, not ${chunk}`);
  // Before the fold, not after minutes of it: a measure without a merge is an error here.
  const comparison = sql`
    ${sql.join(USAGE_ROLLUPS.map(differingRows), sql` UNION ALL `)}
    UNION ALL
    SELECT 'audit_usage_checkpoint', 'live', jsonb_build_object('records', c.records, 'newest_recorded_at', c.newest_recorded_at) FROM audit_usage_checkpoint c
    UNION ALL
    SELECT 'audit_usage_checkpoint', 'log', jsonb_build_object('records', coalesce(sum(f.records), 0)::bigint, 'newest_recorded_at', max(f.newest))
      FROM ${CHUNKS} f`;
  try {
    for (const r of USAGE_ROLLUPS) {
      // The live table's columns and NOT NULLs; no index: partial rows of a group repeat, one per chunk.
      await run(db, client, sql`DROP TABLE IF EXISTS ${partialTable(r)}`);
      await run(db, client, sql`CREATE TEMPORARY TABLE ${partialTable(r)} (LIKE ${sql.table(r.table)}) ON COMMIT DROP`);
    }
    await run(db, client, sql`DROP TABLE IF EXISTS ${CHUNKS}`);
    await run(
      db,
      client,
      sql`CREATE TEMPORARY TABLE ${CHUNKS} (records bigint NOT NULL, newest timestamptz, transaction_id text, global_position text) ON COMMIT DROP`,
    );
  } catch (error) {
    // 25006 read_only_sql_transaction: a hot standby, or default_transaction_read_only.
    if ((error as { code?: string }).code === '25006') {
      throw new Error('the usage rollups are checked in temporary tables, which a read-only server refuses: run it on the primary, or skip the rollups', {
        cause: error,
      });
    }
    throw error;
  }

  const { rows: checkpoints } = await client.query<{ transaction_id: string; global_position: string; records: string }>(
    'SELECT transaction_id::text AS transaction_id, global_position::text AS global_position, records::text AS records FROM audit_usage_checkpoint',
  );
  const checkpoint = checkpoints[0];
  if (!checkpoint) throw new Error('audit_usage_checkpoint has no row (sql/0013 inserts it): the usage rollups cannot be checked');
  const upToCheckpoint = sql`(transaction_id, global_position) <= (${checkpoint.transaction_id}::xid8, ${checkpoint.global_position}::bigint)`;
  const partials = USAGE_ROLLUPS.map((r, i) => sql`${sql.ref(`p${i}`)} AS (INSERT INTO ${partialTable(r)} (${columnList(r)}) ${r.fold})`);
  let after = { transactionId: '0', globalPosition: '0' };
  let done = 0;
  for (;;) {
    const { rows } = await run(
      db,
      client,
      sql`
      WITH batch AS MATERIALIZED (${auditRecordsAfter(after, upToCheckpoint, chunk)}),
           rec AS MATERIALIZED (${RECORD_SCOPES}),
           keyed AS MATERIALIZED (${KEYED_RECORDS}),
           ${sql.join(partials)}
      INSERT INTO ${CHUNKS} (records, newest, transaction_id, global_position)
      SELECT s.records::bigint, s.newest, s.transaction_id, s.global_position FROM (${BATCH_SUMMARY}) AS s
      RETURNING records::int AS records, transaction_id, global_position`,
    );
    const r = rows[0] as { records: number; transaction_id: string | null; global_position: string | null };
    done += r.records;
    options.onProgress?.(done, Number(checkpoint.records));
    if (r.records < chunk) break;
    after = { transactionId: r.transaction_id!, globalPosition: r.global_position! };
  }

  const { rows } = (await run(db, client, comparison)) as pg.QueryResult<DiffRow>;
  const differences = [
    ...USAGE_ROLLUPS.flatMap((r) =>
      describeRollup(
        r,
        rows.filter((d) => d.rollup === r.table),
      ),
    ),
    ...describeCheckpoint(rows.filter((d) => d.rollup === 'audit_usage_checkpoint')),
  ];
  return { differences, records: done, repair: () => repair(db, client) };
}

/** Rewrites the rollups and the checkpoint's count and newest time from the check's partial rows. */
async function repair(db: Db, client: pg.ClientBase): Promise<void> {
  await client.query(`SELECT set_config('keyledger.usage_fold', $1, true)`, [USAGE_FOLD_SCHEMA]);
  for (const r of USAGE_ROLLUPS) {
    await run(db, client, sql`DELETE FROM ${sql.table(r.table)}`);
    await run(db, client, sql`INSERT INTO ${sql.table(r.table)} (${columnList(r)}) ${mergedRows(r)}`);
  }
  await run(
    db,
    client,
    sql`UPDATE audit_usage_checkpoint
           SET records = f.records, newest_recorded_at = f.newest, updated_at = now()
          FROM (SELECT coalesce(sum(records), 0)::bigint AS records, max(newest) AS newest FROM ${CHUNKS}) f`,
  );
}

/** One rollup's differences, a group's two sides paired: what the rollup says, and what the log folds to. */
function describeRollup(r: UsageRollupTable, rows: DiffRow[]): string[] {
  const groupOf = (row: Record<string, unknown>) => JSON.stringify(Object.fromEntries(r.groupBy.map((c) => [c, row[c]])));
  const measures = (row: Record<string, unknown>) => r.measures.map((m) => `${m} ${String(row[m])}`).join(', ');
  const logByGroup = new Map<string, Record<string, unknown>>();
  for (const d of rows) if (d.side === 'log') logByGroup.set(groupOf(d.row), d.row);
  const lines: string[] = [];
  for (const d of rows.filter((x) => x.side === 'live')) {
    const group = groupOf(d.row);
    const log = logByGroup.get(group);
    logByGroup.delete(group);
    if (log) {
      const differing = r.measures.filter((m) => String(d.row[m]) !== String(log[m]));
      lines.push(`${r.table}: ${group}: ${differing.map((m) => `${m} ${String(d.row[m])} in the rollup, ${String(log[m])} in the log`).join('; ')}`);
    } else {
      lines.push(`${r.table}: ${group}: ${measures(d.row)} in the rollup, but the log has no such record`);
    }
  }
  for (const [group, log] of logByGroup) lines.push(`${r.table}: ${group}: missing from the rollup; the log has ${measures(log)}`);
  // In the groups' order, whatever order the query returned its rows in: the same differences read the same.
  lines.sort();
  const truncated = rows.filter((d) => d.side === 'live').length > MAX_LISTED || rows.filter((d) => d.side === 'log').length > MAX_LISTED;
  return truncated ? [...lines.slice(0, MAX_LISTED), `${r.table}: more differences than listed`] : lines;
}

function describeCheckpoint(rows: DiffRow[]): string[] {
  const live = rows.find((d) => d.side === 'live')?.row ?? {};
  const log = rows.find((d) => d.side === 'log')?.row ?? {};
  const lines: string[] = [];
  if (String(live['records']) !== String(log['records']))
    lines.push(`audit_usage_checkpoint: ${String(live['records'])} records folded, ${String(log['records'])} in the log up to the checkpoint`);
  const [a, b] = [live['newest_recorded_at'], log['newest_recorded_at']];
  if ((a == null ? null : Date.parse(String(a))) !== (b == null ? null : Date.parse(String(b)))) {
    lines.push(`audit_usage_checkpoint: newest folded record at ${String(a)}, the log's newest up to the checkpoint at ${String(b)}`);
  }
  return lines;
}
