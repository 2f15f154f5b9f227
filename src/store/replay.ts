import { performance } from 'node:perf_hooks';
import { sql, type RawBuilder, type Transaction } from 'kysely';
import { ALIAS_EVENT_TYPES, evolveAlias, type AliasEvent, type AliasState } from '../domain/alias.ts';
import { evolveKey, KEY_EVENT_TYPES, type KeyEvent, type KeyState, type Recorded } from '../domain/key.ts';
import type { Database, Db } from './database.ts';
import { evolveGrant, GRANT_EVENT_TYPES, type GrantEvent, type GrantState } from '../domain/grant.ts';
import { grantRow } from './grant-store.ts';
import { aliasRow, keyRow, tagRows, type ProjectionSchema } from './projections.ts';

export interface ReplayOptions {
  /** Compare a rebuild with the live projections instead of replacing them. */
  verify: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Events per FETCH from the log's cursor (and per progress report); 10,000 by default. */
  batchSize?: number;
}

export interface ReplayResult {
  /** Events folded. */
  events: number;
  keys: number;
  aliases: number;
  /** With `verify`: one line per row that differs (empty when the projections equal the log). */
  differences: string[];
  /** Where the time went, in milliseconds (reading includes the driver's parsing of rows). */
  timings: ReplayTimings;
}

export interface ReplayTimings {
  read: number;
  fold: number;
  write: number;
  compare: number;
}

/** Requests' audit records: the bulk of the log, and no part of any key's state. */
const AUDIT_RECORD = 'AuditRecord';

interface EventRow {
  stream_id: string;
  /** bigint as its decimal text. */
  stream_version: string;
  type: string;
  data: unknown;
  /**
   * recorded_at in whole milliseconds since the epoch, floored as pg's own
   * timestamptz parser truncates: the same Date, without parsing date text
   * (which was a fifth of the read).
   */
  recorded_ms: number;
}

const PROJECTION_TABLES = ['keys', 'key_tags', 'aliases', 'grants'] as const;
type ProjectionTable = (typeof PROJECTION_TABLES)[number];
const MAX_LISTED_PER_TABLE = 50;

/**
 * Rebuilds the key, tag and alias projections by folding the log from the
 * beginning (`events.reduce(evolve, initial)` per stream).
 *
 * Without `verify` the live tables are replaced in one transaction that holds
 * them in EXCLUSIVE mode (readers go on; writers wait). With `verify` the fold
 * goes into same-shaped temporary tables and is compared with the live ones row
 * for row; both are read in one REPEATABLE READ snapshot, so a request
 * committing meanwhile cannot show up as a false difference.
 *
 * @example
 * const { differences } = await replayProjections(ownerDb, { verify: true });
 * if (differences.length) process.exitCode = 1;
 */
export async function replayProjections(db: Db, options: ReplayOptions): Promise<ReplayResult> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      if (!options.verify) await sql`LOCK TABLE keys, key_tags, aliases, grants IN EXCLUSIVE MODE`.execute(trx);
      const timings: ReplayTimings = { read: 0, fold: 0, write: 0, compare: 0 };
      const { keys, aliases, grants, events } = await foldLog(trx, options, timings);

      let t0 = performance.now();
      const target: ProjectionSchema = options.verify ? 'pg_temp' : 'public';
      // Sent first, and run by Postgres while Node serialises the rows (no parameters:
      // one simple-protocol round trip for the four statements).
      const prepare = options.verify
        ? sql`${sql.join(
            PROJECTION_TABLES.map((table) => sql`CREATE TEMP TABLE ${sql.id(table)} (LIKE ${sql.id('public', table)} INCLUDING DEFAULTS) ON COMMIT DROP`),
            sql`; `,
          )}`.execute(trx)
        : sql`DELETE FROM key_tags; DELETE FROM keys; DELETE FROM aliases; DELETE FROM grants`.execute(trx);
      // Awaited below, or dropped with the transaction if serialising throws: never unhandled.
      prepare.catch(() => {});
      await new Promise((resolve) => setImmediate(resolve));
      const inserts = serialiseRows(target, keys, aliases, grants);
      await prepare;
      for (const insert of inserts) await insert.execute(trx);
      timings.write += performance.now() - t0;
      t0 = performance.now();
      const differences = options.verify ? await compare(trx) : [];
      timings.compare += performance.now() - t0;
      return { events, keys: keys.length, aliases: aliases.length, differences, timings };
    });
}

