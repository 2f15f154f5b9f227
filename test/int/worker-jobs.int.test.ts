import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { PgBoss } from 'pg-boss';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Keyledger } from '../../src/app.ts';
import { KmsError } from '../../src/domain/errors.ts';
import type { RequestContext } from '../../src/service/context.ts';
import { replayProjections } from '../../src/store/replay.ts';
import { DELETE_KEY_QUEUE, EXPIRE_KEY_MATERIAL_QUEUE, ROTATE_KEY_QUEUE } from '../../src/worker/jobs.ts';
import type { RunningWorker } from '../../src/worker/worker.ts';
import type { TestApp } from '../support/app.ts';
import { waitFor } from '../support/concurrency.ts';
import {
  countKeyEvents,
  createWorkerTestBed,
  installGate,
  keyJobs,
  sweepNow,
  waitUntilSettled,
  workerAuditRecords,
  type WorkerTestBed,
} from '../support/worker.ts';

/**
 * The worker on real Postgres with real pg-boss: jobs enqueued in the
 * request's transaction, automatic rotation when the injected clock passes
 * nextRotationDate, imported material deleted when it passes ValidTo, a lost
 * job made good by the sweep, and a graceful stop.
 * Races are in worker-race.int.test.ts, a killed worker in worker-crash.
 *
 * The ManualClock starts at real "now" (see createWorkerTestBed): each
 * transactional job waits in pg-boss for its date in real time, so when a test
 * moves the clock it is the sweep that must find the work due and get it done.
 */

let bed: WorkerTestBed;
let t: TestApp;
let queued: Keyledger;
let boss: PgBoss;
const ctx = (): RequestContext => bed.ctx();
const runWorker = (app?: Keyledger): Promise<RunningWorker> => bed.runWorker(app);

beforeAll(async () => {
  bed = await createWorkerTestBed();
  ({ t, queued, boss } = bed);
});
afterEach(() => bed.stopWorkers());
afterAll(() => bed?.close());

const newKey = async (description = 'scheduled') => (await queued.kms.createKey(ctx(), { description })).keyMetadata;
const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => (e instanceof KmsError ? { code: e.code, message: e.message } : e),
  );
const streamTypes = async (keyId: string) =>
  (await t.db.owner.selectFrom('events').select('type').where('stream_id', '=', `key-${keyId}`).orderBy('stream_version').execute()).map((e) => e.type);

async function waitForCounts(keyIds: string[], type: string, what: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => [...(await countKeyEvents(t.db.owner, keyIds, type)).values()].every((n) => n >= 1), what, timeoutMs);
}

// ---------------------------------------------------------------------------

