import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type GqlResult, type Principal, type TestApp } from '../support/app.ts';

/**
 * A Decrypt (or ReEncrypt) whose keyId is refused — IncorrectKeyException, or
 * NotFoundException — records the keys it was about, so the key's audit trail
 * (auditEvents filter: {key}) finds the attempt: the blob's key when the caller
 * may see it (its own account's, or another account's it may use), and the key
 * it named (its own account's key, or the key ARN it wrote, whether or not that
 * exists). Another account's key the caller cannot use never shows.
 */

let t: TestApp;
let a: Principal; // admin of account A, the caller
let b: Principal; // admin of account B
let ka1: Key;
let ka2: Key;
let kb: Key; // B's key, default policy: A may not use it
let kbShared: Key; // B's key whose policy lets A's admin Decrypt
let blobA: string; // under ka1
let blobB: string; // under kb
let blobShared: string; // under kbShared

type Key = { keyId: string; arn: string };

const b64 = (s: string) => Buffer.from(s).toString('base64');
const ENCRYPT = `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob } }`;
const DECRYPT = `mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext } }`;
const RE_ENCRYPT = `mutation($i: ReEncryptInput!) { reEncrypt(input: $i) { ciphertextBlob } }`;
const EVENTS = `query($filter: AuditEventFilter) { auditEvents(first: 100, filter: $filter) { edges { node {
  requestId eventName keyArn resources outcome errorCode errorMessage recipientAccountId authorization requestParameters additionalEventData accountId
} } } }`;
/** A key id no key has. */
const MISSING = '0badc0de-0000-4000-8000-000000000000';

async function createKey(as: Principal, policy?: string): Promise<Key> {
  const r = await t.gql(as, `mutation($i: CreateKeyInput) { createKey(input: $i) { keyMetadata { keyId arn } } }`, { i: policy ? { policy } : {} });
  expect(r.errors).toBeUndefined();
  return r.data.createKey.keyMetadata;
}

async function encrypt(as: Principal, key: Key): Promise<string> {
  const r = await t.gql(as, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('secret'), encryptionContext: { case: 'decrypt-audit' } } });
  expect(r.errors).toBeUndefined();
  return r.data.encrypt.ciphertextBlob;
}

/** Runs a request expected to fail with `errorCode`; returns its request id. */
async function refused(as: Principal, query: string, input: Record<string, unknown>, errorCode: string): Promise<string> {
  const r: GqlResult<unknown> = await t.gql(as, query, { i: input });
  expect(r.errors?.[0]?.extensions?.code, JSON.stringify(r.errors)).toBe(errorCode);
  return r.errors![0]!.extensions!.requestId!;
}

async function events(as: Principal, filter: Record<string, unknown>): Promise<any[]> {
  const r = await t.gql(as, EVENTS, { filter });
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data.auditEvents.edges.map((e: { node: unknown }) => e.node);
}

/** The record of `requestId` as `as` sees it over GraphQL. */
async function seenBy(as: Principal, requestId: string): Promise<any> {
  const [node, ...more] = await events(as, { requestId });
  expect(more).toEqual([]);
  return node;
}

/** The request ids auditEvents finds for a key filter. */
async function foundByKey(as: Principal, key: string): Promise<string[]> {
  return (await events(as, { key })).map((n) => n.requestId);
}

const decryptIn = { encryptionContext: { case: 'decrypt-audit' } };

