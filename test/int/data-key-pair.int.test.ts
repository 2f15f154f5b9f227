/**
 * Issue 13: GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext, over
 * the AWS endpoint with the unchanged @aws-sdk/client-kms and over GraphQL.
 * For every DataKeyPairSpec AWS offers outside China, the private key is
 * PKCS#8 DER that node:crypto parses and that matches the public key (a
 * signature made with one verifies with the other); it is encrypted under a
 * symmetric KMS key exactly as a GenerateDataKey data key is, so Decrypt with
 * the encryption context gives it back, another context does not, and the
 * data key lineage shows the generation and every Decrypt. Refusals (key
 * usage, key state, SM2, Recipient, DryRun), policies with kms:DataKeyPairSpec
 * and kms:EncryptionContext:* conditions, grants with an encryption context
 * constraint; one record per request, holding neither the private key nor the
 * ciphertext.
 */
import {
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DisableKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  ScheduleKeyDeletionCommand,
  type DataKeyPairSpec,
  type KMSClient,
} from '@aws-sdk/client-kms';
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseBlobHeader } from '../../src/crypto/ciphertext.ts';
import { kmsClient, useAwsTestApp } from '../support/aws.ts';
import { logHolds as logHoldsIn, recordsOfRequest } from '../support/log-search.ts';

const aws = useAwsTestApp('data-key-pair');

/** Every DataKeyPairSpec of AWS's model but SM2 (China Regions only), with what node:crypto reports of such a key. */
const SPECS: readonly [DataKeyPairSpec, { type: string; modulusLength?: number; namedCurve?: string }][] = [
  ['RSA_2048', { type: 'rsa', modulusLength: 2048 }],
  ['RSA_3072', { type: 'rsa', modulusLength: 3072 }],
  ['RSA_4096', { type: 'rsa', modulusLength: 4096 }],
  ['ECC_NIST_P256', { type: 'ec', namedCurve: 'prime256v1' }],
  ['ECC_NIST_P384', { type: 'ec', namedCurve: 'secp384r1' }],
  ['ECC_NIST_P521', { type: 'ec', namedCurve: 'secp521r1' }],
  ['ECC_SECG_P256K1', { type: 'ec', namedCurve: 'secp256k1' }],
  ['ECC_NIST_EDWARDS25519', { type: 'ed25519' }],
];

const CONTEXT = { tenant: 'acme', purpose: 'data-key-pair' };

async function symmetricKey(client: KMSClient = aws.kms): Promise<{ keyId: string; arn: string }> {
  const { KeyMetadata } = await client.send(new CreateKeyCommand({}));
  return { keyId: KeyMetadata!.KeyId!, arn: KeyMetadata!.Arn! };
}

/** The AWS error a send() fails with: its name (the __type), message and the request id. */
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

const recordsOf = (requestId: string) => recordsOfRequest(aws.t.db.owner, requestId);
const logHolds = (bytes: Uint8Array) => logHoldsIn(aws.t.db.owner, Buffer.from(bytes));

/** A signature by the private key verifies under the public key, and not over another message. */
function expectPair(privateKey: KeyObject, publicKey: KeyObject): void {
  const message = Buffer.from('signed with a data key pair');
  const digest = privateKey.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  const signature = sign(digest, message, privateKey);
  expect(verify(digest, message, publicKey, signature)).toBe(true);
  expect(verify(digest, Buffer.from('another message'), publicKey, signature)).toBe(false);
}

const pkcs8 = (der: Uint8Array) => createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
const spki = (der: Uint8Array) => createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });

describe('GenerateDataKeyPair over the AWS endpoint', () => {
  it.each(SPECS)(
    '%s: a PKCS#8 private key matching the SPKI public key; Decrypt with the context gives it back, another context does not',
    async (spec, details) => {
      const { keyId, arn } = await symmetricKey();
      const pair = await aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: spec, EncryptionContext: CONTEXT }));
      expect(pair).toMatchObject({ KeyId: arn, KeyPairSpec: spec });
      expect(pair.KeyMaterialId).toMatch(/^[0-9a-f]{64}$/);

      const privateKey = pkcs8(pair.PrivateKeyPlaintext!);
      const publicKey = spki(pair.PublicKey!);
      expect(privateKey.asymmetricKeyType).toBe(details.type);
      if (details.modulusLength) expect(privateKey.asymmetricKeyDetails).toMatchObject({ modulusLength: details.modulusLength, publicExponent: 65537n });
      if (details.namedCurve) expect(privateKey.asymmetricKeyDetails?.namedCurve).toBe(details.namedCurve);
      // The public key is the private key's.
      expect(createPublicKey(privateKey).export({ format: 'der', type: 'spki' })).toEqual(Buffer.from(pair.PublicKey!));
      expectPair(privateKey, publicKey);

      const decrypted = await aws.kms.send(new DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob, EncryptionContext: CONTEXT }));
      expect(decrypted.KeyId).toBe(arn);
      expect(Buffer.from(decrypted.Plaintext!)).toEqual(Buffer.from(pair.PrivateKeyPlaintext!));
      expect(decrypted.KeyMaterialId).toBe(pair.KeyMaterialId);

      expect(
        (
          await awsError(
            aws.kms.send(new DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob, EncryptionContext: { ...CONTEXT, tenant: 'initech' } })),
          )
        ).name,
      ).toBe('InvalidCiphertextException');
      expect((await awsError(aws.kms.send(new DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob })))).name).toBe('InvalidCiphertextException');
    },
  );

  it('every pair is new', async () => {
    const { keyId } = await symmetricKey();
    const a = await aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256' }));
    const b = await aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256' }));
    expect(Buffer.from(a.PublicKey!)).not.toEqual(Buffer.from(b.PublicKey!));
    expect(parseBlobHeader(Buffer.from(a.PrivateKeyCiphertextBlob!)).ciphertextId).not.toBe(
      parseBlobHeader(Buffer.from(b.PrivateKeyCiphertextBlob!)).ciphertextId,
    );
  });
});

describe('GenerateDataKeyPairWithoutPlaintext over the AWS endpoint', () => {
  it.each([['RSA_2048'], ['ECC_NIST_P384'], ['ECC_NIST_EDWARDS25519']] as const)(
    '%s: no PrivateKeyPlaintext; Decrypt gives the private key of the public key',
    async (spec) => {
      const { keyId, arn } = await symmetricKey();
      const pair = await aws.kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: keyId, KeyPairSpec: spec, EncryptionContext: CONTEXT }));
      expect(pair).toMatchObject({ KeyId: arn, KeyPairSpec: spec });
      expect('PrivateKeyPlaintext' in pair).toBe(false);
      expect(pair.KeyMaterialId).toMatch(/^[0-9a-f]{64}$/);
      const { Plaintext } = await aws.kms.send(new DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob, EncryptionContext: CONTEXT }));
      const privateKey = pkcs8(Plaintext!);
      expect(createPublicKey(privateKey).export({ format: 'der', type: 'spki' })).toEqual(Buffer.from(pair.PublicKey!));
      expectPair(privateKey, spki(pair.PublicKey!));
    },
  );
});

