/**
 * src/crypto/asymmetric.ts and src/crypto/hmac.ts, checked offline against
 * the `openssl` command (run with execFile, never a shell): signatures made
 * here verify with openssl and openssl's verify here, for every key spec,
 * algorithm and message type, RAW and DIGEST; RSA-OAEP ciphertexts made by
 * `openssl pkeyutl -encrypt` decrypt here and the other way round; HMACs and
 * ECDH secrets equal openssl's.
 *
 * ML-DSA: the system openssl is 3.0, which has no ML-DSA, so ML-DSA
 * signatures are checked against Node's own crypto.verify/crypto.sign instead
 * (and against openssl too when the installed one lists ML-DSA); EXTERNAL_MU
 * signatures over a mu computed here with Node's SHAKE256 (FIPS 204) must be
 * what Node verifies for the message itself.
 *
 * Ed25519ph: openssl 3.0 has none (`-pkeyopt instance:Ed25519ph` came in
 * 3.2), so it is checked against RFC 8032's test vector and by recomputing
 * the signature's S with Node's SHA-512 and BigInt arithmetic.
 */
import { execFile } from 'node:child_process';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import * as nodeCrypto from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ENCRYPTION_ALGORITHMS_BY_SPEC,
  InvalidKeyMaterialError,
  KEY_AGREEMENT_ALGORITHMS_BY_SPEC,
  MAX_RAW_MESSAGE_BYTES,
  MESSAGE_BYTES_BY_TYPE,
  RSA_OAEP_MAX_PLAINTEXT_BYTES,
  SIGNING_ALGORITHMS_BY_SPEC,
  UnsupportedKeySpecError,
  type AsymmetricKeySpec,
  type MessageType,
  type NistEccKeySpec,
  type RsaKeySpec,
  type RsaOaepAlgorithm,
  type SigningAlgorithmSpec,
} from '../../src/crypto/asymmetric.ts';
import { deriveSharedSecret } from '../../src/crypto/key-agreement.ts';
import { derivePublicKey, generateKeyPair, type KeyPairDer } from '../../src/crypto/key-pairs.ts';
import { rsaOaepDecrypt, rsaOaepEncrypt } from '../../src/crypto/rsa-oaep.ts';
import { ed25519phSign, ed25519phVerify, ed25519Seed } from '../../src/crypto/noble-signing.ts';
import { checkSigningRequest, MESSAGE_TYPES_BY_ALGORITHM, sign, verify } from '../../src/crypto/signing.ts';
import {
  generateHmacKey,
  generateMac,
  HMAC_KEY_BYTES,
  MAC_ALGORITHMS_BY_SPEC,
  MAX_MAC_MESSAGE_BYTES,
  verifyMac,
  type HmacKeySpec,
} from '../../src/crypto/hmac.ts';
import { shape } from '../../src/service/model/kms-model.ts';

// ---------------------------------------------------------------------------
// openssl, files, fixtures
// ---------------------------------------------------------------------------

/** Runs openssl with arguments (no shell) and returns stdout; rejects on a non-zero exit. */
function openssl(args: readonly string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stdout: stdout.toString(), stderr: stderr.toString() }));
      else resolve(stdout);
    });
  });
}

/**
 * An openssl signature verification: true on "Verified OK" / "Signature
 * Verified Successfully", false on openssl's own verification-failure
 * answer, and a thrown error for anything else (a bad option, an unreadable
 * key), so a broken command line can never pass for a refused signature.
 */
async function opensslVerifies(args: readonly string[]): Promise<boolean> {
  try {
    const out = (await openssl(args)).toString();
    if (/Verified OK|Signature Verified Successfully/.test(out)) return true;
    throw new Error(`openssl verify printed neither success nor failure: ${out}`);
  } catch (error) {
    const out = String((error as { stdout?: string }).stdout ?? '');
    if (/Verification failure|Signature Verification Failure/i.test(out)) return false;
    throw error;
  }
}

let dir: string;
let fileCounter = 0;
/** Writes bytes to a fresh file in the test directory and returns its path. */
async function file(data: Buffer | string, name = 'f'): Promise<string> {
  const path = join(dir, `${name}-${fileCounter++}`);
  await writeFile(path, data);
  return path;
}

interface Fixture extends KeyPairDer {
  privatePem: string;
  publicPem: string;
  publicKey: KeyObject;
}

const ALL_SPECS = Object.keys(SIGNING_ALGORITHMS_BY_SPEC) as AsymmetricKeySpec[];
const RSA_SPECS: RsaKeySpec[] = ['RSA_2048', 'RSA_3072', 'RSA_4096'];
const EC_SPECS = ['ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ECC_SECG_P256K1'] as const;
const NIST_SPECS: NistEccKeySpec[] = ['ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521'];
const ML_DSA_SPECS = ['ML_DSA_44', 'ML_DSA_65', 'ML_DSA_87'] as const;
const OPENSSL_CURVE = { ECC_NIST_P256: 'prime256v1', ECC_NIST_P384: 'secp384r1', ECC_NIST_P521: 'secp521r1', ECC_SECG_P256K1: 'secp256k1' } as const;
const ML_DSA_OID = { ML_DSA_44: '2.16.840.1.101.3.4.3.17', ML_DSA_65: '2.16.840.1.101.3.4.3.18', ML_DSA_87: '2.16.840.1.101.3.4.3.19' } as const;

const keys = {} as Record<AsymmetricKeySpec, Fixture>;
let opensslHasMlDsa = false;

/** PEM files of a key pair, written by openssl from our DER: openssl itself must be able to read the DER. */
async function fixture(spec: AsymmetricKeySpec, pair: KeyPairDer): Promise<Fixture> {
  const publicKey = createPublicKey({ key: pair.publicKeyDer, format: 'der', type: 'spki' });
  if (spec.startsWith('ML_DSA_') && !opensslHasMlDsa) return { ...pair, privatePem: '', publicPem: '', publicKey };
  const privatePem = join(dir, `${spec}.key.pem`);
  const publicPem = join(dir, `${spec}.pub.pem`);
  await openssl(['pkey', '-inform', 'DER', '-in', await file(pair.privateKeyDer, 'priv'), '-out', privatePem]);
  await openssl(['pkey', '-pubin', '-inform', 'DER', '-in', await file(pair.publicKeyDer, 'pub'), '-out', publicPem]);
  return { ...pair, privatePem, publicPem, publicKey };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyledger-asymmetric-'));
  opensslHasMlDsa = /ML-DSA/i.test((await openssl(['list', '-public-key-algorithms'])).toString());
  const pairs = await Promise.all(ALL_SPECS.map((spec) => generateKeyPair(spec)));
  await Promise.all(ALL_SPECS.map(async (spec, i) => (keys[spec] = await fixture(spec, pairs[i]!))));
});

afterAll(async () => {
  for (const spec of ALL_SPECS) keys[spec]?.privateKeyDer.fill(0);
  if (dir) await rm(dir, { recursive: true, force: true });
});

type Hash = 'sha256' | 'sha384' | 'sha512';
const hashOf = (algorithm: string): Hash => (algorithm.endsWith('_256') ? 'sha256' : algorithm.endsWith('_384') ? 'sha384' : 'sha512');
const digestOf = (algorithm: string, message: Buffer): Buffer => createHash(hashOf(algorithm)).update(message).digest();
const isPss = (algorithm: string) => algorithm.startsWith('RSASSA_PSS_');
const isRsa = (algorithm: string) => algorithm.startsWith('RSASSA_');

function signOk(spec: AsymmetricKeySpec, algorithm: SigningAlgorithmSpec, message: Buffer, messageType: MessageType = 'RAW'): Buffer {
  const result = sign({ keySpec: spec, privateKeyDer: keys[spec].privateKeyDer, algorithm, message, messageType });
  if (!result.ok) throw new Error(`${spec} ${algorithm} ${messageType}: ${result.reason}`);
  return result.signature;
}

function verifies(spec: AsymmetricKeySpec, algorithm: SigningAlgorithmSpec, message: Buffer, signature: Buffer, messageType: MessageType = 'RAW'): boolean {
  const result = verify({ keySpec: spec, publicKeyDer: keys[spec].publicKeyDer, algorithm, message, messageType, signature });
  if (!result.ok) throw new Error(`${spec} ${algorithm} ${messageType}: ${result.reason}`);
  return result.valid;
}

/** openssl's signature options for an algorithm: PSS with salt length = digest length (and MGF1 with the same hash, openssl's default). */
const pssOptions = (flag: '-sigopt' | '-pkeyopt', algorithm: string) =>
  isPss(algorithm) ? [flag, 'rsa_padding_mode:pss', flag, 'rsa_pss_saltlen:digest'] : [];

/** openssl verifies a RAW-message signature (`dgst` hashes the message, or `pkeyutl -rawin` for Ed25519). */
async function opensslVerifiesRaw(spec: AsymmetricKeySpec, algorithm: string, message: Buffer, signature: Buffer): Promise<boolean> {
  const [m, s] = await Promise.all([file(message, 'msg'), file(signature, 'sig')]);
  if (algorithm === 'ED25519_SHA_512')
    return opensslVerifies(['pkeyutl', '-verify', '-pubin', '-inkey', keys[spec].publicPem, '-rawin', '-in', m, '-sigfile', s]);
  return opensslVerifies(['dgst', `-${hashOf(algorithm)}`, ...pssOptions('-sigopt', algorithm), '-verify', keys[spec].publicPem, '-signature', s, m]);
}

