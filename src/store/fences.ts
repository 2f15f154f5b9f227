import { sql } from 'kysely';
import type { Db } from './database.ts';
import { appendSingleEventStreams, type NewEvent } from './event-store.ts';
import { lockKeyShared } from './key-locks.ts';

/** The channel sql/0025_fences.sql notifies with a fence's scope when it moves ('*' for all). */
export const FENCE_CHANNEL = 'keyledger_fence';

/** The fence of a key: bumped by every change of its row, its material and its grants. */
export const keyScope = (keyId: string) => `key:${keyId}`;
/** The fence of an alias: bumped when it is created, retargeted or deleted. */
export const aliasScope = (accountId: string, aliasName: string) => `alias:${accountId}:${aliasName}`;

const KEY_SCOPE_PREFIX = 'key:';

/**
 * A scope's current version (0 when it never moved). Read it BEFORE the data
 * it guards: a change committed in between then shows as a moved fence, never
 * as data newer than its version.
 *
 * @example
 * const version = await readFence(db, keyScope(keyId));
 * const key = await readUsableKey(db, keyId);   // decided on as of `version`, or newer
 */
export async function readFence(db: Db, scope: string): Promise<bigint> {
  const row = await db.selectFrom('fences').select('version').where('scope', '=', scope).executeTakeFirst();
  return row ? BigInt(row.version) : 0n;
}

/** One request's audit record in a batch, with the fence versions its decision was made on. */
export interface FencedAppend {
  streamId: string;
  event: NewEvent;
  recordedAt: Date;
  fences: ReadonlyMap<string, bigint>;
}

/**
 * Commits a group-commit batch in one transaction: takes the shared lock of
 * every key the batch's records were decided on (one statement, in the global
 * order), reads their fences, and appends, in one multi-row INSERT, the records
 * whose fences have not moved. Answers, per append, whether it was written;
 * one that was not must be decided again. Under the shared locks no lifecycle
 * change of those keys can commit before this transaction does, so a record
 * written here was decided on the state its key has at its place in the log.
 *
 * @example
 * const written = await commitFencedAppends(db, [{ streamId: 'request-1', event, recordedAt, fences: new Map([['key:…', 3n]]) }]);
 */
export async function commitFencedAppends(db: Db, appends: readonly FencedAppend[]): Promise<boolean[]> {
  const scopes = [...new Set(appends.flatMap((a) => [...a.fences.keys()]))];
  return db.transaction().execute(async (trx) => {
    await lockKeyShared(trx, scopes.filter((s) => s.startsWith(KEY_SCOPE_PREFIX)).map((s) => s.slice(KEY_SCOPE_PREFIX.length)));
    const current = new Map<string, bigint>();
    if (scopes.length > 0) {
      const rows = await trx.selectFrom('fences').select(['scope', 'version']).where('scope', '=', sql<string>`ANY(${scopes}::text[])`).execute();
      for (const row of rows) current.set(row.scope, BigInt(row.version));
    }
    const written = appends.map((a) => [...a.fences].every(([scope, version]) => (current.get(scope) ?? 0n) === version));
    await appendSingleEventStreams(
      trx,
      appends.filter((_, i) => written[i]),
    );
    return written;
  });
}
