/**
 * SQL of the worker's periodic sweep (worker/sweep.ts): the scheduled work that
 * is due, read from the key projection, and the sweep's own bookkeeping in
 * worker_sweeps.
 */
import { sql } from 'kysely';
import type { Db } from './database.ts';

/** sql/0005_worker.sql; only the sweep touches it. */
export interface WorkerSweepsTable {
  sweep: string;
  last_swept_at: Date;
  due_key_deletions: number;
  sweeps: string;
}

/** A sweep's row in worker_sweeps. */
export interface SweepRow {
  lastSweptAt: Date;
  dueKeyDeletions: number;
  /** How many sweeps have run, ever (a bigint, as a string). */
  sweeps: string;
}

const withSweeps = (db: Db) => db.withTables<{ worker_sweeps: WorkerSweepsTable }>();

/**
 * Keys PendingDeletion whose deletion_date is at or before `at`.
 *
 * @example
 * await readKeysDueForDeletion(db, clock.now()) // ['1234abcd-…']: the key ids to enqueue a deletion job for
 */
export async function readKeysDueForDeletion(db: Db, at: Date): Promise<string[]> {
  const rows = await db.selectFrom('keys').select('key_id').where('key_state', '=', 'PendingDeletion').where('deletion_date', '<=', at).execute();
  return rows.map((r) => r.key_id);
}

/**
 * Enabled keys with rotation on whose next_rotation_date is at or before `at`.
 *
 * @example
 * await readKeysDueForRotation(db, clock.now()) // the ids of the Enabled keys whose automatic rotation is due
 */
export async function readKeysDueForRotation(db: Db, at: Date): Promise<string[]> {
  const rows = await db
    .selectFrom('keys')
    .select('key_id')
    .where('rotation_enabled', '=', true)
    .where('key_state', '=', 'Enabled')
    .where('next_rotation_date', '<=', at)
    .execute();
  return rows.map((r) => r.key_id);
}

/**
 * Keys of Origin EXTERNAL with imported material whose ValidTo is at or before `at`.
 *
 * @example
 * await readKeysDueForMaterialExpiry(db, clock.now()) // the ids of EXTERNAL keys holding imported material past its ValidTo
 */
export async function readKeysDueForMaterialExpiry(db: Db, at: Date): Promise<string[]> {
  const rows = await db
    .selectFrom('keys')
    .select('key_id')
    .where('origin', '=', 'EXTERNAL')
    .where(
      sql<boolean>`EXISTS (SELECT 1 FROM jsonb_array_elements(imported_materials) AS m
                    WHERE m ->> 'importState' = 'IMPORTED' AND (m ->> 'validTo')::timestamptz <= ${at})`,
    )
    .execute();
  return rows.map((r) => r.key_id);
}

/**
 * Records that `sweep` ran at `sweptAt` and what it found, counting the run.
 *
 * @example
 * await recordSweep(db, SCHEDULED_WORK_SWEEP, sweptAt, 3); // last_swept_at = sweptAt, due_key_deletions = 3, sweeps + 1
 */
export async function recordSweep(db: Db, sweep: string, sweptAt: Date, dueKeyDeletions: number): Promise<void> {
  await withSweeps(db)
    .insertInto('worker_sweeps')
    .values({ sweep, last_swept_at: sweptAt, due_key_deletions: dueKeyDeletions, sweeps: '1' })
    .onConflict((oc) =>
      oc.column('sweep').doUpdateSet((eb) => ({
        last_swept_at: eb.ref('excluded.last_swept_at'),
        due_key_deletions: eb.ref('excluded.due_key_deletions'),
        sweeps: sql<string>`worker_sweeps.sweeps + 1`,
      })),
    )
    .execute();
}

/**
 * The row of `sweep`, or null when it never ran.
 *
 * @example
 * await readSweep(db, SCHEDULED_WORK_SWEEP) // { lastSweptAt, dueKeyDeletions: 3, sweeps: '42' }, or null before the first sweep
 */
export async function readSweep(db: Db, sweep: string): Promise<SweepRow | null> {
  const row = await withSweeps(db)
    .selectFrom('worker_sweeps')
    .select(['last_swept_at', 'due_key_deletions', 'sweeps'])
    .where('sweep', '=', sweep)
    .executeTakeFirst();
  return row ? { lastSweptAt: row.last_swept_at, dueKeyDeletions: row.due_key_deletions, sweeps: String(row.sweeps) } : null;
}
