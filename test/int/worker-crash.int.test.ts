import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import type { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyledger, type Keyledger } from '../../src/app.ts';
import { ManualClock } from '../../src/clock.ts';
import { DAY_MS } from '../../src/domain/key-decisions.ts';
import { KmsError } from '../../src/domain/errors.ts';
import { rootKeyFromBytes } from '../../src/crypto/root-key.ts';
import { createLogger } from '../../src/logger.ts';
import type { RequestContext } from '../../src/service/context.ts';
import type { TestDatabase } from '../support/database.ts';
import { createKeyQueues, DELETE_KEY_QUEUE, ROTATE_KEY_QUEUE } from '../../src/worker/jobs.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/concurrency.ts';
import { countKeyEvents, installGate, keyJobs, openTestBoss, waitUntilSettled, workerAuditRecords, type Gate } from '../support/worker.ts';

/**
 * `keyledger worker` killed with SIGKILL in the middle of a rotation and a
 * deletion, then started again: exactly one KeyRotated and one KeyDeleted.
 *
 * How the kill lands mid-job: a test-only trigger on `events` makes the
 * KeyRotated / KeyDeleted insert wait on an advisory lock the test holds, so
 * the worker's transaction is open (new material written, or all material
 * destroyed, nothing committed) when the process dies. It is visible in
 * pg_locks as a waiting backend before the kill.
 *
 * How the keys are due in real time: the CLI worker runs on the system clock,
 * so the keys are set up in-process with a ManualClock 120 days in the past
 * (rotation every 90 days -> due 30 days ago; deletion after 7 days -> due 113
 * days ago). Dates in the log are whatever the injected clock said; only the
 * comparison with the worker's "now" matters.
 *
 * How the orphaned job comes back: the dead worker's pg-boss job stays
 * `active`, and the stately queue runs no other job of that key until it
 * expires. In production that takes the queue's expireInSeconds (300) plus one
 * supervise pass (up to 60 s) of any live pg-boss. Here the test shortens the
 * key queues' expiry to 2 s (updateQueue, before any job is created) and runs
 * the supervise pass itself on a pg-boss of its own, rather than wait a minute
 * for the restarted worker's timer.
 */

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const logger = createLogger('silent');
const rootKeyBytes = randomBytes(32);
const clock = new ManualClock(new Date(Date.now() - 120 * DAY_MS));

let t: TestApp;
let db: TestDatabase;
/** The services on the CLI worker's root key and the clock in the past. */
let app: Keyledger;
let ctx: () => RequestContext;
let boss: PgBoss;
let gate: Gate | undefined;
const children: ChildProcess[] = [];

beforeAll(async () => {
  t = await createTestApp();
  db = t.db;
  // The account and its admin come from the test app; the keys are made with the root key handed to
  // the CLI worker (so its new material decrypts here too) and on the clock 120 days back.
  const admin = await t.newAccount('crash');
  const base = await t.ctx(admin);
  ctx = () => ({ ...base, requestId: randomUUID() });
  app = createKeyledger({ db: db.app, rootKey: rootKeyFromBytes(rootKeyBytes), clock, logger, region: 'us-east-1' });
  // Installs pg-boss's schema; maintenance only when the test asks (supervise()), claimable every second.
  boss = await openTestBoss(db.url, { monitorIntervalSeconds: 1 });
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await gate?.uninstall().catch(() => {});
  await boss?.stop({ graceful: false });
  await t?.close();
});

