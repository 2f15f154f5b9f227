import {
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  ScheduleKeyDeletionCommand,
  type CreateKeyCommandInput,
  type ExpirationModelType,
} from '@aws-sdk/client-kms';
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseJson } from '../../src/json.ts';
import { useAwsTestApp } from '../support/aws.ts';
import { recordResponseBodies, wireViolations } from '../support/aws-model.ts';

/**
 * KeyMetadata over the AWS wire, for every kind of key and state, holds
 * exactly the members AWS returns for it (AWS's API reference for each
 * member): the algorithms of the key's usage only; CurrentKeyMaterialId for
 * symmetric encryption keys with material only; DeletionDate, not
 * PendingDeletionWindowInDays, while a single-Region key is PendingDeletion;
 * ExpirationModel once material is imported into an EXTERNAL key, ValidTo
 * when it expires. CreateKey answers with the same members as DescribeKey.
 */

const aws = useAwsTestApp('aws-key-metadata');
let bodies: { last(): string | undefined };
beforeAll(() => {
  bodies = recordResponseBodies(aws.kms);
});

/** The members every KMS key's metadata has in AWS. */
const ALWAYS = [
  'AWSAccountId',
  'Arn',
  'CreationDate',
  'CustomerMasterKeySpec',
  'Description',
  'Enabled',
  'KeyId',
  'KeyManager',
  'KeySpec',
  'KeyState',
  'KeyUsage',
  'MultiRegion',
  'Origin',
];

/** DescribeKey's KeyMetadata as it came over the wire, held to the model. */
async function described(keyId: string): Promise<Record<string, unknown>> {
  await aws.kms.send(new DescribeKeyCommand({ KeyId: keyId }));
  const json = parseJson(bodies.last()!) as { KeyMetadata: Record<string, unknown> };
  expect(wireViolations(json, 'DescribeKeyResponse', 'DescribeKey')).toEqual([]);
  return json.KeyMetadata;
}

/** Creates a key and checks CreateKey's KeyMetadata members are DescribeKey's. */
async function created(input: CreateKeyCommandInput): Promise<string> {
  await aws.kms.send(new CreateKeyCommand(input));
  const json = parseJson(bodies.last()!) as { KeyMetadata: Record<string, unknown> };
  expect(wireViolations(json, 'CreateKeyResponse', 'CreateKey')).toEqual([]);
  const keyId = json.KeyMetadata.KeyId as string;
  expect(Object.keys(json.KeyMetadata).sort()).toEqual(Object.keys(await described(keyId)).sort());
  return keyId;
}

const members = (extra: string[]) => [...ALWAYS, ...extra].sort();

async function importMaterial(keyId: string, expirationModel: ExpirationModelType, validTo?: Date): Promise<void> {
  const params = await aws.kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }));
  const wrapped = publicEncrypt(
    {
      key: createPublicKey({ key: Buffer.from(params.PublicKey!), format: 'der', type: 'spki' }),
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
    },
    randomBytes(32),
  );
  await aws.kms.send(
    new ImportKeyMaterialCommand({
      KeyId: keyId,
      ImportToken: params.ImportToken!,
      EncryptedKeyMaterial: wrapped,
      ExpirationModel: expirationModel,
      ...(validTo ? { ValidTo: validTo } : {}),
    }),
  );
}

describe('KeyMetadata members over the wire, as AWS returns them', () => {
  it('a symmetric encryption key: EncryptionAlgorithms and CurrentKeyMaterialId; Description is always there', async () => {
    const keyId = await created({});
    const metadata = await described(keyId);
    expect(Object.keys(metadata).sort()).toEqual(members(['EncryptionAlgorithms', 'CurrentKeyMaterialId']));
    expect(metadata).toMatchObject({ Description: '', Enabled: true, EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'] });
  });

  it('disabled: the same members, Enabled false', async () => {
    const keyId = await created({ Description: 'to disable' });
    await aws.kms.send(new DisableKeyCommand({ KeyId: keyId }));
    const metadata = await described(keyId);
    expect(Object.keys(metadata).sort()).toEqual(members(['EncryptionAlgorithms', 'CurrentKeyMaterialId']));
    expect(metadata).toMatchObject({ Enabled: false, KeyState: 'Disabled' });
  });

  it('pending deletion (one Region): DeletionDate in epoch seconds, and no PendingDeletionWindowInDays', async () => {
    const keyId = await created({});
    const scheduled = await aws.kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    const metadata = await described(keyId);
    expect(Object.keys(metadata).sort()).toEqual(members(['EncryptionAlgorithms', 'CurrentKeyMaterialId', 'DeletionDate']));
    expect(metadata.DeletionDate).toBe(scheduled.DeletionDate!.getTime() / 1000);
  });

  it.each([
    ['HMAC_256', 'GENERATE_VERIFY_MAC', 'MacAlgorithms'],
    ['RSA_2048', 'ENCRYPT_DECRYPT', 'EncryptionAlgorithms'],
    ['RSA_3072', 'SIGN_VERIFY', 'SigningAlgorithms'],
    ['ECC_NIST_P256', 'SIGN_VERIFY', 'SigningAlgorithms'],
    ['ECC_NIST_P384', 'KEY_AGREEMENT', 'KeyAgreementAlgorithms'],
    ['ECC_NIST_EDWARDS25519', 'SIGN_VERIFY', 'SigningAlgorithms'],
    ['ML_DSA_44', 'SIGN_VERIFY', 'SigningAlgorithms'],
  ] as const)('%s for %s: %s only, and no CurrentKeyMaterialId (not a symmetric encryption key)', async (keySpec, keyUsage, algorithms) => {
    const keyId = await created({ KeySpec: keySpec, KeyUsage: keyUsage });
    expect(Object.keys(await described(keyId)).sort()).toEqual(members([algorithms]));
  });

  it('an EXTERNAL key: before import, no material and no ExpirationModel; imported, ExpirationModel; expiring, ValidTo too', async () => {
    const keyId = await created({ Origin: 'EXTERNAL' });
    const pending = await described(keyId);
    expect(Object.keys(pending).sort()).toEqual(members(['EncryptionAlgorithms']));
    expect(pending).toMatchObject({ KeyState: 'PendingImport', Enabled: false, Origin: 'EXTERNAL' });

    await importMaterial(keyId, 'KEY_MATERIAL_DOES_NOT_EXPIRE');
    const imported = await described(keyId);
    expect(Object.keys(imported).sort()).toEqual(members(['EncryptionAlgorithms', 'CurrentKeyMaterialId', 'ExpirationModel']));
    expect(imported.ExpirationModel).toBe('KEY_MATERIAL_DOES_NOT_EXPIRE');

    const expiringKeyId = await created({ Origin: 'EXTERNAL' });
    const validTo = new Date(Math.floor(Date.now() / 1000) * 1000 + 30 * 86_400_000);
    await importMaterial(expiringKeyId, 'KEY_MATERIAL_EXPIRES', validTo);
    const expiring = await described(expiringKeyId);
    expect(Object.keys(expiring).sort()).toEqual(members(['EncryptionAlgorithms', 'CurrentKeyMaterialId', 'ExpirationModel', 'ValidTo']));
    expect(expiring).toMatchObject({ ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: validTo.getTime() / 1000 });
  });

  it('an AWS managed key: the members of a symmetric encryption key, KeyManager AWS', async () => {
    const metadata = await described('alias/aws/s3');
    expect(Object.keys(metadata).sort()).toEqual(members(['EncryptionAlgorithms', 'CurrentKeyMaterialId']));
    expect(metadata.KeyManager).toBe('AWS');
  });
});
