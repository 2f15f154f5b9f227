import {
  constants,
  createECDH,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPair as nodeGenerateKeyPair,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  randomBytes,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';

/**
 * Asymmetric cryptography for keyledger's non-symmetric KMS keys, with AWS KMS
 * semantics: key pair generation, Sign/Verify, RSA-OAEP Encrypt/Decrypt and
 * ECDH DeriveSharedSecret (HMAC lives in ./hmac.ts). Pure: no I/O, no state,
 * no logging. Keys travel as DER: private keys PKCS#8, public keys X.509
 * SubjectPublicKeyInfo, exactly what GetPublicKey returns.
 *
 * Failures a request can cause (an algorithm the key spec does not allow, a
 * digest of the wrong length, a peer key on another curve, a ciphertext that
 * does not decrypt) come back as a {@link Refusal} with a stable `reason` for
 * the service to map to AWS's error; messages never carry key material or
 * message bytes. Stored key material that does not parse as its key spec is a
 * bug or corruption, not a request error: that throws
 * {@link InvalidKeyMaterialError}.
 *
 * What Node 24 (OpenSSL 3.5) cannot do, and so is refused with reason
 * `NOT_SUPPORTED`: Ed25519ph (ED25519_PH_SHA_512) and ML-DSA with message type
 * EXTERNAL_MU. Node has no API for either (nodejs/node#62345 proposes
 * `crypto.signDigest`, not in Node 24.21).
 *
 * Node also has no API to sign or verify an already-hashed digest (DIGEST
 * message type); this module does it as follows:
 * - RSASSA-PKCS1-v1_5: OpenSSL's RSA private operation with PKCS#1 type 1
 *   padding (`privateEncrypt`) over DigestInfo || digest; verification
 *   recovers and compares the DigestInfo.
 * - RSASSA-PSS: EMSA-PSS encoding (RFC 8017 9.1) done here, then OpenSSL's raw
 *   (blinded, constant-time) RSA private operation.
 * - ECDSA: the nonce and its point k·G come from OpenSSL (a fresh EC key pair);
 *   only the final scalar step s = k⁻¹(e + r·d) mod n is JS BigInt
 *   arithmetic, multiplicatively blinded because BigInt is not constant-time.
 *   Every signature is verified before it is returned. Verification of a
 *   digest is BigInt point arithmetic over public values only. The private
 *   scalar and the nonce exist briefly as BigInts, which cannot be zeroed (the
 *   Buffers they come from are).
 * All of it is checked against `openssl pkeyutl -pkeyopt digest:…` in
 * test/unit/asymmetric.unit.test.ts.
 */

// ---------------------------------------------------------------------------
// AWS names
// ---------------------------------------------------------------------------

/**
 * AWS's KeySpec enum (kms-model.json), every value: a stored key's spec is passed as is, and a spec
 * that cannot do the operation (HMAC_256 asked to sign, SM2 anywhere) is refused, not a type error.
 *
 * @example
 * const spec: KeySpec = row.keySpec as KeySpec;  // e.g. 'ECC_NIST_P256'
 */
export type KeySpec =
  | 'RSA_2048'
  | 'RSA_3072'
  | 'RSA_4096'
  | 'ECC_NIST_P256'
  | 'ECC_NIST_P384'
  | 'ECC_NIST_P521'
  | 'ECC_SECG_P256K1'
  | 'SYMMETRIC_DEFAULT'
  | 'HMAC_224'
  | 'HMAC_256'
  | 'HMAC_384'
  | 'HMAC_512'
  | 'SM2'
  | 'ML_DSA_44'
  | 'ML_DSA_65'
  | 'ML_DSA_87'
  | 'ECC_NIST_EDWARDS25519';

/**
 * The RSA key specs.
 *
 * @example
 * const spec: RsaKeySpec = 'RSA_3072';
 */
export type RsaKeySpec = 'RSA_2048' | 'RSA_3072' | 'RSA_4096';
/**
 * The NIST prime-curve key specs: the ones that sign with ECDSA and agree keys with ECDH.
 *
 * @example
 * const spec: NistEccKeySpec = 'ECC_NIST_P384';  // may sign (ECDSA) or agree keys (ECDH)
 */
export type NistEccKeySpec = 'ECC_NIST_P256' | 'ECC_NIST_P384' | 'ECC_NIST_P521';
/**
 * Every key spec whose material is a key pair this module can generate (SM2 is AWS China-only and refused).
 *
 * @example
 * const { publicKeyDer } = await generateKeyPair('ML_DSA_65' satisfies AsymmetricKeySpec);
 */
export type AsymmetricKeySpec = RsaKeySpec | NistEccKeySpec | 'ECC_SECG_P256K1' | 'ECC_NIST_EDWARDS25519' | 'ML_DSA_44' | 'ML_DSA_65' | 'ML_DSA_87';

/**
 * AWS's SigningAlgorithmSpec enum (SM2DSA included: it is refused as no key spec here allows it).
 *
 * @example
 * const algorithm: SigningAlgorithmSpec = 'RSASSA_PSS_SHA_256';
 */
export type SigningAlgorithmSpec =
  | 'RSASSA_PSS_SHA_256'
  | 'RSASSA_PSS_SHA_384'
  | 'RSASSA_PSS_SHA_512'
  | 'RSASSA_PKCS1_V1_5_SHA_256'
  | 'RSASSA_PKCS1_V1_5_SHA_384'
  | 'RSASSA_PKCS1_V1_5_SHA_512'
  | 'ECDSA_SHA_256'
  | 'ECDSA_SHA_384'
  | 'ECDSA_SHA_512'
  | 'SM2DSA'
  | 'ML_DSA_SHAKE_256'
  | 'ED25519_SHA_512'
  | 'ED25519_PH_SHA_512';

/**
 * AWS's EncryptionAlgorithmSpec enum. Only the two RSAES_OAEP values are asymmetric encryption.
 *
 * @example
 * rsaOaepEncrypt({ keySpec, publicKeyDer, algorithm: request.EncryptionAlgorithm as EncryptionAlgorithmSpec, plaintext });
 */
export type EncryptionAlgorithmSpec = 'SYMMETRIC_DEFAULT' | 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256' | 'SM2PKE';
/**
 * The RSA encryption algorithms: OAEP with MGF1 over the same hash, empty label.
 *
 * @example
 * RSA_OAEP_MAX_PLAINTEXT_BYTES.RSA_2048['RSAES_OAEP_SHA_1' satisfies RsaOaepAlgorithm]  // 214
 */
export type RsaOaepAlgorithm = 'RSAES_OAEP_SHA_1' | 'RSAES_OAEP_SHA_256';

/**
 * AWS's KeyAgreementAlgorithmSpec enum.
 *
 * @example
 * deriveSharedSecret({ keySpec, privateKeyDer, peerPublicKeyDer, algorithm: 'ECDH' satisfies KeyAgreementAlgorithmSpec });
 */
export type KeyAgreementAlgorithmSpec = 'ECDH';

/**
 * AWS's MessageType enum: RAW is hashed by the signing algorithm, DIGEST is already the digest, EXTERNAL_MU is ML-DSA's 64-byte μ.
 *
 * @example
 * sign({ keySpec, privateKeyDer, algorithm: 'ECDSA_SHA_256', message: sha256Digest, messageType: 'DIGEST' satisfies MessageType });
 */
export type MessageType = 'RAW' | 'DIGEST' | 'EXTERNAL_MU';

// ---------------------------------------------------------------------------
// AWS's matrix and limits, as data
// ---------------------------------------------------------------------------

const RSA_SIGNING = Object.freeze([
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
] as const satisfies readonly SigningAlgorithmSpec[]);

/**
 * The signing algorithms AWS allows per key spec (a key of that spec with
 * KeyUsage SIGN_VERIFY), in the order DescribeKey lists them. A spec that is
 * not a key here cannot sign.
 *
 * @example
 * SIGNING_ALGORITHMS_BY_SPEC.ECC_NIST_P384          // ['ECDSA_SHA_384']
 * SIGNING_ALGORITHMS_BY_SPEC.ECC_NIST_EDWARDS25519  // ['ED25519_SHA_512', 'ED25519_PH_SHA_512']
 */
export const SIGNING_ALGORITHMS_BY_SPEC: Readonly<Record<AsymmetricKeySpec, readonly SigningAlgorithmSpec[]>> = Object.freeze({
  RSA_2048: RSA_SIGNING,
  RSA_3072: RSA_SIGNING,
  RSA_4096: RSA_SIGNING,
  ECC_NIST_P256: Object.freeze(['ECDSA_SHA_256'] as const),
  ECC_NIST_P384: Object.freeze(['ECDSA_SHA_384'] as const),
  ECC_NIST_P521: Object.freeze(['ECDSA_SHA_512'] as const),
  ECC_SECG_P256K1: Object.freeze(['ECDSA_SHA_256'] as const),
  ECC_NIST_EDWARDS25519: Object.freeze(['ED25519_SHA_512', 'ED25519_PH_SHA_512'] as const),
  ML_DSA_44: Object.freeze(['ML_DSA_SHAKE_256'] as const),
  ML_DSA_65: Object.freeze(['ML_DSA_SHAKE_256'] as const),
  ML_DSA_87: Object.freeze(['ML_DSA_SHAKE_256'] as const),
});

const RSA_OAEP = Object.freeze(['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] as const);

/**
 * The encryption algorithms AWS allows per key spec (KeyUsage
 * ENCRYPT_DECRYPT). SYMMETRIC_DEFAULT is listed so DescribeKey can read every
 * spec from one table; this module only implements the RSA ones.
 *
 * @example
 * ENCRYPTION_ALGORITHMS_BY_SPEC.RSA_3072           // ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256']
 * ENCRYPTION_ALGORITHMS_BY_SPEC.SYMMETRIC_DEFAULT  // ['SYMMETRIC_DEFAULT']
 */
export const ENCRYPTION_ALGORITHMS_BY_SPEC: Readonly<Record<RsaKeySpec | 'SYMMETRIC_DEFAULT', readonly EncryptionAlgorithmSpec[]>> = Object.freeze({
  SYMMETRIC_DEFAULT: Object.freeze(['SYMMETRIC_DEFAULT'] as const),
  RSA_2048: RSA_OAEP,
  RSA_3072: RSA_OAEP,
  RSA_4096: RSA_OAEP,
});

/**
 * The key agreement algorithms AWS allows per key spec (KeyUsage
 * KEY_AGREEMENT): ECDH on the NIST curves only (not secp256k1, not Ed25519).
 *
 * @example
 * KEY_AGREEMENT_ALGORITHMS_BY_SPEC.ECC_NIST_P521  // ['ECDH']
 * 'ECC_SECG_P256K1' in KEY_AGREEMENT_ALGORITHMS_BY_SPEC  // false
 */
export const KEY_AGREEMENT_ALGORITHMS_BY_SPEC: Readonly<Record<NistEccKeySpec, readonly KeyAgreementAlgorithmSpec[]>> = Object.freeze({
  ECC_NIST_P256: Object.freeze(['ECDH'] as const),
  ECC_NIST_P384: Object.freeze(['ECDH'] as const),
  ECC_NIST_P521: Object.freeze(['ECDH'] as const),
});

/**
 * The largest RAW message Sign and Verify accept, in bytes (AWS's
 * PlaintextType maximum). Larger messages must be signed as a DIGEST.
 *
 * @example
 * if (message.length > MAX_RAW_MESSAGE_BYTES) useDigestInstead();
 */
export const MAX_RAW_MESSAGE_BYTES = 4096;

/**
 * The exact Message length AWS requires for a non-RAW message type, per
 * signing algorithm: the digest length for DIGEST, 64 for ML-DSA's
 * EXTERNAL_MU. Absent means the algorithm does not take that message type.
 *
 * @example
 * MESSAGE_BYTES_BY_TYPE.DIGEST.ECDSA_SHA_384            // 48
 * MESSAGE_BYTES_BY_TYPE.EXTERNAL_MU.ML_DSA_SHAKE_256    // 64
 * MESSAGE_BYTES_BY_TYPE.DIGEST.ED25519_SHA_512          // undefined: RAW only
 */
export const MESSAGE_BYTES_BY_TYPE: Readonly<{
  DIGEST: Readonly<Partial<Record<SigningAlgorithmSpec, number>>>;
  EXTERNAL_MU: Readonly<Partial<Record<SigningAlgorithmSpec, number>>>;
}> = Object.freeze({
  DIGEST: Object.freeze({
    RSASSA_PSS_SHA_256: 32,
    RSASSA_PSS_SHA_384: 48,
    RSASSA_PSS_SHA_512: 64,
    RSASSA_PKCS1_V1_5_SHA_256: 32,
    RSASSA_PKCS1_V1_5_SHA_384: 48,
    RSASSA_PKCS1_V1_5_SHA_512: 64,
    ECDSA_SHA_256: 32,
    ECDSA_SHA_384: 48,
    ECDSA_SHA_512: 64,
    ED25519_PH_SHA_512: 64,
  }),
  EXTERNAL_MU: Object.freeze({ ML_DSA_SHAKE_256: 64 }),
});

/**
 * AWS's largest plaintext per RSA key spec and OAEP algorithm: the modulus
 * length minus 2·hLen + 2 (RFC 8017 7.1.1).
 *
 * @example
 * RSA_OAEP_MAX_PLAINTEXT_BYTES.RSA_2048.RSAES_OAEP_SHA_256  // 190
 * RSA_OAEP_MAX_PLAINTEXT_BYTES.RSA_4096.RSAES_OAEP_SHA_1    // 470
 */
export const RSA_OAEP_MAX_PLAINTEXT_BYTES: Readonly<Record<RsaKeySpec, Readonly<Record<RsaOaepAlgorithm, number>>>> = Object.freeze({
  RSA_2048: Object.freeze({ RSAES_OAEP_SHA_1: 214, RSAES_OAEP_SHA_256: 190 }),
  RSA_3072: Object.freeze({ RSAES_OAEP_SHA_1: 342, RSAES_OAEP_SHA_256: 318 }),
  RSA_4096: Object.freeze({ RSAES_OAEP_SHA_1: 470, RSAES_OAEP_SHA_256: 446 }),
});

// ---------------------------------------------------------------------------
// Results and errors
// ---------------------------------------------------------------------------

/**
 * An expected failure a request can cause. `reason` is stable for the caller
 * to map to AWS's error; `message` is human-readable and safe to show and to
 * audit (it never contains key material, plaintext or message bytes).
 *
 * Suggested AWS mapping: ALGORITHM_NOT_ALLOWED → InvalidKeyUsageException;
 * MESSAGE_TYPE_NOT_ALLOWED, INVALID_MESSAGE_LENGTH, PLAINTEXT_TOO_LARGE,
 * INVALID_PEER_PUBLIC_KEY, CURVE_MISMATCH, INVALID_KEY_MATERIAL →
 * ValidationException; NOT_SUPPORTED → UnsupportedOperationException;
 * DECRYPTION_FAILED → InvalidCiphertextException.
 *
 * @example
 * const r = sign({ keySpec: 'ECC_NIST_P256', privateKeyDer, algorithm: 'ECDSA_SHA_384', message });
 * if (!r.ok) r.reason  // 'ALGORITHM_NOT_ALLOWED'
 */
export interface Refusal<R extends string> {
  readonly ok: false;
  readonly reason: R;
  readonly message: string;
}

/**
 * Why a Sign or Verify request is refused before any cryptography.
 *
 * @example
 * if (!r.ok && r.reason === ('NOT_SUPPORTED' satisfies SigningRefusalReason)) throw new KmsError('UnsupportedOperationException', r.message);
 */
export type SigningRefusalReason = 'ALGORITHM_NOT_ALLOWED' | 'MESSAGE_TYPE_NOT_ALLOWED' | 'INVALID_MESSAGE_LENGTH' | 'NOT_SUPPORTED';
/**
 * A refused Sign or Verify request.
 *
 * @example
 * const refusal: SigningRefusal | null = checkSigningRequest({ keySpec, algorithm, messageType, messageLength });
 */
export type SigningRefusal = Refusal<SigningRefusalReason>;

/**
 * Stored key material that does not parse as the DER its key spec requires
 * (PKCS#8 private key, SPKI public key) or is of another type or size. A bug
 * or corruption, never a request error, so it is thrown. The message names
 * the spec and the kind of key only.
 *
 * @example
 * try { sign({ keySpec: 'RSA_2048', privateKeyDer: ed25519Der, algorithm: 'RSASSA_PSS_SHA_256', message }) }
 * catch (e) { e instanceof InvalidKeyMaterialError }  // true
 */
export class InvalidKeyMaterialError extends Error {
  override readonly name = 'InvalidKeyMaterialError';
  constructor(keySpec: string, kind: 'private key' | 'public key') {
    super(`stored ${kind} is not a valid ${keySpec} key`);
  }
}

/**
 * A key spec this module cannot generate material for (symmetric, HMAC, SM2, or
 * not an AWS key spec). Thrown: the service checks the spec before it asks.
 *
 * @example
 * await generateKeyPair('SM2' as AsymmetricKeySpec)  // rejects with UnsupportedKeySpecError
 */
export class UnsupportedKeySpecError extends Error {
  override readonly name = 'UnsupportedKeySpecError';
  constructor(keySpec: string) {
    super(`key spec ${keySpec} has no key pair here`);
  }
}

const refuse = <R extends string>(reason: R, message: string): Refusal<R> => ({ ok: false, reason, message });

// ---------------------------------------------------------------------------
// Key specs → Node key parameters
// ---------------------------------------------------------------------------

type NodeHash = 'sha1' | 'sha256' | 'sha384' | 'sha512';

interface Curve {
  /** OpenSSL's curve name, as KeyObject.asymmetricKeyDetails.namedCurve and createECDH use it. */
  readonly name: string;
  readonly p: bigint;
  readonly a: bigint;
  readonly b: bigint;
  readonly gx: bigint;
  readonly gy: bigint;
  /** The group order. */
  readonly n: bigint;
  /** Bytes in a field element (a coordinate, the ECDH shared secret). */
  readonly bytes: number;
}

const hex = (s: string): bigint => BigInt(`0x${s}`);
const P256_P = hex('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff');
const P384_P = hex('fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff');
const P521_P = 2n ** 521n - 1n;

/** Curve parameters (SEC 2 / FIPS 186-5), checked against `openssl ecparam -param_enc explicit` in the tests. */
const CURVES = {
  ECC_NIST_P256: {
    name: 'prime256v1',
    p: P256_P,
    a: P256_P - 3n,
    b: hex('5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b'),
    gx: hex('6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296'),
    gy: hex('4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5'),
    n: hex('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'),
    bytes: 32,
  },
  ECC_NIST_P384: {
    name: 'secp384r1',
    p: P384_P,
    a: P384_P - 3n,
    b: hex('b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef'),
    gx: hex('aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7'),
    gy: hex('3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f'),
    n: hex('ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973'),
    bytes: 48,
  },
  ECC_NIST_P521: {
    name: 'secp521r1',
    p: P521_P,
    a: P521_P - 3n,
    b: hex('0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00'),
    gx: hex('00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66'),
    gy: hex('011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650'),
    n: hex('01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409'),
    bytes: 66,
  },
  ECC_SECG_P256K1: {
    name: 'secp256k1',
    p: hex('fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f'),
    a: 0n,
    b: 7n,
    gx: hex('79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798'),
    gy: hex('483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8'),
    n: hex('fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141'),
    bytes: 32,
  },
} as const satisfies Record<NistEccKeySpec | 'ECC_SECG_P256K1', Curve>;

type KeyParameters =
  | { readonly type: 'rsa'; readonly modulusLength: number }
  | { readonly type: 'ec'; readonly curve: Curve }
  | { readonly type: 'ed25519' | 'ml-dsa-44' | 'ml-dsa-65' | 'ml-dsa-87' };

const KEY_PARAMETERS: Readonly<Record<AsymmetricKeySpec, KeyParameters>> = {
  RSA_2048: { type: 'rsa', modulusLength: 2048 },
  RSA_3072: { type: 'rsa', modulusLength: 3072 },
  RSA_4096: { type: 'rsa', modulusLength: 4096 },
  ECC_NIST_P256: { type: 'ec', curve: CURVES.ECC_NIST_P256 },
  ECC_NIST_P384: { type: 'ec', curve: CURVES.ECC_NIST_P384 },
  ECC_NIST_P521: { type: 'ec', curve: CURVES.ECC_NIST_P521 },
  ECC_SECG_P256K1: { type: 'ec', curve: CURVES.ECC_SECG_P256K1 },
  ECC_NIST_EDWARDS25519: { type: 'ed25519' },
  ML_DSA_44: { type: 'ml-dsa-44' },
  ML_DSA_65: { type: 'ml-dsa-65' },
  ML_DSA_87: { type: 'ml-dsa-87' },
};

const keyParameters = (keySpec: string): KeyParameters | undefined =>
  Object.hasOwn(KEY_PARAMETERS, keySpec) ? KEY_PARAMETERS[keySpec as AsymmetricKeySpec] : undefined;

function matchesParameters(key: KeyObject, parameters: KeyParameters): boolean {
  if (key.asymmetricKeyType !== parameters.type) return false;
  const details = key.asymmetricKeyDetails ?? {};
  if (parameters.type === 'rsa') return details.modulusLength === parameters.modulusLength && details.publicExponent === 65537n;
  if (parameters.type === 'ec') return details.namedCurve === parameters.curve.name;
  return true;
}

function loadPrivateKey(keySpec: string, privateKeyDer: Buffer): { key: KeyObject; parameters: KeyParameters } {
  const parameters = keyParameters(keySpec);
  if (parameters === undefined) throw new UnsupportedKeySpecError(keySpec);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: privateKeyDer, format: 'der', type: 'pkcs8' });
  } catch {
    throw new InvalidKeyMaterialError(keySpec, 'private key');
  }
  if (!matchesParameters(key, parameters)) throw new InvalidKeyMaterialError(keySpec, 'private key');
  return { key, parameters };
}

