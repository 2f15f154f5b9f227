import { isAwsManagedKeyChange } from './aws-managed-key.ts';
import { accept, KmsError, reject, type Decision } from './errors.ts';
import { isAsymmetricKeySpec } from './key-specs.ts';
import type { Tag } from './tags.ts';
import {
  permanentKeyMaterialImported,
  type ExpirationModel,
  type ImportType,
  type ImportedMaterial,
  type KeyCreatedData,
  type KeyEvent,
  type KeyState,
} from './key.ts';
import { checkKeyState, type KeyOperation } from './key-state-rules.ts';

/**
 * The decisions of a key's stream: for each state-changing KMS operation, a
 * pure `decide…(key, command) → Decision<KeyEvent>` that checks the key's
 * state (key-state-rules.ts) and AWS's rules, and names the events to append,
 * or AWS's error. The service appends them with applyDecision; key.ts folds
 * them back into a KeyState.
 */

// ---- decisions (commands are already validated for shape by the service) ----

const withState = (operation: KeyOperation, key: KeyState, decide: () => Decision<KeyEvent>): Decision<KeyEvent> => {
  if (isAwsManagedKeyChange(operation, key))
    return reject('UnsupportedOperationException', `${key.arn} is an AWS managed key. Its settings are managed by AWS and cannot be changed.`);
  const refused = checkKeyState(operation, key);
  return refused ? { ok: false, error: refused } : decide();
};

/** CreateKey's command: the new key's identity, shape, policy and tags, all checked by the service (key manager and multi-Region are fixed). */
export type CreateKeyCommand = Omit<KeyCreatedData, 'keyManager' | 'multiRegion'>;

/**
 * CreateKey: a new customer managed, single-Region key. `existing` is the fold
 * of the new key's stream, null for a key id never used.
 *
 * @example
 * decideCreateKey(null, { keyId, accountId, arn, description: '', keyUsage: 'ENCRYPT_DECRYPT', keySpec: 'SYMMETRIC_DEFAULT',
 *   origin: 'AWS_KMS', policy, tags: [], keyMaterialId }) // accepts one KeyCreated
 */
export function decideCreateKey(existing: KeyState | null, command: CreateKeyCommand): Decision<KeyEvent> {
  if (existing) return reject('AlreadyExistsException', `${command.arn} already exists.`);
  const { publicKey, ...rest } = command;
  return accept({ type: 'KeyCreated', data: { ...rest, keyManager: 'CUSTOMER', multiRegion: false, ...(publicKey ? { publicKey } : {}) } });
}

/**
 * UpdateKeyDescription: the new description, or no event when the key already has it, so repeating
 * the call adds nothing to the stream. Refused for a key pending deletion.
 *
 * @example
 * decideUpdateKeyDescription(key, 'orders service') // accepts KeyDescriptionUpdated { description: 'orders service' }
 * decideUpdateKeyDescription(key, key.description)  // accepts nothing
 */
export const decideUpdateKeyDescription = (key: KeyState, description: string): Decision<KeyEvent> =>
  withState('UpdateKeyDescription', key, () => (description === key.description ? accept() : accept({ type: 'KeyDescriptionUpdated', data: { description } })));

/**
 * EnableKey: Disabled becomes Enabled; an enabled key stays as it is; PendingDeletion (or PendingImport) is refused.
 *
 * @example
 * decideEnableKey(disabledKey) // accepts KeyEnabled
 * decideEnableKey(enabledKey)  // accepts nothing: already enabled
 * decideEnableKey(pendingKey)  // refuses: KMSInvalidStateException
 */
export const decideEnableKey = (key: KeyState): Decision<KeyEvent> =>
  withState('EnableKey', key, () => (key.keyState === 'Enabled' ? accept() : accept({ type: 'KeyEnabled', data: {} })));

/**
 * DisableKey: Enabled becomes Disabled; a disabled key stays as it is; PendingDeletion (or PendingImport) is refused.
 *
 * @example
 * decideDisableKey(enabledKey)  // accepts KeyDisabled
 * decideDisableKey(disabledKey) // accepts nothing: already disabled
 * decideDisableKey(pendingKey)  // refuses: KMSInvalidStateException
 */
