import { PgBoss, type ConstructorOptions } from 'pg-boss';
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import { tableExists, type Db } from '../store/database.ts';
import { jobQueueCreatesSchema, jobQueueUrl, JOBS_SCHEMA } from '../store/service-login.ts';
import type { JobScheduler } from '../service/key-changes.ts';
import type { ScheduledOutcome } from '../service/rotation-service.ts';
import {
  createKeyQueues,
  DELETE_KEY_QUEUE,
  EXPIRE_KEY_MATERIAL_QUEUE,
  grantJobAccess,
  pgBossJobScheduler,
  ROTATE_KEY_QUEUE,
  scheduleKeyJob,
  type KeyJob,
} from './jobs.ts';
import { lastSweep, sweepScheduledWork, type LastSweep } from './sweep.ts';
import { startSealLoop, type SealLoopOptions } from './seal-loop.ts';
import { startUsageRollupLoop, USAGE_ROLLUP_INTERVAL_MS } from './usage-rollup-loop.ts';
import { readSealStatus, type SealStatus } from '../store/log-seal.ts';
import { readUsageRollupStatus } from '../store/usage-rollup.ts';

type UsageRollupStatus = Awaited<ReturnType<typeof readUsageRollupStatus>>;

export { JOBS_SCHEMA };
/** The periodic sweep for due scheduled work. */
export const SWEEP_QUEUE = 'keyledger-sweep';
/** Sweep jobs that failed every retry land here, so `worker --status` can list them. */
export const SWEEP_DEAD_LETTER_QUEUE = 'keyledger-sweep-failed';
/** Every minute, UTC. */
export const SWEEP_CRON = '* * * * *';

const DEAD_LETTER_RETENTION_SECONDS = 7 * 86_400;
const FAILED_JOBS_SHOWN = 10;
const STOP_TIMEOUT_MS = 10_000;
/** Key jobs fetched per poll by each worker (see `handle` in startWorker). */
const KEY_JOB_BATCH_SIZE = 10;

export interface QueueDepth {
  name: string;
  /** Waiting to run (ready, deferred or retrying). */
  queued: number;
  active: number;
  /** Failed jobs still retained. */
  failed: number;
  total: number;
  /** When pg-boss counted them (it reuses a count up to a minute old). */
  countedAt: Date;
}

export interface FailedJob {
  id: string;
  /** When the sweep job that failed was created. */
  createdOn: Date;
  /** When it was dead-lettered. */
  failedOn: Date;
  retries: number;
  error: string;
}

export interface WorkerStatus {
  /** False until a worker has started once against this database (pg-boss installs its schema then). */
  installed: boolean;
  queues: QueueDepth[];
  schedule: { cron: string; timezone: string } | null;
  lastSweep: LastSweep | null;
  failedJobs: { count: number; newest: FailedJob[] };
  /** The usage rollups' fold: records folded, when it last moved, audit records waiting. */
  usageRollup: UsageRollupStatus;
  /** The sealer: events sealed and waiting, the newest checkpoint, the oldest event no checkpoint covers. */
  sealing: SealStatus;
}

export interface RunningWorker {
  /** Stops taking jobs, lets a running one finish (bounded), and closes pg-boss's pool. Idempotent. */
  stop(): Promise<void>;
  status(): Promise<WorkerStatus>;
  /** Enqueues jobs on this worker's pg-boss, in the caller's transaction. */
  jobs: JobScheduler;
}

/** What the worker carries out: the service's side of rotation and deletion. */
export interface ScheduledWork {
  rotateIfDue(keyId: string, now: Date): Promise<ScheduledOutcome>;
  deleteIfDue(keyId: string, now: Date): Promise<ScheduledOutcome>;
  expireKeyMaterialIfDue(keyId: string, now: Date): Promise<ScheduledOutcome>;
}

export interface WorkerDeps {
  /**
   * The owner's URL, whose job queue login pg-boss derives (jobQueueUrl), or
   * that login's own URL (KEYLEDGER_JOB_QUEUE_DATABASE_URL): pg-boss logs in
   * as keyledger_job_queue, which owns pg-boss's schema and nothing else.
   */
  connectionString: string;
  logger: Logger;
  /** What the handlers read as "now" (pg-boss's own cron and polling run on real time). */
  clock: Clock;
  /** The app-role database, for the projections and the sweep record. */
  db: Db;
  /** Rotation and deletion handlers; without them the worker only sweeps and counts. */
  work?: ScheduledWork;
  /** How often an idle worker looks for jobs (pg-boss allows 0.5 and up); 2 when not given. */
  pollingIntervalSeconds?: number;
  /** How often new audit records are folded into the usage rollups; USAGE_ROLLUP_INTERVAL_MS when not given. */
  usageRollupIntervalMs?: number;
  /** Seals the log into signed checkpoints (issue 16), published to a directory; not sealed when not given. */
  seal?: Omit<SealLoopOptions, 'now'>;
}

