import { rootArn } from './arn.ts';
import { accept, KmsError, reject, type Decision } from './errors.ts';
import type { Tag } from './tags.ts';

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

export const KEY_USAGES = ['SIGN_VERIFY', 'ENCRYPT_DECRYPT', 'GENERATE_VERIFY_MAC', 'KEY_AGREEMENT'] as const;
export const KEY_SPECS = [
  'RSA_2048', 'RSA_3072', 'RSA_4096',
  'ECC_NIST_P256', 'ECC_NIST_P384', 'ECC_NIST_P521', 'ECC_SECG_P256K1',
  'SYMMETRIC_DEFAULT',
  'HMAC_224', 'HMAC_256', 'HMAC_384', 'HMAC_512',
  'SM2', 'ML_DSA_44', 'ML_DSA_65', 'ML_DSA_87',
] as const;
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
}

export type KeyEvent =
  | { type: 'KeyCreated'; data: KeyCreatedData }
  | { type: 'KeyDescriptionUpdated'; data: { description: string } }
  | { type: 'KeyEnabled'; data: Record<string, never> }
  | { type: 'KeyDisabled'; data: Record<string, never> }
  | { type: 'KeyTagged'; data: { tags: Tag[] } }
  | { type: 'KeyUntagged'; data: { tagKeys: string[] } }
  | { type: 'KeyDeletionScheduled'; data: { deletionDate: string; pendingWindowInDays: number } }
  | { type: 'KeyDeletionCanceled'; data: Record<string, never> };

export const KEY_EVENT_TYPES: ReadonlySet<string> = new Set<KeyEvent['type']>([
  'KeyCreated',
  'KeyDescriptionUpdated',
  'KeyEnabled',
  'KeyDisabled',
  'KeyTagged',
  'KeyUntagged',
  'KeyDeletionScheduled',
  'KeyDeletionCanceled',
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
  UpdateKeyDescription: 'manage',
  TagResource: 'manage',
  UntagResource: 'manage',
  CreateAlias: 'manage',
  UpdateAlias: 'manage',
  PutKeyPolicy: 'manage',
  ScheduleKeyDeletion: 'manage',
  EnableKey: 'toggle',
  DisableKey: 'toggle',
  CancelKeyDeletion: 'cancelDeletion',
  Encrypt: 'use',
  Decrypt: 'use',
  ReEncrypt: 'use',
  GenerateDataKey: 'use',
  GenerateDataKeyWithoutPlaintext: 'use',
  CreateGrant: 'use',
  EnableKeyRotation: 'use',
  DisableKeyRotation: 'use',
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

export const decideCancelKeyDeletion = (key: KeyState): Decision<KeyEvent> =>
  withState('CancelKeyDeletion', key, () => accept({ type: 'KeyDeletionCanceled', data: {} }));
