import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KmsError } from '../../src/domain/errors.ts';
import type { RequestContext } from '../../src/service/context.ts';
import { replayProjections } from '../../src/store/replay.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';

let t: TestApp;
let alice: Principal;
let ctx: () => RequestContext;

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('rotation');
  const base = await t.ctx(alice);
  ctx = () => ({ ...base, requestId: crypto.randomUUID() });
});
afterAll(() => t?.close());

const newKey = async () => (await t.app.kms.createKey(ctx(), { description: 'rotating' })).keyMetadata;
const encrypt = async (keyId: string, text: string) => (await t.app.crypto.encrypt(ctx(), { keyId, plaintext: Buffer.from(text) })).ciphertextBlob;
const decrypt = async (blob: Buffer) => (await t.app.crypto.decrypt(ctx(), { ciphertextBlob: blob })).plaintext.toString();
const rejection = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => (e instanceof KmsError ? { code: e.code, message: e.message } : e),
  );

describe('automatic rotation', () => {
  it('rotates once when nextRotationDate comes; every material version still decrypts; new encryptions use the new one', async () => {
    const key = await newKey();
    expect(await rejection(t.app.rotation.enableKeyRotation(ctx(), { keyId: key.keyId, rotationPeriodInDays: 89 }))).toMatchObject({
      code: 'ValidationException',
    });
    await t.app.rotation.enableKeyRotation(ctx(), { keyId: key.keyId, rotationPeriodInDays: 90 });
    const status = await t.app.rotation.getKeyRotationStatus(ctx(), { keyId: key.keyId });
    expect(status).toMatchObject({ keyRotationEnabled: true, rotationPeriodInDays: 90, onDemandRotationStartDate: null });
    expect(status.nextRotationDate!.getTime() - t.clock.now().getTime()).toBe(90 * 86_400_000);

    const before = await encrypt(key.keyId, 'from the first material');
    expect(await t.app.rotation.rotateIfDue(key.keyId, t.clock.now())).toBe('not-due');
    t.clock.advance({ days: 90 });
    expect(await t.app.rotation.rotateIfDue(key.keyId, t.clock.now())).toBe('done');
    expect(await t.app.rotation.rotateIfDue(key.keyId, t.clock.now())).toBe('not-due'); // a retried job does nothing

    const described = (await t.app.kms.describeKey(ctx(), { keyId: key.keyId })).keyMetadata;
    expect(described.currentKeyMaterialId).not.toBe(key.currentKeyMaterialId);
    const after = await encrypt(key.keyId, 'from the second material');
    expect((await t.app.crypto.decrypt(ctx(), { ciphertextBlob: after })).keyMaterialId).toBe(described.currentKeyMaterialId);
    expect(await decrypt(before)).toBe('from the first material');

    const { rotations } = await t.app.rotation.listKeyRotations(ctx(), { keyId: key.keyId });
    expect(rotations).toEqual([
      { keyId: key.arn, keyMaterialId: described.currentKeyMaterialId, rotationDate: t.clock.now(), rotationType: 'AUTOMATIC', keyMaterialState: 'CURRENT' },
    ]);
    const next = await t.app.rotation.getKeyRotationStatus(ctx(), { keyId: key.keyId });
    expect(next.nextRotationDate!.getTime() - t.clock.now().getTime()).toBe(90 * 86_400_000);

    const records = await t.db.owner.selectFrom('events').select('data').where('type', '=', 'AuditRecord').execute();
    const workerRecords = records.map((r) => r.data as any).filter((d) => d.eventName === 'RotateKey');
    expect(workerRecords).toHaveLength(1);
    expect(workerRecords[0]).toMatchObject({
      userIdentity: { type: 'AWSService', invokedBy: 'keyledger-worker' },
      sourceIp: null,
      outcome: 'success',
      accountId: alice.accountId,
    });
  });

  it('does not rotate a disabled key, and refuses to enable rotation on one', async () => {
    const key = await newKey();
    await t.app.rotation.enableKeyRotation(ctx(), { keyId: key.keyId });
    await t.app.kms.disableKey(ctx(), { keyId: key.keyId });
    t.clock.advance({ days: 400 });
    expect(await t.app.rotation.rotateIfDue(key.keyId, t.clock.now())).toBe('not-due');
    expect(await rejection(t.app.rotation.enableKeyRotation(ctx(), { keyId: key.keyId }))).toMatchObject({
      code: 'DisabledException',
      message: `${key.arn} is disabled.`,
    });
  });
});