export const decideDisableKey = (key: KeyState): Decision<KeyEvent> =>
  withState('DisableKey', key, () => (key.keyState === 'Disabled' ? accept() : accept({ type: 'KeyDisabled', data: {} })));

export const MAX_TAGS_PER_KEY = 50;

/**
 * TagResource: adds tags and overwrites values; the event holds only the tags that change. Refused when
 * the key would have more than MAX_TAGS_PER_KEY distinct tag keys.
 *
 * @example
 * // key.tags: [{ tagKey: 'team', tagValue: 'payments' }]
 * decideTagResource(key, [{ tagKey: 'team', tagValue: 'payments' }, { tagKey: 'env', tagValue: 'prod' }])
 * // accepts KeyTagged { tags: [{ tagKey: 'env', tagValue: 'prod' }] }
 */
export const decideTagResource = (key: KeyState, tags: Tag[]): Decision<KeyEvent> =>
  withState('TagResource', key, () => {
    const keys = new Set([...key.tags.map((t) => t.tagKey), ...tags.map((t) => t.tagKey)]);
    if (keys.size > MAX_TAGS_PER_KEY) {
      return reject('LimitExceededException', `A KMS key can have at most ${MAX_TAGS_PER_KEY} tags.`);
    }
    const current = new Map(key.tags.map((t) => [t.tagKey, t.tagValue]));
    const changed = tags.filter((t) => current.get(t.tagKey) !== t.tagValue);
    return changed.length === 0 ? accept() : accept({ type: 'KeyTagged', data: { tags: changed } });
  });

/**
 * UntagResource: removes the named tag keys the key has; keys it does not have are ignored, so
 * removing only absent tags decides no event.
 *
 * @example
 * // key.tags: [{ tagKey: 'team', tagValue: 'payments' }]
 * decideUntagResource(key, ['team', 'absent']) // accepts KeyUntagged { tagKeys: ['team'] }
 * decideUntagResource(key, ['absent'])         // accepts nothing
 */
export const decideUntagResource = (key: KeyState, tagKeys: string[]): Decision<KeyEvent> =>
  withState('UntagResource', key, () => {
    const present = new Set(key.tags.map((t) => t.tagKey));
    const removed = [...new Set(tagKeys)].filter((k) => present.has(k));
    return removed.length === 0 ? accept() : accept({ type: 'KeyUntagged', data: { tagKeys: removed } });
  });

/**
 * ScheduleKeyDeletion: PendingDeletion for `pendingWindowInDays` (checked 7-30 by the service) from `now`.
 *
 * @example
 * decideScheduleKeyDeletion(key, 7, now) // accepts KeyDeletionScheduled, the deletion date 7 days after now
 */
export const decideScheduleKeyDeletion = (key: KeyState, pendingWindowInDays: number, now: Date): Decision<KeyEvent> =>
  withState('ScheduleKeyDeletion', key, () =>
    accept({
      type: 'KeyDeletionScheduled',
      data: { deletionDate: new Date(now.getTime() + pendingWindowInDays * 86_400_000).toISOString(), pendingWindowInDays },
    }),
  );

/**
 * PutKeyPolicy (already validated and checked for lockout by the service).
 *
 * @example
 * decidePutKeyPolicy(key, newPolicy)  // accepts KeyPolicyPut { policy: newPolicy }
 * decidePutKeyPolicy(key, key.policy) // accepts nothing: the same text
 */
export const decidePutKeyPolicy = (key: KeyState, policy: string): Decision<KeyEvent> =>
  withState('PutKeyPolicy', key, () => (policy === key.policy ? accept() : accept({ type: 'KeyPolicyPut', data: { policy } })));