/**
 * Starts the background worker: pg-boss in the `keyledger_jobs` schema, with the
 * `keyledger-sweep` queue scheduled every minute (and swept once at start), and
 * the usage rollups' fold every couple of seconds.
 * Several workers may run against one database: pg-boss hands each job to one
 * of them, and the queue's `stately` policy keeps at most one sweep queued and
 * one running.
 *
 * @example
 * const worker = await startWorker({ connectionString: database.url, logger, clock: systemClock, db: appDb });
 * process.once('SIGTERM', () => void worker.stop());
 */
export async function startWorker(deps: WorkerDeps): Promise<RunningWorker> {
  const logger = deps.logger.child({ component: 'worker' });
  const boss = createBoss(deps.connectionString, logger, { instanceName: 'keyledger-worker', application_name: 'keyledger-worker' });
  await boss.start();
  try {
    // createQueue leaves an existing queue as it is, so every worker may run this.
    await boss.createQueue(SWEEP_DEAD_LETTER_QUEUE, { retentionSeconds: DEAD_LETTER_RETENTION_SECONDS });
    await boss.createQueue(SWEEP_QUEUE, {
      policy: 'stately',
      deadLetter: SWEEP_DEAD_LETTER_QUEUE,
      retryLimit: 2,
      retryDelay: 5,
      // A sweep is a couple of queries; one still running after this is stuck.
      expireInSeconds: 60,
    });
    await createKeyQueues(boss);
    await grantJobAccess(boss, JOBS_SCHEMA);
    await boss.schedule(SWEEP_QUEUE, SWEEP_CRON, null, { tz: 'UTC' });
    const work = deps.work;
    const pollingIntervalSeconds = deps.pollingIntervalSeconds ?? 2;
    await boss.work(SWEEP_QUEUE, { pollingIntervalSeconds }, async (jobs) => {
      let result: Awaited<ReturnType<typeof sweepScheduledWork>> | undefined;
      for (const job of jobs) {
        result = await sweepScheduledWork(deps.db, deps.clock);
        // Catch-up: a job lost or deleted behind pg-boss's back never means missed work.
        if (work) {
          // Pulls a job already waiting for a later date forward to now (see scheduleKeyJob).
          for (const keyId of result.dueKeyDeletionIds) await scheduleKeyJob(boss, DELETE_KEY_QUEUE, keyId, 0);
          for (const keyId of result.dueRotationIds) await scheduleKeyJob(boss, ROTATE_KEY_QUEUE, keyId, 0);
          for (const keyId of result.dueMaterialExpiryIds) await scheduleKeyJob(boss, EXPIRE_KEY_MATERIAL_QUEUE, keyId, 0);
        }
        logger.info(
          {
            jobId: job.id,
            dueKeyDeletions: result.dueKeyDeletions,
            dueRotations: result.dueRotationIds.length,
            droppedImportParameters: result.droppedImportParameters,
          },
          'swept scheduled work',
        );
      }
      // Stored by pg-boss as the job's output.
      return result ? { sweptAt: result.sweptAt.toISOString(), dueKeyDeletions: result.dueKeyDeletions, dueRotations: result.dueRotationIds.length } : null;
    });
    if (work) {
      const handle = (name: string, act: (keyId: string, now: Date) => Promise<ScheduledOutcome>) =>
        // A batch per fetch, fetched again at once while batches come back full: with one job per
        // 2-second poll a worker carried out at most one rotation (or deletion) every 2 seconds, so a
        // few hundred keys falling due together took many minutes. A batch never holds two jobs of one
        // key (stately queue); a job that throws fails its batch, whose jobs are idempotent on retry.
        boss.work<KeyJob>(name, { pollingIntervalSeconds, batchSize: KEY_JOB_BATCH_SIZE, burstWhenBatchFull: true }, async (jobs) => {
          for (const job of jobs) {
            const outcome = await act(job.data.keyId, deps.clock.now());
            logger.info({ jobId: job.id, queue: name, keyId: job.data.keyId, outcome }, 'ran a key job');
          }
        });
      await handle(ROTATE_KEY_QUEUE, (keyId, now) => work.rotateIfDue(keyId, now));
      await handle(DELETE_KEY_QUEUE, (keyId, now) => work.deleteIfDue(keyId, now));
      await handle(EXPIRE_KEY_MATERIAL_QUEUE, (keyId, now) => work.expireKeyMaterialIfDue(keyId, now));
    }
    // Sweep now rather than at the next minute, so a fresh start reports at once.
    await boss.send(SWEEP_QUEUE, null);
  } catch (error) {
    await boss.stop({ graceful: false }).catch(() => {});
    throw error;
  }
  const rollup = startUsageRollupLoop(deps.db, logger, deps.usageRollupIntervalMs ?? USAGE_ROLLUP_INTERVAL_MS);
  const seal = deps.seal && startSealLoop(deps.db, logger, { ...deps.seal, now: () => deps.clock.now() });
  logger.info({ queue: SWEEP_QUEUE, cron: SWEEP_CRON }, 'worker started');

  let stopped: Promise<void> | undefined;
  return {
    stop: () => {
      stopped ??= Promise.all([rollup.stop(), seal?.stop(), boss.stop({ graceful: true, timeout: STOP_TIMEOUT_MS })]).then(() => logger.info('worker stopped'));
      return stopped;
    },
    status: () => statusOf(boss, deps.db),
    jobs: pgBossJobScheduler(boss),
  };
}