describe('on-demand rotation', () => {
  it('rotates at once, keeps the automatic schedule, and stops at 25 with LimitExceededException', async () => {
    const key = await newKey();
    await t.app.rotation.enableKeyRotation(ctx(), { keyId: key.keyId, rotationPeriodInDays: 365 });
    const scheduled = (await t.app.rotation.getKeyRotationStatus(ctx(), { keyId: key.keyId })).nextRotationDate;
    const blobs: Buffer[] = [await encrypt(key.keyId, 'v0')];
    for (let i = 1; i <= 25; i++) {
      await t.app.rotation.rotateKeyOnDemand(ctx(), { keyId: key.keyId });
      blobs.push(await encrypt(key.keyId, `v${i}`));
    }
    expect(await rejection(t.app.rotation.rotateKeyOnDemand(ctx(), { keyId: key.keyId }))).toMatchObject({ code: 'LimitExceededException' });
    const status = await t.app.rotation.getKeyRotationStatus(ctx(), { keyId: key.keyId });
    expect(status.nextRotationDate).toEqual(scheduled);
    expect(status.onDemandRotationStartDate).toBeNull(); // AWS shows it only while a rotation is in progress; these completed
    for (const [i, blob] of blobs.entries()) expect(await decrypt(blob)).toBe(`v${i}`);
    const page1 = await t.app.rotation.listKeyRotations(ctx(), { keyId: key.keyId, limit: 20 });
    const page2 = await t.app.rotation.listKeyRotations(ctx(), { keyId: key.keyId, limit: 20, marker: page1.nextMarker });
    expect(page1.rotations).toHaveLength(20);
    expect(page2).toMatchObject({ truncated: false, nextMarker: null });
    expect(new Set([...page1.rotations, ...page2.rotations].map((r) => r.keyMaterialId)).size).toBe(25);
    expect([...page1.rotations, ...page2.rotations].every((r) => r.rotationType === 'ON_DEMAND')).toBe(true);
  });
});

describe('scheduled deletion', () => {
  it('at deletionDate shreds the material, removes aliases and the key, and keeps the history', async () => {
    const key = await newKey();
    await t.app.aliases.createAlias(ctx(), { aliasName: 'alias/doomed', targetKeyId: key.keyId });
    await t.app.rotation.rotateKeyOnDemand(ctx(), { keyId: key.keyId });
    const blob = await encrypt(key.keyId, 'gone soon');
    await t.app.kms.scheduleKeyDeletion(ctx(), { keyId: key.keyId, pendingWindowInDays: 7 });
    expect(await rejection(t.app.crypto.decrypt(ctx(), { ciphertextBlob: blob }))).toMatchObject({ code: 'KMSInvalidStateException' });

    t.clock.advance({ days: 6, hours: 23 });
    expect(await t.app.rotation.deleteIfDue(key.keyId, t.clock.now())).toBe('not-due');
    t.clock.advance({ hours: 1 });
    expect(await t.app.rotation.deleteIfDue(key.keyId, t.clock.now())).toBe('done');
    expect(await t.app.rotation.deleteIfDue(key.keyId, t.clock.now())).toBe('not-due');

    expect(await rejection(t.app.kms.describeKey(ctx(), { keyId: key.keyId }))).toMatchObject({ code: 'NotFoundException' });
    expect(await rejection(t.app.crypto.decrypt(ctx(), { ciphertextBlob: blob }))).toMatchObject({ code: 'InvalidCiphertextException' });
    expect(await rejection(t.app.kms.describeKey(ctx(), { keyId: 'alias/doomed' }))).toMatchObject({ code: 'NotFoundException' });
    expect(await t.db.owner.selectFrom('key_materials').selectAll().where('key_id', '=', key.keyId).execute()).toEqual([]);

    const stream = await t.db.owner
      .selectFrom('events')
      .select(['type', 'data'])
      .where('stream_id', '=', `key-${key.keyId}`)
      .orderBy('stream_version')
      .execute();
    expect(stream.map((e) => e.type)).toEqual(['KeyCreated', 'KeyRotated', 'KeyDeletionScheduled', 'KeyDeleted']);
    expect((stream.at(-1)!.data as any).destroyedKeyMaterialIds).toHaveLength(2);
    expect((await replayProjections(t.db.owner, { verify: true })).differences).toEqual([]);
  });

  it('a cancelled deletion is left alone when its job runs', async () => {
    const key = await newKey();
    await t.app.kms.scheduleKeyDeletion(ctx(), { keyId: key.keyId, pendingWindowInDays: 7 });
    await t.app.kms.cancelKeyDeletion(ctx(), { keyId: key.keyId });
    t.clock.advance({ days: 8 });
    expect(await t.app.rotation.deleteIfDue(key.keyId, t.clock.now())).toBe('not-due');
    expect((await t.app.kms.describeKey(ctx(), { keyId: key.keyId })).keyMetadata.keyState).toBe('Disabled');
  });
});
