import { rootArn } from './arn.ts';
import { isAwsManagedKeyChange } from './aws-managed-key.ts';
import { accept, KmsError, reject, type Decision } from './errors.ts';
import { isAsymmetricKeySpec, KEY_SPECS, KEY_USAGES } from './key-specs.ts';
import type { Tag } from './tags.ts';

export { KEY_SPECS, KEY_USAGES };

/** AWS KeyState values. keyledger produces Enabled, Disabled, PendingDeletion and PendingImport (a key with Origin EXTERNAL whose current material is not imported). */
export const KEY_STATES = ['Creating', 'Enabled', 'Disabled', 'PendingDeletion', 'PendingImport', 'PendingReplicaDeletion', 'Unavailable', 'Updating'] as const;
export type KeyStateName = (typeof KEY_STATES)[number];

export const ORIGINS = ['AWS_KMS', 'EXTERNAL', 'AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'] as const;
export const SYMMETRIC_ENCRYPTION_ALGORITHMS = ['SYMMETRIC_DEFAULT'] as const;
export const EXPIRATION_MODELS = ['KEY_MATERIAL_EXPIRES', 'KEY_MATERIAL_DOES_NOT_EXPIRE'] as const;
export type ExpirationModel = (typeof EXPIRATION_MODELS)[number];
/** GetParametersForImport's wrapping algorithms and key specs keyledger offers (no RSAES_PKCS1_V1_5, no SM2). */
export const WRAPPING_ALGORITHMS = ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'RSA_AES_KEY_WRAP_SHA_1', 'RSA_AES_KEY_WRAP_SHA_256'] as const;
export type WrappingAlgorithm = (typeof WRAPPING_ALGORITHMS)[number];
export const WRAPPING_KEY_SPECS = ['RSA_2048', 'RSA_3072', 'RSA_4096'] as const;
export type WrappingKeySpec = (typeof WRAPPING_KEY_SPECS)[number];
export const IMPORT_TYPES = ['NEW_KEY_MATERIAL', 'EXISTING_KEY_MATERIAL'] as const;
export type ImportType = (typeof IMPORT_TYPES)[number];

/**
 * One version of a key's imported material (Origin EXTERNAL), as AWS's
 * RotationsListEntry describes it. Dates are ISO strings, as in the events,
 * so the projection's jsonb compares equal to the fold's.
 */
export interface ImportedMaterial {
  keyMaterialId: string;
  /** IMPORTED while keyledger holds it; PENDING_IMPORT once deleted or expired, until the same material is imported again. */
  importState: 'IMPORTED' | 'PENDING_IMPORT';
  expirationModel: ExpirationModel | null;
  /** When the worker deletes it (KEY_MATERIAL_EXPIRES); null otherwise. */
  validTo: string | null;
  description: string | null;
  /** When it was last imported. */
  importedAt: string | null;
}

/** A key's state: the fold of its stream (`key-<keyId>`). */
export interface KeyState {
  keyId: string;
  accountId: string;
  arn: string;
  description: string;
  keyState: KeyStateName;
  keyUsage: string;
  keySpec: string;
  origin: string;
  keyManager: 'CUSTOMER' | 'AWS';
  multiRegion: boolean;
  policy: string;
  creationDate: Date;
  deletionDate: Date | null;
  pendingDeletionWindowInDays: number | null;
  /** The key material version new encryptions use (64 hex); null only for keys without material. */
  currentKeyMaterialId: string | null;
  /** Every material version the key has had, oldest first (all still decrypt until the key is deleted). */
  keyMaterialIds: string[];
  /**
   * An asymmetric key's public key (DER SubjectPublicKeyInfo, base64), from its
   * KeyCreated event; null for symmetric and HMAC keys. Public by nature, so it
   * is kept in clear in the log and the projection: a signature the key made
   * can be verified from the log alone, even after the key is deleted.
   */
  publicKey: string | null;
  rotationEnabled: boolean;
  rotationPeriodInDays: number | null;
  nextRotationDate: Date | null;
  /** On-demand rotations so far (AWS allows 25 per key). */
  onDemandRotations: number;
  /** Set by KeyDeleted: the key and its material are gone; only its history remains. */
  deleted: boolean;
  /**
   * Every material version imported into a key of Origin EXTERNAL, in import
   * order (empty for other keys). A version not yet in keyMaterialIds was
   * imported with NEW_KEY_MATERIAL into a key that has material: it is
   * PENDING_ROTATION until RotateKeyOnDemand makes it current.
   */
  importedMaterials: ImportedMaterial[];
  /** Tag keys are unique; kept sorted by key so equal states compare equal. */
  tags: Tag[];
  /** The stream version this state was folded up to. */
  version: bigint;
}

