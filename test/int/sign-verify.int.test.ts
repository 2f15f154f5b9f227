/**
 * Issue 13, part 2: Sign and Verify over the AWS endpoint with the unchanged
 * @aws-sdk/client-kms, for every signing key spec and algorithm of AWS's
 * matrix. Every signature is checked offline with node:crypto against the
 * public key GetPublicKey returns, and with the openssl CLI for one RSA-PSS,
 * one PKCS #1 v1.5, one ECDSA and the Ed25519 case (openssl 3.0 has no ML-DSA:
 * node:crypto checks those). Also: DIGEST messages, Verify's verdicts
 * (an invalid signature is KMSInvalidSignatureException), Ed25519ph (checked
 * offline with @noble/curves) and ML-DSA's EXTERNAL_MU (a mu computed here
 * with node:crypto's SHAKE256, the signature checked by node:crypto over the
 * message itself), AWS's limits and
 * errors, key states, authorization by grant and across accounts, DryRun,
 * GraphQL, and the audit records: one per request, never the message, its
 * hash or the signature.
 */
import { execFileSync } from 'node:child_process';
import { constants, createHash, createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DisableKeyCommand,
  GetPublicKeyCommand,
  ScheduleKeyDeletionCommand,
  SignCommand,
  VerifyCommand,
  type KeySpec,
  type MessageType,
  type SigningAlgorithmSpec,
} from '@aws-sdk/client-kms';
import { ed25519ph } from '@noble/curves/ed25519.js';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsClient, useAwsTestApp } from '../support/aws.ts';

let dir: string;

const aws = useAwsTestApp('signing');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyledger-sign-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------ AWS's matrix, written out

type Hash = 'sha256' | 'sha384' | 'sha512';
/** How node:crypto verifies a signature of each algorithm over the RAW message. */
type Scheme = { kind: 'pss' | 'pkcs1' | 'ecdsa'; hash: Hash } | { kind: 'pure' };

const SCHEMES: Record<string, Scheme> = {
  RSASSA_PSS_SHA_256: { kind: 'pss', hash: 'sha256' },
  RSASSA_PSS_SHA_384: { kind: 'pss', hash: 'sha384' },
  RSASSA_PSS_SHA_512: { kind: 'pss', hash: 'sha512' },
  RSASSA_PKCS1_V1_5_SHA_256: { kind: 'pkcs1', hash: 'sha256' },
  RSASSA_PKCS1_V1_5_SHA_384: { kind: 'pkcs1', hash: 'sha384' },
  RSASSA_PKCS1_V1_5_SHA_512: { kind: 'pkcs1', hash: 'sha512' },
  ECDSA_SHA_256: { kind: 'ecdsa', hash: 'sha256' },
  ECDSA_SHA_384: { kind: 'ecdsa', hash: 'sha384' },
  ECDSA_SHA_512: { kind: 'ecdsa', hash: 'sha512' },
  ED25519_SHA_512: { kind: 'pure' },
  ML_DSA_SHAKE_256: { kind: 'pure' },
};

const RSA = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
];

/** Each signing key spec and the algorithms this test signs RAW messages with (Ed25519ph takes only DIGEST: see below). */
const SIGNING_MATRIX: { spec: KeySpec; algorithms: string[] }[] = [
  { spec: 'RSA_2048', algorithms: RSA },
  { spec: 'RSA_3072', algorithms: RSA },
  { spec: 'RSA_4096', algorithms: RSA },
  { spec: 'ECC_NIST_P256', algorithms: ['ECDSA_SHA_256'] },
  { spec: 'ECC_NIST_P384', algorithms: ['ECDSA_SHA_384'] },
  { spec: 'ECC_NIST_P521', algorithms: ['ECDSA_SHA_512'] },
  { spec: 'ECC_SECG_P256K1', algorithms: ['ECDSA_SHA_256'] },
  { spec: 'ECC_NIST_EDWARDS25519', algorithms: ['ED25519_SHA_512'] },
  { spec: 'ML_DSA_44', algorithms: ['ML_DSA_SHAKE_256'] },
  { spec: 'ML_DSA_65', algorithms: ['ML_DSA_SHAKE_256'] },
  { spec: 'ML_DSA_87', algorithms: ['ML_DSA_SHAKE_256'] },
];
const CASES = SIGNING_MATRIX.flatMap(({ spec, algorithms }) => algorithms.map((algorithm) => ({ spec, algorithm })));
const DIGEST_CASES = CASES.filter(({ algorithm }) => SCHEMES[algorithm]!.kind !== 'pure');

// ------------------------------------------------------------------ helpers

interface SigningKey {
  keyId: string;
  arn: string;
  publicKey: KeyObject;
  publicKeyDer: Buffer;
}

const keys = new Map<string, Promise<SigningKey>>();

/** One SIGN_VERIFY key per spec, made over the SDK, with its public key from GetPublicKey. */
function signingKey(spec: KeySpec): Promise<SigningKey> {
  let key = keys.get(spec);
  if (!key) {
    key = (async () => {
      const { KeyMetadata } = await aws.kms.send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: 'SIGN_VERIFY', Description: `sign-verify ${spec}` }));
      const { PublicKey } = await aws.kms.send(new GetPublicKeyCommand({ KeyId: KeyMetadata!.KeyId }));
      const publicKeyDer = Buffer.from(PublicKey!);
      return {
        keyId: KeyMetadata!.KeyId!,
        arn: KeyMetadata!.Arn!,
        publicKeyDer,
        publicKey: createPublicKey({ key: publicKeyDer, format: 'der', type: 'spki' }),
      };
    })();
    keys.set(spec, key);
  }
  return key;
}

/** A distinctive message: random, so a search of the log for it cannot match by accident. */
const newMessage = (label: string) => Buffer.from(`${label} ${createHash('sha256').update(String(Math.random())).digest('hex')}`);