/**
 * CancelKeyDeletion: a key pending deletion leaves that state (Disabled, or PendingImport for imported
 * material that expired meanwhile: see evolveKey); a key in any other state is refused.
 *
 * @example
 * decideCancelKeyDeletion(pendingKey) // accepts KeyDeletionCanceled
 * decideCancelKeyDeletion(enabledKey) // refuses: KMSInvalidStateException
 */
export const decideCancelKeyDeletion = (key: KeyState): Decision<KeyEvent> =>
  withState('CancelKeyDeletion', key, () => accept({ type: 'KeyDeletionCanceled', data: {} }));

// ---- rotation and deletion ----

export const MAX_ON_DEMAND_ROTATIONS = 25;
export const DAY_MS = 86_400_000;

const addDays = (at: Date, days: number) => new Date(at.getTime() + days * DAY_MS).toISOString();

/**
 * Rotation applies to symmetric encryption keys whose material KMS generated
 * (AWS: UnsupportedOperationException otherwise). Asymmetric and HMAC keys
 * are refused first, whatever their origin.
 */
function rotationUnsupported(
  key: KeyState,
  notSymmetricMessage = 'You cannot perform this operation on a non-symmetric key or a key with non-ENCRYPT_DECRYPT key usage.',
): Decision<KeyEvent> | undefined {
  if (key.keySpec !== 'SYMMETRIC_DEFAULT' || key.keyUsage !== 'ENCRYPT_DECRYPT') return reject('UnsupportedOperationException', notSymmetricMessage);
  if (key.origin !== 'AWS_KMS') {
    return reject('UnsupportedOperationException', `${key.arn} origin is ${key.origin} which is not valid for this operation.`);
  }
  return undefined;
}

/**
 * EnableKeyRotation: the first automatic rotation is one period from now; enabling again with another period reschedules.
 *
 * @example
 * decideEnableKeyRotation(key, 180, now)     // accepts KeyRotationEnabled { rotationPeriodInDays: 180, nextRotationDate: 180 days after now }
 * decideEnableKeyRotation(hmacKey, 365, now) // refuses: UnsupportedOperationException
 */
export const decideEnableKeyRotation = (key: KeyState, rotationPeriodInDays: number, now: Date): Decision<KeyEvent> =>
  withState('EnableKeyRotation', key, () => {
    const unsupported = rotationUnsupported(key);
    if (unsupported) return unsupported;
    if (key.rotationEnabled && key.rotationPeriodInDays === rotationPeriodInDays) return accept();
    return accept({ type: 'KeyRotationEnabled', data: { rotationPeriodInDays, nextRotationDate: addDays(now, rotationPeriodInDays) } });
  });

/**
 * DisableKeyRotation: automatic rotation off, no event when it already is; a key that cannot rotate
 * (not symmetric, or material not generated by KMS) is refused as by EnableKeyRotation.
 *
 * @example
 * decideDisableKeyRotation(rotatingKey) // accepts KeyRotationDisabled
 * decideDisableKeyRotation(key)         // accepts nothing when rotation is off
 */
export const decideDisableKeyRotation = (key: KeyState): Decision<KeyEvent> =>
  withState('DisableKeyRotation', key, () => {
    const unsupported = rotationUnsupported(key);
    if (unsupported) return unsupported;
    return key.rotationEnabled ? accept({ type: 'KeyRotationDisabled', data: {} }) : accept();
  });

/**
 * RotateKeyOnDemand: new key material now, at most 25 times per key; the
 * automatic schedule is left as it is. A symmetric key with imported material
 * (Origin EXTERNAL) rotates to the material imported with NEW_KEY_MATERIAL
 * and waiting as PENDING_ROTATION, as AWS allows; `newKeyMaterialId` is not
 * used for it. AWS refuses another key spec or usage without a message, and
 * words the limit as below (both as real AWS answered them).
 *
 * @example
 * decideRotateKeyOnDemand(key, generateKeyMaterial().keyMaterialId)
 * // accepts KeyRotated { keyMaterialId, rotationType: 'ON_DEMAND', nextRotationDate: the key's, unchanged }; after 25: refuses LimitExceededException
 */
