import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestContext } from '../../src/service/context.ts';
import { createTestApp, type GqlResult, type Principal, type TestApp } from '../support/app.ts';

/** The five rotation operations over GraphQL: shapes, AWS errors, pagination, and their audit records. */

let t: TestApp;
let alice: Principal;
let mallory: Principal;
let aliceCtx: () => RequestContext;

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('alice-co');
  mallory = await t.newAccount('mallory-co');
  const base = await t.ctx(alice);
  aliceCtx = () => ({ ...base, requestId: crypto.randomUUID() });
});
afterAll(() => t?.close());

const CREATE = `mutation { createKey(input: { description: "rotating" }) { keyMetadata { keyId arn currentKeyMaterialId } } }`;
const ENABLE = `mutation($keyId: String!, $days: Int) { enableKeyRotation(input: { keyId: $keyId, rotationPeriodInDays: $days }) { requestId } }`;
const DISABLE = `mutation($keyId: String!) { disableKeyRotation(input: { keyId: $keyId }) { requestId } }`;
const ON_DEMAND = `mutation($keyId: String!) { rotateKeyOnDemand(input: { keyId: $keyId }) { keyId } }`;
const STATUS = `query($keyId: String!) { getKeyRotationStatus(input: { keyId: $keyId }) { keyId keyRotationEnabled rotationPeriodInDays nextRotationDate } }`;
const LIST = `query($keyId: String!, $limit: Int, $marker: String) {
  listKeyRotations(input: { keyId: $keyId, limit: $limit, marker: $marker }) {
    rotations { keyId keyMaterialId rotationDate rotationType } nextMarker truncated
  }
}`;
const DESCRIBE = `query($keyId: String!) { describeKey(input: { keyId: $keyId }) { keyMetadata { currentKeyMaterialId keyState } } }`;

interface Key {
  keyId: string;
  arn: string;
  currentKeyMaterialId: string;
}

async function createKey(as: Principal = alice): Promise<Key> {
  const r = await t.gql(as, CREATE);
  expect(r.errors).toBeUndefined();
  return r.data.createKey.keyMetadata as Key;
}

function ok<T>(r: GqlResult<T>): T {
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data as T;
}

/** The AWS error of a failed request: its code, message, and that it names its request. */
function failure(r: GqlResult<unknown>): { code: string | undefined; message: string } {
  expect(r.errors, 'expected an error').toHaveLength(1);
  const e = r.errors![0]!;
  expect(e.extensions?.requestId).toMatch(/^[0-9a-f-]{36}$/);
  return { code: e.extensions?.code, message: e.message };
}

async function auditRecordOf(requestId: string): Promise<any> {
  const row = await t.db.owner.selectFrom('events').select('data').where('stream_id', '=', `request-${requestId}`).executeTakeFirst();
  return row?.data;
}