export interface KeyCreatedData {
  keyId: string;
  accountId: string;
  arn: string;
  description: string;
  keyUsage: string;
  keySpec: string;
  origin: string;
  keyManager: 'CUSTOMER' | 'AWS';
  multiRegion: boolean;
  policy: string;
  tags: Tag[];
  /** Generated with the key; the material itself lives outside the log. Null for Origin EXTERNAL: the material comes with ImportKeyMaterial. */
  keyMaterialId: string | null;
  /** An asymmetric key's public key, DER SubjectPublicKeyInfo in base64 (absent for symmetric and HMAC keys). */
  publicKey?: string;
}

export type KeyEvent =
  | { type: 'KeyCreated'; data: KeyCreatedData }
  | { type: 'KeyDescriptionUpdated'; data: { description: string } }
  | { type: 'KeyEnabled'; data: Record<string, never> }
  | { type: 'KeyDisabled'; data: Record<string, never> }
  | { type: 'KeyTagged'; data: { tags: Tag[] } }
  | { type: 'KeyUntagged'; data: { tagKeys: string[] } }
  | { type: 'KeyDeletionScheduled'; data: { deletionDate: string; pendingWindowInDays: number } }
  | { type: 'KeyDeletionCanceled'; data: Record<string, never> }
  | { type: 'KeyRotationEnabled'; data: { rotationPeriodInDays: number; nextRotationDate: string } }
  | { type: 'KeyRotationDisabled'; data: Record<string, never> }
  | { type: 'KeyRotated'; data: { keyMaterialId: string; rotationType: RotationType; nextRotationDate: string | null } }
  | { type: 'KeyDeleted'; data: { destroyedKeyMaterialIds: string[] } }
  | { type: 'KeyPolicyPut'; data: { policy: string } }
  | { type: 'KeyMaterialImported'; data: KeyMaterialImportedData }
  | { type: 'KeyMaterialDeleted'; data: { keyMaterialId: string; reason: 'DELETED' | 'EXPIRED' } };

export interface KeyMaterialImportedData {
  /** Derived from the material itself (see importedKeyMaterialId): the same material always has the same id. */
  keyMaterialId: string;
  importType: ImportType;
  expirationModel: ExpirationModel;
  validTo: string | null;
  keyMaterialDescription: string | null;
  /** The import parameters used: which wrapping key, never the material. */
  importTokenId: string;
  wrappingAlgorithm: string;
  wrappingKeySpec: string;
  /** An imported private key's public key, DER SubjectPublicKeyInfo in base64 (public, kept in clear as KeyCreated keeps a generated one's). */
  publicKey?: string;
}

export type RotationType = 'AUTOMATIC' | 'ON_DEMAND';

export const KEY_EVENT_TYPES: ReadonlySet<string> = new Set<KeyEvent['type']>([
  'KeyCreated',
  'KeyDescriptionUpdated',
  'KeyEnabled',
  'KeyDisabled',
  'KeyTagged',
  'KeyUntagged',
  'KeyDeletionScheduled',
  'KeyDeletionCanceled',
  'KeyRotationEnabled',
  'KeyRotationDisabled',
  'KeyRotated',
  'KeyDeleted',
  'KeyPolicyPut',
  'KeyMaterialImported',
  'KeyMaterialDeleted',
]);