/** node:crypto's verdict on a signature of the RAW message. */
function verifiedByNode(algorithm: string, publicKey: KeyObject, message: Buffer, signature: Buffer): boolean {
  const scheme = SCHEMES[algorithm]!;
  switch (scheme.kind) {
    case 'pss':
      return nodeVerify(
        scheme.hash,
        message,
        { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
        signature,
      );
    case 'pkcs1':
      return nodeVerify(scheme.hash, message, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
    case 'ecdsa':
      return nodeVerify(scheme.hash, message, { key: publicKey, dsaEncoding: 'der' }, signature);
    case 'pure':
      return nodeVerify(null, message, publicKey, signature);
  }
}

/** openssl's verdict on a signature of the RAW message (exit status 0 and "Verified OK" or "Signature Verified Successfully"). */
function verifiedByOpenssl(algorithm: string, publicKeyDer: Buffer, message: Buffer, signature: Buffer): boolean {
  const name = `${algorithm}-${Math.random().toString(36).slice(2)}`;
  const [pub, msg, sig] = ['pub.der', 'msg.bin', 'sig.bin'].map((f) => join(dir, `${name}-${f}`)) as [string, string, string];
  writeFileSync(pub, publicKeyDer);
  writeFileSync(msg, message);
  writeFileSync(sig, signature);
  const scheme = SCHEMES[algorithm]!;
  const args =
    scheme.kind === 'pure'
      ? ['pkeyutl', '-verify', '-pubin', '-keyform', 'DER', '-inkey', pub, '-rawin', '-in', msg, '-sigfile', sig]
      : [
          'dgst',
          `-${scheme.hash}`,
          '-keyform',
          'DER',
          '-verify',
          pub,
          ...(scheme.kind === 'pss' ? ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest', '-sigopt', `rsa_mgf1_md:${scheme.hash}`] : []),
          '-signature',
          sig,
          msg,
        ];
  try {
    const out = execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return /Verified OK|Signature Verified Successfully/.test(out);
  } catch {
    return false;
  }
}

const flipped = (b: Buffer, at = b.length >> 1) => {
  const copy = Buffer.from(b);
  copy[at]! ^= 0x01;
  return copy;
};

/** The AWS error a send() fails with: its name (the __type), message and status. */
async function awsError(promise: Promise<unknown>): Promise<{ name: string; message: string; status?: number; requestId?: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { name: string; message: string; $metadata?: { httpStatusCode?: number; requestId?: string } };
    return { name: e.name, message: e.message, status: e.$metadata?.httpStatusCode, requestId: e.$metadata?.requestId };
  }
  throw new Error('expected the request to fail');
}

interface StoredRecord {
  data: Record<string, any>;
  text: string;
}

/** Every audit record of a request, with its whole stored row (data and metadata) as text. */
async function recordsOf(requestId: string): Promise<StoredRecord[]> {
  const { rows } = await sql<{ data: Record<string, any>; text: string }>`
    select data, data::text || ' ' || coalesce(metadata::text, '') as text from events
    where type = 'AuditRecord' and data ->> 'requestId' = ${requestId} order by global_position`.execute(aws.t.db.owner);
  return rows;
}

async function oneRecordOf(requestId: string | undefined): Promise<StoredRecord> {
  expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
  const records = await recordsOf(requestId!);
  expect(records).toHaveLength(1);
  return records[0]!;
}

/** The forms a byte string could take in a JSON record: base64, base64url, hex (both cases). */
function encodings(bytes: Buffer): string[] {
  return [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex'), bytes.toString('hex').toUpperCase()];
}

/** Whether any stored event, anywhere in the log (every type, data and metadata), contains `needle`. */
async function logContains(needle: string): Promise<boolean> {
  const { rows } = await sql<{ n: string }>`
    select count(*)::text as n from events where strpos(data::text || ' ' || coalesce(metadata::text, ''), ${needle}) > 0`.execute(aws.t.db.owner);
  return rows[0]!.n !== '0';
}

// ------------------------------------------------------------------ every spec and algorithm

describe('Sign RAW and Verify, for every signing key spec and algorithm', () => {
  it.each(CASES.map((c) => [`${c.spec} ${c.algorithm}`, c] as const))(
    '%s: the signature verifies offline (node:crypto) and with Verify',
    { timeout: 60_000 },
    async (_label, { spec, algorithm }) => {
      const key = await signingKey(spec);
      const message = newMessage(`raw ${spec} ${algorithm}`);
      const signed = await aws.kms.send(
        new SignCommand({ KeyId: key.keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm as SigningAlgorithmSpec }),
      );
      expect(signed.KeyId).toBe(key.arn);
      expect(signed.SigningAlgorithm).toBe(algorithm);
      const signature = Buffer.from(signed.Signature!);
      if (spec.startsWith('RSA_')) expect(signature.length).toBe(Number(spec.slice(4)) / 8);
      if (spec === 'ECC_NIST_EDWARDS25519') expect(signature.length).toBe(64);

      expect(verifiedByNode(algorithm, key.publicKey, message, signature), 'node:crypto verifies the signature').toBe(true);
      expect(verifiedByNode(algorithm, key.publicKey, flipped(message), signature), 'node:crypto refuses it for another message').toBe(false);

      const verified = await aws.kms.send(
        new VerifyCommand({ KeyId: key.keyId, Message: message, Signature: signature, SigningAlgorithm: algorithm as SigningAlgorithmSpec }),
      );
      expect([verified.KeyId, verified.SignatureValid, verified.SigningAlgorithm]).toEqual([key.arn, true, algorithm]);
    },
  );

  it.each([
    ['RSASSA_PSS_SHA_256 (RSA_2048)', 'RSA_2048', 'RSASSA_PSS_SHA_256'],
    ['RSASSA_PSS_SHA_512 (RSA_4096)', 'RSA_4096', 'RSASSA_PSS_SHA_512'],
    ['RSASSA_PKCS1_V1_5_SHA_384 (RSA_3072)', 'RSA_3072', 'RSASSA_PKCS1_V1_5_SHA_384'],
    ['ECDSA_SHA_256 (ECC_NIST_P256)', 'ECC_NIST_P256', 'ECDSA_SHA_256'],
    ['ECDSA_SHA_512 (ECC_NIST_P521)', 'ECC_NIST_P521', 'ECDSA_SHA_512'],
    ['ED25519_SHA_512 (ECC_NIST_EDWARDS25519)', 'ECC_NIST_EDWARDS25519', 'ED25519_SHA_512'],
  ] as const)(
    'openssl verifies a %s signature with the key from GetPublicKey, and refuses a flipped bit',
    { timeout: 60_000 },
    async (_label, spec, algorithm) => {
      const key = await signingKey(spec);
      const message = newMessage(`openssl ${algorithm}`);
      const { Signature } = await aws.kms.send(new SignCommand({ KeyId: key.arn, Message: message, SigningAlgorithm: algorithm }));
      const signature = Buffer.from(Signature!);
      expect(verifiedByOpenssl(algorithm, key.publicKeyDer, message, signature)).toBe(true);
      expect(verifiedByOpenssl(algorithm, key.publicKeyDer, message, flipped(signature))).toBe(false);
      expect(verifiedByOpenssl(algorithm, key.publicKeyDer, flipped(message), signature)).toBe(false);
    },
  );
});

describe('DIGEST messages', () => {
  it.each(DIGEST_CASES.map((c) => [`${c.spec} ${c.algorithm}`, c] as const))(
    '%s: a signed digest verifies offline over the message, and with Verify as DIGEST and as RAW',
    { timeout: 60_000 },
    async (_label, { spec, algorithm }) => {
      const key = await signingKey(spec);
      const scheme = SCHEMES[algorithm] as { hash: Hash };
      const message = newMessage(`digest ${spec} ${algorithm}`);
      const digest = createHash(scheme.hash).update(message).digest();
      const { Signature, SigningAlgorithm } = await aws.kms.send(
        new SignCommand({ KeyId: key.keyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: algorithm as SigningAlgorithmSpec }),
      );
      expect(SigningAlgorithm).toBe(algorithm);
      const signature = Buffer.from(Signature!);
      expect(verifiedByNode(algorithm, key.publicKey, message, signature), 'node:crypto verifies it as a signature of the message').toBe(true);

      for (const [Message, type] of [
        [digest, 'DIGEST'],
        [message, 'RAW'],
      ] as const) {
        const r = await aws.kms.send(
          new VerifyCommand({ KeyId: key.keyId, Message, MessageType: type, Signature: signature, SigningAlgorithm: algorithm as SigningAlgorithmSpec }),
        );
        expect(r.SignatureValid, `Verify as ${type}`).toBe(true);
      }
      const wrong = await awsError(
        aws.kms.send(
          new VerifyCommand({
            KeyId: key.keyId,
            Message: flipped(digest),
            MessageType: 'DIGEST',
            Signature: signature,
            SigningAlgorithm: algorithm as SigningAlgorithmSpec,
          }),
        ),
      );
      expect(wrong.name).toBe('KMSInvalidSignatureException');
    },
  );

  it('a RAW signature verifies as DIGEST of the same message (ECDSA P-384)', async () => {
    const key = await signingKey('ECC_NIST_P384');
    const message = newMessage('raw then digest');
    const { Signature } = await aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: message, SigningAlgorithm: 'ECDSA_SHA_384' }));
    const r = await aws.kms.send(
      new VerifyCommand({
        KeyId: key.keyId,
        Message: createHash('sha384').update(message).digest(),
        MessageType: 'DIGEST',
        Signature: Signature!,
        SigningAlgorithm: 'ECDSA_SHA_384',
      }),
    );
    expect(r.SignatureValid).toBe(true);
  });

  it('openssl verifies a signed DIGEST (RSASSA_PSS_SHA_384) over the message', { timeout: 60_000 }, async () => {
    const key = await signingKey('RSA_2048');
    const message = newMessage('openssl digest');
    const { Signature } = await aws.kms.send(
      new SignCommand({
        KeyId: key.keyId,
        Message: createHash('sha384').update(message).digest(),
        MessageType: 'DIGEST',
        SigningAlgorithm: 'RSASSA_PSS_SHA_384',
      }),
    );
    expect(verifiedByOpenssl('RSASSA_PSS_SHA_384', key.publicKeyDer, message, Buffer.from(Signature!))).toBe(true);
  });
});

