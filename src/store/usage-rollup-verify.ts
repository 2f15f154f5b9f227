/**
 * The usage rollups checked against the log (issue 16, section 5): every
 * rollup row (sql/0013, 0016, 0018) must equal the fold of the audit records
 * up to the rollups' checkpoint, and the checkpoint's record count and newest
 * time must be the log's. A record deleted, inserted or rewritten in the log
 * after it was folded (or a rollup row edited) shows as a group whose counts
 * differ, named with both numbers: "count 309 in the rollup, 10 in the log".
 *
 * The fold's own definitions (usage-rollup.ts: RECORD_SCOPES, KEYED_RECORDS,
 * USAGE_ROLLUPS) are used, over the whole log at once: the rollups are sums,
 * maxima and minima, so folding in batches and folding at once agree.
 */
import { sql, type RawBuilder } from 'kysely';
import type pg from 'pg';
import type { Db } from './database.ts';
import { KEYED_RECORDS, RECORD_SCOPES, USAGE_FOLD_SCHEMA, USAGE_ROLLUPS, type UsageRollupTable } from './usage-rollup.ts';

/** Differing rows listed per rollup, each way. */
const MAX_LISTED = 50;

/**
 * The audit records the rollups hold: up to their checkpoint, in this snapshot.
 * `batch` is read where it is used, never kept: kept, it was every record's
 * whole data in temporary files (at 10M records, more than the 46 GB of disk
 * the bench machine had free). `rec` and `keyed` keep only the fields the folds
 * read; `folded` is the checkpoint's count and newest time, one more scan.
 */
const FOLDED_LOG = sql`
  batch AS NOT MATERIALIZED (
    SELECT global_position, transaction_id, recorded_at, data FROM events
     WHERE type = 'AuditRecord'
       AND (transaction_id, global_position) <= (SELECT c.transaction_id, c.global_position FROM audit_usage_checkpoint c)
  ),
  rec AS MATERIALIZED (${RECORD_SCOPES}),
  keyed AS MATERIALIZED (${KEYED_RECORDS}),
  folded AS MATERIALIZED (SELECT count(*) AS records, max(recorded_at) AS newest FROM batch)`;

const columnsOf = (r: UsageRollupTable) => [...r.groupBy, ...r.measures];
const columnList = (r: UsageRollupTable) => sql.join(columnsOf(r).map((c) => sql.ref(c)));

/** Rows on one side and not the other, both ways (as multisets), up to MAX_LISTED + 1 each. */
function differingRows(r: UsageRollupTable, i: number): RawBuilder<unknown> {
  const folded = sql.ref(`f${i}`);
  const live = sql`SELECT ${columnList(r)} FROM ${sql.table(r.table)}`;
  return sql`
    (SELECT ${sql.lit(r.table)} AS rollup, 'live' AS side, to_jsonb(x) AS row FROM (${live} EXCEPT ALL SELECT * FROM ${folded}) x LIMIT ${MAX_LISTED + 1})
    UNION ALL
    (SELECT ${sql.lit(r.table)}, 'log', to_jsonb(x) FROM (SELECT * FROM ${folded} EXCEPT ALL ${live}) x LIMIT ${MAX_LISTED + 1})`;
}

interface DiffRow {
  rollup: string;
  side: 'live' | 'log';
  row: Record<string, unknown>;
}

/**
 * The differences between the usage rollups and the fold of the log, one line
 * each (empty when they agree), read in the caller's snapshot: run it in the
 * same REPEATABLE READ transaction as the rest of a replay, with TimeZone UTC.
 *
 * @example
 * const lines = await verifyUsageRollups(db, client); // ['audit_usage_hourly: {...}: count 309 in the rollup, 10 in the log']
 */
export async function verifyUsageRollups(db: Db, client: pg.ClientBase): Promise<string[]> {
  const folds = USAGE_ROLLUPS.map((r, i) => sql`${sql.ref(`f${i}`)} (${columnList(r)}) AS (${r.fold})`);
  const query = sql<DiffRow>`
    WITH ${FOLDED_LOG}, ${sql.join(folds)}
    ${sql.join(USAGE_ROLLUPS.map(differingRows), sql` UNION ALL `)}
    UNION ALL
    SELECT 'audit_usage_checkpoint', 'live', jsonb_build_object('records', c.records, 'newest_recorded_at', c.newest_recorded_at) FROM audit_usage_checkpoint c
    UNION ALL
    SELECT 'audit_usage_checkpoint', 'log',
           jsonb_build_object('records', f.records, 'newest_recorded_at', f.newest) FROM folded f`.compile(db);
  const { rows } = await client.query<DiffRow>(query.sql, [...query.parameters]);
  return [
    ...USAGE_ROLLUPS.flatMap((r) =>
      describeRollup(
        r,
        rows.filter((d) => d.rollup === r.table),
      ),
    ),
    ...describeCheckpoint(rows.filter((d) => d.rollup === 'audit_usage_checkpoint')),
  ];
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

/**
 * Rewrites the rollups from the fold of the log up to their checkpoint, and the
 * checkpoint's count and newest time, in the caller's transaction (which must
 * hold audit_usage_checkpoint locked, so no fold runs meanwhile).
 *
 * @example
 * if (rollupDifferences.length > 0) await repairUsageRollups(db, client);
 */
export async function repairUsageRollups(db: Db, client: pg.ClientBase): Promise<void> {
  await client.query(`SELECT set_config('keyledger.usage_fold', $1, true)`, [USAGE_FOLD_SCHEMA]);
  for (const r of USAGE_ROLLUPS) {
    await client.query(`DELETE FROM ${r.table}`);
    const insert = sql`WITH ${FOLDED_LOG} INSERT INTO ${sql.table(r.table)} (${columnList(r)}) ${r.fold}`.compile(db);
    await client.query(insert.sql, [...insert.parameters]);
  }
  const checkpoint = sql`WITH ${FOLDED_LOG}
    UPDATE audit_usage_checkpoint
       SET records = f.records, newest_recorded_at = f.newest, updated_at = now() FROM folded f`.compile(db);
  await client.query(checkpoint.sql, [...checkpoint.parameters]);
}
