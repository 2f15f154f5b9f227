import { sql, type Transaction } from 'kysely';
import type { Database, Db } from './database.ts';
import { uuidV7 } from '../domain/uuid-v7.ts';

/** What a writer expects the stream's version to be before its append. */
export type ExpectedVersion = 'no_stream' | 'any' | bigint;

export interface NewEvent<T extends string = string, D = unknown> {
  type: T;
  data: D;
  metadata?: Record<string, unknown>;
}

export interface RecordedEvent<T extends string = string, D = unknown> {
  globalPosition: bigint;
  transactionId: bigint;
  streamId: string;
  streamVersion: bigint;
  eventId: string;
  type: T;
  data: D;
  metadata: Record<string, unknown>;
  recordedAt: Date;
}

/** Thrown when the stream's version is not the one the writer expected. */
export class StreamVersionConflictError extends Error {
  override readonly name = 'StreamVersionConflictError';
  readonly streamId: string;
  readonly expected: ExpectedVersion;

  constructor(streamId: string, expected: ExpectedVersion) {
    super(`stream ${streamId} is not at the expected version ${String(expected)}`);
    this.streamId = streamId;
    this.expected = expected;
  }
}

export interface AppendResult {
  /** The stream's version after the append. */
  nextVersion: bigint;
  events: RecordedEvent[];
}

type Executor = Db | Transaction<Database>;

/**
 * Appends `events` to `streamId` if the stream is at `expected`, in the caller's
 * transaction. The version check is a conditional write on `streams` made before
 * the events are inserted, so two writers racing on one stream cannot both win:
 * the second blocks on the row lock, re-checks, and gets a conflict.
 *
 * @example
 * await db.transaction().execute(async (trx) => {
 *   await appendToStream(trx, `key-${keyId}`, 3n, [{ type: 'KeyDisabled', data: {} }], clock.now());
 * });
 */
export async function appendToStream(
  trx: Transaction<Database>,
  streamId: string,
  expected: ExpectedVersion,
  events: readonly NewEvent[],
  recordedAt: Date,
): Promise<AppendResult> {
  if (events.length === 0) throw new RangeError('appendToStream needs at least one event');
  const count = BigInt(events.length);
  let nextVersion: bigint;

  if (expected === 'no_stream') {
    const row = await trx
      .insertInto('streams')
      .values({ stream_id: streamId, version: count })
      .onConflict((oc) => oc.column('stream_id').doNothing())
      .returning('version')
      .executeTakeFirst();
    if (!row) throw new StreamVersionConflictError(streamId, expected);
    nextVersion = BigInt(row.version);
  } else if (expected === 'any') {
    const row = await trx
      .insertInto('streams')
      .values({ stream_id: streamId, version: count })
      .onConflict((oc) => oc.column('stream_id').doUpdateSet({ version: sql`streams.version + ${count}` }))
      .returning('version')
      .executeTakeFirstOrThrow();
    nextVersion = BigInt(row.version);
  } else {
    const row = await trx
      .updateTable('streams')
      .set({ version: sql`version + ${count}` })
      .where('stream_id', '=', streamId)
      .where('version', '=', expected.toString())
      .returning('version')
      .executeTakeFirst();
    if (!row) throw new StreamVersionConflictError(streamId, expected);
    nextVersion = BigInt(row.version);
  }

  const firstVersion = nextVersion - count + 1n;
  const inserted = await insertEvents(trx, streamId, firstVersion, events, recordedAt);
  return { nextVersion, events: inserted };
}

/**
 * Appends a one-event stream that nobody else writes to, such as the audit record
 * of one request (`request-<requestId>`). No `streams` row is kept for these:
 * the unique (stream_id, stream_version) index already makes a second append
 * fail, and not touching a shared row is what lets concurrent requests on one
 * key commit without serializing on each other.
 *
 * @example
 * await appendSingleEventStream(trx, `request-${requestId}`, { type: 'AuditRecord', data: record }, now)
 * // { globalPosition, transactionId, streamId: 'request-…', streamVersion: 1n, eventId, … }; a second append to it fails (unique violation)
 */
