import { CompiledQuery, type Transaction } from 'kysely';
import type { PgBoss } from 'pg-boss';
import { APP_ROLE, type Database } from '../store/database.ts';
import type { JobScheduler } from '../service/key-changes.ts';

/** Rotates one key when its nextRotationDate comes. */
export const ROTATE_KEY_QUEUE = 'keyledger-rotate-key';
/** Deletes one key when its deletionDate comes. */
export const DELETE_KEY_QUEUE = 'keyledger-delete-key';
/** Deletes a key's imported material when its ValidTo comes (AWS's DeleteExpiredKeyMaterial). */
export const EXPIRE_KEY_MATERIAL_QUEUE = 'keyledger-expire-key-material';

export interface KeyJob {
  keyId: string;
}

/**
 * Creates the per-key queues. `stately` with the key id as singletonKey keeps at
 * most one queued and one running job per key and queue, so the transactional
 * enqueue and the sweep's catch-up enqueue do not pile up.
 */
export async function createKeyQueues(boss: PgBoss): Promise<void> {
  for (const name of [ROTATE_KEY_QUEUE, DELETE_KEY_QUEUE, EXPIRE_KEY_MATERIAL_QUEUE]) {
    await boss.createQueue(name, { policy: 'stately', retryLimit: 5, retryDelay: 10, retryBackoff: true, expireInSeconds: 300 });
  }
}

/**
 * The service enqueues jobs in its own transaction, as the app role: give that
 * role what pg-boss's send needs in its schema.
 */
export async function grantJobAccess(boss: PgBoss, schema: string): Promise<void> {
  // One transaction, serialized on an advisory lock: two processes granting on the same objects at
  // once fail with "tuple concurrently updated" (catalog rows are updated in place), so two workers
  // started together would otherwise crash one of them. Without parameters the statements go as one
  // simple-protocol query, which Postgres runs as a single implicit transaction (rolled back whole on
  // an error, so no connection goes back to the pool mid-transaction).
  await boss.getDb().executeSql(`
    SELECT pg_advisory_xact_lock(hashtextextended('keyledger:grant-job-access', 0));
    GRANT USAGE ON SCHEMA ${schema} TO ${APP_ROLE};
    GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA ${schema} TO ${APP_ROLE};
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${schema} TO ${APP_ROLE};
    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${schema} TO ${APP_ROLE};`);
}

/** pg-boss's `db` option, running its SQL in the caller's Kysely transaction. */
function inTransaction(trx: Transaction<Database>) {
  return {
    executeSql: async (text: string, values: unknown[] = []) => {
      const result = await trx.executeQuery(CompiledQuery.raw(text, values));
      return { rows: result.rows as unknown[] };
    },
  };
}

/**
 * Puts the key's job on `queue` to start at `at` (a Date, or 0 for now): moves
 * the key's waiting job (created or retry) there, or inserts one. Not `send`:
 * the stately queue keeps one waiting job per key and silently drops a second
 * send, so a job already waiting for a LATER date (rotation re-enabled with a
 * shorter period, a deletion cancelled and scheduled again sooner, or any
 * deferred job when the sweep finds the key due early) would hold the work
 * back until its own date.
 */
export async function scheduleKeyJob(boss: PgBoss, queue: string, keyId: string, at: Date | 0, trx?: Transaction<Database>): Promise<void> {
  await boss.upsert(queue, { keyId } satisfies KeyJob, { singletonKey: keyId, startAfter: at, ...(trx ? { db: inTransaction(trx) } : {}) });
}

/**
 * A JobScheduler on pg-boss: each job is inserted (or the key's waiting job
 * moved) in the transaction that records the event scheduling it, so both
 * commit or neither does. A job made stale by a later change (a cancelled
 * deletion) runs and finds nothing due.
 */
export function pgBossJobScheduler(boss: PgBoss): JobScheduler {
  const send = (queue: string, trx: Transaction<Database>, keyId: string, at: Date) => scheduleKeyJob(boss, queue, keyId, at, trx);
  return {
    keyDeletionScheduled: (trx, keyId, at) => send(DELETE_KEY_QUEUE, trx, keyId, at),
    keyRotationScheduled: (trx, keyId, at) => send(ROTATE_KEY_QUEUE, trx, keyId, at),
    keyMaterialExpiryScheduled: (trx, keyId, at) => send(EXPIRE_KEY_MATERIAL_QUEUE, trx, keyId, at),
  };
}

/** A scheduler whose target is set once the worker has started (dev builds the app before the worker). */
export function lateBoundJobScheduler(): JobScheduler & { bind(target: JobScheduler): void } {
  let target: JobScheduler | undefined;
  const get = () => {
    if (!target) throw new Error('the job queue is not started yet');
    return target;
  };
  return {
    bind: (t) => {
      target = t;
    },
    keyDeletionScheduled: (trx, keyId, at) => get().keyDeletionScheduled(trx, keyId, at),
    keyRotationScheduled: (trx, keyId, at) => get().keyRotationScheduled(trx, keyId, at),
    keyMaterialExpiryScheduled: (trx, keyId, at) => get().keyMaterialExpiryScheduled(trx, keyId, at),
  };
}
