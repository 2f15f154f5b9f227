import {
  buildClient,
  CommitmentPolicy,
  getClient,
  getLocalCryptographicMaterialsCache,
  KMS,
  KmsKeyringNode,
  NodeCachingMaterialsManager,
} from '@aws-crypto/client-node';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { kmsClient, serveOverHttp } from '../support/aws.ts';
import { auditEvents, loopbackAwsUrl } from '../support/aws-clients.ts';

/**
 * The AWS Encryption SDK for JavaScript (`@aws-crypto/client-node`), unchanged:
 * its KMS keyring reaches keyledger through the `clientProvider` hook with an
 * `@aws-sdk/client-kms` client, and the audit log shows what it asked for.
 * Then its caching materials manager, the client-side answer to KMS request
 * quotas: one GenerateDataKey serves many messages.
 */

let t: TestApp;
let server: RunningServer;
let admin: Principal;
let keyArn: string;

const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('esdk');
  server = await serveOverHttp(t);
  const created = await kmsClient(server, admin).send(new CreateKeyCommand({ Description: 'encryption sdk' }));
  keyArn = created.KeyMetadata!.Arn!;
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

/** A keyring whose KMS clients, for whatever region the key ARN names, talk to keyledger as `p`. */
function keyring(p: Principal, userAgent: string): KmsKeyringNode {
  const clientProvider = getClient(KMS, {
    endpoint: loopbackAwsUrl(server),
    credentials: { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey },
    customUserAgent: userAgent,
    maxAttempts: 1,
  });
  return new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider });
}

/** The account's records made with `userAgent`, oldest first. */
async function recordsOf(userAgent: string) {
  const records = await auditEvents(t, admin, { principalArn: admin.principalArn });
  return records.filter((r) => r.userAgent?.includes(userAgent));
}

describe('AWS Encryption SDK (KmsKeyringNode, REQUIRE_ENCRYPT_REQUIRE_DECRYPT)', () => {
  it('round-trips with an encryption context; the audit log shows GenerateDataKey then Decrypt under that context', async () => {
    const ua = 'esdk-roundtrip';
    const ring = keyring(admin, ua);
    const context = { tenant: 'acme', purpose: 'esdk-e2e' };
    const plaintext = Buffer.from('a message for the encryption sdk \u00e9\u00e8', 'utf8');

    const { result, messageHeader } = await encrypt(ring, plaintext, { encryptionContext: context });
    expect(messageHeader.encryptionContext).toMatchObject(context);
    expect(messageHeader.encryptedDataKeys).toHaveLength(1);
    expect(messageHeader.encryptedDataKeys[0]).toMatchObject({ providerId: 'aws-kms', providerInfo: keyArn });

    const decrypted = await decrypt(ring, result);
    expect(Buffer.from(decrypted.plaintext).equals(plaintext)).toBe(true);
    // The context comes back with the message (plus the SDK's own signing-key entry).
    expect(decrypted.messageHeader.encryptionContext).toMatchObject(context);

    const records = await recordsOf(ua);
    expect(records.map((r) => [r.eventName, r.outcome])).toEqual([
      ['GenerateDataKey', 'success'],
      ['Decrypt', 'success'],
    ]);
    for (const record of records) {
      expect(record.keyArn).toBe(keyArn);
      expect(record.encryptionContext).toMatchObject(context);
      expect(record.userAgent).toContain('aws-sdk-js');
    }
    // The Decrypt opened the very data key that GenerateDataKey made.
    expect(records[1]!.dataKeyId).toBe(records[0]!.dataKeyId);
    expect(records[0]!.dataKeyId).toBeTruthy();
  });

  const N = 10;

  it(`without caching, ${N} messages cost ${N} GenerateDataKey records`, async () => {
    const ua = 'esdk-uncached';
    const ring = keyring(admin, ua);
    for (let i = 0; i < N; i++) await encrypt(ring, Buffer.from(`message ${i}`), { encryptionContext: { tenant: 'acme', n: 'uncached' } });
    const records = await recordsOf(ua);
    expect(records.filter((r) => r.eventName === 'GenerateDataKey' && r.outcome === 'success')).toHaveLength(N);
  });

  it(`with NodeCachingMaterialsManager, ${N} messages cost one GenerateDataKey record, and they all decrypt`, async () => {
    const ua = 'esdk-cached';
    const cmm = new NodeCachingMaterialsManager({
      backingMaterials: keyring(admin, ua),
      cache: getLocalCryptographicMaterialsCache(100),
      maxAge: 60_000,
      maxMessagesEncrypted: 100,
    });
    const context = { tenant: 'acme', n: 'cached' };
    const messages: Buffer[] = [];
    for (let i = 0; i < N; i++) messages.push((await encrypt(cmm, Buffer.from(`cached message ${i}`), { encryptionContext: context })).result);

    const records = await recordsOf(ua);
    expect(records.map((r) => r.eventName)).toEqual(['GenerateDataKey']);
    expect(records[0]).toMatchObject({ outcome: 'success', keyArn, encryptionContext: context });

    // One data key behind all ten: the cache also spares the Decrypts.
    for (let i = 0; i < N; i++) expect(Buffer.from((await decrypt(cmm, messages[i]!)).plaintext).toString()).toBe(`cached message ${i}`);
    const after = await recordsOf(ua);
    expect(after.map((r) => r.eventName)).toEqual(['GenerateDataKey', 'Decrypt']);
    expect(after[1]!.dataKeyId).toBe(after[0]!.dataKeyId);
  });
});
