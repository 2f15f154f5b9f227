/**
 * Writes the audit export that `keyledger audit verify` checks (its format is
 * described in src/domain/audit-verify.ts): the database's events in its log
 * order, each with the leaf the sealer gave it, plus the sealed leaves whose
 * event is gone. Streamed in batches, never held whole.
 */
import { sql } from 'kysely';
import type { Db } from './database.ts';
import { canonicalEventOf, latestCheckpoint } from './log-seal.ts';

const BATCH = 5_000;

/**
 * The export's lines (without newlines), covering the tree up to `treeSize`
 * (the latest checkpoint's when not given).
 *
 * @example
 * for await (const line of exportAuditLog(ownerDb)) out.write(`${line}\n`);
 */
export async function* exportAuditLog(db: Db, options: { treeSize?: number } = {}): AsyncGenerator<string> {
  const treeSize = options.treeSize ?? (await latestCheckpoint(db))?.treeSize ?? 0;
  yield `{"keyledgerAuditExport":1,"treeSize":"${treeSize}"}`;
  const { rows: states } = await sql<{ transaction_id: string; global_position: string }>`
    SELECT transaction_id::text, global_position::text FROM log_seal_state`.execute(db);
  const sealedUpTo = states[0]!;
  let after = { transactionId: '0', globalPosition: '0' };
  for (;;) {
    const { rows } = await sql<{
      event_id: string;
      stream_id: string;
      stream_version: string;
      type: string;
      data: string;
      metadata: string;
      recorded_at: string;
      xid: string;
      position: string;
      leaf_index: string | null;
      leaf_hash: Buffer | null;
    }>`
      SELECT e.event_id::text, e.stream_id, e.stream_version::text, e.type, e.data::text AS data, e.metadata::text AS metadata,
             to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at,
             e.transaction_id::text AS xid, e.global_position::text AS position, l.leaf_index::text AS leaf_index, l.leaf_hash
        FROM events e LEFT JOIN log_seal_leaves l ON l.event_id = e.event_id
       WHERE (e.transaction_id, e.global_position) > (${after.transactionId}::xid8, ${after.globalPosition}::bigint)
         AND (e.transaction_id, e.global_position) <= (${sealedUpTo.transaction_id}::xid8, ${sealedUpTo.global_position}::bigint)
       ORDER BY e.transaction_id, e.global_position
       LIMIT ${BATCH}`.execute(db);
    for (const r of rows) {
      if (r.leaf_index !== null && Number(r.leaf_index) >= treeSize) continue;
      const leaf = r.leaf_index === null ? 'null' : `"${r.leaf_index}"`;
      const sealed = r.leaf_hash === null ? 'null' : `"${r.leaf_hash.toString('base64')}"`;
      yield `{"leaf":${leaf},"sealedHash":${sealed},"globalPosition":"${r.position}","event":${canonicalEventOf(r)}}`;
    }
    if (rows.length < BATCH) break;
    const last = rows.at(-1)!;
    after = { transactionId: last.xid, globalPosition: last.position };
  }
  // Sealed leaves whose event the database no longer holds.
  const { rows: gone } = await sql<{ leaf_index: string; leaf_hash: Buffer }>`
    SELECT l.leaf_index::text, l.leaf_hash FROM log_seal_leaves l
     WHERE l.leaf_index < ${String(treeSize)}::bigint AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = l.event_id)
     ORDER BY l.leaf_index`.execute(db);
  for (const g of gone) yield `{"leaf":"${g.leaf_index}","sealedHash":"${g.leaf_hash.toString('base64')}","globalPosition":"0","event":null}`;
}