/** openssl verifies a signature over a digest (`pkeyutl -pkeyopt digest:…` signs and verifies pre-hashed input). */
async function opensslVerifiesDigest(spec: AsymmetricKeySpec, algorithm: string, digest: Buffer, signature: Buffer): Promise<boolean> {
  const [d, s] = await Promise.all([file(digest, 'digest'), file(signature, 'sig')]);
  return opensslVerifies([
    'pkeyutl',
    '-verify',
    '-pubin',
    '-inkey',
    keys[spec].publicPem,
    '-in',
    d,
    '-sigfile',
    s,
    '-pkeyopt',
    `digest:${hashOf(algorithm)}`,
    ...pssOptions('-pkeyopt', algorithm),
  ]);
}

async function opensslSignsRaw(spec: AsymmetricKeySpec, algorithm: string, message: Buffer): Promise<Buffer> {
  const m = await file(message, 'msg');
  if (algorithm === 'ED25519_SHA_512') return openssl(['pkeyutl', '-sign', '-inkey', keys[spec].privatePem, '-rawin', '-in', m]);
  return openssl(['dgst', `-${hashOf(algorithm)}`, ...pssOptions('-sigopt', algorithm), '-sign', keys[spec].privatePem, m]);
}

async function opensslSignsDigest(spec: AsymmetricKeySpec, algorithm: string, digest: Buffer): Promise<Buffer> {
  const d = await file(digest, 'digest');
  return openssl([
    'pkeyutl',
    '-sign',
    '-inkey',
    keys[spec].privatePem,
    '-in',
    d,
    '-pkeyopt',
    `digest:${hashOf(algorithm)}`,
    ...pssOptions('-pkeyopt', algorithm),
  ]);
}

/** Every (spec, algorithm) pair AWS allows, minus Ed25519ph (openssl 3.0 has none: checked on its own below). */
const SIGNING_CASES = ALL_SPECS.flatMap((spec) =>
  SIGNING_ALGORITHMS_BY_SPEC[spec].filter((a) => a !== 'ED25519_PH_SHA_512').map((algorithm) => ({ spec, algorithm })),
);
const OPENSSL_SIGNING_CASES = SIGNING_CASES.filter(({ algorithm }) => algorithm !== 'ML_DSA_SHAKE_256');
const DIGEST_CASES = SIGNING_CASES.filter(({ algorithm }) =>
  MESSAGE_TYPES_BY_ALGORITHM[algorithm as keyof typeof MESSAGE_TYPES_BY_ALGORITHM].includes('DIGEST'),
);

/** Re-encodes a DER ECDSA signature's two integers (a tiny DER reader, independent of the module's). */
function derIntegers(signature: Buffer): [Buffer, Buffer] {
  let offset = signature[1]! & 0x80 ? 2 + (signature[1]! & 0x7f) : 2;
  const ints: Buffer[] = [];
  for (let i = 0; i < 2; i++) {
    const length = signature[offset + 1]!;
    ints.push(signature.subarray(offset + 2, offset + 2 + length));
    offset += 2 + length;
  }
  return [ints[0]!, ints[1]!];
}
function derSequence(r: Buffer, s: Buffer): Buffer {
  const int = (b: Buffer) => Buffer.concat([Buffer.from([0x02, b.length]), b]);
  const body = Buffer.concat([int(r), int(s)]);
  return Buffer.concat([Buffer.from(body.length < 0x80 ? [0x30, body.length] : [0x30, 0x81, body.length]), body]);
}

// ---------------------------------------------------------------------------
// AWS's matrix and limits
// ---------------------------------------------------------------------------

describe("AWS's matrix, as data", () => {
  const enumOf = (name: string) => shape(name).enum ?? [];

  it('names only key specs and algorithms that exist in the KMS model', () => {
    const specs = enumOf('KeySpec');
    const tables = [SIGNING_ALGORITHMS_BY_SPEC, ENCRYPTION_ALGORITHMS_BY_SPEC, MAC_ALGORITHMS_BY_SPEC, KEY_AGREEMENT_ALGORITHMS_BY_SPEC];
    for (const table of tables) for (const spec of Object.keys(table)) expect(specs).toContain(spec);
    for (const list of Object.values(SIGNING_ALGORITHMS_BY_SPEC)) for (const a of list) expect(enumOf('SigningAlgorithmSpec')).toContain(a);
    for (const list of Object.values(ENCRYPTION_ALGORITHMS_BY_SPEC)) for (const a of list) expect(enumOf('EncryptionAlgorithmSpec')).toContain(a);
    for (const list of Object.values(MAC_ALGORITHMS_BY_SPEC)) for (const a of list) expect(enumOf('MacAlgorithmSpec')).toContain(a);
    for (const list of Object.values(KEY_AGREEMENT_ALGORITHMS_BY_SPEC)) for (const a of list) expect(enumOf('KeyAgreementAlgorithmSpec')).toContain(a);
    for (const types of Object.values(MESSAGE_TYPES_BY_ALGORITHM)) for (const t of types) expect(enumOf('MessageType')).toContain(t);
    // Every signing algorithm but China-only SM2DSA has a key spec and message types.
    const covered = new Set(Object.values(SIGNING_ALGORITHMS_BY_SPEC).flat());
    expect(enumOf('SigningAlgorithmSpec').filter((a) => !covered.has(a as SigningAlgorithmSpec))).toEqual(['SM2DSA']);
    expect(Object.keys(MESSAGE_TYPES_BY_ALGORITHM).sort()).toEqual([...covered].sort());
  });

  it("is AWS's matrix", () => {
    expect(SIGNING_ALGORITHMS_BY_SPEC).toEqual({
      RSA_2048: [
        'RSASSA_PKCS1_V1_5_SHA_256',
        'RSASSA_PKCS1_V1_5_SHA_384',
        'RSASSA_PKCS1_V1_5_SHA_512',
        'RSASSA_PSS_SHA_256',
        'RSASSA_PSS_SHA_384',
        'RSASSA_PSS_SHA_512',
      ],
      RSA_3072: [
        'RSASSA_PKCS1_V1_5_SHA_256',
        'RSASSA_PKCS1_V1_5_SHA_384',
        'RSASSA_PKCS1_V1_5_SHA_512',
        'RSASSA_PSS_SHA_256',
        'RSASSA_PSS_SHA_384',
        'RSASSA_PSS_SHA_512',
      ],
      RSA_4096: [
        'RSASSA_PKCS1_V1_5_SHA_256',
        'RSASSA_PKCS1_V1_5_SHA_384',
        'RSASSA_PKCS1_V1_5_SHA_512',
        'RSASSA_PSS_SHA_256',
        'RSASSA_PSS_SHA_384',
        'RSASSA_PSS_SHA_512',
      ],
      ECC_NIST_P256: ['ECDSA_SHA_256'],
      ECC_NIST_P384: ['ECDSA_SHA_384'],
      ECC_NIST_P521: ['ECDSA_SHA_512'],
      ECC_SECG_P256K1: ['ECDSA_SHA_256'],
      ECC_NIST_EDWARDS25519: ['ED25519_SHA_512', 'ED25519_PH_SHA_512'],
      ML_DSA_44: ['ML_DSA_SHAKE_256'],
      ML_DSA_65: ['ML_DSA_SHAKE_256'],
      ML_DSA_87: ['ML_DSA_SHAKE_256'],
    });
    expect(ENCRYPTION_ALGORITHMS_BY_SPEC.RSA_2048).toEqual(['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256']);
    expect(Object.keys(KEY_AGREEMENT_ALGORITHMS_BY_SPEC)).toEqual(['ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521']);
    expect(MAC_ALGORITHMS_BY_SPEC).toEqual({ HMAC_224: ['HMAC_SHA_224'], HMAC_256: ['HMAC_SHA_256'], HMAC_384: ['HMAC_SHA_384'], HMAC_512: ['HMAC_SHA_512'] });
    expect(HMAC_KEY_BYTES).toEqual({ HMAC_224: 28, HMAC_256: 32, HMAC_384: 48, HMAC_512: 64 });
    expect(MESSAGE_TYPES_BY_ALGORITHM.ED25519_SHA_512).toEqual(['RAW']);
    expect(MESSAGE_TYPES_BY_ALGORITHM.ED25519_PH_SHA_512).toEqual(['DIGEST']);
    expect(MESSAGE_TYPES_BY_ALGORITHM.ML_DSA_SHAKE_256).toEqual(['RAW', 'EXTERNAL_MU']);
  });

  it("has AWS's limits: 4096-byte RAW messages, the model's PlaintextType maximum, and OAEP's k − 2·hLen − 2", () => {
    expect(MAX_RAW_MESSAGE_BYTES).toBe(shape('PlaintextType').max);
    expect(MAX_MAC_MESSAGE_BYTES).toBe(shape('PlaintextType').max);
    expect(RSA_OAEP_MAX_PLAINTEXT_BYTES).toEqual({
      RSA_2048: { RSAES_OAEP_SHA_1: 214, RSAES_OAEP_SHA_256: 190 },
      RSA_3072: { RSAES_OAEP_SHA_1: 342, RSAES_OAEP_SHA_256: 318 },
      RSA_4096: { RSAES_OAEP_SHA_1: 470, RSAES_OAEP_SHA_256: 446 },
    });
    for (const spec of RSA_SPECS) {
      const k = Number(spec.slice(4)) / 8;
      expect(RSA_OAEP_MAX_PLAINTEXT_BYTES[spec]).toEqual({ RSAES_OAEP_SHA_1: k - 2 * 20 - 2, RSAES_OAEP_SHA_256: k - 2 * 32 - 2 });
    }
    expect(MESSAGE_BYTES_BY_TYPE.DIGEST).toMatchObject({
      ECDSA_SHA_256: 32,
      ECDSA_SHA_384: 48,
      ECDSA_SHA_512: 64,
      RSASSA_PSS_SHA_384: 48,
      ED25519_PH_SHA_512: 64,
    });
    expect(MESSAGE_BYTES_BY_TYPE.EXTERNAL_MU).toEqual({ ML_DSA_SHAKE_256: 64 });
  });
});