function parsePublicKey(publicKeyDer: Buffer): KeyObject | undefined {
  try {
    return createPublicKey({ key: publicKeyDer, format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

function loadPublicKey(keySpec: string, publicKeyDer: Buffer): { key: KeyObject; parameters: KeyParameters } {
  const parameters = keyParameters(keySpec);
  if (parameters === undefined) throw new UnsupportedKeySpecError(keySpec);
  const key = parsePublicKey(publicKeyDer);
  if (key === undefined || !matchesParameters(key, parameters)) throw new InvalidKeyMaterialError(keySpec, 'public key');
  return { key, parameters };
}

// ---------------------------------------------------------------------------
// Key generation
// ---------------------------------------------------------------------------

/**
 * A new key pair: PKCS#8 DER private key (secret: wrap it, then `fill(0)`) and SPKI DER public key.
 *
 * @example
 * const pair: KeyPairDer = await generateKeyPair('RSA_2048');
 * const wrapped = wrap(pair.privateKeyDer);
 * pair.privateKeyDer.fill(0);
 */
export interface KeyPairDer {
  privateKeyDer: Buffer;
  publicKeyDer: Buffer;
}

type GenerateDer = (type: string, options: object, callback: (error: Error | null, publicKey: Buffer, privateKey: Buffer) => void) => void;

/**
 * A new key pair for an asymmetric key spec, generated off the event loop
 * (RSA_4096 takes about a second). RSA keys use e = 65537, as AWS does;
 * ML-DSA private keys are OpenSSL 3.5's default PKCS#8 form (seed and
 * expanded key together).
 * Throws {@link UnsupportedKeySpecError} for any other spec (SM2 included).
 *
 * @example
 * const { privateKeyDer, publicKeyDer } = await generateKeyPair('ECC_NIST_P256');
 * // publicKeyDer is what GetPublicKey returns; wrap privateKeyDer, then privateKeyDer.fill(0)
 */
export async function generateKeyPair(keySpec: AsymmetricKeySpec): Promise<KeyPairDer> {
  const parameters = keyParameters(keySpec);
  if (parameters === undefined) throw new UnsupportedKeySpecError(keySpec);
  const options =
    parameters.type === 'rsa'
      ? { modulusLength: parameters.modulusLength, publicExponent: 65537 }
      : parameters.type === 'ec'
        ? { namedCurve: parameters.curve.name }
        : {};
  const generate = nodeGenerateKeyPair as unknown as GenerateDer;
  return new Promise((resolve, reject) => {
    generate(
      parameters.type,
      { ...options, publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } },
      (error, publicKeyDer, privateKeyDer) => (error ? reject(error) : resolve({ privateKeyDer, publicKeyDer })),
    );
  });
}

/**
 * The SPKI DER public key of a PKCS#8 DER private key, after checking that the
 * private key is of `keySpec` (type, RSA modulus size and exponent, curve).
 * For key material that comes from outside (imported key pairs), where a
 * mismatch is the caller's error rather than corruption.
 *
 * @example
 * const r = derivePublicKey('RSA_2048', importedPkcs8);
 * if (r.ok) r.publicKeyDer  // SPKI DER
 * else r.reason            // 'INVALID_KEY_MATERIAL'
 */
export function derivePublicKey(keySpec: AsymmetricKeySpec, privateKeyDer: Buffer): { ok: true; publicKeyDer: Buffer } | Refusal<'INVALID_KEY_MATERIAL'> {
  try {
    const { key } = loadPrivateKey(keySpec, privateKeyDer);
    return { ok: true, publicKeyDer: createPublicKey(key).export({ format: 'der', type: 'spki' }) };
  } catch (error) {
    if (error instanceof InvalidKeyMaterialError || error instanceof UnsupportedKeySpecError) {
      return refuse('INVALID_KEY_MATERIAL', `The key material is not a valid ${keySpec} private key.`);
    }
    throw error;
  }
}

/**
 * An imported private key (PKCS#8 DER from outside) in the one encoding
 * keyledger keeps: checked to be of `keySpec` as derivePublicKey checks it,
 * then re-encoded as PKCS#8 DER from its components, with its SPKI DER public key. The
 * same key always comes out as the same bytes, however the importer encoded
 * it (with or without the optional public key, say), so a re-import of the
 * same key is recognised by its bytes. The caller zeroes `privateKeyDer`.
 *
 * @example
 * const r = canonicalKeyPair('ECC_NIST_P256', importedPkcs8);
 * if (r.ok) { wrap(r.privateKeyDer); r.privateKeyDer.fill(0) }
 */
export function canonicalKeyPair(keySpec: AsymmetricKeySpec, privateKeyDer: Buffer): ({ ok: true } & KeyPairDer) | Refusal<'INVALID_KEY_MATERIAL'> {
  try {
    const { key } = loadPrivateKey(keySpec, privateKeyDer);
    // Through JWK: OpenSSL keeps a PKCS#8 key's own encoding (an EC key without its optional public key stays
    // without it), while a key built from its JWK components is always encoded the same way.
    const canonical = createPrivateKey({ key: key.export({ format: 'jwk' }), format: 'jwk' });
    return {
      ok: true,
      privateKeyDer: canonical.export({ format: 'der', type: 'pkcs8' }),
      publicKeyDer: createPublicKey(key).export({ format: 'der', type: 'spki' }),
    };
  } catch (error) {
    if (error instanceof InvalidKeyMaterialError || error instanceof UnsupportedKeySpecError) {
      return refuse('INVALID_KEY_MATERIAL', `The key material is not a valid ${keySpec} private key.`);
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------
// Sign / Verify
// ---------------------------------------------------------------------------

type SigningScheme =
  { readonly kind: 'rsa-pkcs1' | 'rsa-pss' | 'ecdsa'; readonly hash: 'sha256' | 'sha384' | 'sha512' } | { readonly kind: 'ed25519' | 'ed25519ph' | 'ml-dsa' };

const SCHEMES: Readonly<Record<Exclude<SigningAlgorithmSpec, 'SM2DSA'>, SigningScheme>> = {
  RSASSA_PSS_SHA_256: { kind: 'rsa-pss', hash: 'sha256' },
  RSASSA_PSS_SHA_384: { kind: 'rsa-pss', hash: 'sha384' },
  RSASSA_PSS_SHA_512: { kind: 'rsa-pss', hash: 'sha512' },
  RSASSA_PKCS1_V1_5_SHA_256: { kind: 'rsa-pkcs1', hash: 'sha256' },
  RSASSA_PKCS1_V1_5_SHA_384: { kind: 'rsa-pkcs1', hash: 'sha384' },
  RSASSA_PKCS1_V1_5_SHA_512: { kind: 'rsa-pkcs1', hash: 'sha512' },
  ECDSA_SHA_256: { kind: 'ecdsa', hash: 'sha256' },
  ECDSA_SHA_384: { kind: 'ecdsa', hash: 'sha384' },
  ECDSA_SHA_512: { kind: 'ecdsa', hash: 'sha512' },
  ED25519_SHA_512: { kind: 'ed25519' },
  ED25519_PH_SHA_512: { kind: 'ed25519ph' },
  ML_DSA_SHAKE_256: { kind: 'ml-dsa' },
};

/**
 * The message types AWS accepts per signing algorithm: RSA and ECDSA take RAW
 * or DIGEST; ED25519_SHA_512 RAW only; ED25519_PH_SHA_512 DIGEST only (a
 * SHA-512 digest that AWS hashes again, as FIPS 186-5 7.8.1 step 1 does);
 * ML_DSA_SHAKE_256 RAW or EXTERNAL_MU.
 *
 * @example
 * MESSAGE_TYPES_BY_ALGORITHM.ED25519_PH_SHA_512  // ['DIGEST']
 */
export const MESSAGE_TYPES_BY_ALGORITHM: Readonly<Record<Exclude<SigningAlgorithmSpec, 'SM2DSA'>, readonly MessageType[]>> = (() => {
  const rawOrDigest = Object.freeze(['RAW', 'DIGEST'] as const);
  return Object.freeze({
    RSASSA_PSS_SHA_256: rawOrDigest,
    RSASSA_PSS_SHA_384: rawOrDigest,
    RSASSA_PSS_SHA_512: rawOrDigest,
    RSASSA_PKCS1_V1_5_SHA_256: rawOrDigest,
    RSASSA_PKCS1_V1_5_SHA_384: rawOrDigest,
    RSASSA_PKCS1_V1_5_SHA_512: rawOrDigest,
    ECDSA_SHA_256: rawOrDigest,
    ECDSA_SHA_384: rawOrDigest,
    ECDSA_SHA_512: rawOrDigest,
    ED25519_SHA_512: Object.freeze(['RAW'] as const),
    ED25519_PH_SHA_512: Object.freeze(['DIGEST'] as const),
    ML_DSA_SHAKE_256: Object.freeze(['RAW', 'EXTERNAL_MU'] as const),
  });
})();

/**
 * What Sign and Verify check before any cryptography.
 *
 * @example
 * checkSigningRequest({ keySpec: 'RSA_2048', algorithm: 'RSASSA_PSS_SHA_384', messageType: 'DIGEST', messageLength: 48 })  // null
 */
export interface SigningRequestShape {
  keySpec: KeySpec;
  algorithm: SigningAlgorithmSpec;
  /** Defaults to RAW, as in AWS. */
  messageType?: MessageType | undefined;
  /** The Message length in bytes. */
  messageLength: number;
}

/**
 * The refusal AWS would give a Sign or Verify request of this shape, or null
 * when it may proceed: the algorithm must be one the key spec allows, the
 * message type one the algorithm takes, a RAW message at most 4096 bytes, a
 * DIGEST exactly the digest's length, an EXTERNAL_MU exactly 64 bytes. Last,
 * NOT_SUPPORTED for what Node 24 cannot compute (Ed25519ph, EXTERNAL_MU).
 * {@link sign} and {@link verify} call it; the service may call it first to
 * refuse a request before it touches key material.
 *
 * @example
 * checkSigningRequest({ keySpec: 'ECC_NIST_P256', algorithm: 'ECDSA_SHA_256', messageType: 'DIGEST', messageLength: 48 })
 * // { ok: false, reason: 'INVALID_MESSAGE_LENGTH', message: 'A DIGEST message for ECDSA_SHA_256 must be 32 bytes long.' }
 * checkSigningRequest({ keySpec: 'ECC_NIST_P256', algorithm: 'ECDSA_SHA_256', messageLength: 5 })  // null
 */
export function checkSigningRequest(request: SigningRequestShape): SigningRefusal | null {
  const { keySpec, algorithm, messageLength } = request;
  const messageType = request.messageType ?? 'RAW';
  const allowed: readonly string[] = Object.hasOwn(SIGNING_ALGORITHMS_BY_SPEC, keySpec) ? SIGNING_ALGORITHMS_BY_SPEC[keySpec as AsymmetricKeySpec] : [];
  if (!allowed.includes(algorithm)) {
    return refuse('ALGORITHM_NOT_ALLOWED', `Signing algorithm ${algorithm} is not compatible with key spec ${keySpec}.`);
  }
  const types: readonly string[] = MESSAGE_TYPES_BY_ALGORITHM[algorithm as keyof typeof MESSAGE_TYPES_BY_ALGORITHM];
  if (!types.includes(messageType)) {
    return refuse('MESSAGE_TYPE_NOT_ALLOWED', `Signing algorithm ${algorithm} requires MessageType ${types.join(' or ')}.`);
  }
  if (messageType === 'RAW') {
    if (messageLength > MAX_RAW_MESSAGE_BYTES) {
      return refuse('INVALID_MESSAGE_LENGTH', `A RAW message must be at most ${MAX_RAW_MESSAGE_BYTES} bytes long; sign a DIGEST of a larger message.`);
    }
  } else {
    const expected = MESSAGE_BYTES_BY_TYPE[messageType][algorithm];
    if (messageLength !== expected) {
      return refuse('INVALID_MESSAGE_LENGTH', `A ${messageType} message for ${algorithm} must be ${expected} bytes long.`);
    }
  }
  if (algorithm === 'ED25519_PH_SHA_512') {
    return refuse('NOT_SUPPORTED', 'Signing algorithm ED25519_PH_SHA_512 (Ed25519ph) is not supported: the crypto library has no Ed25519ph.');
  }
  if (messageType === 'EXTERNAL_MU') {
    return refuse('NOT_SUPPORTED', 'MessageType EXTERNAL_MU is not supported: the crypto library cannot sign or verify an external ML-DSA mu.');
  }
  return null;
}

/**
 * A Sign request.
 *
 * @example
 * const input: SignInput = { keySpec: 'ECC_NIST_EDWARDS25519', privateKeyDer, algorithm: 'ED25519_SHA_512', message };
 */
export interface SignInput {
  keySpec: KeySpec;
  /** PKCS#8 DER; the caller owns it and zeroes it after the call. */
  privateKeyDer: Buffer;
  algorithm: SigningAlgorithmSpec;
  /** The message (RAW), its digest (DIGEST) or ML-DSA μ (EXTERNAL_MU). */
  message: Buffer;
  /** Defaults to RAW, as in AWS. */
  messageType?: MessageType | undefined;
}

/**
 * A Verify request: a Sign request with the public key and the signature.
 *
 * @example
 * const input: VerifyInput = { keySpec: 'ML_DSA_44', publicKeyDer, algorithm: 'ML_DSA_SHAKE_256', message, signature };
 */
export interface VerifyInput {
  keySpec: KeySpec;
  /** SPKI DER. */
  publicKeyDer: Buffer;
  algorithm: SigningAlgorithmSpec;
  message: Buffer;
  messageType?: MessageType | undefined;
  signature: Buffer;
}

/**
 * Signs as AWS KMS Sign does. Signatures are what AWS returns: RSA as the
 * modulus-length integer (PSS with salt length = digest length, MGF1 with the
 * same hash), ECDSA DER-encoded (SEQUENCE of r and s, not low-S normalized),
 * Ed25519 the 64-byte RFC 8032 signature of the raw message, ML-DSA the FIPS
 * 204 signature with an empty context (hedged, so not deterministic).
 * Refusals: see {@link checkSigningRequest}. Throws
 * {@link InvalidKeyMaterialError} if the private key is not of `keySpec`.
 *
 * @example
 * const r = sign({ keySpec: 'RSA_2048', privateKeyDer, algorithm: 'RSASSA_PSS_SHA_256', message: Buffer.from('hello') });
 * if (r.ok) r.signature  // 256 bytes
 * const d = sign({ keySpec: 'ECC_NIST_P256', privateKeyDer: ecDer, algorithm: 'ECDSA_SHA_256', messageType: 'DIGEST',
 *                  message: createHash('sha256').update('hello').digest() });
 */
export function sign(input: SignInput): { ok: true; signature: Buffer } | SigningRefusal {
  const { keySpec, privateKeyDer, algorithm, message } = input;
  const messageType = input.messageType ?? 'RAW';
  const refusal = checkSigningRequest({ keySpec, algorithm, messageType, messageLength: message.length });
  if (refusal) return refusal;
  const { key, parameters } = loadPrivateKey(keySpec, privateKeyDer);
  const scheme = SCHEMES[algorithm as keyof typeof SCHEMES];
  const digest = messageType === 'DIGEST';
  switch (scheme.kind) {
    case 'rsa-pkcs1':
      return {
        ok: true,
        signature: digest
          ? privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([DIGEST_INFO_PREFIX[scheme.hash], message]))
          : nodeSign(scheme.hash, message, { key, padding: constants.RSA_PKCS1_PADDING }),
      };
    case 'rsa-pss':
      return {
        ok: true,
        signature: digest
          ? privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, emsaPssEncode(scheme.hash, message, modulusBits(key)))
          : nodeSign(scheme.hash, message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: HASH_BYTES[scheme.hash] }),
      };
    case 'ecdsa': {
      if (parameters.type !== 'ec') throw new InvalidKeyMaterialError(keySpec, 'private key');
      return { ok: true, signature: digest ? ecdsaSignDigest(parameters.curve, key, message) : nodeSign(scheme.hash, message, { key, dsaEncoding: 'der' }) };
    }
    case 'ed25519':
    case 'ml-dsa':
      return { ok: true, signature: nodeSign(null, message, key) };
    case 'ed25519ph':
      // checkSigningRequest refused it already.
      throw new Error('unreachable: Ed25519ph is refused');
  }
}

/**
 * Verifies as AWS KMS Verify does: `{ ok: true, valid: false }` for any
 * signature that does not verify, malformed ones included (AWS's
 * KMSInvalidSignatureException). Strict: RSA signatures must be exactly the
 * modulus length, PSS must use salt length = digest length, ECDSA signatures
 * must be canonical DER. Refusals as for {@link sign}. Throws
 * {@link InvalidKeyMaterialError} if the public key is not of `keySpec`.
 *
 * @example
 * const r = verify({ keySpec: 'ECC_NIST_P256', publicKeyDer, algorithm: 'ECDSA_SHA_256', message, signature });
 * if (r.ok && !r.valid) throw new KmsError('KMSInvalidSignatureException', '…');
 */
export function verify(input: VerifyInput): { ok: true; valid: boolean } | SigningRefusal {
  const { keySpec, publicKeyDer, algorithm, message, signature } = input;
  const messageType = input.messageType ?? 'RAW';
  const refusal = checkSigningRequest({ keySpec, algorithm, messageType, messageLength: message.length });
  if (refusal) return refusal;
  const { key, parameters } = loadPublicKey(keySpec, publicKeyDer);
  const scheme = SCHEMES[algorithm as keyof typeof SCHEMES];
  const digest = messageType === 'DIGEST';
  const valid = (check: () => boolean): { ok: true; valid: boolean } => {
    try {
      return { ok: true, valid: check() };
    } catch {
      return { ok: true, valid: false };
    }
  };
  switch (scheme.kind) {
    case 'rsa-pkcs1':
    case 'rsa-pss': {
      const bits = modulusBits(key);
      if (signature.length !== Math.ceil(bits / 8)) return { ok: true, valid: false };
      if (!digest) {
        const options =
          scheme.kind === 'rsa-pss'
            ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: HASH_BYTES[scheme.hash] }
            : { key, padding: constants.RSA_PKCS1_PADDING };
        return valid(() => nodeVerify(scheme.hash, message, options, signature));
      }
      if (scheme.kind === 'rsa-pkcs1') {
        const expected = Buffer.concat([DIGEST_INFO_PREFIX[scheme.hash], message]);
        return valid(() => publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature).equals(expected));
      }
      return valid(() => emsaPssVerify(scheme.hash, message, publicDecrypt({ key, padding: constants.RSA_NO_PADDING }, signature), bits));
    }
    case 'ecdsa': {
      if (parameters.type !== 'ec') throw new InvalidKeyMaterialError(keySpec, 'public key');
      if (!digest) return valid(() => nodeVerify(scheme.hash, message, { key, dsaEncoding: 'der' }, signature));
      return valid(() => ecdsaVerifyDigest(parameters.curve, publicPoint(key), message, signature));
    }
    case 'ed25519':
    case 'ml-dsa':
      return valid(() => nodeVerify(null, message, key, signature));
    case 'ed25519ph':
      throw new Error('unreachable: Ed25519ph is refused');
  }
}

// ---------------------------------------------------------------------------
// RSA: DigestInfo, EMSA-PSS (RFC 8017)
// ---------------------------------------------------------------------------

const HASH_BYTES: Readonly<Record<NodeHash, number>> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/** DER DigestInfo headers (RFC 8017 9.2 note 1): AlgorithmIdentifier with NULL parameters, then the OCTET STRING header. */
const DIGEST_INFO_PREFIX: Readonly<Record<'sha256' | 'sha384' | 'sha512', Buffer>> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

function modulusBits(key: KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits === undefined) throw new Error('not an RSA key');
  return bits;
}

