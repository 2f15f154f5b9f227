import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DeleteImportedKeyMaterialCommand,
  DeriveSharedSecretCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateMacCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  GetParametersForImportCommand,
  GetPublicKeyCommand,
  ImportKeyMaterialCommand,
  ListAliasesCommand,
  ListKeyPoliciesCommand,
  ListKeysCommand,
  PutKeyPolicyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  SignCommand,
  UpdateAliasCommand,
  VerifyCommand,
  VerifyMacCommand,
  type CreateKeyCommandInput,
  type KeyMetadata,
  type MacAlgorithmSpec,
} from '@aws-sdk/client-kms';
import { execFileSync } from 'node:child_process';
import { constants, createCipheriv, createHmac, createPublicKey, generateKeyPairSync, publicEncrypt, randomBytes, randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseJson } from '../../src/json.ts';
import { useAwsTestApp } from '../support/aws.ts';
import { recordResponseBodies } from '../support/aws-model.ts';
import { recordsOfRequest } from '../support/log-search.ts';

/**
 * Scenarios of the second half of LocalStack's KMS tests marked
 * `@markers.aws.validated` (tests/aws/services/kms/test_kms.py, from
 * test_rotate_key_on_demand_with_symmetric_key_and_automatic_rotation_disabled
 * to the end), driven with the AWS SDK. The expectations are AWS's own
 * answers: the responses recorded against AWS in LocalStack's validated
 * snapshot (test_kms.snapshot.json, named per test below) and the assertions
 * those validated tests make of AWS; never LocalStack's implementation. Where
 * the stored snapshot has no recording for a test, the comment says what the
 * expectation rests on. Every refusal is also checked to be recorded once in
 * the audit log, as a failure with its code.
 */

const aws = useAwsTestApp('aws-conformance-b');
let bodies: { last(): string | undefined };
beforeAll(() => {
  bodies = recordResponseBodies(aws.kms);
});

const arnOf = (keyId: string) => `arn:aws:kms:us-east-1:${aws.admin.accountId}:key/${keyId}`;

/** The last response's raw JSON body. */
const lastBody = () => parseJson(bodies.last()!) as Record<string, unknown>;

/** The members of the last response's body (of its KeyMetadata when it has one), sorted. */
function lastMembers(): string[] {
  const body = lastBody();
  return Object.keys((body.KeyMetadata as Record<string, unknown> | undefined) ?? body).sort();
}

/**
 * The refusal of a call: its HTTP status and raw body (AWS's `__type` and
 * `message`, or no `message` where AWS gives none), after checking that it
 * was recorded once in the audit log as a failure with that code.
 */
async function refusal(p: Promise<unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const e = await p.then(
    () => {
      throw new Error('the call succeeded where AWS refuses it');
    },
    (error: { $metadata?: { httpStatusCode?: number; requestId?: string } }) => error,
  );
  const body = lastBody();
  const records = await recordsOfRequest(aws.t.db.owner, e.$metadata!.requestId!);
  expect(records.map((r) => [r.outcome, r.errorCode])).toEqual([['failure', body.__type]]);
  return { status: e.$metadata!.httpStatusCode!, body };
}

async function newKey(input: CreateKeyCommandInput = {}): Promise<KeyMetadata> {
  return (await aws.kms.send(new CreateKeyCommand(input))).KeyMetadata!;
}

/** KeyMetadata members every key of one Region has. */
const COMMON = [
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
const members = (...more: string[]) => [...COMMON, ...more].sort();

/** `material` wrapped under GetParametersForImport's public key with RSAES_OAEP_SHA_1 or _256. */
function oaepWrap(publicKey: Uint8Array, material: Buffer, hash: 'sha1' | 'sha256' = 'sha256'): Buffer {
  const key = createPublicKey({ key: Buffer.from(publicKey), format: 'der', type: 'spki' });
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, material);
}

async function importParameters(
  keyId: string,
  wrappingAlgorithm: 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256' | 'RSA_AES_KEY_WRAP_SHA_256',
  wrappingKeySpec: 'RSA_2048' | 'RSA_4096',
) {
  return aws.kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: wrappingAlgorithm, WrappingKeySpec: wrappingKeySpec }));
}

/** Imports 32 random bytes into an EXTERNAL symmetric key (RSAES_OAEP_SHA_256, RSA_2048), as the LocalStack tests do. */
async function importSymmetric(keyId: string, importType?: 'NEW_KEY_MATERIAL'): Promise<void> {
  const params = await importParameters(keyId, 'RSAES_OAEP_SHA_256', 'RSA_2048');
  await aws.kms.send(
    new ImportKeyMaterialCommand({
      KeyId: keyId,
      ImportToken: params.ImportToken!,
      EncryptedKeyMaterial: oaepWrap(params.PublicKey!, randomBytes(32)),
      ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      ...(importType ? { ImportType: importType } : {}),
    }),
  );
}

