/**
 * Issue 13, part 1: every key spec and usage of AWS's matrix, created and
 * described over the AWS endpoint with the unchanged @aws-sdk/client-kms;
 * the refusals of the pairs AWS refuses; GetPublicKey, its public key checked
 * offline (node:crypto and the openssl CLI); symmetric-only operations refusing
 * keys of another spec or usage; rotation refused for asymmetric and HMAC keys;
 * replay still equal to the live projections.
 */
import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateGrantCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GetPublicKeyCommand,
  ScheduleKeyDeletionCommand,
  type KeyMetadata,
  type KeySpec,
  type KeyUsageType,
} from '@aws-sdk/client-kms';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { replayProjections } from '../../src/store/replay.ts';
import { kmsClient, useAwsTestApp } from '../support/aws.ts';

const aws = useAwsTestApp('asymmetric');

const RSA_SIGNING = [
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
];
const RSA_ENCRYPTION = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'];

/** What the public key must be, offline: node's key type and details. */
type PublicKeyShape = { type: string; modulusLength?: number; namedCurve?: string };

/**
 * AWS's matrix, written out here rather than imported, so the test does not
 * agree with the implementation by construction: spec, usage, the algorithm
 * lists AWS reports (only those present), and the public key's shape.
 */
const MATRIX: {
  spec: KeySpec;
  usage: KeyUsageType;
  lists: Partial<Record<'EncryptionAlgorithms' | 'SigningAlgorithms' | 'MacAlgorithms' | 'KeyAgreementAlgorithms', string[]>>;
  publicKey?: PublicKeyShape;
}[] = [
  { spec: 'SYMMETRIC_DEFAULT', usage: 'ENCRYPT_DECRYPT', lists: { EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'] } },
  ...(['2048', '3072', '4096'] as const).flatMap((bits) => [
    {
      spec: `RSA_${bits}` as KeySpec,
      usage: 'ENCRYPT_DECRYPT' as const,
      lists: { EncryptionAlgorithms: RSA_ENCRYPTION },
      publicKey: { type: 'rsa', modulusLength: Number(bits) },
    },
    {
      spec: `RSA_${bits}` as KeySpec,
      usage: 'SIGN_VERIFY' as const,
      lists: { SigningAlgorithms: RSA_SIGNING },
      publicKey: { type: 'rsa', modulusLength: Number(bits) },
    },
  ]),
  ...(
    [
      ['P256', 'prime256v1', '256'],
      ['P384', 'secp384r1', '384'],
      ['P521', 'secp521r1', '512'],
    ] as const
  ).flatMap(([curve, named, sha]) => [
    {
      spec: `ECC_NIST_${curve}` as KeySpec,
      usage: 'SIGN_VERIFY' as const,
      lists: { SigningAlgorithms: [`ECDSA_SHA_${sha}`] },
      publicKey: { type: 'ec', namedCurve: named },
    },
    {
      spec: `ECC_NIST_${curve}` as KeySpec,
      usage: 'KEY_AGREEMENT' as const,
      lists: { KeyAgreementAlgorithms: ['ECDH'] },
      publicKey: { type: 'ec', namedCurve: named },
    },
  ]),
  { spec: 'ECC_SECG_P256K1', usage: 'SIGN_VERIFY', lists: { SigningAlgorithms: ['ECDSA_SHA_256'] }, publicKey: { type: 'ec', namedCurve: 'secp256k1' } },
  {
    spec: 'ECC_NIST_EDWARDS25519',
    usage: 'SIGN_VERIFY',
    lists: { SigningAlgorithms: ['ED25519_SHA_512', 'ED25519_PH_SHA_512'] },
    publicKey: { type: 'ed25519' },
  },
  ...(['44', '65', '87'] as const).map((level) => ({
    spec: `ML_DSA_${level}` as KeySpec,
    usage: 'SIGN_VERIFY' as const,
    lists: { SigningAlgorithms: ['ML_DSA_SHAKE_256'] },
    publicKey: { type: `ml-dsa-${level}` },
  })),
  ...(['224', '256', '384', '512'] as const).map((bits) => ({
    spec: `HMAC_${bits}` as KeySpec,
    usage: 'GENERATE_VERIFY_MAC' as const,
    lists: { MacAlgorithms: [`HMAC_SHA_${bits}`] },
  })),
];

const ALGORITHM_LISTS = ['EncryptionAlgorithms', 'SigningAlgorithms', 'MacAlgorithms', 'KeyAgreementAlgorithms'] as const;

/** The algorithm lists of a KeyMetadata or GetPublicKey response: present ones only. */
const listsOf = (r: Partial<Record<(typeof ALGORITHM_LISTS)[number], string[]>>) =>
  Object.fromEntries(ALGORITHM_LISTS.filter((l) => r[l] !== undefined).map((l) => [l, r[l]]));

/** The AWS error a send() fails with: its name (the __type) and message. */
async function awsError(promise: Promise<unknown>): Promise<{ name: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    expect(e.$metadata?.httpStatusCode).toBe(400);
    return { name: e.name, message: e.message };
  }
  throw new Error('expected the request to fail');
}

/** Keys made by the matrix walk, by "spec usage". */
const created = new Map<string, KeyMetadata>();

describe('CreateKey and DescribeKey over the AWS endpoint, for every spec and usage AWS allows', () => {
  it.each(MATRIX.map((m) => [`${m.spec} ${m.usage}`, m] as const))('%s', async (label, m) => {
    const { KeyMetadata: made } = await aws.kms.send(new CreateKeyCommand({ KeySpec: m.spec, KeyUsage: m.usage, Description: label }));
    expect(made).toMatchObject({ KeySpec: m.spec, CustomerMasterKeySpec: m.spec, KeyUsage: m.usage, KeyState: 'Enabled', Enabled: true, Origin: 'AWS_KMS' });
    expect(listsOf(made!)).toEqual(m.lists);
    const { KeyMetadata: described } = await aws.kms.send(new DescribeKeyCommand({ KeyId: made!.KeyId }));
    expect(described).toMatchObject({ KeySpec: m.spec, CustomerMasterKeySpec: m.spec, KeyUsage: m.usage });
    expect(listsOf(described!)).toEqual(m.lists);
    created.set(label, made!);
  });

  it('a symmetric key without KeySpec and KeyUsage is SYMMETRIC_DEFAULT / ENCRYPT_DECRYPT, as before', async () => {
    const { KeyMetadata: made } = await aws.kms.send(new CreateKeyCommand({}));
    expect(made).toMatchObject({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT', EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'] });
    expect(made!.SigningAlgorithms).toBeUndefined();
  });

  it('the deprecated CustomerMasterKeySpec creates the same key', async () => {
    const { KeyMetadata: made } = await aws.kms.send(new CreateKeyCommand({ CustomerMasterKeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    expect(made).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', SigningAlgorithms: ['ECDSA_SHA_256'] });
  });

  it('GraphQL describeKey shows the same lists, null where AWS leaves them out', async () => {
    const made = created.get('HMAC_384 GENERATE_VERIFY_MAC')!;
    const r = await aws.t.gql<{ describeKey: { keyMetadata: Record<string, unknown> } }>(
      aws.admin,
      `query($k: String!) { describeKey(input: { keyId: $k }) { keyMetadata { keySpec keyUsage ` +
        `encryptionAlgorithms signingAlgorithms macAlgorithms keyAgreementAlgorithms } } }`,
      { k: made.KeyId },
    );
    expect(r.errors).toBeUndefined();
    expect(r.data!.describeKey.keyMetadata).toEqual({
      keySpec: 'HMAC_384',
      keyUsage: 'GENERATE_VERIFY_MAC',
      encryptionAlgorithms: null,
      signingAlgorithms: null,
      macAlgorithms: ['HMAC_SHA_384'],
      keyAgreementAlgorithms: null,
    });
  });
});

describe('CreateKey refuses the pairs AWS refuses', () => {
  const refused: [string, { KeySpec?: KeySpec; KeyUsage?: KeyUsageType }, string, string][] = [
    [
      'RSA without KeyUsage',
      { KeySpec: 'RSA_2048' },
      'ValidationException',
      'You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.',
    ],
    [
      'ECC without KeyUsage',
      { KeySpec: 'ECC_NIST_P384' },
      'ValidationException',
      'You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.',
    ],
    [
      'HMAC without KeyUsage',
      { KeySpec: 'HMAC_256' },
      'ValidationException',
      'You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.',
    ],
    [
      'ML-DSA without KeyUsage',
      { KeySpec: 'ML_DSA_65' },
      'ValidationException',
      'You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.',
    ],
    [
      'HMAC for encryption',
      { KeySpec: 'HMAC_256', KeyUsage: 'ENCRYPT_DECRYPT' },
      'ValidationException',
      'KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec HMAC_256',
    ],
    [
      'symmetric for MACs',
      { KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'GENERATE_VERIFY_MAC' },
      'ValidationException',
      'KeyUsage GENERATE_VERIFY_MAC is not compatible with KeySpec SYMMETRIC_DEFAULT',
    ],
    [
      'symmetric for signing (KeySpec left out)',
      { KeyUsage: 'SIGN_VERIFY' },
      'ValidationException',
      'KeyUsage SIGN_VERIFY is not compatible with KeySpec SYMMETRIC_DEFAULT',
    ],
    [
      'RSA for key agreement',
      { KeySpec: 'RSA_3072', KeyUsage: 'KEY_AGREEMENT' },
      'ValidationException',
      'KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_3072',
    ],
    [
      'RSA for MACs',
      { KeySpec: 'RSA_4096', KeyUsage: 'GENERATE_VERIFY_MAC' },
      'ValidationException',
      'KeyUsage GENERATE_VERIFY_MAC is not compatible with KeySpec RSA_4096',
    ],
    [
      'NIST ECC for encryption',
      { KeySpec: 'ECC_NIST_P256', KeyUsage: 'ENCRYPT_DECRYPT' },
      'ValidationException',
      'KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec ECC_NIST_P256',
    ],
    [
      'secp256k1 for key agreement',
      { KeySpec: 'ECC_SECG_P256K1', KeyUsage: 'KEY_AGREEMENT' },
      'ValidationException',
      'KeyUsage KEY_AGREEMENT is not compatible with KeySpec ECC_SECG_P256K1',
    ],
    [
      'Ed25519 for key agreement',
      { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'KEY_AGREEMENT' },
      'ValidationException',
      'KeyUsage KEY_AGREEMENT is not compatible with KeySpec ECC_NIST_EDWARDS25519',
    ],
    [
      'ML-DSA for encryption',
      { KeySpec: 'ML_DSA_44', KeyUsage: 'ENCRYPT_DECRYPT' },
      'ValidationException',
      'KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec ML_DSA_44',
    ],
    ['SM2 (China Regions only)', { KeySpec: 'SM2', KeyUsage: 'SIGN_VERIFY' }, 'UnsupportedOperationException', 'KeySpec SM2 is not supported in this region.'],
  ];
  it.each(refused)('%s', async (_label, input, name, message) => {
    expect(await awsError(aws.kms.send(new CreateKeyCommand(input)))).toEqual({ name, message });
  });

  it('creates no key, and records each refusal', async () => {
    const { rows } = await sql<{ n: string }>`
      select count(*)::text as n from events
      where type = 'AuditRecord' and data ->> 'eventName' = 'CreateKey' and data ->> 'outcome' = 'failure'
        and data ->> 'accountId' = ${aws.admin.accountId}`.execute(aws.t.db.owner);
    expect(Number(rows[0]!.n)).toBe(refused.length);
    const { rows: keys } = await sql<{ n: string }>`select count(*)::text as n from keys where account_id = ${aws.admin.accountId}`.execute(aws.t.db.owner);
    expect(Number(keys[0]!.n)).toBe(MATRIX.length + 2);
  });
});

describe('GetPublicKey', () => {
  const asymmetric = MATRIX.filter((m) => m.publicKey);

  it.each(asymmetric.map((m) => [`${m.spec} ${m.usage}`, m] as const))(
    '%s: DER SubjectPublicKeyInfo of the right type, and the key usage lists',
    async (label, m) => {
      const made = created.get(label)!;
      const r = await aws.kms.send(new GetPublicKeyCommand({ KeyId: made.KeyId }));
      expect(r).toMatchObject({ KeyId: made.Arn, KeySpec: m.spec, CustomerMasterKeySpec: m.spec, KeyUsage: m.usage });
      expect(listsOf(r)).toEqual(m.lists);
      const key = createPublicKey({ key: Buffer.from(r.PublicKey!), format: 'der', type: 'spki' });
      expect(key.asymmetricKeyType).toBe(m.publicKey!.type);
      if (m.publicKey!.modulusLength) expect(key.asymmetricKeyDetails?.modulusLength).toBe(m.publicKey!.modulusLength);
      if (m.publicKey!.namedCurve) expect(key.asymmetricKeyDetails?.namedCurve).toBe(m.publicKey!.namedCurve);
      // DER exactly as node exports it again: a canonical SubjectPublicKeyInfo.
      expect(key.export({ format: 'der', type: 'spki' })).toEqual(Buffer.from(r.PublicKey!));
    },
  );

  it('openssl reads an RSA and an EC public key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyledger-pub-'));
    try {
      const rsa = await aws.kms.send(new GetPublicKeyCommand({ KeyId: created.get('RSA_3072 SIGN_VERIFY')!.KeyId }));
      writeFileSync(join(dir, 'rsa.der'), rsa.PublicKey!);
      const rsaText = execFileSync('openssl', ['pkey', '-pubin', '-inform', 'DER', '-in', join(dir, 'rsa.der'), '-noout', '-text'], { encoding: 'utf8' });
      expect(rsaText).toMatch(/Public-Key: \(3072 bit\)/);
      expect(rsaText).toMatch(/Exponent: 65537/);
      const ec = await aws.kms.send(new GetPublicKeyCommand({ KeyId: created.get('ECC_NIST_P384 KEY_AGREEMENT')!.KeyId }));
      writeFileSync(join(dir, 'ec.der'), ec.PublicKey!);
      const ecText = execFileSync('openssl', ['pkey', '-pubin', '-inform', 'DER', '-in', join(dir, 'ec.der'), '-noout', '-text'], { encoding: 'utf8' });
      expect(ecText).toMatch(/Public-Key: \(384 bit\)/);
      expect(ecText).toMatch(/NIST CURVE: P-384|secp384r1/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('GraphQL getPublicKey is a query answering the same key', async () => {
    const made = created.get('ECC_NIST_EDWARDS25519 SIGN_VERIFY')!;
    const viaSdk = await aws.kms.send(new GetPublicKeyCommand({ KeyId: made.KeyId }));
    const r = await aws.t.gql<{ getPublicKey: Record<string, unknown> }>(
      aws.admin,
      `query($k: String!) { getPublicKey(input: { keyId: $k }) ` +
        `{ keyId publicKey keySpec keyUsage signingAlgorithms encryptionAlgorithms keyAgreementAlgorithms } }`,
      { k: made.Arn },
    );
    expect(r.errors).toBeUndefined();
    expect(r.data!.getPublicKey).toEqual({
      keyId: made.Arn,
      publicKey: Buffer.from(viaSdk.PublicKey!).toString('base64'),
      keySpec: 'ECC_NIST_EDWARDS25519',
      keyUsage: 'SIGN_VERIFY',
      signingAlgorithms: ['ED25519_SHA_512', 'ED25519_PH_SHA_512'],
      encryptionAlgorithms: null,
      keyAgreementAlgorithms: null,
    });
  });

  it('symmetric and HMAC keys have no public key: UnsupportedOperationException', async () => {
    for (const label of ['SYMMETRIC_DEFAULT ENCRYPT_DECRYPT', 'HMAC_256 GENERATE_VERIFY_MAC']) {
      const made = created.get(label)!;
      const e = await awsError(aws.kms.send(new GetPublicKeyCommand({ KeyId: made.KeyId })));
      expect(e.name).toBe('UnsupportedOperationException');
      expect(e.message).toContain(made.Arn!);
    }
  });

  it('a disabled key is DisabledException, a key pending deletion KMSInvalidStateException', async () => {
    const { KeyMetadata: a } = await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    await aws.kms.send(new DisableKeyCommand({ KeyId: a!.KeyId }));
    expect(await awsError(aws.kms.send(new GetPublicKeyCommand({ KeyId: a!.KeyId })))).toEqual({
      name: 'DisabledException',
      message: `${a!.Arn} is disabled.`,
    });
    const { KeyMetadata: b } = await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    await aws.kms.send(new ScheduleKeyDeletionCommand({ KeyId: b!.KeyId, PendingWindowInDays: 7 }));
    expect(await awsError(aws.kms.send(new GetPublicKeyCommand({ KeyId: b!.KeyId })))).toEqual({
      name: 'KMSInvalidStateException',
      message: `${b!.Arn} is pending deletion.`,
    });
  });

  it('is authorized by kms:GetPublicKey: refused without it, allowed by a grant of GetPublicKey', async () => {
    const user = await aws.t.newUser(aws.admin.accountId, `no-rights-${process.pid}`);
    const made = created.get('ML_DSA_44 SIGN_VERIFY')!;
    const userKms = kmsClient(aws.server, user);
    try {
      expect((await awsError(userKms.send(new GetPublicKeyCommand({ KeyId: made.Arn })))).name).toBe('AccessDeniedException');
      await aws.kms.send(new CreateGrantCommand({ KeyId: made.KeyId, GranteePrincipal: user.principalArn, Operations: ['GetPublicKey', 'Sign', 'Verify'] }));
      const r = await userKms.send(new GetPublicKeyCommand({ KeyId: made.Arn }));
      expect(r.KeySpec).toBe('ML_DSA_44');
      const { rows } = await sql<{ data: Record<string, any> }>`
        select data from events where type = 'AuditRecord' and data ->> 'eventName' = 'GetPublicKey'
          and data -> 'userIdentity' ->> 'principalArn' = ${user.principalArn} order by global_position`.execute(aws.t.db.owner);
      expect(rows.map((x) => [x.data.outcome, x.data.readOnly])).toEqual([
        ['failure', true],
        ['success', true],
      ]);
      expect(JSON.stringify(rows[1]!.data.authorization)).toContain('grant');
    } finally {
      userKms.destroy();
    }
  });

  it('grants follow the key type: Sign is refused on a symmetric key, Encrypt on a signing key', async () => {
    const user = await aws.t.newUser(aws.admin.accountId, `grantee-${process.pid}`);
    const symmetric = created.get('SYMMETRIC_DEFAULT ENCRYPT_DECRYPT')!;
    expect(
      await awsError(aws.kms.send(new CreateGrantCommand({ KeyId: symmetric.KeyId, GranteePrincipal: user.principalArn, Operations: ['GetPublicKey'] }))),
    ).toEqual({
      name: 'ValidationException',
      message: 'Grant operation GetPublicKey is not valid for a symmetric encryption KMS key.',
    });
    const signing = created.get('RSA_2048 SIGN_VERIFY')!;
    expect(
      (await awsError(aws.kms.send(new CreateGrantCommand({ KeyId: signing.KeyId, GranteePrincipal: user.principalArn, Operations: ['Encrypt'] })))).name,
    ).toBe('ValidationException');
    const hmac = created.get('HMAC_512 GENERATE_VERIFY_MAC')!;
    await aws.kms.send(
      new CreateGrantCommand({ KeyId: hmac.KeyId, GranteePrincipal: user.principalArn, Operations: ['GenerateMac', 'VerifyMac', 'DescribeKey'] }),
    );
  });
});

describe('symmetric operations on keys of another spec or usage', () => {
  it('Encrypt and GenerateDataKey refuse SIGN_VERIFY, HMAC and KEY_AGREEMENT keys with InvalidKeyUsageException', async () => {
    for (const [label, usage] of [
      ['ECC_NIST_P256 SIGN_VERIFY', 'SIGN_VERIFY'],
      ['HMAC_224 GENERATE_VERIFY_MAC', 'GENERATE_VERIFY_MAC'],
      ['ECC_NIST_P521 KEY_AGREEMENT', 'KEY_AGREEMENT'],
    ] as const) {
      const made = created.get(label)!;
      expect(await awsError(aws.kms.send(new EncryptCommand({ KeyId: made.KeyId, Plaintext: Buffer.from('x') })))).toEqual({
        name: 'InvalidKeyUsageException',
        message: `${made.Arn} key usage is ${usage} which is not valid for Encrypt.`,
      });
      expect(await awsError(aws.kms.send(new GenerateDataKeyCommand({ KeyId: made.KeyId, KeySpec: 'AES_256' })))).toEqual({
        name: 'InvalidKeyUsageException',
        message: `${made.Arn} key usage is ${usage} which is not valid for GenerateDataKey.`,
      });
    }
  });

  it('an RSA ENCRYPT_DECRYPT key refuses SYMMETRIC_DEFAULT (Encrypt without an algorithm, GenerateDataKey)', async () => {
    const made = created.get('RSA_2048 ENCRYPT_DECRYPT')!;
    const expected = { name: 'InvalidKeyUsageException', message: 'Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.' };
    expect(await awsError(aws.kms.send(new EncryptCommand({ KeyId: made.KeyId, Plaintext: Buffer.from('x') })))).toEqual(expected);
    expect(await awsError(aws.kms.send(new GenerateDataKeyCommand({ KeyId: made.KeyId, NumberOfBytes: 32 })))).toEqual(expected);
  });

  it('rotation is refused for asymmetric and HMAC keys (UnsupportedOperationException); GetKeyRotationStatus answers false', async () => {
    for (const label of ['RSA_2048 ENCRYPT_DECRYPT', 'ECC_NIST_P256 SIGN_VERIFY', 'HMAC_256 GENERATE_VERIFY_MAC', 'ML_DSA_87 SIGN_VERIFY']) {
      const made = created.get(label)!;
      const ctx = await aws.t.ctx(aws.admin);
      await expect(aws.t.app.rotation.enableKeyRotation(ctx, { keyId: made.KeyId! }), label).rejects.toMatchObject({ code: 'UnsupportedOperationException' });
      await expect(aws.t.app.rotation.rotateKeyOnDemand(await aws.t.ctx(aws.admin), { keyId: made.KeyId! }), label).rejects.toMatchObject({
        code: 'UnsupportedOperationException',
      });
      await expect(aws.t.app.rotation.disableKeyRotation(await aws.t.ctx(aws.admin), { keyId: made.KeyId! }), label).rejects.toMatchObject({
        code: 'UnsupportedOperationException',
      });
      expect((await aws.t.app.rotation.getKeyRotationStatus(await aws.t.ctx(aws.admin), { keyId: made.KeyId! })).keyRotationEnabled).toBe(false);
    }
  });
});

describe('the log and the projections', () => {
  it('KeyCreated carries the public key in clear, the key material only by id; key_materials holds the private key wrapped', async () => {
    const made = created.get('ECC_NIST_P256 SIGN_VERIFY')!;
    const { PublicKey } = await aws.kms.send(new GetPublicKeyCommand({ KeyId: made.KeyId }));
    const { rows } = await sql<{ data: Record<string, any> }>`select data from events where stream_id = ${`key-${made.KeyId}`} and type = 'KeyCreated'`.execute(
      aws.t.db.owner,
    );
    expect(rows[0]!.data.publicKey).toBe(Buffer.from(PublicKey!).toString('base64'));
    const material = await aws.t.db.owner.selectFrom('key_materials').select(['key_material_id', 'wrapped']).where('key_id', '=', made.KeyId!).execute();
    expect(material).toHaveLength(1);
    expect(rows[0]!.data.keyMaterialId).toBe(material[0]!.key_material_id);
  });

  it('replay --verify finds the projections equal to the log, and repairs a damaged public key', async () => {
    expect((await replayProjections(aws.t.db.owner, { verify: true })).differences).toEqual([]);
    const made = created.get('RSA_4096 SIGN_VERIFY')!;
    await sql`update keys set public_key = '\\x00'::bytea where key_id = ${made.KeyId}`.execute(aws.t.db.owner);
    const damaged = await replayProjections(aws.t.db.owner, { verify: true });
    expect(damaged.differences).toHaveLength(2);
    expect(damaged.differences.join('\n')).toContain(made.KeyId);
    await replayProjections(aws.t.db.owner, { verify: false });
    expect((await replayProjections(aws.t.db.owner, { verify: true })).differences).toEqual([]);
    const { PublicKey } = await aws.kms.send(new GetPublicKeyCommand({ KeyId: made.KeyId }));
    expect(createPublicKey({ key: Buffer.from(PublicKey!), format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength).toBe(4096);
  });
});