function mgf1(hash: NodeHash, seed: Buffer, length: number): Buffer {
  const mask = Buffer.alloc(length);
  const counter = Buffer.alloc(4);
  for (let i = 0, offset = 0; offset < length; i++) {
    counter.writeUInt32BE(i);
    offset += createHash(hash).update(seed).update(counter).digest().copy(mask, offset);
  }
  return mask;
}

/**
 * EMSA-PSS-ENCODE (RFC 8017 9.1.1) of an already computed digest, salt length =
 * digest length, left-padded to the modulus length for the raw RSA operation.
 */
function emsaPssEncode(hash: NodeHash, mHash: Buffer, modBits: number): Buffer {
  const hLen = HASH_BYTES[hash];
  const sLen = hLen;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  if (emLen < hLen + sLen + 2) throw new Error('RSA modulus too short for PSS');
  const salt = randomBytes(sLen);
  const h = createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.alloc(emLen - hLen - 1);
  db[emLen - sLen - hLen - 2] = 0x01;
  salt.copy(db, db.length - sLen);
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i] = db[i]! ^ mask[i]!;
  db[0] = db[0]! & (0xff >> (8 * emLen - emBits));
  const k = Math.ceil(modBits / 8);
  const em = Buffer.alloc(k);
  db.copy(em, k - emLen);
  h.copy(em, k - emLen + db.length);
  em[k - 1] = 0xbc;
  return em;
}

