import { CreateKeyCommand, DecryptCommand, DescribeKeyCommand, EncryptCommand, KMSClient, ListKeysCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { kmsClient, serveOverHttp } from '../support/aws.ts';
import { storedAuditRecords } from '../support/aws-clients.ts';

/**
 * The unchanged AWS SDK for JavaScript v3 against the AWS endpoint: a key's
 * life in the SDK's own types, KeyMetadata with the members AWS returns, and
 * a session token (as temporary credentials send) accepted when signed.
 */

let t: TestApp;
let server: RunningServer;
let admin: Principal;
beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('aws-sdk');
  server = await serveOverHttp(t);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

describe('@aws-sdk/client-kms', () => {
  it('creates a key and describes it with the members of AWS KeyMetadata', async () => {
    const kms = kmsClient(server, admin);
    const created = await kms.send(new CreateKeyCommand({ Description: 'sdk' }));
    const keyId = created.KeyMetadata!.KeyId!;
    const { KeyMetadata: metadata, $metadata } = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(metadata).toEqual({
      AWSAccountId: admin.accountId,
      KeyId: keyId,
      Arn: `arn:aws:kms:us-east-1:${admin.accountId}:key/${keyId}`,
      CreationDate: created.KeyMetadata!.CreationDate,
      Enabled: true,
      Description: 'sdk',
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: 'Enabled',
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      KeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: false,
      CurrentKeyMaterialId: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(metadata!.CreationDate).toBeInstanceOf(Date);
    // The response's request id is its audit record's.
    const [record] = await storedAuditRecords(t, $metadata.requestId!);
    expect(record).toMatchObject({ eventName: 'DescribeKey', outcome: 'success', userAgent: expect.stringContaining('aws-sdk-js') });
  });

  it('encrypts and decrypts under an encryption context; lists the key', async () => {
    const kms = kmsClient(server, admin);
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const encrypted = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('hello'), EncryptionContext: { tenant: 'acme' } }));
    expect(encrypted.KeyId).toBe(`arn:aws:kms:us-east-1:${admin.accountId}:key/${keyId}`);
    const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: { tenant: 'acme' } }));
    expect(Buffer.from(decrypted.Plaintext!).toString()).toBe('hello');
    expect(decrypted.EncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT');
    const listed = await kms.send(new ListKeysCommand({ Limit: 1000 }));
    expect(listed.Keys).toContainEqual({ KeyId: keyId, KeyArn: encrypted.KeyId });
    expect(listed.Truncated).toBe(false);
  });

  it('accepts a signed x-amz-security-token', async () => {
    const kms = new KMSClient({
      endpoint: server.awsUrl.replace('localhost', '127.0.0.1'),
      region: 'us-east-1',
      credentials: { accessKeyId: admin.accessKeyId, secretAccessKey: admin.secretAccessKey, sessionToken: 'a-session-token' },
      maxAttempts: 1,
    });
    const listed = await kms.send(new ListKeysCommand({}));
    expect(listed.$metadata.httpStatusCode).toBe(200);
  });
});
