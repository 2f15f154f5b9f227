import {
  CreateKeyCommand,
  DecryptCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GetKeyRotationStatusCommand,
  GetPublicKeyCommand,
  ReEncryptCommand,
  type KeySpec,
  type KeyUsageType,
} from '@aws-sdk/client-kms';
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
