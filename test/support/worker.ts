import { sql } from 'kysely';
import pg from 'pg';
import { PgBoss, type ConstructorOptions } from 'pg-boss';
import { createKeyledger, type Keyledger } from '../../src/app.ts';
import { createLogger } from '../../src/logger.ts';
import type { RequestContext } from '../../src/service/context.ts';
import { openDatabase, type Db } from '../../src/store/database.ts';
import { jobQueueUrl } from '../../src/store/service-login.ts';
import { DELETE_KEY_QUEUE, ROTATE_KEY_QUEUE } from '../../src/worker/jobs.ts';
import { lastSweep } from '../../src/worker/sweep.ts';
import { JOBS_SCHEMA, openJobScheduler, startWorker, SWEEP_QUEUE, type RunningWorker } from '../../src/worker/worker.ts';
import { createTestApp, type Principal, type TestApp } from './app.ts';
import { waitFor } from './concurrency.ts';

/** Helpers for tests of the worker: pg-boss's job rows, sweeps on demand, and a gate that holds a job mid-transaction. */

export interface KeyJobRow {
  id: string;
  name: string;
  state: 'created' | 'retry' | 'active' | 'completed' | 'cancelled' | 'failed';
  keyId: string | null;
  singletonKey: string | null;
  startAfter: Date;
  retryCount: number;
}

/** Every job of the per-key queues for these keys, oldest first (read as the owner, behind pg-boss's back). */
export async function keyJobs(owner: Db, keyIds: readonly string[], queues: readonly string[] = [ROTATE_KEY_QUEUE, DELETE_KEY_QUEUE]): Promise<KeyJobRow[]> {
  const { rows } = await sql<KeyJobRow>`
    select id, name, state::text as state, data->>'keyId' as "keyId", singleton_key as "singletonKey", start_after as "startAfter", retry_count as "retryCount"
    from ${sql.id(JOBS_SCHEMA, 'job')}
    where name = any(${[...queues]}::text[]) and singleton_key = any(${[...keyIds]}::text[])
    order by created_on, id`.execute(owner);
  return rows;
}

/** Jobs for these keys that a worker would still run: ready (start_after reached) or running. */
export async function runnableKeyJobs(owner: Db, keyIds: readonly string[]): Promise<KeyJobRow[]> {
  const { rows } = await sql<KeyJobRow>`
    select id, name, state::text as state, data->>'keyId' as "keyId", singleton_key as "singletonKey", start_after as "startAfter", retry_count as "retryCount"
    from ${sql.id(JOBS_SCHEMA, 'job')}
    where name = any(${[ROTATE_KEY_QUEUE, DELETE_KEY_QUEUE]}::text[]) and singleton_key = any(${[...keyIds]}::text[])
      and (state = 'active' or (state in ('created', 'retry') and start_after <= now()))`.execute(owner);
  return rows;
}

/** How many events of `type` each key's stream holds. */
export async function countKeyEvents(owner: Db, keyIds: readonly string[], type: string): Promise<Map<string, number>> {
  const counts = new Map(keyIds.map((k) => [k, 0]));
  if (keyIds.length === 0) return counts;
  const rows = await owner
    .selectFrom('events')
    .select(['stream_id', (eb) => eb.fn.countAll<string>().as('n')])
    .where('type', '=', type)
    .where(
      'stream_id',
      'in',
      keyIds.map((k) => `key-${k}`),
    )
    .groupBy('stream_id')
    .execute();
  for (const r of rows) counts.set(r.stream_id.slice('key-'.length), Number(r.n));
  return counts;
}

/** The worker's audit records (RotateKey / DeleteKey / DeleteExpiredKeyMaterial) about one key. */
export async function workerAuditRecords(owner: Db, keyId: string, eventName: 'RotateKey' | 'DeleteKey' | 'DeleteExpiredKeyMaterial'): Promise<any[]> {
  const rows = await owner
    .selectFrom('events')
    .select('data')
    .where('type', '=', 'AuditRecord')
    .where(sql<boolean>`data->>'eventName' = ${eventName} and data->'requestParameters'->>'keyId' = ${keyId}`)
    .orderBy('global_position')
    .execute();
  return rows.map((r) => r.data);
}