/** An event as the fold sees it: what was decided, plus where and when it was recorded. */
export type Recorded<E extends { type: string; data: unknown }> = E & { recordedAt: Date; streamVersion: bigint };

export const keyStreamId = (keyId: string): string => `key-${keyId}`;

/**
 * Applies one recorded event to a key's state. Pure: the same events always fold
 * to the same state, which is what lets replay rebuild the projections.
 *
 * @example
 * const key = evolveKey(null, { type: 'KeyCreated', data, recordedAt: now, streamVersion: 1n }); // Enabled, version 1
 */
export function evolveKey(state: KeyState | null, event: Recorded<KeyEvent>): KeyState {
  if (event.type === 'KeyCreated') {
    const d = event.data;
    return {
      keyId: d.keyId,
      accountId: d.accountId,
      arn: d.arn,
      description: d.description,
      keyState: d.keyMaterialId === null ? 'PendingImport' : 'Enabled',
      keyUsage: d.keyUsage,
      keySpec: d.keySpec,
      origin: d.origin,
      keyManager: d.keyManager,
      multiRegion: d.multiRegion,
      policy: d.policy,
      creationDate: event.recordedAt,
      deletionDate: null,
      pendingDeletionWindowInDays: null,
      currentKeyMaterialId: d.keyMaterialId,
      keyMaterialIds: d.keyMaterialId === null ? [] : [d.keyMaterialId],
      publicKey: d.publicKey ?? null,
      rotationEnabled: false,
      rotationPeriodInDays: null,
      nextRotationDate: null,
      onDemandRotations: 0,
      deleted: false,
      importedMaterials: [],
      tags: sortTags(d.tags),
      version: event.streamVersion,
    };
  }
  if (!state) throw new Error(`${event.type} before KeyCreated`);
  const next: KeyState = { ...state, version: event.streamVersion };
  switch (event.type) {
    case 'KeyDescriptionUpdated':
      next.description = event.data.description;
      break;
    case 'KeyEnabled':
      next.keyState = 'Enabled';
      break;
    case 'KeyDisabled':
      next.keyState = 'Disabled';
      break;
    case 'KeyTagged': {
      const byKey = new Map(state.tags.map((t) => [t.tagKey, t.tagValue]));
      for (const t of event.data.tags) byKey.set(t.tagKey, t.tagValue);
      next.tags = sortTags([...byKey].map(([tagKey, tagValue]) => ({ tagKey, tagValue })));
      break;
    }
    case 'KeyUntagged': {
      const removed = new Set(event.data.tagKeys);
      next.tags = state.tags.filter((t) => !removed.has(t.tagKey));
      break;
    }
    case 'KeyDeletionScheduled':
      next.keyState = 'PendingDeletion';
      next.deletionDate = new Date(event.data.deletionDate);
      next.pendingDeletionWindowInDays = event.data.pendingWindowInDays;
      break;
    case 'KeyDeletionCanceled':
      // As AWS: Disabled, unless the key's current imported material is gone meanwhile (expired).
      next.keyState = state.origin === 'EXTERNAL' && !currentMaterialImported(state) ? 'PendingImport' : 'Disabled';
      next.deletionDate = null;
      next.pendingDeletionWindowInDays = null;
      break;
    case 'KeyRotationEnabled':
      next.rotationEnabled = true;
      next.rotationPeriodInDays = event.data.rotationPeriodInDays;
      next.nextRotationDate = new Date(event.data.nextRotationDate);
      break;
    case 'KeyRotationDisabled':
      next.rotationEnabled = false;
      next.nextRotationDate = null;
      break;
    case 'KeyRotated':
      next.currentKeyMaterialId = event.data.keyMaterialId;
      next.keyMaterialIds = [...state.keyMaterialIds, event.data.keyMaterialId];
      next.nextRotationDate = event.data.nextRotationDate === null ? null : new Date(event.data.nextRotationDate);
      if (event.data.rotationType === 'ON_DEMAND') next.onDemandRotations = state.onDemandRotations + 1;
      break;
    case 'KeyDeleted':
      next.deleted = true;
      next.currentKeyMaterialId = null;
      break;
    case 'KeyPolicyPut':
      next.policy = event.data.policy;
      break;
    case 'KeyMaterialImported': {
      const d = event.data;
      const before = state.importedMaterials.find((m) => m.keyMaterialId === d.keyMaterialId);
      const imported: ImportedMaterial = {
        keyMaterialId: d.keyMaterialId,
        importState: 'IMPORTED',
        expirationModel: d.expirationModel,
        validTo: d.validTo,
        description: d.keyMaterialDescription ?? before?.description ?? null,
        importedAt: event.recordedAt.toISOString(),
      };
      next.importedMaterials = before
        ? state.importedMaterials.map((m) => (m.keyMaterialId === d.keyMaterialId ? imported : m))
        : [...state.importedMaterials, imported];
      // The first material becomes current; a NEW one into a key that has material waits for RotateKeyOnDemand.
      if (state.currentKeyMaterialId === null) {
        next.currentKeyMaterialId = d.keyMaterialId;
        next.keyMaterialIds = [d.keyMaterialId];
      }
      if (state.keyState === 'PendingImport' && next.currentKeyMaterialId === d.keyMaterialId) next.keyState = 'Enabled';
      if (d.publicKey !== undefined) next.publicKey = d.publicKey;
      break;
    }
    case 'KeyMaterialDeleted':
      next.importedMaterials = state.importedMaterials.map((m) =>
        m.keyMaterialId === event.data.keyMaterialId ? { ...m, importState: 'PENDING_IMPORT', validTo: null, expirationModel: null, importedAt: null } : m,
      );
      if (event.data.keyMaterialId === state.currentKeyMaterialId && state.keyState !== 'PendingDeletion') next.keyState = 'PendingImport';
      break;
  }
  return next;
}

