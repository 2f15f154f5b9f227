import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { ALIAS_EVENT_TYPES, evolveAlias, type AliasEvent, type AliasState } from '../domain/alias.ts';
import { evolveKey, KEY_EVENT_TYPES, type KeyEvent, type KeyState, type Recorded } from '../domain/key.ts';
import { evolveGrant, GRANT_EVENT_TYPES, type GrantEvent, type GrantState } from '../domain/grant.ts';
import { copyRow, postgresTextArray, postgresTimestamp } from './postgres-text.ts';
import { withPooledClient, type Db } from './database.ts';
import { grantRow } from './grant-store.ts';
import { aliasRow, keyRow, tagRows } from './projections.ts';
import { checkUsageRollups, type UsageRollupCheck } from './usage-rollup-verify.ts';

export interface ReplayOptions {
  /** Compare a rebuild with the live projections instead of replacing them. */
  verify: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Events folded between two progress reports; 10,000 by default. */
  progressEvery?: number;
  /**
   * Check (and without `verify`, rebuild) the usage rollups too: true by
   * default. Their check folds every audit record again (minutes at 10M
   * records); the key, alias and grant projections take a second or two.
   */
  rollups?: boolean;
  /** Audit records folded per statement by the rollups' check (see checkUsageRollups). */
  rollupChunk?: number;
  /** The rollups' check: audit records folded so far, of the checkpoint's count. */
  onRollupProgress?: (done: number, total: number) => void;
}

export interface ReplayResult {
  /** Events folded. */
  events: number;
  /** Audit records the usage rollups' check folded (0 when it was skipped). */
  auditRecords: number;
  keys: number;
  aliases: number;
  /**
   * One line per row that differs, up to 50 each way per table (empty when the
   * projections equal the log). Without `verify`: what the rebuild rewrote.
   */
  differences: string[];
  /** Where the time went, in milliseconds. */
  timings: ReplayTimings;
}

export interface ReplayTimings {
  /**
   * Reading the log and folding it, which overlap: rows are folded as the
   * driver parses them, while Postgres reads the next ones; and reading the
   * live projections before them.
   */
  fold: number;
  /** Comparing the fold with the live projections. */
  compare: number;
  /** Folding the audit records again and comparing them with the usage rollups (0 when skipped). */
  rollups: number;
  /** Writing the rows that differ (without `verify`). */
  write: number;
}

/** Requests' audit records: the bulk of the log, and no part of any key's state. */
const AUDIT_RECORD = 'AuditRecord';

/**
 * The log's key, alias and grant events in order; the row as an array:
 * stream_id, stream_version (a bigint as its decimal text, without pg's int8
 * parser), type, data, and recorded_at in whole milliseconds since the epoch,
 * floored as pg's own timestamptz parser truncates (the same Date, without
 * parsing date text, which was a fifth of the read).
 *
 * The WHERE is exactly the predicate of the partial index events_state_position
 * (sql/0012_replay_index.sql), spelled as a literal: the scan reads that small
 * index in order, never visits an audit record however many are interleaved,
 * and needs no sort. (No `type IN (...)` beside it: that made the planner
 * expect 2% of the rows, and prefer a sort or the primary key.) Anything that
 * is neither a key, an alias nor a grant event is skipped by the fold.
 */
const STATE_EVENTS = `SELECT stream_id, stream_version::text, type, data, floor(extract(epoch FROM recorded_at) * 1000)::float8
  FROM events WHERE type <> '${AUDIT_RECORD}' ORDER BY global_position`;
type EventRow = [streamId: string, streamVersion: string, type: string, data: unknown, recordedMs: number];

const PROJECTION_TABLES = ['keys', 'key_tags', 'aliases', 'grants'] as const;
type ProjectionTable = (typeof PROJECTION_TABLES)[number];
const MAX_LISTED_PER_TABLE = 50;
const table = (name: ProjectionTable) => `public.${pg.escapeIdentifier(name)}`;

/**
 * Rebuilds the key, tag, alias and grant projections by folding the log from
 * the beginning (`events.reduce(evolve, initial)` per stream), and compares the
 * fold with the live tables row for row. Both are read in one REPEATABLE READ
 * snapshot, so a request committing meanwhile cannot show up as a false
 * difference. Then, unless `rollups` is false, the usage rollups are checked
 * against the fold of the audit records (usage-rollup-verify.ts) in a second
 * transaction and snapshot of their own.
 *
 * With `verify` nothing is written. Without it, the rows that differ are
 * rewritten (see `repair`), so afterwards the live tables equal the fold; each
 * transaction holds what it rewrites in EXCLUSIVE mode from before its snapshot
 * to its commit (readers go on; writers wait): the projections for the first,
 * which takes seconds; the rollups' checkpoint (the worker's fold) for the
 * second, which takes minutes over a large log.
 *
 * It runs on one of `db`'s connections as a raw client: the log's rows are
 * folded as they arrive, while Postgres reads the next ones.
 *
 * @example
 * const { differences } = await replayProjections(ownerDb, { verify: true });
 * if (differences.length) process.exitCode = 1;
 */
