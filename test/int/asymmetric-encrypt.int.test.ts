/**
 * Issue 13: Encrypt and Decrypt with RSA ENCRYPT_DECRYPT keys
 * (RSAES_OAEP_SHA_1 / RSAES_OAEP_SHA_256), over the AWS endpoint with the
 * unchanged @aws-sdk/client-kms and over GraphQL: round trips at AWS's
 * plaintext limits, ciphertexts made offline with the public key from
 * GetPublicKey (node:crypto and the openssl CLI) decrypting in keyledger,
 * AWS's refusals (encryption context, missing KeyId or algorithm, bad
 * ciphertext), ReEncrypt from and to RSA keys, and audit records holding the algorithm but
 * never a plaintext or a ciphertext.
 */
import { execFileSync } from 'node:child_process';
import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateKeyCommand,
  DecryptCommand,
  DisableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GetPublicKeyCommand,
  ReEncryptCommand,
  type EncryptionAlgorithmSpec,
  type KeySpec,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useAwsTestApp } from '../support/aws.ts';
import { logHolds, recordsOfRequest } from '../support/log-search.ts';

let dir: string;

const aws = useAwsTestApp('rsa-encrypt');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-rsa-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** AWS's documented plaintext limits (bytes), written out rather than imported. */
const LIMITS: [KeySpec, EncryptionAlgorithmSpec, number, number][] = [
  ['RSA_2048', 'RSAES_OAEP_SHA_1', 214, 256],
  ['RSA_2048', 'RSAES_OAEP_SHA_256', 190, 256],
  ['RSA_3072', 'RSAES_OAEP_SHA_1', 342, 384],
  ['RSA_3072', 'RSAES_OAEP_SHA_256', 318, 384],
  ['RSA_4096', 'RSAES_OAEP_SHA_1', 470, 512],
  ['RSA_4096', 'RSAES_OAEP_SHA_256', 446, 512],
];

const keys = new Map<string, { keyId: string; arn: string; publicKey: Buffer }>();

/** One RSA ENCRYPT_DECRYPT key per spec, made once, with its public key. */
async function rsaKey(spec: KeySpec): Promise<{ keyId: string; arn: string; publicKey: Buffer }> {
  const known = keys.get(spec);
  if (known) return known;
  const { KeyMetadata } = await aws.kms.send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: 'ENCRYPT_DECRYPT' }));
  const { PublicKey } = await aws.kms.send(new GetPublicKeyCommand({ KeyId: KeyMetadata!.KeyId }));
  const key = { keyId: KeyMetadata!.KeyId!, arn: KeyMetadata!.Arn!, publicKey: Buffer.from(PublicKey!) };
  keys.set(spec, key);
  return key;
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

const hashOf = (algorithm: string) => (algorithm === 'RSAES_OAEP_SHA_1' ? 'sha1' : 'sha256');

