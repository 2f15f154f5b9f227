import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeriveSharedSecretCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateRandomCommand,
  GetPublicKeyCommand,
  ListAliasesCommand,
  ReEncryptCommand,
  RotateKeyOnDemandCommand,
  SignCommand,
  VerifyCommand,
  type CreateKeyCommandInput,
  type EncryptionAlgorithmSpec,
  type KeyMetadata,
  type SigningAlgorithmSpec,
} from '@aws-sdk/client-kms';
import { constants, createHash, createPublicKey, diffieHellman, generateKeyPairSync, randomUUID, verify } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseJson } from '../../src/json.ts';
import { useAwsTestApp } from '../support/aws.ts';
import { recordResponseBodies } from '../support/aws-model.ts';
import { recordsOfRequest } from '../support/log-search.ts';

/**
 * AWS's recorded answers, third pass: the scenarios of LocalStack's KMS
 * tests marked `@markers.aws.validated` that aws-conformance-a and -b could
 * pin only by their error code, or did not cover, held to the newest
 * recordings against AWS found: tests/aws/services/kms/test_kms.snapshot.json
 * in the repository sannya-singal/localstack (a fork of localstack/localstack),
 * commit faa4b27a41a5d9dd14de0542191d972dad3f7556, with recordings up to
 * November 2025. Each case names its test (`TestKMS::<name>`) and the date of
 * its recording. These are AWS's answers, not LocalStack's implementation;
 * where an expectation rests on the test's own assertions of AWS rather than
 * on a recording, the comment says so. Bodies are read off the wire (the SDK
 * fills in an absent `message`), and every refusal is checked to be recorded
 * once in the audit log as a failure with its code.
 */

const aws = useAwsTestApp('aws-conformance-c');
let bodies: { last(): string | undefined };
beforeAll(() => {
  bodies = recordResponseBodies(aws.kms);
});

/** The last response's raw JSON body. */
const lastBody = () => parseJson(bodies.last()!) as Record<string, unknown>;
const lastMembers = () => Object.keys(lastBody()).sort();

/** The HTTP status and wire body of a refused call, after checking its one audit record. */
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

const refused = (code: string, message?: string) => ({ status: 400, body: message === undefined ? { __type: code } : { __type: code, message } });

async function newKey(input: CreateKeyCommandInput = {}): Promise<KeyMetadata> {
  return (await aws.kms.send(new CreateKeyCommand(input))).KeyMetadata!;
}

describe('DeriveSharedSecret (test_derive_shared_secret, recorded 25-12-2024; test_derive_shared_secret_matches_openssl, 14-11-2025)', () => {
  it('refuses an RSA key for KEY_AGREEMENT, a symmetric key and a malformed public key in AWS’s words (none for the public key)', async () => {
    const agreeing = await newKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT' });
    const { PublicKey } = await aws.kms.send(new GetPublicKeyCommand({ KeyId: agreeing.KeyId }));
    expect(await refusal(newKey({ KeySpec: 'RSA_2048', KeyUsage: 'KEY_AGREEMENT' }))).toEqual(
      refused('ValidationException', 'KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048'),
    );
    const symmetric = await newKey();
    expect(await refusal(aws.kms.send(new DeriveSharedSecretCommand({ KeyId: symmetric.KeyId, KeyAgreementAlgorithm: 'ECDH', PublicKey })))).toEqual(
      refused('InvalidKeyUsageException', `${symmetric.Arn} key usage is ENCRYPT_DECRYPT which is not valid for DeriveSharedSecret.`),
    );
    // Recorded as a ValidationException whose message is empty: no message member at all.
    const malformed = new DeriveSharedSecretCommand({ KeyId: agreeing.KeyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: Buffer.from('InvalidPublicKey') });
    expect(await refusal(aws.kms.send(malformed))).toEqual(refused('ValidationException'));
  });

  it('the shared secret is the one OpenSSL derives from the other side, with the recorded members', async () => {
    const key = await newKey({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'KEY_AGREEMENT' });
    const kmsPublicKey = createPublicKey({
      key: Buffer.from((await aws.kms.send(new GetPublicKeyCommand({ KeyId: key.KeyId }))).PublicKey!),
      format: 'der',
      type: 'spki',
    });
    const local = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const derived = await aws.kms.send(
      new DeriveSharedSecretCommand({
        KeyId: key.KeyId,
        KeyAgreementAlgorithm: 'ECDH',
        PublicKey: local.publicKey.export({ format: 'der', type: 'spki' }),
      }),
    );
    expect(lastMembers()).toEqual(['KeyAgreementAlgorithm', 'KeyId', 'KeyOrigin', 'SharedSecret']);
    expect(derived).toMatchObject({ KeyId: key.Arn, KeyAgreementAlgorithm: 'ECDH', KeyOrigin: 'AWS_KMS' });
    expect(Buffer.from(derived.SharedSecret!).equals(diffieHellman({ privateKey: local.privateKey, publicKey: kmsPublicKey }))).toBe(true);
  });
});

