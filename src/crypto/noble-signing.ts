import { type KeyObject } from 'node:crypto';
import { ed25519ph } from '@noble/curves/ed25519.js';
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { InvalidKeyMaterialError } from './asymmetric.ts';

/**
 * The two signing modes of AWS's matrix that Node 24 (OpenSSL 3.5 underneath)
 * cannot compute, done with audited pure-JS libraries:
 * - Ed25519ph (ED25519_PH_SHA_512, RFC 8032 5.1 with phflag = 1 and an empty
 *   context) by `@noble/curves`' `ed25519ph`, which hashes its message with
 *   SHA-512 first (FIPS 186-5 7.8.1 step 1). AWS's DIGEST message is that
 *   message: AWS hashes the caller's digest again, so the signature is the
 *   RFC 8032 Ed25519ph signature of the 64 digest bytes.
 * - ML-DSA with an external μ (EXTERNAL_MU: FIPS 204 Algorithm 7/8,
 *   ML-DSA.Sign_internal / Verify_internal, given μ instead of computing it
 *   from tr and M′) by `@noble/post-quantum`'s `internal` surface with
 *   `externalMu: true`. Signing is hedged (fresh randomness per signature) as
 *   Node's ML-DSA is.
 *
 * Keys stay what keyledger stores: PKCS#8 DER, loaded and checked by Node
 * first (key-pairs.ts). The raw secret is read out of the DER as a view, never
 * copied; what is derived from it here (ML-DSA's expanded secret key) is
 * zeroed once used. The libraries' own internal copies are theirs to clean
 * (noble wipes what it can). Public keys come from Node's KeyObject.
 * Verification is strict: RFC 8032 / FIPS 186-5 point decoding (no ZIP-215).
 */

/** A DER TLV: the tag, and the value as a view into the input. */
interface Tlv {
  readonly tag: number;
  readonly value: Buffer;
  readonly end: number;
}

/** Reads one DER TLV at `offset` (definite lengths only, as DER requires); null if malformed. */
function readTlv(der: Buffer, offset: number): Tlv | null {
  if (offset + 2 > der.length) return null;
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 3 || start + bytes > der.length) return null;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]!;
    start += bytes;
  }
  const end = start + length;
  if (end > der.length) return null;
  return { tag, value: der.subarray(start, end), end };
}

/**
 * The privateKey OCTET STRING's contents of a PKCS#8 OneAsymmetricKey
 * (RFC 5958: SEQUENCE { version, AlgorithmIdentifier, OCTET STRING privateKey, ... }), as a view.
 */
function pkcs8PrivateKeyOctets(der: Buffer): Buffer | null {
  const outer = readTlv(der, 0);
  if (outer?.tag !== 0x30) return null;
  const body = outer.value;
  const version = readTlv(body, 0);
  if (version?.tag !== 0x02) return null;
  const algorithm = readTlv(body, version.end);
  if (algorithm?.tag !== 0x30) return null;
  const privateKey = readTlv(body, algorithm.end);
  return privateKey?.tag === 0x04 ? privateKey.value : null;
}

/**
 * The 32-byte Ed25519 private key (RFC 8032's seed; JWK `d`) of a PKCS#8 DER
 * Ed25519 key (RFC 8410: CurvePrivateKey ::= OCTET STRING), as a view into
 * `privateKeyDer`: zeroing `privateKeyDer` zeroes it.
 *
 * @example
 * const seed = ed25519Seed(privateKeyDer);  // 32 bytes, a view
 */
export function ed25519Seed(privateKeyDer: Buffer): Buffer {
  const octets = pkcs8PrivateKeyOctets(privateKeyDer);
  const seed = octets && readTlv(octets, 0);
  if (seed?.tag !== 0x04 || seed.value.length !== 32 || seed.end !== octets!.length) {
    throw new InvalidKeyMaterialError('ECC_NIST_EDWARDS25519', 'private key');
  }
  return seed.value;
}

type MlDsaKeySpec = 'ML_DSA_44' | 'ML_DSA_65' | 'ML_DSA_87';
const ML_DSA = { ML_DSA_44: ml_dsa44, ML_DSA_65: ml_dsa65, ML_DSA_87: ml_dsa87 } as const;

/**
 * The secret of a PKCS#8 DER ML-DSA key in any of the three forms RFC 9881
 * allows for ML-DSA-PrivateKey: `seed [0] IMPLICIT OCTET STRING (32)`,
 * `expandedKey OCTET STRING`, or `both SEQUENCE { seed, expandedKey }`
 * (OpenSSL 3.5's default, and what keyledger generates). Views into `privateKeyDer`.
 */
