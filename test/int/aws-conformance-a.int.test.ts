import {
  CancelKeyDeletionCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateRandomCommand,
  GetKeyRotationStatusCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  ListGrantsCommand,
  ListResourceTagsCommand,
  ReEncryptCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  SignCommand,
  TagResourceCommand,
  UntagResourceCommand,
  VerifyCommand,
  type CreateKeyRequest,
  type KeyMetadata,
  type SigningAlgorithmSpec,
  type Tag,
} from '@aws-sdk/client-kms';
import { constants, createPublicKey, generateKeyPairSync, publicEncrypt, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseJson } from '../../src/json.ts';
import { useAwsTestApp } from '../support/aws.ts';
import { storedAuditRecords } from '../support/aws-clients.ts';
import { recordResponseBodies } from '../support/aws-model.ts';

/**
 * Conformance with real AWS KMS, scenario by scenario. Every expectation
 * here (error code, HTTP status, message, the members of a response) is what
 * real AWS answered, as recorded in LocalStack's KMS snapshot tests marked
 * `aws.validated` (tests/aws/services/kms/test_kms.snapshot.json, keyed
 * `TestKMS::<test name>`; the test named in each case): AWS's recorded
 * responses, not LocalStack's implementation. The bodies are read off the
 * wire, since the SDK fills in an absent `message`.
 */

const aws = useAwsTestApp('aws-conformance-a');
let bodies: { last(): string | undefined };
beforeAll(() => {
  bodies = recordResponseBodies(aws.kms);
});

/** The last response's body, parsed. */
const lastBody = (): Record<string, unknown> => parseJson(bodies.last()!) as Record<string, unknown>;

/** The HTTP status and wire body of a refused call (fails the test when the call succeeds). */
async function refusal(p: Promise<unknown>): Promise<{ status: number | undefined; body: Record<string, unknown> }> {
  const status = await p.then(
    () => {
      throw new Error('the call succeeded where AWS refuses it');
    },
    (e: { $metadata: { httpStatusCode?: number } }) => e.$metadata.httpStatusCode,
  );
  return { status, body: lastBody() };
}

const refused = (code: string, message?: string) => ({ status: 400, body: message === undefined ? { __type: code } : { __type: code, message } });

async function newKey(request: CreateKeyRequest = {}): Promise<KeyMetadata> {
  return (await aws.kms.send(new CreateKeyCommand(request))).KeyMetadata!;
}

const tags = (entries: Record<string, string>): Tag[] => Object.entries(entries).map(([TagKey, TagValue]) => ({ TagKey, TagValue }));

