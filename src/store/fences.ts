import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { withPooledClient, type Db } from './database.ts';
import type { NewEvent } from './event-store.ts';
import { keyLockName } from './key-locks.ts';

/** The channel sql/0025_fences.sql notifies with a fence's scope when it moves ('*' for all). */
export const FENCE_CHANNEL = 'keyledger_fence';

/**
 * The fence of a key: bumped by every change of its row, its material and its grants.
 *
 * @example
 * keyScope('1234abcd-12ab-34cd-56ef-1234567890ab') // 'key:1234abcd-12ab-34cd-56ef-1234567890ab'
 */
export const keyScope = (keyId: string) => `key:${keyId}`;
/**
 * The fence of an alias: bumped when it is created, retargeted or deleted.
 *
 * @example
 * aliasScope('111122223333', 'alias/orders') // 'alias:111122223333:alias/orders'
 */
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

/** What a committed batch wrote: per append, whether it was written, and the transaction that wrote them. */
export interface CommittedBatch {
  written: boolean[];
  /** The batch transaction's id; null when no record was written. */
  transactionId: bigint | null;
}

/**
 * Commits a group-commit batch in one transaction, in one round trip: takes
 * the shared lock of every key the batch's records were decided on (in the
 * global order), then, in a statement of its own (so with a snapshot taken
 * after the locks are held), appends in one multi-row INSERT the records
 * whose fences have not moved, and commits. Answers, per append, whether it
 * was written; one that was not must be decided again. Under the shared locks
 * no lifecycle change of those keys can commit before this transaction does,
 * so a record written here was decided on the state its key has at its place
 * in the log. Fences of other scopes (aliases, principals) are compared but
 * not locked: a change to them takes effect by the next batch.
 *
 * The statements go as one simple-protocol query, every value a
 * dollar-quoted literal: BEGIN, the locks, the INSERT and COMMIT cost one
 * round trip instead of five. A failed statement skips the rest: the
 * connection is then closed, which rolls the transaction back.
 *
 * The batch sends no notification on the audit channel (sql/0042): a NOTIFY
 * serialises the commits of every notifying transaction behind one lock, WAL
 * flush included. The caller publishes the records' notices after the commit
 * (AuditFeed#publish).
 *
 * @example
 * const { written } = await commitFencedAppends(db, [{ streamId: 'request-1', event, recordedAt, fences: new Map([['key:…', 3n]]) }]);
 */
export async function commitFencedAppends(db: Db, appends: readonly FencedAppend[]): Promise<CommittedBatch> {
  if (appends.length === 0) return { written: [], transactionId: null };
  const scopes = [...new Set(appends.flatMap((a) => [...a.fences.keys()]))];
  const lockNames = scopes.filter((s) => s.startsWith(KEY_SCOPE_PREFIX)).map((s) => keyLockName(s.slice(KEY_SCOPE_PREFIX.length)));
  const rows = appends.map((a) =>
    [
      a.streamId,
      randomUUID(),
      a.event.type,
      JSON.stringify(a.event.data),
      JSON.stringify(a.event.metadata ?? {}),
      a.recordedAt.toISOString(),
      JSON.stringify(Object.fromEntries([...a.fences].map(([scope, version]) => [scope, String(version)]))),
    ]
      .map(dollarQuoted)
      .join(', '),
  );
  const text = [
    'BEGIN',
    `SET LOCAL keyledger.audit_notify = 'relayed'`,
    ...(lockNames.length === 0
      ? []
      : [
          `SELECT count(pg_advisory_xact_lock_shared(hashtextextended(name, 0))) FROM (SELECT name FROM ` +
            `unnest(ARRAY[${lockNames.map(dollarQuoted).join(', ')}]::text[]) AS name ORDER BY name COLLATE "C") AS ordered`,
        ]),
    `INSERT INTO events (stream_id, stream_version, event_id, type, data, metadata, recorded_at)
     SELECT i.stream_id, 1, i.event_id::uuid, i.type, i.data::jsonb, i.metadata::jsonb, i.recorded_at::timestamptz
       FROM (VALUES (${rows.join('), (')})) AS i (stream_id, event_id, type, data, metadata, recorded_at, fences)
      WHERE NOT EXISTS (
        SELECT 1 FROM jsonb_each_text(i.fences::jsonb) AS f (scope, version)
         WHERE f.version::bigint <> coalesce((SELECT c.version FROM fences AS c WHERE c.scope = f.scope), 0))
     RETURNING stream_id, transaction_id::text AS transaction_id`,
    'COMMIT',
  ].join(';\n');
  return withPooledClient(db, async (client) => {
    const results = (await client.query(text)) as unknown as pg.QueryResult<{ stream_id: string; transaction_id: string }>[];
    const inserted = results.find((r) => r.command === 'INSERT');
    if (!inserted) throw new Error('the batch INSERT returned no result');
    const written = new Set(inserted.rows.map((r) => r.stream_id));
    const first = inserted.rows[0];
    return { written: appends.map((a) => written.has(a.streamId)), transactionId: first ? BigInt(first.transaction_id) : null };
  });
}

/**
 * `text` as a dollar-quoted literal, with a tag `text` does not contain:
 * taken verbatim by Postgres, with no escaping to get wrong.
 */
function dollarQuoted(text: string): string {
  let tag = '$q$';
  for (let n = 0; text.includes(tag) || text.endsWith(tag.slice(0, -1)); n++) tag = `$q${n}$`;
  return `${tag}${text}${tag}`;
}
