import { WRAPPING_ALGORITHMS, WRAPPING_KEY_SPECS, type WrappingAlgorithm, type WrappingKeySpec } from '../domain/key.ts';
import { constants, createDecipheriv, createHmac, createPrivateKey, privateDecrypt } from 'node:crypto';

/**
 * Key material import (BYOK): the wrapping algorithms of GetParametersForImport
 * and ImportKeyMaterial, as AWS defines them.
 *
 * - RSAES_OAEP_SHA_1 / RSAES_OAEP_SHA_256: the material is encrypted directly
 *   with the wrapping public key (OAEP, MGF1 with the same hash).
 * - RSA_AES_KEY_WRAP_SHA_1 / RSA_AES_KEY_WRAP_SHA_256: an ephemeral AES-256 key
 *   encrypted with RSAES-OAEP (the modulus' length of bytes), followed by the
 *   material wrapped under it with AES Key Wrap with Padding (RFC 5649).
 *
 * RSAES_PKCS1_V1_5 is refused, as AWS refuses it since October 2023; SM2PKE
 * and the SM2 wrapping key exist only in AWS's China Regions.
 */
export { WRAPPING_ALGORITHMS, WRAPPING_KEY_SPECS, type WrappingAlgorithm, type WrappingKeySpec };

/** How long an import token and its wrapping key are valid (AWS: 24 hours). */
export const IMPORT_PARAMETERS_VALIDITY_MS = 24 * 3_600_000;

/** RFC 5649's alternative initial value, the IV of AES Key Wrap with Padding. */
const KWP_IV = Buffer.from('A65959A6', 'hex');

/**
 * Unwraps material a client wrapped with GetParametersForImport's public key;
 * undefined when it does not unwrap (wrong key, algorithm or bytes), without
 * saying why. The caller zeroes the result.
 *
 * @example
 * const material = unwrapImportedMaterial(privateKeyDer, 'RSAES_OAEP_SHA_256', encryptedKeyMaterial);
 */
export function unwrapImportedMaterial(privateKeyDer: Buffer, algorithm: WrappingAlgorithm, encrypted: Buffer): Buffer | undefined {
  const key = createPrivateKey({ key: privateKeyDer, format: 'der', type: 'pkcs8' });
  const oaepHash = algorithm.endsWith('SHA_1') ? 'sha1' : 'sha256';
  const oaep = (data: Buffer) => privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, data);
  try {
    if (algorithm === 'RSAES_OAEP_SHA_1' || algorithm === 'RSAES_OAEP_SHA_256') return oaep(encrypted);
    const modulusBytes = (key.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
    if (encrypted.length <= modulusBytes) return undefined;
    const aesKey = oaep(encrypted.subarray(0, modulusBytes));
    try {
      if (aesKey.length !== 32) return undefined;
      const decipher = createDecipheriv('id-aes256-wrap-pad', aesKey, KWP_IV);
      return Buffer.concat([decipher.update(encrypted.subarray(modulusBytes)), decipher.final()]);
    } finally {
      aesKey.fill(0);
    }
  } catch {
    return undefined;
  }
}

/** The material lengths AWS accepts per key spec, in bytes (HMAC: from the digest length up to the block size). */
const MATERIAL_BYTES: Readonly<Record<string, { min: number; max: number }>> = Object.freeze({
  SYMMETRIC_DEFAULT: { min: 32, max: 32 },
  HMAC_224: { min: 28, max: 64 },
  HMAC_256: { min: 32, max: 64 },
  HMAC_384: { min: 48, max: 128 },
  HMAC_512: { min: 64, max: 128 },
});

/**
 * The asymmetric key specs whose private key keyledger imports (PKCS#8 DER),
 * as AWS does: RSA, NIST ECC and secp256k1, whatever their key usage.
 */
export const IMPORTABLE_KEY_PAIR_SPECS = ['RSA_2048', 'RSA_3072', 'RSA_4096', 'ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ECC_SECG_P256K1'] as const;

/** The key specs whose material keyledger imports. */
export const IMPORTABLE_KEY_SPECS: readonly string[] = [...Object.keys(MATERIAL_BYTES), ...IMPORTABLE_KEY_PAIR_SPECS];

export const isImportedKeyPairSpec = (keySpec: string): keySpec is (typeof IMPORTABLE_KEY_PAIR_SPECS)[number] =>
  (IMPORTABLE_KEY_PAIR_SPECS as readonly string[]).includes(keySpec);

/**
 * Why a wrapping algorithm and wrapping key spec cannot carry a key's
 * material, as AWS's table has it; undefined when they can. RSAES_OAEP
 * encrypts at most the wrapping key's length less twice the hash and two
 * bytes, so it cannot carry an RSA private key at all, nor an ECC_NIST_P521
 * one under an RSA_2048 wrapping key: those take an RSA_AES_KEY_WRAP
 * algorithm.
 *
 * @example
 * wrappingRefusal('RSA_2048', 'RSAES_OAEP_SHA_256', 'RSA_4096') // "... cannot wrap an RSA private key ..."
 * wrappingRefusal('SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_256', 'RSA_2048') // undefined
 */
export function wrappingRefusal(keySpec: string, algorithm: string, wrappingKeySpec: string): string | undefined {
  if (!algorithm.startsWith('RSAES_OAEP')) return undefined;
  const instead = 'Use the RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256 wrapping algorithm.';
  if (keySpec.startsWith('RSA_')) return `The ${algorithm} wrapping algorithm cannot wrap an RSA private key. ${instead}`;
  if (keySpec === 'ECC_NIST_P521' && wrappingKeySpec === 'RSA_2048') {
    return `An RSA_2048 wrapping key cannot directly wrap an ECC_NIST_P521 private key. ${instead} Or choose a longer wrapping key spec.`;
  }
  return undefined;
}

/** Whether `material` has a length AWS accepts for `keySpec`. */
export function fitsKeySpec(keySpec: string, material: Buffer): boolean {
  const bounds = Object.hasOwn(MATERIAL_BYTES, keySpec) ? MATERIAL_BYTES[keySpec] : undefined;
  return bounds !== undefined && material.length >= bounds.min && material.length <= bounds.max;
}

/**
 * The key material id of imported material: an HMAC-SHA256 keyed by the
 * material itself over the key's id. The same material imported into the same
 * key always has the same id, which is how a re-import is checked to be the
 * same material without keeping anything that could decrypt (the id is a
 * PRF output: it reveals nothing of the material, and after deletion it is
 * all that remains).
 *
 * @example
 * importedKeyMaterialId(keyId, material) // 64 hex characters
 */
export function importedKeyMaterialId(keyId: string, material: Buffer): string {
  return createHmac('sha256', material).update(`keyledger-imported-key-material:${keyId}`).digest('hex');
}