async function listTags(keyId: string): Promise<Tag[]> {
  return (await aws.kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags!;
}

describe('tags (test_tag_existing_key_and_untag, test_untag_key_partially, test_update_and_add_tags_on_tagged_key ...)', () => {
  it('lists tags by key, untags some or all, and overwrites a value in place', async () => {
    const tagged = (await newKey({ Description: 'test key 123', KeyUsage: 'ENCRYPT_DECRYPT' })).KeyId!;
    await aws.kms.send(new TagResourceCommand({ KeyId: tagged, Tags: tags({ tag1: 'value1', tag2: 'value2' }) }));
    expect(await listTags(tagged)).toEqual(tags({ tag1: 'value1', tag2: 'value2' }));
    await aws.kms.send(new UntagResourceCommand({ KeyId: tagged, TagKeys: ['tag1', 'tag2'] }));
    expect(await listTags(tagged)).toEqual([]);

    const created = (await newKey({ Tags: tags({ tag1: 'value1', tag2: 'value2', tag3: 'value3' }) })).KeyId!;
    await aws.kms.send(new UntagResourceCommand({ KeyId: created, TagKeys: ['tag2'] }));
    expect(await listTags(created)).toEqual(tags({ tag1: 'value1', tag3: 'value3' }));
    await aws.kms.send(new TagResourceCommand({ KeyId: created, Tags: tags({ tag4: 'value4', tag2: 'updated_value2', tag5: 'value5' }) }));
    expect(await listTags(created)).toEqual(tags({ tag1: 'value1', tag2: 'updated_value2', tag3: 'value3', tag4: 'value4', tag5: 'value5' }));
  });

  it("refuses duplicate keys, more than 50 tags and the aws: prefix with TagException, in AWS's words", async () => {
    const keyId = (await newKey()).KeyId!;
    const duplicate = [
      { TagKey: 'tag1', TagValue: 'value1' },
      { TagKey: 'tag1', TagValue: 'another-value1' },
    ];
    // test_tag_key_with_duplicate_tag_keys_raises_error
    expect(await refusal(aws.kms.send(new TagResourceCommand({ KeyId: keyId, Tags: duplicate })))).toEqual(refused('TagException', 'Duplicate tag keys'));
    // test_create_key_with_too_many_tags_raises_error
    const fiftyOne = Array.from({ length: 51 }, (_, i) => ({ TagKey: `key${i}`, TagValue: `value${i}` }));
    expect(await refusal(newKey({ Tags: fiftyOne }))).toEqual(refused('TagException', 'Too many tags'));
    // test_create_key_with_invalid_tag_key[lowercase_prefix, uppercase_prefix], test_tag_existing_key_with_invalid_tag_key
    const reserved = refused('TagException', 'Tags beginning with aws: are reserved');
    expect(await refusal(newKey({ Tags: tags({ 'aws:key1': 'value1' }) }))).toEqual(reserved);
    expect(await refusal(newKey({ Tags: tags({ 'AWS:key1': 'value1' }) }))).toEqual(reserved);
    expect(await refusal(aws.kms.send(new TagResourceCommand({ KeyId: keyId, Tags: tags({ 'aws:key1': 'value1' }) })))).toEqual(reserved);
    expect(await listTags(keyId)).toEqual([]);
  });

  it(
    'refuses a tag key over 128 and a value over 256 characters with ' + 'ValidationException (test_create_key_with_invalid_tag_key[too_long_key] ...)',
    async () => {
      const key = 'a'.repeat(129);
      expect(await refusal(newKey({ Tags: tags({ [key]: 'value1' }) }))).toEqual(
        refused(
          'ValidationException',
          `1 validation error detected: Value '${key}' at 'tags.1.member.tagKey' failed ` +
            `to satisfy constraint: Member must have length less than or equal to 128`,
        ),
      );
      const value = 'v'.repeat(257);
      expect(await refusal(newKey({ Tags: tags({ tag1: value }) }))).toEqual(
        refused(
          'ValidationException',
          `1 validation error detected: Value '${value}' at 'tags.1.member.tagValue' ` +
            `failed to satisfy constraint: Member must have length less than or equal to 256`,
        ),
      );
    },
  );
});

describe('naming keys that do not exist (test_get_key_does_not_exist, test_get_key_invalid_uuid)', () => {
  it('a well-formed key id, key ARN or multi-Region key id is a key that does not exist; anything else an invalid keyId', async () => {
    const arnOf = (keyId: string) => `arn:aws:kms:us-east-1:${aws.admin.accountId}:key/${keyId}`;
    const missing = '134f2428-cec1-4b25-a1ae-9048164dba47';
    const multiRegion = 'mrk-d3b95762d3b95762d3b95762d3b95762';
    for (const keyId of [missing, arnOf(missing)]) {
      expect(await refusal(aws.kms.send(new DescribeKeyCommand({ KeyId: keyId })))).toEqual(
        refused('NotFoundException', `Key '${arnOf(missing)}' does not exist`),
      );
    }
    expect(await refusal(aws.kms.send(new DescribeKeyCommand({ KeyId: multiRegion })))).toEqual(
      refused('NotFoundException', `Key '${arnOf(multiRegion)}' does not exist`),
    );
    for (const keyId of ['fake-key-id', '134f2428cec14b25a1ae9048164dba47', 'mrk-fake-key-id']) {
      expect(await refusal(aws.kms.send(new DescribeKeyCommand({ KeyId: keyId })))).toEqual(refused('NotFoundException', `Invalid keyId '${keyId}'`));
    }
    // test_create_grant_with_invalid_key, test_list_grants_with_invalid_key
    const grantee = `arn:aws:iam::${aws.admin.accountId}:user/admin`;
    const invalid = refused('NotFoundException', "Invalid keyId 'invalid'");
    expect(await refusal(aws.kms.send(new CreateGrantCommand({ KeyId: 'invalid', GranteePrincipal: grantee, Operations: ['Decrypt', 'Encrypt'] })))).toEqual(
      invalid,
    );
    expect(await refusal(aws.kms.send(new ListGrantsCommand({ KeyId: 'invalid' })))).toEqual(invalid);
  });
});

describe('key metadata through the lifecycle (test_create_key, test_schedule_and_cancel_key_deletion, test_disable_and_enable_key)', () => {
  it('a symmetric key has the members AWS records; deletion and its cancellation leave it Disabled', async () => {
    const key = await newKey({ Description: 'test key 123', KeyUsage: 'ENCRYPT_DECRYPT' });
    await aws.kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }));
    const described = lastBody().KeyMetadata as Record<string, unknown>;
    // CurrentKeyMaterialId: AWS has recorded it for symmetric keys since 2025 (test_describe_with_alias_arn).
    expect(Object.keys(described).sort()).toEqual(
      [
        'AWSAccountId',
        'Arn',
        'CreationDate',
        'CurrentKeyMaterialId',
        'CustomerMasterKeySpec',
        'Description',
        'Enabled',
        'EncryptionAlgorithms',
        'KeyId',
        'KeyManager',
        'KeySpec',
        'KeyState',
        'KeyUsage',
        'MultiRegion',
        'Origin',
      ].sort(),
    );
    expect(described).toMatchObject({
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      Description: 'test key 123',
      Enabled: true,
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      KeyManager: 'CUSTOMER',
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyState: 'Enabled',
      KeyUsage: 'ENCRYPT_DECRYPT',
      MultiRegion: false,
      Origin: 'AWS_KMS',
    });

    await aws.kms.send(new ScheduleKeyDeletionCommand({ KeyId: key.KeyId }));
    const scheduled = (await aws.kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata!;
    expect(scheduled).toMatchObject({ Enabled: false, KeyState: 'PendingDeletion', DeletionDate: expect.any(Date) });
    await aws.kms.send(new CancelKeyDeletionCommand({ KeyId: key.KeyId }));
    const cancelled = (await aws.kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata!;
    expect(cancelled).toMatchObject({ Enabled: false, KeyState: 'Disabled' });
    expect(cancelled.DeletionDate).toBeUndefined();
    await aws.kms.send(new EnableKeyCommand({ KeyId: key.KeyId }));
    expect((await aws.kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata).toMatchObject({ Enabled: true, KeyState: 'Enabled' });
    await aws.kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
    expect((await aws.kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata).toMatchObject({ Enabled: false, KeyState: 'Disabled' });
  });
});

describe('GenerateRandom (test_generate_random_invalid_number_of_bytes)', () => {
  it.each([
    [0, "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"],
    [1025, "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"],
  ])('refuses %i bytes', async (numberOfBytes, message) => {
    expect(await refusal(aws.kms.send(new GenerateRandomCommand({ NumberOfBytes: numberOfBytes })))).toEqual(refused('ValidationException', message));
  });
});

describe('refusals AWS answers without words: no message member at all', () => {
  it('a signature that does not verify (test_sign_verify): KMSInvalidSignatureException, recorded in the audit log', async () => {
    const keyId = (await newKey({ KeyUsage: 'SIGN_VERIFY', KeySpec: 'ECC_NIST_P256' })).KeyId!;
    const signing = { KeyId: keyId, SigningAlgorithm: 'ECDSA_SHA_256' as SigningAlgorithmSpec, MessageType: 'RAW' as const };
    const bad = (await aws.kms.send(new SignCommand({ ...signing, Message: Buffer.from('bad') }))).Signature!;
    const failure = aws.kms.send(new VerifyCommand({ ...signing, Message: Buffer.from('test message !%$@ 1234567890'), Signature: bad }));
    const requestId = await failure.then(
      () => undefined,
      (e: { $metadata: { requestId?: string } }) => e.$metadata.requestId,
    );
    expect(bodies.last()).toBe('{"__type":"KMSInvalidSignatureException"}');
    expect(await storedAuditRecords(aws.t, requestId!)).toEqual([
      expect.objectContaining({ eventName: 'Verify', outcome: 'failure', errorCode: 'KMSInvalidSignatureException' }),
    ]);
  });

  it('a damaged ciphertext (test_key_rotations_encryption_decryption): InvalidCiphertextException', async () => {
    const keyId = (await newKey()).KeyId!;
    const blob = (await aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('test message 123 !%$@ 1234567890') }))).CiphertextBlob!;
    const damaged = Buffer.concat([blob, Buffer.from('bad_data')]);
    expect(await refusal(aws.kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: damaged, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' })))).toEqual(
      refused('InvalidCiphertextException'),
    );
  });

  it('RotateKeyOnDemand of an asymmetric key (test_rotate_key_on_demand_raises_error_given_non_symmetric_key): UnsupportedOperationException', async () => {
    const keyId = (await newKey({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'RSA_2048' })).KeyId!;
    expect(await refusal(aws.kms.send(new RotateKeyOnDemandCommand({ KeyId: keyId })))).toEqual(refused('UnsupportedOperationException'));
  });
});

