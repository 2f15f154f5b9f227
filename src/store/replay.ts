import { sql, type Transaction } from 'kysely';
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
  batchSize?: number;
}

export interface ReplayResult {
  /** Events folded. */
  events: number;
  keys: number;
  aliases: number;
  /** With `verify`: one line per row that differs (empty when the projections equal the log). */
  differences: string[];
}

const PROJECTION_TABLES = ['keys', 'key_tags', 'aliases', 'grants'] as const;
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
      const { keys, aliases, grants, events } = await foldLog(trx, options);

      const target: ProjectionSchema = options.verify ? 'pg_temp' : 'public';
      if (options.verify) {
        for (const table of PROJECTION_TABLES) {
          await sql`CREATE TEMP TABLE ${sql.id(table)} (LIKE ${sql.id('public', table)} INCLUDING DEFAULTS) ON COMMIT DROP`.execute(trx);
        }
      } else {
        await sql`DELETE FROM key_tags`.execute(trx);
        await sql`DELETE FROM keys`.execute(trx);
        await sql`DELETE FROM aliases`.execute(trx);
        await sql`DELETE FROM grants`.execute(trx);
      }
      await writeRows(trx, target, keys, aliases, grants);
      const differences = options.verify ? await compare(trx) : [];
      return { events, keys: keys.length, aliases: aliases.length, differences };
    });
}

async function foldLog(trx: Transaction<Database>, options: ReplayOptions): Promise<{ keys: KeyState[]; aliases: AliasState[]; grants: GrantState[]; events: number }> {
  const types = [...KEY_EVENT_TYPES, ...ALIAS_EVENT_TYPES, ...GRANT_EVENT_TYPES];
  const { total } = await trx
    .selectFrom('events')
    .select((eb) => eb.fn.countAll<string>().as('total'))
    .where('type', 'in', types)
    .executeTakeFirstOrThrow();
  const keys = new Map<string, KeyState>();
  const aliases = new Map<string, AliasState>();
  const grants = new Map<string, GrantState>();
  const batchSize = options.batchSize ?? 10_000;
  let after = '0';
  let done = 0;
  for (;;) {
    // In this snapshot nothing is in flight, so global order is a safe total order.
    const rows = await trx
      .selectFrom('events')
      .select(['global_position', 'stream_id', 'stream_version', 'type', 'data', 'recorded_at'])
      .where('type', 'in', types)
      .where('global_position', '>', after)
      .orderBy('global_position')
      .limit(batchSize)
      .execute();
    if (rows.length === 0) break;
    for (const row of rows) {
      const event = { type: row.type, data: row.data, recordedAt: row.recorded_at, streamVersion: BigInt(row.stream_version) };
      if (KEY_EVENT_TYPES.has(row.type)) {
        const state = keys.get(row.stream_id) ?? null;
        checkSequence(row.stream_id, state?.version, event.streamVersion);
        keys.set(row.stream_id, evolveKey(state, event as Recorded<KeyEvent>));
      } else if (GRANT_EVENT_TYPES.has(row.type)) {
        const state = grants.get(row.stream_id) ?? null;
        checkSequence(row.stream_id, state?.version, event.streamVersion);
        grants.set(row.stream_id, evolveGrant(state, event as Recorded<GrantEvent>));
      } else {
        const state = aliases.get(row.stream_id) ?? null;
        checkSequence(row.stream_id, state?.version, event.streamVersion);
        aliases.set(row.stream_id, evolveAlias(state, event as Recorded<AliasEvent>));
      }
    }
    done += rows.length;
    after = rows[rows.length - 1]!.global_position;
    options.onProgress?.(done, Number(total));
  }
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

async function writeRows(trx: Transaction<Database>, schema: ProjectionSchema, keys: KeyState[], aliases: AliasState[], grants: GrantState[]): Promise<void> {
  const s = trx.withSchema(schema);
  for (const chunk of chunks(keys.map(keyRow), 1000)) await s.insertInto('keys').values(chunk).execute();
  for (const chunk of chunks(keys.flatMap(tagRows), 1000)) await s.insertInto('key_tags').values(chunk).execute();
  for (const chunk of chunks(aliases.map(aliasRow), 1000)) await s.insertInto('aliases').values(chunk).execute();
  for (const chunk of chunks(grants.map(grantRow), 1000)) await s.insertInto('grants').values(chunk).execute();
}

/** Rows in one table and not the other, both ways (EXCEPT ALL: duplicates count too). */
async function compare(trx: Transaction<Database>): Promise<string[]> {
  const differences: string[] = [];
  for (const table of PROJECTION_TABLES) {
    const live = sql.id('public', table);
    const replayed = sql.id('pg_temp', table);
    const onlyLive = await sql<{ row: unknown }>`SELECT to_jsonb(d) AS row FROM (SELECT * FROM ${live} EXCEPT ALL SELECT * FROM ${replayed}) d LIMIT ${MAX_LISTED_PER_TABLE}`.execute(trx);
    const onlyReplayed = await sql<{ row: unknown }>`SELECT to_jsonb(d) AS row FROM (SELECT * FROM ${replayed} EXCEPT ALL SELECT * FROM ${live}) d LIMIT ${MAX_LISTED_PER_TABLE}`.execute(trx);
    for (const r of onlyLive.rows) differences.push(`${table}: live row not produced by replay: ${JSON.stringify(r.row)}`);
    for (const r of onlyReplayed.rows) differences.push(`${table}: replayed row missing from live: ${JSON.stringify(r.row)}`);
  }
  return differences;
}

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