describe('RotateKeyOnDemand and GetKeyRotationStatus', () => {
  // test_rotate_key_on_demand_with_symmetric_key_and_automatic_rotation_disabled / _enabled: AWS answers the key ARN
  // (test_rotate_on_demand_returns_arn_for_key_id asserts it of AWS); once the rotation has completed the status has no
  // OnDemandRotationStartDate (both tests wait for it to go), and the automatic schedule is kept.
  it('automatic rotation disabled: the key ARN, then a status without OnDemandRotationStartDate', async () => {
    const { KeyId } = await newKey();
    await aws.kms.send(new RotateKeyOnDemandCommand({ KeyId }));
    expect(lastBody()).toEqual({ KeyId: arnOf(KeyId!) });
    expect(await aws.kms.send(new GetKeyRotationStatusCommand({ KeyId }))).toMatchObject({ KeyId: arnOf(KeyId!), KeyRotationEnabled: false });
    expect(lastMembers()).toEqual(['KeyId', 'KeyRotationEnabled']);
  });

  it('automatic rotation enabled: NextRotationDate unchanged, no OnDemandRotationStartDate', async () => {
    const { KeyId } = await newKey();
    await aws.kms.send(new EnableKeyRotationCommand({ KeyId }));
    const before = await aws.kms.send(new GetKeyRotationStatusCommand({ KeyId }));
    await aws.kms.send(new RotateKeyOnDemandCommand({ KeyId }));
    expect(lastBody()).toEqual({ KeyId: arnOf(KeyId!) });
    const after = await aws.kms.send(new GetKeyRotationStatusCommand({ KeyId }));
    expect(lastMembers()).toEqual(['KeyId', 'KeyRotationEnabled', 'NextRotationDate', 'RotationPeriodInDays']);
    expect(after).toMatchObject({ KeyRotationEnabled: true, RotationPeriodInDays: 365, NextRotationDate: before.NextRotationDate });
  });

  // test_key_enable_rotation_status[90] and [180]
  it.each([90, 180])('EnableKeyRotation with RotationPeriodInDays %i: the status shows that period', async (days) => {
    const { KeyId } = await newKey();
    await aws.kms.send(new EnableKeyRotationCommand({ KeyId, RotationPeriodInDays: days }));
    expect(await aws.kms.send(new GetKeyRotationStatusCommand({ KeyId }))).toMatchObject({
      KeyId: arnOf(KeyId!),
      KeyRotationEnabled: true,
      RotationPeriodInDays: days,
    });
    expect(lastMembers()).toEqual(['KeyId', 'KeyRotationEnabled', 'NextRotationDate', 'RotationPeriodInDays']);
  });

  // test_rotate_key_on_demand_raises_error_given_key_is_disabled / _key_that_does_not_exist / _non_symmetric_key and
  // test_rotate_key_on_demand_on_external_key_with_no_key_material: their recordings are not in the stored snapshot; the
  // codes follow the test names and the words AWS uses for these states elsewhere in the snapshot.
  it('refuses a disabled key, a key that does not exist, an RSA key, and an EXTERNAL key without material', async () => {
    const disabled = await newKey({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'RSA_4096' });
    await aws.kms.send(new DisableKeyCommand({ KeyId: disabled.KeyId }));
    expect(await refusal(aws.kms.send(new RotateKeyOnDemandCommand({ KeyId: disabled.KeyId })))).toEqual({
      status: 400,
      body: { __type: 'DisabledException', message: `${disabled.Arn} is disabled.` },
    });

    const missing = '1234abcd-12ab-34cd-56ef-1234567890ab';
    expect(await refusal(aws.kms.send(new RotateKeyOnDemandCommand({ KeyId: missing })))).toEqual({
      status: 400,
      body: { __type: 'NotFoundException', message: `Key '${arnOf(missing)}' does not exist` },
    });

    const rsa = await newKey({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'RSA_4096' });
    const refused = await refusal(aws.kms.send(new RotateKeyOnDemandCommand({ KeyId: rsa.KeyId })));
    expect([refused.status, refused.body.__type]).toEqual([400, 'UnsupportedOperationException']);

    const external = await newKey({ Origin: 'EXTERNAL', KeyUsage: 'ENCRYPT_DECRYPT', Description: 'test-key' });
    expect(await refusal(aws.kms.send(new RotateKeyOnDemandCommand({ KeyId: external.KeyId })))).toEqual({
      status: 400,
      body: { __type: 'KMSInvalidStateException', message: `${external.Arn} is pending import.` },
    });
  });
});

