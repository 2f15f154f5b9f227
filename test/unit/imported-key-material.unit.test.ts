import { describe, expect, it } from 'vitest';
import { foldKey, permanentKeyMaterialImported, type KeyState } from '../../src/domain/key.ts';
import {
  decideCancelKeyDeletion,
  decideDeleteImportedKeyMaterial,
  decideExpireKeyMaterial,
  decideImportKeyMaterial,
  decideRotateKeyOnDemand,
  decideScheduleKeyDeletion,
  type ImportRequest,
} from '../../src/domain/key-decisions.ts';
import { applyDecision, keyCreatedData, recordedKeyEvent } from '../support/key-fixtures.ts';

/**
 * The key state of a symmetric key with imported material, folded from its
 * decisions. AWS: "Deletion or expiration of any permanently associated key
 * material changes the key state to Pending import" (its current and NON_CURRENT
 * versions, not one PENDING_ROTATION), and a key that has all of them again is
 * usable.
 */

const NOW = new Date('2026-03-01T09:00:00.000Z');
const LATER = new Date('2026-03-20T09:00:00.000Z');
const [A, B, C] = ['a', 'b', 'c'].map((c) => c.repeat(64)) as [string, string, string];

const request = (keyMaterialId: string, over: Partial<ImportRequest> = {}): ImportRequest => ({
  keyMaterialId,
  requestedKeyMaterialId: null,
  importType: null,
  expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
  validTo: null,
  keyMaterialDescription: null,
  importTokenId: 'token',
  wrappingAlgorithm: 'RSAES_OAEP_SHA_256',
  wrappingKeySpec: 'RSA_2048',
  publicKey: null,
  ...over,
});

const imported = (key: KeyState, id: string, over: Partial<ImportRequest> = {}) =>
  applyDecision(key, decideImportKeyMaterial(key, request(id, over), NOW), NOW);

/** A key whose material A was rotated out for B: A NON_CURRENT, B CURRENT. */
function rotatedKey(over: { validToOfA?: Date } = {}): KeyState {
  let key = foldKey([recordedKeyEvent({ type: 'KeyCreated', data: keyCreatedData({ origin: 'EXTERNAL', keyMaterialId: null }) }, 1, NOW)])!;
  key = imported(key, A, over.validToOfA ? { expirationModel: 'KEY_MATERIAL_EXPIRES', validTo: over.validToOfA } : {});
  key = imported(key, B, { importType: 'NEW_KEY_MATERIAL' });
  return applyDecision(key, decideRotateKeyOnDemand(key, ''), NOW);
}

describe('imported key material and the key state', () => {
  it('deleting the NON_CURRENT material makes the key PendingImport; importing the current one alone does not bring it back', () => {
    const key = rotatedKey();
    expect([key.keyState, key.currentKeyMaterialId, key.keyMaterialIds]).toEqual(['Enabled', B, [A, B]]);
    const deleted = applyDecision(key, decideDeleteImportedKeyMaterial(key, A), NOW);
    expect(deleted.keyState).toBe('PendingImport');
    expect(permanentKeyMaterialImported(deleted)).toBe(false);

    const both = applyDecision(deleted, decideDeleteImportedKeyMaterial(deleted, B), NOW);
    const currentOnly = imported(both, B, { importType: 'EXISTING_KEY_MATERIAL' });
    expect(currentOnly.keyState).toBe('PendingImport');
    const whole = imported(currentOnly, A, { importType: 'EXISTING_KEY_MATERIAL', requestedKeyMaterialId: A });
    expect([whole.keyState, whole.currentKeyMaterialId]).toEqual(['Enabled', B]);
  });

  it('deleting material PENDING_ROTATION leaves the key as it was', () => {
    const key = rotatedKey();
    const waiting = imported(key, C, { importType: 'NEW_KEY_MATERIAL' });
    const deleted = applyDecision(waiting, decideDeleteImportedKeyMaterial(waiting, C), NOW);
    expect(deleted.keyState).toBe('Enabled');
    expect(deleted.importedMaterials.find((m) => m.keyMaterialId === C)?.importState).toBe('PENDING_IMPORT');
  });

  it('the expiry of NON_CURRENT material makes the key PendingImport, and a cancelled deletion finds it so', () => {
    const validTo = new Date(NOW.getTime() + 5 * 86_400_000);
    const expired = (key: KeyState) => applyDecision(key, decideExpireKeyMaterial(key, LATER), LATER);
    expect(expired(rotatedKey({ validToOfA: validTo })).keyState).toBe('PendingImport');

    const key = rotatedKey({ validToOfA: validTo });
    const pending = applyDecision(key, decideScheduleKeyDeletion(key, 30, NOW), NOW);
    const expiredWhilePending = expired(pending);
    expect(expiredWhilePending.keyState).toBe('PendingDeletion');
    expect(applyDecision(expiredWhilePending, decideCancelKeyDeletion(expiredWhilePending), LATER).keyState).toBe('PendingImport');
  });

  it('new material for a rotation is refused while an earlier version is missing', () => {
    const key = rotatedKey();
    const deleted = applyDecision(key, decideDeleteImportedKeyMaterial(key, A), NOW);
    expect(decideImportKeyMaterial(deleted, request(C, { importType: 'NEW_KEY_MATERIAL' }), NOW)).toMatchObject({
      ok: false,
      error: { code: 'KMSInvalidStateException' },
    });
  });
});
