import { diffieHellman } from 'node:crypto';
import {
  refuse,
  InvalidKeyMaterialError,
  KEY_AGREEMENT_ALGORITHMS_BY_SPEC,
  type Refusal,
  type KeySpec,
  type NistEccKeySpec,
  type KeyAgreementAlgorithmSpec,
} from './asymmetric.ts';
import { loadPrivateKey, parsePublicKey } from './key-pairs.ts';

/**
 * ECDH DeriveSharedSecret for the NIST curve key specs with KEY_AGREEMENT
 * usage: the raw shared secret against a peer's public key on the same curve.
 */

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