/** Whether a key's current material is held (always, but for Origin EXTERNAL keys whose current material was deleted or expired). */
function currentMaterialImported(state: KeyState): boolean {
  return state.importedMaterials.some((m) => m.keyMaterialId === state.currentKeyMaterialId && m.importState === 'IMPORTED');
}

/**
 * Folds a key's whole stream.
 *
 * @example
 * const key = foldKey((await readStream(trx, keyStreamId(keyId))) as Recorded<KeyEvent>[]); // null for no events
 */
export const foldKey = (events: readonly Recorded<KeyEvent>[]): KeyState | null => events.reduce<KeyState | null>(evolveKey, null);

function sortTags(tags: readonly Tag[]): Tag[] {
  return [...tags].sort((a, b) => (a.tagKey < b.tagKey ? -1 : a.tagKey > b.tagKey ? 1 : 0));
}

/** `Enabled` in KeyMetadata: true only in the Enabled state. */
export const isEnabled = (state: KeyState): boolean => state.keyState === 'Enabled';

/**
 * The KMS operations whose outcome depends on the key's state, and the states
 * each one accepts — AWS's key-state table.
 */
export type KeyStateRule = 'anyState' | 'manage' | 'toggle' | 'use' | 'cancelDeletion';

export const OPERATION_RULES = {
  DescribeKey: 'anyState',
  ListResourceTags: 'anyState',
  ListAliases: 'anyState',
  DeleteAlias: 'anyState',
  GetKeyPolicy: 'anyState',
  ListKeyPolicies: 'anyState',
  PutKeyPolicy: 'anyState',
  UpdateKeyDescription: 'manage',
  TagResource: 'manage',
  UntagResource: 'manage',
  CreateAlias: 'manage',
  UpdateAlias: 'manage',
  ScheduleKeyDeletion: 'manage',
  EnableKey: 'toggle',
  DisableKey: 'toggle',
  CancelKeyDeletion: 'cancelDeletion',
  Encrypt: 'use',
  Decrypt: 'use',
  ReEncrypt: 'use',
  GenerateDataKey: 'use',
  GenerateDataKeyWithoutPlaintext: 'use',
  GenerateDataKeyPair: 'use',
  GenerateDataKeyPairWithoutPlaintext: 'use',
  CreateGrant: 'use',
  EnableKeyRotation: 'use',
  DisableKeyRotation: 'use',
  RotateKeyOnDemand: 'use',
  GetParametersForImport: 'manage',
  ImportKeyMaterial: 'manage',
  DeleteImportedKeyMaterial: 'manage',
  GetPublicKey: 'use',
  Sign: 'use',
  Verify: 'use',
  GenerateMac: 'use',
  VerifyMac: 'use',
  DeriveSharedSecret: 'use',
  GetKeyRotationStatus: 'manage',
  ListKeyRotations: 'manage',
} as const satisfies Record<string, KeyStateRule>;