describe('enableKeyRotation, getKeyRotationStatus, disableKeyRotation', () => {
  it('a new key reports rotation off', async () => {
    const key = await createKey();
    expect(ok(await t.gql(alice, STATUS, { keyId: key.keyId }))).toEqual({
      getKeyRotationStatus: { keyId: key.arn, keyRotationEnabled: false, rotationPeriodInDays: null, nextRotationDate: null },
    });
  });

  it('enables with the default period of 365 days from the clock, then disables', async () => {
    const key = await createKey();
    const enabled = ok(await t.gql(alice, ENABLE, { keyId: key.keyId })) as { enableKeyRotation: { requestId: string } };
    const now = t.clock.now();
    expect(ok(await t.gql(alice, STATUS, { keyId: key.arn }))).toEqual({
      getKeyRotationStatus: {
        keyId: key.arn,
        keyRotationEnabled: true,
        rotationPeriodInDays: 365,
        nextRotationDate: new Date(now.getTime() + 365 * 86_400_000).toISOString(),
      },
    });
    expect(await auditRecordOf(enabled.enableKeyRotation.requestId)).toMatchObject({
      eventName: 'EnableKeyRotation',
      outcome: 'success',
      userIdentity: { principalArn: alice.principalArn },
      requestParameters: { keyId: key.keyId },
      resources: [{ arn: key.arn }],
    });

    ok(await t.gql(alice, DISABLE, { keyId: key.keyId }));
    expect(ok(await t.gql(alice, STATUS, { keyId: key.keyId }))).toMatchObject({
      getKeyRotationStatus: { keyRotationEnabled: false, nextRotationDate: null },
    });
    // disabling again is a no-op, not an error
    ok(await t.gql(alice, DISABLE, { keyId: key.keyId }));
  });

  it('accepts the bounds 90 and 2560, by key id; an alias is no key id here (AWS: key id or key ARN only)', async () => {
    const key = await createKey();
    ok(
      await t.gql(alice, `mutation($a: String!, $k: String!) { createAlias(input: { aliasName: $a, targetKeyId: $k }) { requestId } }`, {
        a: `alias/rot-${key.keyId}`,
        k: key.keyId,
      }),
    );
    expect(failure(await t.gql(alice, ENABLE, { keyId: `alias/rot-${key.keyId}`, days: 90 }))).toEqual({
      code: 'NotFoundException',
      message: `Invalid keyId 'alias/rot-${key.keyId}'`,
    });
    for (const days of [90, 2560]) {
      ok(await t.gql(alice, ENABLE, { keyId: key.keyId, days }));
      const status = ok(await t.gql(alice, STATUS, { keyId: key.keyId })) as any;
      expect(status.getKeyRotationStatus.rotationPeriodInDays).toBe(days);
      expect(Date.parse(status.getKeyRotationStatus.nextRotationDate) - t.clock.now().getTime()).toBe(days * 86_400_000);
    }
  });

  it('refuses rotationPeriodInDays 89 and 2561 with ValidationException in AWS wording, and records the refusal', async () => {
    const key = await createKey();
    const low = await t.gql(alice, ENABLE, { keyId: key.keyId, days: 89 });
    expect(failure(low)).toEqual({
      code: 'ValidationException',
      message:
        "1 validation error detected: Value '89' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90",
    });
    expect(failure(await t.gql(alice, ENABLE, { keyId: key.keyId, days: 2561 }))).toEqual({
      code: 'ValidationException',
      message:
        "1 validation error detected: Value '2561' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value less than or equal to 2560",
    });
    expect(await auditRecordOf(low.errors![0]!.extensions!.requestId!)).toMatchObject({
      eventName: 'EnableKeyRotation',
      outcome: 'failure',
      errorCode: 'ValidationException',
      requestParameters: { keyId: key.keyId, rotationPeriodInDays: 89 },
    });
    expect(ok(await t.gql(alice, STATUS, { keyId: key.keyId }))).toMatchObject({ getKeyRotationStatus: { keyRotationEnabled: false } });
  });

  it('DisabledException on a disabled key for enable, disable and on-demand rotation; status still readable', async () => {
    const key = await createKey();
    ok(await t.gql(alice, `mutation($k: String!) { disableKey(input: { keyId: $k }) { requestId } }`, { k: key.keyId }));
    const disabled = { code: 'DisabledException', message: `${key.arn} is disabled.` };
    expect(failure(await t.gql(alice, ENABLE, { keyId: key.keyId }))).toEqual(disabled);
    expect(failure(await t.gql(alice, DISABLE, { keyId: key.keyId }))).toEqual(disabled);
    expect(failure(await t.gql(alice, ON_DEMAND, { keyId: key.keyId }))).toEqual(disabled);
    expect(ok(await t.gql(alice, STATUS, { keyId: key.keyId }))).toMatchObject({ getKeyRotationStatus: { keyRotationEnabled: false } });
    expect(ok(await t.gql(alice, LIST, { keyId: key.keyId }))).toEqual({ listKeyRotations: { rotations: [], nextMarker: null, truncated: false } });
  });

  it('KMSInvalidStateException on a key pending deletion, for all five', async () => {
    const key = await createKey();
    ok(await t.gql(alice, `mutation($k: String!) { scheduleKeyDeletion(input: { keyId: $k, pendingWindowInDays: 7 }) { keyId } }`, { k: key.keyId }));
    const pending = { code: 'KMSInvalidStateException', message: `${key.arn} is pending deletion.` };
    for (const doc of [ENABLE, DISABLE, ON_DEMAND, STATUS, LIST]) {
      expect(failure(await t.gql(alice, doc, { keyId: key.keyId })), doc).toEqual(pending);
    }
  });

  it("NotFoundException for another account's key, by id or ARN, exactly as for a missing one", async () => {
    const key = await createKey(alice);
    ok(await t.gql(alice, ENABLE, { keyId: key.keyId }));
    // By id the key is looked up in mallory's account: the answer names mallory's ARN, as for any missing id.
    // By ARN the answer echoes what mallory sent, and says nothing more.
    const expected = [
      [key.keyId, `Key 'arn:aws:kms:us-east-1:${mallory.accountId}:key/${key.keyId}' does not exist`],
      [key.arn, `Key '${key.arn}' does not exist`],
    ] as const;
    for (const [ref, message] of expected) {
      for (const doc of [ENABLE, DISABLE, ON_DEMAND, STATUS, LIST]) {
        expect(failure(await t.gql(mallory, doc, { keyId: ref })), doc).toEqual({ code: 'NotFoundException', message });
      }
    }
    const missingId = crypto.randomUUID();
    expect(failure(await t.gql(mallory, STATUS, { keyId: missingId }))).toEqual({
      code: 'NotFoundException',
      message: `Key 'arn:aws:kms:us-east-1:${mallory.accountId}:key/${missingId}' does not exist`,
    });
    // mallory changed nothing
    expect(ok(await t.gql(alice, STATUS, { keyId: key.keyId }))).toMatchObject({ getKeyRotationStatus: { keyRotationEnabled: true } });
    expect(ok(await t.gql(alice, LIST, { keyId: key.keyId }))).toMatchObject({ listKeyRotations: { rotations: [] } });
  });

  it('without credentials nothing runs', async () => {
    const key = await createKey();
    const r = await t.gql(null, ON_DEMAND, { keyId: key.keyId });
    expect(r.errors?.[0]?.extensions?.code).toBe('MissingAuthenticationTokenException');
    expect(ok(await t.gql(alice, LIST, { keyId: key.keyId }))).toMatchObject({ listKeyRotations: { rotations: [] } });
  });
});

