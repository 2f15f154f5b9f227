import { uuidV7 } from '../domain/uuid-v7.ts';
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
 * Commits a group-commit batch in one transaction, in one round trip, through
 * `append_audit_batch` (sql/0042): takes the shared lock of every key the
 * batch's records were decided on (in the global order), then, in a statement
 * of its own (so with a snapshot taken after the locks are held), appends in
 * one multi-row INSERT the records whose fences have not moved, and commits.
 * Answers, per append, whether it was written; one that was not must be
 * decided again. Under the shared locks no lifecycle change of those keys can
 * commit before this transaction does, so a record written here was decided
 * on the state its key has at its place in the log. That holds for every change
 * that takes a permission away (disabling, policy, retiring a grant, deletion,
 * material): each holds the key's exclusive lock. CreateGrant moves the fence
 * under the shared lock: a batch may then commit a decision made without the
 * new grant after it, which can only have refused more. Fences of other scopes
 * (aliases, principals) are compared but not locked: a change to them takes
 * effect by the next batch.
 *
 * Each record gets its event id here, time-ordered (src/domain/uuid-v7.ts).
 *
 * The call is prepared once per connection; the records travel as one jsonb
 * parameter. It is a transaction of its own: a failure rolls all of it back.
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
  const lockNames = new Set<string>();
  const batch = appends.map((a) => {
    const fences: Record<string, string> = {};
    for (const [scope, version] of a.fences) {
      fences[scope] = String(version);
      if (scope.startsWith(KEY_SCOPE_PREFIX)) lockNames.add(keyLockName(scope.slice(KEY_SCOPE_PREFIX.length)));
    }
    return { s: a.streamId, e: uuidV7(), t: a.event.type, d: a.event.data, m: a.event.metadata ?? {}, r: a.recordedAt.toISOString(), f: fences };
  });
  return withPooledClient(db, async (client) => {
    const { rows } = await client.query<{ written_stream_id: string; written_transaction_id: string }>({
      name: 'keyledger-append-audit-batch',
      text: 'SELECT written_stream_id, written_transaction_id FROM append_audit_batch($1::jsonb, $2::text[])',
      values: [JSON.stringify(batch), [...lockNames]],
    });
    const written = new Set(rows.map((r) => r.written_stream_id));
    const first = rows[0];
    return { written: appends.map((a) => written.has(a.streamId)), transactionId: first ? BigInt(first.written_transaction_id) : null };
  });
}