export const decideRotateKeyOnDemand = (key: KeyState, newKeyMaterialId: string): Decision<KeyEvent> =>
  withState('RotateKeyOnDemand', key, () => {
    const external = key.origin === 'EXTERNAL' && key.keySpec === 'SYMMETRIC_DEFAULT' && key.keyUsage === 'ENCRYPT_DECRYPT';
    const unsupported = external ? undefined : rotationUnsupported(key, '');
    if (unsupported) return unsupported;
    if (key.onDemandRotations >= MAX_ON_DEMAND_ROTATIONS) {
      return reject(
        'LimitExceededException',
        `The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: ${key.arn}`,
      );
    }
    let keyMaterialId = newKeyMaterialId;
    if (external) {
      const pending = pendingRotationMaterial(key);
      if (!pending) {
        return reject(
          'KMSInvalidStateException',
          `${key.arn} has no key material pending rotation. Import new key material with ImportType NEW_KEY_MATERIAL first.`,
        );
      }
      keyMaterialId = pending.keyMaterialId;
    }
    return accept({
      type: 'KeyRotated',
      data: { keyMaterialId, rotationType: 'ON_DEMAND', nextRotationDate: key.nextRotationDate?.toISOString() ?? null },
    });
  });

// ---- imported key material (Origin EXTERNAL) ----

/** AWS: ValidTo at most 365 days ahead. */
export const MAX_IMPORT_VALIDITY_DAYS = 365;

/**
 * Imported material waiting for RotateKeyOnDemand (imported with NEW_KEY_MATERIAL into a key that had material).
 *
 * @example
 * pendingRotationMaterial(externalKey) // the ImportedMaterial imported with NEW_KEY_MATERIAL, or undefined when none waits
 */
export const pendingRotationMaterial = (key: KeyState): ImportedMaterial | undefined =>
  key.importedMaterials.find((m) => m.importState === 'IMPORTED' && !key.keyMaterialIds.includes(m.keyMaterialId));

/**
 * AWS's KeyMaterialState of one material version.
 *
 * @example
 * keyMaterialState(key, key.currentKeyMaterialId!) // 'CURRENT'
 * keyMaterialState(key, key.keyMaterialIds[0]!)    // 'NON_CURRENT' once the key has rotated
 */
export function keyMaterialState(key: KeyState, keyMaterialId: string): 'CURRENT' | 'NON_CURRENT' | 'PENDING_ROTATION' {
  if (keyMaterialId === key.currentKeyMaterialId) return 'CURRENT';
  return key.keyMaterialIds.includes(keyMaterialId) ? 'NON_CURRENT' : 'PENDING_ROTATION';
}

/**
 * The imported-material operations apply to keys of Origin EXTERNAL only (AWS: UnsupportedOperationException).
 *
 * @example
 * externalOnly(externalKey) // undefined
 * externalOnly(awsKmsKey)   // KmsError UnsupportedOperationException
 */
export function externalOnly(key: Pick<KeyState, 'arn' | 'origin'>): KmsError | undefined {
  return key.origin === 'EXTERNAL'
    ? undefined
    : new KmsError('UnsupportedOperationException', `${key.arn} origin is ${key.origin} which is not valid for this operation.`);
}

export interface ImportRequest {
  /** Derived from the unwrapped material (importedKeyMaterialId). */
  keyMaterialId: string;
  /** The KeyMaterialId the caller named, if any. */
  requestedKeyMaterialId: string | null;
  importType: ImportType | null;
  expirationModel: ExpirationModel | null;
  validTo: Date | null;
  keyMaterialDescription: string | null;
  importTokenId: string;
  wrappingAlgorithm: string;
  wrappingKeySpec: string;
  /** An imported private key's public key (DER SPKI, base64); null for symmetric and HMAC material. */
  publicKey: string | null;
}