describe('signing and key usage (test_sign_verify, test_invalid_key_usage)', () => {
  it('answers Sign and Verify with their members, and a digest of the wrong length in AWS words', async () => {
    const keyId = (await newKey({ KeyUsage: 'SIGN_VERIFY', KeySpec: 'RSA_2048' })).KeyId!;
    const signing = { KeyId: keyId, SigningAlgorithm: 'RSASSA_PSS_SHA_256' as SigningAlgorithmSpec };
    const message = Buffer.from('test message !%$@ 1234567890');
    const signature = (await aws.kms.send(new SignCommand({ ...signing, MessageType: 'RAW', Message: message }))).Signature!;
    expect(Object.keys(lastBody()).sort()).toEqual(['KeyId', 'Signature', 'SigningAlgorithm']);
    await aws.kms.send(new VerifyCommand({ ...signing, MessageType: 'RAW', Message: message, Signature: signature }));
    expect(lastBody()).toEqual({ KeyId: expect.stringMatching(/^arn:aws:kms:/), SignatureValid: true, SigningAlgorithm: 'RSASSA_PSS_SHA_256' });
    const digestRefused = refused('ValidationException', 'Digest is invalid length for algorithm RSASSA_PSS_SHA_256.');
    expect(await refusal(aws.kms.send(new SignCommand({ ...signing, MessageType: 'DIGEST', Message: message })))).toEqual(digestRefused);
    expect(await refusal(aws.kms.send(new VerifyCommand({ ...signing, MessageType: 'DIGEST', Message: message, Signature: signature })))).toEqual(
      digestRefused,
    );

    const encrypting = await newKey({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'RSA_2048' });
    expect(await refusal(aws.kms.send(new SignCommand({ ...signing, KeyId: encrypting.KeyId, MessageType: 'RAW', Message: message })))).toEqual(
      refused('InvalidKeyUsageException', `${encrypting.Arn} key usage is ENCRYPT_DECRYPT which is not valid for Sign.`),
    );
  });
});

