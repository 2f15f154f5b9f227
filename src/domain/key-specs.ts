import { KmsError } from './errors.ts';

/**
 * AWS's key specs, the key usages each allows, and the algorithms a key of a
 * spec and usage reports (KeyMetadata, GetPublicKey). Pure tables: the service
 * checks CreateKey against them, the crypto layer generates material by them.
 */

export const KEY_USAGES = ['SIGN_VERIFY', 'ENCRYPT_DECRYPT', 'GENERATE_VERIFY_MAC', 'KEY_AGREEMENT'] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];

/** AWS's KeySpec enum, in the model's order. */
export const KEY_SPECS = [
  'RSA_2048',
  'RSA_3072',
  'RSA_4096',
  'ECC_NIST_P256',
  'ECC_NIST_P384',
  'ECC_NIST_P521',
  'ECC_SECG_P256K1',
  'SYMMETRIC_DEFAULT',
  'HMAC_224',
  'HMAC_256',
  'HMAC_384',
  'HMAC_512',
  'SM2',
  'ML_DSA_44',
  'ML_DSA_65',
  'ML_DSA_87',
  'ECC_NIST_EDWARDS25519',
] as const;
export type KeySpecName = (typeof KEY_SPECS)[number];

/**
 * The usages AWS allows per key spec (CreateKey's KeyUsage), outside the China
 * Regions: SM2 has none here (see sm2Refused).
 */
export const USAGES_BY_KEY_SPEC: Readonly<Record<KeySpecName, readonly KeyUsage[]>> = {
  SYMMETRIC_DEFAULT: ['ENCRYPT_DECRYPT'],
  RSA_2048: ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'],
  RSA_3072: ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'],
  RSA_4096: ['ENCRYPT_DECRYPT', 'SIGN_VERIFY'],
  ECC_NIST_P256: ['SIGN_VERIFY', 'KEY_AGREEMENT'],
  ECC_NIST_P384: ['SIGN_VERIFY', 'KEY_AGREEMENT'],
  ECC_NIST_P521: ['SIGN_VERIFY', 'KEY_AGREEMENT'],
  ECC_SECG_P256K1: ['SIGN_VERIFY'],
  ECC_NIST_EDWARDS25519: ['SIGN_VERIFY'],
  ML_DSA_44: ['SIGN_VERIFY'],
  ML_DSA_65: ['SIGN_VERIFY'],
  ML_DSA_87: ['SIGN_VERIFY'],
  HMAC_224: ['GENERATE_VERIFY_MAC'],
  HMAC_256: ['GENERATE_VERIFY_MAC'],
  HMAC_384: ['GENERATE_VERIFY_MAC'],
  HMAC_512: ['GENERATE_VERIFY_MAC'],
  SM2: [],
};

/**
 * Whether a key of this spec has a key pair (and so a public key).
 *
 * @example
 * isAsymmetricKeySpec('ECC_NIST_P256')     // true
 * isAsymmetricKeySpec('SYMMETRIC_DEFAULT') // false
 */
export const isAsymmetricKeySpec = (keySpec: string): boolean => /^(RSA_|ECC_|ML_DSA_|SM2$)/.test(keySpec);

/**
 * Whether a key of this spec is an HMAC key.
 *
 * @example
 * isHmacKeySpec('HMAC_256') // true
 * isHmacKeySpec('RSA_2048') // false
 */
export const isHmacKeySpec = (keySpec: string): boolean => keySpec.startsWith('HMAC_');

/** AWS's refusal of CreateKey without KeyUsage for any spec but SYMMETRIC_DEFAULT, whatever the spec. */
const MISSING_KEY_USAGE = 'You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.';

/**
 * The KeyUsage CreateKey records for a key spec when the caller gave none, or
 * the refusal AWS answers: only a symmetric encryption key may leave KeyUsage
 * out; every other spec (asymmetric and HMAC) must name one it allows.
 *
 * @example
 * resolveKeyUsage('RSA_2048', 'SIGN_VERIFY')      // { ok: true, keyUsage: 'SIGN_VERIFY' }
 * resolveKeyUsage('HMAC_256', 'ENCRYPT_DECRYPT')
 * // { ok: false, error: ValidationException "KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec HMAC_256" }
 */
