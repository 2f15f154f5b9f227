import { CreateKeyCommand, DecryptCommand, DescribeKeyCommand, EncryptCommand, ListKeysCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { kmsClient, serveOverHttp } from '../support/aws.ts';

let t: TestApp;
let server: RunningServer;
let admin: Principal;
beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('aws');
  server = await serveOverHttp(t);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

describe('smoke', () => {
  it('round trips', async () => {
    const kms = kmsClient(server, admin);
    const created = await kms.send(new CreateKeyCommand({ Description: 'x' }));
    console.log(created.KeyMetadata);
    const keyId = created.KeyMetadata!.KeyId!;
    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('hello'), EncryptionContext: { a: 'b' } }));
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { a: 'b' } }));
    expect(Buffer.from(dec.Plaintext!).toString()).toBe('hello');
    console.log(await kms.send(new ListKeysCommand({})));
    console.log(await kms.send(new DescribeKeyCommand({ KeyId: keyId })));
  });
});
