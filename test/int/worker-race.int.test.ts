import type { PgBoss } from 'pg-boss';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Keyledger } from '../../src/app.ts';
import { KmsError } from '../../src/domain/errors.ts';
import type { RequestContext } from '../../src/service/context.ts';
import { replayProjections } from '../../src/store/replay.ts';
import type { RunningWorker } from '../../src/worker/worker.ts';
import type { TestApp } from '../support/app.ts';
import { waitFor } from '../support/concurrency.ts';
import { countKeyEvents, createWorkerTestBed, sweepNow, waitUntilSettled, workerAuditRecords, type WorkerTestBed } from '../support/worker.ts';

/**
 * Races on scheduled work, on real Postgres with real pg-boss: two worker
 * instances on the same due keys, the handlers called concurrently, and
 * cancelKeyDeletion racing the deletion job. Exactly once in effect, and
 * each key whole in one outcome; the log still replays to the projections.
 */

let bed: WorkerTestBed;
let t: TestApp;
let queued: Keyledger;
let other: Keyledger;
let boss: PgBoss;
const ctx = (): RequestContext => bed.ctx();
const runWorker = (app?: Keyledger): Promise<RunningWorker> => bed.runWorker(app);

beforeAll(async () => {
  bed = await createWorkerTestBed();
  ({ t, queued, other, boss } = bed);
});
afterEach(() => bed.stopWorkers());
afterAll(() => bed?.close());

const newKey = async (description = 'scheduled') => (await queued.kms.createKey(ctx(), { description })).keyMetadata;
const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => (e instanceof KmsError ? { code: e.code, message: e.message } : e),
  );
const materialRows = async (keyId: string) =>
  (await t.db.owner.selectFrom('key_materials').select('key_material_id').where('key_id', '=', keyId).execute()).length;
const streamTypes = async (keyId: string) =>
  (await t.db.owner.selectFrom('events').select('type').where('stream_id', '=', `key-${keyId}`).orderBy('stream_version').execute()).map((e) => e.type);

async function waitForCounts(keyIds: string[], type: string, what: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => [...(await countKeyEvents(t.db.owner, keyIds, type)).values()].every((n) => n >= 1), what, timeoutMs);
}

// ---------------------------------------------------------------------------

