import { randomBytes } from 'node:crypto';
import type { RootKey } from './root-key.ts';

/** The AAD that binds wrapped material to its key and version: a row moved to another key fails to unwrap. */
const materialAad = (keyId: string, keyMaterialId: string) => `key-material:${keyId}:${keyMaterialId}`;

/**
 * New backing key material (256 bits from the CSPRNG) and its id: 64 hex
 * characters like AWS's key material ids, random rather than derived from the
 * material so the id reveals nothing about it.
 */
export function generateKeyMaterial(): { keyMaterialId: string; material: Buffer } {
  return { keyMaterialId: randomBytes(32).toString('hex'), material: randomBytes(32) };
}

export function wrapKeyMaterial(rootKey: RootKey, keyId: string, keyMaterialId: string, material: Buffer): Buffer {
  return rootKey.wrap(material, materialAad(keyId, keyMaterialId));
}

export function unwrapKeyMaterial(rootKey: RootKey, keyId: string, keyMaterialId: string, wrapped: Buffer): Buffer {
  return rootKey.unwrap(wrapped, materialAad(keyId, keyMaterialId));
}
