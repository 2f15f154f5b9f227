import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuth, createTestApp, type Principal, type TestApp } from '../support/app.ts';

/**
 * Invariant 1 for the crypto operations: no plaintext, ciphertext or data key
 * leaves the service unless the request's audit record has committed. A
 * test-only trigger (installed by the owner on this file's own database) makes
 * the audit append fail, and every crypto operation is called over GraphQL:
 * the caller gets KMSInternalException, `data: null`, and a body with nothing
 * secret in it.
 *
 * What the runner promises about the log (src/service/request-runner.ts): the
 * failed request's record is retried in a transaction of its own; if that
 * fails too, the caller gets KMSInternalException and the log holds nothing for
 * the request. If it succeeds, the log holds exactly one failure record,
 * errorCode KMSInternalException.
 */

let t: TestApp;
let alice: Principal;
let keyId: string;
let otherKeyId: string;
const plaintext = randomBytes(32);
const context = { tenant: `audit-first-${randomBytes(4).toString('hex')}` };
let blob: Buffer;

const b64 = (b: Buffer) => b.toString('base64');

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('alice');
  const create = `mutation { createKey(input: { description: "audit-first" }) { keyMetadata { keyId } } }`;
  keyId = (await t.gql(alice, create)).data.createKey.keyMetadata.keyId;
  otherKeyId = (await t.gql(alice, create)).data.createKey.keyMetadata.keyId;
  const e = await t.gql(alice, `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob } }`, {
    i: { keyId, plaintext: b64(plaintext), encryptionContext: context },
  });
  blob = Buffer.from(e.data.encrypt.ciphertextBlob, 'base64');
});
let signingKeyId: string;
let signature: Buffer;

beforeAll(async () => {
  const create =
    `mutation { createKey(input: { description: "audit-first signing", keySpec: ECC_NIST_P256, keyUsage: SIGN_VERIFY }) ` + `{ keyMetadata { keyId } } }`;
  signingKeyId = (await t.gql(alice, create)).data.createKey.keyMetadata.keyId;
  const s = await t.gql(alice, `mutation($i: SignInput!) { sign(input: $i) { signature } }`, {
    i: { keyId: signingKeyId, message: b64(plaintext), signingAlgorithm: 'ECDSA_SHA_256' },
  });
  signature = Buffer.from(s.data.sign.signature, 'base64');
});
let macKeyId: string;
let mac: Buffer;
let agreementKeyId: string;
const peerPublicKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' });
let rsaKeyId: string;
let rsaCiphertext: Buffer;

beforeAll(async () => {
  const create = (spec: string, usage: string) =>
    `mutation { createKey(input: { description: "audit-first ${spec}", keySpec: ${spec}, keyUsage: ${usage} }) { keyMetadata { keyId } } }`;
  macKeyId = (await t.gql(alice, create('HMAC_256', 'GENERATE_VERIFY_MAC'))).data.createKey.keyMetadata.keyId;
  const m = await t.gql(alice, `mutation($i: GenerateMacInput!) { generateMac(input: $i) { mac } }`, {
    i: { keyId: macKeyId, message: b64(plaintext), macAlgorithm: 'HMAC_SHA_256' },
  });
  mac = Buffer.from(m.data.generateMac.mac, 'base64');
  agreementKeyId = (await t.gql(alice, create('ECC_NIST_P256', 'KEY_AGREEMENT'))).data.createKey.keyMetadata.keyId;
  rsaKeyId = (await t.gql(alice, create('RSA_2048', 'ENCRYPT_DECRYPT'))).data.createKey.keyMetadata.keyId;
  const e = await t.gql(alice, `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob } }`, {
    i: { keyId: rsaKeyId, plaintext: b64(plaintext), encryptionAlgorithm: 'RSAES_OAEP_SHA_256' },
  });
  rsaCiphertext = Buffer.from(e.data.encrypt.ciphertextBlob, 'base64');
});
afterAll(() => t?.close());

interface Operation {
  eventName: string;
  document: string;
  variables: () => Record<string, unknown>;
}