describe('two workers racing on the same due keys', () => {
  it('10 keys due for rotation and 10 for deletion: one KeyRotated and one KeyDeleted per key', { timeout: 60_000 }, async () => {
    const rotating = await Promise.all(Array.from({ length: 10 }, () => newKey('race: rotate')));
    const doomed = await Promise.all(Array.from({ length: 10 }, () => newKey('race: delete')));
    await Promise.all([
      ...rotating.map((k) => queued.rotation.enableKeyRotation(ctx(), { keyId: k.keyId, rotationPeriodInDays: 90 })),
      ...doomed.map(async (k, i) => {
        await queued.aliases.createAlias(ctx(), { aliasName: `alias/race-${i}-${k.keyId.slice(0, 8)}`, targetKeyId: k.keyId });
        await queued.kms.scheduleKeyDeletion(ctx(), { keyId: k.keyId, pendingWindowInDays: 7 });
      }),
    ]);
    t.clock.advance({ days: 91 });
    const rotatingIds = rotating.map((k) => k.keyId);
    const doomedIds = doomed.map((k) => k.keyId);

    // Both start (and sweep) at once.
    await Promise.all([runWorker(queued), runWorker(other)]);
    await sweepNow(boss, t.db.app, t.clock.now());
    await waitForCounts(rotatingIds, 'KeyRotated', 'every key rotated', 30_000);
    await waitForCounts(doomedIds, 'KeyDeleted', 'every key deleted', 30_000);
    await sweepNow(boss, t.db.app, t.clock.now());
    await waitUntilSettled(t.db.owner, [...rotatingIds, ...doomedIds]);

    expect([...(await countKeyEvents(t.db.owner, rotatingIds, 'KeyRotated')).values()]).toEqual(rotatingIds.map(() => 1));
    expect([...(await countKeyEvents(t.db.owner, doomedIds, 'KeyDeleted')).values()]).toEqual(doomedIds.map(() => 1));
    for (const id of doomedIds) {
      expect(await materialRows(id)).toBe(0);
      expect((await workerAuditRecords(t.db.owner, id, 'DeleteKey')).filter((r) => r.responseElements?.outcome === 'done')).toHaveLength(1);
    }
    expect(await t.db.owner.selectFrom('aliases').select('alias_name').where('target_key_id', 'in', doomedIds).execute()).toEqual([]);
    for (const id of rotatingIds) expect(await materialRows(id)).toBe(2);
  });

  it('the handlers alone, eight at once from two pools on one due key: one "done", the rest "not-due"', async () => {
    const rotating = await newKey();
    const doomed = await newKey();
    await queued.rotation.enableKeyRotation(ctx(), { keyId: rotating.keyId, rotationPeriodInDays: 90 });
    await queued.kms.scheduleKeyDeletion(ctx(), { keyId: doomed.keyId, pendingWindowInDays: 7 });
    t.clock.advance({ days: 90 });
    const now = t.clock.now();
    const apps = [t.app, other];
    const rotations = await Promise.all(Array.from({ length: 8 }, (_, i) => apps[i % 2]!.rotation.rotateIfDue(rotating.keyId, now)));
    const deletions = await Promise.all(Array.from({ length: 8 }, (_, i) => apps[i % 2]!.rotation.deleteIfDue(doomed.keyId, now)));
    expect(rotations.filter((o) => o === 'done')).toHaveLength(1);
    expect(deletions.filter((o) => o === 'done')).toHaveLength(1);
    expect(await streamTypes(rotating.keyId)).toEqual(['KeyCreated', 'KeyRotationEnabled', 'KeyRotated']);
    expect(await streamTypes(doomed.keyId)).toEqual(['KeyCreated', 'KeyDeletionScheduled', 'KeyDeleted']);
  });
});

// ---------------------------------------------------------------------------