describe('refusals', () => {
  it('an asymmetric or HMAC KMS key is InvalidKeyUsageException, as for GenerateDataKey', async () => {
    const rsa = (await aws.kms.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }))).KeyMetadata!;
    expect(await awsError(aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: rsa.KeyId, KeyPairSpec: 'RSA_2048' })))).toMatchObject({
      name: 'InvalidKeyUsageException',
      message: 'Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.',
    });
    const signing = (await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!;
    const hmac = (await aws.kms.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }))).KeyMetadata!;
    for (const key of [signing, hmac]) {
      expect(await awsError(aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: key.KeyId, KeyPairSpec: 'ECC_NIST_P256' })))).toMatchObject({
        name: 'InvalidKeyUsageException',
        message: `${key.Arn} key usage is ${key.KeyUsage} which is not valid for GenerateDataKeyPair.`,
      });
      expect(await awsError(aws.kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: key.KeyId, KeyPairSpec: 'ECC_NIST_P256' })))).toMatchObject({
        name: 'InvalidKeyUsageException',
        message: `${key.Arn} key usage is ${key.KeyUsage} which is not valid for GenerateDataKeyPairWithoutPlaintext.`,
      });
    }
  });

  it('key states: DisabledException, KMSInvalidStateException; a missing key is NotFoundException', async () => {
    const disabled = await symmetricKey();
    await aws.kms.send(new DisableKeyCommand({ KeyId: disabled.keyId }));
    expect(await awsError(aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: disabled.keyId, KeyPairSpec: 'ECC_NIST_P256' })))).toMatchObject({
      name: 'DisabledException',
      message: `${disabled.arn} is disabled.`,
    });
    const pending = await symmetricKey();
    await aws.kms.send(new ScheduleKeyDeletionCommand({ KeyId: pending.keyId, PendingWindowInDays: 7 }));
    expect(await awsError(aws.kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: pending.keyId, KeyPairSpec: 'ECC_NIST_P256' })))).toMatchObject({
      name: 'KMSInvalidStateException',
      message: `${pending.arn} is pending deletion.`,
    });
    expect((await awsError(aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: 'alias/no-such-key', KeyPairSpec: 'ECC_NIST_P256' })))).name).toBe(
      'NotFoundException',
    );
  });

  it('SM2 (China Regions only) and Recipient (Nitro Enclaves) are UnsupportedOperationException; an unknown spec is ValidationException', async () => {
    const { keyId } = await symmetricKey();
    expect((await awsError(aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'SM2' })))).name).toBe('UnsupportedOperationException');
    const recipient = await awsError(
      aws.kms.send(
        new GenerateDataKeyPairCommand({
          KeyId: keyId,
          KeyPairSpec: 'ECC_NIST_P256',
          Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: Buffer.from('attestation') },
        }),
      ),
    );
    expect(recipient.name).toBe('UnsupportedOperationException');
    expect(recipient.message).toContain('Recipient');
    const [record] = await recordsOf(recipient.requestId);
    expect(record!.requestParameters.recipient).toEqual({ keyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', attestationDocument: '[given]' });
    expect((await awsError(aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'RSA_1024' as DataKeyPairSpec })))).name).toBe(
      'ValidationException',
    );
  });

  it('DryRun answers DryRunOperationException once every check passed, and does not hide a refusal', async () => {
    const { keyId } = await symmetricKey();
    const dry = await awsError(
      aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'RSA_4096', EncryptionContext: CONTEXT, DryRun: true })),
    );
    expect(dry.name).toBe('DryRunOperationException');
    const [record] = await recordsOf(dry.requestId);
    expect(record).toMatchObject({
      eventName: 'GenerateDataKeyPair',
      outcome: 'failure',
      errorCode: 'DryRunOperationException',
      requestParameters: { dryRun: true, keyPairSpec: 'RSA_4096' },
    });
    expect(record!.additionalEventData.dataKeyId).toBeUndefined();
    expect(
      (await awsError(aws.kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256', DryRun: true })))).name,
    ).toBe('DryRunOperationException');
    const signing = (await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!;
    expect((await awsError(aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: signing.KeyId, KeyPairSpec: 'ECC_NIST_P256', DryRun: true })))).name).toBe(
      'InvalidKeyUsageException',
    );
  });
});