export type KeyOperation = keyof typeof OPERATION_RULES;

/**
 * Refuses `operation` when the key's state does not allow it, with AWS's error
 * name and message; undefined when the operation may proceed.
 *
 * @example
 * checkKeyState('Encrypt', disabledKey) // KmsError DisabledException "<arn> is disabled."
 */
export function checkKeyState(operation: KeyOperation, key: Pick<KeyState, 'arn' | 'keyState'>): KmsError | undefined {
  const rule: KeyStateRule = OPERATION_RULES[operation];
  const s = key.keyState;
  switch (rule) {
    case 'anyState':
      return undefined;
    case 'cancelDeletion':
      return s === 'PendingDeletion' ? undefined : new KmsError('KMSInvalidStateException', `${key.arn} is not pending deletion.`);
    case 'manage':
      if (s === 'Enabled' || s === 'Disabled' || s === 'PendingImport') return undefined;
      return invalidState(key);
    case 'toggle':
      if (s === 'Enabled' || s === 'Disabled') return undefined;
      return invalidState(key);
    case 'use':
      if (s === 'Enabled') return undefined;
      if (s === 'Disabled') return new KmsError('DisabledException', `${key.arn} is disabled.`);
      return invalidState(key);
  }
}

function invalidState(key: Pick<KeyState, 'arn' | 'keyState'>): KmsError {
  const what: Partial<Record<KeyStateName, string>> = {
    PendingDeletion: 'pending deletion',
    PendingImport: 'pending import',
    PendingReplicaDeletion: 'pending replica deletion',
    Unavailable: 'unavailable',
    Creating: 'being created',
    Updating: 'being updated',
  };
  return new KmsError('KMSInvalidStateException', `${key.arn} is ${what[key.keyState] ?? key.keyState}.`);
}

/**
 * AWS's default key policy: delegate every kms action to the account's IAM.
 *
 * @example
 * defaultKeyPolicy('111122223333') // Allow arn:aws:iam::111122223333:root kms:* on *
 */
export function defaultKeyPolicy(accountId: string): string {
  return JSON.stringify(
    {
      Version: '2012-10-17',
      Id: 'key-default-1',
      Statement: [
        {
          Sid: 'Enable IAM User Permissions',
          Effect: 'Allow',
          Principal: { AWS: rootArn(accountId) },
          Action: 'kms:*',
          Resource: '*',
        },
      ],
    },
    null,
    2,
  );
}

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

export const decideUpdateKeyDescription = (key: KeyState, description: string): Decision<KeyEvent> =>
  withState('UpdateKeyDescription', key, () => (description === key.description ? accept() : accept({ type: 'KeyDescriptionUpdated', data: { description } })));

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

/** PutKeyPolicy (already validated and checked for lockout by the service). */
export const decidePutKeyPolicy = (key: KeyState, policy: string): Decision<KeyEvent> =>
  withState('PutKeyPolicy', key, () => (policy === key.policy ? accept() : accept({ type: 'KeyPolicyPut', data: { policy } })));

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

/** EnableKeyRotation: the first automatic rotation is one period from now; enabling again with another period reschedules. */
export const decideEnableKeyRotation = (key: KeyState, rotationPeriodInDays: number, now: Date): Decision<KeyEvent> =>
  withState('EnableKeyRotation', key, () => {
    const unsupported = rotationUnsupported(key);
    if (unsupported) return unsupported;
    if (key.rotationEnabled && key.rotationPeriodInDays === rotationPeriodInDays) return accept();
    return accept({ type: 'KeyRotationEnabled', data: { rotationPeriodInDays, nextRotationDate: addDays(now, rotationPeriodInDays) } });
  });

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