/** Every crypto operation, each asked for something secret in return, and the two reads of issue 13 (GetPublicKey, GetKeyLastUsage). */
const OPERATIONS: Operation[] = [
  {
    eventName: 'Encrypt',
    document: `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob keyId } }`,
    variables: () => ({ i: { keyId, plaintext: b64(plaintext), encryptionContext: context } }),
  },
  {
    eventName: 'Decrypt',
    document: `mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext keyId } }`,
    variables: () => ({ i: { ciphertextBlob: b64(blob), encryptionContext: context } }),
  },
  {
    eventName: 'ReEncrypt',
    document: `mutation($i: ReEncryptInput!) { reEncrypt(input: $i) { ciphertextBlob keyId } }`,
    variables: () => ({
      i: { ciphertextBlob: b64(blob), sourceEncryptionContext: context, destinationKeyId: otherKeyId, destinationEncryptionContext: context },
    }),
  },
  {
    eventName: 'GenerateDataKey',
    document: `mutation($i: GenerateDataKeyInput!) { generateDataKey(input: $i) { plaintext ciphertextBlob keyId } }`,
    variables: () => ({ i: { keyId, keySpec: 'AES_256', encryptionContext: context } }),
  },
  {
    eventName: 'GenerateDataKeyWithoutPlaintext',
    document: `mutation($i: GenerateDataKeyWithoutPlaintextInput!) { generateDataKeyWithoutPlaintext(input: $i) { ciphertextBlob keyId } }`,
    variables: () => ({ i: { keyId, keySpec: 'AES_256', encryptionContext: context } }),
  },
  {
    eventName: 'GenerateDataKeyPair',
    document: `mutation($i: GenerateDataKeyPairInput!) { generateDataKeyPair(input: $i) { privateKeyPlaintext privateKeyCiphertextBlob publicKey keyId } }`,
    variables: () => ({ i: { keyId, keyPairSpec: 'ECC_NIST_P256', encryptionContext: context } }),
  },
  {
    eventName: 'GenerateDataKeyPairWithoutPlaintext',
    document:
      `mutation($i: GenerateDataKeyPairWithoutPlaintextInput!) ` +
      `{ generateDataKeyPairWithoutPlaintext(input: $i) { privateKeyCiphertextBlob publicKey keyId } }`,
    variables: () => ({ i: { keyId, keyPairSpec: 'ECC_NIST_P256', encryptionContext: context } }),
  },
  {
    eventName: 'GenerateRandom',
    document: `mutation($n: Int!) { generateRandom(input: { numberOfBytes: $n }) { plaintext } }`,
    variables: () => ({ n: 32 }),
  },
  {
    // The secret is the signature (and the message, which is the plaintext).
    eventName: 'Sign',
    document: `mutation($i: SignInput!) { sign(input: $i) { signature keyId } }`,
    variables: () => ({ i: { keyId: signingKeyId, message: b64(plaintext), signingAlgorithm: 'ECDSA_SHA_256' } }),
  },
  {
    // No secret in its answer: what must not leave unrecorded is the verdict.
    eventName: 'Verify',
    document: `mutation($i: VerifyInput!) { verify(input: $i) { signatureValid keyId } }`,
    variables: () => ({ i: { keyId: signingKeyId, message: b64(plaintext), signature: b64(signature), signingAlgorithm: 'ECDSA_SHA_256' } }),
  },
  {
    eventName: 'GenerateMac',
    document: `mutation($i: GenerateMacInput!) { generateMac(input: $i) { mac keyId } }`,
    variables: () => ({ i: { keyId: macKeyId, message: b64(plaintext), macAlgorithm: 'HMAC_SHA_256' } }),
  },
  {
    // No secret in its answer: what must not leave unrecorded is the verdict.
    eventName: 'VerifyMac',
    document: `mutation($i: VerifyMacInput!) { verifyMac(input: $i) { macValid keyId } }`,
    variables: () => ({ i: { keyId: macKeyId, message: b64(plaintext), mac: b64(mac), macAlgorithm: 'HMAC_SHA_256' } }),
  },
  {
    eventName: 'DeriveSharedSecret',
    document: `mutation($i: DeriveSharedSecretInput!) { deriveSharedSecret(input: $i) { sharedSecret keyId } }`,
    variables: () => ({ i: { keyId: agreementKeyId, keyAgreementAlgorithm: 'ECDH', publicKey: b64(peerPublicKey) } }),
  },
  {
    // RSA: the ciphertext leaves only after the record commits, as with symmetric keys.
    eventName: 'Encrypt',
    document: `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob keyId } }`,
    variables: () => ({ i: { keyId: rsaKeyId, plaintext: b64(plaintext), encryptionAlgorithm: 'RSAES_OAEP_SHA_256' } }),
  },
  {
    // Not a secret, but no answer of any operation leaves unrecorded: the public key is what the body check finds.
    eventName: 'GetPublicKey',
    document: `query($i: GetPublicKeyInput!) { getPublicKey(input: $i) { publicKey keyId } }`,
    variables: () => ({ i: { keyId: signingKeyId } }),
  },
  {
    // No secret in its answer: what must not leave unrecorded is what the log says of the key's use.
    eventName: 'GetKeyLastUsage',
    document: `query($i: GetKeyLastUsageInput!) { getKeyLastUsage(input: $i) { keyId keyLastUsage { operation kmsRequestId } } }`,
    variables: () => ({ i: { keyId: signingKeyId } }),
  },
  {
    // RSA: the plaintext leaves only after the record commits, as with symmetric keys.
    eventName: 'Decrypt',
    document: `mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext keyId } }`,
    variables: () => ({ i: { keyId: rsaKeyId, ciphertextBlob: b64(rsaCiphertext), encryptionAlgorithm: 'RSAES_OAEP_SHA_256' } }),
  },
];
const EVENT_NAMES = OPERATIONS.map((o) => o.eventName);