describe('authorization: kms:GenerateDataKeyPair and kms:GenerateDataKeyPairWithoutPlaintext', () => {
  it('an identity policy with kms:DataKeyPairSpec and kms:EncryptionContext:* conditions allows only what it says', async () => {
    const { keyId, arn } = await symmetricKey();
    const policy = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: 'kms:GenerateDataKeyPair',
          Resource: arn,
          Condition: { StringEquals: { 'kms:DataKeyPairSpec': 'ECC_NIST_P256', 'kms:EncryptionContext:tenant': 'acme' } },
        },
      ],
    };
    const user = await aws.t.newUser(aws.admin.accountId, 'pair-maker', JSON.stringify(policy));
    const asUser = kmsClient(aws.server, user);
    try {
      const pair = await asUser.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256', EncryptionContext: { tenant: 'acme' } }));
      expect(pair.KeyId).toBe(arn);
      const otherSpec = await awsError(
        asUser.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'RSA_2048', EncryptionContext: { tenant: 'acme' } })),
      );
      expect(otherSpec).toMatchObject({ name: 'AccessDeniedException' });
      expect(otherSpec.message).toContain('kms:GenerateDataKeyPair');
      expect(
        (await awsError(asUser.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256', EncryptionContext: { tenant: 'initech' } }))))
          .name,
      ).toBe('AccessDeniedException');
      expect((await awsError(asUser.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256' })))).name).toBe('AccessDeniedException');
      const other = await awsError(
        asUser.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256', EncryptionContext: { tenant: 'acme' } })),
      );
      expect(other.name).toBe('AccessDeniedException');
      expect(other.message).toContain('kms:GenerateDataKeyPairWithoutPlaintext');
      // The private key's ciphertext is still the caller's to decrypt only with kms:Decrypt.
      expect(
        (await awsError(asUser.send(new DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob, EncryptionContext: { tenant: 'acme' } })))).name,
      ).toBe('AccessDeniedException');
    } finally {
      asUser.destroy();
    }
  });

  it('a grant of GenerateDataKeyPairWithoutPlaintext with an encryption context constraint allows only that operation and context', async () => {
    const { keyId, arn } = await symmetricKey();
    const grantee = await aws.t.newUser(aws.admin.accountId, 'pair-grantee');
    const asGrantee = kmsClient(aws.server, grantee);
    try {
      expect(
        (
          await awsError(
            asGrantee.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P256', EncryptionContext: CONTEXT })),
          )
        ).name,
      ).toBe('AccessDeniedException');
      await aws.kms.send(
        new CreateGrantCommand({
          KeyId: keyId,
          GranteePrincipal: grantee.principalArn,
          Operations: ['GenerateDataKeyPairWithoutPlaintext'],
          Constraints: { EncryptionContextEquals: CONTEXT },
        }),
      );
      const pair = await asGrantee.send(
        new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: arn, KeyPairSpec: 'ECC_NIST_P256', EncryptionContext: CONTEXT }),
      );
      expect(pair.KeyId).toBe(arn);
      const [record] = await recordsOf(pair.$metadata.requestId!);
      expect(record!.authorization.allowedBy).toEqual([expect.objectContaining({ kind: 'grant' })]);
      expect(
        (
          await awsError(
            asGrantee.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: arn, KeyPairSpec: 'ECC_NIST_P256', EncryptionContext: { tenant: 'acme' } })),
          )
        ).name,
      ).toBe('AccessDeniedException');
      expect(
        (await awsError(asGrantee.send(new GenerateDataKeyPairCommand({ KeyId: arn, KeyPairSpec: 'ECC_NIST_P256', EncryptionContext: CONTEXT })))).name,
      ).toBe('AccessDeniedException');
    } finally {
      asGrantee.destroy();
    }
  });
});