/**
 * A pg-boss of the test's own on the worker's schema: sends sweeps, reads jobs, runs maintenance on demand. No timers.
 * It logs in as the worker's does (the job queue's login derived from the owner's `url`), so what it installs is the worker's too.
 */
export async function openTestBoss(url: string, options: Partial<ConstructorOptions> = {}): Promise<PgBoss> {
  const connectionString = jobQueueUrl(url);
  const boss = new PgBoss({
    connectionString,
    schema: JOBS_SCHEMA,
    createSchema: connectionString === url,
    supervise: false,
    schedule: false,
    registerInstance: false,
    max: 3,
    ...options,
  });
  boss.on('error', () => {});
  boss.on('warning', () => {});
  await boss.start();
  return boss;
}

/**
 * Asks for a sweep and resolves once one has run at the injected clock's
 * current time (so it saw every change made before the call). A sweep already
 * queued swallows the send (stately queue); that one then runs at this time.
 */
export async function sweepNow(boss: PgBoss, appDb: Db, clockNow: Date, timeoutMs = 15_000): Promise<void> {
  const before = Number((await lastSweep(appDb))?.sweeps ?? 0);
  await boss.send(SWEEP_QUEUE, null);
  await waitFor(
    async () => {
      const last = await lastSweep(appDb);
      return last !== null && Number(last.sweeps) > before && last.sweptAt.getTime() === clockNow.getTime();
    },
    `a sweep ran at ${clockNow.toISOString()}`,
    timeoutMs,
  );
}

/**
 * Waits until the scheduled work on these keys has come to rest: no job for
 * them ready or running, twice in a row a little apart (a job can be handed from
 * one state to the next between two reads).
 */
export async function waitUntilSettled(owner: Db, keyIds: readonly string[], timeoutMs = 20_000): Promise<void> {
  let quietSince: number | undefined;
  await waitFor(
    async () => {
      const busy = (await runnableKeyJobs(owner, keyIds)).length > 0;
      if (busy) {
        quietSince = undefined;
        return false;
      }
      quietSince ??= Date.now();
      return Date.now() - quietSince >= 300;
    },
    'no job for the keys is ready or running',
    timeoutMs,
  );
}

const GATE_LOCK = 727_272;

/**
 * A test-only trigger on `events` that makes every KeyRotated / KeyDeleted
 * insert wait while the gate is closed, so a worker's job can be held in the
 * middle of its transaction (material destroyed or generated, nothing
 * committed). Installed by the owner; `uninstall` removes it. With
 * `onlyKeyIds`, only those keys' events wait.
 */
export interface Gate {
  /** Holds every KeyRotated / KeyDeleted insert from now on. */
  close(): Promise<void>;
  /** Lets them through. */
  open(): Promise<void>;
  /** Backends (pids) waiting at the gate now. */
  waiting(): Promise<number[]>;
  uninstall(): Promise<void>;
}