/** The raw response: the body text is searched as sent. */
async function call(
  op: Operation,
): Promise<{ status: number; text: string; body: { data?: unknown; errors?: { message: string; extensions?: { code?: string; requestId?: string } }[] } }> {
  const response = await t.yoga.fetch('http://keyledger.test/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: basicAuth(alice) },
    body: JSON.stringify({ query: op.document, variables: op.variables() }),
  });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) };
}

/**
 * Anything secret this file could see in a body: the plaintext (sent to Encrypt,
 * held by the blob), and any run of base64 long enough to be 32 bytes or more
 * (a data key, random bytes, a ciphertext blob). Request ids are UUIDs, which
 * this does not match.
 */
function secretsIn(text: string): string[] {
  return [...plaintextIn(text), ...(text.match(/[A-Za-z0-9+/]{40,}/g) ?? [])];
}

/** The plaintext in any encoding (a record legitimately holds long hex ids, so only this applies to it). */
function plaintextIn(text: string): string[] {
  return [
    plaintext.toString('base64').replace(/=+$/, ''),
    plaintext.toString('base64url'),
    plaintext.toString('hex'),
    plaintext.toString('hex').toUpperCase(),
  ].filter((s) => text.includes(s));
}

async function installRefusal(condition: string): Promise<void> {
  await sql
    .raw(
      `
      CREATE FUNCTION test_refuse_crypto_audit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.type = 'AuditRecord' AND NEW.data->>'eventName' IN (${EVENT_NAMES.map((n) => `'${n}'`).join(', ')}) AND (${condition}) THEN
          RAISE EXCEPTION 'test: the audit append is refused';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER test_refuse_crypto_audit BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION test_refuse_crypto_audit();`,
    )
    .execute(t.db.owner);
}

async function dropRefusal(): Promise<void> {
  await sql.raw(`DROP TRIGGER IF EXISTS test_refuse_crypto_audit ON events; DROP FUNCTION IF EXISTS test_refuse_crypto_audit();`).execute(t.db.owner);
}