describe('cancelKeyDeletion racing the deletion', () => {
  type Outcome = 'deleted' | 'cancelled';

  /** Checks one key ended whole in one of the two outcomes, and says which. */
  async function outcomeOf(key: { keyId: string; arn: string }, alias: string, blob: Buffer, cancel: PromiseSettledResult<unknown>): Promise<Outcome> {
    const types = await streamTypes(key.keyId);
    const aliasRows = await t.db.owner.selectFrom('aliases').select('alias_name').where('alias_name', '=', alias).execute();
    if (types.includes('KeyDeleted')) {
      expect(types.slice(-2)).toEqual(['KeyDeletionScheduled', 'KeyDeleted']);
      expect(cancel.status).toBe('rejected');
      const reason = (cancel as PromiseRejectedResult).reason as KmsError;
      expect(['KMSInvalidStateException', 'NotFoundException']).toContain(reason.code);
      expect(await materialRows(key.keyId)).toBe(0);
      expect(aliasRows).toEqual([]);
      expect(await rejection(t.app.kms.describeKey(ctx(), { keyId: key.keyId }))).toMatchObject({ code: 'NotFoundException' });
      expect(await rejection(t.app.crypto.decrypt(ctx(), { ciphertextBlob: blob }))).toMatchObject({ code: 'InvalidCiphertextException' });
      return 'deleted';
    }
    expect(types.slice(-2)).toEqual(['KeyDeletionScheduled', 'KeyDeletionCanceled']);
    expect(cancel.status).toBe('fulfilled');
    expect(await materialRows(key.keyId)).toBe(1);
    expect(aliasRows).toHaveLength(1);
    expect((await t.app.kms.describeKey(ctx(), { keyId: key.keyId })).keyMetadata.keyState).toBe('Disabled');
    await t.app.kms.enableKey(ctx(), { keyId: key.keyId });
    expect((await t.app.crypto.decrypt(ctx(), { ciphertextBlob: blob })).plaintext.toString()).toBe(key.keyId);
    return 'cancelled';
  }

  async function doomedKeys(n: number) {
    return Promise.all(
      Array.from({ length: n }, async () => {
        const key = await newKey('cancel race');
        const alias = `alias/cancel-race-${key.keyId}`;
        await queued.aliases.createAlias(ctx(), { aliasName: alias, targetKeyId: key.keyId });
        const blob = (await t.app.crypto.encrypt(ctx(), { keyId: key.keyId, plaintext: Buffer.from(key.keyId) })).ciphertextBlob;
        await queued.kms.scheduleKeyDeletion(ctx(), { keyId: key.keyId, pendingWindowInDays: 7 });
        return { key, alias, blob };
      }),
    );
  }

  it('the job’s handler against the request, 24 times from two pools: deleted or cancelled, never both, never half', { timeout: 40_000 }, async () => {
    const keys = await doomedKeys(24);
    t.clock.advance({ days: 7 });
    const now = t.clock.now();
    // Head starts from 60 ms for the cancel (first key) to 60 ms for the job (last key): the ends are
    // decided before the other side starts (so both outcomes occur), the middle ones race for the
    // key's lock. In waves of 6 pairs, so the pools do not serialize them.
    const jobHeadStart = (i: number) => Math.round(-60 + (120 * i) / (keys.length - 1));
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const results: { cancel: PromiseSettledResult<unknown>; job: PromiseSettledResult<string> }[] = [];
    for (let wave = 0; wave < keys.length; wave += 6) {
      results.push(
        ...(await Promise.all(
          keys.slice(wave, wave + 6).map(async ({ key }, j) => {
            const i = wave + j;
            const [requests, jobs] = i % 2 === 0 ? [t.app, other] : [other, t.app];
            const lead = jobHeadStart(i); // > 0: the job starts first, by that many ms
            const [cancel, job] = await Promise.allSettled([
              sleep(Math.max(lead, 0)).then(() => requests.kms.cancelKeyDeletion(ctx(), { keyId: key.keyId })),
              sleep(Math.max(-lead, 0)).then(() => jobs.rotation.deleteIfDue(key.keyId, now)),
            ]);
            return { cancel, job };
          }),
        )),
      );
    }
    const outcomes: Outcome[] = [];
    for (const [i, { key, alias, blob }] of keys.entries()) {
      const { cancel, job } = results[i]!;
      expect(job.status).toBe('fulfilled');
      const outcome = await outcomeOf(key, alias, blob, cancel);
      expect((job as PromiseFulfilledResult<string>).value).toBe(outcome === 'deleted' ? 'done' : 'not-due');
      outcomes.push(outcome);
    }
    expect(outcomes[0]).toBe('cancelled'); // the cancel 60 ms ahead
    expect(outcomes.at(-1)).toBe('deleted'); // the job 60 ms ahead
  });

  it('the running worker against the request: each key deleted once or cancelled, whole', { timeout: 40_000 }, async () => {
    const keys = await doomedKeys(12);
    const ids = keys.map((k) => k.key.keyId);
    await runWorker(queued);
    await runWorker(other);
    t.clock.advance({ days: 7 });
    await boss.send('keyledger-sweep', null);
    // Cancel everything the moment the workers have started deleting.
    await waitFor(async () => [...(await countKeyEvents(t.db.owner, ids, 'KeyDeleted')).values()].some((n) => n > 0), 'the workers started deleting', 20_000);
    const cancels = await Promise.allSettled(keys.map(({ key }, i) => (i % 2 ? t.app : other).kms.cancelKeyDeletion(ctx(), { keyId: key.keyId })));
    await sweepNow(boss, t.db.app, t.clock.now());
    await waitUntilSettled(t.db.owner, ids);
    const deleted = await countKeyEvents(t.db.owner, ids, 'KeyDeleted');
    for (const [i, { key, alias, blob }] of keys.entries()) {
      expect(deleted.get(key.keyId)).toBeLessThanOrEqual(1);
      await outcomeOf(key, alias, blob, cancels[i]!);
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