/**
 * ImportKeyMaterial, once the material is unwrapped and its id derived:
 * - the first import (NEW_KEY_MATERIAL, the default for a key that never had
 *   material) makes it current and the key Enabled;
 * - EXISTING_KEY_MATERIAL (the default afterwards) accepts only material the
 *   key already had, by its id: the same bytes (IncorrectKeyMaterialException
 *   otherwise), e.g. after DeleteImportedKeyMaterial or expiry;
 * - NEW_KEY_MATERIAL into a key that has material imports a version for
 *   on-demand rotation (symmetric encryption keys only, as AWS), at most one
 *   waiting at a time.
 * ExpirationModel defaults to KEY_MATERIAL_EXPIRES, as in AWS (which refuses
 * ImportKeyMaterial without either parameter for want of a ValidTo), except for
 * an asymmetric key, whose material never expires; ValidTo is required with
 * KEY_MATERIAL_EXPIRES, refused with KEY_MATERIAL_DOES_NOT_EXPIRE, and must lie
 * in the next 365 days.
 *
 * @example
 * decideImportKeyMaterial(pendingImportKey, { keyMaterialId, requestedKeyMaterialId: null, importType: null, ... }, now)
 * // { ok: true, events: [{ type: 'KeyMaterialImported', ... }] }
 */
export function decideImportKeyMaterial(key: KeyState, request: ImportRequest, now: Date): Decision<KeyEvent> {
  return withState('ImportKeyMaterial', key, () => {
    const notExternal = externalOnly(key);
    if (notExternal) return { ok: false, error: notExternal };
    const expirationModel = request.expirationModel ?? (isAsymmetricKeySpec(key.keySpec) ? 'KEY_MATERIAL_DOES_NOT_EXPIRE' : 'KEY_MATERIAL_EXPIRES');
    if (isAsymmetricKeySpec(key.keySpec) && (expirationModel === 'KEY_MATERIAL_EXPIRES' || request.validTo)) {
      return reject(
        'ValidationException',
        `The key material of an asymmetric KMS key cannot expire: ${key.keySpec} key material ` +
          `must be imported with ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE and no ValidTo.`,
      );
    }
    if (expirationModel === 'KEY_MATERIAL_EXPIRES') {
      if (!request.validTo) return reject('ValidationException', 'A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES');
      if (request.validTo <= now) return reject('ValidationException', 'ValidTo must be a date in the future.');
      if (request.validTo.getTime() > now.getTime() + MAX_IMPORT_VALIDITY_DAYS * DAY_MS) {
        return reject('ValidationException', `ValidTo must be no more than ${MAX_IMPORT_VALIDITY_DAYS} days in the future.`);
      }
    } else if (request.validTo) {
      return reject('ValidationException', 'A ValidTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.');
    }
    const known = key.importedMaterials.find((m) => m.keyMaterialId === request.keyMaterialId);
    const importType = request.importType ?? (key.importedMaterials.length === 0 ? 'NEW_KEY_MATERIAL' : 'EXISTING_KEY_MATERIAL');
    if (importType === 'EXISTING_KEY_MATERIAL') {
      if (key.importedMaterials.length === 0) {
        return reject(
          'ValidationException',
          'ImportType EXISTING_KEY_MATERIAL is valid only for a key that has had key material imported. Use NEW_KEY_MATERIAL.',
        );
      }
      const named = request.requestedKeyMaterialId;
      if (named !== null && !key.importedMaterials.some((m) => m.keyMaterialId === named)) {
        return reject('NotFoundException', `Key material ${named} does not exist for ${key.arn}.`);
      }
      if (!known || (named !== null && named !== request.keyMaterialId)) {
        return reject(
          'IncorrectKeyMaterialException',
          'The key material in the request is different from the key material previously imported into this KMS key.',
        );
      }
    } else {
      if (request.requestedKeyMaterialId !== null) {
        return reject('ValidationException', 'KeyMaterialId is valid only with ImportType EXISTING_KEY_MATERIAL.');
      }
      if (known)
        return reject(
          'IncorrectKeyMaterialException',
          'This key material was already imported into this KMS key. Use ImportType EXISTING_KEY_MATERIAL to import it again.',
        );
      if (key.importedMaterials.length > 0) {
        if (key.keySpec !== 'SYMMETRIC_DEFAULT') {
          return reject(
            'UnsupportedOperationException',
            `${key.arn} already has key material. Only symmetric encryption keys can have new key material imported for on-demand rotation.`,
          );
        }
        if (pendingRotationMaterial(key)) {
          return reject(
            'KMSInvalidStateException',
            `${key.arn} already has key material pending rotation. Rotate the key (RotateKeyOnDemand) or delete that material first.`,
          );
        }
        if (!permanentKeyMaterialImported(key)) {
          return reject('KMSInvalidStateException', `${key.arn} is pending import: import its key material again before importing new key material.`);
        }
      }
    }
    return accept({
      type: 'KeyMaterialImported',
      data: {
        keyMaterialId: request.keyMaterialId,
        importType,
        expirationModel,
        validTo: expirationModel === 'KEY_MATERIAL_EXPIRES' ? request.validTo!.toISOString() : null,
        keyMaterialDescription: request.keyMaterialDescription,
        importTokenId: request.importTokenId,
        wrappingAlgorithm: request.wrappingAlgorithm,
        wrappingKeySpec: request.wrappingKeySpec,
        ...(request.publicKey === null ? {} : { publicKey: request.publicKey }),
      },
    });
  });
}

