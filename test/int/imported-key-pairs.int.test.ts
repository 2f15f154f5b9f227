import {
  CreateKeyCommand,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DeriveSharedSecretCommand,
  DescribeKeyCommand,
  GetParametersForImportCommand,
  GetPublicKeyCommand,
  ImportKeyMaterialCommand,
  KMSClient,
  SignCommand,
  VerifyCommand,
  type KeySpec,
  type KeyUsageType,
  type WrappingKeySpec,
} from '@aws-sdk/client-kms';
import {
  constants,
  createCipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { replayProjections } from '../../src/store/replay.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { kmsClient, serveOverHttp } from '../support/aws.ts';

/**
 * Imported key material for asymmetric keys (BYOK of a key pair) with the
 * unchanged AWS SDK: a private key made offline with node:crypto, wrapped as a
 * client wraps it (RSA_AES_KEY_WRAP, since RSAES_OAEP cannot carry an RSA
 * private key), imported into a key of Origin EXTERNAL; keyledger then answers
 * GetPublicKey with that key's public half, and its signatures, decryptions
 * and shared secrets check out offline against the key pair.
 */

let t: TestApp;
let server: RunningServer;
let admin: Principal;
let kms: KMSClient;
beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('byok-pairs');
  server = await serveOverHttp(t);
  kms = kmsClient(server, admin);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

type Algorithm = 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256' | 'RSA_AES_KEY_WRAP_SHA_1' | 'RSA_AES_KEY_WRAP_SHA_256';

function wrap(publicKeyDer: Uint8Array, algorithm: Algorithm, material: Buffer): Buffer {
  const key = createPublicKey({ key: Buffer.from(publicKeyDer), format: 'der', type: 'spki' });
  const oaepHash = algorithm.endsWith('SHA_1') ? 'sha1' : 'sha256';
  const oaep = (data: Buffer) => publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data);
  if (algorithm.startsWith('RSAES_OAEP')) return oaep(material);
  const aesKey = randomBytes(32);
  const kwp = createCipheriv('id-aes256-wrap-pad', aesKey, Buffer.from('A65959A6', 'hex'));
  return Buffer.concat([oaep(aesKey), kwp.update(material), kwp.final()]);
}

async function importPair(
  keyId: string,
  privateKeyDer: Buffer,
  algorithm: Algorithm = 'RSA_AES_KEY_WRAP_SHA_256',
  wrappingKeySpec: WrappingKeySpec = 'RSA_2048',
  extra: Partial<ConstructorParameters<typeof ImportKeyMaterialCommand>[0]> = {},
) {
  const params = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: algorithm, WrappingKeySpec: wrappingKeySpec }));
  return kms.send(
    new ImportKeyMaterialCommand({
      KeyId: keyId,
      ImportToken: params.ImportToken!,
      EncryptedKeyMaterial: wrap(params.PublicKey!, algorithm, privateKeyDer),
      ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
      ...extra,
    }),
  );
}

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: { name: string; message: string }) => ({ name: e.name, message: e.message }),
  );

const pkcs8 = (k: KeyObject) => k.export({ format: 'der', type: 'pkcs8' });
const spki = (k: KeyObject) => k.export({ format: 'der', type: 'spki' });

function offlinePair(spec: KeySpec): { privateKey: KeyObject; publicKey: KeyObject } {
  if (spec.startsWith('RSA_')) return generateKeyPairSync('rsa', { modulusLength: Number(spec.slice(4)), publicExponent: 65537 });
  const curve = { ECC_NIST_P256: 'prime256v1', ECC_NIST_P384: 'secp384r1', ECC_NIST_P521: 'secp521r1', ECC_SECG_P256K1: 'secp256k1' }[spec as string]!;
  return generateKeyPairSync('ec', { namedCurve: curve });
}

async function externalKey(spec: KeySpec, usage: KeyUsageType): Promise<string> {
  const created = await kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL', KeySpec: spec, KeyUsage: usage }));
  expect(created.KeyMetadata).toMatchObject({ KeyState: 'PendingImport', Origin: 'EXTERNAL', KeySpec: spec });
  return created.KeyMetadata!.KeyId!;
}