describe('ReEncrypt (test_re_encrypt_incorrect_source_key, test_re_encrypt_invalid_destination_key)', () => {
  it('refuses a source key that is not the ciphertext’s, and a destination key that cannot encrypt', async () => {
    const source = (await newKey()).KeyId!;
    const blob = (await aws.kms.send(new EncryptCommand({ KeyId: source, Plaintext: Buffer.from('test message 123 !%$@ 1234567890') }))).CiphertextBlob!;
    const hmac = (await newKey({ Description: 'test hmac key', KeySpec: 'HMAC_224', KeyUsage: 'GENERATE_VERIFY_MAC' })).KeyId!;
    const algorithms = { SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT', DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT' } as const;
    expect(await refusal(aws.kms.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceKeyId: hmac, DestinationKeyId: hmac, ...algorithms })))).toEqual(
      refused('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.'),
    );
    const signing = await newKey({ KeyUsage: 'SIGN_VERIFY', KeySpec: 'ECC_NIST_P256' });
    const toSigning = await refusal(
      aws.kms.send(new ReEncryptCommand({ CiphertextBlob: blob, SourceKeyId: source, DestinationKeyId: signing.KeyId, ...algorithms })),
    );
    expect(toSigning.body.__type).toBe('InvalidKeyUsageException');
  });
});