/** EMSA-PSS-VERIFY (RFC 8017 9.1.2), salt length = digest length; `m` is the raw RSA public operation's output, modulus-length. */
function emsaPssVerify(hash: NodeHash, mHash: Buffer, m: Buffer, modBits: number): boolean {
  const hLen = HASH_BYTES[hash];
  const sLen = hLen;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const k = Math.ceil(modBits / 8);
  if (m.length !== k || emLen < hLen + sLen + 2) return false;
  for (let i = 0; i < k - emLen; i++) if (m[i] !== 0) return false;
  const em = m.subarray(k - emLen);
  if (em[emLen - 1] !== 0xbc) return false;
  const db = Buffer.from(em.subarray(0, emLen - hLen - 1));
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = 0xff >> (8 * emLen - emBits);
  if ((db[0]! & ~topMask) !== 0) return false;
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i] = db[i]! ^ mask[i]!;
  db[0] = db[0]! & topMask;
  const separator = emLen - hLen - sLen - 2;
  for (let i = 0; i < separator; i++) if (db[i] !== 0) return false;
  if (db[separator] !== 0x01) return false;
  const salt = db.subarray(db.length - sLen);
  return createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest().equals(h);
}

// ---------------------------------------------------------------------------
// ECDSA over a digest
// ---------------------------------------------------------------------------