/**
 * A send-only pg-boss for a process that serves requests but runs no worker
 * (`keyledger serve`): jobs are enqueued in the request's transaction, and a
 * worker elsewhere runs them.
 */
export async function openJobScheduler(connectionString: string, logger: Logger): Promise<{ jobs: JobScheduler; close(): Promise<void> }> {
  const boss = createBoss(connectionString, logger.child({ component: 'job-queue' }), {
    supervise: false,
    schedule: false,
    registerInstance: false,
    max: 2,
    application_name: 'keyledger-job-queue',
  });
  await boss.start();
  await createKeyQueues(boss);
  await grantJobAccess(boss, JOBS_SCHEMA);
  return { jobs: pgBossJobScheduler(boss), close: () => boss.stop({ graceful: false }) };
}

/**
 * The worker's status, read without starting a worker (`keyledger worker --status`):
 * queue depths, the sweep's schedule, the last sweep and the dead-lettered sweeps.
 */
export async function readWorkerStatus(deps: { connectionString: string; db: Db; logger: Logger }): Promise<WorkerStatus> {
  // Migrating creates the schema (sql/0040); pg-boss's tables come with the first worker.
  if (!(await tableExists(deps.db, JOBS_SCHEMA, 'version'))) {
    return {
      installed: false,
      queues: [],
      schedule: null,
      lastSweep: await lastSweep(deps.db),
      failedJobs: { count: 0, newest: [] },
      usageRollup: await readUsageRollupStatus(deps.db),
      sealing: await readSealStatus(deps.db),
    };
  }
  // A reader only: no maintenance, no cron, no schema changes, not listed as an instance.
  const boss = createBoss(deps.connectionString, deps.logger.child({ component: 'worker-status' }), {
    supervise: false,
    schedule: false,
    migrate: false,
    registerInstance: false,
    max: 2,
    application_name: 'keyledger-worker-status',
  });
  await boss.start();
  try {
    return await statusOf(boss, deps.db);
  } finally {
    await boss.stop({ graceful: false });
  }
}

/**
 * A pg-boss on the job queue's own login (see service-login.ts), never the
 * owner's: a worker's connection may run pg-boss's schema, not rewrite the
 * log. Migrating created the schema (sql/0040) and gave it to that login;
 * without a password in the owner's URL there is no such login, and pg-boss
 * runs as the owner, as before.
 */
function createBoss(url: string, logger: Logger, options: Partial<ConstructorOptions>): PgBoss {
  const connectionString = jobQueueUrl(url);
  const boss = new PgBoss({ connectionString, schema: JOBS_SCHEMA, createSchema: jobQueueCreatesSchema(connectionString), ...options });
  // An 'error' event without a listener would throw and end the process.
  boss.on('error', (error) => logger.error({ error: error instanceof Error ? error.message : String(error) }, 'pg-boss error'));
  boss.on('warning', (warning) => logger.warn({ warning: warning.message }, 'pg-boss warning'));
  return boss;
}

async function statusOf(boss: PgBoss, db: Db): Promise<WorkerStatus> {
  const queues: QueueDepth[] = [];
  for (const name of [SWEEP_QUEUE, SWEEP_DEAD_LETTER_QUEUE, ROTATE_KEY_QUEUE, DELETE_KEY_QUEUE, EXPIRE_KEY_MATERIAL_QUEUE]) {
    if (!(await boss.getQueue(name))) continue;
    // force: a fresh count rather than the monitor's (pg-boss still reuses one under a minute old).
    const [stats] = await boss.getQueueStats(name, { force: true });
    if (stats)
      queues.push({
        name,
        queued: stats.queuedCount,
        active: stats.activeCount,
        failed: stats.failedCount,
        total: stats.totalCount,
        countedAt: new Date(stats.capturedOn),
      });
  }
  const schedule = await boss.getSchedule(SWEEP_QUEUE);
  const dead = queues.some((q) => q.name === SWEEP_DEAD_LETTER_QUEUE) ? await boss.findJobs<object>(SWEEP_DEAD_LETTER_QUEUE, { limit: 100_000 }) : [];
  const newest = dead
    .slice(-FAILED_JOBS_SHOWN)
    .reverse()
    .map((job) => ({
      id: job.sourceId ?? job.id,
      createdOn: job.sourceCreatedOn ?? job.createdOn,
      failedOn: job.createdOn,
      retries: job.sourceRetryCount ?? 0,
      error: describeOutput(job.sourceOutput),
    }));
  return {
    installed: true,
    queues,
    schedule: schedule ? { cron: schedule.cron, timezone: schedule.timezone } : null,
    lastSweep: await lastSweep(db),
    failedJobs: { count: dead.length, newest },
    usageRollup: await readUsageRollupStatus(db),
    sealing: await readSealStatus(db),
  };
}

function describeOutput(output: object | null): string {
  if (!output) return 'no error recorded';
  const message = (output as { message?: unknown }).message;
  return typeof message === 'string' ? message : JSON.stringify(output).slice(0, 500);
}