describe('jobs are enqueued in the transaction that schedules them', () => {
  it('scheduleKeyDeletion inserts one keyledger-delete-key job, due at deletionDate', async () => {
    const key = await newKey();
    expect(await keyJobs(t.db.owner, [key.keyId])).toEqual([]);
    const scheduled = await queued.kms.scheduleKeyDeletion(ctx(), { keyId: key.keyId, pendingWindowInDays: 7 });
    const jobs = await keyJobs(t.db.owner, [key.keyId]);
    expect(jobs).toEqual([
      expect.objectContaining({ name: DELETE_KEY_QUEUE, state: 'created', keyId: key.keyId, singletonKey: key.keyId, startAfter: scheduled.deletionDate }),
    ]);
  });

  it('enableKeyRotation inserts a keyledger-rotate-key job at nextRotationDate; on-demand rotation and a no-op enable insert none', async () => {
    const key = await newKey();
    await queued.rotation.enableKeyRotation(ctx(), { keyId: key.keyId, rotationPeriodInDays: 90 });
    const { nextRotationDate } = await queued.rotation.getKeyRotationStatus(ctx(), { keyId: key.keyId });
    await queued.rotation.enableKeyRotation(ctx(), { keyId: key.keyId, rotationPeriodInDays: 90 });
    await queued.rotation.rotateKeyOnDemand(ctx(), { keyId: key.keyId });
    expect(await keyJobs(t.db.owner, [key.keyId])).toEqual([
      expect.objectContaining({ name: ROTATE_KEY_QUEUE, state: 'created', keyId: key.keyId, startAfter: nextRotationDate }),
    ]);
  });

  it('a request refused before the enqueue leaves no job', async () => {
    const key = await newKey();
    expect(await rejection(queued.kms.scheduleKeyDeletion(ctx(), { keyId: key.keyId, pendingWindowInDays: 6 }))).toMatchObject({ code: 'ValidationException' });
    expect(await rejection(queued.rotation.enableKeyRotation(ctx(), { keyId: key.keyId, rotationPeriodInDays: 2561 }))).toMatchObject({
      code: 'ValidationException',
    });
    expect(await keyJobs(t.db.owner, [key.keyId])).toEqual([]);
  });

  it('a request rolled back after its enqueue (its audit record cannot be written) takes the job with it', async () => {
    const key = await newKey();
    // Fails the success record of this key's ScheduleKeyDeletion, and only once the job is visible in
    // the same transaction: the request fails at all only if the enqueue happened inside it.
    await sql`
      CREATE FUNCTION test_refuse_schedule_audit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM keyledger_jobs.job WHERE name = ${sql.lit(DELETE_KEY_QUEUE)} AND singleton_key = ${sql.lit(key.keyId)}) THEN
          RAISE EXCEPTION 'test: the audit store is down';
        END IF;
        RETURN NEW;
      END $$`.execute(t.db.owner);
    await sql`
      CREATE TRIGGER test_refuse_schedule_audit BEFORE INSERT ON events FOR EACH ROW
      WHEN (NEW.type = 'AuditRecord' AND NEW.data->>'eventName' = 'ScheduleKeyDeletion' AND NEW.data->>'outcome' = 'success')
      EXECUTE FUNCTION test_refuse_schedule_audit()`.execute(t.db.owner);
    try {
      expect(await rejection(queued.kms.scheduleKeyDeletion(ctx(), { keyId: key.keyId, pendingWindowInDays: 7 }))).toMatchObject({
        code: 'KMSInternalException',
      });
    } finally {
      await sql`DROP TRIGGER test_refuse_schedule_audit ON events`.execute(t.db.owner);
      await sql`DROP FUNCTION test_refuse_schedule_audit()`.execute(t.db.owner);
    }
    expect(await keyJobs(t.db.owner, [key.keyId])).toEqual([]);
    expect(await streamTypes(key.keyId)).toEqual(['KeyCreated']);
    expect((await t.app.kms.describeKey(ctx(), { keyId: key.keyId })).keyMetadata.keyState).toBe('Enabled');
  });

  it('rescheduling moves the waiting job: a shorter period, or a deletion cancelled and scheduled again', async () => {
    const rotating = await newKey();
    await queued.rotation.enableKeyRotation(ctx(), { keyId: rotating.keyId, rotationPeriodInDays: 365 });
    await queued.rotation.enableKeyRotation(ctx(), { keyId: rotating.keyId, rotationPeriodInDays: 90 });
    const { nextRotationDate } = await queued.rotation.getKeyRotationStatus(ctx(), { keyId: rotating.keyId });
    const rotateJobs = (await keyJobs(t.db.owner, [rotating.keyId])).filter((j) => j.state === 'created');
    expect(rotateJobs.map((j) => j.startAfter)).toEqual([nextRotationDate]);

    const doomed = await newKey();
    await queued.kms.scheduleKeyDeletion(ctx(), { keyId: doomed.keyId, pendingWindowInDays: 30 });
    await queued.kms.cancelKeyDeletion(ctx(), { keyId: doomed.keyId });
    const again = await queued.kms.scheduleKeyDeletion(ctx(), { keyId: doomed.keyId, pendingWindowInDays: 7 });
    const deleteJobs = (await keyJobs(t.db.owner, [doomed.keyId])).filter((j) => j.state === 'created');
    expect(deleteJobs.map((j) => j.startAfter)).toEqual([again.deletionDate]);
  });
});

// ---------------------------------------------------------------------------