describe('imported key material', () => {
  // test_rotate_key_on_demand_updates_current_key_material_for_external_keys (its assertions of AWS; the KeyMetadata
  // shapes as recorded for test_import_key_symmetric, plus CurrentKeyMaterialId once the key has material).
  it('EXTERNAL symmetric key: material imported as NEW_KEY_MATERIAL becomes current only by RotateKeyOnDemand', async () => {
    const created = await newKey({ Origin: 'EXTERNAL', KeyUsage: 'ENCRYPT_DECRYPT', Description: 'test-key' });
    expect(lastMembers()).toEqual(members('EncryptionAlgorithms'));
    expect(created).toMatchObject({ Enabled: false, KeyState: 'PendingImport', Origin: 'EXTERNAL' });
    const params = await importParameters(created.KeyId!, 'RSAES_OAEP_SHA_256', 'RSA_2048');
    expect(lastMembers()).toEqual(['ImportToken', 'KeyId', 'ParametersValidTo', 'PublicKey']);
    expect(params.KeyId).toBe(created.Arn);

    await importSymmetric(created.KeyId!);
    expect(lastMembers()).toEqual(['KeyId', 'KeyMaterialId']);
    const first = (await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }))).KeyMetadata!;
    expect(lastMembers()).toEqual(members('CurrentKeyMaterialId', 'EncryptionAlgorithms', 'ExpirationModel'));
    expect(first).toMatchObject({ Enabled: true, KeyState: 'Enabled', ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });

    const plaintext = Buffer.from('Hello World!1/?');
    const before = await aws.kms.send(new EncryptCommand({ KeyId: created.KeyId, Plaintext: plaintext, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }));
    expect(lastMembers()).toEqual(['CiphertextBlob', 'EncryptionAlgorithm', 'KeyId']);

    await importSymmetric(created.KeyId!, 'NEW_KEY_MATERIAL');
    expect((await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }))).KeyMetadata!.CurrentKeyMaterialId).toBe(first.CurrentKeyMaterialId);
    await aws.kms.send(new RotateKeyOnDemandCommand({ KeyId: created.KeyId }));
    expect(lastBody()).toEqual({ KeyId: created.Arn });
    const rotated = (await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }))).KeyMetadata!;
    expect(rotated.CurrentKeyMaterialId).not.toBe(first.CurrentKeyMaterialId);

    const after = await aws.kms.send(new EncryptCommand({ KeyId: created.KeyId, Plaintext: plaintext, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }));
    expect(Buffer.from(after.CiphertextBlob!).equals(Buffer.from(before.CiphertextBlob!))).toBe(false);
    const decrypted = await aws.kms.send(
      new DecryptCommand({ KeyId: created.KeyId, CiphertextBlob: after.CiphertextBlob, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' }),
    );
    expect(Buffer.from(decrypted.Plaintext!).equals(plaintext)).toBe(true);
    expect(decrypted.KeyMaterialId).toBe(rotated.CurrentKeyMaterialId);
  });

  // test_import_key_material_raises_if_there_is_already_key_material_pending: its recording is not in the stored
  // snapshot; the code is the one AWS gives for an operation the key's state does not allow.
  it('a third NEW_KEY_MATERIAL import while one is pending rotation is refused', async () => {
    const { KeyId } = await newKey({ Origin: 'EXTERNAL', KeyUsage: 'ENCRYPT_DECRYPT', Description: 'test-key' });
    await importSymmetric(KeyId!);
    await importSymmetric(KeyId!, 'NEW_KEY_MATERIAL');
    const refused = await refusal(importSymmetric(KeyId!, 'NEW_KEY_MATERIAL'));
    expect([refused.status, refused.body.__type]).toEqual([400, 'KMSInvalidStateException']);
  });

  // test_import_key_rsa_aes_wrap_sha256 (KeyMetadata shapes as recorded for test_import_key_asymmetric).
  it('RSA_4096 ENCRYPT_DECRYPT private key wrapped with RSA_AES_KEY_WRAP_SHA_256', async () => {
    const created = await newKey({ Origin: 'EXTERNAL', KeySpec: 'RSA_4096', KeyUsage: 'ENCRYPT_DECRYPT', Description: 'test-key' });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 4096 });
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    const params = await importParameters(created.KeyId!, 'RSA_AES_KEY_WRAP_SHA_256', 'RSA_4096');
    const ephemeral = randomBytes(32);
    const kwp = createCipheriv('id-aes256-wrap-pad', ephemeral, Buffer.from('A65959A6', 'hex'));
    const wrapped = Buffer.concat([oaepWrap(params.PublicKey!, ephemeral), kwp.update(pkcs8), kwp.final()]);

    await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }));
    expect(lastMembers()).toEqual(members('EncryptionAlgorithms'));
    await aws.kms.send(
      new ImportKeyMaterialCommand({
        KeyId: created.KeyId,
        ImportToken: params.ImportToken,
        EncryptedKeyMaterial: wrapped,
        ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      }),
    );
    const imported = (await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }))).KeyMetadata!;
    expect(lastMembers()).toEqual(members('EncryptionAlgorithms', 'ExpirationModel'));
    expect(imported).toMatchObject({ KeyState: 'Enabled', Enabled: true, EncryptionAlgorithms: ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] });
    const got = await aws.kms.send(new GetPublicKeyCommand({ KeyId: created.KeyId }));
    expect(Buffer.from(got.PublicKey!).equals(publicKey.export({ format: 'der', type: 'spki' }))).toBe(true);

    await aws.kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: created.KeyId }));
    expect((await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }))).KeyMetadata).toMatchObject({ KeyState: 'PendingImport', Enabled: false });
    expect(lastMembers()).toEqual(members('EncryptionAlgorithms'));
  });

  // test_import_key_ecc_keys[ECC_NIST_P256 / ECC_NIST_P384 / ECC_NIST_P521 / ECC_SECG_P256K1]
  it.each([
    ['ECC_NIST_P256', 'prime256v1', 'sha1', 'ECDSA_SHA_256', 'RSA_2048', 'RSAES_OAEP_SHA_1'],
    ['ECC_NIST_P384', 'secp384r1', 'sha1', 'ECDSA_SHA_384', 'RSA_2048', 'RSAES_OAEP_SHA_1'],
    ['ECC_NIST_P521', 'secp521r1', 'sha256', 'ECDSA_SHA_512', 'RSA_4096', 'RSAES_OAEP_SHA_256'],
    ['ECC_SECG_P256K1', 'secp256k1', 'sha1', 'ECDSA_SHA_256', 'RSA_2048', 'RSAES_OAEP_SHA_1'],
  ] as const)(
    '%s SIGN_VERIFY private key: imported, signs and verifies, material deleted',
    async (keySpec, curve, hash, algorithm, wrappingKeySpec, wrappingAlgorithm) => {
      const created = await newKey({ Origin: 'EXTERNAL', KeySpec: keySpec, KeyUsage: 'SIGN_VERIFY', Description: 'test ecc key import' });
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      const params = await importParameters(created.KeyId!, wrappingAlgorithm, wrappingKeySpec);
      await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }));
      expect(lastMembers()).toEqual(members('SigningAlgorithms'));
      await aws.kms.send(
        new ImportKeyMaterialCommand({
          KeyId: created.KeyId,
          ImportToken: params.ImportToken,
          EncryptedKeyMaterial: oaepWrap(params.PublicKey!, privateKey.export({ format: 'der', type: 'pkcs8' }), hash),
          ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
        }),
      );
      expect((await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }))).KeyMetadata).toMatchObject({
        KeyState: 'Enabled',
        SigningAlgorithms: [algorithm],
      });
      expect(lastMembers()).toEqual(members('ExpirationModel', 'SigningAlgorithms'));
      const got = await aws.kms.send(new GetPublicKeyCommand({ KeyId: created.KeyId }));
      expect(Buffer.from(got.PublicKey!).equals(publicKey.export({ format: 'der', type: 'spki' }))).toBe(true);

      const message = Buffer.from('test sign verify 123 !%$@ 1234567890');
      const signed = await aws.kms.send(new SignCommand({ KeyId: created.KeyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm }));
      expect(lastMembers()).toEqual(['KeyId', 'Signature', 'SigningAlgorithm']);
      await aws.kms.send(
        new VerifyCommand({ KeyId: created.KeyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm, Signature: signed.Signature }),
      );
      expect(lastBody()).toEqual({ KeyId: created.Arn, SignatureValid: true, SigningAlgorithm: algorithm });

      await aws.kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: created.KeyId }));
      expect((await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }))).KeyMetadata).toMatchObject({ KeyState: 'PendingImport', Enabled: false });
      expect(lastMembers()).toEqual(members('SigningAlgorithms'));
    },
  );

  // test_import_key_hmac_keys[HMAC_224 / HMAC_256 / HMAC_384 / HMAC_512]
  it.each([
    ['HMAC_224', 28, 'HMAC_SHA_224'],
    ['HMAC_256', 32, 'HMAC_SHA_256'],
    ['HMAC_384', 48, 'HMAC_SHA_384'],
    ['HMAC_512', 64, 'HMAC_SHA_512'],
  ] as const)(
    '%s key material of %i bytes: imported, MACs (as node:crypto and openssl do with the key) and verifies, material deleted',
    async (keySpec, length, algorithm) => {
      const created = await newKey({ Origin: 'EXTERNAL', KeySpec: keySpec, KeyUsage: 'GENERATE_VERIFY_MAC', Description: 'test import hmac key' });
      const params = await importParameters(created.KeyId!, 'RSAES_OAEP_SHA_256', 'RSA_4096');
      const material = randomBytes(length);
      await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }));
      expect(lastMembers()).toEqual(members('MacAlgorithms'));
      await aws.kms.send(
        new ImportKeyMaterialCommand({
          KeyId: created.KeyId,
          ImportToken: params.ImportToken,
          EncryptedKeyMaterial: oaepWrap(params.PublicKey!, material),
          ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
        }),
      );
      await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }));
      expect(lastMembers()).toEqual(members('ExpirationModel', 'MacAlgorithms'));
      const message = Buffer.from('test-mac-message');
      const mac = await aws.kms.send(new GenerateMacCommand({ KeyId: created.KeyId, Message: message, MacAlgorithm: algorithm }));
      expect(lastMembers()).toEqual(['KeyId', 'Mac', 'MacAlgorithm']);
      // Checked offline with the imported key: node:crypto and the openssl CLI compute the same MAC.
      const hash = `sha${algorithm.slice('HMAC_SHA_'.length)}`;
      expect(Buffer.from(mac.Mac!)).toEqual(createHmac(hash, material).update(message).digest());
      const opensslMac = execFileSync('openssl', ['dgst', `-${hash}`, '-mac', 'HMAC', '-macopt', `hexkey:${material.toString('hex')}`, '-hex', '-r'], {
        input: message,
        encoding: 'utf8',
      }).split(' ')[0];
      expect(opensslMac).toBe(Buffer.from(mac.Mac!).toString('hex'));
      await aws.kms.send(new VerifyMacCommand({ KeyId: created.KeyId, Message: message, MacAlgorithm: algorithm, Mac: mac.Mac }));
      expect(lastBody()).toEqual({ KeyId: created.Arn, MacAlgorithm: algorithm, MacValid: true });
      await aws.kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: created.KeyId }));
      await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }));
      expect(lastMembers()).toEqual(members('MacAlgorithms'));
    },
  );

  // test_get_parameters_for_import (recorded: response-error) and test_get_parameters_for_import_raises_for_non_external_kms_keys
  it('GetParametersForImport: the key ARN for an EXTERNAL key; an AWS_KMS key is refused in AWS words', async () => {
    const signing = await newKey({ KeyUsage: 'SIGN_VERIFY', KeySpec: 'ECC_NIST_P256', Origin: 'EXTERNAL' });
    const params = await importParameters(signing.KeyId!, 'RSAES_OAEP_SHA_256', 'RSA_4096');
    expect(params.KeyId).toBe(signing.Arn);
    expect(params.ParametersValidTo).toBeInstanceOf(Date);
    const own = await newKey();
    for (const wrappingKeySpec of ['RSA_4096', 'RSA_2048'] as const) {
      expect(await refusal(importParameters(own.KeyId!, 'RSAES_OAEP_SHA_256', wrappingKeySpec))).toEqual({
        status: 400,
        body: { __type: 'UnsupportedOperationException', message: `${own.Arn} origin is AWS_KMS which is not valid for this operation.` },
      });
    }
  });
});