describe('rotateKeyOnDemand and listKeyRotations', () => {
  it('rotates now: answers the key ARN, describeKey shows the new material, the list the rotation; none is in progress', async () => {
    const key = await createKey();
    ok(await t.gql(alice, ENABLE, { keyId: key.keyId, days: 180 }));
    const before = ok(await t.gql(alice, STATUS, { keyId: key.keyId })) as any;
    const r = ok(await t.gql(alice, ON_DEMAND, { keyId: key.keyId })) as any;
    expect(r.rotateKeyOnDemand.keyId).toBe(key.arn);
    const described = (ok(await t.gql(alice, DESCRIBE, { keyId: key.keyId })) as any).describeKey.keyMetadata;
    expect(described.currentKeyMaterialId).toMatch(/^[0-9a-f]{64}$/);
    expect(described.currentKeyMaterialId).not.toBe(key.currentKeyMaterialId);
    const status = (ok(await t.gql(alice, STATUS, { keyId: key.keyId })) as any).getKeyRotationStatus;
    expect(status).toEqual({
      keyId: key.arn,
      keyRotationEnabled: true,
      rotationPeriodInDays: 180,
      nextRotationDate: before.getKeyRotationStatus.nextRotationDate, // the automatic schedule is kept
    });
    expect(ok(await t.gql(alice, LIST, { keyId: key.arn }))).toEqual({
      listKeyRotations: {
        rotations: [{ keyId: key.arn, keyMaterialId: described.currentKeyMaterialId, rotationDate: t.clock.now().toISOString(), rotationType: 'ON_DEMAND' }],
        nextMarker: null,
        truncated: false,
      },
    });
  });

  it('the 26th on-demand rotation is LimitExceededException with AWS’s message, and changes nothing', async () => {
    const key = await createKey();
    for (let i = 0; i < 24; i++) await t.app.rotation.rotateKeyOnDemand(aliceCtx(), { keyId: key.keyId });
    ok(await t.gql(alice, ON_DEMAND, { keyId: key.keyId })); // the 25th, over GraphQL
    const current = (ok(await t.gql(alice, DESCRIBE, { keyId: key.keyId })) as any).describeKey.keyMetadata.currentKeyMaterialId;
    const refused = await t.gql(alice, ON_DEMAND, { keyId: key.keyId });
    expect(failure(refused)).toEqual({
      code: 'LimitExceededException',
      message: `The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: ${key.arn}`,
    });
    expect(await auditRecordOf(refused.errors![0]!.extensions!.requestId!)).toMatchObject({
      eventName: 'RotateKeyOnDemand',
      outcome: 'failure',
      errorCode: 'LimitExceededException',
    });
    expect((ok(await t.gql(alice, DESCRIBE, { keyId: key.keyId })) as any).describeKey.keyMetadata.currentKeyMaterialId).toBe(current);
    // automatic rotation is still allowed
    ok(await t.gql(alice, ENABLE, { keyId: key.keyId, days: 90 }));
  });

  it('pages through rotations oldest first with opaque markers, with AWS limits', async () => {
    const key = await createKey();
    const materials: string[] = [];
    for (let i = 0; i < 5; i++) {
      t.clock.advance({ minutes: 1 });
      await t.app.rotation.rotateKeyOnDemand(aliceCtx(), { keyId: key.keyId });
      materials.push((await t.app.kms.describeKey(aliceCtx(), { keyId: key.keyId })).keyMetadata.currentKeyMaterialId!);
    }
    const seen: { keyMaterialId: string; rotationDate: string }[] = [];
    let marker: string | null = null;
    const pages: number[] = [];
    do {
      const data = ok(await t.gql(alice, LIST, { keyId: key.keyId, limit: 2, marker })) as any;
      const p = data.listKeyRotations;
      pages.push(p.rotations.length);
      seen.push(...p.rotations);
      expect(p.truncated).toBe(p.nextMarker !== null);
      marker = p.nextMarker;
    } while (marker !== null && pages.length < 10);
    expect(pages).toEqual([2, 2, 1]);
    expect(seen.map((r) => r.keyMaterialId)).toEqual(materials);
    const dates = seen.map((r) => Date.parse(r.rotationDate));
    expect(dates).toEqual([...dates].sort((a, b) => a - b));

    const all = ok(await t.gql(alice, LIST, { keyId: key.keyId, limit: 5 })) as any;
    expect(all.listKeyRotations).toMatchObject({ truncated: false, nextMarker: null });
    expect(all.listKeyRotations.rotations).toHaveLength(5);

    expect(failure(await t.gql(alice, LIST, { keyId: key.keyId, limit: 0 }))).toEqual({
      code: 'ValidationException',
      message: "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    });
    expect(failure(await t.gql(alice, LIST, { keyId: key.keyId, limit: 1001 })).code).toBe('ValidationException');
    expect(failure(await t.gql(alice, LIST, { keyId: key.keyId, marker: 'not-a-marker' })).code).toBe('InvalidMarkerException');
  });
});
