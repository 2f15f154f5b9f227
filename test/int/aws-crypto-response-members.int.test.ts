import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateMacCommand,
  GenerateRandomCommand,
  GetKeyRotationStatusCommand,
  GetParametersForImportCommand,
  GetPublicKeyCommand,
  ImportKeyMaterialCommand,
  ReEncryptCommand,
  SignCommand,
  type KeySpec,
  type KeyUsageType,
} from '@aws-sdk/client-kms';
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseJson } from '../../src/json.ts';
import { useAwsTestApp } from '../support/aws.ts';
import { recordResponseBodies, wireViolations } from '../support/aws-model.ts';

/**
 * The members of cryptographic and key-reading responses over the AWS wire
 * where AWS's API reference makes them depend on the key: KeyMaterialId
 * (Decrypt, GenerateDataKey*, ReEncrypt's Source/DestinationKeyMaterialId)
 * only for symmetric encryption keys; GetPublicKey's algorithms of the key's
 * usage only; GetKeyRotationStatus's period and next date only while
 * rotation is enabled.
 */

const aws = useAwsTestApp('aws-crypto-members');
let bodies: { last(): string | undefined };
beforeAll(() => {
  bodies = recordResponseBodies(aws.kms);
});

/** The members of the last response, held to the operation's output shape. */
function lastMembers(operation: string): string[] {
  const json = parseJson(bodies.last()!) as Record<string, unknown>;
  expect(wireViolations(json, `${operation}Response`, operation)).toEqual([]);
  return Object.keys(json).sort();
}

async function newKey(keySpec: KeySpec = 'SYMMETRIC_DEFAULT', keyUsage: KeyUsageType = 'ENCRYPT_DECRYPT'): Promise<string> {
  return (await aws.kms.send(new CreateKeyCommand({ KeySpec: keySpec, KeyUsage: keyUsage }))).KeyMetadata!.KeyId!;
}