describe('Encrypt and Decrypt with RSA keys over the AWS endpoint', () => {
  it.each(LIMITS)('%s %s: a round trip at the limit (%i bytes); one byte more is refused', async (spec, algorithm, limit, modulusBytes) => {
    const { keyId, arn } = await rsaKey(spec);
    const plaintext = Buffer.alloc(limit, 0x5a);
    const encrypted = await aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionAlgorithm: algorithm }));
    expect(encrypted).toMatchObject({ KeyId: arn, EncryptionAlgorithm: algorithm });
    expect(encrypted.CiphertextBlob).toHaveLength(modulusBytes);
    const decrypted = await aws.kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: encrypted.CiphertextBlob, EncryptionAlgorithm: algorithm }));
    expect(decrypted).toMatchObject({ KeyId: arn, EncryptionAlgorithm: algorithm });
    expect(Buffer.from(decrypted.Plaintext!).equals(plaintext)).toBe(true);

    const tooLarge = await awsError(aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.alloc(limit + 1), EncryptionAlgorithm: algorithm })));
    expect(tooLarge.name).toBe('ValidationException');
    expect(tooLarge.message).toContain(String(limit));
  });

  it.each(LIMITS.map(([spec, algorithm]) => [spec, algorithm] as const))(
    '%s %s: a ciphertext made offline with node:crypto and the public key decrypts',
    async (spec, algorithm) => {
      const { keyId, publicKey } = await rsaKey(spec);
      const plaintext = Buffer.from(`made offline for ${spec} ${algorithm}`);
      const ciphertext = publicEncrypt(
        { key: createPublicKey({ key: publicKey, format: 'der', type: 'spki' }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hashOf(algorithm) },
        plaintext,
      );
      const { Plaintext } = await aws.kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: ciphertext, EncryptionAlgorithm: algorithm }));
      expect(Buffer.from(Plaintext!).toString()).toBe(plaintext.toString());
    },
  );

  it.each([
    ['RSAES_OAEP_SHA_256', 'sha256'],
    ['RSAES_OAEP_SHA_1', 'sha1'],
  ] as const)('a ciphertext made with `openssl pkeyutl -encrypt` (OAEP, %s) from the GetPublicKey DER decrypts', async (algorithm, md) => {
    const { keyId, publicKey } = await rsaKey('RSA_3072');
    const der = join(dir, `public-${md}.der`);
    const message = join(dir, `message-${md}.txt`);
    const out = join(dir, `ciphertext-${md}.bin`);
    writeFileSync(der, publicKey);
    writeFileSync(message, `openssl ${md} made this`);
    execFileSync('openssl', [
      'pkeyutl',
      '-encrypt',
      '-pubin',
      '-inkey',
      der,
      '-keyform',
      'DER',
      '-in',
      message,
      '-out',
      out,
      '-pkeyopt',
      'rsa_padding_mode:oaep',
      '-pkeyopt',
      `rsa_oaep_md:${md}`,
      '-pkeyopt',
      `rsa_mgf1_md:${md}`,
    ]);
    const { Plaintext } = await aws.kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: readFileSync(out), EncryptionAlgorithm: algorithm }));
    expect(Buffer.from(Plaintext!).toString()).toBe(`openssl ${md} made this`);
  });

  it('a bad ciphertext is InvalidCiphertextException: a flipped bit, another algorithm, a wrong length, another key', async () => {
    const { keyId } = await rsaKey('RSA_2048');
    const other = await rsaKey('RSA_3072');
    const { CiphertextBlob } = await aws.kms.send(
      new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('intact'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }),
    );
    const flipped = Buffer.from(CiphertextBlob!);
    flipped[100]! ^= 0x01;
    const attempts: [string, Buffer, EncryptionAlgorithmSpec][] = [
      [keyId, flipped, 'RSAES_OAEP_SHA_256'],
      [keyId, Buffer.from(CiphertextBlob!), 'RSAES_OAEP_SHA_1'],
      [keyId, Buffer.from(CiphertextBlob!).subarray(1), 'RSAES_OAEP_SHA_256'],
      [keyId, Buffer.alloc(256, 1), 'RSAES_OAEP_SHA_256'],
      [other.keyId, Buffer.from(CiphertextBlob!), 'RSAES_OAEP_SHA_256'],
    ];
    for (const [id, blob, algorithm] of attempts) {
      const refused = await awsError(aws.kms.send(new DecryptCommand({ KeyId: id, CiphertextBlob: blob, EncryptionAlgorithm: algorithm })));
      expect(refused.name).toBe('InvalidCiphertextException');
      expect((await recordsOfRequest(aws.t.db.owner, refused.requestId)).map((r) => [r.eventName, r.errorCode])).toEqual([
        ['Decrypt', 'InvalidCiphertextException'],
      ]);
    }
  });

  it('Decrypt of an RSA ciphertext needs KeyId and EncryptionAlgorithm', async () => {
    const { keyId } = await rsaKey('RSA_2048');
    const { CiphertextBlob } = await aws.kms.send(
      new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('needs both'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' }),
    );
    const noKeyId = await awsError(aws.kms.send(new DecryptCommand({ CiphertextBlob, EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' })));
    expect(noKeyId.name).toBe('ValidationException');
    expect(noKeyId.message).toContain('KeyId');
    const noAlgorithm = await awsError(aws.kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob })));
    expect(noAlgorithm).toMatchObject({ name: 'InvalidKeyUsageException', message: 'Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.' });
    // Neither: the blob names no key, as any unreadable blob.
    expect((await awsError(aws.kms.send(new DecryptCommand({ CiphertextBlob })))).name).toBe('InvalidCiphertextException');
  });

  it('an encryption context is refused with asymmetric keys, for Encrypt and Decrypt', async () => {
    const { keyId } = await rsaKey('RSA_2048');
    const encrypt = await awsError(
      aws.kms.send(
        new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256', EncryptionContext: { tenant: 'acme' } }),
      ),
    );
    expect(encrypt).toMatchObject({ name: 'ValidationException', message: 'EncryptionContext is not supported with asymmetric KMS keys.' });
    const { CiphertextBlob } = await aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }));
    const decrypt = await awsError(
      aws.kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256', EncryptionContext: { tenant: 'acme' } })),
    );
    expect(decrypt).toMatchObject({ name: 'ValidationException', message: 'EncryptionContext is not supported with asymmetric KMS keys.' });
  });

  it('algorithms and keys that do not fit are InvalidKeyUsageException', async () => {
    const { keyId } = await rsaKey('RSA_2048');
    expect(await awsError(aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })))).toMatchObject({
      name: 'InvalidKeyUsageException',
      message: 'Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.',
    });
    expect(await awsError(aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'SM2PKE' })))).toMatchObject({
      name: 'InvalidKeyUsageException',
      message: 'Algorithm SM2PKE is incompatible with key spec RSA_2048.',
    });
    expect((await awsError(aws.kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })))).name).toBe('InvalidKeyUsageException');

    const symmetric = (await aws.kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    expect(
      (await awsError(aws.kms.send(new EncryptCommand({ KeyId: symmetric.KeyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))))
        .name,
    ).toBe('InvalidKeyUsageException');
    const signing = (await aws.kms.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!;
    expect(
      await awsError(aws.kms.send(new EncryptCommand({ KeyId: signing.KeyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))),
    ).toMatchObject({
      name: 'InvalidKeyUsageException',
      message: `${signing.Arn} key usage is SIGN_VERIFY which is not valid for Encrypt.`,
    });
  });

  it('ReEncrypt from an RSA key to a symmetric key, from a symmetric key to an RSA key, and between RSA keys', async () => {
    const rsa2048 = await rsaKey('RSA_2048');
    const rsa3072 = await rsaKey('RSA_3072');
    const symmetric = (await aws.kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const plaintext = Buffer.from('re-encrypted across key types');

    // RSA (made offline) -> symmetric, with a context on the symmetric side.
    const offline = publicEncrypt(
      { key: createPublicKey({ key: rsa2048.publicKey, format: 'der', type: 'spki' }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      plaintext,
    );
    const toSymmetric = await aws.kms.send(
      new ReEncryptCommand({
        CiphertextBlob: offline,
        SourceKeyId: rsa2048.keyId,
        SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
        DestinationKeyId: symmetric.KeyId,
        DestinationEncryptionContext: { tenant: 'acme' },
      }),
    );
    expect(toSymmetric).toMatchObject({
      SourceKeyId: rsa2048.arn,
      KeyId: symmetric.Arn,
      SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
      DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    });
    const back = await aws.kms.send(new DecryptCommand({ CiphertextBlob: toSymmetric.CiphertextBlob, EncryptionContext: { tenant: 'acme' } }));
    expect(Buffer.from(back.Plaintext!).equals(plaintext)).toBe(true);

    // symmetric -> RSA_3072 (SHA-1), then RSA_3072 -> RSA_2048 (SHA-256).
    const toRsa = await aws.kms.send(
      new ReEncryptCommand({
        CiphertextBlob: toSymmetric.CiphertextBlob,
        SourceEncryptionContext: { tenant: 'acme' },
        DestinationKeyId: rsa3072.keyId,
        DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_1',
      }),
    );
    expect(toRsa).toMatchObject({
      SourceKeyId: symmetric.Arn,
      KeyId: rsa3072.arn,
      SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_1',
    });
    expect(toRsa.CiphertextBlob).toHaveLength(384);
    const between = await aws.kms.send(
      new ReEncryptCommand({
        CiphertextBlob: toRsa.CiphertextBlob,
        SourceKeyId: rsa3072.arn,
        SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_1',
        DestinationKeyId: rsa2048.keyId,
        DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
      }),
    );
    const last = await aws.kms.send(
      new DecryptCommand({ KeyId: rsa2048.keyId, CiphertextBlob: between.CiphertextBlob, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }),
    );
    expect(Buffer.from(last.Plaintext!).equals(plaintext)).toBe(true);
    const records = await recordsOfRequest(aws.t.db.owner, between.$metadata.requestId!);
    expect(records.map((r) => [r.eventName, r.outcome])).toEqual([['ReEncrypt', 'success']]);
    expect(records[0]!.additionalEventData).toMatchObject({
      encryptionAlgorithm: 'RSAES_OAEP_SHA_1',
      destinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
      keyMaterialId: expect.any(String),
      destinationKeyMaterialId: expect.any(String),
    });
    expect(records[0]!.resources.map((r: { arn: string }) => r.arn)).toEqual([rsa3072.arn, rsa2048.arn]);
  });

  it(
    'ReEncrypt refusals: no SourceKeyId for an RSA ciphertext, ' + 'a context on an RSA side, a plaintext over the destination limit, a bad ciphertext',
    async () => {
      const rsa2048 = await rsaKey('RSA_2048');
      const symmetric = (await aws.kms.send(new CreateKeyCommand({}))).KeyMetadata!;
      const { CiphertextBlob } = await aws.kms.send(
        new EncryptCommand({ KeyId: rsa2048.keyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }),
      );
      const noSource = await awsError(
        aws.kms.send(new ReEncryptCommand({ CiphertextBlob, SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', DestinationKeyId: symmetric.KeyId })),
      );
      expect(noSource.name).toBe('ValidationException');
      expect(noSource.message).toContain('SourceKeyId');
      const sourceContext = await awsError(
        aws.kms.send(
          new ReEncryptCommand({
            CiphertextBlob,
            SourceKeyId: rsa2048.keyId,
            SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
            SourceEncryptionContext: { a: 'b' },
            DestinationKeyId: symmetric.KeyId,
          }),
        ),
      );
      expect(sourceContext).toMatchObject({ name: 'ValidationException', message: 'EncryptionContext is not supported with asymmetric KMS keys.' });
      const symmetricBlob = (await aws.kms.send(new EncryptCommand({ KeyId: symmetric.KeyId, Plaintext: Buffer.alloc(191, 1) }))).CiphertextBlob;
      const destinationContext = await awsError(
        aws.kms.send(
          new ReEncryptCommand({
            CiphertextBlob: symmetricBlob,
            DestinationKeyId: rsa2048.keyId,
            DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
            DestinationEncryptionContext: { a: 'b' },
          }),
        ),
      );
      expect(destinationContext.name).toBe('ValidationException');
      const tooLarge = await awsError(
        aws.kms.send(
          new ReEncryptCommand({ CiphertextBlob: symmetricBlob, DestinationKeyId: rsa2048.keyId, DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }),
        ),
      );
      expect(tooLarge.name).toBe('ValidationException');
      expect(tooLarge.message).toContain('190');
      const noAlgorithm = await awsError(aws.kms.send(new ReEncryptCommand({ CiphertextBlob: symmetricBlob, DestinationKeyId: rsa2048.keyId })));
      expect(noAlgorithm).toMatchObject({ name: 'InvalidKeyUsageException', message: 'Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.' });
      const tampered = Buffer.from(CiphertextBlob!);
      tampered[5]! ^= 0x80;
      const bad = await awsError(
        aws.kms.send(
          new ReEncryptCommand({
            CiphertextBlob: tampered,
            SourceKeyId: rsa2048.keyId,
            SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
            DestinationKeyId: symmetric.KeyId,
          }),
        ),
      );
      expect(bad.name).toBe('InvalidCiphertextException');
    },
  );

  it('DryRun stops with DryRunOperationException; a disabled key is DisabledException', async () => {
    const { KeyMetadata } = await aws.kms.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }));
    const keyId = KeyMetadata!.KeyId!;
    expect(
      (await awsError(aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256', DryRun: true }))))
        .name,
    ).toBe('DryRunOperationException');
    const { CiphertextBlob } = await aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }));
    expect(
      (await awsError(aws.kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256', DryRun: true })))).name,
    ).toBe('DryRunOperationException');
    await aws.kms.send(new DisableKeyCommand({ KeyId: keyId }));
    expect(
      (await awsError(aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })))).name,
    ).toBe('DisabledException');
    expect((await awsError(aws.kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })))).name).toBe(
      'DisabledException',
    );
  });
});

