import { constants, privateDecrypt, publicEncrypt } from 'node:crypto';
import {
  refuse,
  RSA_OAEP_MAX_PLAINTEXT_BYTES,
  ENCRYPTION_ALGORITHMS_BY_SPEC,
  type Refusal,
  type KeySpec,
  type RsaKeySpec,
  type EncryptionAlgorithmSpec,
  type RsaOaepAlgorithm,
} from './asymmetric.ts';
import { loadPrivateKey, loadPublicKey, modulusBits, type NodeHash } from './key-pairs.ts';

/**
 * RSA-OAEP Encrypt and Decrypt for RSA key specs with ENCRYPT_DECRYPT usage,
 * within AWS's plaintext limits per spec and algorithm; a ciphertext that does
 * not decrypt is a refusal, never an oracle on why.
 */

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