describe('KeyMetadata-dependent members of cryptographic responses', () => {
  it('Encrypt and Decrypt: KeyMaterialId for a symmetric key only', async () => {
    const symmetric = await newKey();
    const rsa = await newKey('RSA_2048');
    const message = Buffer.from('members');

    const sym = await aws.kms.send(new EncryptCommand({ KeyId: symmetric, Plaintext: message }));
    expect(lastMembers('Encrypt')).toEqual(['CiphertextBlob', 'EncryptionAlgorithm', 'KeyId']);
    await aws.kms.send(new DecryptCommand({ CiphertextBlob: sym.CiphertextBlob! }));
    expect(lastMembers('Decrypt')).toEqual(['EncryptionAlgorithm', 'KeyId', 'KeyMaterialId', 'Plaintext']);

    const asym = await aws.kms.send(new EncryptCommand({ KeyId: rsa, Plaintext: message, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }));
    expect(lastMembers('Encrypt')).toEqual(['CiphertextBlob', 'EncryptionAlgorithm', 'KeyId']);
    await aws.kms.send(new DecryptCommand({ KeyId: rsa, CiphertextBlob: asym.CiphertextBlob!, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }));
    expect(lastMembers('Decrypt')).toEqual(['EncryptionAlgorithm', 'KeyId', 'Plaintext']);
  });

  it('ReEncrypt: SourceKeyMaterialId and DestinationKeyMaterialId each for a symmetric key only', async () => {
    const symmetric = await newKey();
    const rsa = await newKey('RSA_3072');
    const common = ['CiphertextBlob', 'DestinationEncryptionAlgorithm', 'KeyId', 'SourceEncryptionAlgorithm', 'SourceKeyId'];

    const sym = await aws.kms.send(new EncryptCommand({ KeyId: symmetric, Plaintext: Buffer.from('re') }));
    await aws.kms.send(new ReEncryptCommand({ CiphertextBlob: sym.CiphertextBlob!, DestinationKeyId: symmetric }));
    expect(lastMembers('ReEncrypt')).toEqual([...common, 'DestinationKeyMaterialId', 'SourceKeyMaterialId'].sort());

    const toRsa = await aws.kms.send(
      new ReEncryptCommand({ CiphertextBlob: sym.CiphertextBlob!, DestinationKeyId: rsa, DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_1' }),
    );
    expect(lastMembers('ReEncrypt')).toEqual([...common, 'SourceKeyMaterialId'].sort());

    await aws.kms.send(
      new ReEncryptCommand({
        CiphertextBlob: toRsa.CiphertextBlob!,
        SourceKeyId: rsa,
        SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_1',
        DestinationKeyId: symmetric,
      }),
    );
    expect(lastMembers('ReEncrypt')).toEqual([...common, 'DestinationKeyMaterialId'].sort());
  });

  it('GenerateDataKey and GenerateDataKeyPair (under a symmetric key): KeyMaterialId', async () => {
    const symmetric = await newKey();
    await aws.kms.send(new GenerateDataKeyCommand({ KeyId: symmetric, KeySpec: 'AES_256' }));
    expect(lastMembers('GenerateDataKey')).toEqual(['CiphertextBlob', 'KeyId', 'KeyMaterialId', 'Plaintext']);
    await aws.kms.send(new GenerateDataKeyPairCommand({ KeyId: symmetric, KeyPairSpec: 'ECC_NIST_P256' }));
    expect(lastMembers('GenerateDataKeyPair')).toEqual([
      'KeyId',
      'KeyMaterialId',
      'KeyPairSpec',
      'PrivateKeyCiphertextBlob',
      'PrivateKeyPlaintext',
      'PublicKey',
    ]);
  });
});

describe('members of key reads', () => {
  it.each([
    ['RSA_2048', 'ENCRYPT_DECRYPT', 'EncryptionAlgorithms'],
    ['RSA_2048', 'SIGN_VERIFY', 'SigningAlgorithms'],
    ['ECC_NIST_P256', 'KEY_AGREEMENT', 'KeyAgreementAlgorithms'],
  ] as const)('GetPublicKey of %s for %s: %s only', async (keySpec, keyUsage, algorithms) => {
    await aws.kms.send(new GetPublicKeyCommand({ KeyId: await newKey(keySpec, keyUsage) }));
    expect(lastMembers('GetPublicKey')).toEqual(['CustomerMasterKeySpec', 'KeyId', 'KeySpec', 'KeyUsage', 'PublicKey', algorithms].sort());
  });

  it('GetKeyRotationStatus: RotationPeriodInDays and NextRotationDate only while rotation is enabled', async () => {
    const keyId = await newKey();
    await aws.kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
    expect(lastMembers('GetKeyRotationStatus')).toEqual(['KeyId', 'KeyRotationEnabled']);
    await aws.kms.send(new EnableKeyRotationCommand({ KeyId: keyId }));
    await aws.kms.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
    expect(lastMembers('GetKeyRotationStatus')).toEqual(['KeyId', 'KeyRotationEnabled', 'NextRotationDate', 'RotationPeriodInDays']);
  });
});

/** The error a call failed with (fails the test when the call succeeds). */
async function refusal(p: Promise<unknown>): Promise<{ name: string; message: string }> {
  return p.then(
    () => {
      throw new Error('the call succeeded where AWS refuses it');
    },
    (e: { name: string; message: string }) => ({ name: e.name, message: e.message }),
  );
}

/**
 * AWS's own words for refusals, as real AWS answered them (recorded against
 * AWS in LocalStack's KMS snapshot tests, test_kms.snapshot.json).
 */
describe("refusals in AWS's words", () => {
  it('plaintext over the RSA limit, GenerateRandom without NumberOfBytes, a Decrypt naming another key', async () => {
    const rsa = await newKey('RSA_2048');
    expect(await refusal(aws.kms.send(new EncryptCommand({ KeyId: rsa, Plaintext: Buffer.alloc(215), EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' })))).toEqual({
      name: 'ValidationException',
      message: 'Algorithm RSAES_OAEP_SHA_1 and key spec RSA_2048 cannot encrypt data larger than 214 bytes.',
    });
    expect(await refusal(aws.kms.send(new GenerateRandomCommand({})))).toEqual({ name: 'ValidationException', message: 'NumberOfBytes is required.' });

    const [a, b] = [await newKey(), await newKey()];
    const blob = (await aws.kms.send(new EncryptCommand({ KeyId: a, Plaintext: Buffer.from('x') }))).CiphertextBlob!;
    expect(await refusal(aws.kms.send(new DecryptCommand({ KeyId: b, CiphertextBlob: blob })))).toEqual({
      name: 'IncorrectKeyException',
      message: 'The key ID in the request does not identify a CMK that can perform this operation.',
    });
  });

  it('digest length, key usage, MAC algorithm, pending import, import into an AWS_KMS key, an alias without its prefix', async () => {
    const signing = await newKey('ECC_NIST_P256', 'SIGN_VERIFY');
    expect(
      await refusal(aws.kms.send(new SignCommand({ KeyId: signing, Message: Buffer.alloc(31), MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }))),
    ).toEqual({ name: 'ValidationException', message: 'Digest is invalid length for algorithm ECDSA_SHA_256.' });

    const symmetric = await newKey();
    const arn = `arn:aws:kms:us-east-1:${aws.admin.accountId}:key/${symmetric}`;
    expect(await refusal(aws.kms.send(new GenerateMacCommand({ KeyId: symmetric, Message: Buffer.from('m'), MacAlgorithm: 'HMAC_SHA_256' })))).toEqual({
      name: 'InvalidKeyUsageException',
      message: `${arn} key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.`,
    });
    const mac = await newKey('HMAC_224', 'GENERATE_VERIFY_MAC');
    expect(await refusal(aws.kms.send(new GenerateMacCommand({ KeyId: mac, Message: Buffer.from('m'), MacAlgorithm: 'HMAC_SHA_256' })))).toEqual({
      name: 'InvalidKeyUsageException',
      message: 'Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224.',
    });

    const external = (await aws.kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.Arn!;
    expect(await refusal(aws.kms.send(new EncryptCommand({ KeyId: external, Plaintext: Buffer.from('x') })))).toEqual({
      name: 'KMSInvalidStateException',
      message: `${external} is pending import.`,
    });
    expect(
      await refusal(
        aws.kms.send(new GetParametersForImportCommand({ KeyId: symmetric, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' })),
      ),
    ).toEqual({ name: 'UnsupportedOperationException', message: `${arn} origin is AWS_KMS which is not valid for this operation.` });

    expect(await refusal(aws.kms.send(new CreateAliasCommand({ AliasName: 'no-prefix', TargetKeyId: symmetric })))).toEqual({
      name: 'ValidationException',
      message: 'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
    });
  });

  it('a key ARN of another Region: "Invalid arn <region>"', async () => {
    const keyId = await newKey();
    expect(await refusal(aws.kms.send(new DescribeKeyCommand({ KeyId: `arn:aws:kms:ap-southeast-1:${aws.admin.accountId}:key/${keyId}` })))).toEqual({
      name: 'NotFoundException',
      message: 'Invalid arn ap-southeast-1',
    });
  });

  it('ImportKeyMaterial that expires without ValidTo', async () => {
    const keyId = (await aws.kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL' }))).KeyMetadata!.KeyId!;
    const params = await aws.kms.send(
      new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }),
    );
    const wrapped = publicEncrypt(
      {
        key: createPublicKey({ key: Buffer.from(params.PublicKey!), format: 'der', type: 'spki' }),
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: 'sha256',
      },
      randomBytes(32),
    );
    expect(
      await refusal(
        aws.kms.send(
          new ImportKeyMaterialCommand({
            KeyId: keyId,
            ImportToken: params.ImportToken!,
            EncryptedKeyMaterial: wrapped,
            ExpirationModel: 'KEY_MATERIAL_EXPIRES',
          }),
        ),
      ),
    ).toEqual({ name: 'ValidationException', message: 'A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES' });
  });
});
