import { sql } from 'kysely';
import type { Clock } from '../clock.ts';
import type { Db } from '../store/database.ts';

/** sql/0005_worker.sql; local to the worker, which is the only code that touches it. */
export interface WorkerSweepsTable {
  sweep: string;
  last_swept_at: Date;
  due_key_deletions: number;
  sweeps: string;
}

export interface SweepResult {
  /** The injected clock's time the sweep ran at. */
  sweptAt: Date;
  /** Keys PendingDeletion whose deletion_date is at or before sweptAt. */
  dueKeyDeletions: number;
}

/** What a sweep found due, by key. */
export interface SweepFindings extends SweepResult {
  dueKeyDeletionIds: string[];
  /** Enabled keys with rotation on whose next_rotation_date is at or before sweptAt. */
  dueRotationIds: string[];
}

export interface LastSweep extends SweepResult {
  /** How many sweeps have run, ever (a bigint, as a string). */
  sweeps: string;
}

/** The sweep's row in worker_sweeps. */
export const SCHEDULED_WORK_SWEEP = 'scheduled-work';

const withSweeps = (db: Db) => db.withTables<{ worker_sweeps: WorkerSweepsTable }>();

/**
 * One pass of the periodic sweep: finds the scheduled work that is due, read
 * from the projections (so a lost job never means missed work), and records
 * that it ran. The worker enqueues a job per key found; the jobs call the
 * service, which re-decides under the key's lock.
 *
 * @example
 * const { dueKeyDeletionIds, dueRotationIds } = await sweepScheduledWork(appDb, clock);
 */
export async function sweepScheduledWork(db: Db, clock: Clock): Promise<SweepFindings> {
  const sweptAt = clock.now();
  const deletions = await db
    .selectFrom('keys')
    .select('key_id')
    .where('key_state', '=', 'PendingDeletion')
    .where('deletion_date', '<=', sweptAt)
    .execute();
  const rotations = await db
    .selectFrom('keys')
    .select('key_id')
    .where('rotation_enabled', '=', true)
    .where('key_state', '=', 'Enabled')
    .where('next_rotation_date', '<=', sweptAt)
    .execute();
  const dueKeyDeletions = deletions.length;
  await withSweeps(db)
    .insertInto('worker_sweeps')
    .values({ sweep: SCHEDULED_WORK_SWEEP, last_swept_at: sweptAt, due_key_deletions: dueKeyDeletions, sweeps: '1' })
    .onConflict((oc) =>
      oc.column('sweep').doUpdateSet((eb) => ({
        last_swept_at: eb.ref('excluded.last_swept_at'),
        due_key_deletions: eb.ref('excluded.due_key_deletions'),
        sweeps: sql<string>`worker_sweeps.sweeps + 1`,
      })),
    )
    .execute();
  return { sweptAt, dueKeyDeletions, dueKeyDeletionIds: deletions.map((r) => r.key_id), dueRotationIds: rotations.map((r) => r.key_id) };
}

/** The last recorded sweep, or null when none has run. */
export async function lastSweep(db: Db): Promise<LastSweep | null> {
  const row = await withSweeps(db)
    .selectFrom('worker_sweeps')
    .select(['last_swept_at', 'due_key_deletions', 'sweeps'])
    .where('sweep', '=', SCHEDULED_WORK_SWEEP)
    .executeTakeFirst();
  return row ? { sweptAt: row.last_swept_at, dueKeyDeletions: row.due_key_deletions, sweeps: String(row.sweeps) } : null;
}
