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

export interface LastSweep extends SweepResult {
  /** How many sweeps have run, ever (a bigint, as a string). */
  sweeps: string;
}

/** The sweep's row in worker_sweeps. */
export const SCHEDULED_WORK_SWEEP = 'scheduled-work';

const withSweeps = (db: Db) => db.withTables<{ worker_sweeps: WorkerSweepsTable }>();

/**
 * One pass of the periodic sweep: counts the scheduled work that is due, read
 * from the projections, and records that it ran.
 *
 * It only counts. Deleting due keys (and rotating keys, expiring imported
 * material) are KMS operations that belong in src/service, called from their
 * own queues: they arrive in a later issue. Until then nothing acts on the count.
 *
 * @example
 * const { dueKeyDeletions } = await sweepScheduledWork(appDb, clock);
 */
export async function sweepScheduledWork(db: Db, clock: Clock): Promise<SweepResult> {
  const sweptAt = clock.now();
  const { n } = await db
    .selectFrom('keys')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('key_state', '=', 'PendingDeletion')
    .where('deletion_date', '<=', sweptAt)
    .executeTakeFirstOrThrow();
  const dueKeyDeletions = Number(n);
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
  return { sweptAt, dueKeyDeletions };
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
