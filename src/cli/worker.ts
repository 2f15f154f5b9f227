import { systemClock } from '../clock.ts';
import { createKeyledger } from '../app.ts';
import { loadSealKey } from '../crypto/seal-key.ts';
import { loadRootKey } from '../crypto/root-key.ts';
import { openDatabase } from '../store/database.ts';
import { lateBoundJobScheduler } from '../worker/jobs.ts';
import { readWorkerStatus, startWorker, SWEEP_CRON, SWEEP_QUEUE, type WorkerStatus } from '../worker/worker.ts';
import { parseCommandArgs, Resources, serviceDatabase, setUp, shutdownSignal, withPool, type CliIo } from './runtime.ts';

export const workerHelp = `Usage: keyledger worker [--status [--json]]

Runs the background worker alone (pg-boss, schema keyledger_jobs): the
${SWEEP_QUEUE} queue, swept every minute. Run as many as you like beside
\`keyledger serve\`; each job goes to one of them. Ctrl-C stops it cleanly.
With KEYLEDGER_SERVICE_DATABASE_URL and KEYLEDGER_JOB_QUEUE_DATABASE_URL
(\`keyledger migrate --print-logins\`) it needs no DATABASE_URL: it then
holds no login that could rewrite the log.

Options:
  --status   print the queue depths, the last sweep, the usage rollups' fold, the sealer's progress and the failed sweeps, then exit
  --json     with --status: print it as JSON
`;

export async function runWorker(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs('worker', args, { status: { type: 'boolean' }, json: { type: 'boolean' } });
  if (values.help) {
    io.stdout.write(workerHelp);
    return 0;
  }
  if (values.status) return printStatus(io, values.json === true);

  const { config, logger } = setUp(io, { longRunning: true });
  const signalled = shutdownSignal(io);
  const resources = new Resources();
  try {
    const database = await serviceDatabase(config, logger, io);
    resources.add('database', () => database.release());
    const db = openDatabase(database.appUrl, { as: 'app', max: 4, applicationName: 'keyledger-worker' });
    resources.add('database pool', () => db.destroy());
    // Rotation wraps new key material under the root key.
    const rootKey = await loadRootKey({ base64: config.rootKeyBase64, file: config.rootKeyFile });
    const jobs = lateBoundJobScheduler();
    const app = createKeyledger({ db, rootKey, clock: systemClock, logger, region: config.region, jobs });
    const worker = await startWorker({
      connectionString: database.jobQueueUrl,
      logger,
      clock: systemClock,
      db,
      work: app.rotation,
      seal: {
        privateKey: (await loadSealKey({ base64: config.sealKeyBase64, file: config.sealKeyFile, createIfMissing: true })).privateKey,
        checkpointDir: config.checkpointDir,
      },
    });
    jobs.bind(worker.jobs);
    resources.add('worker', () => worker.stop());
    io.stdout.write(`keyledger worker: running (${SWEEP_QUEUE}, cron '${SWEEP_CRON}' UTC). Press Ctrl-C to stop.\n`);
    await signalled;
  } finally {
    await resources.closeAll(logger);
  }
  io.stdout.write('keyledger worker: stopped\n');
  return 0;
}

async function printStatus(io: CliIo, json: boolean): Promise<number> {
  const { config, logger } = setUp(io, { longRunning: false });
  const database = await serviceDatabase(config, logger, io);
  let status: WorkerStatus;
  try {
    status = await withPool(database.appUrl, 'app', (db) => readWorkerStatus({ connectionString: database.jobQueueUrl, db, logger }), 2);
  } finally {
    await database.release();
  }
  io.stdout.write(json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
  return 0;
}

/** The human-readable status. */
export function formatStatus(status: WorkerStatus): string {
  const lines: string[] = [];
  if (!status.installed) {
    lines.push('no worker has run against this database yet (pg-boss is not installed)');
  } else {
    const countedAt = status.queues[0]?.countedAt;
    lines.push(`queues${countedAt ? ` (counted ${countedAt.toISOString()})` : ''}`);
    const width = Math.max(...status.queues.map((q) => q.name.length), 10);
    for (const q of status.queues) {
      lines.push(`  ${q.name.padEnd(width)}  queued ${q.queued}  active ${q.active}  failed ${q.failed}  stored ${q.total}`);
    }
    if (status.queues.length === 0) lines.push('  (none created yet)');
    lines.push(`schedule     ${status.schedule ? `${status.schedule.cron} (${status.schedule.timezone})` : 'none'}`);
  }
  const sweep = status.lastSweep;
  lines.push(
    sweep
      ? `last sweep   ${sweep.sweptAt.toISOString()}: ${sweep.dueKeyDeletions} key deletion${sweep.dueKeyDeletions === 1 ? '' : 's'} due ` +
          `(${sweep.sweeps} sweeps so far)`
      : 'last sweep   never',
  );
  const rollup = status.usageRollup;
  lines.push(
    `usage rollup ${rollup.folded} audit records folded ` +
      `(last ${rollup.updatedAt.toISOString()}), ${rollup.waitingCapped ? 'more than ' : ''}${rollup.waiting} waiting`,
  );
  const seal = status.sealing;
  lines.push(
    `sealing      ${seal.sealed} events sealed (last ${seal.updatedAt.toISOString()}), ${seal.waitingCapped ? 'more than ' : ''}${seal.waiting} waiting; ` +
      (seal.checkpoint ? `newest checkpoint: tree size ${seal.checkpoint.treeSize}, signed ${seal.checkpoint.signedAt.toISOString()}` : 'no checkpoint yet'),
  );
  lines.push(
    seal.oldestUncoveredAt
      ? `             not yet covered by a checkpoint since ${seal.oldestUncoveredAt.toISOString()} (the window in which it could be altered unseen)`
      : '             every event is covered by a checkpoint',
  );
  if (status.failedJobs.count === 0) {
    lines.push('failed jobs  none');
  } else {
    lines.push(`failed jobs  ${status.failedJobs.count} (newest first)`);
    for (const job of status.failedJobs.newest) {
      lines.push(`  ${job.failedOn.toISOString()}  ${job.id}  after ${job.retries} retries: ${job.error}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