const mod = (a: bigint, m: bigint): bigint => {
  const r = a % m;
  return r < 0n ? r + m : r;
};

/** a^e mod m by square-and-multiply; `e` is always public here (m − 2). */
function modPow(base: bigint, exponent: bigint, m: bigint): bigint {
  let result = 1n;
  let b = mod(base, m);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
  }
  return result;
}

/** Inverse modulo a prime (Fermat). */
const modInverse = (a: bigint, p: bigint): bigint => modPow(a, p - 2n, p);

const toBigInt = (bytes: Buffer): bigint => (bytes.length === 0 ? 0n : BigInt(`0x${bytes.toString('hex')}`));

const bitLength = (x: bigint): number => x.toString(2).length;

/** FIPS 186-5 6.4.1: the leftmost min(bitlen(n), 8·len) bits of the digest as an integer. */
function bitsToInt(digest: Buffer, n: bigint): bigint {
  const excess = digest.length * 8 - bitLength(n);
  const e = toBigInt(digest);
  return excess > 0 ? e >> BigInt(excess) : e;
}

/** A point in Jacobian coordinates (x = X/Z², y = Y/Z³); Z = 0 is the point at infinity. */
interface Jacobian {
  x: bigint;
  y: bigint;
  z: bigint;
}
const INFINITY: Jacobian = { x: 1n, y: 1n, z: 0n };

