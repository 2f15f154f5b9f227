import type { Clock } from '../clock.ts';
import type { Db } from '../store/database.ts';
import { dropExpiredImportParameters } from '../store/key-material-store.ts';
import { readKeysDueForDeletion, readKeysDueForMaterialExpiry, readKeysDueForRotation, readSweep, recordSweep } from '../store/sweep-queries.ts';

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
  /** Keys with imported material whose ValidTo is at or before sweptAt. */
  dueMaterialExpiryIds: string[];
  /** Import parameters (wrapping key pair and token) expired before sweptAt, dropped by this sweep. */
  droppedImportParameters: number;
}

export interface LastSweep extends SweepResult {
  /** How many sweeps have run, ever (a bigint, as a string). */
  sweeps: string;
}

/** The sweep's row in worker_sweeps. */
export const SCHEDULED_WORK_SWEEP = 'scheduled-work';

/**
 * One pass of the periodic sweep: finds the scheduled work that is due, read
 * from the projections (so a lost job never means missed work), and records
 * that it ran. The worker enqueues a job per key found; the jobs call the
 * service, which re-decides under the key's lock. It also drops the import
 * parameters that have expired, so no import wrapping key outlives its 24 hours.
 *
 * @example
 * const { dueKeyDeletionIds, dueRotationIds } = await sweepScheduledWork(appDb, clock);
 */
export async function sweepScheduledWork(db: Db, clock: Clock): Promise<SweepFindings> {
  const sweptAt = clock.now();
  const dueKeyDeletionIds = await readKeysDueForDeletion(db, sweptAt);
  const dueRotationIds = await readKeysDueForRotation(db, sweptAt);
  const dueMaterialExpiryIds = await readKeysDueForMaterialExpiry(db, sweptAt);
  const droppedImportParameters = await dropExpiredImportParameters(db, sweptAt);
  const dueKeyDeletions = dueKeyDeletionIds.length;
  await recordSweep(db, SCHEDULED_WORK_SWEEP, sweptAt, dueKeyDeletions);
  return { sweptAt, dueKeyDeletions, dueKeyDeletionIds, dueRotationIds, dueMaterialExpiryIds, droppedImportParameters };
}

/** The last recorded sweep, or null when none has run. */
export async function lastSweep(db: Db): Promise<LastSweep | null> {
  const row = await readSweep(db, SCHEDULED_WORK_SWEEP);
  return row ? { sweptAt: row.lastSweptAt, dueKeyDeletions: row.dueKeyDeletions, sweeps: row.sweeps } : null;
}