describe('RotateKeyOnDemand of a non-symmetric key (test_rotate_key_on_demand_raises_error_given_non_symmetric_key, recorded 08-03-2025)', () => {
  it('an RSA_4096 ENCRYPT_DECRYPT key: UnsupportedOperationException without a message', async () => {
    const rsa = await newKey({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'RSA_4096' });
    expect(await refusal(aws.kms.send(new RotateKeyOnDemandCommand({ KeyId: rsa.KeyId })))).toEqual(refused('UnsupportedOperationException'));
  });
});

describe('request validation in AWS’s words', () => {
  // test_generate_random_invalid_number_of_bytes[None] (recorded 13-04-2023)
  it('GenerateRandom without NumberOfBytes', async () => {
    expect(await refusal(aws.kms.send(new GenerateRandomCommand({})))).toEqual(refused('ValidationException', 'NumberOfBytes is required.'));
  });

  // test_create_alias (recorded 13-04-2023)
  it('CreateAlias of a name without the alias/ prefix', async () => {
    const { KeyId } = await newKey();
    expect(await refusal(aws.kms.send(new CreateAliasCommand({ AliasName: randomUUID().slice(0, 8), TargetKeyId: KeyId })))).toEqual(
      refused(
        'ValidationException',
        'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
      ),
    );
  });

  // test_get_key_in_different_region (recorded 14-06-2024): the ARN of a key in another Region, asked of this Region.
  // (keyledger serves one Region, so the recording's keys made in the second Region are not reproduced.)
  it('DescribeKey by the key ARN of another Region is NotFoundException "Invalid arn <region>"', async () => {
    const { Arn } = await newKey({ Description: 'test key 123' });
    const elsewhere = Arn!.replace(':us-east-1:', ':us-west-2:');
    expect(await refusal(aws.kms.send(new DescribeKeyCommand({ KeyId: elsewhere })))).toEqual(refused('NotFoundException', 'Invalid arn us-west-2'));
  });

  // test_encrypt_validate_plaintext_size_per_key_type[RSA_2048-RSAES_OAEP_SHA_1 ... RSA_4096-RSAES_OAEP_SHA_256] (recorded 13-04-2023)
  it.each([
    ['RSA_2048', 214, 190],
    ['RSA_3072', 342, 318],
    ['RSA_4096', 470, 446],
  ] as const)('Encrypt of more than an %s key takes: the limit per algorithm', async (keySpec, sha1, sha256) => {
    const { KeyId } = await newKey({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: keySpec });
    const plaintext = Buffer.from(Buffer.from('more than 500 bytes and less than 4096 bytes'.repeat(20)).toString('base64'));
    for (const [algorithm, limit] of [
      ['RSAES_OAEP_SHA_1', sha1],
      ['RSAES_OAEP_SHA_256', sha256],
    ] as const) {
      expect(await refusal(aws.kms.send(new EncryptCommand({ KeyId, Plaintext: plaintext, EncryptionAlgorithm: algorithm })))).toEqual(
        refused('ValidationException', `Algorithm ${algorithm} and key spec ${keySpec} cannot encrypt data larger than ${limit} bytes.`),
      );
    }
  });
});