function pointDouble(c: Curve, q: Jacobian): Jacobian {
  if (q.z === 0n || q.y === 0n) return INFINITY;
  const { p } = c;
  const yy = mod(q.y * q.y, p);
  const zz = mod(q.z * q.z, p);
  const s = mod(4n * q.x * yy, p);
  const m = mod(3n * q.x * q.x + c.a * zz * zz, p);
  const x = mod(m * m - 2n * s, p);
  const y = mod(m * (s - x) - 8n * yy * yy, p);
  const z = mod(2n * q.y * q.z, p);
  return { x, y, z };
}

function pointAdd(c: Curve, a: Jacobian, b: Jacobian): Jacobian {
  if (a.z === 0n) return b;
  if (b.z === 0n) return a;
  const { p } = c;
  const z1z1 = mod(a.z * a.z, p);
  const z2z2 = mod(b.z * b.z, p);
  const u1 = mod(a.x * z2z2, p);
  const u2 = mod(b.x * z1z1, p);
  const s1 = mod(a.y * b.z * z2z2, p);
  const s2 = mod(b.y * a.z * z1z1, p);
  if (u1 === u2) return s1 === s2 ? pointDouble(c, a) : INFINITY;
  const h = mod(u2 - u1, p);
  const r = mod(s2 - s1, p);
  const hh = mod(h * h, p);
  const hhh = mod(h * hh, p);
  const v = mod(u1 * hh, p);
  const x = mod(r * r - hhh - 2n * v, p);
  const y = mod(r * (v - x) - s1 * hhh, p);
  const z = mod(a.z * b.z * h, p);
  return { x, y, z };
}

