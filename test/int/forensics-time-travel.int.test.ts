import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyMetadata } from '../../src/domain/key-metadata.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';

/**
 * Time travel: keyAsOf at each instant of a key's life equals what the live
 * operations (DescribeKey, GetKeyPolicy, ListAliases, GetKeyRotationStatus)
 * answered at that instant, before and after every lifecycle change, deletion
 * included; keyHistory lists the changes with the request behind each.
 */

let t: TestApp;
let admin: Principal;
let other: Principal;
let keyId = '';
let otherKeyId = '';

interface Live {
  label: string;
  at: Date;
  metadata: KeyMetadata | null;
  policy: string | null;
  aliases: string[];
  rotation: { keyRotationEnabled: boolean; rotationPeriodInDays: number | null; nextRotationDate: Date | null } | null;
}
/** What the live operations said right after each change (and, for "before", right before the next). */
const snapshots: Live[] = [];

const T0 = new Date('2026-03-01T09:00:00.000Z');
const hour = (h: number) => new Date(T0.getTime() + h * 3_600_000);
const POLICY_V2 = (accountId: string) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: 'kms:*', Resource: '*' },
      { Sid: 'Auditors', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:user/admin` }, Action: 'kms:Describe*', Resource: '*' },
    ],
  });

async function snapshot(label: string): Promise<void> {
  const at = t.clock.now();
  const deleted = label === 'deleted';
  const metadata = deleted ? null : (await t.app.kms.describeKey(await t.ctx(admin), { keyId })).keyMetadata;
  const policy = deleted ? null : (await t.app.keyPolicies.getKeyPolicy(await t.ctx(admin), { keyId })).policy;
  const aliases = deleted ? [] : (await t.app.aliases.listAliases(await t.ctx(admin), { keyId })).aliases.map((a) => a.aliasName).sort();
  // GetKeyRotationStatus refuses a key pending deletion (as AWS does): nothing live to compare then.
  const rotation = deleted || metadata?.keyState === 'PendingDeletion' ? null : await t.app.rotation.getKeyRotationStatus(await t.ctx(admin), { keyId });
  snapshots.push({ label, at, metadata, policy, aliases, rotation });
}

beforeAll(async () => {
  t = await createTestApp();
  t.clock.set(hour(-1));
  admin = await t.newAccount('time-travel');
  other = await t.newAccount('other');
  otherKeyId = (await t.app.kms.createKey(await t.ctx(admin), { description: 'other target' })).keyMetadata.keyId;

  const change = async (h: number, label: string, run: () => Promise<unknown>) => {
    t.clock.set(hour(h));
    await run();
    await snapshot(label);
  };
  const as = () => t.ctx(admin);
  await change(0, 'created', async () => {
    keyId = (await t.app.kms.createKey(await as(), { description: 'v1' })).keyMetadata.keyId;
  });
  await change(1, 'alias created', async () => t.app.aliases.createAlias(await as(), { aliasName: 'alias/tt', targetKeyId: keyId }));
  await change(2, 'description', async () => t.app.kms.updateKeyDescription(await as(), { keyId, description: 'v2' }));
  await change(3, 'disabled', async () => t.app.kms.disableKey(await as(), { keyId }));
  await change(4, 'enabled', async () => t.app.kms.enableKey(await as(), { keyId }));
  await change(5, 'rotation enabled', async () => t.app.rotation.enableKeyRotation(await as(), { keyId, rotationPeriodInDays: 90 }));
  await change(6, 'rotated', async () => t.app.rotation.rotateKeyOnDemand(await as(), { keyId }));
  await change(7, 'alias moved', async () => {
    await t.app.aliases.updateAlias(await as(), { aliasName: 'alias/tt', targetKeyId: otherKeyId });
    await t.app.aliases.createAlias(await as(), { aliasName: 'alias/second', targetKeyId: keyId });
  });
  await change(8, 'policy', async () => t.app.keyPolicies.putKeyPolicy(await as(), { keyId, policy: POLICY_V2(admin.accountId) }));
  await change(9, 'tagged', async () => t.app.tags.tagResource(await as(), { keyId, tags: [{ tagKey: 'team', tagValue: 'payments' }] }));
  await change(10, 'deletion scheduled', async () => t.app.kms.scheduleKeyDeletion(await as(), { keyId, pendingWindowInDays: 7 }));
  await change(10 + 8 * 24, 'deleted', async () => {
    expect(await t.app.rotation.deleteIfDue(keyId, t.clock.now())).toBe('done');
  });
  t.clock.set(hour(24 * 30));
});
afterAll(() => t?.close());

const KEY_AS_OF = `query($k: String!, $at: DateTime!) { keyAsOf(keyId: $k, asOf: $at) {
  asOf deleted aliases policy version lastChangedAt
  tags { tagKey tagValue }
  rotation { enabled periodInDays nextRotationDate onDemandRotations keyMaterialIds }
  keyMetadata {
    awsAccountId keyId arn creationDate enabled description keyUsage keyState deletionDate origin keyManager keySpec multiRegion
    pendingDeletionWindowInDays currentKeyMaterialId
  }
} }`;

async function keyAsOf(k: string, at: Date, as: Principal = admin) {
  return t.gql(as, KEY_AS_OF, { k, at: at.toISOString() });
}

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);

describe('keyAsOf', () => {
  it('before the key existed: NotFoundException', async () => {
    const r = await keyAsOf(keyId, new Date(hour(0).getTime() - 1));
    expect(r.errors?.[0]?.extensions?.code).toBe('NotFoundException');
  });

  it('at and just before each change equals what the live operations said then', async () => {
    for (const [i, live] of snapshots.entries()) {
      if (live.label === 'deleted') continue;
      const r = await keyAsOf(keyId, live.at);
      expect(r.errors, live.label).toBeUndefined();
      const k = r.data.keyAsOf;
      const m = live.metadata!;
      expect(k.keyMetadata, live.label).toEqual({
        awsAccountId: m.awsAccountId,
        keyId: m.keyId,
        arn: m.arn,
        creationDate: iso(m.creationDate),
        enabled: m.enabled,
        description: m.description,
        keyUsage: m.keyUsage,
        keyState: m.keyState,
        deletionDate: iso(m.deletionDate),
        origin: m.origin,
        keyManager: m.keyManager,
        keySpec: m.keySpec,
        multiRegion: m.multiRegion,
        pendingDeletionWindowInDays: m.pendingDeletionWindowInDays,
        currentKeyMaterialId: m.currentKeyMaterialId,
      });
      expect(k.policy, live.label).toBe(live.policy);
      expect(k.aliases, live.label).toEqual(live.aliases);
      if (live.rotation) {
        expect(k.rotation.enabled, live.label).toBe(live.rotation.keyRotationEnabled);
        expect(k.rotation.periodInDays, live.label).toBe(live.rotation.rotationPeriodInDays);
        expect(k.rotation.nextRotationDate, live.label).toBe(iso(live.rotation.nextRotationDate));
      }
      expect(k.deleted).toBe(false);
      // A millisecond before this change, the state was the previous snapshot's.
      if (i > 0) {
        const previous = snapshots[i - 1]!;
        const before = (await keyAsOf(keyId, new Date(live.at.getTime() - 1))).data.keyAsOf;
        expect(before.keyMetadata.description, `before ${live.label}`).toBe(previous.metadata!.description);
        expect(before.keyMetadata.keyState, `before ${live.label}`).toBe(previous.metadata!.keyState);
        expect(before.aliases, `before ${live.label}`).toEqual(previous.aliases);
        expect(before.policy, `before ${live.label}`).toBe(previous.policy);
        if (previous.rotation) expect(before.rotation.enabled, `before ${live.label}`).toBe(previous.rotation.keyRotationEnabled);
        expect(before.keyMetadata.currentKeyMaterialId, `before ${live.label}`).toBe(previous.metadata!.currentKeyMaterialId);
      }
    }
  });

  it('shows each change at its instant', async () => {
    const at = async (h: number) => (await keyAsOf(keyId, hour(h))).data.keyAsOf;
    expect((await at(0)).keyMetadata.description).toBe('v1');
    expect((await at(2)).keyMetadata.description).toBe('v2');
    expect((await at(3)).keyMetadata).toMatchObject({ keyState: 'Disabled', enabled: false });
    expect((await at(4)).keyMetadata).toMatchObject({ keyState: 'Enabled', enabled: true });
    const rotated = await at(6);
    expect(rotated.rotation).toMatchObject({ enabled: true, periodInDays: 90, onDemandRotations: 1 });
    expect(rotated.rotation.keyMaterialIds).toHaveLength(2);
    expect(rotated.keyMetadata.currentKeyMaterialId).toBe(rotated.rotation.keyMaterialIds[1]);
    expect((await at(6)).aliases).toEqual(['alias/tt']);
    expect((await at(7)).aliases).toEqual(['alias/second']);
    expect((await at(7.5)).policy).not.toContain('Auditors');
    expect((await at(8)).policy).toContain('Auditors');
    expect((await at(9)).tags).toEqual([{ tagKey: 'team', tagValue: 'payments' }]);
    expect((await at(10)).keyMetadata).toMatchObject({
      keyState: 'PendingDeletion',
      deletionDate: hour(10 + 7 * 24).toISOString(),
    });
  });

  it('works for a deleted key: its history remains', async () => {
    const gone = (await keyAsOf(keyId, hour(24 * 29))).data.keyAsOf;
    expect(gone.deleted).toBe(true);
    expect(gone.keyMetadata).toMatchObject({ enabled: false, currentKeyMaterialId: null });
    expect(gone.aliases).toEqual([]);
    // And before deletion, as it was.
    expect((await keyAsOf(keyId, hour(9))).data.keyAsOf.deleted).toBe(false);
    // Today's DescribeKey no longer finds it.
    const live = await t.gql(admin, `query($k: String!) { describeKey(input: { keyId: $k }) { keyMetadata { keyId } } }`, { k: keyId });
    expect(live.errors?.[0]?.extensions?.code).toBe('NotFoundException');
  });

  it('resolves an alias as it was at that instant, and by key ARN', async () => {
    expect((await keyAsOf('alias/tt', hour(6))).data.keyAsOf.keyMetadata.keyId).toBe(keyId);
    expect((await keyAsOf('alias/tt', hour(7))).data.keyAsOf.keyMetadata.keyId).toBe(otherKeyId);
    expect((await keyAsOf(`arn:aws:kms:us-east-1:${admin.accountId}:alias/second`, hour(8))).data.keyAsOf.keyMetadata.keyId).toBe(keyId);
    expect((await keyAsOf('alias/tt', hour(0.5))).errors?.[0]?.extensions?.code).toBe('NotFoundException');
    // alias/second was deleted with the key.
    expect((await keyAsOf('alias/second', hour(24 * 29))).errors?.[0]?.extensions?.code).toBe('NotFoundException');
    const arn = `arn:aws:kms:us-east-1:${admin.accountId}:key/${keyId}`;
    expect((await keyAsOf(arn, hour(2))).data.keyAsOf.keyMetadata.description).toBe('v2');
  });

  it('another account cannot look at the key, by id, ARN or alias', async () => {
    for (const k of [keyId, `arn:aws:kms:us-east-1:${admin.accountId}:key/${keyId}`, `arn:aws:kms:us-east-1:${admin.accountId}:alias/tt`, 'alias/tt']) {
      const r = await keyAsOf(k, hour(5), other);
      expect(r.errors?.[0]?.extensions?.code, k).toBe('NotFoundException');
      expect(r.data?.keyAsOf ?? null).toBeNull();
    }
  });
});

const HISTORY =
  `query($k: String!) { keyHistory(keyId: $k) { keyId arn entries { type recordedAt ` +
  `streamId streamVersion data request { eventName principalArn requestId } } } }`;

describe('keyHistory', () => {
  it('lists the lifecycle events with alias moves and the request behind each', async () => {
    const r = await t.gql(admin, HISTORY, { k: keyId });
    expect(r.errors).toBeUndefined();
    const h = r.data.keyHistory;
    expect(h.keyId).toBe(keyId);
    const entries = h.entries as {
      type: string;
      recordedAt: string;
      data: Record<string, unknown>;
      request: { eventName: string; principalArn: string | null } | null;
    }[];
    expect(entries.map((e) => [e.type, e.request?.eventName])).toEqual([
      ['KeyCreated', 'CreateKey'],
      ['AliasCreated', 'CreateAlias'],
      ['KeyDescriptionUpdated', 'UpdateKeyDescription'],
      ['KeyDisabled', 'DisableKey'],
      ['KeyEnabled', 'EnableKey'],
      ['KeyRotationEnabled', 'EnableKeyRotation'],
      ['KeyRotated', 'RotateKeyOnDemand'],
      ['AliasUpdated', 'UpdateAlias'],
      ['AliasCreated', 'CreateAlias'],
      ['KeyPolicyPut', 'PutKeyPolicy'],
      ['KeyTagged', 'TagResource'],
      ['KeyDeletionScheduled', 'ScheduleKeyDeletion'],
      ['AliasDeleted', 'DeleteKey'],
      ['KeyDeleted', 'DeleteKey'],
    ]);
    expect(entries[0]!.recordedAt).toBe(hour(0).toISOString());
    expect(entries[0]!.request!.principalArn).toBe(admin.principalArn);
    // Events hold ids of key material, never material.
    const text = JSON.stringify(entries.map((e) => e.data));
    expect(text).not.toMatch(/wrapped|plaintext|secret/i);
    expect(entries[0]!.data['keyMaterialId']).toMatch(/^[0-9a-f]{64}$/);
  });

  it("is NotFoundException for another account's key", async () => {
    const r = await t.gql(other, HISTORY, { k: keyId });
    expect(r.errors?.[0]?.extensions?.code).toBe('NotFoundException');
  });
});
