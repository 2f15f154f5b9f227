import { ADMINISTRATOR_ACCESS } from '../../src/service/identity-service.ts';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyledger } from '../../src/app.ts';
import { formatStatus } from '../../src/cli/worker.ts';
import { ManualClock } from '../../src/clock.ts';
import { rootKeyFromBytes } from '../../src/crypto/root-key.ts';
import { sealKeyFromSeed } from '../../src/crypto/seal-key.ts';
import { LogSealer } from '../../src/store/log-seal.ts';
import { createLogger } from '../../src/logger.ts';
import { DELETE_KEY_QUEUE, EXPIRE_KEY_MATERIAL_QUEUE, ROTATE_KEY_QUEUE } from '../../src/worker/jobs.ts';
import {
  readWorkerStatus,
  startWorker,
  SWEEP_CRON,
  SWEEP_DEAD_LETTER_QUEUE,
  SWEEP_QUEUE,
  type RunningWorker,
  type WorkerStatus,
} from '../../src/worker/worker.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { waitFor } from '../support/concurrency.ts';

/** The worker: pg-boss in its own schema, the sweep on the injected clock, and `keyledger worker [--status]`. */

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const logger = createLogger('silent');
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

describe('startWorker', () => {
  let worker: RunningWorker | undefined;
  afterAll(() => worker?.stop());

  it('reports nothing installed before any worker ran', async () => {
    const status = await readWorkerStatus({ connectionString: db.url, db: db.app, logger });
    expect(status).toEqual({
      installed: false,
      queues: [],
      schedule: null,
      lastSweep: null,
      failedJobs: { count: 0, newest: [] },
      usageRollup: { folded: 0, updatedAt: expect.any(Date), waiting: 0, waitingCapped: false },
      sealing: { sealed: 0, updatedAt: expect.any(Date), waiting: 0, waitingCapped: false, checkpoint: null, oldestUncoveredAt: null },
    });
    expect(formatStatus(status)).toMatch(
      /no worker has run[\s\S]*last sweep {3}never[\s\S]*usage rollup 0 audit records folded .*, 0 waiting[\s\S]*failed jobs  none/,
    );
  });

  it('sweeps at start, counting keys whose deletion is due by the injected clock', { timeout: 30_000 }, async () => {
    // A key scheduled for deletion in March 2026 (7 days), and one still enabled.
    const appClock = new ManualClock(new Date('2026-03-01T00:00:00Z'));
    const app = createKeyledger({ db: db.app, rootKey: rootKeyFromBytes(randomBytes(32)), clock: appClock, logger, region: 'us-east-1' });
    const op = { requestId: randomUUID(), invokedBy: 'keyledger-test' };
    const { accountId } = await app.identity.createAccount(op, { name: 'worker-test' });
    const { principalArn } = await app.identity.createPrincipal({ ...op, requestId: randomUUID() }, { accountId, type: 'user', name: 'admin' });
    await app.identity.putPrincipalPolicy({ ...op, requestId: randomUUID() }, { principalArn, policyName: 'admin', policyDocument: ADMINISTRATOR_ACCESS });
    const key = await app.identity.createAccessKey({ ...op, requestId: randomUUID() }, { principalArn });
    const auth = await app.identity.authenticate(key.accessKeyId, key.secretAccessKey);
    if (!auth.ok) throw new Error('cannot authenticate');
    const ctx = () => ({ requestId: randomUUID(), caller: auth.caller, sourceIp: null, userAgent: 'test' });
    const doomed = await app.kms.createKey(ctx(), { description: 'doomed' });
    await app.kms.createKey(ctx(), { description: 'kept' });
    await app.kms.scheduleKeyDeletion(ctx(), { keyId: doomed.keyMetadata.keyId, pendingWindowInDays: 7 });

    // The worker's clock is in 2030: the deletion (2026-03-08) is due.
    const workerClock = new ManualClock(new Date('2030-01-01T00:00:00Z'));
    worker = await startWorker({ connectionString: db.url, logger, clock: workerClock, db: db.app });
    let status: WorkerStatus | undefined;
    await waitFor(
      async () => {
        status = await worker!.status();
        return status.lastSweep !== null;
      },
      'the start-up sweep ran',
      20_000,
    );
    expect(status!.lastSweep).toEqual({ sweptAt: new Date('2030-01-01T00:00:00Z'), dueKeyDeletions: 1, sweeps: '1' });
    expect(status!.schedule).toEqual({ cron: SWEEP_CRON, timezone: 'UTC' });
    expect(status!.queues.map((q) => q.name)).toEqual([SWEEP_QUEUE, SWEEP_DEAD_LETTER_QUEUE, ROTATE_KEY_QUEUE, DELETE_KEY_QUEUE, EXPIRE_KEY_MATERIAL_QUEUE]);
    expect(status!.failedJobs).toEqual({ count: 0, newest: [] });
    // The worker folds the audit records (the requests above) into the usage rollups.
    await waitFor(
      async () => {
        status = await worker!.status();
        return status.usageRollup.waiting === 0 && status.usageRollup.folded > 0;
      },
      'the usage rollups caught up',
      20_000,
    );

    // Read from outside, as `worker --status` does.
    const outside = await readWorkerStatus({ connectionString: db.url, db: db.app, logger });
    expect(outside.lastSweep).toEqual(status!.lastSweep);
    expect(formatStatus(outside)).toMatch(/keyledger-sweep\s+queued \d+[\s\S]*last sweep {3}2030-01-01T00:00:00.000Z: 1 key deletion due/);

    await worker.stop();
    await worker.stop();
  });
});