async function recordsOf(requestId: string) {
  const rows = await t.db.owner
    .selectFrom('events')
    .select(['type', 'stream_id', 'data'])
    .where(sql<string>`data->>'requestId'`, '=', requestId)
    .execute();
  return rows.map((r) => ({
    type: r.type,
    streamId: r.stream_id,
    ...(r.data as { eventName: string; outcome: string; errorCode?: string; errorMessage?: string }),
  }));
}

const eventCount = async () =>
  Number(
    (
      await t.db.owner
        .selectFrom('events')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

/** The answer every refused operation gets: the internal error, its request id, and nothing else. */
function expectRefused(r: Awaited<ReturnType<typeof call>>): string {
  expect(r.body.data).toBeNull();
  expect(r.body.errors).toHaveLength(1);
  expect(r.body.errors![0]).toMatchObject({
    message: 'An internal error occurred. The request was not completed.',
    extensions: { code: 'KMSInternalException' },
  });
  expect(secretsIn(r.text)).toEqual([]);
  const requestId = r.body.errors![0]!.extensions!.requestId!;
  expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
  return requestId;
}

describe('when no audit record can be written at all', () => {
  beforeAll(() => installRefusal('true'));
  afterAll(dropRefusal);

  it.each(OPERATIONS.map((o) => [o.eventName, o] as const))(
    '%s answers KMSInternalException with nothing secret, and the log holds nothing for it',
    async (_name, op) => {
      const before = await eventCount();
      const requestId = expectRefused(await call(op));
      // Neither the request's state changes nor any record of it: the runner's promise when even the failure record fails.
      expect(await recordsOf(requestId)).toEqual([]);
      expect(await eventCount()).toBe(before);
      // The operator is told, without the secret.
      const lines = t.logLines.filter((l) => l.includes(requestId));
      expect(lines.some((l) => l.includes('could not record the failed request'))).toBe(true);
      expect(secretsIn(lines.join(''))).toEqual([]);
    },
  );
});

describe('when only the success record cannot be written', () => {
  beforeAll(() => installRefusal(`NEW.data->>'outcome' = 'success'`));
  afterAll(dropRefusal);

  it.each(OPERATIONS.map((o) => [o.eventName, o] as const))(
    '%s answers KMSInternalException with nothing secret; exactly one failure record holds KMSInternalException',
    async (_name, op) => {
      const before = await eventCount();
      const requestId = expectRefused(await call(op));
      const records = await recordsOf(requestId);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({
        type: 'AuditRecord',
        streamId: `request-${requestId}`,
        eventName: op.eventName,
        outcome: 'failure',
        errorCode: 'KMSInternalException',
        errorMessage: 'An internal error occurred. The request was not completed.',
      });
      // Only the failure record was added: the operation's own transaction rolled back whole.
      expect(await eventCount()).toBe(before + 1);
      expect(plaintextIn(JSON.stringify(records))).toEqual([]);
      const lines = t.logLines.filter((l) => l.includes(requestId));
      expect(lines.some((l) => l.includes('request failed unexpectedly'))).toBe(true);
      expect(lines.some((l) => l.includes('could not record the failed request'))).toBe(false);
      expect(secretsIn(lines.join(''))).toEqual([]);
    },
  );
});

describe('with the audit log writable again', () => {
  it.each(OPERATIONS.map((o) => [o.eventName, o] as const))('%s succeeds, and its answer holds what the body check looks for', async (_name, op) => {
    const r = await call(op);
    expect(r.body.errors).toBeUndefined();
    // The control: the same check that found nothing above finds the secret in a successful answer.
    if (op.eventName === 'Verify') expect(r.body.data).toMatchObject({ verify: { signatureValid: true } });
    else if (op.eventName === 'VerifyMac') expect(r.body.data).toMatchObject({ verifyMac: { macValid: true } });
    else if (op.eventName === 'GetKeyLastUsage')
      expect(r.body.data).toMatchObject({ getKeyLastUsage: { keyId: signingKeyId, keyLastUsage: { operation: expect.stringMatching(/^(Sign|Verify)$/) } } });
    else expect(secretsIn(r.text).length).toBeGreaterThan(0);
    if (op.eventName === 'Decrypt') expect(r.text).toContain(b64(plaintext));
  });
});