export async function appendSingleEventStream(trx: Executor, streamId: string, event: NewEvent, recordedAt: Date): Promise<RecordedEvent> {
  const [recorded] = await insertEvents(trx, streamId, 1n, [event], recordedAt);
  return recorded!;
}

async function insertEvents(trx: Executor, streamId: string, firstVersion: bigint, events: readonly NewEvent[], recordedAt: Date): Promise<RecordedEvent[]> {
  const rows = events.map((e, i) => ({
    stream_id: streamId,
    stream_version: firstVersion + BigInt(i),
    event_id: uuidV7(),
    type: e.type,
    data: JSON.stringify(e.data),
    metadata: JSON.stringify(e.metadata ?? {}),
    recorded_at: recordedAt,
  }));
  // Only what the database assigns comes back: the data (an audit record is ~1 KB) need not.
  const assigned = await trx.insertInto('events').values(rows).returning(['global_position', 'transaction_id', 'stream_version']).execute();
  const byVersion = new Map(assigned.map((a) => [String(a.stream_version), a]));
  return rows.map((row, i) => {
    const a = byVersion.get(String(row.stream_version))!;
    return {
      globalPosition: BigInt(a.global_position),
      transactionId: BigInt(a.transaction_id),
      streamId,
      streamVersion: row.stream_version,
      eventId: row.event_id,
      type: events[i]!.type,
      data: events[i]!.data,
      metadata: events[i]!.metadata ?? {},
      recordedAt,
    };
  });
}

/**
 * Reads one stream in version order, optionally only events recorded at or before
 * `asOf` (time travel).
 *
 * @example
 * const events = await readStream(trx, keyStreamId(keyId));
 * const then = await readStream(trx, keyStreamId(keyId), { asOf: new Date('2026-01-01T00:00:00Z') });
 */
export async function readStream(db: Executor, streamId: string, options: { asOf?: Date } = {}): Promise<RecordedEvent[]> {
  let query = db.selectFrom('events').selectAll().where('stream_id', '=', streamId);
  if (options.asOf) query = query.where('recorded_at', '<=', options.asOf);
  const rows = await query.orderBy('stream_version').execute();
  return rows.map(toRecordedEvent);
}

/**
 * The followers' horizon: the lowest transaction id that may still commit an
 * event in THIS database. Every event of a lower transaction id is final, so a
 * reader that only returns events below it, ordered by (transaction_id,
 * global_position), never skips or repeats one whatever commits later
 * (global_position is assigned at INSERT, not at commit, so ordering by it
 * alone is not stable): readAllForward, the audit pages and tail, the usage
 * rollups' fold.
 *
 * pg_snapshot_xmin would do, but it is cluster-wide: a transaction left open in
 * another database would hide this one's newest events. So: the in-progress
 * transaction ids of the statement's snapshot that hold a lock in this database
 * (a transaction gets its id by writing, after taking the written table's lock,
 * which it holds until it ends; only an explicit pg_current_xact_id() before any
 * write would get an id without a lock, and nothing in keyledger does that). The
 * snapshot is taken before pg_locks is read: a transaction that is in the
 * snapshot but gone from pg_locks has ended before the next statement, whose
 * fresh snapshot (READ COMMITTED) then sees its events.
 *
 * Must run in its own statement, before the read, in a READ COMMITTED
 * transaction (or none). The caller's own transaction does not count: inside a
 * transaction that has written, its own events are below the horizon.
 *
 * @example
 * const horizon = await logHorizon(db); // then read events with transaction_id < horizon
 */