async function foldLog(trx: Transaction<Database>, options: ReplayOptions, timings: ReplayTimings): Promise<{ keys: KeyState[]; aliases: AliasState[]; grants: GrantState[]; events: number }> {
  const batchSize = options.batchSize ?? 10_000;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, not ${batchSize}`);
  let t0 = performance.now();
  let total = 0;
  if (options.onProgress) {
    // Index-only on events_type_position; only a progress bar needs it.
    const types = [...KEY_EVENT_TYPES, ...ALIAS_EVENT_TYPES, ...GRANT_EVENT_TYPES];
    const { rows } = await sql<{ total: string }>`SELECT count(*) AS total FROM events WHERE type = ANY(${types}::text[])`.execute(trx);
    total = Number(rows[0]!.total);
  }
  // One streaming read in log order (a cursor in this snapshot) instead of a
  // query per batch that re-reads and re-sorts what is left. In this snapshot
  // nothing is in flight, so global order is a safe total order.
  //
  // The WHERE is exactly the predicate of the partial index events_state_position
  // (sql/0012_replay_index.sql), spelled as a literal: the scan reads that small
  // index in order, never visits an audit record however many are interleaved,
  // and needs no sort. (No `type IN (...)` beside it: that made the planner
  // expect 2% of the rows, and prefer a sort or the primary key.) Anything that
  // is neither a key, an alias nor a grant event is skipped below, as before.
  // stream_version as text: the same digits, without pg's int8 parser (a regex per row).
  await sql`DECLARE replay_events NO SCROLL CURSOR FOR
    SELECT stream_id, stream_version::text AS stream_version, type, data,
           floor(extract(epoch FROM recorded_at) * 1000)::float8 AS recorded_ms
      FROM events WHERE type <> ${sql.lit(AUDIT_RECORD)} ORDER BY global_position`.execute(trx);
  const fetch = sql<EventRow>`FETCH FORWARD ${sql.lit(batchSize)} FROM replay_events`;
  timings.read += performance.now() - t0;
  const keys = new Map<string, KeyState>();
  const aliases = new Map<string, AliasState>();
  const grants = new Map<string, GrantState>();
  let done = 0;
  // The next batch is asked for before this one is folded: Postgres reads and
  // sends it (on the other core) while this one folds.
  let next: Promise<{ rows: EventRow[] }> | null = fetch.execute(trx);
  while (next) {
    t0 = performance.now();
    const { rows }: { rows: EventRow[] } = await next;
    const t1 = performance.now();
    timings.read += t1 - t0;
    next = rows.length < batchSize ? null : fetch.execute(trx);
    // Awaited above or after a throw by the fold (when the transaction rolls back
    // behind it on the same connection): never an unhandled rejection.
    next?.catch(() => {});
    // Let Kysely's and pg's promise chain put the FETCH on the wire before the fold takes the thread.
    if (next) await new Promise((resolve) => setImmediate(resolve));
    const before = done;
    for (const row of rows) {
      const { stream_id: streamId, type } = row;
      const streams = KEY_EVENT_TYPES.has(type) ? keys : ALIAS_EVENT_TYPES.has(type) ? aliases : GRANT_EVENT_TYPES.has(type) ? grants : null;
      if (streams === null) continue;
      const streamVersion = BigInt(row.stream_version);
      const event = { type, data: row.data, recordedAt: new Date(row.recorded_ms), streamVersion };
      const state = streams.get(streamId);
      checkSequence(streamId, state?.version, streamVersion);
      if (streams === keys) keys.set(streamId, evolveKey((state as KeyState | undefined) ?? null, event as Recorded<KeyEvent>));
      else if (streams === aliases) aliases.set(streamId, evolveAlias((state as AliasState | undefined) ?? null, event as Recorded<AliasEvent>));
      else grants.set(streamId, evolveGrant((state as GrantState | undefined) ?? null, event as Recorded<GrantEvent>));
      done++;
    }
    timings.fold += performance.now() - t1;
    if (done > before) options.onProgress?.(done, total);
  }
  t0 = performance.now();
  await sql`CLOSE replay_events`.execute(trx);
  timings.read += performance.now() - t0;
  return {
    keys: [...keys.values()].filter((k) => !k.deleted),
    aliases: [...aliases.values()].filter((a) => !a.deleted),
    grants: [...grants.values()].filter((g) => !g.retired),
    events: done,
  };
}

function checkSequence(streamId: string, previous: bigint | undefined, next: bigint): void {
  const expected = (previous ?? 0n) + 1n;
  if (next !== expected) throw new Error(`stream ${streamId} has version ${next} where ${expected} was expected`);
}

/** The INSERTs that write the folded state into `schema`'s projection tables. */
function serialiseRows(schema: ProjectionSchema, keys: KeyState[], aliases: AliasState[], grants: GrantState[]): RawBuilder<unknown>[] {
  // JSON has no bigint: versions go as their decimal text, which int8 reads back exactly.
  return [
    ...insertRows(schema, 'keys', keys.map((k) => ({ ...keyRow(k), version: k.version.toString() }))),
    ...insertRows(schema, 'key_tags', keys.flatMap(tagRows)),
    ...insertRows(schema, 'aliases', aliases.map((a) => ({ ...aliasRow(a), version: a.version.toString() }))),
    // grantRow hands constraints to pg as JSON text; here the value itself goes in the JSON document.
    ...insertRows(schema, 'grants', grants.map((g) => ({ ...grantRow(g), constraints: g.constraints, version: g.version.toString() }))),
  ];
}

/**
 * Rows per INSERT. A jsonb value holds at most 256 MB: 1,000 keys with AWS's
 * largest policies (32 KB, twice that as JSON text at worst) stay far below it.
 */
const WRITE_CHUNK = 1000;

/**
 * INSERT ... SELECT FROM jsonb_populate_recordset, one statement per WRITE_CHUNK rows:
 * the rows cross as one JSON parameter instead of a bound parameter per column
 * per row, which Kysely compiled and pg serialised one by one. jsonb rather
 * than json: measured at 1,000 keys with their policies (1.3 MB), the keys'
 * INSERT took 26 ms instead of 53.
 * Dates go as ISO strings (milliseconds, as pg would send them), arrays as JSON arrays.
 */
function insertRows(schema: ProjectionSchema, table: ProjectionTable, rows: Record<string, unknown>[]): RawBuilder<unknown>[] {
  if (rows.length === 0) return [];
  const target = sql.id(schema, table);
  // The rows' own keys, as Kysely's insert would name them (a column left out keeps its default).
  const columns = sql.join(Object.keys(rows[0]!).map((c) => sql.id(c)));
  return [...chunks(rows, WRITE_CHUNK)].map(
    (chunk) => sql`INSERT INTO ${target} (${columns}) SELECT ${columns} FROM jsonb_populate_recordset(NULL::${target}, ${JSON.stringify(chunk)}::jsonb)`,
  );
}

/**
 * Rows in one table and not the other, both ways (EXCEPT ALL: duplicates count
 * too), for the four tables in one statement: up to MAX_LISTED_PER_TABLE each way.
 */
async function compare(trx: Transaction<Database>): Promise<string[]> {
  const sides = PROJECTION_TABLES.flatMap((table, t) => {
    const live = sql.id('public', table);
    const replayed = sql.id('pg_temp', table);
    return [
      sql`(SELECT ${sql.lit(2 * t)} AS side, to_jsonb(d) AS row FROM (SELECT * FROM ${live} EXCEPT ALL SELECT * FROM ${replayed}) d LIMIT ${sql.lit(MAX_LISTED_PER_TABLE)})`,
      sql`(SELECT ${sql.lit(2 * t + 1)} AS side, to_jsonb(d) AS row FROM (SELECT * FROM ${replayed} EXCEPT ALL SELECT * FROM ${live}) d LIMIT ${sql.lit(MAX_LISTED_PER_TABLE)})`,
    ];
  });
  const { rows } = await sql<{ side: number; row: unknown }>`SELECT side, row FROM (${sql.join(sides, sql` UNION ALL `)}) differences ORDER BY side`.execute(trx);
  return rows.map(({ side, row }) => {
    const table = PROJECTION_TABLES[side >> 1]!;
    return side % 2 === 0 ? `${table}: live row not produced by replay: ${JSON.stringify(row)}` : `${table}: replayed row missing from live: ${JSON.stringify(row)}`;
  });
}

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