describe('GraphQL: generateDataKeyPair and generateDataKeyPairWithoutPlaintext', () => {
  const GENERATE =
    `mutation($i: GenerateDataKeyPairInput!) { generateDataKeyPair(input: $i) ` +
    `{ privateKeyCiphertextBlob privateKeyPlaintext publicKey keyId keyPairSpec keyMaterialId } }`;
  const GENERATE_WP =
    `mutation($i: GenerateDataKeyPairWithoutPlaintextInput!) { generateDataKeyPairWithoutPlaintext(input: $i) ` +
    `{ privateKeyCiphertextBlob publicKey keyId keyPairSpec keyMaterialId } }`;
  const DECRYPT = `mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext keyId } }`;
  const DATA_KEY = `query($id: String!) { dataKey(id: $id) {
    dataKeyId keyArn keyMaterialId encryptionContext useCount failedUseCount
    generatedBy { requestId eventName outcome keyArn } uses { requestId eventName outcome errorCode }
  } }`;

  it('a key pair, its private key decrypting under the context; the dataKey lineage shows the generation and each Decrypt', async () => {
    const { keyId, arn } = await symmetricKey();
    const g = await aws.t.gql(aws.admin, GENERATE, { i: { keyId, keyPairSpec: 'ECC_SECG_P256K1', encryptionContext: CONTEXT } });
    expect(g.errors).toBeUndefined();
    const pair = g.data.generateDataKeyPair;
    expect(pair).toMatchObject({ keyId: arn, keyPairSpec: 'ECC_SECG_P256K1' });
    const privateDer = Buffer.from(pair.privateKeyPlaintext, 'base64');
    expect(createPublicKey(pkcs8(privateDer)).export({ format: 'der', type: 'spki' }).toString('base64')).toBe(pair.publicKey);

    const d = await aws.t.gql(aws.admin, DECRYPT, { i: { ciphertextBlob: pair.privateKeyCiphertextBlob, encryptionContext: CONTEXT } });
    expect(d.errors).toBeUndefined();
    expect(d.data.decrypt).toEqual({ plaintext: pair.privateKeyPlaintext, keyId: arn });
    const wrong = await aws.t.gql(aws.admin, DECRYPT, { i: { ciphertextBlob: pair.privateKeyCiphertextBlob, encryptionContext: { tenant: 'acme' } } });
    expect(wrong.errors?.[0]?.extensions?.code).toBe('InvalidCiphertextException');

    const dataKeyId = parseBlobHeader(Buffer.from(pair.privateKeyCiphertextBlob, 'base64')).ciphertextId;
    const l = await aws.t.gql(aws.admin, DATA_KEY, { id: dataKeyId });
    expect(l.errors).toBeUndefined();
    expect(l.data.dataKey).toMatchObject({
      dataKeyId,
      keyArn: arn,
      keyMaterialId: pair.keyMaterialId,
      encryptionContext: CONTEXT,
      useCount: 2,
      failedUseCount: 1,
      generatedBy: { eventName: 'GenerateDataKeyPair', outcome: 'success', keyArn: arn },
    });
    expect(l.data.dataKey.uses.map((u: { eventName: string; outcome: string; errorCode: string | null }) => [u.eventName, u.outcome, u.errorCode])).toEqual([
      ['Decrypt', 'success', null],
      ['Decrypt', 'failure', 'InvalidCiphertextException'],
    ]);
  });

  it('without plaintext: the encrypted private key and the public key only; its lineage too', async () => {
    const { keyId, arn } = await symmetricKey();
    const g = await aws.t.gql(aws.admin, GENERATE_WP, { i: { keyId, keyPairSpec: 'RSA_2048', encryptionContext: CONTEXT } });
    expect(g.errors).toBeUndefined();
    const pair = g.data.generateDataKeyPairWithoutPlaintext;
    expect(pair).toMatchObject({ keyId: arn, keyPairSpec: 'RSA_2048' });
    const noPlaintext = await aws.t.gql(
      aws.admin,
      `mutation($i: GenerateDataKeyPairWithoutPlaintextInput!) { generateDataKeyPairWithoutPlaintext(input: $i) { privateKeyPlaintext } }`,
      {
        i: { keyId, keyPairSpec: 'RSA_2048' },
      },
    );
    expect(noPlaintext.errors?.[0]?.message).toContain('privateKeyPlaintext');
    const d = await aws.t.gql(aws.admin, DECRYPT, { i: { ciphertextBlob: pair.privateKeyCiphertextBlob, encryptionContext: CONTEXT } });
    expectPair(pkcs8(Buffer.from(d.data.decrypt.plaintext, 'base64')), spki(Buffer.from(pair.publicKey, 'base64')));
    const dataKeyId = parseBlobHeader(Buffer.from(pair.privateKeyCiphertextBlob, 'base64')).ciphertextId;
    const l = (await aws.t.gql(aws.admin, DATA_KEY, { id: dataKeyId })).data.dataKey;
    expect(l.generatedBy.eventName).toBe('GenerateDataKeyPairWithoutPlaintext');
    expect(l.uses.map((u: { eventName: string }) => u.eventName)).toEqual(['Decrypt']);
  });

  it('errors carry the AWS error name and the request id', async () => {
    const signing = (await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!;
    const r = await aws.t.gql(aws.admin, GENERATE, { i: { keyId: signing.KeyId, keyPairSpec: 'ECC_NIST_P256' } });
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: 'InvalidKeyUsageException', requestId: expect.any(String) });
    const recipient = await aws.t.gql(aws.admin, GENERATE, {
      i: { keyId: (await symmetricKey()).keyId, keyPairSpec: 'ECC_NIST_P256', recipient: { attestationDocument: Buffer.from('x').toString('base64') } },
    });
    expect(recipient.errors?.[0]?.extensions?.code).toBe('UnsupportedOperationException');
  });
});