/** k·Q by double-and-add. Not constant-time: only ever called with public scalars (verification). */
function pointMultiply(c: Curve, k: bigint, q: Jacobian): Jacobian {
  let result = INFINITY;
  let addend = q;
  for (let e = k; e > 0n; e >>= 1n) {
    if (e & 1n) result = pointAdd(c, result, addend);
    addend = pointDouble(c, addend);
  }
  return result;
}

/** The affine x coordinate, or undefined for the point at infinity. */
function affineX(c: Curve, q: Jacobian): bigint | undefined {
  if (q.z === 0n) return undefined;
  const zInv = modInverse(q.z, c.p);
  return mod(q.x * zInv * zInv, c.p);
}

/** The public point of an EC public key (validated on the curve by OpenSSL when it was parsed). */
function publicPoint(key: KeyObject): Jacobian {
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw new Error('not an EC public key');
  return { x: toBigInt(Buffer.from(jwk.x, 'base64url')), y: toBigInt(Buffer.from(jwk.y, 'base64url')), z: 1n };
}

/** ECDSA verification (FIPS 186-5 6.4.2) of a DER signature over a digest. Public inputs only. */
function ecdsaVerifyDigest(c: Curve, q: Jacobian, digest: Buffer, signature: Buffer): boolean {
  const rs = parseDerSignature(signature);
  if (rs === undefined) return false;
  const { r, s } = rs;
  if (r < 1n || r >= c.n || s < 1n || s >= c.n) return false;
  const e = bitsToInt(digest, c.n);
  const w = modInverse(s, c.n);
  const u1 = mod(e * w, c.n);
  const u2 = mod(r * w, c.n);
  const point = pointAdd(c, pointMultiply(c, u1, { x: c.gx, y: c.gy, z: 1n }), pointMultiply(c, u2, q));
  const x = affineX(c, point);
  return x !== undefined && mod(x, c.n) === r;
}

/**
 * ECDSA signing (FIPS 186-5 6.4.1) of an already computed digest. The
 * secret-dependent point multiplication k·G is OpenSSL's (a fresh key pair
 * from createECDH: k uniform in [1, n−1], constant-time scalar
 * multiplication). The scalar step s = k⁻¹(e + r·d) mod n runs on BigInt,
 * which is not constant-time, so it is blinded by a random b:
 * s = (k·b)⁻¹ · (b·e + r·(b·d)) mod n, and the inversion only ever sees the
 * uniformly random k·b. The result is verified before it is returned.
 */
function ecdsaSignDigest(c: Curve, key: KeyObject, digest: Buffer): Buffer {
  const d = ecPrivateScalar(key);
  const q = publicPoint(createPublicKey(key));
  const e = bitsToInt(digest, c.n);
  for (;;) {
    const ephemeral = createECDH(c.name);
    const kG = ephemeral.generateKeys();
    const kBytes = ephemeral.getPrivateKey();
    const k = toBigInt(kBytes);
    kBytes.fill(0);
    const r = mod(toBigInt(kG.subarray(1, 1 + c.bytes)), c.n);
    if (r === 0n) continue;
    const blindBytes = randomBytes(c.bytes + 16);
    const b = mod(toBigInt(blindBytes), c.n - 1n) + 1n;
    blindBytes.fill(0);
    const kbInverse = modInverse(mod(k * b, c.n), c.n);
    const s = mod(kbInverse * mod(b * e + r * mod(b * d, c.n), c.n), c.n);
    if (s === 0n) continue;
    const signature = encodeDerSignature(r, s);
    if (!ecdsaVerifyDigest(c, q, digest, signature)) throw new Error('ECDSA signature failed its own verification');
    return signature;
  }
}

/** The private scalar d of an EC private key, read from its SEC 1 ECPrivateKey encoding (RFC 5915). */
function ecPrivateScalar(key: KeyObject): bigint {
  const sec1 = key.export({ format: 'der', type: 'sec1' });
  try {
    const outer = readDer(sec1, 0, 0x30);
    const version = readDer(sec1, outer.start, 0x02);
    const octets = readDer(sec1, version.end, 0x04);
    return toBigInt(sec1.subarray(octets.start, octets.end));
  } finally {
    sec1.fill(0);
  }
}

// ---------------------------------------------------------------------------
// Minimal DER
// ---------------------------------------------------------------------------

/** One TLV at `offset` with the expected tag: content bounds, strict (minimal) lengths only. */
function readDer(buf: Buffer, offset: number, tag: number): { start: number; end: number } {
  if (buf[offset] !== tag) throw new Error('unexpected DER tag');
  let length = buf[offset + 1];
  let start = offset + 2;
  if (length === undefined) throw new Error('truncated DER');
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 2) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < count; i++) {
      const byte = buf[start + i];
      if (byte === undefined || (i === 0 && byte === 0)) throw new Error('bad DER length');
      length = (length << 8) | byte;
    }
    if (length < 0x80) throw new Error('non-minimal DER length');
    start += count;
  }
  const end = start + length;
  if (end > buf.length) throw new Error('truncated DER');
  return { start, end };
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  if (length < 0x100) return Buffer.from([0x81, length]);
  return Buffer.from([0x82, length >> 8, length & 0xff]);
}

function derInteger(x: bigint): Buffer {
  let h = x.toString(16);
  if (h.length % 2) h = `0${h}`;
  let bytes = Buffer.from(h, 'hex');
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Buffer.concat([Buffer.from([0x02]), derLength(bytes.length), bytes]);
}

