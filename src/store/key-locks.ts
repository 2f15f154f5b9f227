import { sql, type Transaction } from 'kysely';
import type { Database } from './database.ts';

type Trx = Transaction<Database>;

/**
 * Per-key ordering of lifecycle changes and crypto operations (invariant 6).
 *
 * Transaction-scoped advisory locks rather than row locks: a row's FOR SHARE
 * lets new sharers in ahead of a waiting FOR UPDATE, so a steady stream of
 * decrypts could hold a DisableKey off forever. In the regular lock manager a
 * new shared request queues behind a waiting exclusive one, so the change gets
 * in after the operations already running, and every later one sees it.
 * Crypto operations share the lock and so never wait for each other.
 */
const lockId = (keyId: string) => sql`hashtextextended(${keyLockName(keyId)}, 0)`;

/**
 * The name a key's advisory lock is hashed from (for a query that cannot bind it as a parameter).
 *
 * @example
 * keyLockName('1234abcd-12ab-34cd-56ef-1234567890ab') // 'keyledger:key:1234abcd-12ab-34cd-56ef-1234567890ab'
 */
export const keyLockName = (keyId: string) => `keyledger:key:${keyId}`;

/**
 * Taken by every crypto operation (and alias retargeting) on the key, until
 * commit, and by a group-commit batch for all its records' keys at once.
 * In one round trip and in one global order (byte order, as JavaScript sorts
 * ASCII), so that two takers of overlapping key sets, each queued behind a
 * waiting lifecycle change of the other's key, cannot deadlock.
 *
 * @example
 * await lockKeyShared(trx, [sourceKeyId, destinationKeyId]); // ReEncrypt: both keys, one statement
 */
export async function lockKeyShared(trx: Trx, keyIds: readonly string[]): Promise<void> {
  const ordered = [...new Set(keyIds)].sort();
  if (ordered.length === 1) {
    await sql`SELECT pg_advisory_xact_lock_shared(${lockId(ordered[0]!)})`.execute(trx);
  } else if (ordered.length > 1) {
    const names = ordered.map(keyLockName);
    await sql`SELECT count(pg_advisory_xact_lock_shared(hashtextextended(name, 0)))
                FROM (SELECT name FROM unnest(${names}::text[]) AS name ORDER BY name COLLATE "C") AS ordered`.execute(trx);
  }
}

/**
 * Taken by every lifecycle change of the key, until commit.
 *
 * @example
 * await lockKeyExclusive(trx, keyId); // waits for the crypto operations in flight on the key
 */
export async function lockKeyExclusive(trx: Trx, keyId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${lockId(keyId)})`.execute(trx);
}

/**
 * Locks a key's projection row FOR UPDATE; false when there is no such row (no such key, or deleted).
 *
 * @example
 * if (!(await lockKeyRow(trx, keyId))) throw notFound; // true: the row is locked until commit
 */
export async function lockKeyRow(trx: Trx, keyId: string): Promise<boolean> {
  const row = await trx.selectFrom('keys').select('key_id').where('key_id', '=', keyId).forUpdate().executeTakeFirst();
  return row !== undefined;
}