describe('signing (test_sign_verify, recorded 13-04-2023; test_verify_salt_length, validated 02-04-2025)', () => {
  const message = Buffer.from('test message !%$@ 1234567890');
  const hashOf = (algorithm: string) => `sha${algorithm.slice(-3)}`;

  it.each([
    ['RSA_2048', 'RSASSA_PSS_SHA_384'],
    ['RSA_2048', 'RSASSA_PSS_SHA_512'],
    ['RSA_4096', 'RSASSA_PKCS1_V1_5_SHA_256'],
    ['RSA_4096', 'RSASSA_PKCS1_V1_5_SHA_512'],
    ['ECC_NIST_P384', 'ECDSA_SHA_384'],
    ['ECC_SECG_P256K1', 'ECDSA_SHA_256'],
  ] as const)('%s with %s: a digest of the wrong length, a signature that does not verify', async (keySpec, algorithm) => {
    const { KeyId } = await newKey({ KeyUsage: 'SIGN_VERIFY', KeySpec: keySpec });
    const signing = { KeyId, SigningAlgorithm: algorithm as SigningAlgorithmSpec };
    const bad = (await aws.kms.send(new SignCommand({ ...signing, MessageType: 'RAW', Message: Buffer.from('bad') }))).Signature!;
    expect(await refusal(aws.kms.send(new SignCommand({ ...signing, MessageType: 'DIGEST', Message: message })))).toEqual(
      refused('ValidationException', `Digest is invalid length for algorithm ${algorithm}.`),
    );
    expect(await refusal(aws.kms.send(new VerifyCommand({ ...signing, MessageType: 'RAW', Message: message, Signature: bad })))).toEqual(
      refused('KMSInvalidSignatureException'),
    );
  });

  // The test's assertion of AWS: a signature of the message or of its digest verifies offline, PSS with a salt as long as the digest.
  it.each([
    ['RSA_2048', 'RSASSA_PSS_SHA_256'],
    ['RSA_2048', 'RSASSA_PSS_SHA_512'],
    ['RSA_4096', 'RSASSA_PKCS1_V1_5_SHA_256'],
    ['ECC_NIST_P256', 'ECDSA_SHA_256'],
    ['ECC_SECG_P256K1', 'ECDSA_SHA_256'],
  ] as const)('%s with %s verifies offline, for RAW and DIGEST alike', async (keySpec, algorithm) => {
    const { KeyId } = await newKey({ KeyUsage: 'SIGN_VERIFY', KeySpec: keySpec });
    const publicKey = createPublicKey({ key: Buffer.from((await aws.kms.send(new GetPublicKeyCommand({ KeyId }))).PublicKey!), format: 'der', type: 'spki' });
    const hash = hashOf(algorithm);
    const digest = createHash(hash).update(message).digest();
    const pss = algorithm.startsWith('RSASSA_PSS') ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: digest.length } : {};
    for (const [messageType, signed] of [
      ['RAW', message],
      ['DIGEST', digest],
    ] as const) {
      const { Signature } = await aws.kms.send(new SignCommand({ KeyId, SigningAlgorithm: algorithm, MessageType: messageType, Message: signed }));
      expect(verify(hash, message, { key: publicKey, ...pss, dsaEncoding: 'der' }, Buffer.from(Signature!))).toBe(true);
    }
  });
});