export async function replayProjections(db: Db, options: ReplayOptions): Promise<ReplayResult> {
  const progressEvery = options.progressEvery ?? 10_000;
  if (!Number.isInteger(progressEvery) || progressEvery < 1) throw new RangeError(`progressEvery must be a positive integer, not ${progressEvery}`);
  return withPooledClient(db, async (client) => {
    const timings: ReplayTimings = { fold: 0, compare: 0, rollups: 0, write: 0 };
    const projections = await inSnapshot(client, () => replayIn(client, options, progressEvery, timings));
    // Its own transaction, after the projections' commit: a rebuild holds key writes for
    // seconds, not for the minutes the rollups' check takes over a large log. The two are
    // independent folds (state events; audit records), each read in one snapshot.
    const check = options.rollups === false ? null : await inSnapshot(client, () => checkRollupsIn(db, client, options, timings));
    return {
      ...projections,
      auditRecords: check?.records ?? 0,
      differences: [...projections.differences, ...(check?.differences ?? [])],
      timings,
    };
  });
}

/** `body` in a REPEATABLE READ transaction, in UTC and ISO: how the live timestamps are printed for the comparison (postgresTimestamp). */
async function inSnapshot<T>(client: pg.ClientBase, body: () => Promise<T>): Promise<T> {
  await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO'");
  try {
    const result = await body();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

async function replayIn(
  client: pg.ClientBase,
  options: ReplayOptions,
  progressEvery: number,
  timings: ReplayTimings,
): Promise<Omit<ReplayResult, 'auditRecords' | 'timings'>> {
  let t0 = performance.now();
  if (!options.verify) await client.query(`LOCK TABLE ${PROJECTION_TABLES.map(table).join(', ')} IN EXCLUSIVE MODE`);
  // Before the log, in the same snapshot (taken by this first read, after the lock).
  const live = await readLive(client);
  const { keys, aliases, grants, events } = await foldLog(client, options, progressEvery);
  timings.fold += performance.now() - t0;

  t0 = performance.now();
  const folded = projectionRows(keys, aliases, grants);
  const jsonText = await canonicalJson(client, live, folded);
  const diffs = PROJECTION_TABLES.map((name, i) => diffTable(name, live[i]!, folded[name], jsonText));
  const differences = diffs.flatMap(describeDiff);
  timings.compare += performance.now() - t0;
  if (!options.verify && differences.length > 0) {
    t0 = performance.now();
    await repair(client, diffs, folded.key_tags);
    timings.write += performance.now() - t0;
  }
  return { events, keys: keys.length, aliases: aliases.length, differences };
}

/** The usage rollups against the log (and without `verify`, rewritten where they differ). */
async function checkRollupsIn(db: Db, client: pg.ClientBase, options: ReplayOptions, timings: ReplayTimings): Promise<UsageRollupCheck> {
  let t0 = performance.now();
  // Before the snapshot: no fold moves the rollups while they are compared and rewritten.
  if (!options.verify) await client.query('LOCK TABLE public.audit_usage_checkpoint IN EXCLUSIVE MODE');
  const check = await checkUsageRollups(db, client, {
    ...(options.rollupChunk === undefined ? {} : { chunk: options.rollupChunk }),
    ...(options.onRollupProgress ? { onProgress: options.onRollupProgress } : {}),
  });
  timings.rollups += performance.now() - t0;
  if (!options.verify && check.differences.length > 0) {
    t0 = performance.now();
    await check.repair();
    timings.write += performance.now() - t0;
  }
  return check;
}

async function foldLog(
  client: pg.ClientBase,
  options: ReplayOptions,
  progressEvery: number,
): Promise<{ keys: KeyState[]; aliases: AliasState[]; grants: GrantState[]; events: number }> {
  let total = 0;
  if (options.onProgress) {
    // On events_state_position (its predicate follows from this one's); only a progress bar needs it.
    const types = [...KEY_EVENT_TYPES, ...ALIAS_EVENT_TYPES, ...GRANT_EVENT_TYPES];
    const { rows } = await client.query<{ total: string }>('SELECT count(*) AS total FROM events WHERE type = ANY($1::text[])', [types]);
    total = Number(rows[0]!.total);
  }
  const keys = new Map<string, KeyState>();
  const aliases = new Map<string, AliasState>();
  const grants = new Map<string, GrantState>();
  let done = 0;
  let failure: { error: unknown } | null = null;
  // One streamed result in this snapshot (nothing is in flight in it, so global
  // order is a safe total order): each row is folded as the driver parses it,
  // while Postgres goes on reading and sending, and no row is kept once folded.
  const config: pg.QueryArrayConfig = { text: STATE_EVENTS, rowMode: 'array' };
  const query = new pg.Query<EventRow>(config);
  query.on('row', (row: EventRow) => {
    // After a failure the rest of the result is drained unread; the failure is thrown once it ends.
    if (failure) return;
    try {
      const [streamId, version, type, data, recordedMs] = row;
      const streams = KEY_EVENT_TYPES.has(type) ? keys : ALIAS_EVENT_TYPES.has(type) ? aliases : GRANT_EVENT_TYPES.has(type) ? grants : null;
      if (streams === null) return;
      const streamVersion = BigInt(version);
      const event = { type, data, recordedAt: new Date(recordedMs), streamVersion };
      const state = streams.get(streamId);
      checkSequence(streamId, state?.version, streamVersion);
      if (streams === keys) keys.set(streamId, evolveKey((state as KeyState | undefined) ?? null, event as Recorded<KeyEvent>));
      else if (streams === aliases) aliases.set(streamId, evolveAlias((state as AliasState | undefined) ?? null, event as Recorded<AliasEvent>));
      else grants.set(streamId, evolveGrant((state as GrantState | undefined) ?? null, event as Recorded<GrantEvent>));
      if (++done % progressEvery === 0) options.onProgress?.(done, total);
    } catch (error) {
      failure = { error };
    }
  });
  await new Promise<void>((resolve, reject) => {
    query.on('end', () => resolve());
    query.on('error', reject);
    client.query(query);
  });
  if (failure) throw (failure as { error: unknown }).error;
  if (done % progressEvery !== 0) options.onProgress?.(done, total);
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

type Row = Record<string, unknown>;

/** The folded state as the projections' rows, each naming its columns. */
function projectionRows(keys: KeyState[], aliases: AliasState[], grants: GrantState[]): Record<ProjectionTable, Row[]> {
  return {
    // keyRow hands imported_materials to pg as JSON text; here they are the value itself.
    keys: keys.map((k) => ({ ...keyRow(k), imported_materials: k.importedMaterials })),
    key_tags: keys.flatMap(tagRows),
    aliases: aliases.map(aliasRow),
    // grantRow hands constraints to pg as JSON text; here they are the value itself.
    grants: grants.map((g) => ({ ...grantRow(g), constraints: g.constraints })),
  };
}

/** jsonb columns whose folded value is an array. */
const JSON_ARRAY_COLUMNS: ReadonlySet<string> = new Set(['keys.imported_materials']);

/** Rows per piece of COPY text: one string per table would outgrow V8's longest string at about 16,000 keys with 32 KB policies. */
const COPY_CHUNK = 1000;

/** Writes rows with COPY, in the first row's columns (a column it leaves out keeps its default). */
async function copyRows(client: pg.ClientBase, name: ProjectionTable, rows: Row[]): Promise<void> {
  const columns = Object.keys(rows[0]!);
  const pieces = function* (): Generator<string> {
    for (let i = 0; i < rows.length; i += COPY_CHUNK) {
      let text = '';
      // A JSON array (keys.imported_materials) goes as JSON text: COPY would read a JavaScript array as a Postgres array.
      for (const row of rows.slice(i, i + COPY_CHUNK))
        text += copyRow(columns.map((c) => (JSON_ARRAY_COLUMNS.has(`${name}.${c}`) ? JSON.stringify(row[c]) : row[c])));
      yield text;
    }
  };
  await pipeline(Readable.from(pieces()), client.query(copyFrom(`COPY ${table(name)} (${columns.map(pg.escapeIdentifier).join(', ')}) FROM STDIN`)));
}

/** A live table as pg returns it: its columns (with their types), and each row's values in their order. */
interface LiveTable {
  columns: { name: string; type: number }[];
  rows: unknown[][];
}

const TIMESTAMPTZ = 1184;
const TEXT_ARRAY = 1009;
const UUID = 2950;
const JSONB = 3802;
/** Left as Postgres prints them: not parsed into Dates (milliseconds), arrays or objects (JavaScript numbers). */
const PRINTED = new Set([TIMESTAMPTZ, TEXT_ARRAY, JSONB]);
const liveTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    PRINTED.has(oid) ? (text: string) => text : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** The four live tables, in PROJECTION_TABLES' order, in one round trip. */
async function readLive(client: pg.ClientBase): Promise<LiveTable[]> {
  const text = PROJECTION_TABLES.map((name) => `SELECT * FROM ${table(name)}`).join('; ');
  const config: pg.QueryArrayConfig = { text, rowMode: 'array', types: liveTypes };
  // Several statements in one query: pg gives one result per statement.
  const results = (await client.query(config)) as unknown as pg.QueryArrayResult[];
  return results.map(({ fields, rows }) => ({ columns: fields.map((f) => ({ name: f.name, type: f.dataTypeID })), rows }));
}

/** How a live table differs from the fold. */
interface TableDiff {
  name: ProjectionTable;
  columns: LiveTable['columns'];
  /** Live rows the fold does not produce, as comparable values. */
  extra: unknown[][];
  /** Folded rows that are not live: comparable values, and the row to write. */
  missing: { values: unknown[]; row: Row }[];
}

/**
 * Rows in one side and not the other, both ways, as multisets (a duplicate
 * counts). Each value is compared in its column's type (see COMPARABLE). A
 * column the fold's rows do not name, or of a type not in COMPARABLE, is an
 * error rather than a blind spot.
 */
function diffTable(name: ProjectionTable, live: LiveTable, folded: Row[], jsonText: (value: unknown) => string): TableDiff {
  const { columns } = live;
  const comparables = columns.map((column) => {
    const comparable = COMPARABLE[column.type];
    if (!comparable) throw new Error(`replay cannot verify ${name}.${column.name}: no comparison for type ${column.type}`);
    if (folded.length > 0 && !(column.name in folded[0]!)) throw new Error(`replay cannot verify ${name}: its rows do not name ${column.name}`);
    return comparable;
  });
  const liveRow = (values: unknown[]) => values.map((v, i) => (v === null ? null : comparables[i]!.live(v)));
  const foldedRow = (values: unknown[]) => values.map((v, i) => (v === null || v === undefined ? null : comparables[i]!.folded(v, jsonText)));
  // Rows are looked up by their first two columns (the primary key of each projection,
  // or a prefix of it), then compared whole: no row is ever turned into one long string.
  const bucket = (values: unknown[]) => `${String(values[0])}\0${String(values[1])}`;
  const unexplained = new Map<string, unknown[][]>();
  for (const row of live.rows) {
    const values = liveRow(row);
    const key = bucket(values);
    const rows = unexplained.get(key);
    if (rows) rows.push(values);
    else unexplained.set(key, [values]);
  }
  const missing: TableDiff['missing'] = [];
  for (const row of folded) {
    const values = foldedRow(columns.map((c) => row[c.name]));
    const rows = unexplained.get(bucket(values));
    const i = rows ? rows.findIndex((candidate) => candidate.every((v, c) => v === values[c])) : -1;
    if (i < 0) missing.push({ values, row });
    else rows!.splice(i, 1);
  }
  return { name, columns, extra: [...unexplained.values()].flat(), missing };
}

/** A diff as lines for a person: up to MAX_LISTED_PER_TABLE each way. */
function describeDiff({ name, columns, extra, missing }: TableDiff): string[] {
  const described = (values: unknown[]) => JSON.stringify(Object.fromEntries(values.map((v, i) => [columns[i]!.name, v])));
  return [
    ...extra.slice(0, MAX_LISTED_PER_TABLE).map((values) => `${name}: live row not produced by replay: ${described(values)}`),
    ...missing.slice(0, MAX_LISTED_PER_TABLE).map(({ values }) => `${name}: replayed row missing from live: ${described(values)}`),
  ];
}

/** Each projection's primary key: how a live row that differs is deleted. */
const PRIMARY_KEYS: Record<ProjectionTable, string[]> = {
  keys: ['key_id'],
  key_tags: ['key_id', 'tag_key'],
  aliases: ['account_id', 'alias_name'],
  grants: ['grant_id'],
};

/**
 * Brings the live tables to the fold by writing only what differs: a live row
 * the fold does not produce is deleted (by its primary key), and a folded row
 * that is not live is written (COPY). A changed row is both. Deleting a key's
 * row deletes its tags too (ON DELETE CASCADE), so a key whose row is
 * rewritten gets all its folded tags back, not only the ones that differed.
 */
async function repair(client: pg.ClientBase, diffs: TableDiff[], foldedTags: Row[]): Promise<void> {
  const [keys, tags] = diffs as [TableDiff, TableDiff, ...TableDiff[]];
  const uuid = (v: unknown) => COMPARABLE[UUID]!.live(v);
  const keyIdOf = (diff: TableDiff) => diff.columns.findIndex((c) => c.name === 'key_id');
  const rewritten = new Set(keys.extra.map((values) => values[keyIdOf(keys)]));
  if (rewritten.size > 0) {
    const tagKeyId = keyIdOf(tags);
    tags.extra = tags.extra.filter((values) => !rewritten.has(values[tagKeyId]));
    tags.missing = [
      ...tags.missing.filter(({ values }) => !rewritten.has(values[tagKeyId])),
      ...foldedTags.filter((row) => rewritten.has(uuid(row['key_id']))).map((row) => ({ values: [], row })),
    ];
  }
  for (const { name, columns, extra } of diffs) {
    if (extra.length === 0) continue;
    const primaryKey = PRIMARY_KEYS[name];
    const at = primaryKey.map((column) => columns.findIndex((c) => c.name === column));
    const gone = extra.map((values) => Object.fromEntries(primaryKey.map((column, i) => [column, values[at[i]!]])));
    const matches = primaryKey.map((column) => `live.${pg.escapeIdentifier(column)} = gone.${pg.escapeIdentifier(column)}`).join(' AND ');
    await client.query(`DELETE FROM ${table(name)} AS live USING jsonb_populate_recordset(NULL::${table(name)}, $1::jsonb) AS gone WHERE ${matches}`, [
      JSON.stringify(gone),
    ]);
  }
  for (const { name, missing } of diffs) {
    if (missing.length === 0) continue;
    await copyRows(
      client,
      name,
      missing.map(({ row }) => row),
    );
  }
}

/**
 * For each column type of the projections (by its oid), a value (a string or a
 * boolean) that is the same on both sides (===) exactly when Postgres would
 * find the values equal: from pg's reading of the live row, and from the
 * fold's row. NULL (or a value the fold leaves undefined) is null on both sides.
 */
interface Comparable {
  live: (value: unknown) => unknown;
  folded: (value: unknown, jsonText: (value: unknown) => string) => unknown;
}
const both = (f: (value: unknown) => unknown): Comparable => ({ live: f, folded: f });
const COMPARABLE: Record<number, Comparable> = {
  16: both((v) => v), // bool
  // bytea: pg's Buffer and the fold's Buffer, compared as their hex.
  17: both((v) => (Buffer.isBuffer(v) ? v.toString('hex') : String(v))),
  20: both((v) => String(v)), // int8: pg's text, the fold's bigint
  23: both((v) => String(v)), // int4
  25: both((v) => v), // text
  // character(n): only trailing spaces do not count (a trailing tab does).
  1042: both((v) => String(v).replace(/ +$/, '')),
  [UUID]: both((v) => String(v).toLowerCase()),
  [TEXT_ARRAY]: { live: (v) => v, folded: (v) => (Array.isArray(v) ? postgresTextArray(v) : String(v)) },
  [TIMESTAMPTZ]: { live: (v) => v, folded: (v) => (v instanceof Date ? postgresTimestamp(v) : String(v)) },
  // Printed by Postgres on both sides (see canonicalJson): a JSON null is not SQL NULL, and numbers keep every digit.
  [JSONB]: { live: (v) => v, folded: (v, jsonText) => jsonText(v) },
};

/**
 * The fold's jsonb values as Postgres prints them (`$1::jsonb::text`), asked in
 * one round trip: jsonb's own key order, spacing and numbers, which JavaScript
 * cannot reproduce. Returns a lookup from a value to its text.
 */
async function canonicalJson(client: pg.ClientBase, live: LiveTable[], folded: Record<ProjectionTable, Row[]>): Promise<(value: unknown) => string> {
  const texts = new Set<string>();
  PROJECTION_TABLES.forEach((name, i) => {
    for (const column of live[i]!.columns.filter((c) => c.type === JSONB)) {
      for (const row of folded[name]) {
        const value = row[column.name];
        if (value !== null && value !== undefined) texts.add(JSON.stringify(value));
      }
    }
  });
  const printed = new Map<string, string>();
  if (texts.size > 0) {
    const asked = [...texts];
    const { rows } = await client.query<{ printed: string }>('SELECT t::jsonb::text AS printed FROM unnest($1::text[]) WITH ORDINALITY AS x(t, n) ORDER BY n', [
      asked,
    ]);
    rows.forEach(({ printed: text }, i) => printed.set(asked[i]!, text));
  }
  return (value) => printed.get(JSON.stringify(value))!;
}
