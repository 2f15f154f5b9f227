/**
 * Writes the audit export that `keyledger audit verify` checks (its format is
 * described in src/domain/audit-verify.ts): the database's events in its log
 * order, each with the leaf the sealer gave it, plus the sealed leaves whose
 * event is gone. Streamed in batches, never held whole.
 */
import { sql } from 'kysely';
import type { Db } from './database.ts';
import type { RecordCheck } from '../domain/audit-verify.ts';
import { leafHash } from '../domain/merkle.ts';
import { canonicalEventOf, frontierEdge, latestCheckpoint } from './log-seal.ts';

const BATCH = 5_000;

/** Where an export of a range starts and ends, in leaves; given as leaf positions or as times. */
export interface ExportRange {
  /** A leaf index, or a time: the range then starts at the newest checkpoint signed at or before it (the first leaf when none). */
  from?: number | Date;
  /** A leaf index (exclusive), or a time: the range ends at the oldest checkpoint of that size or more, signed at or after it (the latest when none). */
  to?: number | Date;
}

/**
 * The leaves `range` covers, as `exportAuditLog` takes them: `firstLeaf` and
 * the exclusive `treeSize`. The end is a checkpoint's tree size, so every
 * leaf of the range is under a signed root; a time is resolved through the
 * checkpoints' signing times, so a range from a time holds every event
 * recorded from then on, and one to a time every event sealed before it.
 *
 * @example
 * const { firstLeaf, treeSize } = await resolveExportRange(db, { from: new Date('2026-12-04T00:00:00Z') });
 */
export async function resolveExportRange(db: Db, range: ExportRange): Promise<{ firstLeaf: number; treeSize: number }> {
  const latest = (await latestCheckpoint(db))?.treeSize ?? 0;
  let firstLeaf = 0;
  if (range.from instanceof Date) {
    const { rows } = await sql<{ size: string }>`
      SELECT max(tree_size)::text AS size FROM log_checkpoints WHERE signed_at <= ${range.from}`.execute(db);
    firstLeaf = Number(rows[0]?.size ?? 0);
  } else if (range.from !== undefined) firstLeaf = Math.min(range.from, latest);
  let treeSize = latest;
  if (range.to !== undefined) {
    const { rows } = await sql<{ size: string | null }>`
      SELECT min(tree_size)::text AS size FROM log_checkpoints
       WHERE ${range.to instanceof Date ? sql`signed_at >= ${range.to}` : sql`tree_size >= ${String(range.to)}::bigint`}`.execute(db);
    treeSize = rows[0]?.size == null ? latest : Number(rows[0].size);
  }
  return { firstLeaf: Math.min(firstLeaf, treeSize), treeSize };
}

/**
 * The export's lines (without newlines), covering the tree up to `treeSize`
 * (the latest checkpoint's when not given), from leaf `firstLeaf` (0 when not
 * given) when it is a `range`: the header then carries the tree of the leaves
 * before it (see src/domain/audit-verify.ts), and the records are the
 * database's events from the first one sealed at or after `firstLeaf` on.
 *
 * @example
 * for await (const line of exportAuditLog(ownerDb)) out.write(`${line}\n`);
 * for await (const line of exportAuditLog(ownerDb, { range: true, ...(await resolveExportRange(ownerDb, { from: 1000 })) })) ...
 */
export async function* exportAuditLog(db: Db, options: { treeSize?: number; firstLeaf?: number; range?: boolean } = {}): AsyncGenerator<string> {
  const { treeSize, firstLeaf, header } = await exportHeader(db, options);
  yield header;
  for await (const rows of sealedRowBatches(db, treeSize, firstLeaf)) {
    for (const r of rows) {
      const leaf = r.leaf_index === null ? 'null' : `"${r.leaf_index}"`;
      const sealed = r.leaf_hash === null ? 'null' : `"${r.leaf_hash.toString('base64')}"`;
      yield `{"leaf":${leaf},"sealedHash":${sealed},"globalPosition":"${r.position}","event":${canonicalEventOf(r)}}`;
    }
  }
  for (const g of await goneLeaves(db, treeSize, firstLeaf))
    yield `{"leaf":"${g.leaf_index}","sealedHash":"${g.leaf_hash.toString('base64')}","globalPosition":"0","event":null}`;
}

/** What verifies an export: its header as a line, then each record as checked. ExportVerifier is one. */
export interface AuditLogSink {
  line(header: string): void;
  checked(check: RecordCheck): void;
}

/**
 * `audit verify --database`: feeds `sink` exactly what the export of the
 * same options would give it, line for line, but checks each event where it
 * is read (its canonical bytes hashed and compared with its sealed leaf)
 * instead of writing it as a line and parsing it back, while the next batch
 * of rows is being read. What bounds it is Postgres rendering each event's
 * jsonb as text (`npm run bench:seal`); one COPY of the whole log measured no
 * faster than these batches.
 *
 * @example
 * const verifier = new ExportVerifier({ checkpointSizes });
 * await feedAuditLog(db, verifier);
 */
