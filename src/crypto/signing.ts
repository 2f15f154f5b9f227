import { constants, privateEncrypt, publicDecrypt, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import {
  refuse,
  InvalidKeyMaterialError,
  MAX_RAW_MESSAGE_BYTES,
  MESSAGE_BYTES_BY_TYPE,
  SIGNING_ALGORITHMS_BY_SPEC,
  type SigningRefusal,
  type KeySpec,
  type AsymmetricKeySpec,
  type SigningAlgorithmSpec,
  type MessageType,
} from './asymmetric.ts';
import { loadPrivateKey, loadPublicKey, modulusBits } from './key-pairs.ts';
import { DIGEST_INFO_PREFIX, ecdsaSignDigest, ecdsaVerifyDigest, emsaPssEncode, emsaPssVerify, HASH_BYTES, publicPoint } from './digest-signing.ts';
import { ed25519phSign, ed25519phVerify, mlDsaSignMu, mlDsaVerifyMu } from './noble-signing.ts';

/**
 * Sign and Verify with AWS KMS semantics: which message types each algorithm
 * takes, the RAW and DIGEST size limits, and the signature schemes. DIGEST
 * messages go through digest-signing.ts, which Node has no API for;
 * Ed25519ph and ML-DSA's EXTERNAL_MU, which Node cannot compute at all,
 * through noble-signing.ts.
 */

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
 * DIGEST exactly the digest's length, an EXTERNAL_MU exactly 64 bytes.
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
      return refuse(
        'INVALID_MESSAGE_LENGTH',
        `${/^[AEIOU]/.test(messageType) ? 'An' : 'A'} ${messageType} message for ${algorithm} must be ${expected} bytes long.`,
      );
    }
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
 * Ed25519 the 64-byte RFC 8032 signature of the raw message, Ed25519ph the
 * 64-byte RFC 8032 Ed25519ph signature of the DIGEST (which Ed25519ph hashes
 * again, as AWS does), ML-DSA the FIPS 204 signature with an empty context,
 * or over the given μ for EXTERNAL_MU (hedged, so not deterministic).
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
      return { ok: true, signature: nodeSign(null, message, key) };
    case 'ml-dsa':
      return { ok: true, signature: messageType === 'EXTERNAL_MU' ? mlDsaSignMu(mlDsaSpec(keySpec), privateKeyDer, message) : nodeSign(null, message, key) };
    case 'ed25519ph':
      return { ok: true, signature: ed25519phSign(privateKeyDer, message) };
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
      return valid(() => nodeVerify(null, message, key, signature));
    case 'ml-dsa':
      if (messageType === 'EXTERNAL_MU') return valid(() => mlDsaVerifyMu(mlDsaSpec(keySpec), key, message, signature));
      return valid(() => nodeVerify(null, message, key, signature));
    case 'ed25519ph':
      return valid(() => ed25519phVerify(key, message, signature));
  }
}

/** The ML-DSA key spec of a key that loaded as ML-DSA (loadPrivateKey / loadPublicKey checked it). */
function mlDsaSpec(keySpec: KeySpec): 'ML_DSA_44' | 'ML_DSA_65' | 'ML_DSA_87' {
  if (keySpec === 'ML_DSA_44' || keySpec === 'ML_DSA_65' || keySpec === 'ML_DSA_87') return keySpec;
  throw new InvalidKeyMaterialError(keySpec, 'private key');
}