describe('GraphQL: encrypt and decrypt with an RSA key', () => {
  it('round trips and reports the algorithm', async () => {
    const { keyId, arn, publicKey } = await rsaKey('RSA_2048');
    const ENCRYPT = `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob keyId encryptionAlgorithm } }`;
    const DECRYPT = `mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext keyId encryptionAlgorithm } }`;
    const e = await aws.t.gql(aws.admin, ENCRYPT, {
      i: { keyId, plaintext: Buffer.from('graphql rsa').toString('base64'), encryptionAlgorithm: 'RSAES_OAEP_SHA_256' },
    });
    expect(e.errors).toBeUndefined();
    expect(e.data.encrypt).toMatchObject({ keyId: arn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256' });
    const d = await aws.t.gql(aws.admin, DECRYPT, { i: { keyId, ciphertextBlob: e.data.encrypt.ciphertextBlob, encryptionAlgorithm: 'RSAES_OAEP_SHA_256' } });
    expect(d.errors).toBeUndefined();
    expect(d.data.decrypt).toEqual({ plaintext: Buffer.from('graphql rsa').toString('base64'), keyId: arn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256' });

    const offline = publicEncrypt(
      { key: createPublicKey({ key: publicKey, format: 'der', type: 'spki' }), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
      Buffer.from('offline sha1'),
    );
    const o = await aws.t.gql(aws.admin, DECRYPT, { i: { keyId, ciphertextBlob: offline.toString('base64'), encryptionAlgorithm: 'RSAES_OAEP_SHA_1' } });
    expect(o.data.decrypt.plaintext).toBe(Buffer.from('offline sha1').toString('base64'));
    const bad = await aws.t.gql(aws.admin, DECRYPT, { i: { keyId, ciphertextBlob: offline.toString('base64'), encryptionAlgorithm: 'RSAES_OAEP_SHA_256' } });
    expect(bad.errors?.[0]?.extensions?.code).toBe('InvalidCiphertextException');

    const symmetric = (await aws.kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const re = await aws.t.gql(
      aws.admin,
      `mutation($i: ReEncryptInput!) { reEncrypt(input: $i) { ciphertextBlob sourceKeyId keyId sourceEncryptionAlgorithm destinationEncryptionAlgorithm } }`,
      {
        i: { ciphertextBlob: offline.toString('base64'), sourceKeyId: keyId, sourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_1', destinationKeyId: symmetric.KeyId },
      },
    );
    expect(re.errors).toBeUndefined();
    expect(re.data.reEncrypt).toMatchObject({
      sourceKeyId: arn,
      keyId: symmetric.Arn,
      sourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_1',
      destinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    });
  });
});

describe('audit', () => {
  it('one record per request with the algorithm and the key material id; no plaintext or ciphertext in the log', async () => {
    const { keyId, arn } = await rsaKey('RSA_2048');
    const plaintext = Buffer.from(`rsa plaintext ${process.pid} ${Date.now()}`);
    const encrypted = await aws.kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }));
    const decrypted = await aws.kms.send(
      new DecryptCommand({ KeyId: keyId, CiphertextBlob: encrypted.CiphertextBlob, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }),
    );
    for (const [response, eventName] of [
      [encrypted, 'Encrypt'],
      [decrypted, 'Decrypt'],
    ] as const) {
      const records = await recordsOfRequest(aws.t.db.owner, response.$metadata.requestId!);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({
        eventName,
        outcome: 'success',
        readOnly: true,
        requestParameters: { keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256' },
      });
      expect(records[0]!.additionalEventData).toMatchObject({ encryptionAlgorithm: 'RSAES_OAEP_SHA_256', keyMaterialId: expect.any(String) });
      expect(records[0]!.resources.map((r: { arn: string }) => r.arn)).toEqual([arn]);
    }
    expect(await logHolds(aws.t.db.owner, Buffer.from(keyId)), 'the search finds what is there').toBe(true);
    expect(await logHolds(aws.t.db.owner, plaintext)).toBe(false);
    expect(await logHolds(aws.t.db.owner, Buffer.from(encrypted.CiphertextBlob!))).toBe(false);
  });
});