// ------------------------------------------------------------------ Verify's verdicts

/** Sign and Verify of a 63, 65, 32 and 1-byte message of this type: each a recorded ValidationException with `message`. */
async function expectWrongLengthsRefused(
  keyId: string,
  MessageType: 'DIGEST' | 'EXTERNAL_MU',
  SigningAlgorithm: 'ED25519_PH_SHA_512' | 'ML_DSA_SHAKE_256',
  signatureBytes: number,
  message: string,
): Promise<void> {
  for (const wrong of [63, 65, 32, 1]) {
    const Message = Buffer.alloc(wrong, 7);
    for (const send of [
      () => aws.kms.send(new SignCommand({ KeyId: keyId, Message, MessageType, SigningAlgorithm })),
      () => aws.kms.send(new VerifyCommand({ KeyId: keyId, Message, MessageType, Signature: Buffer.alloc(signatureBytes, 1), SigningAlgorithm })),
    ]) {
      const e = await awsError(send());
      expect([e.name, e.message, e.status], `${wrong} bytes`).toEqual(['ValidationException', message, 400]);
      expect((await oneRecordOf(e.requestId)).data).toMatchObject({ outcome: 'failure', errorCode: 'ValidationException' });
    }
  }
}

describe('Ed25519ph (ED25519_PH_SHA_512) and ML-DSA EXTERNAL_MU', () => {
  /** The key material id a key signs with, for the records. */
  const keyMaterialIdOf = async (keyId: string) =>
    (await sql<{ id: string }>`select current_key_material_id as id from keys where key_id = ${keyId}`.execute(aws.t.db.owner)).rows[0]!.id;

  it('ED25519_PH_SHA_512 signs a DIGEST as RFC 8032 Ed25519ph of the digest bytes (hashed again, as AWS does); Verify agrees', async () => {
    const key = await signingKey('ECC_NIST_EDWARDS25519');
    const message = newMessage('ed25519ph');
    const digest = createHash('sha512').update(message).digest();
    const signed = await aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' }));
    expect([signed.KeyId, signed.SigningAlgorithm]).toEqual([key.arn, 'ED25519_PH_SHA_512']);
    const signature = Buffer.from(signed.Signature!);
    expect(signature.length).toBe(64);
    // Offline, with the public key from GetPublicKey: Ed25519ph over the 64 digest bytes, strict RFC 8032.
    const publicKey = Buffer.from(key.publicKey.export({ format: 'jwk' }).x!, 'base64url');
    expect(ed25519ph.verify(signature, digest, publicKey, { zip215: false })).toBe(true);
    expect(ed25519ph.verify(signature, message, publicKey, { zip215: false })).toBe(false);
    // Not pure Ed25519 of the digest or of the message.
    expect(nodeVerify(null, digest, key.publicKey, signature)).toBe(false);
    expect(nodeVerify(null, message, key.publicKey, signature)).toBe(false);
    // Deterministic, as RFC 8032 is.
    const again = await aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_PH_SHA_512' }));
    expect(Buffer.from(again.Signature!).equals(signature)).toBe(true);

    const verified = await aws.kms.send(
      new VerifyCommand({ KeyId: key.keyId, Message: digest, MessageType: 'DIGEST', Signature: signature, SigningAlgorithm: 'ED25519_PH_SHA_512' }),
    );
    expect([verified.KeyId, verified.SignatureValid, verified.SigningAlgorithm]).toEqual([key.arn, true, 'ED25519_PH_SHA_512']);
    const { Signature: pure } = await aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: digest, SigningAlgorithm: 'ED25519_SHA_512' }));
    for (const [label, Message, Signature] of [
      ['a flipped bit', digest, flipped(signature)],
      ['another digest', flipped(digest), signature],
      ['a pure Ed25519 signature of the same bytes', digest, Buffer.from(pure!)],
      ['a truncated signature', digest, signature.subarray(1)],
    ] as const) {
      const e = await awsError(
        aws.kms.send(new VerifyCommand({ KeyId: key.keyId, Message, MessageType: 'DIGEST', Signature, SigningAlgorithm: 'ED25519_PH_SHA_512' })),
      );
      expect([e.name, e.status], label).toEqual(['KMSInvalidSignatureException', 400]);
    }

    const keyMaterialId = await keyMaterialIdOf(key.keyId);
    const sign = (await oneRecordOf(signed.$metadata.requestId)).data;
    expect(sign).toMatchObject({ eventName: 'Sign', readOnly: true, outcome: 'success' });
    expect(sign.requestParameters).toEqual({ keyId: key.keyId, signingAlgorithm: 'ED25519_PH_SHA_512', messageType: 'DIGEST' });
    expect(sign.additionalEventData).toEqual({ keyMaterialId, messageLength: 64 });
    const verify = (await oneRecordOf(verified.$metadata.requestId)).data;
    expect(verify.additionalEventData).toEqual({ keyMaterialId, messageLength: 64, signatureValid: true });
    for (const needle of [message, digest, signature].flatMap(encodings)) expect(await logContains(needle)).toBe(false);
  });

  it('ED25519_PH_SHA_512 takes only a DIGEST of exactly 64 bytes: ValidationException otherwise, recorded', async () => {
    const key = await signingKey('ECC_NIST_EDWARDS25519');
    await expectWrongLengthsRefused(key.keyId, 'DIGEST', 'ED25519_PH_SHA_512', 64, 'Digest is invalid length for algorithm ED25519_PH_SHA_512.');
    for (const MessageType of [undefined, 'RAW'] as const) {
      const e = await awsError(
        aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: Buffer.alloc(64, 7), MessageType, SigningAlgorithm: 'ED25519_PH_SHA_512' })),
      );
      expect([e.name, e.message, e.status]).toEqual(['ValidationException', 'Signing algorithm ED25519_PH_SHA_512 requires MessageType DIGEST.', 400]);
    }
  });

  /** FIPS 204 μ of a message with an empty context, from GetPublicKey's key: SHAKE256(SHAKE256(pk, 64) || 0 || 0 || M, 64), with Node's SHAKE256. */
  const muOf = (key: SigningKey, message: Buffer): Buffer => {
    const pk = Buffer.from((key.publicKey.export({ format: 'jwk' }) as { pub: string }).pub, 'base64url');
    const tr = createHash('shake256', { outputLength: 64 }).update(pk).digest();
    return createHash('shake256', { outputLength: 64 })
      .update(tr)
      .update(Buffer.from([0, 0]))
      .update(message)
      .digest();
  };

  it.each(['ML_DSA_44', 'ML_DSA_65', 'ML_DSA_87'] as const)(
    '%s EXTERNAL_MU: a signature of the FIPS 204 mu of M is what node:crypto verifies for M; Verify takes mu or M',
    { timeout: 60_000 },
    async (spec) => {
      const key = await signingKey(spec);
      const message = newMessage(`external mu ${spec}`);
      const mu = muOf(key, message);
      const signed = await aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: mu, MessageType: 'EXTERNAL_MU', SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
      expect([signed.KeyId, signed.SigningAlgorithm]).toEqual([key.arn, 'ML_DSA_SHAKE_256']);
      const signature = Buffer.from(signed.Signature!);
      expect(signature.length).toBe({ ML_DSA_44: 2420, ML_DSA_65: 3309, ML_DSA_87: 4627 }[spec]);
      expect(nodeVerify(null, message, key.publicKey, signature), 'node:crypto verifies it as a signature of M').toBe(true);
      expect(nodeVerify(null, flipped(message), key.publicKey, signature)).toBe(false);

      for (const [Message, MessageType] of [
        [mu, 'EXTERNAL_MU'],
        [message, 'RAW'],
      ] as const) {
        const r = await aws.kms.send(new VerifyCommand({ KeyId: key.keyId, Message, MessageType, Signature: signature, SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
        expect(r.SignatureValid, `Verify as ${MessageType}`).toBe(true);
      }
      // A RAW signature verifies as EXTERNAL_MU of the same message.
      const { Signature: raw } = await aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: message, SigningAlgorithm: 'ML_DSA_SHAKE_256' }));
      const asMu = await aws.kms.send(
        new VerifyCommand({ KeyId: key.keyId, Message: mu, MessageType: 'EXTERNAL_MU', Signature: raw!, SigningAlgorithm: 'ML_DSA_SHAKE_256' }),
      );
      expect(asMu.SignatureValid).toBe(true);
      for (const [label, Message, Signature] of [
        ['a flipped bit', mu, flipped(signature)],
        ['another mu', muOf(key, flipped(message)), signature],
        ['a truncated signature', mu, signature.subarray(1)],
      ] as const) {
        const e = await awsError(
          aws.kms.send(new VerifyCommand({ KeyId: key.keyId, Message, MessageType: 'EXTERNAL_MU', Signature, SigningAlgorithm: 'ML_DSA_SHAKE_256' })),
        );
        expect([e.name, e.status], label).toEqual(['KMSInvalidSignatureException', 400]);
      }

      const keyMaterialId = await keyMaterialIdOf(key.keyId);
      const sign = (await oneRecordOf(signed.$metadata.requestId)).data;
      expect(sign).toMatchObject({ eventName: 'Sign', readOnly: true, outcome: 'success' });
      expect(sign.requestParameters).toEqual({ keyId: key.keyId, signingAlgorithm: 'ML_DSA_SHAKE_256', messageType: 'EXTERNAL_MU' });
      expect(sign.additionalEventData).toEqual({ keyMaterialId, messageLength: 64 });
      for (const needle of [mu, signature].flatMap(encodings)) expect(await logContains(needle)).toBe(false);
    },
  );

  it('EXTERNAL_MU must be exactly 64 bytes, and is for ML-DSA only: ValidationException otherwise', async () => {
    const key = await signingKey('ML_DSA_65');
    await expectWrongLengthsRefused(key.keyId, 'EXTERNAL_MU', 'ML_DSA_SHAKE_256', 3309, 'An EXTERNAL_MU message for ML_DSA_SHAKE_256 must be 64 bytes long.');
    const ecdsa = await signingKey('ECC_NIST_P256');
    const e = await awsError(
      aws.kms.send(new SignCommand({ KeyId: ecdsa.keyId, Message: Buffer.alloc(64, 7), MessageType: 'EXTERNAL_MU', SigningAlgorithm: 'ECDSA_SHA_256' })),
    );
    expect([e.name, e.status]).toEqual(['ValidationException', 400]);
  });
});