// ---------------------------------------------------------------------------
// Key generation
// ---------------------------------------------------------------------------

describe('generateKeyPair', () => {
  it.each(ALL_SPECS.filter((s) => !s.startsWith('ML_DSA_')))('%s: openssl reads the PKCS#8 and SPKI DER, and derives the same public key', async (spec) => {
    const fromPrivate = await openssl(['pkey', '-inform', 'DER', '-in', await file(keys[spec].privateKeyDer, 'priv'), '-pubout', '-outform', 'DER']);
    expect(fromPrivate.equals(keys[spec].publicKeyDer)).toBe(true);
    const text = (await openssl(['pkey', '-pubin', '-inform', 'DER', '-in', await file(keys[spec].publicKeyDer, 'pub'), '-noout', '-text'])).toString();
    if (spec.startsWith('RSA_')) {
      expect(text).toContain(`Public-Key: (${spec.slice(4)} bit)`);
      expect(text).toContain('Exponent: 65537');
    } else if (spec === 'ECC_NIST_EDWARDS25519') {
      expect(text).toContain('ED25519 Public-Key');
    } else {
      expect(text).toContain(`ASN1 OID: ${OPENSSL_CURVE[spec as keyof typeof OPENSSL_CURVE]}`);
    }
  });

  it.each(ML_DSA_SPECS)('%s: the SPKI carries the FIPS 204 OID (openssl asn1parse) and the pair matches (Node)', async (spec) => {
    const asn1 = (await openssl(['asn1parse', '-inform', 'DER', '-in', await file(keys[spec].publicKeyDer, 'pub')])).toString();
    expect(asn1).toMatch(new RegExp(`OBJECT\\s*:(${ML_DSA_OID[spec].replaceAll('.', '\\.')}|${spec.replaceAll('_', '-')})`, 'i'));
    const privateKey = createPrivateKey({ key: keys[spec].privateKeyDer, format: 'der', type: 'pkcs8' });
    expect(privateKey.asymmetricKeyType).toBe(spec.toLowerCase().replaceAll('_', '-'));
    expect(createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).equals(keys[spec].publicKeyDer)).toBe(true);
  });

  it('refuses a spec without a key pair', async () => {
    for (const spec of ['SM2', 'SYMMETRIC_DEFAULT', 'HMAC_256', 'RSA_1024']) {
      await expect(generateKeyPair(spec as AsymmetricKeySpec)).rejects.toBeInstanceOf(UnsupportedKeySpecError);
    }
  });

  it('derivePublicKey gives the SPKI of a matching private key and refuses any other', () => {
    for (const spec of ALL_SPECS) {
      const r = derivePublicKey(spec, keys[spec].privateKeyDer);
      expect(r.ok && r.publicKeyDer.equals(keys[spec].publicKeyDer)).toBe(true);
    }
    expect(derivePublicKey('RSA_3072', keys.RSA_2048.privateKeyDer)).toMatchObject({ ok: false, reason: 'INVALID_KEY_MATERIAL' });
    expect(derivePublicKey('ECC_NIST_P256', keys.ECC_SECG_P256K1.privateKeyDer)).toMatchObject({ ok: false, reason: 'INVALID_KEY_MATERIAL' });
    expect(derivePublicKey('ML_DSA_65', keys.ML_DSA_44.privateKeyDer)).toMatchObject({ ok: false, reason: 'INVALID_KEY_MATERIAL' });
    expect(derivePublicKey('ECC_NIST_EDWARDS25519', Buffer.from('not a key'))).toMatchObject({ ok: false, reason: 'INVALID_KEY_MATERIAL' });
    expect(derivePublicKey('ECC_NIST_P256', keys.ECC_NIST_P256.publicKeyDer)).toMatchObject({ ok: false, reason: 'INVALID_KEY_MATERIAL' });
  });
});

// ---------------------------------------------------------------------------
// Sign / Verify against openssl
// ---------------------------------------------------------------------------

describe('sign and verify, RAW messages, against openssl', () => {
  const message = Buffer.from('keyledger signs this message, and openssl checks it');

  it.each(OPENSSL_SIGNING_CASES)('$spec $algorithm: openssl verifies ours, we verify openssl', async ({ spec, algorithm }) => {
    const ours = signOk(spec, algorithm, message);
    expect(await opensslVerifiesRaw(spec, algorithm, message, ours)).toBe(true);
    // The negative control: the same openssl command refuses another message.
    expect(await opensslVerifiesRaw(spec, algorithm, Buffer.from('another message'), ours)).toBe(false);

    const theirs = await opensslSignsRaw(spec, algorithm, message);
    expect(verifies(spec, algorithm, message, theirs)).toBe(true);
    expect(verifies(spec, algorithm, Buffer.from('another message'), theirs)).toBe(false);

    // Deterministic schemes give openssl's exact bytes.
    if (algorithm.startsWith('RSASSA_PKCS1_') || algorithm === 'ED25519_SHA_512') expect(ours.equals(theirs)).toBe(true);
  });

  it('the message type defaults to RAW', () => {
    const signature = sign({ keySpec: 'ECC_NIST_P256', privateKeyDer: keys.ECC_NIST_P256.privateKeyDer, algorithm: 'ECDSA_SHA_256', message });
    expect(signature.ok && verifies('ECC_NIST_P256', 'ECDSA_SHA_256', message, signature.signature, 'RAW')).toBe(true);
  });

  it("signs messages of AWS's minimum and maximum length, 1 and 4096 bytes (Ed25519, ECDSA, RSA)", async () => {
    for (const m of [Buffer.from([0]), Buffer.alloc(MAX_RAW_MESSAGE_BYTES, 7)]) {
      for (const [spec, algorithm] of [
        ['ECC_NIST_EDWARDS25519', 'ED25519_SHA_512'],
        ['ECC_NIST_P384', 'ECDSA_SHA_384'],
        ['RSA_2048', 'RSASSA_PSS_SHA_512'],
      ] as const) {
        expect(await opensslVerifiesRaw(spec, algorithm, m, signOk(spec, algorithm, m))).toBe(true);
      }
    }
  });
});