/**
 * DeleteImportedKeyMaterial: the named version (default: the current one) is
 * deleted. Deleting the current version puts the key in PendingImport; its
 * ciphertexts stop decrypting until the same material is imported again.
 *
 * @example
 * decideDeleteImportedKeyMaterial(externalKey, null) // accepts KeyMaterialDeleted { keyMaterialId: the current one, reason: 'DELETED' }
 * decideDeleteImportedKeyMaterial(awsKmsKey, null)   // refuses: UnsupportedOperationException
 */
export function decideDeleteImportedKeyMaterial(key: KeyState, keyMaterialId: string | null): Decision<KeyEvent> {
  return withState('DeleteImportedKeyMaterial', key, () => {
    const notExternal = externalOnly(key);
    if (notExternal) return { ok: false, error: notExternal };
    const id = keyMaterialId ?? key.currentKeyMaterialId;
    const material = key.importedMaterials.find((m) => m.keyMaterialId === id);
    if (!material) {
      if (id === null) return reject('KMSInvalidStateException', `${key.arn} is pending import.`);
      return reject('NotFoundException', `Key material ${id} does not exist for ${key.arn}.`);
    }
    if (material.importState !== 'IMPORTED')
      return reject('KMSInvalidStateException', `Key material ${material.keyMaterialId} of ${key.arn} is pending import.`);
    return accept({ type: 'KeyMaterialDeleted', data: { keyMaterialId: material.keyMaterialId, reason: 'DELETED' } });
  });
}

/**
 * The earliest ValidTo among a key's imported material that expires, or null.
 *
 * @example
 * nextMaterialExpiry(externalKey) // the earliest ValidTo of its IMPORTED material, e.g. 2026-06-30T00:00:00.000Z
 * nextMaterialExpiry(awsKmsKey)   // null
 */
export function nextMaterialExpiry(key: KeyState): Date | null {
  const dates = key.importedMaterials.filter((m) => m.importState === 'IMPORTED' && m.validTo !== null).map((m) => new Date(m.validTo!).getTime());
  return dates.length === 0 ? null : new Date(Math.min(...dates));
}

/**
 * Whether some imported material of the key has reached its ValidTo.
 *
 * @example
 * isMaterialExpiryDue(externalKey, clock.now()) // true once now reaches nextMaterialExpiry(externalKey); false for a deleted key
 */
export const isMaterialExpiryDue = (key: KeyState, now: Date): boolean => {
  const next = key.deleted ? null : nextMaterialExpiry(key);
  return next !== null && next <= now;
};

/**
 * The worker's expiry at ValidTo (AWS's DeleteExpiredKeyMaterial): every imported version whose ValidTo has come; nothing when none is due.
 *
 * @example
 * decideExpireKeyMaterial(externalKey, now) // accepts one KeyMaterialDeleted { keyMaterialId, reason: 'EXPIRED' } per due version
 * decideExpireKeyMaterial(awsKmsKey, now)   // accepts nothing
 */
