import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catchUpUsageRollup } from '../../src/store/usage-rollup.ts';
import { readUsageStatistics } from '../../src/store/usage-statistics.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';

/**
 * CloudTrail records KMS's cryptographic operations as `readOnly: true` (they
 * change no key state): Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
 * GenerateDataKeyWithoutPlaintext, GenerateRandom, Sign, Verify — successes and failures.
 * The readOnly filter of auditEvents and of the usage statistics (rollups and
 * log alike) classifies them so.
 */

let t: TestApp;
let me: Principal;
const CRYPTO = ['Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'GenerateRandom', 'Sign', 'Verify'];

const b64 = (s: string) => Buffer.from(s).toString('base64');
const EVENTS = `query($filter: AuditEventFilter) { auditEvents(first: 1000, filter: $filter) { edges { node { eventName readOnly outcome errorCode } } } }`;

beforeAll(async () => {
  t = await createTestApp();
  me = await t.newAccount('read-only');
  const key = (await t.gql(me, `mutation { createKey { keyMetadata { keyId } } }`)).data.createKey.keyMetadata.keyId as string;
  const ok = async (query: string, input: Record<string, unknown>) => {
    const r = await t.gql(me, query, { i: input });
    expect(r.errors, query).toBeUndefined();
    return r.data;
  };
  const blob = (await ok(`mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob } }`, { keyId: key, plaintext: b64('x') })).encrypt.ciphertextBlob;
  await ok(`mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext } }`, { ciphertextBlob: blob });
  await ok(`mutation($i: ReEncryptInput!) { reEncrypt(input: $i) { ciphertextBlob } }`, { ciphertextBlob: blob, destinationKeyId: key });
  await ok(`mutation($i: GenerateDataKeyInput!) { generateDataKey(input: $i) { ciphertextBlob } }`, { keyId: key, keySpec: 'AES_256' });
  await ok(`mutation($i: GenerateDataKeyWithoutPlaintextInput!) { generateDataKeyWithoutPlaintext(input: $i) { ciphertextBlob } }`, {
    keyId: key,
    numberOfBytes: 16,
  });
  await ok(`mutation($i: GenerateRandomInput!) { generateRandom(input: $i) { plaintext } }`, { numberOfBytes: 8 });
  const signingKey = (await t.gql(me, `mutation { createKey(input: { keySpec: ECC_NIST_P256, keyUsage: SIGN_VERIFY }) { keyMetadata { keyId } } }`)).data
    .createKey.keyMetadata.keyId as string;
  const signed = { keyId: signingKey, message: b64('x'), signingAlgorithm: 'ECDSA_SHA_256' };
  const { signature } = (await ok(`mutation($i: SignInput!) { sign(input: $i) { signature } }`, signed)).sign;
  await ok(`mutation($i: VerifyInput!) { verify(input: $i) { signatureValid } }`, { ...signed, signature });
  // Failures are read-only too.
  const wrong = await t.gql(me, `mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext } }`, {
    i: { ciphertextBlob: blob, encryptionContext: { not: 'it' } },
  });
  expect(wrong.errors?.[0]?.extensions?.code).toBe('InvalidCiphertextException');
  const missing = await t.gql(me, `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob } }`, { i: { keyId: 'alias/none', plaintext: b64('x') } });
  expect(missing.errors?.[0]?.extensions?.code).toBe('NotFoundException');
  const invalid = await t.gql(me, `mutation($i: VerifyInput!) { verify(input: $i) { signatureValid } }`, { i: { ...signed, message: b64('y'), signature } });
  expect(invalid.errors?.[0]?.extensions?.code).toBe('KMSInvalidSignatureException');
});
afterAll(() => t?.close());

async function events(filter: Record<string, unknown>): Promise<{ eventName: string; readOnly: boolean; outcome: string; errorCode: string | null }[]> {
  const r = await t.gql(me, EVENTS, { filter });
  expect(r.errors).toBeUndefined();
  return r.data.auditEvents.edges.map((e: { node: any }) => e.node);
}

describe('cryptographic operations are read-only requests', () => {
  it('every crypto record, success or failure, says readOnly: true', async () => {
    const records = await events({ eventNames: CRYPTO });
    expect(new Set(records.map((r) => r.eventName))).toEqual(new Set(CRYPTO));
    expect(
      records
        .filter((r) => r.outcome === 'failure')
        .map((r) => [r.eventName, r.errorCode])
        .sort(),
    ).toEqual([
      ['Decrypt', 'InvalidCiphertextException'],
      ['Encrypt', 'NotFoundException'],
      ['Verify', 'KMSInvalidSignatureException'],
    ]);
    for (const r of records) expect(r.readOnly, r.eventName).toBe(true);
  });

  it('the readOnly filter: crypto with the reads, CreateKey among the changes', async () => {
    const readOnly = new Set((await events({ readOnly: true })).map((r) => r.eventName));
    const changes = new Set((await events({ readOnly: false })).map((r) => r.eventName));
    for (const name of CRYPTO) {
      expect(readOnly.has(name), name).toBe(true);
      expect(changes.has(name), name).toBe(false);
    }
    expect(changes.has('CreateKey')).toBe(true);
  });

  it('usage statistics by readOnly: the rollups and the log agree', async () => {
    await catchUpUsageRollup(t.db.app);
    for (const readOnly of [true, false]) {
      const fromRollups = await readUsageStatistics(t.db.app, me.accountId, { readOnly }, ['OPERATION'], 1000);
      const fromLog = await readUsageStatistics(t.db.app, me.accountId, { readOnly }, ['OPERATION'], 1000, { rollups: false });
      expect(fromRollups).toEqual(fromLog);
      const operations = fromLog.map((g) => g.operation);
      for (const name of CRYPTO) expect(operations.includes(name), `${name} readOnly=${readOnly}`).toBe(readOnly);
    }
  });
});