export async function feedAuditLog(db: Db, sink: AuditLogSink, options: { treeSize?: number; firstLeaf?: number; range?: boolean } = {}): Promise<void> {
  const { treeSize, firstLeaf, header } = await exportHeader(db, options);
  sink.line(header);
  for await (const rows of sealedRowBatches(db, treeSize, firstLeaf)) {
    for (const r of rows) {
      if (r.leaf_index === null) {
        sink.checked({ kind: 'inserted', eventId: r.event_id });
        continue;
      }
      const sealed = r.leaf_hash!;
      const match = leafHash(canonicalEventOf(r)).equals(sealed);
      sink.checked({ kind: 'sealed', leaf: Number(r.leaf_index), sealed, event: match ? 'match' : 'changed', eventId: match ? undefined : r.event_id });
    }
  }
  for (const g of await goneLeaves(db, treeSize, firstLeaf))
    sink.checked({ kind: 'sealed', leaf: Number(g.leaf_index), sealed: g.leaf_hash, event: 'deleted', eventId: undefined });
}

async function exportHeader(
  db: Db,
  options: { treeSize?: number; firstLeaf?: number; range?: boolean },
): Promise<{ treeSize: number; firstLeaf: number; header: string }> {
  const treeSize = options.treeSize ?? (await latestCheckpoint(db))?.treeSize ?? 0;
  const firstLeaf = options.range ? Math.min(options.firstLeaf ?? 0, treeSize) : 0;
  const range = options.range
    ? `,"range":{"firstLeaf":"${firstLeaf}","edge":[${(await frontierEdge(db, firstLeaf)).map((h) => `"${h.toString('base64')}"`).join(',')}]}`
    : '';
  return { treeSize, firstLeaf, header: `{"keyledgerAuditExport":1,"treeSize":"${treeSize}"${range}}` };
}

interface SealedRow {
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
}

/**
 * The database's events up to the sealer's horizon, in the log's order, with
 * their leaves (those sealed at or beyond `treeSize` left out), from the
 * first event sealed at or after `firstLeaf`: in batches, the next one read
 * while the caller works on the last.
 */
async function* sealedRowBatches(db: Db, treeSize: number, firstLeaf: number): AsyncGenerator<SealedRow[]> {
  const { after, sealedUpTo } = await logWindow(db, firstLeaf);
  const batch = async (from: LogPosition) => (await selectSealedRows(from, sealedUpTo, BATCH).execute(db)).rows;
  let next: Promise<SealedRow[]> | undefined = batch(after);
  while (next) {
    const rows: SealedRow[] = await next;
    const last = rows.at(-1);
    next = rows.length === BATCH && last ? batch({ transactionId: last.xid, globalPosition: last.position }) : undefined;
    // A rejected read-ahead is awaited at the next turn; until then it must not count as unhandled.
    next?.catch(() => undefined);
    yield rows.filter((r) => r.leaf_index === null || Number(r.leaf_index) < treeSize);
  }
}

interface LogPosition {
  transactionId: string;
  globalPosition: string;
}

/** Where the rows of an export start (just before the first event sealed at or after firstLeaf) and end (the sealer's horizon). */
async function logWindow(db: Db, firstLeaf: number): Promise<{ after: LogPosition; sealedUpTo: LogPosition }> {
  const { rows: states } = await sql<{ transaction_id: string; global_position: string }>`
    SELECT transaction_id::text, global_position::text FROM log_seal_state`.execute(db);
  const sealedUpTo = { transactionId: states[0]!.transaction_id, globalPosition: states[0]!.global_position };
  let after = { transactionId: '0', globalPosition: '0' };
  if (firstLeaf > 0) {
    // Just before the first event sealed at or after firstLeaf, in the log's order.
    const { rows: starts } = await sql<{ xid: string; position: string }>`
      SELECT e.transaction_id::text AS xid, (e.global_position - 1)::text AS position
        FROM log_seal_leaves l JOIN events e ON e.event_id = l.event_id
       WHERE l.leaf_index >= ${String(firstLeaf)}::bigint ORDER BY l.leaf_index LIMIT 1`.execute(db);
    // None (an empty range, or every one of its events gone): no event is in the range, only its sealed leaves.
    after = starts[0] ? { transactionId: starts[0].xid, globalPosition: starts[0].position } : sealedUpTo;
  }
  return { after, sealedUpTo };
}

/** The events after `from` up to `upTo` in the log's order, with their leaves; at most `limit`. */
function selectSealedRows(from: LogPosition, upTo: LogPosition, limit: number) {
  return sql<SealedRow>`
      SELECT e.event_id::text, e.stream_id, e.stream_version::text, e.type, e.data::text AS data, e.metadata::text AS metadata,
             to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at,
             e.transaction_id::text AS xid, e.global_position::text AS position, l.leaf_index::text AS leaf_index,
             l.leaf_hash
        FROM events e LEFT JOIN log_seal_leaves l ON l.event_id = e.event_id
       WHERE (e.transaction_id, e.global_position) > (${from.transactionId}::xid8, ${from.globalPosition}::bigint)
         AND (e.transaction_id, e.global_position) <= (${upTo.transactionId}::xid8, ${upTo.globalPosition}::bigint)
       ORDER BY e.transaction_id, e.global_position
       LIMIT ${limit}`;
}

/** Sealed leaves in firstLeaf..treeSize-1 whose event the database no longer holds. */
async function goneLeaves(db: Db, treeSize: number, firstLeaf: number): Promise<{ leaf_index: string; leaf_hash: Buffer }[]> {
  const { rows } = await sql<{ leaf_index: string; leaf_hash: Buffer }>`
    SELECT l.leaf_index::text, l.leaf_hash FROM log_seal_leaves l
     WHERE l.leaf_index >= ${String(firstLeaf)}::bigint AND l.leaf_index < ${String(treeSize)}::bigint
       AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = l.event_id)
     ORDER BY l.leaf_index`.execute(db);
  return rows;
}