beforeAll(async () => {
  t = await createTestApp();
  a = await t.newAccount('decrypt-audit-a');
  b = await t.newAccount('decrypt-audit-b');
  ka1 = await createKey(a);
  ka2 = await createKey(a);
  kb = await createKey(b);
  kbShared = await createKey(
    b,
    JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'Owner', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${b.accountId}:root` }, Action: 'kms:*', Resource: '*' },
        { Sid: 'A decrypts', Effect: 'Allow', Principal: { AWS: a.principalArn }, Action: 'kms:Decrypt', Resource: '*' },
      ],
    }),
  );
  const alias = await t.gql(a, `mutation { createAlias(input: { aliasName: "alias/decrypt-audit-ka2", targetKeyId: "${ka2.keyId}" }) { requestId } }`);
  expect(alias.errors).toBeUndefined();
  blobA = await encrypt(a, ka1);
  blobB = await encrypt(b, kb);
  blobShared = await encrypt(b, kbShared);
  // The shared key really is usable by A (so recording it shows A nothing new).
  expect((await t.gql(a, DECRYPT, { i: { ciphertextBlob: blobShared, ...decryptIn } })).errors).toBeUndefined();
});
afterAll(() => t?.close());

describe('IncorrectKeyException', () => {
  it("records the blob's key and the named key; auditEvents finds the attempt by either, by ARN, key id or alias", async () => {
    const id = await refused(a, DECRYPT, { ciphertextBlob: blobA, keyId: ka2.keyId, ...decryptIn }, 'IncorrectKeyException');
    const node = await seenBy(a, id);
    expect(node).toMatchObject({
      eventName: 'Decrypt',
      outcome: 'failure',
      errorCode: 'IncorrectKeyException',
      keyArn: ka1.arn,
      resources: [ka1.arn, ka2.arn],
    });
    for (const key of [ka1.keyId, ka1.arn, ka2.keyId, ka2.arn, 'alias/decrypt-audit-ka2']) expect(await foundByKey(a, key), key).toContain(id);
    expect(await events(a, { key: ka2.keyId, eventNames: ['Decrypt'], outcome: 'FAILURE', errorCodes: ['IncorrectKeyException'] })).toEqual([
      expect.objectContaining({ requestId: id }),
    ]);
  });

  it('names the key the caller gave by alias as the key it resolved to', async () => {
    const id = await refused(a, DECRYPT, { ciphertextBlob: blobA, keyId: 'alias/decrypt-audit-ka2', ...decryptIn }, 'IncorrectKeyException');
    expect((await seenBy(a, id)).resources).toEqual([ka1.arn, ka2.arn]);
  });

  it("another account's blob key the caller may not use is not recorded; the caller's named key is", async () => {
    const id = await refused(a, DECRYPT, { ciphertextBlob: blobB, keyId: ka1.arn, ...decryptIn }, 'IncorrectKeyException');
    const node = await seenBy(a, id);
    expect(node).toMatchObject({ keyArn: ka1.arn, resources: [ka1.arn], recipientAccountId: null });
    expect(await foundByKey(a, ka1.keyId)).toContain(id);
    expect(await foundByKey(a, kb.arn)).not.toContain(id);
    // Nothing in the stored record names B's key or B's account.
    const stored = await t.db.owner.selectFrom('events').select('data').where('stream_id', '=', `request-${id}`).executeTakeFirstOrThrow();
    expect(JSON.stringify(stored.data)).not.toContain(kb.arn);
    expect(JSON.stringify(stored.data)).not.toContain(b.accountId);
    // And B does not see A's attempt (nothing on B's key was authorized or shown).
    expect(await foundByKey(b, kb.keyId)).not.toContain(id);
  });

  it("another account's blob key the caller may use is recorded, first", async () => {
    const id = await refused(a, DECRYPT, { ciphertextBlob: blobShared, keyId: ka1.keyId, ...decryptIn }, 'IncorrectKeyException');
    const node = await seenBy(a, id);
    expect(node).toMatchObject({ keyArn: kbShared.arn, resources: [kbShared.arn, ka1.arn], authorization: null });
    expect(await foundByKey(a, kbShared.arn)).toContain(id);
    expect(await foundByKey(a, ka1.arn)).toContain(id);
  });

  it('ReEncrypt with the wrong sourceKeyId records both keys too', async () => {
    const id = await refused(
      a,
      RE_ENCRYPT,
      { ciphertextBlob: blobA, sourceKeyId: ka2.arn, sourceEncryptionContext: { case: 'decrypt-audit' }, destinationKeyId: ka1.keyId },
      'IncorrectKeyException',
    );
    expect(await seenBy(a, id)).toMatchObject({ eventName: 'ReEncrypt', keyArn: ka1.arn, resources: [ka1.arn, ka2.arn] });
    expect(await foundByKey(a, ka2.keyId)).toContain(id);
  });
});

describe('NotFoundException with a keyId', () => {
  it('a key ARN that names no key is recorded as written, with the blob key', async () => {
    const missingArn = `arn:aws:kms:us-east-1:${a.accountId}:key/${MISSING}`;
    const id = await refused(a, DECRYPT, { ciphertextBlob: blobA, keyId: missingArn, ...decryptIn }, 'NotFoundException');
    expect(await seenBy(a, id)).toMatchObject({ keyArn: ka1.arn, resources: [ka1.arn, missingArn], errorMessage: `Key '${missingArn}' does not exist` });
    expect(await foundByKey(a, missingArn)).toContain(id);
    expect(await foundByKey(a, MISSING)).toContain(id);
    expect(await foundByKey(a, ka1.keyId)).toContain(id);
  });

  it('a key ARN of another region is recorded as written', async () => {
    const elsewhere = `arn:aws:kms:eu-west-3:${a.accountId}:key/${ka2.keyId}`;
    const id = await refused(a, DECRYPT, { ciphertextBlob: blobA, keyId: elsewhere, ...decryptIn }, 'NotFoundException');
    expect((await seenBy(a, id)).resources).toEqual([ka1.arn, elsewhere]);
    expect(await foundByKey(a, elsewhere)).toContain(id);
  });

  it('a key id or alias that resolves to nothing records only the blob key', async () => {
    for (const keyId of [MISSING, 'alias/decrypt-audit-none', `arn:aws:kms:us-east-1:${a.accountId}:alias/decrypt-audit-none`]) {
      const id = await refused(a, DECRYPT, { ciphertextBlob: blobA, keyId, ...decryptIn }, 'NotFoundException');
      expect((await seenBy(a, id)).resources, keyId).toEqual([ka1.arn]);
      expect(await foundByKey(a, ka1.arn), keyId).toContain(id);
    }
  });

  it("another account's key the blob does not name: recorded as the caller wrote it, exactly like a key ARN there that does not exist", async () => {
    const missingThere = `arn:aws:kms:us-east-1:${b.accountId}:key/${MISSING}`;
    const existing = await refused(a, DECRYPT, { ciphertextBlob: blobA, keyId: kb.arn, ...decryptIn }, 'NotFoundException');
    const missing = await refused(a, DECRYPT, { ciphertextBlob: blobA, keyId: missingThere, ...decryptIn }, 'NotFoundException');
    const [e, m] = [await seenBy(a, existing), await seenBy(a, missing)];
    expect(e).toMatchObject({
      keyArn: ka1.arn,
      resources: [ka1.arn, kb.arn],
      errorMessage: `Key '${kb.arn}' does not exist`,
      recipientAccountId: null,
      authorization: null,
    });
    expect(m).toMatchObject({
      keyArn: ka1.arn,
      resources: [ka1.arn, missingThere],
      errorMessage: `Key '${missingThere}' does not exist`,
      recipientAccountId: null,
      authorization: null,
    });
    // The two records differ only where the caller's own input did.
    const shape = (n: any, arn: string) => JSON.parse(JSON.stringify({ ...n, requestId: null }).replaceAll(arn, '<named>'));
    expect(shape(e, kb.arn)).toEqual(shape(m, missingThere));
    expect(await foundByKey(a, kb.arn)).toContain(existing);
    expect(await foundByKey(a, missingThere)).toContain(missing);
  });

  it(
    "another account's key named by ARN and refused by its policy (NotFoundException): " +
      'its ARN recorded as for one that does not exist; its owner finds the attempt',
    async () => {
      const existing = await refused(a, DECRYPT, { ciphertextBlob: blobB, keyId: kb.arn, ...decryptIn }, 'NotFoundException');
      const missingThere = `arn:aws:kms:us-east-1:${b.accountId}:key/${MISSING}`;
      const missing = await refused(a, DECRYPT, { ciphertextBlob: blobB, keyId: missingThere, ...decryptIn }, 'NotFoundException');
      const [e, m] = [await seenBy(a, existing), await seenBy(a, missing)];
      expect(e).toMatchObject({
        keyArn: kb.arn,
        resources: [kb.arn],
        recipientAccountId: null,
        authorization: null,
        errorMessage: `Key '${kb.arn}' does not exist`,
      });
      expect(m).toMatchObject({
        keyArn: missingThere,
        resources: [missingThere],
        recipientAccountId: null,
        authorization: null,
        errorMessage: `Key '${missingThere}' does not exist`,
      });
      expect(await foundByKey(a, kb.arn)).toContain(existing);
      // The owner sees the refused use of its key, with the evidence.
      const owner = await seenBy(b, existing);
      expect(owner).toMatchObject({
        accountId: a.accountId,
        recipientAccountId: b.accountId,
        resources: [kb.arn],
        authorization: { decision: 'implicitDeny' },
      });
      expect(await foundByKey(b, kb.keyId)).toContain(existing);
      expect(await foundByKey(b, kb.keyId)).not.toContain(missing);
    },
  );

  it("without a keyId, another account's blob key refused (as garbage would be, finding 9) stays out of the record", async () => {
    const id = await refused(a, DECRYPT, { ciphertextBlob: blobB, ...decryptIn }, 'InvalidCiphertextException');
    expect(await seenBy(a, id)).toMatchObject({ keyArn: null, resources: [] });
  });
});
