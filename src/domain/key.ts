import { rootArn } from './arn.ts';
import { accept, KmsError, reject, type Decision } from './errors.ts';
import { isAsymmetricKeySpec, KEY_SPECS, KEY_USAGES } from './key-specs.ts';
import type { Tag } from './tags.ts';

export { KEY_SPECS, KEY_USAGES };

/** AWS KeyState values. keyledger produces Enabled, Disabled, PendingDeletion (PendingImport arrives with imported material). */
export const KEY_STATES = [
  'Creating',
  'Enabled',
  'Disabled',
  'PendingDeletion',
  'PendingImport',
  'PendingReplicaDeletion',
  'Unavailable',
  'Updating',
] as const;
export type KeyStateName = (typeof KEY_STATES)[number];

export const ORIGINS = ['AWS_KMS', 'EXTERNAL', 'AWS_CLOUDHSM', 'EXTERNAL_KEY_STORE'] as const;
export const SYMMETRIC_ENCRYPTION_ALGORITHMS = ['SYMMETRIC_DEFAULT'] as const;

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
  /** Generated with the key; the material itself lives outside the log. */
  keyMaterialId: string;
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
  | { type: 'KeyPolicyPut'; data: { policy: string } };

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
]);

/** An event as the fold sees it: what was decided, plus where and when it was recorded. */
export type Recorded<E extends { type: string; data: unknown }> = E & { recordedAt: Date; streamVersion: bigint };

export const keyStreamId = (keyId: string): string => `key-${keyId}`;

/**
 * Applies one recorded event to a key's state. Pure: the same events always fold
 * to the same state, which is what lets replay rebuild the projections.
 */
export function evolveKey(state: KeyState | null, event: Recorded<KeyEvent>): KeyState {
  if (event.type === 'KeyCreated') {
    const d = event.data;
    return {
      keyId: d.keyId,
      accountId: d.accountId,
      arn: d.arn,
      description: d.description,
      keyState: 'Enabled',
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
      keyMaterialIds: [d.keyMaterialId],
      publicKey: d.publicKey ?? null,
      rotationEnabled: false,
      rotationPeriodInDays: null,
      nextRotationDate: null,
      onDemandRotations: 0,
      deleted: false,
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
      next.keyState = 'Disabled';
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
  }
  return next;
}

/** Folds a key's whole stream. */
export const foldKey = (events: readonly Recorded<KeyEvent>[]): KeyState | null =>
  events.reduce<KeyState | null>(evolveKey, null);

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

/** AWS's default key policy: delegate every kms action to the account's IAM. */
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
  const refused = checkKeyState(operation, key);
  return refused ? { ok: false, error: refused } : decide();
};

export const decideUpdateKeyDescription = (key: KeyState, description: string): Decision<KeyEvent> =>
  withState('UpdateKeyDescription', key, () =>
    description === key.description ? accept() : accept({ type: 'KeyDescriptionUpdated', data: { description } }),
  );

export const decideEnableKey = (key: KeyState): Decision<KeyEvent> =>
  withState('EnableKey', key, () => (key.keyState === 'Enabled' ? accept() : accept({ type: 'KeyEnabled', data: {} })));

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
function rotationUnsupported(key: KeyState): Decision<KeyEvent> | undefined {
  if (key.keySpec !== 'SYMMETRIC_DEFAULT' || key.keyUsage !== 'ENCRYPT_DECRYPT') {
    return reject('UnsupportedOperationException', 'You cannot perform this operation on a non-symmetric key or a key with non-ENCRYPT_DECRYPT key usage.');
  }
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

/** RotateKeyOnDemand: new material now, at most 25 times per key; the automatic schedule is left as it is. */
export const decideRotateKeyOnDemand = (key: KeyState, newKeyMaterialId: string): Decision<KeyEvent> =>
  withState('RotateKeyOnDemand', key, () => {
    const unsupported = rotationUnsupported(key);
    if (unsupported) return unsupported;
    if (key.onDemandRotations >= MAX_ON_DEMAND_ROTATIONS) {
      return reject('LimitExceededException', `The on-demand rotations limit has been reached for the given KMS key: ${key.arn}. You can rotate a KMS key on demand at most ${MAX_ON_DEMAND_ROTATIONS} times.`);
    }
    return accept({
      type: 'KeyRotated',
      data: { keyMaterialId: newKeyMaterialId, rotationType: 'ON_DEMAND', nextRotationDate: key.nextRotationDate?.toISOString() ?? null },
    });
  });

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
  return new KmsError('UnsupportedOperationException', `${key.arn} is not an asymmetric KMS key. GetPublicKey is valid only for asymmetric KMS keys; this key's KeySpec is ${key.keySpec}.`);
}