describe('importing a private key', () => {
  const signers: [KeySpec, 'RSASSA_PSS_SHA_256' | 'RSASSA_PKCS1_V1_5_SHA_256' | 'ECDSA_SHA_256' | 'ECDSA_SHA_384' | 'ECDSA_SHA_512', string][] = [
    ['RSA_2048', 'RSASSA_PSS_SHA_256', 'sha256'],
    ['RSA_3072', 'RSASSA_PKCS1_V1_5_SHA_256', 'sha256'],
    ['ECC_NIST_P256', 'ECDSA_SHA_256', 'sha256'],
    ['ECC_NIST_P384', 'ECDSA_SHA_384', 'sha384'],
    ['ECC_NIST_P521', 'ECDSA_SHA_512', 'sha512'],
    ['ECC_SECG_P256K1', 'ECDSA_SHA_256', 'sha256'],
  ];
  for (const [spec, algorithm, hash] of signers) {
    it(`${spec}: GetPublicKey is the imported key's public half, and keyledger's signature verifies offline with it`, async () => {
      const keyId = await externalKey(spec, 'SIGN_VERIFY');
      expect(await errorOf(kms.send(new GetPublicKeyCommand({ KeyId: keyId })))).toMatchObject({ name: 'KMSInvalidStateException' });
      const pair = offlinePair(spec);
      const imported = await importPair(keyId, pkcs8(pair.privateKey));
      expect(imported.KeyMaterialId).toMatch(/^[0-9a-f]{64}$/);
      const metadata = (await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
      expect(metadata).toMatchObject({ KeyState: 'Enabled', ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' });
      // AWS names the current material of symmetric encryption keys only.
      expect(metadata.CurrentKeyMaterialId).toBeUndefined();
      const publicKey = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
      expect(Buffer.from(publicKey.PublicKey!).equals(spki(pair.publicKey))).toBe(true);

      const message = Buffer.from(`release signed by an imported ${spec} key`);
      const { Signature } = await kms.send(new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm }));
      const padding = algorithm.startsWith('RSASSA_PSS') ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : {};
      expect(
        nodeVerify(
          hash,
          message,
          { key: pair.publicKey, ...padding, ...(spec.startsWith('ECC') ? { dsaEncoding: 'der' as const } : {}) },
          Buffer.from(Signature!),
        ),
      ).toBe(true);
      expect(nodeVerify(hash, Buffer.from('another message'), { key: pair.publicKey, ...padding }, Buffer.from(Signature!))).toBe(false);
      expect(
        (await kms.send(new VerifyCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm, Signature }))).SignatureValid,
      ).toBe(true);
    });
  }

  it('RSA ENCRYPT_DECRYPT: a ciphertext made offline with the key pair decrypts in keyledger', async () => {
    const keyId = await externalKey('RSA_2048', 'ENCRYPT_DECRYPT');
    const pair = offlinePair('RSA_2048');
    await importPair(keyId, pkcs8(pair.privateKey), 'RSA_AES_KEY_WRAP_SHA_1', 'RSA_4096');
    const ciphertext = publicEncrypt({ key: pair.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from('wire transfer'));
    const { Plaintext } = await kms.send(new DecryptCommand({ KeyId: keyId, CiphertextBlob: ciphertext, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }));
    expect(Buffer.from(Plaintext!).toString()).toBe('wire transfer');
  });

  it('ECC KEY_AGREEMENT: the shared secret is the one the peer derives offline (RSAES_OAEP wraps an ECC key)', async () => {
    const keyId = await externalKey('ECC_NIST_P384', 'KEY_AGREEMENT');
    const pair = offlinePair('ECC_NIST_P384');
    await importPair(keyId, pkcs8(pair.privateKey), 'RSAES_OAEP_SHA_256', 'RSA_2048');
    const peer = offlinePair('ECC_NIST_P384');
    const { SharedSecret } = await kms.send(new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peer.publicKey) }));
    expect(Buffer.from(SharedSecret!).equals(diffieHellman({ privateKey: peer.privateKey, publicKey: pair.publicKey }))).toBe(true);
  });

  it('re-import accepts only the same key (whatever its PKCS#8 encoding), and never an expiry', async () => {
    const keyId = await externalKey('ECC_NIST_P256', 'SIGN_VERIFY');
    const pair = offlinePair('ECC_NIST_P256');
    const first = await importPair(keyId, pkcs8(pair.privateKey));

    expect(await errorOf(importPair(keyId, pkcs8(offlinePair('ECC_NIST_P256').privateKey)))).toMatchObject({ name: 'IncorrectKeyMaterialException' });
    await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: keyId }));
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('PendingImport');
    expect(
      await errorOf(kms.send(new SignCommand({ KeyId: keyId, Message: Buffer.from('x'), MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }))),
    ).toMatchObject({ name: 'KMSInvalidStateException' });
    expect(await errorOf(importPair(keyId, pkcs8(offlinePair('ECC_NIST_P256').privateKey)))).toMatchObject({ name: 'IncorrectKeyMaterialException' });

    // The same key, encoded as SEC1 inside PKCS#8 without its optional public key, is the same material.
    const sec1 = pair.privateKey.export({ format: 'der', type: 'sec1' });
    const withoutPublicKey = createPrivateKey({ key: stripEcPublicKey(sec1), format: 'der', type: 'sec1' });
    const again = await importPair(keyId, pkcs8(withoutPublicKey));
    expect(again.KeyMaterialId).toBe(first.KeyMaterialId);
    expect((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).toBe('Enabled');

    const validTo = new Date(t.clock.now().getTime() + 86_400_000);
    const expiring = await errorOf(
      importPair(keyId, pkcs8(pair.privateKey), 'RSA_AES_KEY_WRAP_SHA_256', 'RSA_2048', { ExpirationModel: 'KEY_MATERIAL_EXPIRES', ValidTo: validTo }),
    );
    expect(expiring).toEqual({
      name: 'ValidationException',
      message:
        'The key material of an asymmetric KMS key cannot expire: ECC_NIST_P256 key material ' +
        'must be imported with ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE and no ValidTo.',
    });
  });

  it("refuses what AWS's wrapping table refuses, and material of another spec", async () => {
    const rsaKey = await externalKey('RSA_2048', 'SIGN_VERIFY');
    expect(
      await errorOf(kms.send(new GetParametersForImportCommand({ KeyId: rsaKey, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_4096' }))),
    ).toEqual({
      name: 'ValidationException',
      message:
        'The RSAES_OAEP_SHA_256 wrapping algorithm cannot wrap an RSA private key. ' +
        'Use the RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256 wrapping algorithm.',
    });
    const p521 = await externalKey('ECC_NIST_P521', 'SIGN_VERIFY');
    expect(
      await errorOf(kms.send(new GetParametersForImportCommand({ KeyId: p521, WrappingAlgorithm: 'RSAES_OAEP_SHA_1', WrappingKeySpec: 'RSA_2048' }))),
    ).toMatchObject({ name: 'ValidationException' });
    await importPair(p521, pkcs8(offlinePair('ECC_NIST_P521').privateKey), 'RSAES_OAEP_SHA_256', 'RSA_3072');

    expect(await errorOf(importPair(rsaKey, pkcs8(offlinePair('RSA_3072').privateKey)))).toEqual({
      name: 'IncorrectKeyMaterialException',
      message: 'The key material is not valid for a key of spec RSA_2048: it must be a RSA_2048 private key in PKCS#8 DER.',
    });
    expect(await errorOf(importPair(rsaKey, randomBytes(32)))).toMatchObject({ name: 'IncorrectKeyMaterialException' });
    expect(await errorOf(kms.send(new CreateKeyCommand({ Origin: 'EXTERNAL', KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' })))).toMatchObject({
      name: 'UnsupportedOperationException',
    });

    const replay = await replayProjections(t.db.owner, { verify: true });
    expect(replay.differences).toEqual([]);
  });
});

/** An EC private key in SEC1 DER without its optional [1] publicKey field (a valid, shorter encoding of the same key). */
function stripEcPublicKey(sec1: Buffer): Buffer {
  // SEQUENCE { INTEGER 1, OCTET STRING d, [0] curve OID, [1] BIT STRING Q }: keep the first three.
  const readLength = (at: number): [number, number] =>
    sec1[at]! < 0x80 ? [sec1[at]!, 1] : [sec1.readUIntBE(at + 1, sec1[at]! & 0x7f), 1 + (sec1[at]! & 0x7f)];
  const [, outerLen] = readLength(1);
  let at = 1 + outerLen;
  const fields: Buffer[] = [];
  while (at < sec1.length) {
    const [len, lenBytes] = readLength(at + 1);
    fields.push(sec1.subarray(at, at + 1 + lenBytes + len));
    at += 1 + lenBytes + len;
  }
  const body = Buffer.concat(fields.filter((f) => f[0] !== 0xa1));
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}