/** Imported material waiting for RotateKeyOnDemand (imported with NEW_KEY_MATERIAL into a key that had material). */
export const pendingRotationMaterial = (key: KeyState): ImportedMaterial | undefined =>
  key.importedMaterials.find((m) => m.importState === 'IMPORTED' && !key.keyMaterialIds.includes(m.keyMaterialId));

/** AWS's KeyMaterialState of one material version. */
export function keyMaterialState(key: KeyState, keyMaterialId: string): 'CURRENT' | 'NON_CURRENT' | 'PENDING_ROTATION' {
  if (keyMaterialId === key.currentKeyMaterialId) return 'CURRENT';
  return key.keyMaterialIds.includes(keyMaterialId) ? 'NON_CURRENT' : 'PENDING_ROTATION';
}

/** The imported-material operations apply to keys of Origin EXTERNAL only (AWS: UnsupportedOperationException). */
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
        `The key material of an asymmetric KMS key cannot expire: ${key.keySpec} key material must be imported with ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE and no ValidTo.`,
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
        if (!currentMaterialImported(key)) {
          return reject('KMSInvalidStateException', `${key.arn} is pending import: import its current key material again before importing new key material.`);
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

/** The earliest ValidTo among a key's imported material that expires, or null. */
export function nextMaterialExpiry(key: KeyState): Date | null {
  const dates = key.importedMaterials.filter((m) => m.importState === 'IMPORTED' && m.validTo !== null).map((m) => new Date(m.validTo!).getTime());
  return dates.length === 0 ? null : new Date(Math.min(...dates));
}

/** Whether some imported material of the key has reached its ValidTo. */
export const isMaterialExpiryDue = (key: KeyState, now: Date): boolean => {
  const next = key.deleted ? null : nextMaterialExpiry(key);
  return next !== null && next <= now;
};

/** The worker's expiry at ValidTo (AWS's DeleteExpiredKeyMaterial): every imported version whose ValidTo has come; nothing when none is due. */
export function decideExpireKeyMaterial(key: KeyState, now: Date): Decision<KeyEvent> {
  if (key.deleted) return accept();
  const due = key.importedMaterials.filter((m) => m.importState === 'IMPORTED' && m.validTo !== null && new Date(m.validTo) <= now);
  return accept(...due.map((m): KeyEvent => ({ type: 'KeyMaterialDeleted', data: { keyMaterialId: m.keyMaterialId, reason: 'EXPIRED' } })));
}

/** Whether the worker should rotate the key now: rotation on, key Enabled, date reached. */
export const isRotationDue = (key: KeyState, now: Date): boolean =>
  !key.deleted && key.rotationEnabled && key.keyState === 'Enabled' && key.nextRotationDate !== null && key.nextRotationDate <= now;

/**
 * The worker's automatic rotation. Nothing to do when it is not due (any more):
 * a retried or duplicate job, or one for a key whose rotation was turned off,
 * decides no events, which is what makes the handler idempotent.
 */
export function decideAutomaticRotation(key: KeyState, newKeyMaterialId: string, now: Date): Decision<KeyEvent> {
  if (!isRotationDue(key, now)) return accept();
  return accept({
    type: 'KeyRotated',
    data: { keyMaterialId: newKeyMaterialId, rotationType: 'AUTOMATIC', nextRotationDate: addDays(now, key.rotationPeriodInDays!) },
  });
}

/** Whether the worker should delete the key now: PendingDeletion and its deletion date reached. */
export const isDeletionDue = (key: KeyState, now: Date): boolean =>
  !key.deleted && key.keyState === 'PendingDeletion' && key.deletionDate !== null && key.deletionDate <= now;

/** The worker's deletion at deletionDate; nothing once cancelled, not yet due, or already deleted. */
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
