import { randomBytes } from 'node:crypto';
import { type AsymmetricKeySpec } from './asymmetric.ts';
import { generateKeyPair } from './key-pairs.ts';
import { generateHmacKey, HMAC_KEY_BYTES, type HmacKeySpec } from './hmac.ts';
import type { RootKey } from './root-key.ts';

/** The AAD that binds wrapped material to its key and version: a row moved to another key fails to unwrap. */
const materialAad = (keyId: string, keyMaterialId: string) => `key-material:${keyId}:${keyMaterialId}`;

const newKeyMaterialId = () => randomBytes(32).toString('hex');

/**
 * New backing key material (256 bits from the CSPRNG) and its id: 64 hex
 * characters like AWS's key material ids, random rather than derived from the
 * material so the id reveals nothing about it.
 */
export function generateKeyMaterial(): { keyMaterialId: string; material: Buffer } {
  return { keyMaterialId: newKeyMaterialId(), material: randomBytes(32) };
}

/** A key's first material: what is wrapped (`material`), and the public key of a key pair. */
export interface NewKeyMaterial {
  keyMaterialId: string;
  /**
   * The secret to wrap: 32 random bytes (SYMMETRIC_DEFAULT), the HMAC key
   * (HMAC_*), or the private key as PKCS#8 DER (asymmetric specs). The
   * caller zeroes it once wrapped.
   */
  material: Buffer;
  /** DER SubjectPublicKeyInfo of an asymmetric key; undefined otherwise. */
  publicKey?: Buffer;
}

/**
 * New material for a key of `keySpec`. Key pairs are generated off the event
 * loop (an RSA_4096 key takes a second or more), so a CreateKey does not
 * stall the requests around it.
 *
 * @example
 * const { keyMaterialId, material, publicKey } = await generateKeyMaterialFor('ECC_NIST_P256');
 * try { wrapKeyMaterial(rootKey, keyId, keyMaterialId, material) } finally { material.fill(0) }
 */
export async function generateKeyMaterialFor(keySpec: string): Promise<NewKeyMaterial> {
  if (keySpec === 'SYMMETRIC_DEFAULT') return generateKeyMaterial();
  if (Object.hasOwn(HMAC_KEY_BYTES, keySpec)) return { keyMaterialId: newKeyMaterialId(), material: generateHmacKey(keySpec as HmacKeySpec) };
  // Throws UnsupportedKeySpecError for a spec that is not a key pair here (SM2).
  const { privateKeyDer, publicKeyDer } = await generateKeyPair(keySpec as AsymmetricKeySpec);
  return { keyMaterialId: newKeyMaterialId(), material: privateKeyDer, publicKey: publicKeyDer };
}

export function wrapKeyMaterial(rootKey: RootKey, keyId: string, keyMaterialId: string, material: Buffer): Buffer {
  return rootKey.wrap(material, materialAad(keyId, keyMaterialId));
}

export function unwrapKeyMaterial(rootKey: RootKey, keyId: string, keyMaterialId: string, wrapped: Buffer): Buffer {
  return rootKey.unwrap(wrapped, materialAad(keyId, keyMaterialId));
}