export async function logHorizon(db: Executor): Promise<bigint> {
  const { rows } = await sql<{ horizon: string; isolation: string }>`
    WITH s AS (SELECT pg_current_snapshot() AS snap),
    lockers AS (
      SELECT DISTINCT t.transactionid::text::bigint AS xid32
        FROM pg_locks t
        JOIN pg_locks r ON r.virtualtransaction = t.virtualtransaction
       WHERE t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted
         AND r.locktype IN ('relation', 'advisory', 'tuple', 'page', 'object')
         AND r.database = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND t.pid IS DISTINCT FROM pg_backend_pid()
    )
    SELECT least(
      pg_snapshot_xmax(s.snap),
      (SELECT min(x) FROM pg_snapshot_xip(s.snap) AS x WHERE x::text::bigint % 4294967296 IN (SELECT xid32 FROM lockers))
    )::text AS horizon,
    current_setting('transaction_isolation') AS isolation
    FROM s`.execute(db);
  const { horizon, isolation } = rows[0]!;
  // pg_locks is read live: in an older snapshot (REPEATABLE READ) a transaction that
  // committed since would be past the horizon and still invisible, so skipped for good.
  if (isolation !== 'read committed') throw new Error(`logHorizon needs a READ COMMITTED transaction, not ${isolation}`);
  return BigInt(horizon);
}

/** A follower's position in the global log: strictly after this event. */
export interface GlobalCheckpoint {
  transactionId: bigint;
  globalPosition: bigint;
}

export const LOG_START: GlobalCheckpoint = { transactionId: 0n, globalPosition: 0n };

/**
 * Reads the next batch of the global log after `after`, in (transaction_id,
 * global_position) order, and only events of transactions below logHorizon:
 * every transaction of this database that could still commit an event ordered
 * before them has finished, so a follower that resumes from the last event it
 * saw never skips one committed late by a long transaction.
 *
 * @example
 * let checkpoint = LOG_START;
 * for (;;) {
 *   const batch = await readAllForward(db, { after: checkpoint, limit: 1000 });
 *   if (batch.length === 0) break;
 *   for (const e of batch) apply(e);
 *   checkpoint = batch.at(-1)!;
 * }
 */
export async function readAllForward(
  db: Executor,
  options: { after?: GlobalCheckpoint; limit?: number; types?: readonly string[]; streamPrefixes?: readonly string[] } = {},
): Promise<RecordedEvent[]> {
  const after = options.after ?? LOG_START;
  const horizon = await logHorizon(db);
  let query = db
    .selectFrom('events')
    .selectAll()
    .where(sql<boolean>`(transaction_id, global_position) > (${after.transactionId.toString()}::xid8, ${after.globalPosition.toString()}::bigint)`)
    .where(sql<boolean>`transaction_id < ${horizon.toString()}::xid8`);
  if (options.types) query = query.where('type', 'in', options.types);
  if (options.streamPrefixes) {
    const prefixes = options.streamPrefixes;
    // Escaped: `_` and `%` in a prefix are literal characters, not LIKE wildcards.
    query = query.where((eb) => eb.or(prefixes.map((p) => eb('stream_id', 'like', `${p.replace(/[\\%_]/g, '\\$&')}%`))));
  }
  const rows = await query
    .orderBy('transaction_id')
    .orderBy('global_position')
    .limit(options.limit ?? 1000)
    .execute();
  return rows.map(toRecordedEvent);
}

type EventRow = {
  global_position: string;
  transaction_id: string;
  stream_id: string;
  stream_version: string;
  event_id: string;
  type: string;
  data: unknown;
  metadata: Record<string, unknown>;
  recorded_at: Date;
};

function toRecordedEvent(row: EventRow): RecordedEvent {
  return {
    globalPosition: BigInt(row.global_position),
    transactionId: BigInt(row.transaction_id),
    streamId: row.stream_id,
    streamVersion: BigInt(row.stream_version),
    eventId: row.event_id,
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    recordedAt: row.recorded_at,
  };
}
