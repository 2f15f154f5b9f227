/**
 * Issue 13: GetKeyLastUsage, over the AWS endpoint with the unchanged
 * @aws-sdk/client-kms and over GraphQL. The answer is the key's last
 * successful cryptographic operation in the audit log (its operation, time,
 * event id and request id), whether the usage fold has reached it or not;
 * failures and non-cryptographic requests do not count; a ReEncrypt counts for
 * both keys. Key id or key ARN only, the caller's account's keys only,
 * authorized by kms:GetKeyLastUsage.
 */
import {
  CreateKeyCommand,
  DecryptCommand,
  DeriveSharedSecretCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateMacCommand,
  GetKeyLastUsageCommand,
  GetKeyPolicyCommand,
  GetPublicKeyCommand,
  PutKeyPolicyCommand,
  ReEncryptCommand,
  SignCommand,
  VerifyCommand,
  VerifyMacCommand,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { shape } from '../../src/service/model/kms-model.ts';
import { catchUpUsageRollup } from '../../src/store/usage-rollup.ts';
import { kmsClient, useAwsTestApp } from '../support/aws.ts';
import { recordsOfRequest } from '../support/log-search.ts';
import { sql } from 'kysely';

const aws = useAwsTestApp('last-usage');

async function symmetricKey(): Promise<{ keyId: string; arn: string; created: Date }> {
  const { KeyMetadata } = await aws.kms.send(new CreateKeyCommand({}));
  return { keyId: KeyMetadata!.KeyId!, arn: KeyMetadata!.Arn!, created: KeyMetadata!.CreationDate! };
}

async function awsError(promise: Promise<unknown>): Promise<{ name: string; message: string; requestId: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { name: string; message: string; $metadata?: { httpStatusCode?: number; requestId?: string } };
    expect(e.$metadata?.httpStatusCode, `${e.name}: ${e.message}`).toBe(400);
    return { name: e.name, message: e.message, requestId: e.$metadata!.requestId! };
  }
  throw new Error('expected the request to fail');
}

/** What GetKeyLastUsage must answer for a use: the request's operation, time, audit event id and request id. */
async function expectedUsage(requestId: string) {
  const { rows } = await sql<{ event_id: string; recorded_at: Date; event_name: string }>`
    select event_id::text as event_id, recorded_at, data ->> 'eventName' as event_name from events
     where type = 'AuditRecord' and data ->> 'requestId' = ${requestId}`.execute(aws.t.db.owner);
  expect(rows).toHaveLength(1);
  return { Operation: rows[0]!.event_name, Timestamp: rows[0]!.recorded_at, CloudTrailEventId: rows[0]!.event_id, KmsRequestId: requestId };
}

const lastUsage = async (keyId: string, client: KMSClient = aws.kms) => (await client.send(new GetKeyLastUsageCommand({ KeyId: keyId }))).KeyLastUsage;
const tick = () => aws.t.clock.advance({ seconds: 1 });