describe('response members', () => {
  // test_re_encrypt[SYMMETRIC_DEFAULT-SYMMETRIC_DEFAULT] and [RSA_2048-RSAES_OAEP_SHA_256] (recorded 09-06-2025). The symmetric
  // recording's client predates SourceKeyMaterialId and DestinationKeyMaterialId, which AWS's model returns for symmetric keys.
  it.each([
    ['SYMMETRIC_DEFAULT', 'SYMMETRIC_DEFAULT', ['DestinationKeyMaterialId', 'SourceKeyMaterialId']],
    ['RSA_2048', 'RSAES_OAEP_SHA_256', []],
  ] as const)('ReEncrypt between two %s keys', async (keySpec, algorithm, materialIds) => {
    const [source, destination] = [
      await newKey({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: keySpec }),
      await newKey({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: keySpec }),
    ];
    const plaintext = Buffer.from(Buffer.from('test message 123 !%$@ 1234567890').toString('base64'));
    const { CiphertextBlob } = await aws.kms.send(
      new EncryptCommand({ KeyId: source.KeyId, Plaintext: plaintext, EncryptionAlgorithm: algorithm as EncryptionAlgorithmSpec }),
    );
    const reEncrypted = await aws.kms.send(
      new ReEncryptCommand({
        SourceKeyId: source.KeyId,
        DestinationKeyId: destination.KeyId,
        CiphertextBlob,
        SourceEncryptionAlgorithm: algorithm,
        DestinationEncryptionAlgorithm: algorithm,
      }),
    );
    expect(lastMembers()).toEqual(
      ['CiphertextBlob', 'DestinationEncryptionAlgorithm', 'KeyId', 'SourceEncryptionAlgorithm', 'SourceKeyId', ...materialIds].sort(),
    );
    expect(reEncrypted).toMatchObject({
      KeyId: destination.Arn,
      SourceKeyId: source.Arn,
      SourceEncryptionAlgorithm: algorithm,
      DestinationEncryptionAlgorithm: algorithm,
    });
    const decrypted = await aws.kms.send(
      new DecryptCommand({ KeyId: destination.KeyId, CiphertextBlob: reEncrypted.CiphertextBlob, EncryptionAlgorithm: algorithm }),
    );
    expect(Buffer.from(decrypted.Plaintext!).equals(plaintext)).toBe(true);
  });

  // test_encrypt_decrypt_encryption_context (recorded 22-09-2025: decrypt_response_with_encryption_context)
  it('Decrypt under a symmetric key answers its KeyMaterialId', async () => {
    const key = await newKey();
    const EncryptionContext = { 'context-key': 'context-value' };
    const { CiphertextBlob } = await aws.kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: Buffer.from('test'), EncryptionContext }));
    await aws.kms.send(new DecryptCommand({ KeyId: key.KeyId, CiphertextBlob, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT', EncryptionContext }));
    expect(lastMembers()).toEqual(['EncryptionAlgorithm', 'KeyId', 'KeyMaterialId', 'Plaintext']);
    expect(lastBody()).toMatchObject({ KeyId: key.Arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
  });

  // test_get_public_key and test_all_types_of_key_id_can_be_used_for_encryption (their assertions of AWS)
  it('GetPublicKey names the key by ARN with its spec and usage; Encrypt takes a key id, key ARN, alias name or alias ARN', async () => {
    const rsa = await newKey({ KeyUsage: 'ENCRYPT_DECRYPT', KeySpec: 'RSA_2048' });
    expect(await aws.kms.send(new GetPublicKeyCommand({ KeyId: rsa.KeyId }))).toMatchObject({
      KeyId: rsa.Arn,
      KeySpec: 'RSA_2048',
      KeyUsage: 'ENCRYPT_DECRYPT',
      PublicKey: expect.any(Uint8Array),
    });
    const key = await newKey();
    const aliasName = `alias/${randomUUID().slice(0, 8)}`;
    await aws.kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyId }));
    const aliasArn = (await aws.kms.send(new ListAliasesCommand({ KeyId: key.KeyId }))).Aliases!.find((a) => a.AliasName === aliasName)!.AliasArn!;
    for (const KeyId of [key.Arn, key.KeyId, aliasArn, aliasName]) {
      expect((await aws.kms.send(new EncryptCommand({ KeyId, Plaintext: Buffer.from('encrypt-me') }))).KeyId).toBe(key.Arn);
    }
  });
});