describe('automatic rotation by the worker', () => {
  it('rotates exactly once when the clock passes nextRotationDate; old ciphertext still decrypts; audited as the worker', async () => {
    const key = await newKey('rotated by the worker');
    const before = await t.app.crypto.encrypt(ctx(), { keyId: key.keyId, plaintext: Buffer.from('sealed under the first material') });
    await queued.rotation.enableKeyRotation(ctx(), { keyId: key.keyId }); // 365 days
    const { nextRotationDate } = await queued.rotation.getKeyRotationStatus(ctx(), { keyId: key.keyId });
    await runWorker();

    // Not due yet: a sweep changes nothing.
    t.clock.set(new Date(nextRotationDate!.getTime() - 60_000));
    await sweepNow(boss, t.db.app, t.clock.now());
    expect((await countKeyEvents(t.db.owner, [key.keyId], 'KeyRotated')).get(key.keyId)).toBe(0);

    t.clock.advance({ minutes: 2 });
    const rotatedAt = t.clock.now();
    await sweepNow(boss, t.db.app, rotatedAt);
    await waitForCounts([key.keyId], 'KeyRotated', 'the worker rotated the key');
    // Another sweep, and every job for the key run: still one rotation.
    await sweepNow(boss, t.db.app, rotatedAt);
    await waitUntilSettled(t.db.owner, [key.keyId]);
    expect((await countKeyEvents(t.db.owner, [key.keyId], 'KeyRotated')).get(key.keyId)).toBe(1);

    const described = (await t.app.kms.describeKey(ctx(), { keyId: key.keyId })).keyMetadata;
    expect(described.currentKeyMaterialId).not.toBe(key.currentKeyMaterialId);
    const { rotations } = await t.app.rotation.listKeyRotations(ctx(), { keyId: key.keyId });
    expect(rotations).toEqual([
      { keyId: key.arn, keyMaterialId: described.currentKeyMaterialId, rotationDate: rotatedAt, rotationType: 'AUTOMATIC', keyMaterialState: 'CURRENT' },
    ]);
    const status = await t.app.rotation.getKeyRotationStatus(ctx(), { keyId: key.keyId });
    expect(status.nextRotationDate).toEqual(new Date(rotatedAt.getTime() + 365 * 86_400_000));

    const old = await t.app.crypto.decrypt(ctx(), { ciphertextBlob: before.ciphertextBlob });
    expect(old.plaintext.toString()).toBe('sealed under the first material');
    expect(old.keyMaterialId).toBe(key.currentKeyMaterialId);
    const fresh = await t.app.crypto.encrypt(ctx(), { keyId: key.keyId, plaintext: Buffer.from('sealed under the second') });
    expect((await t.app.crypto.decrypt(ctx(), { ciphertextBlob: fresh.ciphertextBlob })).keyMaterialId).toBe(described.currentKeyMaterialId);

    const done = (await workerAuditRecords(t.db.owner, key.keyId, 'RotateKey')).filter((r) => r.responseElements?.outcome === 'done');
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({
      eventName: 'RotateKey',
      outcome: 'success',
      accountId: bed.alice.accountId,
      userIdentity: { type: 'AWSService', invokedBy: 'keyledger-worker', principalArn: null },
      sourceIp: null,
      eventTime: rotatedAt.toISOString(),
      resources: [{ arn: key.arn }],
      additionalEventData: { keyMaterialId: described.currentKeyMaterialId, rotationType: 'AUTOMATIC' },
    });
    // The next rotation is already queued, at its date.
    expect((await keyJobs(t.db.owner, [key.keyId])).filter((j) => j.state === 'created').map((j) => j.startAfter)).toEqual([status.nextRotationDate]);
  });
});

// ---------------------------------------------------------------------------