/** Key material wrapped with RSAES_OAEP_SHA_256 under the wrapping key of a fresh GetParametersForImport. */
async function importParameters(keyId: string): Promise<{ token: Uint8Array; wrap: (material: Buffer) => Buffer }> {
  const params = await aws.kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }));
  const wrappingKey = createPublicKey({ key: Buffer.from(params.PublicKey!), format: 'der', type: 'spki' });
  return {
    token: params.ImportToken!,
    wrap: (material) => publicEncrypt({ key: wrappingKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, material),
  };
}

async function describedMembers(keyId: string): Promise<Record<string, unknown>> {
  await aws.kms.send(new DescribeKeyCommand({ KeyId: keyId }));
  return lastBody().KeyMetadata as Record<string, unknown>;
}

describe('imported key material (test_import_key_symmetric, test_import_key_asymmetric)', () => {
  it(
    'a symmetric key: pending import refuses Encrypt; ' + 'ImportKeyMaterial without ExpirationModel wants a ValidTo (AWS’s default KEY_MATERIAL_EXPIRES)',
    async () => {
      const key = await newKey({ Origin: 'EXTERNAL' });
      expect(key).toMatchObject({ Enabled: false, KeyState: 'PendingImport', Origin: 'EXTERNAL', EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'] });
      const pendingImport = refused('KMSInvalidStateException', `${key.Arn} is pending import.`);
      expect(await refusal(aws.kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('test content 123 !#') })))).toEqual(pendingImport);
      const before = await describedMembers(key.KeyId!);
      expect(before).not.toHaveProperty('ExpirationModel');
      expect(before).not.toHaveProperty('CurrentKeyMaterialId');

      const { token, wrap } = await importParameters(key.KeyId!);
      const wrapped = wrap(randomBytes(32));
      expect(await refusal(aws.kms.send(new ImportKeyMaterialCommand({ KeyId: key.KeyId, ImportToken: token, EncryptedKeyMaterial: wrapped })))).toEqual(
        refused('ValidationException', 'A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES'),
      );
      expect((await describedMembers(key.KeyId!)).KeyState).toBe('PendingImport');
      await aws.kms.send(
        new ImportKeyMaterialCommand({ KeyId: key.KeyId, ImportToken: token, EncryptedKeyMaterial: wrapped, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }),
      );
      expect(await describedMembers(key.KeyId!)).toMatchObject({ Enabled: true, KeyState: 'Enabled', ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
      const plaintext = Buffer.from('test content 123 !#');
      const blob = (await aws.kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext }))).CiphertextBlob!;
      expect(Buffer.from((await aws.kms.send(new DecryptCommand({ KeyId: key.KeyId, CiphertextBlob: blob }))).Plaintext!)).toEqual(plaintext);

      await aws.kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: key.KeyId }));
      const deleted = await describedMembers(key.KeyId!);
      expect(deleted).toMatchObject({ Enabled: false, KeyState: 'PendingImport' });
      expect(deleted).not.toHaveProperty('ExpirationModel');
      expect(await refusal(aws.kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext })))).toEqual(pendingImport);
    },
  );

  it('an ECC_NIST_P256 signing key: its imported private key signs, and its metadata has no CurrentKeyMaterialId', async () => {
    const key = await newKey({ Origin: 'EXTERNAL', KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    expect(key).toMatchObject({ Enabled: false, KeyState: 'PendingImport', SigningAlgorithms: ['ECDSA_SHA_256'] });
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { token, wrap } = await importParameters(key.KeyId!);
    const privateKeyDer = pair.privateKey.export({ format: 'der', type: 'pkcs8' });
    await aws.kms.send(
      new ImportKeyMaterialCommand({
        KeyId: key.KeyId,
        ImportToken: token,
        EncryptedKeyMaterial: wrap(privateKeyDer),
        ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      }),
    );
    const after = await describedMembers(key.KeyId!);
    expect(Object.keys(after).sort()).toEqual(
      [
        'AWSAccountId',
        'Arn',
        'CreationDate',
        'CustomerMasterKeySpec',
        'Description',
        'Enabled',
        'ExpirationModel',
        'KeyId',
        'KeyManager',
        'KeySpec',
        'KeyState',
        'KeyUsage',
        'MultiRegion',
        'Origin',
        'SigningAlgorithms',
      ].sort(),
    );
    expect(after).toMatchObject({ Enabled: true, KeyState: 'Enabled', ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
    const message = Buffer.from('test content 123 !#');
    const signing = { KeyId: key.KeyId, MessageType: 'RAW' as const, SigningAlgorithm: 'ECDSA_SHA_256' as const };
    const signature = (await aws.kms.send(new SignCommand({ ...signing, Message: message }))).Signature!;
    expect((await aws.kms.send(new VerifyCommand({ ...signing, Message: message, Signature: signature }))).SignatureValid).toBe(true);
    await aws.kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: key.KeyId }));
    const deleted = await describedMembers(key.KeyId!);
    expect(deleted).toMatchObject({ Enabled: false, KeyState: 'PendingImport' });
    expect(deleted).not.toHaveProperty('ExpirationModel');
  });
});