export function decideExpireKeyMaterial(key: KeyState, now: Date): Decision<KeyEvent> {
  if (key.deleted) return accept();
  const due = key.importedMaterials.filter((m) => m.importState === 'IMPORTED' && m.validTo !== null && new Date(m.validTo) <= now);
  return accept(...due.map((m): KeyEvent => ({ type: 'KeyMaterialDeleted', data: { keyMaterialId: m.keyMaterialId, reason: 'EXPIRED' } })));
}

/**
 * Whether the worker should rotate the key now: rotation on, key Enabled, date reached.
 *
 * @example
 * isRotationDue(key, now) // true for an Enabled key with rotation on and nextRotationDate <= now; false once disabled
 */
export const isRotationDue = (key: KeyState, now: Date): boolean =>
  !key.deleted && key.rotationEnabled && key.keyState === 'Enabled' && key.nextRotationDate !== null && key.nextRotationDate <= now;

/**
 * The worker's automatic rotation. Nothing to do when it is not due (any more):
 * a retried or duplicate job, or one for a key whose rotation was turned off,
 * decides no events, which is what makes the handler idempotent.
 *
 * @example
 * decideAutomaticRotation(dueKey, keyMaterialId, now) // accepts KeyRotated { rotationType: 'AUTOMATIC', nextRotationDate: one period after now }
 * decideAutomaticRotation(rotatedKey, keyMaterialId, now) // accepts nothing: not due any more (a duplicate job)
 */
export function decideAutomaticRotation(key: KeyState, newKeyMaterialId: string, now: Date): Decision<KeyEvent> {
  if (!isRotationDue(key, now)) return accept();
  return accept({
    type: 'KeyRotated',
    data: { keyMaterialId: newKeyMaterialId, rotationType: 'AUTOMATIC', nextRotationDate: addDays(now, key.rotationPeriodInDays!) },
  });
}

/**
 * Whether the worker should delete the key now: PendingDeletion and its deletion date reached.
 *
 * @example
 * isDeletionDue(pendingKey, pendingKey.deletionDate!) // true
 * isDeletionDue(enabledKey, now)                      // false
 */
export const isDeletionDue = (key: KeyState, now: Date): boolean =>
  !key.deleted && key.keyState === 'PendingDeletion' && key.deletionDate !== null && key.deletionDate <= now;

/**
 * The worker's deletion at deletionDate; nothing once cancelled, not yet due, or already deleted.
 *
 * @example
 * decideDeleteKey(pendingKey, pendingKey.deletionDate!) // accepts KeyDeleted { destroyedKeyMaterialIds: pendingKey.keyMaterialIds }
 * decideDeleteKey(canceledKey, now)                     // accepts nothing
 */
export function decideDeleteKey(key: KeyState, now: Date): Decision<KeyEvent> {
  if (!isDeletionDue(key, now)) return accept();
  return accept({ type: 'KeyDeleted', data: { destroyedKeyMaterialIds: [...key.keyMaterialIds] } });
}

/**
 * GetPublicKey's refusal of a key without a key pair (symmetric encryption and
 * HMAC keys), after the state check; undefined for an asymmetric key.
 *
 * @example
 * publicKeyRefusal(symmetricKey) // KmsError UnsupportedOperationException "<arn> is not an asymmetric KMS key. GetPublicKey ..."
 */
export function publicKeyRefusal(key: Pick<KeyState, 'arn' | 'keySpec' | 'publicKey'>): KmsError | undefined {
  if (isAsymmetricKeySpec(key.keySpec) && key.publicKey !== null) return undefined;
  return new KmsError(
    'UnsupportedOperationException',
    `${key.arn} is not an asymmetric KMS key. GetPublicKey is valid only for asymmetric KMS keys; this key's KeySpec is ${key.keySpec}.`,
  );
}
