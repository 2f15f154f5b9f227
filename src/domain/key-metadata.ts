import type { KeyState } from './key.ts';
import { keyAlgorithms, type KeyAlgorithms } from './key-specs.ts';

/** KeyMetadata as AWS returns it, in lowerCamelCase; of the algorithm lists, only those that apply to the key are present. */
export interface KeyMetadata extends KeyAlgorithms {
  awsAccountId: string;
  keyId: string;
  arn: string;
  creationDate: Date;
  enabled: boolean;
  description: string;
  keyUsage: string;
  keyState: string;
  deletionDate: Date | null;
  origin: string;
  keyManager: string;
  customerMasterKeySpec: string;
  keySpec: string;
  multiRegion: boolean;
  pendingDeletionWindowInDays: number | null;
  currentKeyMaterialId: string | null;
  /** Keys with imported material: whether it expires, and when. */
  expirationModel?: string;
  validTo?: Date;
}

/**
 * A key's KeyMetadata, as DescribeKey, CreateKey and the time-travel queries
 * answer it: AWS's members, with the algorithm lists that apply to its spec
 * and usage, and the import members of a key with imported material.
 *
 * @example
 * toKeyMetadata(foldKey(events)!).enabled // true for a key in the Enabled state
 */
export function toKeyMetadata(key: KeyState): KeyMetadata {
  return {
    awsAccountId: key.accountId,
    keyId: key.keyId,
    arn: key.arn,
    creationDate: key.creationDate,
    enabled: key.keyState === 'Enabled',
    description: key.description,
    keyUsage: key.keyUsage,
    keyState: key.keyState,
    deletionDate: key.deletionDate,
    origin: key.origin,
    keyManager: key.keyManager,
    customerMasterKeySpec: key.keySpec,
    keySpec: key.keySpec,
    ...keyAlgorithms(key.keySpec, key.keyUsage),
    multiRegion: key.multiRegion,
    // AWS shows the waiting period only while a multi-Region primary waits for its replicas
    // (PendingReplicaDeletion); a key of one Region pending deletion shows its DeletionDate instead.
    pendingDeletionWindowInDays: null,
    // AWS names the current material of symmetric encryption keys only, the keys whose material rotates.
    currentKeyMaterialId: key.keySpec === 'SYMMETRIC_DEFAULT' ? key.currentKeyMaterialId : null,
    ...(key.origin === 'EXTERNAL' ? importedMetadata(key) : {}),
  };
}

/** KeyMetadata's ExpirationModel and ValidTo of a key with imported material: its current material's, once imported. */
function importedMetadata(key: KeyState): { expirationModel?: string; validTo?: Date } {
  const current = key.importedMaterials.find((m) => m.keyMaterialId === key.currentKeyMaterialId && m.importState === 'IMPORTED');
  if (!current?.expirationModel) return {};
  return { expirationModel: current.expirationModel, ...(current.validTo ? { validTo: new Date(current.validTo) } : {}) };
}