describe('expiry of imported key material by the worker', () => {
  it('ImportKeyMaterial with a ValidTo enqueues its expiry job; past ValidTo the worker deletes the material (DeleteExpiredKeyMaterial), once', async () => {
    const key = (await queued.kms.createKey(ctx(), { description: 'expired by the worker', origin: 'EXTERNAL' })).keyMetadata;
    const params = await queued.imports.getParametersForImport(ctx(), {
      keyId: key.keyId,
      wrappingAlgorithm: 'RSAES_OAEP_SHA_256',
      wrappingKeySpec: 'RSA_2048',
    });
    const wrappingKey = createPublicKey({ key: params.publicKey, format: 'der', type: 'spki' });
    const validTo = new Date(t.clock.now().getTime() + 2 * 86_400_000);
    const { keyMaterialId } = await queued.imports.importKeyMaterial(ctx(), {
      keyId: key.keyId,
      importToken: params.importToken,
      encryptedKeyMaterial: publicEncrypt({ key: wrappingKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, randomBytes(32)),
      expirationModel: 'KEY_MATERIAL_EXPIRES',
      validTo,
    });
    const sealed = await t.app.crypto.encrypt(ctx(), { keyId: key.keyId, plaintext: Buffer.from('until ValidTo') });
    // The outbox: the job is in pg-boss, due at ValidTo, committed with the import.
    expect(await keyJobs(t.db.owner, [key.keyId], [EXPIRE_KEY_MATERIAL_QUEUE])).toEqual([
      expect.objectContaining({ name: EXPIRE_KEY_MATERIAL_QUEUE, state: 'created', keyId: key.keyId, startAfter: validTo }),
    ]);
    await runWorker();

    // Not due yet: a sweep changes nothing.
    t.clock.set(new Date(validTo.getTime() - 60_000));
    await sweepNow(boss, t.db.app, t.clock.now());
    expect((await countKeyEvents(t.db.owner, [key.keyId], 'KeyMaterialDeleted')).get(key.keyId)).toBe(0);

    t.clock.advance({ minutes: 2 });
    const expiredAt = t.clock.now();
    await sweepNow(boss, t.db.app, expiredAt);
    await waitForCounts([key.keyId], 'KeyMaterialDeleted', 'the worker deleted the expired material');
    await sweepNow(boss, t.db.app, expiredAt);
    await waitFor(
      async () => (await keyJobs(t.db.owner, [key.keyId], [EXPIRE_KEY_MATERIAL_QUEUE])).every((j) => j.state === 'completed'),
      'every expiry job for the key has run',
      20_000,
    );
    expect((await countKeyEvents(t.db.owner, [key.keyId], 'KeyMaterialDeleted')).get(key.keyId)).toBe(1);

    expect((await t.app.kms.describeKey(ctx(), { keyId: key.keyId })).keyMetadata.keyState).toBe('PendingImport');
    expect(await t.db.owner.selectFrom('key_materials').select('key_id').where('key_id', '=', key.keyId).execute()).toEqual([]);
    expect(await rejection(t.app.crypto.decrypt(ctx(), { ciphertextBlob: sealed.ciphertextBlob }))).toMatchObject({ code: 'KMSInvalidStateException' });
    const done = (await workerAuditRecords(t.db.owner, key.keyId, 'DeleteExpiredKeyMaterial')).filter((r) => r.responseElements?.outcome === 'done');
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({
      eventName: 'DeleteExpiredKeyMaterial',
      outcome: 'success',
      userIdentity: { type: 'AWSService', invokedBy: 'keyledger-worker' },
      eventTime: expiredAt.toISOString(),
      resources: [{ arn: key.arn }],
      additionalEventData: { expiredKeyMaterialIds: [keyMaterialId] },
    });
  });
});

// ---------------------------------------------------------------------------

describe('a job lost behind pg-boss’s back', () => {
  it('the job rows are deleted: the sweep still rotates and deletes, once', { timeout: 40_000 }, async () => {
    const rotating = await newKey();
    const doomed = await newKey();
    await queued.rotation.enableKeyRotation(ctx(), { keyId: rotating.keyId, rotationPeriodInDays: 90 });
    await queued.kms.scheduleKeyDeletion(ctx(), { keyId: doomed.keyId, pendingWindowInDays: 7 });
    const ids = [rotating.keyId, doomed.keyId];
    expect(await keyJobs(t.db.owner, ids)).toHaveLength(2);
    await sql`DELETE FROM keyledger_jobs.job WHERE singleton_key = ANY(${ids}::text[])`.execute(t.db.owner);
    expect(await keyJobs(t.db.owner, ids)).toEqual([]);

    t.clock.advance({ days: 91 });
    await runWorker(); // sweeps at start
    await waitForCounts([rotating.keyId], 'KeyRotated', 'the sweep had the key rotated');
    await waitForCounts([doomed.keyId], 'KeyDeleted', 'the sweep had the key deleted');
    await sweepNow(boss, t.db.app, t.clock.now());
    await waitUntilSettled(t.db.owner, ids);
    expect((await countKeyEvents(t.db.owner, [rotating.keyId], 'KeyRotated')).get(rotating.keyId)).toBe(1);
    expect((await countKeyEvents(t.db.owner, [doomed.keyId], 'KeyDeleted')).get(doomed.keyId)).toBe(1);
  });
});

// ---------------------------------------------------------------------------

describe('graceful stop', () => {
  it('worker.stop() while a job runs lets it finish and commit, then stops', { timeout: 40_000 }, async () => {
    const key = await newKey('rotating at shutdown');
    await queued.rotation.enableKeyRotation(ctx(), { keyId: key.keyId, rotationPeriodInDays: 90 });
    t.clock.advance({ days: 91 });
    const gate = await installGate(t.db.owner, t.db.url, [key.keyId]);
    try {
      await gate.close();
      const worker = await runWorker();
      await waitFor(async () => (await gate.waiting()).length === 1, 'the rotation is held mid-transaction', 20_000);
      const [held] = await keyJobs(t.db.owner, [key.keyId], [ROTATE_KEY_QUEUE]).then((jobs) => jobs.filter((j) => j.state === 'active'));
      expect(held).toBeDefined();

      let stopped = false;
      const stopping = worker.stop().then(() => (stopped = true));
      // Still waiting for the job: stop() has not returned while it is held.
      await new Promise((r) => setTimeout(r, 500));
      expect(stopped).toBe(false);
      await gate.open();
      await stopping;

      expect((await countKeyEvents(t.db.owner, [key.keyId], 'KeyRotated')).get(key.keyId)).toBe(1);
      const after = (await keyJobs(t.db.owner, [key.keyId], [ROTATE_KEY_QUEUE])).find((j) => j.id === held!.id);
      expect(after?.state).toBe('completed');
    } finally {
      await gate.uninstall();
    }
  });
});

// ---------------------------------------------------------------------------

describe('the log', () => {
  it('after all of it, replaying the log rebuilds the live projections exactly', async () => {
    const { differences, keys } = await replayProjections(t.db.owner, { verify: true });
    expect(differences).toEqual([]);
    expect(keys).toBeGreaterThan(0);
  });
});