describe('GetKeyLastUsage over the AWS endpoint', () => {
  it('a new key has no KeyLastUsage; TrackingStartDate and KeyCreationDate are its creation', async () => {
    const { keyId, created } = await symmetricKey();
    const r = await aws.kms.send(new GetKeyLastUsageCommand({ KeyId: keyId }));
    expect(r.KeyId).toBe(keyId);
    expect(r.KeyLastUsage).toBeUndefined();
    expect(r.KeyCreationDate).toEqual(created);
    expect(r.TrackingStartDate).toEqual(created);
    const [record] = await recordsOfRequest(aws.t.db.owner, r.$metadata.requestId!);
    expect(record).toMatchObject({ eventName: 'GetKeyLastUsage', outcome: 'success', readOnly: true });
  });

  it('the last successful cryptographic operation; failures and other requests do not count; before and after the usage fold', async () => {
    const { keyId, arn } = await symmetricKey();
    tick();
    const encrypted = await aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('last usage'), EncryptionContext: { a: '1' } }));
    expect(await lastUsage(arn)).toEqual(await expectedUsage(encrypted.$metadata.requestId!));

    tick();
    await awsError(aws.kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: { a: '2' } })));
    await aws.kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    await awsError(aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('dry'), DryRun: true })));
    expect(await lastUsage(keyId)).toEqual(await expectedUsage(encrypted.$metadata.requestId!));

    // Folded into the rollups, the same answer; a later use (after the checkpoint) is read from the log.
    await catchUpUsageRollup(aws.t.db.app);
    expect(await lastUsage(keyId)).toEqual(await expectedUsage(encrypted.$metadata.requestId!));
    tick();
    const decrypted = await aws.kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: { a: '1' } }));
    expect(await lastUsage(keyId)).toEqual(await expectedUsage(decrypted.$metadata.requestId!));
    tick();
    const pair = await aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256' }));
    await catchUpUsageRollup(aws.t.db.app);
    expect(await lastUsage(keyId)).toEqual(await expectedUsage(pair.$metadata.requestId!));
    expect((await lastUsage(keyId))!.Operation).toBe('GenerateDataKeyPair');

    // A disabled key still answers (any key state).
    await aws.kms.send(new DisableKeyCommand({ KeyId: keyId }));
    expect((await lastUsage(keyId))!.KmsRequestId).toBe(pair.$metadata.requestId);
  });

  it('a ReEncrypt counts for both keys; Sign for a signing key', async () => {
    const source = await symmetricKey();
    const destination = await symmetricKey();
    tick();
    const { CiphertextBlob } = await aws.kms.send(new EncryptCommand({ KeyId: source.keyId, Plaintext: Buffer.from('moved') }));
    tick();
    const moved = await aws.kms.send(new ReEncryptCommand({ CiphertextBlob, DestinationKeyId: destination.keyId }));
    const expected = await expectedUsage(moved.$metadata.requestId!);
    expect(await lastUsage(source.keyId)).toEqual(expected);
    expect(await lastUsage(destination.keyId)).toEqual(expected);

    const signing = (await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!;
    const signed = await aws.kms.send(new SignCommand({ KeyId: signing.KeyId, Message: Buffer.from('m'), SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect(await lastUsage(signing.KeyId!)).toEqual(await expectedUsage(signed.$metadata.requestId!));
  });

  it("every operation of AWS's KeyLastUsageTrackingOperation counts; an invalid signature or MAC, and GetPublicKey, do not", async () => {
    const counted = new Set(['Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKeyPair', 'Sign']); // the tests above
    const expectLast = async (keyId: string, requestId: string | undefined) => {
      const usage = await lastUsage(keyId);
      expect(usage).toEqual(await expectedUsage(requestId!));
      counted.add(usage!.Operation!);
      tick();
    };
    const { keyId } = await symmetricKey();
    await expectLast(keyId, (await aws.kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }))).$metadata.requestId);
    await expectLast(keyId, (await aws.kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, NumberOfBytes: 16 }))).$metadata.requestId);
    await expectLast(
      keyId,
      (await aws.kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256' }))).$metadata.requestId,
    );

    const signing = (await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
    const message = Buffer.from('counted');
    const { Signature } = await aws.kms.send(new SignCommand({ KeyId: signing, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }));
    tick();
    const verified = await aws.kms.send(new VerifyCommand({ KeyId: signing, Message: message, Signature, SigningAlgorithm: 'ECDSA_SHA_256' }));
    await expectLast(signing, verified.$metadata.requestId);
    const invalid = await awsError(
      aws.kms.send(new VerifyCommand({ KeyId: signing, Message: Buffer.from('another'), Signature, SigningAlgorithm: 'ECDSA_SHA_256' })),
    );
    expect(invalid.name).toBe('KMSInvalidSignatureException');
    await aws.kms.send(new GetPublicKeyCommand({ KeyId: signing }));
    expect(await lastUsage(signing)).toEqual(await expectedUsage(verified.$metadata.requestId!));

    const hmac = (await aws.kms.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }))).KeyMetadata!.KeyId!;
    const mac = await aws.kms.send(new GenerateMacCommand({ KeyId: hmac, Message: message, MacAlgorithm: 'HMAC_SHA_256' }));
    await expectLast(hmac, mac.$metadata.requestId);
    const macVerified = await aws.kms.send(new VerifyMacCommand({ KeyId: hmac, Message: message, Mac: mac.Mac, MacAlgorithm: 'HMAC_SHA_256' }));
    await expectLast(hmac, macVerified.$metadata.requestId);
    const wrongMac = await awsError(
      aws.kms.send(new VerifyMacCommand({ KeyId: hmac, Message: Buffer.from('another'), Mac: mac.Mac, MacAlgorithm: 'HMAC_SHA_256' })),
    );
    expect(wrongMac.name).toBe('KMSInvalidMacException');
    expect(await lastUsage(hmac)).toEqual(await expectedUsage(macVerified.$metadata.requestId!));

    const agreement = (await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P384', KeyUsage: 'KEY_AGREEMENT' }))).KeyMetadata!.KeyId!;
    const peer = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ format: 'der', type: 'spki' });
    const derived = await aws.kms.send(new DeriveSharedSecretCommand({ KeyId: agreement, KeyAgreementAlgorithm: 'ECDH', PublicKey: peer }));
    await expectLast(agreement, derived.$metadata.requestId);

    // Between them, the tests of this file see every operation AWS's model says GetKeyLastUsage can answer.
    expect([...counted].sort()).toEqual([...shape('KeyLastUsageTrackingOperation').enum!].sort());
  });

  it('once folded, answers from the usage rollup by key, not from a scan of the log (a tampered rollup shows)', async () => {
    const { keyId, arn } = await symmetricKey();
    tick();
    const used = await aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('rolled up') }));
    const expected = await expectedUsage(used.$metadata.requestId!);
    await catchUpUsageRollup(aws.t.db.app);
    const tamper = (ms: number) =>
      sql`UPDATE audit_usage_key_daily SET last_at = last_at + make_interval(secs => ${ms / 1000}) WHERE key_arn = ${arn}`.execute(aws.t.db.owner);
    await tamper(-3_600_000);
    try {
      expect(await lastUsage(keyId)).toEqual({ ...expected, Timestamp: new Date(expected.Timestamp.getTime() - 3_600_000) });
    } finally {
      await tamper(3_600_000);
    }
    expect(await lastUsage(keyId)).toEqual(expected);
  });

  it("key id or key ARN only: an alias, a missing key and another account's key are NotFoundException", async () => {
    const { keyId, arn } = await symmetricKey();
    await aws.t.app.aliases.createAlias(await aws.t.ctx(aws.admin), { aliasName: 'alias/last-usage', targetKeyId: keyId });
    expect((await awsError(aws.kms.send(new GetKeyLastUsageCommand({ KeyId: 'alias/last-usage' })))).name).toBe('NotFoundException');
    expect((await awsError(aws.kms.send(new GetKeyLastUsageCommand({ KeyId: arn.replace(/key\/.*/, 'alias/last-usage') })))).name).toBe('NotFoundException');
    expect((await awsError(aws.kms.send(new GetKeyLastUsageCommand({ KeyId: '0b1e7c3a-1111-4222-8333-944445555666' })))).name).toBe('NotFoundException');

    // Another account, even one the key policy lets use the key: no cross-account GetKeyLastUsage.
    const other = await aws.t.newAccount('last-usage-other');
    const asOther = kmsClient(aws.server, other);
    try {
      const { Policy } = await aws.kms.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' }));
      const document = JSON.parse(Policy!) as { Statement: unknown[] };
      document.Statement.push({
        Sid: 'Other',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${other.accountId}:root` },
        Action: ['kms:Encrypt', 'kms:GetKeyLastUsage'],
        Resource: '*',
      });
      await aws.kms.send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: JSON.stringify(document) }));
      const used = await asOther.send(new EncryptCommand({ KeyId: arn, Plaintext: Buffer.from('x') }));
      expect((await awsError(asOther.send(new GetKeyLastUsageCommand({ KeyId: arn })))).name).toBe('NotFoundException');
      // The owner sees the other account's use.
      expect(await lastUsage(keyId)).toEqual(await expectedUsage(used.$metadata.requestId!));
    } finally {
      asOther.destroy();
    }
  });

  it('is authorized by kms:GetKeyLastUsage', async () => {
    const { keyId, arn } = await symmetricKey();
    const reader = await aws.t.newUser(
      aws.admin.accountId,
      'last-usage-reader',
      JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:GetKeyLastUsage', Resource: arn }] }),
    );
    const describer = await aws.t.newUser(
      aws.admin.accountId,
      'last-usage-describer',
      JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:DescribeKey', Resource: arn }] }),
    );
    const asReader = kmsClient(aws.server, reader);
    const asDescriber = kmsClient(aws.server, describer);
    try {
      expect((await asReader.send(new GetKeyLastUsageCommand({ KeyId: keyId }))).KeyId).toBe(keyId);
      const denied = await awsError(asDescriber.send(new GetKeyLastUsageCommand({ KeyId: keyId })));
      expect(denied.name).toBe('AccessDeniedException');
      expect(denied.message).toContain('kms:GetKeyLastUsage');
    } finally {
      asReader.destroy();
      asDescriber.destroy();
    }
  });
});

describe('GraphQL: getKeyLastUsage', () => {
  const QUERY =
    `query($i: GetKeyLastUsageInput!) { getKeyLastUsage(input: $i) { keyId trackingStartDate ` +
    `keyCreationDate keyLastUsage { operation timestamp cloudTrailEventId kmsRequestId } } }`;

  it('answers as the AWS endpoint does', async () => {
    const { keyId, arn, created } = await symmetricKey();
    const none = await aws.t.gql(aws.admin, QUERY, { i: { keyId } });
    expect(none.errors).toBeUndefined();
    expect(none.data.getKeyLastUsage).toEqual({ keyId, trackingStartDate: created.toISOString(), keyCreationDate: created.toISOString(), keyLastUsage: null });
    tick();
    const e = await aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('gql') }));
    const expected = await expectedUsage(e.$metadata.requestId!);
    const r = await aws.t.gql(aws.admin, QUERY, { i: { keyId: arn } });
    expect(r.data.getKeyLastUsage.keyLastUsage).toEqual({
      operation: 'Encrypt',
      timestamp: expected.Timestamp.toISOString(),
      cloudTrailEventId: expected.CloudTrailEventId,
      kmsRequestId: expected.KmsRequestId,
    });
    const alias = await aws.t.gql(aws.admin, QUERY, { i: { keyId: 'alias/nothing' } });
    expect(alias.errors?.[0]?.extensions?.code).toBe('NotFoundException');
  });
});
