/**
 * Asymmetric cryptography for keyledger's non-symmetric KMS keys, with AWS KMS
 * semantics. This module is its vocabulary: AWS's names, which key spec allows
 * which algorithm, AWS's size limits, and the refusals and errors every part
 * returns. The parts: key-pairs.ts (generate, load and check key pairs),
 * signing.ts (Sign/Verify), digest-signing.ts (signing an already-hashed
 * digest), rsa-oaep.ts (Encrypt/Decrypt) and key-agreement.ts
 * (DeriveSharedSecret); HMAC lives in hmac.ts. All pure: no I/O, no state, no
 * logging. Keys travel as DER: private keys PKCS#8, public keys X.509
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
 * Every signing mode of AWS's matrix is computed. Two are beyond Node 24
 * (OpenSSL 3.5): Ed25519ph (ED25519_PH_SHA_512) and ML-DSA with message type
 * EXTERNAL_MU, for which Node has no API (nodejs/node#62345 proposes
 * `crypto.signDigest`, not in Node 24.21); noble-signing.ts does those with
 * `@noble/curves` and `@noble/post-quantum`.
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
 * ValidationException; DECRYPTION_FAILED → InvalidCiphertextException.
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
 * if (!r.ok && r.reason === ('ALGORITHM_NOT_ALLOWED' satisfies SigningRefusalReason)) throw new KmsError('InvalidKeyUsageException', r.message);
 */
export type SigningRefusalReason = 'ALGORITHM_NOT_ALLOWED' | 'MESSAGE_TYPE_NOT_ALLOWED' | 'INVALID_MESSAGE_LENGTH';
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

export const refuse = <R extends string>(reason: R, message: string): Refusal<R> => ({ ok: false, reason, message });