describe('Verify', () => {
  it('an invalid signature is KMSInvalidSignatureException with an empty message, recorded as a failure that says so', async () => {
    const key = await signingKey('ECC_NIST_P256');
    const message = newMessage('invalid');
    const { Signature } = await aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }));
    const signature = Buffer.from(Signature!);
    for (const [label, m, s] of [
      ['another message', flipped(message), signature],
      ['a flipped bit in the signature', message, flipped(signature)],
      ['a signature that is not DER', message, Buffer.from('not a signature')],
    ] as const) {
      const e = await awsError(aws.kms.send(new VerifyCommand({ KeyId: key.keyId, Message: m, Signature: s, SigningAlgorithm: 'ECDSA_SHA_256' })));
      // 'UnknownError' is how the SDK shows an error whose message is empty, as AWS's is.
      expect([e.name, e.message, e.status], label).toEqual(['KMSInvalidSignatureException', 'UnknownError', 400]);
      const { data } = await oneRecordOf(e.requestId);
      expect(data.errorMessage).toBe('');
      expect([data.eventName, data.outcome, data.errorCode, data.readOnly]).toEqual(['Verify', 'failure', 'KMSInvalidSignatureException', true]);
      expect(data.additionalEventData).toMatchObject({ signatureValid: false, messageLength: m.length });
    }
  });

  it('refuses a valid signature of another key, and one made with another algorithm', async () => {
    const rsa = await signingKey('RSA_2048');
    const other = await signingKey('ECC_NIST_P256');
    const message = newMessage('cross');
    const { Signature } = await aws.kms.send(new SignCommand({ KeyId: rsa.keyId, Message: message, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }));
    const asPkcs1 = await awsError(
      aws.kms.send(new VerifyCommand({ KeyId: rsa.keyId, Message: message, Signature: Signature!, SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' })),
    );
    expect(asPkcs1.name).toBe('KMSInvalidSignatureException');
    const asSha384 = await awsError(
      aws.kms.send(new VerifyCommand({ KeyId: rsa.keyId, Message: message, Signature: Signature!, SigningAlgorithm: 'RSASSA_PSS_SHA_384' })),
    );
    expect(asSha384.name).toBe('KMSInvalidSignatureException');
    const { Signature: ecSignature } = await aws.kms.send(new SignCommand({ KeyId: other.keyId, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }));
    const p256Key2 = await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    const wrongKey = await awsError(
      aws.kms.send(new VerifyCommand({ KeyId: p256Key2.KeyMetadata!.KeyId, Message: message, Signature: ecSignature!, SigningAlgorithm: 'ECDSA_SHA_256' })),
    );
    expect(wrongKey.name).toBe('KMSInvalidSignatureException');
  });
});

// ------------------------------------------------------------------ AWS's limits and errors

describe("AWS's limits and errors", () => {
  it('RAW messages: 4096 bytes are signed, 4097 are a ValidationException from the model', async () => {
    const key = await signingKey('ECC_NIST_P256');
    const max = Buffer.alloc(4096, 0x61);
    const { Signature } = await aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: max, SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect(verifiedByNode('ECDSA_SHA_256', key.publicKey, max, Buffer.from(Signature!))).toBe(true);
    const over = Buffer.alloc(4097, 0x61);
    for (const send of [
      () => aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: over, SigningAlgorithm: 'ECDSA_SHA_256' })),
      () => aws.kms.send(new VerifyCommand({ KeyId: key.keyId, Message: over, Signature: Signature!, SigningAlgorithm: 'ECDSA_SHA_256' })),
    ]) {
      const e = await awsError(send());
      expect([e.name, e.message, e.status]).toEqual([
        'ValidationException',
        "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096",
        400,
      ]);
      const { data } = await oneRecordOf(e.requestId);
      expect(data.outcome).toBe('failure');
    }
  });

  it.each([
    ['ECC_NIST_P256', 'ECDSA_SHA_256', 32],
    ['ECC_NIST_P384', 'ECDSA_SHA_384', 48],
    ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_512', 64],
    ['RSA_2048', 'RSASSA_PSS_SHA_256', 32],
  ] as const)('a DIGEST for %s %s must be exactly %i bytes: ValidationException otherwise', async (spec, algorithm, length) => {
    const key = await signingKey(spec);
    for (const wrong of [length - 1, length + 1, 1]) {
      const e = await awsError(
        aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: Buffer.alloc(wrong, 7), MessageType: 'DIGEST', SigningAlgorithm: algorithm })),
      );
      expect([e.name, e.message, e.status], `${wrong} bytes`).toEqual(['ValidationException', `Digest is invalid length for algorithm ${algorithm}.`, 400]);
    }
    const e = await awsError(
      aws.kms.send(
        new VerifyCommand({
          KeyId: key.keyId,
          Message: Buffer.alloc(length + 1, 7),
          MessageType: 'DIGEST',
          Signature: Buffer.alloc(64, 1),
          SigningAlgorithm: algorithm,
        }),
      ),
    );
    expect([e.name, e.message]).toEqual(['ValidationException', `Digest is invalid length for algorithm ${algorithm}.`]);
  });

  it('an algorithm the key spec does not allow is InvalidKeyUsageException', async () => {
    for (const [spec, algorithm] of [
      ['ECC_NIST_P256', 'RSASSA_PSS_SHA_256'],
      ['ECC_NIST_P256', 'ECDSA_SHA_384'],
      ['RSA_2048', 'ECDSA_SHA_256'],
      ['ECC_NIST_EDWARDS25519', 'ECDSA_SHA_512'],
      ['ML_DSA_44', 'ED25519_SHA_512'],
      ['ECC_SECG_P256K1', 'SM2DSA'],
    ] as const) {
      const key = await signingKey(spec);
      for (const send of [
        () => aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: Buffer.from('m'), SigningAlgorithm: algorithm })),
        () => aws.kms.send(new VerifyCommand({ KeyId: key.keyId, Message: Buffer.from('m'), Signature: Buffer.alloc(64, 1), SigningAlgorithm: algorithm })),
      ]) {
        const e = await awsError(send());
        expect([e.name, e.message, e.status], `${spec} ${algorithm}`).toEqual([
          'InvalidKeyUsageException',
          `Algorithm ${algorithm} is incompatible with key spec ${spec}.`,
          400,
        ]);
      }
    }
  });

  it('a key of another usage is InvalidKeyUsageException', async () => {
    const { KeyMetadata: symmetric } = await aws.kms.send(new CreateKeyCommand({}));
    const { KeyMetadata: rsaEncryption } = await aws.kms.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }));
    const { KeyMetadata: hmac } = await aws.kms.send(new CreateKeyCommand({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }));
    for (const made of [symmetric!, rsaEncryption!, hmac!]) {
      const sign = await awsError(aws.kms.send(new SignCommand({ KeyId: made.KeyId, Message: Buffer.from('m'), SigningAlgorithm: 'RSASSA_PSS_SHA_256' })));
      expect([sign.name, sign.message]).toEqual(['InvalidKeyUsageException', `${made.Arn} key usage is ${made.KeyUsage} which is not valid for Sign.`]);
      const verify = await awsError(
        aws.kms.send(
          new VerifyCommand({ KeyId: made.KeyId, Message: Buffer.from('m'), Signature: Buffer.alloc(256, 1), SigningAlgorithm: 'RSASSA_PSS_SHA_256' }),
        ),
      );
      expect([verify.name, verify.message]).toEqual(['InvalidKeyUsageException', `${made.Arn} key usage is ${made.KeyUsage} which is not valid for Verify.`]);
    }
  });

  it('a message type the algorithm does not take is a ValidationException', async () => {
    const ed = await signingKey('ECC_NIST_EDWARDS25519');
    const e = await awsError(
      aws.kms.send(new SignCommand({ KeyId: ed.keyId, Message: Buffer.alloc(64, 1), MessageType: 'DIGEST', SigningAlgorithm: 'ED25519_SHA_512' })),
    );
    expect([e.name, e.status]).toEqual(['ValidationException', 400]);
    const mlDsa = await signingKey('ML_DSA_44');
    const d = await awsError(
      aws.kms.send(new SignCommand({ KeyId: mlDsa.keyId, Message: Buffer.alloc(64, 1), MessageType: 'DIGEST', SigningAlgorithm: 'ML_DSA_SHAKE_256' })),
    );
    expect([d.name, d.status]).toEqual(['ValidationException', 400]);
  });

  it('a Disabled key is DisabledException, a key pending deletion KMSInvalidStateException', async () => {
    const { KeyMetadata: a } = await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    const { Signature } = await aws.kms.send(new SignCommand({ KeyId: a!.KeyId, Message: Buffer.from('before'), SigningAlgorithm: 'ECDSA_SHA_256' }));
    await aws.kms.send(new DisableKeyCommand({ KeyId: a!.KeyId }));
    expect(await awsError(aws.kms.send(new SignCommand({ KeyId: a!.KeyId, Message: Buffer.from('m'), SigningAlgorithm: 'ECDSA_SHA_256' })))).toMatchObject({
      name: 'DisabledException',
      message: `${a!.Arn} is disabled.`,
    });
    expect(
      await awsError(
        aws.kms.send(new VerifyCommand({ KeyId: a!.KeyId, Message: Buffer.from('before'), Signature: Signature!, SigningAlgorithm: 'ECDSA_SHA_256' })),
      ),
    ).toMatchObject({ name: 'DisabledException', message: `${a!.Arn} is disabled.` });
    const { KeyMetadata: b } = await aws.kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    await aws.kms.send(new ScheduleKeyDeletionCommand({ KeyId: b!.KeyId, PendingWindowInDays: 7 }));
    expect(await awsError(aws.kms.send(new SignCommand({ KeyId: b!.KeyId, Message: Buffer.from('m'), SigningAlgorithm: 'ECDSA_SHA_256' })))).toMatchObject({
      name: 'KMSInvalidStateException',
      message: `${b!.Arn} is pending deletion.`,
    });
  });

  it('DryRun: DryRunOperationException after every check, with no signature; a refused DryRun still gets its refusal', async () => {
    const key = await signingKey('ECC_NIST_P256');
    const e = await awsError(aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: Buffer.from('dry'), SigningAlgorithm: 'ECDSA_SHA_256', DryRun: true })));
    expect([e.name, e.message]).toEqual(['DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.']);
    const { data } = await oneRecordOf(e.requestId);
    expect(data.requestParameters).toMatchObject({ dryRun: true });
    const v = await awsError(
      aws.kms.send(
        new VerifyCommand({ KeyId: key.keyId, Message: Buffer.from('dry'), Signature: Buffer.alloc(70, 1), SigningAlgorithm: 'ECDSA_SHA_256', DryRun: true }),
      ),
    );
    expect(v.name).toBe('DryRunOperationException');
    const refused = await awsError(
      aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: Buffer.from('dry'), SigningAlgorithm: 'ECDSA_SHA_384', DryRun: true })),
    );
    expect(refused.name).toBe('InvalidKeyUsageException');
  });

  it('a missing key is NotFoundException; a key named by alias signs and answers with its ARN', async () => {
    const missing = await awsError(
      aws.kms.send(new SignCommand({ KeyId: '11111111-2222-3333-4444-555555555555', Message: Buffer.from('m'), SigningAlgorithm: 'ECDSA_SHA_256' })),
    );
    expect(missing.name).toBe('NotFoundException');
    const key = await signingKey('ECC_SECG_P256K1');
    const aliasName = `alias/signing-${process.pid}`;
    await aws.kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.keyId }));
    const message = newMessage('alias');
    const signed = await aws.kms.send(new SignCommand({ KeyId: aliasName, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect(signed.KeyId).toBe(key.arn);
    expect(verifiedByNode('ECDSA_SHA_256', key.publicKey, message, Buffer.from(signed.Signature!))).toBe(true);
    const { data } = await oneRecordOf(signed.$metadata.requestId);
    expect(data.requestParameters.keyId).toBe(aliasName);
    expect(data.resources.map((r: { arn: string }) => r.arn)).toEqual([key.arn]);
  });
});