describe('aliases, key policies, key states', () => {
  // test_create_list_delete_alias and test_update_alias
  it('an alias is listed once created, follows UpdateAlias, and is gone once deleted', async () => {
    const aliasName = `alias/${randomUUID().slice(0, 8)}`;
    const listed = async () => ((await aws.kms.send(new ListAliasesCommand({}))).Aliases ?? []).find((a) => a.AliasName === aliasName);
    expect(await listed()).toBeUndefined();
    const [first, second] = [await newKey(), await newKey()];
    await aws.kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: first.KeyId }));
    expect(await listed()).toMatchObject({ AliasName: aliasName, TargetKeyId: first.KeyId });
    await aws.kms.send(new UpdateAliasCommand({ AliasName: aliasName, TargetKeyId: second.KeyId }));
    expect(await listed()).toMatchObject({ TargetKeyId: second.KeyId });
    await aws.kms.send(new DeleteAliasCommand({ AliasName: aliasName }));
    expect(await listed()).toBeUndefined();
  });

  // test_describe_with_alias_arn (recorded KeyMetadata of a symmetric key, CurrentKeyMaterialId aside)
  it('DescribeKey by alias ARN', async () => {
    const aliasName = `alias/${randomUUID().slice(0, 8)}`;
    const created = await newKey({ Description: 'test - description' });
    await aws.kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: created.KeyId }));
    const described = (await aws.kms.send(new DescribeKeyCommand({ KeyId: `arn:aws:kms:us-east-1:${aws.admin.accountId}:${aliasName}` }))).KeyMetadata!;
    expect(lastMembers()).toEqual(members('CurrentKeyMaterialId', 'EncryptionAlgorithms'));
    expect(described).toMatchObject({ KeyId: created.KeyId, Description: 'test - description', KeyState: 'Enabled', Origin: 'AWS_KMS' });
  });

  // test_get_put_list_key_policies
  it('ListKeyPolicies names "default"; GetKeyPolicy returns what CreateKey and PutKeyPolicy set', async () => {
    const principal = { AWS: `arn:aws:iam::${aws.admin.accountId}:root` };
    const policy = (action: string) =>
      JSON.stringify({
        Version: '2012-10-17',
        Id: 'key-default-1',
        Statement: [
          { Sid: 'This is the default key policy', Effect: 'Allow', Principal: principal, Action: 'kms:*', Resource: '*' },
          { Sid: 'This is some additional stuff to look special', Effect: 'Allow', Principal: principal, Action: action, Resource: '*' },
        ],
      });
    const { KeyId } = await newKey({ Policy: policy('kms:ListAliases') });
    expect(await aws.kms.send(new ListKeyPoliciesCommand({ KeyId }))).toMatchObject({ PolicyNames: ['default'], Truncated: false });
    const read = async () => JSON.stringify(parseJson((await aws.kms.send(new GetKeyPolicyCommand({ KeyId, PolicyName: 'default' }))).Policy!));
    expect(await read()).toBe(policy('kms:ListAliases'));
    await aws.kms.send(new PutKeyPolicyCommand({ KeyId, PolicyName: 'default', Policy: policy('kms:ListGrants') }));
    expect(await read()).toBe(policy('kms:ListGrants'));
  });

  // test_cant_use_disabled_or_deleted_keys and test_cant_delete_deleted_key
  it('a disabled key is DisabledException, one pending deletion KMSInvalidStateException, also for a second ScheduleKeyDeletion', async () => {
    const key = await newKey({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' });
    await aws.kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: 'AES_256' }));
    await aws.kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    expect(await refusal(aws.kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: 'AES_256' })))).toEqual({
      status: 400,
      body: { __type: 'DisabledException', message: `${key.Arn} is disabled.` },
    });
    await aws.kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId }));
    const pendingDeletion = { status: 400, body: { __type: 'KMSInvalidStateException', message: `${key.Arn} is pending deletion.` } };
    expect(await refusal(aws.kms.send(new GenerateDataKeyCommand({ KeyId: key.KeyId, KeySpec: 'AES_256' })))).toEqual(pendingDeletion);
    expect(await refusal(aws.kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId })))).toEqual(pendingDeletion);
  });
});