describe('audit records', () => {
  it('one record per request, readOnly, naming the key, its material, the data key id and the spec; never the private key or the ciphertext', async () => {
    const { keyId, arn } = await symmetricKey();
    const pair = await aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: keyId, KeyPairSpec: 'RSA_3072', EncryptionContext: CONTEXT }));
    const withoutPlaintext = await aws.kms.send(
      new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: keyId, KeyPairSpec: 'ECC_NIST_P521', EncryptionContext: CONTEXT }),
    );
    const decrypted = await aws.kms.send(new DecryptCommand({ CiphertextBlob: withoutPlaintext.PrivateKeyCiphertextBlob, EncryptionContext: CONTEXT }));

    for (const [response, eventName, spec] of [
      [pair, 'GenerateDataKeyPair', 'RSA_3072'],
      [withoutPlaintext, 'GenerateDataKeyPairWithoutPlaintext', 'ECC_NIST_P521'],
    ] as const) {
      const records = await recordsOf(response.$metadata.requestId!);
      expect(records).toHaveLength(1);
      const header = parseBlobHeader(Buffer.from(response.PrivateKeyCiphertextBlob!));
      expect(records[0]).toMatchObject({
        eventName,
        outcome: 'success',
        readOnly: true,
        resources: [{ arn, type: 'AWS::KMS::Key' }],
        requestParameters: { keyId, keyPairSpec: spec, encryptionContext: CONTEXT },
        additionalEventData: {
          keyMaterialId: response.KeyMaterialId,
          ciphertextId: header.ciphertextId,
          dataKeyId: header.ciphertextId,
          keyPairSpec: spec,
          publicKeySha256: createHash('sha256').update(response.PublicKey!).digest('hex'),
        },
        responseElements: null,
      });
    }
    const [decryptRecord] = await recordsOf(decrypted.$metadata.requestId!);
    expect(decryptRecord!.additionalEventData.dataKeyId).toBe(parseBlobHeader(Buffer.from(withoutPlaintext.PrivateKeyCiphertextBlob!)).ciphertextId);

    // Positive control: the data key id is in the log (as hex), so the search sees records.
    expect(await logHolds(Buffer.from(parseBlobHeader(Buffer.from(pair.PrivateKeyCiphertextBlob!)).ciphertextId, 'hex'))).toBe(true);
    for (const secret of [pair.PrivateKeyPlaintext!, decrypted.Plaintext!, pair.PrivateKeyCiphertextBlob!, withoutPlaintext.PrivateKeyCiphertextBlob!]) {
      expect(await logHolds(secret)).toBe(false);
    }
    // Nor the public key itself (only its SHA-256), nor the application's log lines.
    expect(await logHolds(pair.PublicKey!)).toBe(false);
    const logText = aws.t.logLines.join('');
    for (const secret of [pair.PrivateKeyPlaintext!, decrypted.Plaintext!]) {
      expect(logText.includes(Buffer.from(secret).toString('base64'))).toBe(false);
      expect(logText.includes(Buffer.from(secret).toString('hex'))).toBe(false);
    }
  });
});
