import { KmsError } from './errors.ts';
import { type KeyState, type KeyStateName } from './key.ts';

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