function encodeDerSignature(r: bigint, s: bigint): Buffer {
  const body = Buffer.concat([derInteger(r), derInteger(s)]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/** A canonical DER ECDSA signature (what OpenSSL accepts), or undefined. */
function parseDerSignature(signature: Buffer): { r: bigint; s: bigint } | undefined {
  try {
    const outer = readDer(signature, 0, 0x30);
    if (outer.end !== signature.length) return undefined;
    const values: bigint[] = [];
    let offset = outer.start;
    for (let i = 0; i < 2; i++) {
      const int = readDer(signature, offset, 0x02);
      const bytes = signature.subarray(int.start, int.end);
      if (bytes.length === 0 || bytes[0]! & 0x80) return undefined;
      if (bytes.length > 1 && bytes[0] === 0 && !(bytes[1]! & 0x80)) return undefined;
      values.push(toBigInt(bytes));
      offset = int.end;
    }
    if (offset !== outer.end) return undefined;
    return { r: values[0]!, s: values[1]! };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// RSA-OAEP Encrypt / Decrypt
// ---------------------------------------------------------------------------

const OAEP_HASH: Readonly<Record<RsaOaepAlgorithm, NodeHash>> = { RSAES_OAEP_SHA_1: 'sha1', RSAES_OAEP_SHA_256: 'sha256' };

function oaepRefusal(keySpec: string, algorithm: string): Refusal<'ALGORITHM_NOT_ALLOWED'> | null {
  const allowed: readonly string[] =
    keySpec.startsWith('RSA_') && Object.hasOwn(ENCRYPTION_ALGORITHMS_BY_SPEC, keySpec) ? ENCRYPTION_ALGORITHMS_BY_SPEC[keySpec as RsaKeySpec] : [];
  return allowed.includes(algorithm) ? null : refuse('ALGORITHM_NOT_ALLOWED', `Encryption algorithm ${algorithm} is not compatible with key spec ${keySpec}.`);
}

/**
 * An asymmetric Encrypt request.
 *
 * @example
 * rsaOaepEncrypt({ keySpec: 'RSA_4096', publicKeyDer, algorithm: 'RSAES_OAEP_SHA_1', plaintext } satisfies RsaOaepEncryptInput);
 */
export interface RsaOaepEncryptInput {
  keySpec: KeySpec;
  /** SPKI DER. */
  publicKeyDer: Buffer;
  algorithm: EncryptionAlgorithmSpec;
  plaintext: Buffer;
}

/**
 * RSAES-OAEP encryption as AWS KMS Encrypt does with an RSA key: OAEP with
 * the algorithm's hash for both the label hash and MGF1, empty label. The
 * ciphertext is the modulus length; anyone with the public key can make one
 * offline (`openssl pkeyutl -encrypt -pkeyopt rsa_padding_mode:oaep
 * -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256`). Refuses a
 * plaintext over {@link RSA_OAEP_MAX_PLAINTEXT_BYTES}.
 *
 * @example
 * const r = rsaOaepEncrypt({ keySpec: 'RSA_2048', publicKeyDer, algorithm: 'RSAES_OAEP_SHA_256', plaintext });
 * if (r.ok) r.ciphertext        // 256 bytes
 * else r.reason                // 'PLAINTEXT_TOO_LARGE' above 190 bytes
 */
export function rsaOaepEncrypt(input: RsaOaepEncryptInput): { ok: true; ciphertext: Buffer } | Refusal<'ALGORITHM_NOT_ALLOWED' | 'PLAINTEXT_TOO_LARGE'> {
  const { keySpec, publicKeyDer, algorithm, plaintext } = input;
  const refusal = oaepRefusal(keySpec, algorithm);
  if (refusal) return refusal;
  const max = RSA_OAEP_MAX_PLAINTEXT_BYTES[keySpec as RsaKeySpec][algorithm as RsaOaepAlgorithm];
  if (plaintext.length > max) {
    return refuse('PLAINTEXT_TOO_LARGE', `The plaintext for ${keySpec} with ${algorithm} must be at most ${max} bytes long.`);
  }
  const { key } = loadPublicKey(keySpec, publicKeyDer);
  const ciphertext = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[algorithm as RsaOaepAlgorithm] }, plaintext);
  return { ok: true, ciphertext };
}

/**
 * An asymmetric Decrypt request.
 *
 * @example
 * rsaOaepDecrypt({ keySpec: 'RSA_4096', privateKeyDer, algorithm: 'RSAES_OAEP_SHA_1', ciphertext } satisfies RsaOaepDecryptInput);
 */
export interface RsaOaepDecryptInput {
  keySpec: KeySpec;
  /** PKCS#8 DER; the caller owns it and zeroes it after the call. */
  privateKeyDer: Buffer;
  algorithm: EncryptionAlgorithmSpec;
  ciphertext: Buffer;
}

/**
 * RSAES-OAEP decryption, the inverse of {@link rsaOaepEncrypt}. Any ciphertext
 * that does not decrypt under this key and algorithm (wrong length, wrong
 * algorithm, tampered) is one indistinguishable DECRYPTION_FAILED refusal
 * (AWS's InvalidCiphertextException), with no padding-oracle detail. The
 * plaintext is the caller's to zero.
 *
 * @example
 * const r = rsaOaepDecrypt({ keySpec: 'RSA_2048', privateKeyDer, algorithm: 'RSAES_OAEP_SHA_256', ciphertext });
 * if (r.ok) { use(r.plaintext); r.plaintext.fill(0); }
 */
export function rsaOaepDecrypt(input: RsaOaepDecryptInput): { ok: true; plaintext: Buffer } | Refusal<'ALGORITHM_NOT_ALLOWED' | 'DECRYPTION_FAILED'> {
  const { keySpec, privateKeyDer, algorithm, ciphertext } = input;
  const refusal = oaepRefusal(keySpec, algorithm);
  if (refusal) return refusal;
  const { key } = loadPrivateKey(keySpec, privateKeyDer);
  const failed = refuse('DECRYPTION_FAILED', 'The ciphertext could not be decrypted with this key and encryption algorithm.');
  if (ciphertext.length !== Math.ceil(modulusBits(key) / 8)) return failed;
  try {
    return {
      ok: true,
      plaintext: privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[algorithm as RsaOaepAlgorithm] }, ciphertext),
    };
  } catch {
    return failed;
  }
}

// ---------------------------------------------------------------------------
// ECDH DeriveSharedSecret
// ---------------------------------------------------------------------------

/**
 * A DeriveSharedSecret request.
 *
 * @example
 * deriveSharedSecret({ keySpec: 'ECC_NIST_P256', privateKeyDer, peerPublicKeyDer } satisfies DeriveSharedSecretInput);
 */
export interface DeriveSharedSecretInput {
  keySpec: KeySpec;
  /** PKCS#8 DER; the caller owns it and zeroes it after the call. */
  privateKeyDer: Buffer;
  /** The peer's public key as SPKI DER, on the same curve. */
  peerPublicKeyDer: Buffer;
  /** AWS's KeyAgreementAlgorithm; ECDH, the only value, by default. */
  algorithm?: KeyAgreementAlgorithmSpec | undefined;
}

/**
 * ECDH (SP 800-56A cofactor Diffie-Hellman; the NIST prime curves have
 * cofactor 1) between the key's private key and a peer's public key, as AWS
 * KMS DeriveSharedSecret does. Returns the raw shared secret: the x
 * coordinate, field-size bytes (32/48/66), which the caller must zero. The
 * peer key must be a valid SPKI EC public key on the same named curve
 * (OpenSSL rejects points not on the curve when parsing).
 *
 * @example
 * const r = deriveSharedSecret({ keySpec: 'ECC_NIST_P256', privateKeyDer, peerPublicKeyDer });
 * if (r.ok) { const key = hkdf(r.sharedSecret); r.sharedSecret.fill(0); }
 * else r.reason  // 'CURVE_MISMATCH' for a P-384 peer key
 */
export function deriveSharedSecret(
  input: DeriveSharedSecretInput,
): { ok: true; sharedSecret: Buffer } | Refusal<'ALGORITHM_NOT_ALLOWED' | 'INVALID_PEER_PUBLIC_KEY' | 'CURVE_MISMATCH'> {
  const { keySpec, privateKeyDer, peerPublicKeyDer } = input;
  const algorithm = input.algorithm ?? 'ECDH';
  const allowed: readonly string[] = Object.hasOwn(KEY_AGREEMENT_ALGORITHMS_BY_SPEC, keySpec)
    ? KEY_AGREEMENT_ALGORITHMS_BY_SPEC[keySpec as NistEccKeySpec]
    : [];
  if (!allowed.includes(algorithm)) {
    return refuse('ALGORITHM_NOT_ALLOWED', `Key agreement algorithm ${algorithm} is not compatible with key spec ${keySpec}.`);
  }
  const { key, parameters } = loadPrivateKey(keySpec, privateKeyDer);
  if (parameters.type !== 'ec') throw new InvalidKeyMaterialError(keySpec, 'private key');
  const peer = parsePublicKey(peerPublicKeyDer);
  if (peer === undefined || peer.asymmetricKeyType !== 'ec') {
    return refuse('INVALID_PEER_PUBLIC_KEY', 'The peer public key is not a valid DER-encoded elliptic curve SubjectPublicKeyInfo.');
  }
  if (peer.asymmetricKeyDetails?.namedCurve !== parameters.curve.name) {
    return refuse('CURVE_MISMATCH', `The peer public key must be on the same curve as the KMS key (${keySpec}).`);
  }
  try {
    return { ok: true, sharedSecret: diffieHellman({ privateKey: key, publicKey: peer }) };
  } catch {
    return refuse('INVALID_PEER_PUBLIC_KEY', 'The peer public key is not a valid point on the curve.');
  }
}
