import { rootArn } from './arn.ts';
import { KEY_SPECS, KEY_USAGES } from './key-specs.ts';
import type { Tag } from './tags.ts';

/**
 * A KMS key as its event stream defines it: the events, the state they fold
 * into (evolveKey, foldKey), and AWS's default key policy. What each
 * operation may do to a key lives in key-state-rules.ts (which states allow
 * it) and key-decisions.ts (the events it appends).
 */

export { KEY_SPECS, KEY_USAGES };

/**
 * AWS KeyState values. keyledger produces Enabled, Disabled, PendingDeletion
 * and PendingImport (a key with Origin EXTERNAL whose current material is not imported).
 */
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

/**
 * The stream a key's events live in: one per key, named by its id.
 *
 * @example
 * keyStreamId('1234abcd-12ab-34cd-56ef-1234567890ab') // 'key-1234abcd-12ab-34cd-56ef-1234567890ab'
 */
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
      // As AWS: Disabled, unless some of the key's imported material is gone meanwhile (expired).
      next.keyState = state.origin === 'EXTERNAL' && !permanentKeyMaterialImported(state) ? 'PendingImport' : 'Disabled';
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
      // Usable again once every material permanently associated with it is back (AWS).
      if (state.keyState === 'PendingImport' && permanentKeyMaterialImported(next)) next.keyState = 'Enabled';
      if (d.publicKey !== undefined) next.publicKey = d.publicKey;
      break;
    }
    case 'KeyMaterialDeleted':
      next.importedMaterials = state.importedMaterials.map((m) =>
        m.keyMaterialId === event.data.keyMaterialId ? { ...m, importState: 'PENDING_IMPORT', validTo: null, expirationModel: null, importedAt: null } : m,
      );
      // Any permanently associated material (current or NON_CURRENT; not one PENDING_ROTATION) deleted or expired
      // makes the key PendingImport, as AWS does; a key pending deletion keeps its state.
      if (state.keyMaterialIds.includes(event.data.keyMaterialId) && state.keyState !== 'PendingDeletion') next.keyState = 'PendingImport';
      break;
  }
  return next;
}

/**
 * Whether every key material permanently associated with an Origin EXTERNAL key
 * (its current and its earlier versions, not one imported for a rotation that
 * has not happened) is imported: none deleted, none expired. AWS: "Deletion or
 * expiration of any permanently associated key material changes the key state
 * to Pending import", and a key that has all of them is usable. Only imported
 * materials are listed, so a key of any other origin answers false: callers ask
 * it of EXTERNAL keys only.
 *
 * @example
 * // created: a KeyCreated with origin EXTERNAL
 * permanentKeyMaterialImported(foldKey([created, imported])!)                   // true
 * permanentKeyMaterialImported(foldKey([created, imported, deleted])!)          // false: KeyMaterialDeleted took it
 * permanentKeyMaterialImported(foldKey([created, a, b, rotated, deletedA])!)    // false: a is NON_CURRENT, still associated
 */
export function permanentKeyMaterialImported(state: KeyState): boolean {
  const imported = new Set(state.importedMaterials.filter((m) => m.importState === 'IMPORTED').map((m) => m.keyMaterialId));
  return state.keyMaterialIds.length > 0 && state.keyMaterialIds.every((id) => imported.has(id));
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

/**
 * `Enabled` in KeyMetadata: true only in the Enabled state.
 *
 * @example
 * isEnabled(foldKey([created])!)           // true
 * isEnabled(foldKey([created, disabled])!) // false
 */
export const isEnabled = (state: KeyState): boolean => state.keyState === 'Enabled';

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