describe('sign and verify, DIGEST messages, against openssl pkeyutl -pkeyopt digest:…', () => {
  const message = Buffer.from('a message hashed by the caller');

  it.each(DIGEST_CASES)('$spec $algorithm: openssl verifies our digest signature, we verify openssl', async ({ spec, algorithm }) => {
    const digest = digestOf(algorithm, message);
    const ours = signOk(spec, algorithm, digest, 'DIGEST');
    expect(await opensslVerifiesDigest(spec, algorithm, digest, ours)).toBe(true);
    expect(await opensslVerifiesDigest(spec, algorithm, digestOf(algorithm, Buffer.from('other')), ours)).toBe(false);
    // A digest signature is a signature of the message: RAW verification of the message accepts it.
    expect(await opensslVerifiesRaw(spec, algorithm, message, ours)).toBe(true);
    expect(verifies(spec, algorithm, message, ours, 'RAW')).toBe(true);
    // Signing the digest as RAW would hash it again: not a signature of the message.
    expect(verifies(spec, algorithm, message, signOk(spec, algorithm, digest, 'RAW'), 'RAW')).toBe(false);

    const theirs = await opensslSignsDigest(spec, algorithm, digest);
    expect(verifies(spec, algorithm, digest, theirs, 'DIGEST')).toBe(true);
    expect(verifies(spec, algorithm, digestOf(algorithm, Buffer.from('other')), theirs, 'DIGEST')).toBe(false);
    if (algorithm.startsWith('RSASSA_PKCS1_')) expect(ours.equals(theirs)).toBe(true);
  });

  it.each(EC_SPECS)('%s: edge digests (all zero; all 0xff, above the group order on 256-bit curves) agree with openssl', async (spec) => {
    const algorithm = SIGNING_ALGORITHMS_BY_SPEC[spec][0]!;
    const length = MESSAGE_BYTES_BY_TYPE.DIGEST[algorithm]!;
    for (const digest of [Buffer.alloc(length, 0), Buffer.alloc(length, 0xff)]) {
      expect(await opensslVerifiesDigest(spec, algorithm, digest, signOk(spec, algorithm, digest, 'DIGEST'))).toBe(true);
      expect(verifies(spec, algorithm, digest, await opensslSignsDigest(spec, algorithm, digest), 'DIGEST')).toBe(true);
    }
  });

  it('ECDSA DIGEST signatures of one digest differ (a fresh nonce each time) and all verify', () => {
    const digest = digestOf('ECDSA_SHA_256', message);
    const a = signOk('ECC_SECG_P256K1', 'ECDSA_SHA_256', digest, 'DIGEST');
    const b = signOk('ECC_SECG_P256K1', 'ECDSA_SHA_256', digest, 'DIGEST');
    expect(a.equals(b)).toBe(false);
    expect(verifies('ECC_SECG_P256K1', 'ECDSA_SHA_256', digest, a, 'DIGEST') && verifies('ECC_SECG_P256K1', 'ECDSA_SHA_256', digest, b, 'DIGEST')).toBe(true);
  });

  it('PSS verification is strict about the salt length: a max-salt openssl signature is refused, RAW and DIGEST alike', async () => {
    const digest = digestOf('RSASSA_PSS_SHA_256', message);
    const d = await file(digest, 'digest');
    const maxSalt = await openssl([
      'pkeyutl',
      '-sign',
      '-inkey',
      keys.RSA_2048.privatePem,
      '-in',
      d,
      '-pkeyopt',
      'digest:sha256',
      '-pkeyopt',
      'rsa_padding_mode:pss',
      '-pkeyopt',
      'rsa_pss_saltlen:max',
    ]);
    expect(verifies('RSA_2048', 'RSASSA_PSS_SHA_256', digest, maxSalt, 'DIGEST')).toBe(false);
    expect(verifies('RSA_2048', 'RSASSA_PSS_SHA_256', message, maxSalt, 'RAW')).toBe(false);
  });

  it('ECDSA verification agrees with OpenSSL on encodings: non-canonical DER refused, high-S accepted, RAW and DIGEST alike', async () => {
    const spec = 'ECC_NIST_P256';
    const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
    const digest = digestOf('ECDSA_SHA_256', message);
    const signature = signOk(spec, 'ECDSA_SHA_256', digest, 'DIGEST');
    const [r, s] = derIntegers(signature);
    const padded = derSequence(Buffer.concat([Buffer.from([0]), r]), s);
    expect(verifies(spec, 'ECDSA_SHA_256', message, padded, 'RAW')).toBe(false);
    expect(verifies(spec, 'ECDSA_SHA_256', digest, padded, 'DIGEST')).toBe(false);
    expect(verifies(spec, 'ECDSA_SHA_256', digest, Buffer.concat([signature, Buffer.from([0])]), 'DIGEST')).toBe(false);

    let flipped = (n - BigInt(`0x${s.toString('hex')}`)).toString(16);
    if (flipped.length % 2) flipped = `0${flipped}`;
    let sBytes = Buffer.from(flipped, 'hex');
    if (sBytes[0]! & 0x80) sBytes = Buffer.concat([Buffer.from([0]), sBytes]);
    const highLow = derSequence(r, sBytes);
    expect(await opensslVerifiesDigest(spec, 'ECDSA_SHA_256', digest, highLow)).toBe(true);
    expect(verifies(spec, 'ECDSA_SHA_256', message, highLow, 'RAW')).toBe(true);
    expect(verifies(spec, 'ECDSA_SHA_256', digest, highLow, 'DIGEST')).toBe(true);
  });
});

describe('ML-DSA (system openssl 3.0 has no ML-DSA: checked with Node crypto, and openssl when it has it)', () => {
  const message = Buffer.from('post-quantum');

  it.each(ML_DSA_SPECS)('%s ML_DSA_SHAKE_256 RAW: Node verifies ours, we verify Node, pure ML-DSA with an empty context', async (spec) => {
    const ours = signOk(spec, 'ML_DSA_SHAKE_256', message);
    expect(ours.length).toBe({ ML_DSA_44: 2420, ML_DSA_65: 3309, ML_DSA_87: 4627 }[spec]);
    expect(nodeVerify(null, message, keys[spec].publicKey, ours)).toBe(true);
    expect(nodeVerify(null, message, { key: keys[spec].publicKey, context: Buffer.alloc(0) }, ours)).toBe(true);
    expect(nodeVerify(null, message, { key: keys[spec].publicKey, context: Buffer.from('ctx') }, ours)).toBe(false);
    expect(nodeVerify(null, Buffer.from('other'), keys[spec].publicKey, ours)).toBe(false);
    const theirs = nodeSign(null, message, createPrivateKey({ key: keys[spec].privateKeyDer, format: 'der', type: 'pkcs8' }));
    expect(verifies(spec, 'ML_DSA_SHAKE_256', message, theirs)).toBe(true);
    expect(verifies(spec, 'ML_DSA_SHAKE_256', Buffer.from('other'), theirs)).toBe(false);
    if (opensslHasMlDsa) {
      const [m, s] = await Promise.all([file(message, 'msg'), file(ours, 'sig')]);
      expect(await opensslVerifies(['pkeyutl', '-verify', '-pubin', '-inkey', keys[spec].publicPem, '-rawin', '-in', m, '-sigfile', s])).toBe(true);
    }
  });

  /** FIPS 204 Algorithm 2 lines 6-7 and Algorithm 7 line 6, with Node's SHAKE256: μ = H(H(pk, 64) || 0 || |ctx| = 0 || M, 64). */
  const muOf = (publicKey: KeyObject, m: Buffer): Buffer => {
    const pk = Buffer.from((publicKey.export({ format: 'jwk' }) as { pub: string }).pub, 'base64url');
    const tr = createHash('shake256', { outputLength: 64 }).update(pk).digest();
    return createHash('shake256', { outputLength: 64 })
      .update(tr)
      .update(Buffer.from([0, 0]))
      .update(m)
      .digest();
  };

  it.each(ML_DSA_SPECS)('%s EXTERNAL_MU: a signature over the FIPS 204 mu of M is what Node verifies for M, and the other way round', (spec) => {
    const mu = muOf(keys[spec].publicKey, message);
    const ours = signOk(spec, 'ML_DSA_SHAKE_256', mu, 'EXTERNAL_MU');
    expect(ours.length).toBe({ ML_DSA_44: 2420, ML_DSA_65: 3309, ML_DSA_87: 4627 }[spec]);
    expect(nodeVerify(null, message, keys[spec].publicKey, ours)).toBe(true);
    expect(nodeVerify(null, Buffer.from('other'), keys[spec].publicKey, ours)).toBe(false);
    // Verify takes either message type for the same signature, as AWS's Verify does.
    expect(verifies(spec, 'ML_DSA_SHAKE_256', message, ours)).toBe(true);
    expect(verifies(spec, 'ML_DSA_SHAKE_256', mu, ours, 'EXTERNAL_MU')).toBe(true);
    const theirs = nodeSign(null, message, createPrivateKey({ key: keys[spec].privateKeyDer, format: 'der', type: 'pkcs8' }));
    expect(verifies(spec, 'ML_DSA_SHAKE_256', mu, theirs, 'EXTERNAL_MU')).toBe(true);
    expect(verifies(spec, 'ML_DSA_SHAKE_256', muOf(keys[spec].publicKey, Buffer.from('other')), theirs, 'EXTERNAL_MU')).toBe(false);
    const flipped = Buffer.from(theirs);
    flipped[100]! ^= 1;
    expect(verifies(spec, 'ML_DSA_SHAKE_256', mu, flipped, 'EXTERNAL_MU')).toBe(false);
    for (const bad of [Buffer.alloc(0), Buffer.alloc(1), theirs.subarray(1), Buffer.alloc(6144, 0x30)]) {
      expect(verifies(spec, 'ML_DSA_SHAKE_256', mu, bad, 'EXTERNAL_MU')).toBe(false);
    }
    // Hedged, as Node's ML-DSA is: two signatures of one mu differ.
    expect(signOk(spec, 'ML_DSA_SHAKE_256', mu, 'EXTERNAL_MU').equals(ours)).toBe(false);
  });

  it('EXTERNAL_MU reads the seed from every PKCS#8 form of RFC 9881 (seed, expandedKey, both) and signs alike', () => {
    const spec = 'ML_DSA_44';
    const both = keys[spec].privateKeyDer;
    // OpenSSL 3.5's default: ... 04 82 0a 2a (privateKey) 30 82 0a 26 (both) 04 20 <seed> 04 82 0a 00 <expandedKey>.
    const seedAt = both.indexOf(Buffer.from('30820a260420', 'hex')) + 6;
    expect(seedAt).toBeGreaterThan(6);
    const seed = both.subarray(seedAt, seedAt + 32);
    const expanded = both.subarray(seedAt + 32 + 4);
    expect(expanded.length).toBe(2560);
    const algorithmId = Buffer.from('300b0609608648016503040311', 'hex');
    const pkcs8 = (privateKey: Buffer): Buffer => {
      const octets = Buffer.concat([Buffer.from([0x04, ...derLength(privateKey.length)]), privateKey]);
      const body = Buffer.concat([Buffer.from('020100', 'hex'), algorithmId, octets]);
      return Buffer.concat([Buffer.from([0x30, ...derLength(body.length)]), body]);
    };
    const seedOnly = pkcs8(Buffer.concat([Buffer.from([0x80, 0x20]), seed]));
    const expandedOnly = pkcs8(Buffer.concat([Buffer.from([0x04, 0x82, 0x0a, 0x00]), expanded]));
    const mu = muOf(keys[spec].publicKey, message);
    for (const privateKeyDer of [seedOnly, expandedOnly]) {
      expect(createPrivateKey({ key: privateKeyDer, format: 'der', type: 'pkcs8' }).asymmetricKeyType).toBe('ml-dsa-44');
      const r = sign({ keySpec: spec, privateKeyDer, algorithm: 'ML_DSA_SHAKE_256', message: mu, messageType: 'EXTERNAL_MU' });
      expect(r.ok && nodeVerify(null, message, keys[spec].publicKey, r.signature)).toBe(true);
    }
  });

  it('EXTERNAL_MU must be exactly 64 bytes; DIGEST is not an ML-DSA message type', () => {
    const input = { keySpec: 'ML_DSA_65', privateKeyDer: keys.ML_DSA_65.privateKeyDer, algorithm: 'ML_DSA_SHAKE_256' } as const;
    for (const length of [63, 65, 32]) {
      expect(sign({ ...input, message: Buffer.alloc(length), messageType: 'EXTERNAL_MU' })).toMatchObject({ ok: false, reason: 'INVALID_MESSAGE_LENGTH' });
    }
    expect(
      verify({
        keySpec: 'ML_DSA_65',
        publicKeyDer: keys.ML_DSA_65.publicKeyDer,
        algorithm: 'ML_DSA_SHAKE_256',
        message: Buffer.alloc(63),
        messageType: 'EXTERNAL_MU',
        signature: Buffer.alloc(3309),
      }),
    ).toMatchObject({ ok: false, reason: 'INVALID_MESSAGE_LENGTH' });
    expect(sign({ ...input, message: Buffer.alloc(64), messageType: 'DIGEST' })).toMatchObject({ ok: false, reason: 'MESSAGE_TYPE_NOT_ALLOWED' });
  });
});

