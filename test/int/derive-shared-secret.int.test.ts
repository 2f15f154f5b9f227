/**
 * Issue 13: DeriveSharedSecret with NIST ECC KEY_AGREEMENT keys, over the AWS
 * endpoint with the unchanged @aws-sdk/client-kms and over GraphQL. The shared
 * secret is checked from the peer's side, offline: node:crypto's ECDH and
 * `openssl pkeyutl -derive` with the peer's private key and the public key
 * GetPublicKey returns. Refusals (peer key on another curve or not a key,
 * Recipient, keys of another usage, key states, DryRun), policies and grants;
 * one audit record per request, never holding the secret.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateGrantCommand, CreateKeyCommand, DeriveSharedSecretCommand, DisableKeyCommand, GetPublicKeyCommand, type KeySpec } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsClient, useAwsTestApp } from '../support/aws.ts';
import { logHolds, recordsOfRequest } from '../support/log-search.ts';

let dir: string;

const aws = useAwsTestApp('ecdh');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-ecdh-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const CURVES = [
  ['ECC_NIST_P256', 'prime256v1', 32],
  ['ECC_NIST_P384', 'secp384r1', 48],
  ['ECC_NIST_P521', 'secp521r1', 66],
] as const;

async function agreementKey(spec: KeySpec = 'ECC_NIST_P256'): Promise<{ keyId: string; arn: string; publicKey: Buffer }> {
  const { KeyMetadata } = await aws.kms.send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: 'KEY_AGREEMENT' }));
  const { PublicKey, KeyAgreementAlgorithms } = await aws.kms.send(new GetPublicKeyCommand({ KeyId: KeyMetadata!.KeyId }));
  expect(KeyAgreementAlgorithms).toEqual(['ECDH']);
  return { keyId: KeyMetadata!.KeyId!, arn: KeyMetadata!.Arn!, publicKey: Buffer.from(PublicKey!) };
}

const peerKeyPair = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve });
const spki = (key: ReturnType<typeof peerKeyPair>['publicKey']) => key.export({ format: 'der', type: 'spki' });

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

describe('DeriveSharedSecret over the AWS endpoint', () => {
  it.each(CURVES)("%s: the secret equals the peer's ECDH with the GetPublicKey key (node:crypto and openssl)", async (spec, namedCurve, length) => {
    const { keyId, arn, publicKey } = await agreementKey(spec);
    const peer = peerKeyPair(namedCurve);
    const r = await aws.kms.send(new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peer.publicKey) }));
    expect(r).toMatchObject({ KeyId: arn, KeyAgreementAlgorithm: 'ECDH', KeyOrigin: 'AWS_KMS' });
    expect(r.CiphertextForRecipient).toBeUndefined();
    const secret = Buffer.from(r.SharedSecret!);
    expect(secret).toHaveLength(length);

    const fromPeer = diffieHellman({ privateKey: peer.privateKey, publicKey: createPublicKey({ key: publicKey, format: 'der', type: 'spki' }) });
    expect(secret.equals(fromPeer)).toBe(true);

    const peerPem = join(dir, `peer-${spec}.pem`);
    const kmsDer = join(dir, `kms-${spec}.der`);
    const out = join(dir, `secret-${spec}.bin`);
    writeFileSync(peerPem, peer.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    writeFileSync(kmsDer, publicKey);
    execFileSync('openssl', ['pkeyutl', '-derive', '-inkey', peerPem, '-peerkey', kmsDer, '-peerform', 'DER', '-out', out]);
    expect(secret.equals(readFileSync(out))).toBe(true);

    // Another peer, another secret; the same peer, the same secret.
    const again = await aws.kms.send(new DeriveSharedSecretCommand({ KeyId: arn, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peer.publicKey) }));
    expect(Buffer.from(again.SharedSecret!).equals(secret)).toBe(true);
    const other = await aws.kms.send(
      new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: spki(peerKeyPair(namedCurve).publicKey) }),
    );
    expect(Buffer.from(other.SharedSecret!).equals(secret)).toBe(false);
  });

  it('a peer key on another curve, of another type, or not a key is ValidationException', async () => {
    const { keyId } = await agreementKey('ECC_NIST_P256');
    const attempts = [
      spki(peerKeyPair('secp384r1').publicKey),
      spki(peerKeyPair('secp256k1').publicKey),
      generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'der', type: 'spki' }),
      generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }),
      Buffer.from('not a public key at all'),
    ];
    for (const PublicKey of attempts) {
      const refused = await awsError(aws.kms.send(new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey })));
      expect(refused.name).toBe('ValidationException');
      expect((await recordsOfRequest(aws.t.db.owner, refused.requestId)).map((r) => [r.eventName, r.errorCode])).toEqual([
        ['DeriveSharedSecret', 'ValidationException'],
      ]);
    }
  });

  it('Recipient (Nitro Enclaves attestation) is UnsupportedOperationException', async () => {
    const { keyId } = await agreementKey('ECC_NIST_P384');
    const refused = await awsError(
      aws.kms.send(
        new DeriveSharedSecretCommand({
          KeyId: keyId,
          KeyAgreementAlgorithm: 'ECDH',
          PublicKey: spki(peerKeyPair('secp384r1').publicKey),
          Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', AttestationDocument: Buffer.from('an attestation document') },
        }),
      ),
    );
    expect(refused.name).toBe('UnsupportedOperationException');
    expect(refused.message).toContain('Recipient');
  });

  it('keys of another usage are InvalidKeyUsageException', async () => {
    const peer = spki(peerKeyPair('prime256v1').publicKey);
    for (const [spec, usage] of [
      ['ECC_NIST_P256', 'SIGN_VERIFY'],
      ['SYMMETRIC_DEFAULT', 'ENCRYPT_DECRYPT'],
      ['HMAC_256', 'GENERATE_VERIFY_MAC'],
    ] as const) {
      const { KeyMetadata } = await aws.kms.send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: usage }));
      const refused = await awsError(
        aws.kms.send(new DeriveSharedSecretCommand({ KeyId: KeyMetadata!.KeyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: peer })),
      );
      expect(refused).toMatchObject({
        name: 'InvalidKeyUsageException',
        message: `${KeyMetadata!.Arn} key usage is ${usage} which is not valid for DeriveSharedSecret.`,
      });
    }
  });

  it('DryRun stops with DryRunOperationException; a disabled key is DisabledException', async () => {
    const { keyId, arn } = await agreementKey('ECC_NIST_P521');
    const PublicKey = spki(peerKeyPair('secp521r1').publicKey);
    expect((await awsError(aws.kms.send(new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey, DryRun: true })))).name).toBe(
      'DryRunOperationException',
    );
    await aws.kms.send(new DisableKeyCommand({ KeyId: keyId }));
    expect(await awsError(aws.kms.send(new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey })))).toMatchObject({
      name: 'DisabledException',
      message: `${arn} is disabled.`,
    });
  });

  it('kms:DeriveSharedSecret: refused without a policy or grant; allowed by a grant', async () => {
    const { keyId } = await agreementKey('ECC_NIST_P256');
    const user = await aws.t.newUser(aws.admin.accountId, 'agreer');
    const asUser = kmsClient(aws.server, user);
    try {
      const PublicKey = spki(peerKeyPair('prime256v1').publicKey);
      const denied = await awsError(asUser.send(new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey })));
      expect(denied.name).toBe('AccessDeniedException');
      expect(denied.message).toContain('kms:DeriveSharedSecret');
      await aws.kms.send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: user.principalArn, Operations: ['DeriveSharedSecret'] }));
      expect((await asUser.send(new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey }))).SharedSecret).toHaveLength(32);
    } finally {
      asUser.destroy();
    }
  });
});

describe('GraphQL: deriveSharedSecret', () => {
  it("gives the peer's secret", async () => {
    const { keyId, arn, publicKey } = await agreementKey('ECC_NIST_P256');
    const peer = peerKeyPair('prime256v1');
    const r = await aws.t.gql(
      aws.admin,
      `mutation($i: DeriveSharedSecretInput!) { deriveSharedSecret(input: $i) { keyId sharedSecret keyAgreementAlgorithm keyOrigin } }`,
      {
        i: { keyId, keyAgreementAlgorithm: 'ECDH', publicKey: spki(peer.publicKey).toString('base64') },
      },
    );
    expect(r.errors).toBeUndefined();
    const expected = diffieHellman({ privateKey: peer.privateKey, publicKey: createPublicKey({ key: publicKey, format: 'der', type: 'spki' }) });
    expect(r.data.deriveSharedSecret).toEqual({ keyId: arn, sharedSecret: expected.toString('base64'), keyAgreementAlgorithm: 'ECDH', keyOrigin: 'AWS_KMS' });
  });
});

describe('audit', () => {
  it('one record per request with the algorithm, key material and peer key hash; never the shared secret', async () => {
    const { keyId, arn } = await agreementKey('ECC_NIST_P384');
    const peer = spki(peerKeyPair('secp384r1').publicKey);
    const r = await aws.kms.send(new DeriveSharedSecretCommand({ KeyId: keyId, KeyAgreementAlgorithm: 'ECDH', PublicKey: peer }));
    const records = await recordsOfRequest(aws.t.db.owner, r.$metadata.requestId!);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      eventName: 'DeriveSharedSecret',
      outcome: 'success',
      readOnly: true,
      requestParameters: { keyId, keyAgreementAlgorithm: 'ECDH' },
    });
    expect(records[0]!.additionalEventData).toEqual({
      keyMaterialId: expect.any(String),
      keyAgreementAlgorithm: 'ECDH',
      peerPublicKeySha256: createHash('sha256').update(peer).digest('hex'),
    });
    expect(records[0]!.resources.map((x: { arn: string }) => x.arn)).toEqual([arn]);
    expect(await logHolds(aws.t.db.owner, Buffer.from(keyId)), 'the search finds what is there').toBe(true);
    expect(await logHolds(aws.t.db.owner, Buffer.from(r.SharedSecret!))).toBe(false);
  });
});