export function resolveKeyUsage(keySpec: KeySpecName, keyUsage: string | null | undefined): { ok: true; keyUsage: KeyUsage } | { ok: false; error: KmsError } {
  const allowed: readonly string[] = USAGES_BY_KEY_SPEC[keySpec] ?? [];
  if (keyUsage == null) {
    if (keySpec === 'SYMMETRIC_DEFAULT') return { ok: true, keyUsage: 'ENCRYPT_DECRYPT' };
    return { ok: false, error: new KmsError('ValidationException', MISSING_KEY_USAGE) };
  }
  if (!allowed.includes(keyUsage)) {
    return { ok: false, error: new KmsError('ValidationException', `KeyUsage ${keyUsage} is not compatible with KeySpec ${keySpec}`) };
  }
  return { ok: true, keyUsage: keyUsage as KeyUsage };
}

/**
 * SM2 keys exist only in AWS's China Regions; elsewhere AWS refuses the spec.
 * keyledger's partition is `aws`, so it refuses it likewise.
 *
 * @example
 * sm2Refused() // KmsError UnsupportedOperationException 'KeySpec SM2 is not supported in this region.'
 */
export const sm2Refused = (): KmsError => new KmsError('UnsupportedOperationException', 'KeySpec SM2 is not supported in this region.');

/** The algorithm lists of a key, as KeyMetadata and GetPublicKey carry them: only the lists that apply are present. */
export interface KeyAlgorithms {
  encryptionAlgorithms?: string[];
  signingAlgorithms?: string[];
  macAlgorithms?: string[];
  keyAgreementAlgorithms?: string[];
}

/** RSA signing algorithms in the order AWS lists them (DescribeKey, GetPublicKey). */
const RSA_SIGNING = [
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
];

/** The signing algorithms per SIGN_VERIFY key spec. */
export const SIGNING_ALGORITHMS_BY_KEY_SPEC: Readonly<Partial<Record<KeySpecName, readonly string[]>>> = {
  RSA_2048: RSA_SIGNING,
  RSA_3072: RSA_SIGNING,
  RSA_4096: RSA_SIGNING,
  ECC_NIST_P256: ['ECDSA_SHA_256'],
  ECC_NIST_P384: ['ECDSA_SHA_384'],
  ECC_NIST_P521: ['ECDSA_SHA_512'],
  ECC_SECG_P256K1: ['ECDSA_SHA_256'],
  ECC_NIST_EDWARDS25519: ['ED25519_SHA_512', 'ED25519_PH_SHA_512'],
  ML_DSA_44: ['ML_DSA_SHAKE_256'],
  ML_DSA_65: ['ML_DSA_SHAKE_256'],
  ML_DSA_87: ['ML_DSA_SHAKE_256'],
};

/**
 * What AWS reports for a key of `keySpec` and `keyUsage`.
 *
 * @example
 * keyAlgorithms('ECC_NIST_P384', 'SIGN_VERIFY')   // { signingAlgorithms: ['ECDSA_SHA_384'] }
 * keyAlgorithms('HMAC_512', 'GENERATE_VERIFY_MAC') // { macAlgorithms: ['HMAC_SHA_512'] }
 */
export function keyAlgorithms(keySpec: string, keyUsage: string): KeyAlgorithms {
  switch (keyUsage) {
    case 'ENCRYPT_DECRYPT':
      return {
        encryptionAlgorithms:
          keySpec === 'SYMMETRIC_DEFAULT' ? ['SYMMETRIC_DEFAULT'] : keySpec === 'SM2' ? ['SM2PKE'] : ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'],
      };
    case 'SIGN_VERIFY':
      return { signingAlgorithms: [...(SIGNING_ALGORITHMS_BY_KEY_SPEC[keySpec as KeySpecName] ?? (keySpec === 'SM2' ? ['SM2DSA'] : []))] };
    case 'GENERATE_VERIFY_MAC':
      return { macAlgorithms: [`HMAC_SHA_${keySpec.slice('HMAC_'.length)}`] };
    case 'KEY_AGREEMENT':
      return { keyAgreementAlgorithms: ['ECDH'] };
    default:
      return {};
  }
}
