import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalKeyPair } from '../../src/crypto/key-pairs.ts';
import { isImportedKeyPairSpec, wrappingRefusal } from '../../src/crypto/import-wrapping.ts';
import { foldKey, type KeyState } from '../../src/domain/key.ts';
import { decideImportKeyMaterial, type ImportRequest } from '../../src/domain/key-decisions.ts';
import { applyDecision, keyCreatedData, recordedKeyEvent } from '../support/key-fixtures.ts';

const NOW = new Date('2026-03-01T09:00:00.000Z');

const pendingImport = (keySpec: string, keyUsage = 'SIGN_VERIFY'): KeyState =>
  foldKey([recordedKeyEvent({ type: 'KeyCreated', data: keyCreatedData({ keySpec, keyUsage, origin: 'EXTERNAL', keyMaterialId: null }) }, 1, NOW)])!;

const request = (over: Partial<ImportRequest> = {}): ImportRequest => ({
  keyMaterialId: 'a'.repeat(64),
  requestedKeyMaterialId: null,
  importType: null,
  expirationModel: null,
  validTo: null,
  keyMaterialDescription: null,
  importTokenId: 'token',
  wrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_256',
  wrappingKeySpec: 'RSA_2048',
  publicKey: 'cHVibGlj',
  ...over,
});

describe("AWS's wrapping table for imported private keys", () => {
  it('RSAES_OAEP never wraps an RSA private key, nor a P-521 one under RSA_2048; RSA_AES_KEY_WRAP always does', () => {
    expect(wrappingRefusal('RSA_4096', 'RSAES_OAEP_SHA_1', 'RSA_4096')).toContain('cannot wrap an RSA private key');
    expect(wrappingRefusal('ECC_NIST_P521', 'RSAES_OAEP_SHA_256', 'RSA_2048')).toContain(
      'RSA_2048 wrapping key cannot directly wrap an ECC_NIST_P521 private key',
    );
    expect(wrappingRefusal('ECC_NIST_P521', 'RSAES_OAEP_SHA_256', 'RSA_3072')).toBeUndefined();
    expect(wrappingRefusal('ECC_NIST_P256', 'RSAES_OAEP_SHA_1', 'RSA_2048')).toBeUndefined();
    for (const spec of ['RSA_2048', 'ECC_NIST_P521', 'SYMMETRIC_DEFAULT', 'HMAC_256'])
      expect(wrappingRefusal(spec, 'RSA_AES_KEY_WRAP_SHA_1', 'RSA_2048')).toBeUndefined();
    expect(['RSA_3072', 'ECC_SECG_P256K1'].every(isImportedKeyPairSpec)).toBe(true);
    expect(['ECC_NIST_EDWARDS25519', 'ML_DSA_44', 'HMAC_256'].some(isImportedKeyPairSpec)).toBe(false);
  });
});

describe('canonicalKeyPair', () => {
  it('keeps one encoding of a key, gives its public key, and refuses a key of another spec', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const r = canonicalKeyPair('ECC_NIST_P384', privateKey.export({ format: 'der', type: 'pkcs8' }));
    expect(r.ok && r.publicKeyDer.equals(publicKey.export({ format: 'der', type: 'spki' }))).toBe(true);
    expect(canonicalKeyPair('ECC_NIST_P256', privateKey.export({ format: 'der', type: 'pkcs8' }))).toMatchObject({ ok: false, reason: 'INVALID_KEY_MATERIAL' });
    expect(canonicalKeyPair('RSA_2048', Buffer.alloc(64, 1))).toMatchObject({ ok: false });
  });
});

describe('importing into an asymmetric key', () => {
  it("records the public key, which the fold makes the key's", () => {
    const key = pendingImport('ECC_NIST_P256');
    const next = applyDecision(key, decideImportKeyMaterial(key, request(), NOW), NOW);
    expect(next).toMatchObject({ keyState: 'Enabled', publicKey: 'cHVibGlj', currentKeyMaterialId: 'a'.repeat(64) });
    expect(next.importedMaterials[0]).toMatchObject({ expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE', validTo: null });
  });

  it('refuses an expiry: asymmetric key material never expires', () => {
    const key = pendingImport('RSA_2048');
    for (const over of [
      { expirationModel: 'KEY_MATERIAL_EXPIRES' as const, validTo: new Date(NOW.getTime() + 86_400_000) },
      { validTo: new Date(NOW.getTime() + 86_400_000) },
    ]) {
      expect(decideImportKeyMaterial(key, request(over), NOW)).toMatchObject({ ok: false, error: { code: 'ValidationException' } });
    }
    const hmac = pendingImport('HMAC_256', 'GENERATE_VERIFY_MAC');
    expect(decideImportKeyMaterial(hmac, request({ publicKey: null, validTo: new Date(NOW.getTime() + 86_400_000) }), NOW)).toMatchObject({ ok: true });
  });
});

describe('the default ExpirationModel', () => {
  it.each(['SYMMETRIC_DEFAULT', 'HMAC_256'])('is KEY_MATERIAL_EXPIRES for a %s key, which then needs a ValidTo (as AWS answers)', (keySpec) => {
    const key = pendingImport(keySpec, keySpec === 'HMAC_256' ? 'GENERATE_VERIFY_MAC' : 'ENCRYPT_DECRYPT');
    expect(decideImportKeyMaterial(key, request({ publicKey: null }), NOW)).toMatchObject({
      ok: false,
      error: { code: 'ValidationException', message: 'A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES' },
    });
    const validTo = new Date(NOW.getTime() + 86_400_000);
    const next = applyDecision(key, decideImportKeyMaterial(key, request({ publicKey: null, validTo }), NOW), NOW);
    expect(next.importedMaterials[0]).toMatchObject({ expirationModel: 'KEY_MATERIAL_EXPIRES', validTo: validTo.toISOString() });
  });
});
