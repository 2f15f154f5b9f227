import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type GqlResult, type Principal, type TestApp } from '../support/app.ts';

let t: TestApp;
let alice: Principal;
let mallory: Principal;

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('alice-co');
  mallory = await t.newAccount('mallory-co');
});
afterAll(() => t?.close());

const CREATE =
  `mutation($input: CreateKeyInput) { createKey(input: $input) { keyMetadata { keyId arn keyState enabled ` +
  `description keySpec keyUsage origin keyManager awsAccountId creationDate encryptionAlgorithms } } }`;
const DESCRIBE =
  `query($keyId: String!) { describeKey(input: { keyId: $keyId }) ` +
  `{ keyMetadata { keyId arn keyState enabled description deletionDate pendingDeletionWindowInDays } } }`;

async function createKey(as: Principal, input: Record<string, unknown> = {}) {
  const r = await t.gql(as, CREATE, { input });
  expect(r.errors).toBeUndefined();
  return r.data.createKey.keyMetadata as { keyId: string; arn: string; keyState: string };
}

const errorOf = (r: { errors?: { extensions?: { code?: string; requestId?: string }; message: string }[] }) => r.errors?.[0];

describe('createKey and describeKey', () => {
  it('creates an Enabled symmetric key in the caller account and describes it by id, ARN, alias and alias ARN', async () => {
    const r = await t.gql(alice, CREATE, { input: { description: 'orders', tags: [{ tagKey: 'team', tagValue: 'payments' }] } });
    expect(r.errors).toBeUndefined();
    const meta = r.data.createKey.keyMetadata;
    expect(meta).toMatchObject({
      keyState: 'Enabled',
      enabled: true,
      description: 'orders',
      keySpec: 'SYMMETRIC_DEFAULT',
      keyUsage: 'ENCRYPT_DECRYPT',
      origin: 'AWS_KMS',
      keyManager: 'CUSTOMER',
      awsAccountId: alice.accountId,
      encryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      creationDate: '2026-03-01T09:00:00.000Z',
    });
    expect(meta.arn).toBe(`arn:aws:kms:us-east-1:${alice.accountId}:key/${meta.keyId}`);

    const alias = `alias/orders-${meta.keyId.slice(0, 8)}`;
    const created = await t.gql(alice, `mutation($a: String!, $k: String!) { createAlias(input: { aliasName: $a, targetKeyId: $k }) { requestId } }`, {
      a: alias,
      k: meta.keyId,
    });
    expect(created.errors).toBeUndefined();
    for (const ref of [meta.keyId, meta.arn, alias, `arn:aws:kms:us-east-1:${alice.accountId}:${alias}`]) {
      const d = await t.gql(alice, DESCRIBE, { keyId: ref });
      expect(d.errors, ref).toBeUndefined();
      expect(d.data.describeKey.keyMetadata.keyId).toBe(meta.keyId);
    }
  });

  it('rejects bad input with AWS ValidationException wording and a request id', async () => {
    const r = await t.gql(alice, CREATE, { input: { description: 'x'.repeat(8193) } });
    const e = errorOf(r);
    expect(e?.extensions?.code).toBe('ValidationException');
    expect(e?.message).toMatch(
      /^1 validation error detected: Value 'x+' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192$/,
    );
    expect(e?.extensions?.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it(
    'creates asymmetric keys (issue 13), and refuses what AWS refuses outside China (SM2) ' +
      'and what keyledger does not offer (EXTERNAL origin for an Ed25519 or ML-DSA key)',
    async () => {
      const rsa = await t.gql(alice, CREATE, { input: { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' } });
      expect(rsa.errors).toBeUndefined();
      expect((rsa.data as any).createKey.keyMetadata).toMatchObject({ keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY', encryptionAlgorithms: null });
      const sm2 = await t.gql(alice, CREATE, { input: { keySpec: 'SM2', keyUsage: 'SIGN_VERIFY' } });
      expect(errorOf(sm2)?.extensions?.code).toBe('UnsupportedOperationException');
      for (const keySpec of ['ECC_NIST_EDWARDS25519', 'ML_DSA_65']) {
        const external = await t.gql(alice, CREATE, { input: { origin: 'EXTERNAL', keySpec, keyUsage: 'SIGN_VERIFY' } });
        expect(errorOf(external)?.extensions?.code).toBe('UnsupportedOperationException');
      }
      const importedPair = await t.gql(alice, CREATE, { input: { origin: 'EXTERNAL', keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY' } });
      expect((importedPair.data as any).createKey.keyMetadata).toMatchObject({ keySpec: 'ECC_NIST_P256', keyState: 'PendingImport' });
      const pendingImport = await t.gql(alice, CREATE, { input: { origin: 'EXTERNAL' } });
      expect((pendingImport.data as any).createKey.keyMetadata).toMatchObject({ keyState: 'PendingImport', enabled: false });
    },
  );

  it('answers NotFoundException for a missing key, a malformed id, and an unknown alias', async () => {
    const missing = '11111111-2222-3333-4444-555555555555';
    const r1 = await t.gql(alice, DESCRIBE, { keyId: missing });
    expect(errorOf(r1)).toMatchObject({
      message: `Key 'arn:aws:kms:us-east-1:${alice.accountId}:key/${missing}' does not exist`,
      extensions: { code: 'NotFoundException' },
    });
    expect(errorOf(await t.gql(alice, DESCRIBE, { keyId: 'not-a-key' }))?.extensions?.code).toBe('NotFoundException');
    const r3 = await t.gql(alice, DESCRIBE, { keyId: 'alias/nope' });
    expect(errorOf(r3)?.message).toBe(`Alias arn:aws:kms:us-east-1:${alice.accountId}:alias/nope is not found.`);
  });
});

describe('account isolation', () => {
  it("hides another account's key: describe, disable and alias are NotFoundException, and listKeys never shows it", async () => {
    const key = await createKey(alice, { description: 'secret project' });
    for (const ref of [key.keyId, key.arn]) {
      expect(errorOf(await t.gql(mallory, DESCRIBE, { keyId: ref }))?.extensions?.code).toBe('NotFoundException');
    }
    const disable = await t.gql(mallory, `mutation($k: String!) { disableKey(input: { keyId: $k }) { requestId } }`, { k: key.arn });
    expect(errorOf(disable)?.extensions?.code).toBe('NotFoundException');
    const alias = await t.gql(mallory, `mutation($k: String!) { createAlias(input: { aliasName: "alias/steal", targetKeyId: $k }) { requestId } }`, {
      k: key.keyId,
    });
    expect(errorOf(alias)?.extensions?.code).toBe('NotFoundException');
    const list = await t.gql(mallory, `{ listKeys(input: { limit: 1000 }) { keys { keyId } } }`);
    expect(list.data.listKeys.keys.map((k: { keyId: string }) => k.keyId)).not.toContain(key.keyId);
    // The key is untouched.
    const d = await t.gql(alice, DESCRIBE, { keyId: key.keyId });
    expect(d.data.describeKey.keyMetadata.keyState).toBe('Enabled');
  });
});

describe('lifecycle', () => {
  it('disables, enables, schedules and cancels deletion following the key-state table', async () => {
    const key = await createKey(alice);
    const run = (op: string, extra = '') => t.gql(alice, `mutation($k: String!) { ${op}(input: { keyId: $k ${extra} }) { __typename } }`, { k: key.keyId });
    const state = async () => (await t.gql(alice, DESCRIBE, { keyId: key.keyId })).data.describeKey.keyMetadata;

    expect((await run('disableKey')).errors).toBeUndefined();
    expect(await state()).toMatchObject({ keyState: 'Disabled', enabled: false });
    expect((await run('disableKey')).errors).toBeUndefined(); // idempotent, as in AWS
    expect((await run('enableKey')).errors).toBeUndefined();
    expect((await state()).keyState).toBe('Enabled');

    const cancelEarly = await run('cancelKeyDeletion');
    expect(errorOf(cancelEarly)).toMatchObject({ message: `${key.arn} is not pending deletion.`, extensions: { code: 'KMSInvalidStateException' } });

    const tooShort = await run('scheduleKeyDeletion', 'pendingWindowInDays: 6');
    expect(errorOf(tooShort)?.message).toBe(
      "1 validation error detected: Value '6' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value greater than or equal to 7",
    );

    const scheduled = await t.gql(
      alice,
      `mutation($k: String!) { scheduleKeyDeletion(input: { keyId: $k, pendingWindowInDays: 7 }) { keyId deletionDate keyState pendingWindowInDays } }`,
      { k: key.keyId },
    );
    expect(scheduled.data.scheduleKeyDeletion).toEqual({
      keyId: key.arn,
      deletionDate: '2026-03-08T09:00:00.000Z',
      keyState: 'PendingDeletion',
      pendingWindowInDays: 7,
    });
    expect(await state()).toMatchObject({
      keyState: 'PendingDeletion',
      enabled: false,
      deletionDate: '2026-03-08T09:00:00.000Z',
      // As AWS: a key of one Region pending deletion shows its DeletionDate, not the window (ScheduleKeyDeletion's answer has it).
      pendingDeletionWindowInDays: null,
    });

    for (const op of ['enableKey', 'disableKey']) {
      expect(errorOf(await run(op))).toMatchObject({ message: `${key.arn} is pending deletion.`, extensions: { code: 'KMSInvalidStateException' } });
    }
    const describeWhilePending = await t.gql(alice, `mutation($k: String!) { updateKeyDescription(input: { keyId: $k, description: "x" }) { requestId } }`, {
      k: key.keyId,
    });
    expect(errorOf(describeWhilePending)?.extensions?.code).toBe('KMSInvalidStateException');

    const cancelled = await t.gql(alice, `mutation($k: String!) { cancelKeyDeletion(input: { keyId: $k }) { keyId } }`, { k: key.keyId });
    expect(cancelled.data.cancelKeyDeletion.keyId).toBe(key.arn);
    expect(await state()).toMatchObject({ keyState: 'Disabled', deletionDate: null, pendingDeletionWindowInDays: null });
  });

  it('updates the description', async () => {
    const key = await createKey(alice, { description: 'old' });
    const r = await t.gql(alice, `mutation($k: String!) { updateKeyDescription(input: { keyId: $k, description: "new" }) { requestId } }`, { k: key.keyId });
    expect(r.errors).toBeUndefined();
    expect((await t.gql(alice, DESCRIBE, { keyId: key.keyId })).data.describeKey.keyMetadata.description).toBe('new');
  });
});

describe('tags', () => {
  const TAG = `mutation($k: String!, $tags: [TagInput!]!) { tagResource(input: { keyId: $k, tags: $tags }) { requestId } }`;
  const LIST =
    `query($k: String!, $limit: Int, $marker: String) { listResourceTags(input: { keyId: $k, ` +
    `limit: $limit, marker: $marker }) { tags { tagKey tagValue } nextMarker truncated } }`;

  it('adds, overwrites, removes and pages tags', async () => {
    const key = await createKey(alice, { tags: [{ tagKey: 'a', tagValue: '1' }] });
    expect(
      (
        await t.gql(alice, TAG, {
          k: key.keyId,
          tags: [
            { tagKey: 'b', tagValue: '2' },
            { tagKey: 'a', tagValue: '9' },
            { tagKey: 'c', tagValue: '' },
          ],
        })
      ).errors,
    ).toBeUndefined();
    const page1 = await t.gql(alice, LIST, { k: key.keyId, limit: 2 });
    expect(page1.data.listResourceTags).toMatchObject({
      tags: [
        { tagKey: 'a', tagValue: '9' },
        { tagKey: 'b', tagValue: '2' },
      ],
      truncated: true,
    });
    const page2 = await t.gql(alice, LIST, { k: key.keyId, limit: 2, marker: page1.data.listResourceTags.nextMarker });
    expect(page2.data.listResourceTags).toEqual({ tags: [{ tagKey: 'c', tagValue: '' }], nextMarker: null, truncated: false });
    const untag = await t.gql(alice, `mutation($k: String!) { untagResource(input: { keyId: $k, tagKeys: ["a", "zzz"] }) { requestId } }`, { k: key.keyId });
    expect(untag.errors).toBeUndefined();
    expect((await t.gql(alice, LIST, { k: key.keyId })).data.listResourceTags.tags.map((x: { tagKey: string }) => x.tagKey)).toEqual(['b', 'c']);
  });

  it('enforces AWS tag rules', async () => {
    const key = await createKey(alice);
    const reserved = await t.gql(alice, TAG, { k: key.keyId, tags: [{ tagKey: 'aws:owner', tagValue: 'x' }] });
    expect(errorOf(reserved)?.extensions?.code).toBe('TagException');
    const dup = await t.gql(alice, TAG, {
      k: key.keyId,
      tags: [
        { tagKey: 'k', tagValue: '1' },
        { tagKey: 'k', tagValue: '2' },
      ],
    });
    expect(errorOf(dup)?.extensions?.code).toBe('TagException');
    const long = await t.gql(alice, TAG, { k: key.keyId, tags: [{ tagKey: 'k'.repeat(129), tagValue: 'v' }] });
    expect(errorOf(long)?.message).toMatch(
      /^1 validation error detected: Value 'k+' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128$/,
    );
    const many = Array.from({ length: 51 }, (_, i) => ({ tagKey: `t${i}`, tagValue: 'v' }));
    const tooMany = errorOf(await t.gql(alice, TAG, { k: key.keyId, tags: many }));
    expect([tooMany?.extensions?.code, tooMany?.message]).toEqual(['TagException', 'Too many tags']);
  });
});

describe('aliases', () => {
  const CREATE_ALIAS = `mutation($a: String!, $k: String!) { createAlias(input: { aliasName: $a, targetKeyId: $k }) { requestId } }`;
  const UPDATE_ALIAS = `mutation($a: String!, $k: String!) { updateAlias(input: { aliasName: $a, targetKeyId: $k }) { requestId } }`;
  const DELETE_ALIAS = `mutation($a: String!) { deleteAlias(input: { aliasName: $a }) { requestId } }`;
  const LIST_ALIASES = `query($k: String) { listAliases(input: { keyId: $k }) { aliases { aliasName aliasArn targetKeyId } truncated } }`;

  it('creates, moves, lists and deletes an alias; the name is unique per account', async () => {
    const k1 = await createKey(alice);
    const k2 = await createKey(alice);
    expect((await t.gql(alice, CREATE_ALIAS, { a: 'alias/app', k: k1.keyId })).errors).toBeUndefined();
    const again = await t.gql(alice, CREATE_ALIAS, { a: 'alias/app', k: k2.keyId });
    expect(errorOf(again)).toMatchObject({
      message: `An alias with the name arn:aws:kms:us-east-1:${alice.accountId}:alias/app already exists`,
      extensions: { code: 'AlreadyExistsException' },
    });
    // Another account may use the same name for its own key.
    const mk = await createKey(mallory);
    expect((await t.gql(mallory, CREATE_ALIAS, { a: 'alias/app', k: mk.keyId })).errors).toBeUndefined();

    expect((await t.gql(alice, UPDATE_ALIAS, { a: 'alias/app', k: k2.arn })).errors).toBeUndefined();
    expect((await t.gql(alice, DESCRIBE, { keyId: 'alias/app' })).data.describeKey.keyMetadata.keyId).toBe(k2.keyId);
    const listed = await t.gql(alice, LIST_ALIASES, { k: k2.keyId });
    expect(listed.data.listAliases.aliases).toEqual([
      { aliasName: 'alias/app', aliasArn: `arn:aws:kms:us-east-1:${alice.accountId}:alias/app`, targetKeyId: k2.keyId },
    ]);
    expect((await t.gql(alice, LIST_ALIASES, { k: k1.keyId })).data.listAliases.aliases).toEqual([]);

    expect((await t.gql(alice, DELETE_ALIAS, { a: 'alias/app' })).errors).toBeUndefined();
    expect(errorOf(await t.gql(alice, DELETE_ALIAS, { a: 'alias/app' }))?.extensions?.code).toBe('NotFoundException');
    // The name can be used again once deleted.
    expect((await t.gql(alice, CREATE_ALIAS, { a: 'alias/app', k: k1.keyId })).errors).toBeUndefined();
  });

  it('enforces alias naming and targeting rules', async () => {
    const k = await createKey(alice);
    expect(errorOf(await t.gql(alice, CREATE_ALIAS, { a: 'noprefix', k: k.keyId }))?.extensions?.code).toBe('ValidationException');
    expect(errorOf(await t.gql(alice, CREATE_ALIAS, { a: 'alias/aws/s3', k: k.keyId }))?.extensions?.code).toBe('NotAuthorizedException');
    expect(errorOf(await t.gql(alice, CREATE_ALIAS, { a: 'alias/has space', k: k.keyId }))?.message).toMatch(
      /at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern/,
    );
    expect(errorOf(await t.gql(alice, CREATE_ALIAS, { a: `alias/${'a'.repeat(251)}`, k: k.keyId }))?.message).toMatch(
      /Member must have length less than or equal to 256/,
    );
    await t.gql(alice, CREATE_ALIAS, { a: 'alias/first', k: k.keyId });
    expect(errorOf(await t.gql(alice, CREATE_ALIAS, { a: 'alias/second', k: 'alias/first' }))).toMatchObject({
      message: 'Aliases must refer to keys. Not aliases',
      extensions: { code: 'ValidationException' },
    });
    expect(errorOf(await t.gql(alice, UPDATE_ALIAS, { a: 'alias/never-made', k: k.keyId }))?.extensions?.code).toBe('NotFoundException');
  });

  it('refuses to alias a key pending deletion, but may delete its aliases', async () => {
    const k = await createKey(alice);
    await t.gql(alice, CREATE_ALIAS, { a: 'alias/doomed', k: k.keyId });
    await t.gql(alice, `mutation($k: String!) { scheduleKeyDeletion(input: { keyId: $k }) { keyState } }`, { k: k.keyId });
    expect(errorOf(await t.gql(alice, CREATE_ALIAS, { a: 'alias/doomed2', k: k.keyId }))?.extensions?.code).toBe('KMSInvalidStateException');
    expect((await t.gql(alice, DELETE_ALIAS, { a: 'alias/doomed' })).errors).toBeUndefined();
  });
});

describe('listKeys', () => {
  it('pages through every key of the account exactly once', async () => {
    const account = await t.newAccount('lister');
    const made = new Set<string>();
    for (let i = 0; i < 5; i++) made.add((await createKey(account)).keyId);
    const seen: string[] = [];
    let marker: string | null = null;
    do {
      const r: GqlResult<any> = await t.gql(
        account,
        `query($m: String) { listKeys(input: { limit: 2, marker: $m }) { keys { keyId keyArn } nextMarker truncated } }`,
        { m: marker },
      );
      expect(r.errors).toBeUndefined();
      seen.push(...r.data.listKeys.keys.map((k: { keyId: string }) => k.keyId));
      marker = r.data.listKeys.nextMarker;
      expect(r.data.listKeys.truncated).toBe(marker !== null);
    } while (marker);
    expect(seen.sort()).toEqual([...made].sort());
    const bad = await t.gql(account, `{ listKeys(input: { marker: "garbage" }) { truncated } }`);
    expect(errorOf(bad)?.extensions?.code).toBe('InvalidMarkerException');
    const limit = await t.gql(account, `{ listKeys(input: { limit: 1001 }) { truncated } }`);
    expect(errorOf(limit)?.message).toBe(
      "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000",
    );
  });
});