/** A DER length's bytes. */
function derLength(length: number): number[] {
  if (length < 0x80) return [length];
  if (length < 0x100) return [0x81, length];
  return [0x82, length >> 8, length & 0xff];
}

// RFC 8032 section 6's constants, for the independent check of an Ed25519ph signature's S below.
const ED25519_L = 2n ** 252n + 27742317777372353535851937790883648493n;
const littleEndian = (bytes: Buffer): bigint => BigInt(`0x${Buffer.from(bytes).reverse().toString('hex') || '0'}`);
const sha512 = (...parts: Buffer[]): Buffer => parts.reduce((h, p) => h.update(p), createHash('sha512')).digest();
/** dom2(phflag = 1, context = empty) of RFC 8032 section 2. */
const DOM2_PH = Buffer.concat([Buffer.from('SigEd25519 no Ed25519 collisions'), Buffer.from([1, 0])]);

describe('Ed25519ph (openssl 3.0 has none: checked against RFC 8032 and by recomputing S with Node SHA-512)', () => {
  it('signs RFC 8032 7.3 "TEST abc" to its signature, from the secret key as PKCS#8 DER', () => {
    const seed = Buffer.from('833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42', 'hex');
    const publicKey = Buffer.from('ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf', 'hex');
    const expected = '98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41' + '31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406';
    const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: seed.toString('base64url'), x: publicKey.toString('base64url') }, format: 'jwk' });
    const privateKeyDer = key.export({ format: 'der', type: 'pkcs8' });
    expect(ed25519Seed(privateKeyDer)).toEqual(seed);
    const signature = ed25519phSign(privateKeyDer, Buffer.from('abc'));
    expect(signature.toString('hex')).toBe(expected);
    expect(ed25519phVerify(createPublicKey(key), Buffer.from('abc'), signature)).toBe(true);
    expect(ed25519phVerify(createPublicKey(key), Buffer.from('abd'), signature)).toBe(false);
    // Ed25519ph is not Ed25519 of the prehash: Node's pure Ed25519 refuses it.
    expect(nodeVerify(null, sha512(Buffer.from('abc')), createPublicKey(key), signature)).toBe(false);
  });

  it('ED25519_PH_SHA_512 DIGEST: the Ed25519ph signature of the 64 digest bytes (hashed again, as AWS does), S recomputed independently', () => {
    const digest = sha512(Buffer.from('a message'));
    const signature = signOk('ECC_NIST_EDWARDS25519', 'ED25519_PH_SHA_512', digest, 'DIGEST');
    expect(signature.length).toBe(64);
    // RFC 8032 5.1.6 with Node's SHA-512 and BigInt: S = (r + k·s) mod L, r = H(dom2 || prefix || PH(M)), k = H(dom2 || R || A || PH(M)).
    const h = sha512(ed25519Seed(keys.ECC_NIST_EDWARDS25519.privateKeyDer));
    const scalarBytes = Buffer.from(h.subarray(0, 32));
    scalarBytes[0]! &= 248;
    scalarBytes[31]! &= 127;
    scalarBytes[31]! |= 64;
    const a = littleEndian(scalarBytes);
    const A = Buffer.from(keys.ECC_NIST_EDWARDS25519.publicKey.export({ format: 'jwk' }).x!, 'base64url');
    const ph = sha512(digest);
    const r = littleEndian(sha512(DOM2_PH, h.subarray(32), ph)) % ED25519_L;
    const k = littleEndian(sha512(DOM2_PH, signature.subarray(0, 32), A, ph)) % ED25519_L;
    expect(littleEndian(signature.subarray(32))).toBe((r + k * a) % ED25519_L);
    // Deterministic, as RFC 8032 is; and it verifies here, only for that digest.
    expect(signOk('ECC_NIST_EDWARDS25519', 'ED25519_PH_SHA_512', digest, 'DIGEST').equals(signature)).toBe(true);
    expect(verifies('ECC_NIST_EDWARDS25519', 'ED25519_PH_SHA_512', digest, signature, 'DIGEST')).toBe(true);
    expect(verifies('ECC_NIST_EDWARDS25519', 'ED25519_PH_SHA_512', sha512(Buffer.from('another')), signature, 'DIGEST')).toBe(false);
    // Not interchangeable with pure Ed25519, either way.
    expect(nodeVerify(null, digest, keys.ECC_NIST_EDWARDS25519.publicKey, signature)).toBe(false);
    const pure = signOk('ECC_NIST_EDWARDS25519', 'ED25519_SHA_512', digest);
    expect(verifies('ECC_NIST_EDWARDS25519', 'ED25519_PH_SHA_512', digest, pure, 'DIGEST')).toBe(false);
    for (const bad of [Buffer.alloc(0), Buffer.alloc(63), Buffer.alloc(64, 0xff), Buffer.concat([signature, Buffer.alloc(1)])]) {
      expect(verifies('ECC_NIST_EDWARDS25519', 'ED25519_PH_SHA_512', digest, bad, 'DIGEST')).toBe(false);
    }
    // S ≥ L (S + L, the same residue) is refused: RFC 8032 5.1.7 step 1.
    const malleable = Buffer.from(signature);
    const sPlusL = littleEndian(signature.subarray(32)) + ED25519_L;
    Buffer.from(sPlusL.toString(16).padStart(64, '0'), 'hex').reverse().copy(malleable, 32);
    expect(verifies('ECC_NIST_EDWARDS25519', 'ED25519_PH_SHA_512', digest, malleable, 'DIGEST')).toBe(false);
  });

  it('ED25519_PH_SHA_512 takes only a 64-byte DIGEST, as AWS documents', () => {
    const input = { keySpec: 'ECC_NIST_EDWARDS25519', privateKeyDer: keys.ECC_NIST_EDWARDS25519.privateKeyDer, algorithm: 'ED25519_PH_SHA_512' } as const;
    expect(sign({ ...input, message: Buffer.alloc(32), messageType: 'DIGEST' })).toMatchObject({ ok: false, reason: 'INVALID_MESSAGE_LENGTH' });
    expect(sign({ ...input, message: Buffer.from('m'), messageType: 'RAW' })).toMatchObject({ ok: false, reason: 'MESSAGE_TYPE_NOT_ALLOWED' });
    expect(sign({ ...input, message: Buffer.from('m') })).toMatchObject({ ok: false, reason: 'MESSAGE_TYPE_NOT_ALLOWED' });
    expect(sign({ ...input, message: Buffer.alloc(64), messageType: 'EXTERNAL_MU' })).toMatchObject({ ok: false, reason: 'MESSAGE_TYPE_NOT_ALLOWED' });
  });
});