interface Child {
  process: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startCliWorker(): Child {
  const env = { ...process.env, DATABASE_URL: db.url, KEYLEDGER_LOG_LEVEL: 'warn', KEYLEDGER_ROOT_KEY: rootKeyBytes.toString('base64') };
  const child = spawn(process.execPath, [MAIN, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { process: child, output: () => output, exited };
}

const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => (e instanceof KmsError ? e.code : e),
  );
const materialIds = async (keyId: string) =>
  (await db.owner.selectFrom('key_materials').select('key_material_id').where('key_id', '=', keyId).orderBy('key_material_id').execute()).map(
    (r) => r.key_material_id,
  );

async function sessions(pids: number[]): Promise<{ pid: number; application_name: string; state: string; in_transaction: boolean }[]> {
  const { rows } = await sql<{ pid: number; application_name: string; state: string; in_transaction: boolean }>`
    select pid, application_name, state, xact_start is not null as in_transaction from pg_stat_activity where pid = any(${pids}::int[])`.execute(db.owner);
  return rows;
}

/** One pg-boss supervise pass over the key queues: fails (for retry) the active jobs past their expiry. */
let lastSupervised = 0;
async function expireOrphans(): Promise<void> {
  if (Date.now() - lastSupervised < 250) return;
  lastSupervised = Date.now();
  for (const queue of [ROTATE_KEY_QUEUE, DELETE_KEY_QUEUE]) await boss.supervise(queue);
}

describe('a worker killed mid-job and restarted', () => {
  it('SIGKILL during a rotation and a deletion: exactly one KeyRotated and one KeyDeleted', { timeout: 90_000 }, async () => {
    // Keys due in real time (see above), with ciphertext under their first material.
    const rotating = (await app.kms.createKey(ctx(), { description: 'rotates across a crash' })).keyMetadata;
    const doomed = (await app.kms.createKey(ctx(), { description: 'deleted across a crash' })).keyMetadata;
    await app.aliases.createAlias(ctx(), { aliasName: 'alias/crash-doomed', targetKeyId: doomed.keyId });
    const rotatingBlob = (await app.crypto.encrypt(ctx(), { keyId: rotating.keyId, plaintext: Buffer.from('before the crash') })).ciphertextBlob;
    const doomedBlob = (await app.crypto.encrypt(ctx(), { keyId: doomed.keyId, plaintext: Buffer.from('gone') })).ciphertextBlob;
    await app.rotation.enableKeyRotation(ctx(), { keyId: rotating.keyId, rotationPeriodInDays: 90 });
    await app.kms.scheduleKeyDeletion(ctx(), { keyId: doomed.keyId, pendingWindowInDays: 7 });
    const ids = [rotating.keyId, doomed.keyId];
    const firstMaterials = { rotating: await materialIds(rotating.keyId), doomed: await materialIds(doomed.keyId) };

    // Short expiry for the key queues, set before any key job exists (a job copies it when created).
    await createKeyQueues(boss);
    for (const queue of [ROTATE_KEY_QUEUE, DELETE_KEY_QUEUE]) await boss.updateQueue(queue, { expireInSeconds: 2, retryDelay: 1, retryBackoff: false });

    gate = await installGate(db.owner, db.url, ids);
    await gate.close();

    // 1. The first worker sweeps at start, takes both jobs, and is held with both transactions open.
    const first = startCliWorker();
    let held: number[] = [];
    await waitFor(
      async () => {
        if (first.process.exitCode !== null) throw new Error(`the worker exited early:\n${first.output()}`);
        held = await gate!.waiting();
        return held.length === 2;
      },
      'the worker holds a rotation and a deletion mid-transaction',
      30_000,
    );
    const heldSessions = await sessions(held);
    expect(heldSessions).toHaveLength(2);
    expect(heldSessions.every((s) => s.application_name === 'keyledger-worker' && s.state === 'active' && s.in_transaction)).toBe(true);
    const claimed = (await keyJobs(db.owner, ids)).filter((j) => j.state === 'active');
    expect(claimed.map((j) => j.name).sort()).toEqual([DELETE_KEY_QUEUE, ROTATE_KEY_QUEUE]);

    // 2. Killed there.
    first.process.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // Let the orphaned sessions go on: they find their client gone and roll back.
    await gate.open();
    await waitFor(async () => (await sessions(held)).length === 0, 'the dead worker’s sessions ended', 15_000);

    // Nothing of the interrupted work committed: no event, material as before, key as before.
    expect((await countKeyEvents(db.owner, [rotating.keyId], 'KeyRotated')).get(rotating.keyId)).toBe(0);
    expect((await countKeyEvents(db.owner, [doomed.keyId], 'KeyDeleted')).get(doomed.keyId)).toBe(0);
    expect(await materialIds(rotating.keyId)).toEqual(firstMaterials.rotating);
    expect(await materialIds(doomed.keyId)).toEqual(firstMaterials.doomed);
    expect((await app.kms.describeKey(ctx(), { keyId: rotating.keyId })).keyMetadata.currentKeyMaterialId).toBe(rotating.currentKeyMaterialId);
    expect((await app.kms.describeKey(ctx(), { keyId: doomed.keyId })).keyMetadata.keyState).toBe('PendingDeletion');
    // pg-boss still believes the dead worker is on both jobs.
    expect(
      (await keyJobs(db.owner, ids))
        .filter((j) => j.state === 'active')
        .map((j) => j.id)
        .sort(),
    ).toEqual(claimed.map((j) => j.id).sort());

    // 3. Restarted. pg-boss expires the orphaned jobs (supervise), and the work is done once.
    const second = startCliWorker();
    try {
      await waitFor(
        async () => {
          if (second.process.exitCode !== null) throw new Error(`the worker exited early:\n${second.output()}`);
          await expireOrphans();
          const rotated = (await countKeyEvents(db.owner, [rotating.keyId], 'KeyRotated')).get(rotating.keyId)!;
          const deleted = (await countKeyEvents(db.owner, [doomed.keyId], 'KeyDeleted')).get(doomed.keyId)!;
          return rotated >= 1 && deleted >= 1;
        },
        'the restarted worker rotated and deleted',
        40_000,
      );
      // Every job left for the keys (the expired retry, the restart sweep's) has run.
      await waitFor(
        async () => {
          await expireOrphans();
          return (await keyJobs(db.owner, ids)).every(
            (j) => j.state !== 'active' && j.state !== 'retry' && !(j.state === 'created' && j.startAfter <= new Date()),
          );
        },
        'every job for the keys ran',
        20_000,
      );
      await waitUntilSettled(db.owner, ids);

      expect((await countKeyEvents(db.owner, [rotating.keyId], 'KeyRotated')).get(rotating.keyId)).toBe(1);
      expect((await countKeyEvents(db.owner, [doomed.keyId], 'KeyDeleted')).get(doomed.keyId)).toBe(1);
      expect((await workerAuditRecords(db.owner, rotating.keyId, 'RotateKey')).filter((r) => r.responseElements?.outcome === 'done')).toHaveLength(1);
      expect((await workerAuditRecords(db.owner, doomed.keyId, 'DeleteKey')).filter((r) => r.responseElements?.outcome === 'done')).toHaveLength(1);
      // The orphaned jobs were expired, retried and completed by pg-boss, not lost (whichever of them or
      // the restart sweep's jobs got to a key first, the others found nothing due).
      const orphans = (await keyJobs(db.owner, ids)).filter((j) => claimed.some((c) => c.id === j.id));
      expect(orphans.map((j) => ({ state: j.state, retried: j.retryCount >= 1 }))).toEqual([
        { state: 'completed', retried: true },
        { state: 'completed', retried: true },
      ]);

      // The rotation: a second material, wrapped under the same root key; the first still decrypts.
      const described = (await app.kms.describeKey(ctx(), { keyId: rotating.keyId })).keyMetadata;
      expect(described.currentKeyMaterialId).not.toBe(rotating.currentKeyMaterialId);
      expect(await materialIds(rotating.keyId)).toHaveLength(2);
      expect((await app.crypto.decrypt(ctx(), { ciphertextBlob: rotatingBlob })).plaintext.toString()).toBe('before the crash');
      const after = (await app.crypto.encrypt(ctx(), { keyId: rotating.keyId, plaintext: Buffer.from('after') })).ciphertextBlob;
      expect((await app.crypto.decrypt(ctx(), { ciphertextBlob: after })).keyMaterialId).toBe(described.currentKeyMaterialId);
      const status = await app.rotation.getKeyRotationStatus(ctx(), { keyId: rotating.keyId });
      expect(status.nextRotationDate!.getTime()).toBeGreaterThan(Date.now() + 89 * DAY_MS);

      // The deletion: shredded, alias gone, history kept.
      expect(await materialIds(doomed.keyId)).toEqual([]);
      expect(await rejection(app.kms.describeKey(ctx(), { keyId: doomed.keyId }))).toBe('NotFoundException');
      expect(await rejection(app.crypto.decrypt(ctx(), { ciphertextBlob: doomedBlob }))).toBe('InvalidCiphertextException');
      expect(await rejection(app.kms.describeKey(ctx(), { keyId: 'alias/crash-doomed' }))).toBe('NotFoundException');
      const stream = await db.owner.selectFrom('events').select('type').where('stream_id', '=', `key-${doomed.keyId}`).orderBy('stream_version').execute();
      expect(stream.map((e) => e.type)).toEqual(['KeyCreated', 'KeyDeletionScheduled', 'KeyDeleted']);

      second.process.kill('SIGINT');
      expect(await second.exited).toEqual({ code: 0, signal: null });
    } finally {
      if (second.process.exitCode === null) second.process.kill('SIGKILL');
    }
  });
});