describe('the sealer in the status', () => {
  it('shows events waiting and the oldest one no checkpoint covers, until a pass seals and checkpoints them', async () => {
    // The test above recorded requests; no sealer has run on this database.
    const before = (await readWorkerStatus({ connectionString: db.url, db: db.app, logger })).sealing;
    expect(before.sealed).toBe(0);
    expect(before.waiting).toBeGreaterThan(0);
    expect(before.checkpoint).toBeNull();
    const { rows } = await sql<{ first: Date }>`SELECT min(recorded_at) AS first FROM events`.execute(db.owner);
    expect(before.oldestUncoveredAt).toEqual(rows[0]!.first);
    expect(formatStatus(await readWorkerStatus({ connectionString: db.url, db: db.app, logger }))).toContain(
      `0 events sealed (last ${before.updatedAt.toISOString()}), ${before.waiting} waiting; no checkpoint yet`,
    );

    const sealer = new LogSealer(db.app, { privateKey: sealKeyFromSeed(Buffer.alloc(32, 7)).privateKey, now: () => new Date() });
    let pass;
    do pass = await sealer.pass({ force: true });
    while (!pass.caughtUp);
    const after = (await readWorkerStatus({ connectionString: db.url, db: db.app, logger })).sealing;
    expect(after).toMatchObject({ sealed: pass.treeSize, waiting: 0, checkpoint: { treeSize: pass.treeSize }, oldestUncoveredAt: null });
    expect(formatStatus(await readWorkerStatus({ connectionString: db.url, db: db.app, logger }))).toContain('every event is covered by a checkpoint');
  });
});

describe('formatStatus', () => {
  it('lists failed sweeps, newest first, with their error', () => {
    const text = formatStatus({
      installed: true,
      queues: [{ name: SWEEP_QUEUE, queued: 1, active: 0, failed: 2, total: 9, countedAt: new Date('2026-05-01T10:00:00Z') }],
      schedule: { cron: SWEEP_CRON, timezone: 'UTC' },
      lastSweep: null,
      failedJobs: {
        count: 2,
        newest: [
          { id: 'j2', createdOn: new Date('2026-05-01T09:59:00Z'), failedOn: new Date('2026-05-01T10:00:00Z'), retries: 2, error: 'connection refused' },
        ],
      },
      usageRollup: { folded: 1200, updatedAt: new Date('2026-05-01T09:58:00Z'), waiting: 100_000, waitingCapped: true },
      sealing: {
        sealed: 900,
        updatedAt: new Date('2026-05-01T09:59:30Z'),
        waiting: 3,
        waitingCapped: false,
        checkpoint: { treeSize: 880, signedAt: new Date('2026-05-01T09:59:28Z') },
        oldestUncoveredAt: new Date('2026-05-01T09:59:26Z'),
      },
    });
    expect(text).toContain(
      'sealing      900 events sealed (last 2026-05-01T09:59:30.000Z), 3 waiting; newest checkpoint: tree size 880, signed 2026-05-01T09:59:28.000Z',
    );
    expect(text).toContain('not yet covered by a checkpoint since 2026-05-01T09:59:26.000Z');
    expect(text).toContain('usage rollup 1200 audit records folded (last 2026-05-01T09:58:00.000Z), more than 100000 waiting');
    expect(text).toContain('queues (counted 2026-05-01T10:00:00.000Z)');
    expect(text).toContain('failed jobs  2 (newest first)');
    expect(text).toContain('2026-05-01T10:00:00.000Z  j2  after 2 retries: connection refused');
  });
});

describe('keyledger worker', () => {
  it('runs until SIGINT, sweeping, and `worker --status --json` sees it', { timeout: 60_000 }, async () => {
    // The worker wraps rotated key material under the root key, so it needs one.
    const env = { ...process.env, DATABASE_URL: db.url, KEYLEDGER_LOG_LEVEL: 'warn', KEYLEDGER_ROOT_KEY: randomBytes(32).toString('base64') };
    const child = spawn(process.execPath, [MAIN, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(async () => output.includes('keyledger worker: running'), 'the worker is running', 30_000);
      // The in-process worker above swept once; this one sweeps at its start too.
      await waitFor(
        async () => {
          const r = await new Promise<string>((resolve) => {
            const status = spawn(process.execPath, [MAIN, 'worker', '--status', '--json'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
            let out = '';
            status.stdout.on('data', (c: Buffer) => (out += c.toString()));
            status.once('exit', () => resolve(out));
          });
          return Number((JSON.parse(r) as { lastSweep: { sweeps: string } | null }).lastSweep?.sweeps ?? 0) >= 2;
        },
        'the CLI worker swept',
        30_000,
      );
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(output).toContain('keyledger worker: stopped');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