describe('what Node 24 cannot do (if one of these fails, Node gained the API: use it instead of refusing or working around)', () => {
  it('crypto.sign over a pre-hashed ECDSA digest hashes it again, so DIGEST needs its own path', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const digest = createHash('sha256').update('m').digest();
    const signature = nodeSign(null, digest, privateKey);
    expect(nodeVerify('sha256', digest, publicKey, signature)).toBe(true); // it signed SHA-256(digest)
    expect('signDigest' in nodeCrypto).toBe(false);
  });

  it('there is no Ed25519ph: a digest for Ed25519 is refused, and a context selects Ed25519ctx, not Ed25519ph', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    expect(() => nodeSign('sha512', Buffer.from('m'), privateKey)).toThrow();
    const withContext = nodeSign(null, Buffer.from('m'), { key: privateKey, context: Buffer.from('c') });
    expect(nodeVerify(null, Buffer.from('m'), publicKey, withContext)).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// Refusals and boundaries
// ---------------------------------------------------------------------------

describe('signing refusals, at the boundaries', () => {
  const p256 = (algorithm: SigningAlgorithmSpec, message: Buffer, messageType?: MessageType) =>
    sign({ keySpec: 'ECC_NIST_P256', privateKeyDer: keys.ECC_NIST_P256.privateKeyDer, algorithm, message, messageType });

  it('RAW: 4096 bytes signs, 4097 is refused', () => {
    expect(p256('ECDSA_SHA_256', Buffer.alloc(4096)).ok).toBe(true);
    expect(p256('ECDSA_SHA_256', Buffer.alloc(4097))).toMatchObject({ ok: false, reason: 'INVALID_MESSAGE_LENGTH' });
    expect(
      sign({ keySpec: 'ML_DSA_44', privateKeyDer: keys.ML_DSA_44.privateKeyDer, algorithm: 'ML_DSA_SHAKE_256', message: Buffer.alloc(4097) }),
    ).toMatchObject({ ok: false, reason: 'INVALID_MESSAGE_LENGTH' });
  });

  it("DIGEST: exactly the digest's length", () => {
    expect(p256('ECDSA_SHA_256', Buffer.alloc(32, 1), 'DIGEST').ok).toBe(true);
    for (const length of [0, 31, 33, 48, 64])
      expect(p256('ECDSA_SHA_256', Buffer.alloc(length, 1), 'DIGEST')).toMatchObject({ ok: false, reason: 'INVALID_MESSAGE_LENGTH' });
    for (const [algorithm, length] of [
      ['RSASSA_PSS_SHA_384', 48],
      ['RSASSA_PKCS1_V1_5_SHA_512', 64],
    ] as const) {
      const at = (n: number) =>
        sign({ keySpec: 'RSA_2048', privateKeyDer: keys.RSA_2048.privateKeyDer, algorithm, message: Buffer.alloc(n, 1), messageType: 'DIGEST' });
      expect(at(length).ok).toBe(true);
      expect(at(length - 1)).toMatchObject({ ok: false, reason: 'INVALID_MESSAGE_LENGTH' });
      expect(at(length + 1)).toMatchObject({ ok: false, reason: 'INVALID_MESSAGE_LENGTH' });
    }
  });

  it('an algorithm the key spec does not allow is ALGORITHM_NOT_ALLOWED, before anything else', () => {
    expect(p256('ECDSA_SHA_384', Buffer.from('m'))).toMatchObject({
      ok: false,
      reason: 'ALGORITHM_NOT_ALLOWED',
      message: 'Signing algorithm ECDSA_SHA_384 is not compatible with key spec ECC_NIST_P256.',
    });
    expect(p256('RSASSA_PSS_SHA_256', Buffer.alloc(5000))).toMatchObject({ ok: false, reason: 'ALGORITHM_NOT_ALLOWED' });
    expect(p256('SM2DSA', Buffer.from('m'))).toMatchObject({ ok: false, reason: 'ALGORITHM_NOT_ALLOWED' });
    expect(checkSigningRequest({ keySpec: 'ECC_SECG_P256K1', algorithm: 'ECDSA_SHA_512', messageLength: 1 })).toMatchObject({
      reason: 'ALGORITHM_NOT_ALLOWED',
    });
    for (const keySpec of ['HMAC_256', 'SYMMETRIC_DEFAULT', 'SM2'] as const) {
      expect(checkSigningRequest({ keySpec, algorithm: 'ECDSA_SHA_256', messageLength: 1 })).toMatchObject({ reason: 'ALGORITHM_NOT_ALLOWED' });
    }
    expect(checkSigningRequest({ keySpec: 'RSA_4096', algorithm: 'ECDSA_SHA_256', messageLength: 1 })).toMatchObject({ reason: 'ALGORITHM_NOT_ALLOWED' });
  });

  it('message types: EXTERNAL_MU is ML-DSA only, DIGEST is not for ED25519_SHA_512', () => {
    expect(p256('ECDSA_SHA_256', Buffer.alloc(64), 'EXTERNAL_MU')).toMatchObject({ ok: false, reason: 'MESSAGE_TYPE_NOT_ALLOWED' });
    expect(checkSigningRequest({ keySpec: 'ECC_NIST_EDWARDS25519', algorithm: 'ED25519_SHA_512', messageType: 'DIGEST', messageLength: 64 })).toMatchObject({
      reason: 'MESSAGE_TYPE_NOT_ALLOWED',
    });
    expect(checkSigningRequest({ keySpec: 'RSA_2048', algorithm: 'RSASSA_PSS_SHA_256', messageType: 'DIGEST', messageLength: 32 })).toBeNull();
  });

  it('refusal messages carry no message bytes', () => {
    const secret = Buffer.from('SECRET-MESSAGE-BYTES'.repeat(300));
    for (const r of [p256('ECDSA_SHA_256', secret), p256('ECDSA_SHA_256', secret, 'DIGEST'), p256('ECDSA_SHA_512', secret)]) {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.message).not.toMatch(/SECRET|534543524554/);
    }
  });

  it('key material that is not of the key spec throws InvalidKeyMaterialError, naming no bytes', () => {
    expect(() => signOk('RSA_3072', 'RSASSA_PSS_SHA_256', Buffer.from('m'))).not.toThrow();
    const wrong = () => sign({ keySpec: 'RSA_3072', privateKeyDer: keys.RSA_2048.privateKeyDer, algorithm: 'RSASSA_PSS_SHA_256', message: Buffer.from('m') });
    expect(wrong).toThrow(InvalidKeyMaterialError);
    expect(wrong).toThrow('stored private key is not a valid RSA_3072 key');
    expect(() =>
      sign({ keySpec: 'ECC_NIST_P256', privateKeyDer: keys.ECC_SECG_P256K1.privateKeyDer, algorithm: 'ECDSA_SHA_256', message: Buffer.from('m') }),
    ).toThrow(InvalidKeyMaterialError);
    expect(() => sign({ keySpec: 'ECC_NIST_P256', privateKeyDer: Buffer.from('garbage'), algorithm: 'ECDSA_SHA_256', message: Buffer.from('m') })).toThrow(
      InvalidKeyMaterialError,
    );
    expect(() =>
      verify({
        keySpec: 'ECC_NIST_P384',
        publicKeyDer: keys.ECC_NIST_P256.publicKeyDer,
        algorithm: 'ECDSA_SHA_384',
        message: Buffer.from('m'),
        signature: Buffer.alloc(8),
      }),
    ).toThrow(InvalidKeyMaterialError);
  });

  it('malformed signatures are simply invalid', () => {
    const m = Buffer.from('m');
    const cases: [AsymmetricKeySpec, SigningAlgorithmSpec][] = [
      ['RSA_2048', 'RSASSA_PSS_SHA_256'],
      ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256'],
      ['ECC_NIST_P521', 'ECDSA_SHA_512'],
      ['ECC_NIST_EDWARDS25519', 'ED25519_SHA_512'],
      ['ML_DSA_44', 'ML_DSA_SHAKE_256'],
    ];
    for (const [spec, algorithm] of cases) {
      for (const signature of [Buffer.alloc(0), Buffer.alloc(1), Buffer.alloc(64, 0xff), Buffer.alloc(6144, 0x30)]) {
        expect(verifies(spec, algorithm, m, signature)).toBe(false);
        if (MESSAGE_TYPES_BY_ALGORITHM[algorithm as 'ECDSA_SHA_512'].includes('DIGEST'))
          expect(verifies(spec, algorithm, digestOf(algorithm, m), signature, 'DIGEST')).toBe(false);
      }
    }
    // An RSA signature must be exactly the modulus length: a leading zero byte (the same integer) is refused.
    const sig = signOk('RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256', m);
    expect(verifies('RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256', m, Buffer.concat([Buffer.alloc(1), sig]))).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

describe('properties', () => {
  const message = fc.uint8Array({ minLength: 1, maxLength: MAX_RAW_MESSAGE_BYTES }).map((a) => Buffer.from(a));
  const PROPERTY_CASES: [AsymmetricKeySpec, SigningAlgorithmSpec][] = [
    ['RSA_2048', 'RSASSA_PSS_SHA_256'],
    ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_384'],
    ['ECC_NIST_P256', 'ECDSA_SHA_256'],
    ['ECC_NIST_P384', 'ECDSA_SHA_384'],
    ['ECC_NIST_P521', 'ECDSA_SHA_512'],
    ['ECC_SECG_P256K1', 'ECDSA_SHA_256'],
    ['ECC_NIST_EDWARDS25519', 'ED25519_SHA_512'],
    ['ML_DSA_44', 'ML_DSA_SHAKE_256'],
  ];

  it.each(PROPERTY_CASES)('%s %s: round trip; one flipped bit in the signature or the message is refused', (spec, algorithm) => {
    const types = MESSAGE_TYPES_BY_ALGORITHM[algorithm as 'ECDSA_SHA_256'].filter((t) => t !== 'EXTERNAL_MU');
    fc.assert(
      fc.property(message, fc.constantFrom(...types), fc.nat(), fc.nat(), (raw, messageType, sigBit, msgBit) => {
        const m = messageType === 'DIGEST' ? digestOf(algorithm, raw) : raw;
        const signature = signOk(spec, algorithm, m, messageType);
        expect(verifies(spec, algorithm, m, signature, messageType)).toBe(true);
        const badSignature = Buffer.from(signature);
        badSignature[Math.floor((sigBit % (signature.length * 8)) / 8)]! ^= 1 << (sigBit % 8);
        expect(verifies(spec, algorithm, m, badSignature, messageType)).toBe(false);
        const badMessage = Buffer.from(m);
        badMessage[Math.floor((msgBit % (m.length * 8)) / 8)]! ^= 1 << (msgBit % 8);
        expect(verifies(spec, algorithm, badMessage, signature, messageType)).toBe(false);
      }),
      { numRuns: 15 },
    );
  });

  it.each(PROPERTY_CASES.filter(([, a]) => isRsa(a) || a.startsWith('ECDSA_')))(
    '%s %s: DIGEST of m and RAW m are the same signature scheme',
    (spec, algorithm) => {
      fc.assert(
        fc.property(message, (raw) => {
          const digest = digestOf(algorithm, raw);
          expect(verifies(spec, algorithm, raw, signOk(spec, algorithm, digest, 'DIGEST'), 'RAW')).toBe(true);
          expect(verifies(spec, algorithm, digest, signOk(spec, algorithm, raw, 'RAW'), 'DIGEST')).toBe(true);
        }),
        { numRuns: 15 },
      );
    },
  );
});

// ---------------------------------------------------------------------------
// RSA-OAEP
// ---------------------------------------------------------------------------

describe('RSA-OAEP Encrypt/Decrypt against openssl pkeyutl', () => {
  const OAEP_CASES = RSA_SPECS.flatMap((spec) => (['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] as RsaOaepAlgorithm[]).map((algorithm) => ({ spec, algorithm })));
  const oaepOptions = (algorithm: RsaOaepAlgorithm) => {
    const md = algorithm === 'RSAES_OAEP_SHA_1' ? 'sha1' : 'sha256';
    return ['-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', `rsa_oaep_md:${md}`, '-pkeyopt', `rsa_mgf1_md:${md}`];
  };

  it.each(OAEP_CASES)('$spec $algorithm: openssl ciphertext decrypts here, ours decrypts in openssl, up to the limit', async ({ spec, algorithm }) => {
    const max = RSA_OAEP_MAX_PLAINTEXT_BYTES[spec][algorithm];
    for (const plaintext of [Buffer.from('x'), Buffer.alloc(max, 0xa5)]) {
      const offline = await openssl([
        'pkeyutl',
        '-encrypt',
        '-pubin',
        '-inkey',
        keys[spec].publicPem,
        ...oaepOptions(algorithm),
        '-in',
        await file(plaintext, 'pt'),
      ]);
      const decrypted = rsaOaepDecrypt({ keySpec: spec, privateKeyDer: keys[spec].privateKeyDer, algorithm, ciphertext: offline });
      expect(decrypted.ok && decrypted.plaintext.equals(plaintext)).toBe(true);

      const encrypted = rsaOaepEncrypt({ keySpec: spec, publicKeyDer: keys[spec].publicKeyDer, algorithm, plaintext });
      if (!encrypted.ok) throw new Error(encrypted.reason);
      expect(encrypted.ciphertext.length).toBe(Number(spec.slice(4)) / 8);
      const back = await openssl([
        'pkeyutl',
        '-decrypt',
        '-inkey',
        keys[spec].privatePem,
        ...oaepOptions(algorithm),
        '-in',
        await file(encrypted.ciphertext, 'ct'),
      ]);
      expect(back.equals(plaintext)).toBe(true);
    }
    // One byte over AWS's limit: refused here, and openssl cannot either (the limit is OAEP's own).
    const over = Buffer.alloc(max + 1);
    expect(rsaOaepEncrypt({ keySpec: spec, publicKeyDer: keys[spec].publicKeyDer, algorithm, plaintext: over })).toMatchObject({
      ok: false,
      reason: 'PLAINTEXT_TOO_LARGE',
    });
    await expect(
      openssl(['pkeyutl', '-encrypt', '-pubin', '-inkey', keys[spec].publicPem, ...oaepOptions(algorithm), '-in', await file(over, 'pt')]),
    ).rejects.toThrow();
  });

  it('a ciphertext that does not decrypt is one DECRYPTION_FAILED, whatever the cause', () => {
    const input = { keySpec: 'RSA_2048', privateKeyDer: keys.RSA_2048.privateKeyDer } as const;
    const encrypted = rsaOaepEncrypt({
      keySpec: 'RSA_2048',
      publicKeyDer: keys.RSA_2048.publicKeyDer,
      algorithm: 'RSAES_OAEP_SHA_256',
      plaintext: Buffer.from('secret'),
    });
    if (!encrypted.ok) throw new Error(encrypted.reason);
    const ct = encrypted.ciphertext;
    const tampered = Buffer.from(ct);
    tampered[100]! ^= 1;
    const failures = [
      rsaOaepDecrypt({ ...input, algorithm: 'RSAES_OAEP_SHA_1', ciphertext: ct }),
      rsaOaepDecrypt({ ...input, algorithm: 'RSAES_OAEP_SHA_256', ciphertext: tampered }),
      rsaOaepDecrypt({ ...input, algorithm: 'RSAES_OAEP_SHA_256', ciphertext: ct.subarray(1) }),
      rsaOaepDecrypt({ ...input, algorithm: 'RSAES_OAEP_SHA_256', ciphertext: Buffer.concat([Buffer.alloc(1), ct]) }),
      rsaOaepDecrypt({ ...input, algorithm: 'RSAES_OAEP_SHA_256', ciphertext: Buffer.alloc(256, 0xff) }),
    ];
    const messages = new Set(failures.map((f) => (f.ok ? 'ok' : `${f.reason}: ${f.message}`)));
    expect([...messages]).toEqual(['DECRYPTION_FAILED: The ciphertext could not be decrypted with this key and encryption algorithm.']);
    const ok = rsaOaepDecrypt({ ...input, algorithm: 'RSAES_OAEP_SHA_256', ciphertext: ct });
    expect(ok.ok && ok.plaintext.toString()).toBe('secret');
  });

  it('refuses algorithms and key specs AWS does not pair', () => {
    const plaintext = Buffer.from('p');
    expect(rsaOaepEncrypt({ keySpec: 'RSA_2048', publicKeyDer: keys.RSA_2048.publicKeyDer, algorithm: 'SYMMETRIC_DEFAULT', plaintext })).toMatchObject({
      ok: false,
      reason: 'ALGORITHM_NOT_ALLOWED',
    });
    expect(rsaOaepEncrypt({ keySpec: 'RSA_2048', publicKeyDer: keys.RSA_2048.publicKeyDer, algorithm: 'SM2PKE', plaintext })).toMatchObject({
      ok: false,
      reason: 'ALGORITHM_NOT_ALLOWED',
    });
    expect(
      rsaOaepEncrypt({ keySpec: 'ECC_NIST_P256', publicKeyDer: keys.ECC_NIST_P256.publicKeyDer, algorithm: 'RSAES_OAEP_SHA_256', plaintext }),
    ).toMatchObject({ ok: false, reason: 'ALGORITHM_NOT_ALLOWED' });
    expect(rsaOaepEncrypt({ keySpec: 'SYMMETRIC_DEFAULT', publicKeyDer: Buffer.alloc(0), algorithm: 'SYMMETRIC_DEFAULT', plaintext })).toMatchObject({
      ok: false,
      reason: 'ALGORITHM_NOT_ALLOWED',
    });
    expect(
      rsaOaepDecrypt({ keySpec: 'ML_DSA_44', privateKeyDer: keys.ML_DSA_44.privateKeyDer, algorithm: 'RSAES_OAEP_SHA_1', ciphertext: Buffer.alloc(256) }),
    ).toMatchObject({ ok: false, reason: 'ALGORITHM_NOT_ALLOWED' });
    expect(() => rsaOaepEncrypt({ keySpec: 'RSA_4096', publicKeyDer: keys.RSA_2048.publicKeyDer, algorithm: 'RSAES_OAEP_SHA_1', plaintext })).toThrow(
      InvalidKeyMaterialError,
    );
  });
});

// ---------------------------------------------------------------------------
// HMAC
// ---------------------------------------------------------------------------

describe('HMAC against openssl dgst -mac HMAC', () => {
  const SPECS = Object.keys(MAC_ALGORITHMS_BY_SPEC) as HmacKeySpec[];

  it.each(SPECS)("%s: the key has AWS length and the MAC equals openssl's", async (spec) => {
    const key = generateHmacKey(spec);
    expect(key.length).toBe(HMAC_KEY_BYTES[spec]);
    const algorithm = MAC_ALGORITHMS_BY_SPEC[spec][0]!;
    for (const message of [Buffer.from('mac me'), Buffer.alloc(MAX_MAC_MESSAGE_BYTES, 3)]) {
      const r = generateMac({ keySpec: spec, key, algorithm, message });
      if (!r.ok) throw new Error(r.reason);
      expect(r.mac.length).toBe(Number(spec.slice(5)) / 8);
      const theirs = await openssl([
        'dgst',
        `-sha${spec.slice(5)}`,
        '-mac',
        'HMAC',
        '-macopt',
        `hexkey:${key.toString('hex')}`,
        '-binary',
        await file(message, 'msg'),
      ]);
      expect(r.mac.equals(theirs)).toBe(true);
      expect(verifyMac({ keySpec: spec, key, algorithm, message, mac: theirs })).toEqual({ ok: true, valid: true });
    }
    key.fill(0);
  });

  it('verifyMac: any change to the MAC, message or key, or a truncated MAC, is invalid', () => {
    const key = generateHmacKey('HMAC_256');
    const message = Buffer.from('m');
    const r = generateMac({ keySpec: 'HMAC_256', key, algorithm: 'HMAC_SHA_256', message });
    if (!r.ok) throw new Error(r.reason);
    const check = (over: Partial<{ key: Buffer; message: Buffer; mac: Buffer }>) =>
      verifyMac({ keySpec: 'HMAC_256', key, algorithm: 'HMAC_SHA_256', message, mac: r.mac, ...over });
    expect(check({})).toEqual({ ok: true, valid: true });
    const flipped = Buffer.from(r.mac);
    flipped[31]! ^= 0x80;
    expect(check({ mac: flipped })).toEqual({ ok: true, valid: false });
    expect(check({ mac: r.mac.subarray(0, 16) })).toEqual({ ok: true, valid: false });
    expect(check({ mac: Buffer.alloc(0) })).toEqual({ ok: true, valid: false });
    expect(check({ message: Buffer.from('n') })).toEqual({ ok: true, valid: false });
    expect(check({ key: generateHmacKey('HMAC_256') })).toEqual({ ok: true, valid: false });
  });

  it('refuses a mismatched algorithm or key spec, and a message over 4096 bytes', () => {
    const key = generateHmacKey('HMAC_384');
    expect(generateMac({ keySpec: 'HMAC_384', key, algorithm: 'HMAC_SHA_256', message: Buffer.from('m') })).toMatchObject({
      ok: false,
      reason: 'ALGORITHM_NOT_ALLOWED',
    });
    expect(generateMac({ keySpec: 'RSA_2048', key, algorithm: 'HMAC_SHA_256', message: Buffer.from('m') })).toMatchObject({
      ok: false,
      reason: 'ALGORITHM_NOT_ALLOWED',
    });
    expect(generateMac({ keySpec: 'HMAC_384', key, algorithm: 'HMAC_SHA_384', message: Buffer.alloc(4097) })).toMatchObject({
      ok: false,
      reason: 'INVALID_MESSAGE_LENGTH',
    });
    expect(verifyMac({ keySpec: 'HMAC_384', key, algorithm: 'HMAC_SHA_384', message: Buffer.alloc(4097), mac: Buffer.alloc(48) })).toMatchObject({
      ok: false,
      reason: 'INVALID_MESSAGE_LENGTH',
    });
    expect(() => generateHmacKey('HMAC_128' as HmacKeySpec)).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------
// ECDH
// ---------------------------------------------------------------------------

describe('ECDH DeriveSharedSecret against openssl pkeyutl -derive', () => {
  it.each(NIST_SPECS)("%s: the raw shared secret equals openssl's, from both sides, with uncompressed and compressed peer keys", async (spec) => {
    const peer = await generateKeyPair(spec);
    const peerPem = await openssl(['pkey', '-inform', 'DER', '-in', await file(peer.privateKeyDer, 'peer'), '-out', join(dir, `${spec}-peer.pem`)]).then(() =>
      join(dir, `${spec}-peer.pem`),
    );
    const peerPubPem = await file(await openssl(['pkey', '-in', peerPem, '-pubout']), 'peerpub');

    const r = deriveSharedSecret({ keySpec: spec, privateKeyDer: keys[spec].privateKeyDer, peerPublicKeyDer: peer.publicKeyDer });
    if (!r.ok) throw new Error(r.reason);
    expect(r.sharedSecret.length).toBe({ ECC_NIST_P256: 32, ECC_NIST_P384: 48, ECC_NIST_P521: 66 }[spec]);

    const theirs = await openssl(['pkeyutl', '-derive', '-inkey', keys[spec].privatePem, '-peerkey', peerPubPem]);
    expect(r.sharedSecret.equals(theirs)).toBe(true);
    const otherSide = await openssl(['pkeyutl', '-derive', '-inkey', peerPem, '-peerkey', keys[spec].publicPem]);
    expect(r.sharedSecret.equals(otherSide)).toBe(true);

    const compressed = await openssl(['ec', '-pubin', '-in', peerPubPem, '-conv_form', 'compressed', '-outform', 'DER']);
    expect(compressed.length).toBeLessThan(peer.publicKeyDer.length);
    const viaCompressed = deriveSharedSecret({ keySpec: spec, privateKeyDer: keys[spec].privateKeyDer, peerPublicKeyDer: compressed, algorithm: 'ECDH' });
    expect(viaCompressed.ok && viaCompressed.sharedSecret.equals(theirs)).toBe(true);
    r.sharedSecret.fill(0);
    peer.privateKeyDer.fill(0);
  });

  it('refuses a peer key on another curve, of another type, not on the curve, or not a key', async () => {
    const derive = (peerPublicKeyDer: Buffer) =>
      deriveSharedSecret({ keySpec: 'ECC_NIST_P256', privateKeyDer: keys.ECC_NIST_P256.privateKeyDer, peerPublicKeyDer });
    expect(derive(keys.ECC_NIST_P384.publicKeyDer)).toMatchObject({ ok: false, reason: 'CURVE_MISMATCH' });
    expect(derive(keys.ECC_SECG_P256K1.publicKeyDer)).toMatchObject({ ok: false, reason: 'CURVE_MISMATCH' });
    expect(derive(keys.RSA_2048.publicKeyDer)).toMatchObject({ ok: false, reason: 'INVALID_PEER_PUBLIC_KEY' });
    expect(derive(keys.ECC_NIST_EDWARDS25519.publicKeyDer)).toMatchObject({ ok: false, reason: 'INVALID_PEER_PUBLIC_KEY' });
    expect(derive(Buffer.from('not a key'))).toMatchObject({ ok: false, reason: 'INVALID_PEER_PUBLIC_KEY' });
    expect(derive(keys.ECC_NIST_P256.privateKeyDer)).toMatchObject({ ok: false, reason: 'INVALID_PEER_PUBLIC_KEY' });

    const offCurve = Buffer.from(keys.ECC_NIST_P256.publicKeyDer);
    offCurve[offCurve.length - 1]! ^= 1; // y no longer matches x
    expect(derive(offCurve)).toMatchObject({ ok: false, reason: 'INVALID_PEER_PUBLIC_KEY' });

    // Explicit curve parameters: accepted only when they are exactly P-256's (OpenSSL then names the curve); a
    // crafted curve (another b: the invalid-curve attack) is refused.
    const explicit = await openssl(['ec', '-pubin', '-in', keys.ECC_NIST_P256.publicPem, '-param_enc', 'explicit', '-outform', 'DER']);
    const named = derive(keys.ECC_NIST_P256.publicKeyDer);
    const viaExplicit = derive(explicit);
    expect(named.ok && viaExplicit.ok && viaExplicit.sharedSecret.equals(named.sharedSecret)).toBe(true);
    const crafted = Buffer.from(explicit);
    crafted[explicit.indexOf(Buffer.from('5ac635d8aa3a93e7', 'hex')) + 8]! ^= 1;
    expect(derive(crafted).ok).toBe(false);
  });

  it('refuses key specs AWS does not allow to agree keys', () => {
    for (const keySpec of ['ECC_SECG_P256K1', 'ECC_NIST_EDWARDS25519', 'RSA_2048', 'SM2'] as const) {
      const privateKeyDer = keySpec === 'SM2' ? Buffer.alloc(0) : keys[keySpec].privateKeyDer;
      expect(deriveSharedSecret({ keySpec, privateKeyDer, peerPublicKeyDer: keys.ECC_NIST_P256.publicKeyDer })).toMatchObject({
        ok: false,
        reason: 'ALGORITHM_NOT_ALLOWED',
      });
    }
  });

  it('agrees with Node diffieHellman (the primitive it wraps) and is symmetric', async () => {
    const other = await generateKeyPair('ECC_NIST_P521');
    const ab = deriveSharedSecret({ keySpec: 'ECC_NIST_P521', privateKeyDer: keys.ECC_NIST_P521.privateKeyDer, peerPublicKeyDer: other.publicKeyDer });
    const ba = deriveSharedSecret({ keySpec: 'ECC_NIST_P521', privateKeyDer: other.privateKeyDer, peerPublicKeyDer: keys.ECC_NIST_P521.publicKeyDer });
    expect(ab.ok && ba.ok && ab.sharedSecret.equals(ba.sharedSecret)).toBe(true);
    const node = diffieHellman({
      privateKey: createPrivateKey({ key: other.privateKeyDer, format: 'der', type: 'pkcs8' }),
      publicKey: keys.ECC_NIST_P521.publicKey,
    });
    expect(ba.ok && ba.sharedSecret.equals(node)).toBe(true);
  });
});