function mlDsaSecret(keySpec: MlDsaKeySpec, privateKeyDer: Buffer): { seed: Buffer } | { expandedKey: Buffer } {
  const invalid = () => new InvalidKeyMaterialError(keySpec, 'private key');
  const octets = pkcs8PrivateKeyOctets(privateKeyDer);
  if (octets === null) throw invalid();
  const choice = readTlv(octets, 0);
  if (choice === null || choice.end !== octets.length) throw invalid();
  const expandedBytes = ML_DSA[keySpec].lengths.secretKey;
  if (choice.tag === 0x80 && choice.value.length === 32) return { seed: choice.value };
  if (choice.tag === 0x04 && choice.value.length === expandedBytes) return { expandedKey: choice.value };
  if (choice.tag === 0x30) {
    const seed = readTlv(choice.value, 0);
    if (seed?.tag === 0x04 && seed.value.length === 32) return { seed: seed.value };
  }
  throw invalid();
}

/**
 * Ed25519ph (RFC 8032, phflag = 1, empty context) of `message`: SHA-512 of
 * `message`, then signed. For AWS's ED25519_PH_SHA_512 with MessageType
 * DIGEST, `message` is the caller's 64-byte digest (AWS hashes it again).
 * `privateKeyDer` is PKCS#8 DER already checked by Node; the caller zeroes it.
 *
 * @example
 * const signature = ed25519phSign(privateKeyDer, sha512Digest);  // 64 bytes
 */
export function ed25519phSign(privateKeyDer: Buffer, message: Buffer): Buffer {
  return Buffer.from(ed25519ph.sign(message, ed25519Seed(privateKeyDer)));
}

/**
 * Whether `signature` is an Ed25519ph signature (phflag = 1, empty context) of
 * `message` under the Ed25519 public key; strict RFC 8032 decoding, and false
 * (never a throw) for any malformed signature.
 *
 * @example
 * ed25519phVerify(publicKey, sha512Digest, signature)  // true
 */
export function ed25519phVerify(publicKey: KeyObject, message: Buffer, signature: Buffer): boolean {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  if (raw.length !== 32 || signature.length !== 64) return false;
  try {
    return ed25519ph.verify(signature, message, raw, { zip215: false });
  } catch {
    return false;
  }
}

/**
 * An ML-DSA signature over an external μ (FIPS 204 Algorithm 7,
 * ML-DSA.Sign_internal, with μ given: the 64-byte SHAKE256(tr || M′) a
 * caller computed), hedged. The expanded secret key derived from the seed is
 * zeroed before returning; the caller zeroes `privateKeyDer`.
 *
 * @example
 * const signature = mlDsaSignMu('ML_DSA_65', privateKeyDer, mu);  // 3309 bytes
 */
export function mlDsaSignMu(keySpec: MlDsaKeySpec, privateKeyDer: Buffer, mu: Buffer): Buffer {
  if (mu.length !== 64) throw new RangeError('mu must be 64 bytes');
  const dsa = ML_DSA[keySpec];
  const secret = mlDsaSecret(keySpec, privateKeyDer);
  if ('expandedKey' in secret) return Buffer.from(dsa.internal.sign(mu, secret.expandedKey, { externalMu: true }));
  const { secretKey, publicKey } = dsa.keygen(secret.seed);
  try {
    return Buffer.from(dsa.internal.sign(mu, secretKey, { externalMu: true }));
  } finally {
    secretKey.fill(0);
    publicKey.fill(0);
  }
}

/**
 * Whether `signature` is an ML-DSA signature over the external μ under the
 * public key (FIPS 204 Algorithm 8, ML-DSA.Verify_internal, with μ given);
 * false (never a throw) for a malformed signature.
 *
 * @example
 * mlDsaVerifyMu('ML_DSA_65', publicKey, mu, signature)  // true
 */
export function mlDsaVerifyMu(keySpec: MlDsaKeySpec, publicKey: KeyObject, mu: Buffer, signature: Buffer): boolean {
  const dsa = ML_DSA[keySpec];
  const raw = Buffer.from((publicKey.export({ format: 'jwk' }) as { pub?: string }).pub ?? '', 'base64url');
  if (mu.length !== 64 || raw.length !== dsa.lengths.publicKey || signature.length !== dsa.lengths.signature) return false;
  try {
    return dsa.internal.verify(signature, mu, raw, { externalMu: true });
  } catch {
    return false;
  }
}