export async function installGate(owner: Db, url: string, onlyKeyIds?: readonly string[]): Promise<Gate> {
  const streams = onlyKeyIds ? sql`NEW.stream_id IN (${sql.join(onlyKeyIds.map((k) => sql.lit(`key-${k}`)))})` : sql`true`;
  await sql`
    CREATE OR REPLACE FUNCTION test_gate_scheduled_work() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF ${streams} THEN
        PERFORM pg_advisory_xact_lock_shared(${sql.lit(GATE_LOCK)});
      END IF;
      RETURN NEW;
    END $$`.execute(owner);
  await sql`DROP TRIGGER IF EXISTS test_gate_scheduled_work ON events`.execute(owner);
  await sql`
    CREATE TRIGGER test_gate_scheduled_work BEFORE INSERT ON events
    FOR EACH ROW WHEN (NEW.type IN ('KeyRotated', 'KeyDeleted'))
    EXECUTE FUNCTION test_gate_scheduled_work()`.execute(owner);
  let holder: pg.Client | undefined;
  const open = async () => {
    if (!holder) return;
    const h = holder;
    holder = undefined;
    await h.end();
  };
  return {
    async close() {
      if (holder) return;
      holder = new pg.Client({ connectionString: url, application_name: 'keyledger-test-gate' });
      await holder.connect();
      await holder.query('SELECT pg_advisory_lock($1)', [GATE_LOCK]);
    },
    open,
    async waiting() {
      const { rows } = await sql<{ pid: number }>`
        select pid from pg_locks
        where locktype = 'advisory' and not granted and classid = 0 and objid = ${GATE_LOCK} and objsubid = 1
          and database = (select oid from pg_database where datname = current_database())`.execute(owner);
      return rows.map((r) => r.pid);
    },
    async uninstall() {
      await open();
      await sql`DROP TRIGGER IF EXISTS test_gate_scheduled_work ON events`.execute(owner);
      await sql`DROP FUNCTION IF EXISTS test_gate_scheduled_work()`.execute(owner);
    },
  };
}

/** Everything a worker test file needs: the test app, services that enqueue jobs, a second "process", a test boss, and workers. */
export interface WorkerTestBed {
  t: TestApp;
  alice: Principal;
  /** A fresh RequestContext as alice. */
  ctx(): RequestContext;
  /** Enqueues its jobs on pg-boss in the request's transaction, like `keyledger serve`. */
  queued: Keyledger;
  /** Another process's services, on a pool of their own (for races), enqueueing too. */
  other: Keyledger;
  /** The test's own pg-boss (sends sweeps, runs maintenance on demand). */
  boss: PgBoss;
  /** Starts an in-process worker on `app`'s services, the test clock and the test database. */
  runWorker(app?: Keyledger): Promise<RunningWorker>;
  /** Stops every worker started so far (call in afterEach). */
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Sets up a worker test file. The ManualClock starts at real "now", as the
 * system clock would in production: pg-boss defers each transactional job to
 * its date in real time, so when a test moves the clock forward it is the
 * sweep that must find the work due and get it done.
 */
export async function createWorkerTestBed(): Promise<WorkerTestBed> {
  const logger = createLogger(process.env['KEYLEDGER_TEST_LOG'] ?? 'silent');
  const t = await createTestApp();
  t.clock.set(new Date(Math.floor(Date.now() / 1000) * 1000));
  const alice = await t.newAccount('worker');
  const base = await t.ctx(alice);
  const scheduler = await openJobScheduler(t.db.url, logger);
  const queued = createKeyledger({ db: t.db.app, rootKey: t.rootKey, clock: t.clock, logger, region: 'us-east-1', jobs: scheduler.jobs });
  const otherDb = openDatabase(t.db.url, { as: 'app', max: 8, applicationName: 'keyledger-test-app-2' });
  const other = createKeyledger({ db: otherDb, rootKey: t.rootKey, clock: t.clock, logger, region: 'us-east-1', jobs: scheduler.jobs });
  const boss = await openTestBoss(t.db.url);
  const workers: RunningWorker[] = [];
  const stopWorkers = async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
  };
  return {
    t,
    alice,
    ctx: () => ({ ...base, requestId: crypto.randomUUID() }),
    queued,
    other,
    boss,
    async runWorker(app = queued) {
      // Polls at pg-boss's shortest interval: each hop (sweep, then job) costs up to one poll.
      const worker = await startWorker({ connectionString: t.db.url, logger, clock: t.clock, db: app.db, work: app.rotation, pollingIntervalSeconds: 0.5 });
      workers.push(worker);
      return worker;
    },
    stopWorkers,
    async close() {
      await stopWorkers();
      await boss.stop({ graceful: false });
      await scheduler.close();
      await otherDb.destroy();
      await t.close();
    },
  };
}