// ------------------------------------------------------------------ authorization

describe('authorization', () => {
  it('another principal without rights is refused; a grant of Sign lets it sign (and only sign), recorded with the grant', async () => {
    const signer = await aws.t.newUser(aws.admin.accountId, `signer-${process.pid}`);
    const signerKms = kmsClient(aws.server, signer);
    try {
      const key = await signingKey('ECC_NIST_P256');
      const message = newMessage('by grant');
      const denied = await awsError(signerKms.send(new SignCommand({ KeyId: key.arn, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' })));
      expect([denied.name, denied.message]).toEqual([
        'AccessDeniedException',
        `User: ${signer.principalArn} is not authorized to perform: ` +
          `kms:Sign on resource: ${key.arn} because no identity-based policy allows the kms:Sign action`,
      ]);
      const { GrantId } = await aws.kms.send(new CreateGrantCommand({ KeyId: key.keyId, GranteePrincipal: signer.principalArn, Operations: ['Sign'] }));
      const signed = await signerKms.send(new SignCommand({ KeyId: key.arn, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }));
      expect(verifiedByNode('ECDSA_SHA_256', key.publicKey, message, Buffer.from(signed.Signature!))).toBe(true);
      const { data } = await oneRecordOf(signed.$metadata.requestId);
      expect([data.outcome, data.userIdentity.principalArn]).toEqual(['success', signer.principalArn]);
      expect(data.authorization.allowedBy).toEqual([{ kind: 'grant', grantId: GrantId }]);

      const verify = await awsError(
        signerKms.send(new VerifyCommand({ KeyId: key.arn, Message: message, Signature: signed.Signature!, SigningAlgorithm: 'ECDSA_SHA_256' })),
      );
      expect(verify.name).toBe('AccessDeniedException');
      await aws.kms.send(new CreateGrantCommand({ KeyId: key.keyId, GranteePrincipal: signer.principalArn, Operations: ['Verify'] }));
      const verified = await signerKms.send(
        new VerifyCommand({ KeyId: key.arn, Message: message, Signature: signed.Signature!, SigningAlgorithm: 'ECDSA_SHA_256' }),
      );
      expect(verified.SignatureValid).toBe(true);
    } finally {
      signerKms.destroy();
    }
  });

  it('another account: its key is NotFoundException by ARN until a grant allows; then it signs', async () => {
    const other = await aws.t.newAccount('other-signer');
    const otherKms = kmsClient(aws.server, other);
    try {
      const key = await signingKey('ECC_NIST_P384');
      const message = newMessage('cross-account');
      const hidden = await awsError(otherKms.send(new SignCommand({ KeyId: key.arn, Message: message, SigningAlgorithm: 'ECDSA_SHA_384' })));
      expect([hidden.name, hidden.message]).toEqual(['NotFoundException', `Key '${key.arn}' does not exist`]);
      await aws.kms.send(new CreateGrantCommand({ KeyId: key.keyId, GranteePrincipal: other.principalArn, Operations: ['Sign', 'Verify'] }));
      const signed = await otherKms.send(new SignCommand({ KeyId: key.arn, Message: message, SigningAlgorithm: 'ECDSA_SHA_384' }));
      expect(signed.KeyId).toBe(key.arn);
      expect(verifiedByNode('ECDSA_SHA_384', key.publicKey, message, Buffer.from(signed.Signature!))).toBe(true);
      const { data } = await oneRecordOf(signed.$metadata.requestId);
      expect(data.recipientAccountId).toBe(aws.admin.accountId);
      const verified = await otherKms.send(
        new VerifyCommand({ KeyId: key.arn, Message: message, Signature: signed.Signature!, SigningAlgorithm: 'ECDSA_SHA_384' }),
      );
      expect(verified.SignatureValid).toBe(true);
    } finally {
      otherKms.destroy();
    }
  });

  it('kms:SigningAlgorithm and kms:MessageType condition keys are evaluated', async () => {
    const user = await aws.t.newUser(
      aws.admin.accountId,
      `conditioned-${process.pid}`,
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: 'kms:Sign',
            Resource: '*',
            Condition: { StringEquals: { 'kms:SigningAlgorithm': 'RSASSA_PSS_SHA_256', 'kms:MessageType': 'RAW' } },
          },
        ],
      }),
    );
    const userKms = kmsClient(aws.server, user);
    try {
      const key = await signingKey('RSA_2048');
      const ok = await userKms.send(new SignCommand({ KeyId: key.keyId, Message: Buffer.from('m'), SigningAlgorithm: 'RSASSA_PSS_SHA_256' }));
      expect(ok.Signature).toBeDefined();
      expect(
        (await awsError(userKms.send(new SignCommand({ KeyId: key.keyId, Message: Buffer.from('m'), SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' })))).name,
      ).toBe('AccessDeniedException');
      const digest = createHash('sha256').update('m').digest();
      expect(
        (await awsError(userKms.send(new SignCommand({ KeyId: key.keyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'RSASSA_PSS_SHA_256' }))))
          .name,
      ).toBe('AccessDeniedException');
    } finally {
      userKms.destroy();
    }
  });
});

// ------------------------------------------------------------------ the audit records

describe('the audit records', () => {
  it(
    'one per request, readOnly, with the key, algorithm, message type, ' + 'key material id and message length: never the message, its hash or the signature',
    async () => {
      const key = await signingKey('RSA_2048');
      const message = newMessage('audited secret message');
      const digest = createHash('sha256').update(message).digest();
      const signed = await aws.kms.send(
        new SignCommand({ KeyId: key.keyId, Message: message, MessageType: 'RAW' as MessageType, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }),
      );
      const signature = Buffer.from(signed.Signature!);
      const digestSigned = await aws.kms.send(
        new SignCommand({ KeyId: key.keyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' }),
      );
      const verified = await aws.kms.send(
        new VerifyCommand({ KeyId: key.keyId, Message: message, Signature: signature, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }),
      );
      const invalid = await awsError(
        aws.kms.send(new VerifyCommand({ KeyId: key.keyId, Message: message, Signature: flipped(signature), SigningAlgorithm: 'RSASSA_PSS_SHA_256' })),
      );

      const { rows: material } = await sql<{ id: string }>`select current_key_material_id as id from keys where key_id = ${key.keyId}`.execute(aws.t.db.owner);
      const keyMaterialId = material[0]!.id;

      const sign = (await oneRecordOf(signed.$metadata.requestId)).data;
      expect(sign).toMatchObject({ eventName: 'Sign', eventSource: 'kms', readOnly: true, outcome: 'success', responseElements: null });
      expect(sign.requestParameters).toEqual({ keyId: key.keyId, signingAlgorithm: 'RSASSA_PSS_SHA_256', messageType: 'RAW' });
      expect(sign.additionalEventData).toEqual({ keyMaterialId, messageLength: message.length });
      expect(sign.resources).toEqual([{ arn: key.arn, type: 'AWS::KMS::Key', accountId: aws.admin.accountId }]);

      const digestRecord = (await oneRecordOf(digestSigned.$metadata.requestId)).data;
      expect(digestRecord.requestParameters).toEqual({ keyId: key.keyId, signingAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256', messageType: 'DIGEST' });
      expect(digestRecord.additionalEventData).toEqual({ keyMaterialId, messageLength: 32 });

      const verify = (await oneRecordOf(verified.$metadata.requestId)).data;
      expect(verify).toMatchObject({ eventName: 'Verify', readOnly: true, outcome: 'success' });
      expect(verify.requestParameters).toEqual({ keyId: key.keyId, signingAlgorithm: 'RSASSA_PSS_SHA_256' });
      expect(verify.additionalEventData).toEqual({ keyMaterialId, messageLength: message.length, signatureValid: true });

      const failed = (await oneRecordOf(invalid.requestId)).data;
      expect(failed).toMatchObject({ eventName: 'Verify', readOnly: true, outcome: 'failure', errorCode: 'KMSInvalidSignatureException', errorMessage: '' });
      expect(failed.additionalEventData).toEqual({ keyMaterialId, messageLength: message.length, signatureValid: false });

      // Nothing of the message, its digest or the signatures anywhere in the log, in any encoding.
      const secrets = [message, digest, createHash('sha512').update(message).digest(), signature, flipped(signature), Buffer.from(digestSigned.Signature!)];
      for (const needle of secrets.flatMap(encodings)) expect(await logContains(needle), 'the log contains a message, digest or signature').toBe(false);
      // The message's text, even a part of it.
      expect(await logContains('audited secret message')).toBe(false);
    },
  );

  it('refused requests are recorded once each, without the message either', async () => {
    const key = await signingKey('ECC_NIST_P256');
    const message = newMessage('refused secret message');
    const refused = [
      await awsError(aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: message, SigningAlgorithm: 'RSASSA_PSS_SHA_256' }))),
      await awsError(
        aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: Buffer.concat([message, Buffer.alloc(4097)]), SigningAlgorithm: 'ECDSA_SHA_256' })),
      ),
      await awsError(aws.kms.send(new SignCommand({ KeyId: key.keyId, Message: message, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }))),
    ];
    expect(refused.map((e) => e.name)).toEqual(['InvalidKeyUsageException', 'ValidationException', 'ValidationException']);
    for (const e of refused) {
      const { data } = await oneRecordOf(e.requestId);
      expect([data.eventName, data.outcome, data.readOnly]).toEqual(['Sign', 'failure', true]);
    }
    for (const needle of encodings(message)) expect(await logContains(needle)).toBe(false);
    expect(await logContains('refused secret message')).toBe(false);
  });
});

// ------------------------------------------------------------------ GraphQL

describe('GraphQL', () => {
  it('sign and verify mutations; an invalid signature is KMSInvalidSignatureException in extensions.code', async () => {
    const key = await signingKey('ECC_NIST_EDWARDS25519');
    const message = newMessage('graphql');
    const signed = await aws.t.gql<{ sign: { keyId: string; signature: string; signingAlgorithm: string } }>(
      aws.admin,
      'mutation($input: SignInput!) { sign(input: $input) { keyId signature signingAlgorithm } }',
      { input: { keyId: key.keyId, message: message.toString('base64'), messageType: 'RAW', signingAlgorithm: 'ED25519_SHA_512' } },
    );
    expect(signed.errors).toBeUndefined();
    expect(signed.data!.sign.keyId).toBe(key.arn);
    const signature = Buffer.from(signed.data!.sign.signature, 'base64');
    expect(verifiedByNode('ED25519_SHA_512', key.publicKey, message, signature)).toBe(true);

    const verifyDocument = 'mutation($input: VerifyInput!) { verify(input: $input) { keyId signatureValid signingAlgorithm } }';
    const verified = await aws.t.gql(aws.admin, verifyDocument, {
      input: { keyId: key.keyId, message: message.toString('base64'), signature: signature.toString('base64'), signingAlgorithm: 'ED25519_SHA_512' },
    });
    expect(verified.errors).toBeUndefined();
    expect(verified.data).toEqual({ verify: { keyId: key.arn, signatureValid: true, signingAlgorithm: 'ED25519_SHA_512' } });

    const invalid = await aws.t.gql(aws.admin, verifyDocument, {
      input: { keyId: key.keyId, message: message.toString('base64'), signature: flipped(signature).toString('base64'), signingAlgorithm: 'ED25519_SHA_512' },
    });
    expect(invalid.errors?.[0]?.extensions?.code).toBe('KMSInvalidSignatureException');
    const { data } = await oneRecordOf(invalid.errors?.[0]?.extensions?.requestId);
    expect([data.eventName, data.outcome, data.additionalEventData.signatureValid]).toEqual(['Verify', 'failure', false]);
  });
});