describe('on-demand rotation (test_rotate_on_demand_returns_arn_for_key_id, test_key_rotations_limits, test_rotate_key_on_demand_* ...)', () => {
  it('answers the key ARN; the rotation is complete at once (no OnDemandRotationStartDate) and old ciphertexts still decrypt', async () => {
    const key = await newKey({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'SYMMETRIC_DEFAULT' });
    const plaintext = Buffer.from('test message 123 !%$@ 1234567890');
    const before = (await aws.kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext }))).CiphertextBlob!;
    await aws.kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId }));
    expect(lastBody()).toEqual({ KeyId: key.Arn });
    await aws.kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
    expect(lastBody()).toEqual({ KeyId: key.Arn, KeyRotationEnabled: false });
    const after = (await aws.kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: plaintext }))).CiphertextBlob!;
    expect(Buffer.from(after)).not.toEqual(Buffer.from(before));
    expect(Buffer.from((await aws.kms.send(new DecryptCommand({ CiphertextBlob: before }))).Plaintext!)).toEqual(plaintext);
  });

  it('refuses past the limit, a disabled key and a key that does not exist, in AWS’s words', async () => {
    const key = await newKey();
    for (let i = 0; i < 25; i++) await aws.kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId }));
    expect(await refusal(aws.kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId })))).toEqual(
      refused(
        'LimitExceededException',
        `The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: ${key.Arn}`,
      ),
    );
    const disabled = await newKey({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'RSA_2048' });
    await aws.kms.send(new DisableKeyCommand({ KeyId: disabled.KeyId }));
    expect(await refusal(aws.kms.send(new RotateKeyOnDemandCommand({ KeyId: disabled.KeyId })))).toEqual(
      refused('DisabledException', `${disabled.Arn} is disabled.`),
    );
    const missing = '1234abcd-12ab-34cd-56ef-1234567890ab';
    expect(await refusal(aws.kms.send(new RotateKeyOnDemandCommand({ KeyId: missing })))).toEqual(
      refused('NotFoundException', `Key 'arn:aws:kms:us-east-1:${aws.admin.accountId}:key/${missing}' does not exist`),
    );
  });
});