describe('HMAC keys and MACs', () => {
  // test_hmac_create_key (recorded: create-hmac-key, describe-key)
  it('CreateKey HMAC_256: the recorded KeyMetadata members; the key is listed', async () => {
    const created = await newKey({ Description: 'test key', KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    expect(lastMembers()).toEqual(members('MacAlgorithms'));
    expect(created).toMatchObject({
      CustomerMasterKeySpec: 'HMAC_256',
      KeySpec: 'HMAC_256',
      KeyState: 'Enabled',
      MacAlgorithms: ['HMAC_SHA_256'],
      MultiRegion: false,
    });
    expect((await aws.kms.send(new ListKeysCommand({ Limit: 1000 }))).Keys!.map((k) => k.KeyId)).toContain(created.KeyId);
    await aws.kms.send(new DescribeKeyCommand({ KeyId: created.KeyId }));
    expect(lastMembers()).toEqual(members('MacAlgorithms'));
  });

  // test_hmac_create_key_invalid_operations (recorded). The enum lists' order is AWS's own and has changed as values
  // were added since the recording, so only the value sets' prefix is held here.
  it('CreateKey refusals: HMAC without KeyUsage, an unknown KeySpec, an unknown KeyUsage', async () => {
    expect(await refusal(newKey({ Description: 'test HMAC key without key usage', KeySpec: 'HMAC_256' }))).toEqual({
      status: 400,
      body: { __type: 'ValidationException', message: 'You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.' },
    });
    const spec = await refusal(newKey({ Description: 'test invalid HMAC spec', KeySpec: 'HMAC_random' as never }));
    expect(spec.body.message).toMatch(
      /^1 validation error detected: Value 'HMAC_random' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: \[/,
    );
    const usage = await refusal(newKey({ Description: 'test invalid HMAC spec', KeySpec: 'HMAC_256', KeyUsage: 'RANDOM' as never }));
    expect(usage.body.message).toMatch(
      /^1 validation error detected: Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: \[/,
    );
  });

  // test_generate_and_verify_mac[HMAC_224-HMAC_SHA_224 ... HMAC_512-HMAC_SHA_512] (recorded)
  it.each([
    ['HMAC_224', 'HMAC_SHA_224'],
    ['HMAC_256', 'HMAC_SHA_256'],
    ['HMAC_384', 'HMAC_SHA_384'],
    ['HMAC_512', 'HMAC_SHA_512'],
  ] as const)('%s with %s: GenerateMac and VerifyMac; a malformed key id is "Invalid keyId"', async (keySpec, algorithm) => {
    const key = await newKey({ Description: 'test hmac key', KeySpec: keySpec, KeyUsage: 'GENERATE_VERIFY_MAC' });
    const message = Buffer.from('some important message');
    const mac = await aws.kms.send(new GenerateMacCommand({ KeyId: key.KeyId, Message: message, MacAlgorithm: algorithm }));
    expect(lastMembers()).toEqual(['KeyId', 'Mac', 'MacAlgorithm']);
    expect(mac).toMatchObject({ KeyId: key.Arn, MacAlgorithm: algorithm });
    await aws.kms.send(new VerifyMacCommand({ KeyId: key.KeyId, Message: message, MacAlgorithm: algorithm, Mac: mac.Mac }));
    expect(lastBody()).toEqual({ KeyId: key.Arn, MacAlgorithm: algorithm, MacValid: true });
    const invalid = { status: 400, body: { __type: 'NotFoundException', message: "Invalid keyId 'key_id'" } };
    expect(await refusal(aws.kms.send(new GenerateMacCommand({ KeyId: 'key_id', Message: message, MacAlgorithm: algorithm })))).toEqual(invalid);
    expect(await refusal(aws.kms.send(new VerifyMacCommand({ KeyId: 'key_id', Message: message, MacAlgorithm: algorithm, Mac: mac.Mac })))).toEqual(invalid);
  });

  const MAC_ENUM =
    "1 validation error detected: Value 'INVALID' at 'macAlgorithm' failed to satisfy constraint: " +
    'Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]';

  // test_invalid_generate_mac[HMAC_224-HMAC_SHA_256] and [HMAC_256-INVALID] (recorded, with AWS's order of the enum)
  it('GenerateMac: an algorithm of another key spec, an unknown algorithm', async () => {
    const hmac224 = await newKey({ Description: 'test hmac key', KeySpec: 'HMAC_224', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const message = Buffer.from('some important message');
    expect(await refusal(aws.kms.send(new GenerateMacCommand({ KeyId: hmac224.KeyId, Message: message, MacAlgorithm: 'HMAC_SHA_256' })))).toEqual({
      status: 400,
      body: { __type: 'InvalidKeyUsageException', message: 'Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224.' },
    });
    const hmac256 = await newKey({ Description: 'test hmac key', KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    expect(
      await refusal(aws.kms.send(new GenerateMacCommand({ KeyId: hmac256.KeyId, Message: message, MacAlgorithm: 'INVALID' as MacAlgorithmSpec }))),
    ).toEqual({
      status: 400,
      body: { __type: 'ValidationException', message: MAC_ENUM },
    });
  });

  // test_invalid_verify_mac[HMAC_256-HMAC_SHA_256-some different important message / HMAC_SHA_512 / INVALID] (recorded:
  // KMSInvalidMacException with no message at all)
  it('VerifyMac: another message, an algorithm of another key spec, an unknown algorithm', async () => {
    const key = await newKey({ Description: 'test hmac key', KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const message = Buffer.from('some important message');
    const { Mac } = await aws.kms.send(new GenerateMacCommand({ KeyId: key.KeyId, Message: message, MacAlgorithm: 'HMAC_SHA_256' }));
    const verify = (m: string, algorithm: string) =>
      refusal(aws.kms.send(new VerifyMacCommand({ KeyId: key.KeyId, Message: Buffer.from(m), MacAlgorithm: algorithm as MacAlgorithmSpec, Mac })));
    expect(await verify('some different important message', 'HMAC_SHA_256')).toEqual({ status: 400, body: { __type: 'KMSInvalidMacException' } });
    expect(await verify('some important message', 'HMAC_SHA_512')).toEqual({
      status: 400,
      body: { __type: 'InvalidKeyUsageException', message: 'Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256.' },
    });
    expect(await verify('some important message', 'INVALID')).toEqual({ status: 400, body: { __type: 'ValidationException', message: MAC_ENUM } });
  });
});

describe('refusals for a key of the wrong kind, plaintext size, encryption context', () => {
  // test_error_messaging_for_invalid_keys (recorded)
  it('GenerateMac, Sign, Verify, Encrypt and Decrypt under a key of another usage', async () => {
    const hmac = await newKey({ Description: 'test key hmac', KeySpec: 'HMAC_224', KeyUsage: 'GENERATE_VERIFY_MAC' });
    const symmetric = await newKey({ Description: 'test key encrypt decrypt' });
    const signing = await newKey({ Description: 'test key sign verify', KeyUsage: 'SIGN_VERIFY', KeySpec: 'RSA_2048' });
    const usage = (arn: string, keyUsage: string, operation: string) => ({
      status: 400,
      body: { __type: 'InvalidKeyUsageException', message: `${arn} key usage is ${keyUsage} which is not valid for ${operation}.` },
    });
    expect(
      await refusal(
        aws.kms.send(new GenerateMacCommand({ KeyId: symmetric.KeyId, Message: Buffer.from('some important message'), MacAlgorithm: 'HMAC_SHA_224' })),
      ),
    ).toEqual(usage(symmetric.Arn!, 'ENCRYPT_DECRYPT', 'GenerateMac'));
    expect(
      await refusal(
        aws.kms.send(
          new SignCommand({ KeyId: hmac.KeyId, SigningAlgorithm: 'RSASSA_PSS_SHA_256', MessageType: 'RAW', Message: Buffer.from('test message 123!@#') }),
        ),
      ),
    ).toEqual(usage(hmac.Arn!, 'GENERATE_VERIFY_MAC', 'Sign'));
    expect(
      await refusal(
        aws.kms.send(
          new VerifyCommand({
            KeyId: symmetric.KeyId,
            MessageType: 'RAW',
            Signature: Buffer.from('random text'),
            Message: Buffer.from('test message'),
            SigningAlgorithm: 'ECDSA_SHA_256',
          }),
        ),
      ),
    ).toEqual(usage(symmetric.Arn!, 'ENCRYPT_DECRYPT', 'Verify'));
    expect(await refusal(aws.kms.send(new EncryptCommand({ KeyId: signing.KeyId, Plaintext: Buffer.from('test message 123!@#') })))).toEqual(
      usage(signing.Arn!, 'SIGN_VERIFY', 'Encrypt'),
    );
    const { CiphertextBlob } = await aws.kms.send(new EncryptCommand({ KeyId: symmetric.KeyId, Plaintext: Buffer.from('test message 123!@#') }));
    expect(await refusal(aws.kms.send(new DecryptCommand({ KeyId: hmac.KeyId, CiphertextBlob })))).toEqual({
      status: 400,
      body: { __type: 'IncorrectKeyException', message: 'The key ID in the request does not identify a CMK that can perform this operation.' },
    });
  });

  // test_plaintext_size_for_encrypt (recorded)
  it('Encrypt of more than 4096 bytes', async () => {
    const { KeyId } = await newKey();
    const plaintext = Buffer.from(Buffer.from('test message 123 !%$@ 1234567890'.repeat(100)).toString('base64'));
    expect(await refusal(aws.kms.send(new EncryptCommand({ KeyId, Plaintext: plaintext })))).toEqual({
      status: 400,
      body: {
        __type: 'ValidationException',
        message: "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
      },
    });
  });

  // test_encrypt_decrypt_encryption_context (recorded: InvalidCiphertextException with no message at all)
  it('Decrypt without the encryption context, or of a ciphertext without its header, is InvalidCiphertextException without a message', async () => {
    const { KeyId } = await newKey();
    const encryptionContext = { 'context-key': 'context-value' };
    const plaintext = Buffer.from(Buffer.from('test message 123 !%$@ 1234567890').toString('base64'));
    const { CiphertextBlob } = await aws.kms.send(
      new EncryptCommand({ KeyId, Plaintext: plaintext, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT', EncryptionContext: encryptionContext }),
    );
    expect(lastMembers()).toEqual(['CiphertextBlob', 'EncryptionAlgorithm', 'KeyId']);
    const decrypted = await aws.kms.send(
      new DecryptCommand({ KeyId, CiphertextBlob, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT', EncryptionContext: encryptionContext }),
    );
    expect(Buffer.from(decrypted.Plaintext!).equals(plaintext)).toBe(true);
    const invalid = { status: 400, body: { __type: 'InvalidCiphertextException' } };
    expect(await refusal(aws.kms.send(new DecryptCommand({ KeyId, CiphertextBlob, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' })))).toEqual(invalid);
    const headless = CiphertextBlob!.subarray(20);
    expect(
      await refusal(
        aws.kms.send(new DecryptCommand({ KeyId, CiphertextBlob: headless, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT', EncryptionContext: encryptionContext })),
      ),
    ).toEqual(invalid);
  });
});

describe('DeriveSharedSecret', () => {
  // test_derive_shared_secret: its recording is not in the stored snapshot. Held here: the test's assertion of AWS (both
  // sides derive the same secret), AWS's response members, and the codes of its refusals.
  it('both sides derive one secret; a key of another usage, an unknown algorithm and a malformed public key are refused', async () => {
    const [a, b] = [
      await newKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT' }),
      await newKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT' }),
    ];
    const publicKey = async (keyId: string) => (await aws.kms.send(new GetPublicKeyCommand({ KeyId: keyId }))).PublicKey!;
    const [publicA, publicB] = [await publicKey(a.KeyId!), await publicKey(b.KeyId!)];
    const fromA = await aws.kms.send(new DeriveSharedSecretCommand({ KeyId: a.KeyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: publicB }));
    expect(lastMembers()).toEqual(['KeyAgreementAlgorithm', 'KeyId', 'KeyOrigin', 'SharedSecret']);
    expect(fromA).toMatchObject({ KeyId: a.Arn, KeyAgreementAlgorithm: 'ECDH', KeyOrigin: 'AWS_KMS' });
    const fromB = await aws.kms.send(new DeriveSharedSecretCommand({ KeyId: b.KeyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: publicA }));
    expect(Buffer.from(fromB.SharedSecret!).equals(Buffer.from(fromA.SharedSecret!))).toBe(true);

    const signing = await newKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    expect(await refusal(aws.kms.send(new DeriveSharedSecretCommand({ KeyId: signing.KeyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: publicB })))).toEqual({
      status: 400,
      body: { __type: 'InvalidKeyUsageException', message: `${signing.Arn} key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret.` },
    });
    expect((await refusal(newKey({ KeySpec: 'RSA_2048', KeyUsage: 'KEY_AGREEMENT' }))).body.__type).toBe('ValidationException');
    expect(
      await refusal(aws.kms.send(new DeriveSharedSecretCommand({ KeyId: a.KeyId, KeyAgreementAlgorithm: 'INVALID' as never, PublicKey: publicB }))),
    ).toEqual({
      status: 400,
      body: {
        __type: 'ValidationException',
        message:
          "1 validation error detected: Value 'INVALID' at 'keyAgreementAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [ECDH]",
      },
    });
    const symmetric = await newKey();
    expect(
      (await refusal(aws.kms.send(new DeriveSharedSecretCommand({ KeyId: symmetric.KeyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: publicB })))).body.__type,
    ).toBe('InvalidKeyUsageException');
    const malformed = await refusal(
      aws.kms.send(new DeriveSharedSecretCommand({ KeyId: a.KeyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: Buffer.from('InvalidPublicKey') })),
    );
    expect([malformed.status, malformed.body.__type]).toEqual([400, 'ValidationException']);
  });
});

describe('TestKMSGenerateKeys', () => {
  // test_generate_data_key, _without_plaintext, test_generate_data_key_pair, _without_plaintext (recorded before AWS
  // added KeyMaterialId, which AWS now returns for a symmetric encryption key)
  it('GenerateDataKey*, GenerateDataKeyPair*: the members AWS returns; the private key decrypts', async () => {
    const { KeyId, Arn } = await newKey();
    const dataKey = await aws.kms.send(new GenerateDataKeyCommand({ KeyId, KeySpec: 'AES_256' }));
    expect(lastMembers()).toEqual(['CiphertextBlob', 'KeyId', 'KeyMaterialId', 'Plaintext']);
    expect(dataKey.KeyId).toBe(Arn);
    const decrypted = await aws.kms.send(new DecryptCommand({ KeyId, CiphertextBlob: dataKey.CiphertextBlob }));
    expect(Buffer.from(decrypted.Plaintext!).equals(Buffer.from(dataKey.Plaintext!))).toBe(true);
    await aws.kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId, KeySpec: 'AES_256' }));
    expect(lastMembers()).toEqual(['CiphertextBlob', 'KeyId', 'KeyMaterialId']);

    const pair = await aws.kms.send(new GenerateDataKeyPairCommand({ KeyId, KeyPairSpec: 'RSA_2048' }));
    expect(lastMembers()).toEqual(['KeyId', 'KeyMaterialId', 'KeyPairSpec', 'PrivateKeyCiphertextBlob', 'PrivateKeyPlaintext', 'PublicKey']);
    expect(pair).toMatchObject({ KeyId: Arn, KeyPairSpec: 'RSA_2048' });
    const privateKey = await aws.kms.send(new DecryptCommand({ KeyId, CiphertextBlob: pair.PrivateKeyCiphertextBlob }));
    expect(Buffer.from(privateKey.Plaintext!).equals(Buffer.from(pair.PrivateKeyPlaintext!))).toBe(true);
    await aws.kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId, KeyPairSpec: 'RSA_2048' }));
    expect(lastMembers()).toEqual(['KeyId', 'KeyMaterialId', 'KeyPairSpec', 'PrivateKeyCiphertextBlob', 'PublicKey']);
  });

  // test_encryption_context_generate_data_key, _without_plaintext, _pair, _pair_without_plaintext (recorded:
  // InvalidCiphertextException with no message at all)
  it('a data key made under an encryption context does not decrypt without it', async () => {
    const { KeyId } = await newKey();
    const EncryptionContext = { 'context-key': 'context-value' };
    const blobs = [
      (await aws.kms.send(new GenerateDataKeyCommand({ KeyId, KeySpec: 'AES_256', EncryptionContext }))).CiphertextBlob,
      (await aws.kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId, KeySpec: 'AES_256', EncryptionContext }))).CiphertextBlob,
      (await aws.kms.send(new GenerateDataKeyPairCommand({ KeyId, KeyPairSpec: 'RSA_2048', EncryptionContext }))).PrivateKeyCiphertextBlob,
      (await aws.kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId, KeyPairSpec: 'RSA_2048', EncryptionContext }))).PrivateKeyCiphertextBlob,
    ];
    for (const CiphertextBlob of blobs) {
      expect(await refusal(aws.kms.send(new DecryptCommand({ KeyId, CiphertextBlob })))).toEqual({
        status: 400,
        body: { __type: 'InvalidCiphertextException' },
      });
    }
  });

  // test_generate_data_key_pair_dry_run and test_generate_data_key_pair_without_plaintext_dry_run: their recordings
  // are not in the stored snapshot; DryRunOperationException is the error AWS's model names for DryRun.
  it('DryRun is DryRunOperationException', async () => {
    const { KeyId } = await newKey();
    for (const command of [
      new GenerateDataKeyPairCommand({ KeyId, KeyPairSpec: 'RSA_2048', DryRun: true }),
      new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId, KeyPairSpec: 'RSA_2048', DryRun: true }),
    ]) {
      expect(await refusal(aws.kms.send(command as GenerateDataKeyPairCommand))).toEqual({
        status: 400,
        body: { __type: 'DryRunOperationException', message: 'The request would have succeeded, but the DryRun option is set.' },
      });
    }
  });
});
