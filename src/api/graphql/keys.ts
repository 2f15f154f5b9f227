/** KMS key, tag and alias operations. */
import { KEY_SPECS, KEY_STATES, KEY_USAGES } from '../../domain/key.ts';
import type { Tag } from '../../domain/tags.ts';
import type { AliasListEntry } from '../../service/alias-service.ts';
import type { KeyLastUsageResult, PublicKeyResult } from '../../service/kms-service.ts';
import { builder } from './builder.ts';
import {
  algorithmFields,
  AliasListEntryRef,
  KEY_ID,
  KeyIdInput,
  KeyListEntry,
  KeyMetadataResponse,
  KeySpec,
  KeyState,
  KeyUsageType,
  OriginType,
  TagInput,
  TagRef,
  emptyKmsMutation,
  kmsField,
} from './common.ts';

const CreateKeyInput = builder.inputType('CreateKeyInput', {
  fields: (t) => ({
    description: t.string(),
    keyUsage: t.field({ type: KeyUsageType }),
    keySpec: t.field({ type: KeySpec }),
    customerMasterKeySpec: t.field({ type: KeySpec, deprecationReason: 'Use keySpec.' }),
    origin: t.field({ type: OriginType }),
    policy: t.string({ description: 'A key policy document (JSON). Stored as given; the default delegates to the account.' }),
    bypassPolicyLockoutSafetyCheck: t.boolean(),
    tags: t.field({ type: [TagInput] }),
    multiRegion: t.boolean(),
    customKeyStoreId: t.string(),
  }),
});

kmsField('CreateKey', {
  type: KeyMetadataResponse('CreateKeyResponse'),
  description:
    'CreateKey: a new key owned by your account: symmetric encryption (the default), RSA, ECC, ' +
    'Ed25519 or ML-DSA key pairs, or HMAC. keyUsage is required for every keySpec but SYMMETRIC_DEFAULT.',
  input: CreateKeyInput,
  inputRequired: false,
});

const DescribeKeyInput = builder.inputType('DescribeKeyInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), grantTokens: t.stringList() }),
});

kmsField('DescribeKey', {
  type: KeyMetadataResponse('DescribeKeyResponse'),
  description: 'DescribeKey: by key id, key ARN, alias name or alias ARN.',
  input: DescribeKeyInput,
});

const ListKeysInput = builder.inputType('ListKeysInput', {
  fields: (t) => ({ limit: t.int(), marker: t.string() }),
});

kmsField('ListKeys', {
  type: builder.objectRef<{ keys: { keyId: string; keyArn: string }[]; nextMarker: string | null; truncated: boolean }>('ListKeysResponse').implement({
    fields: (f) => ({
      keys: f.expose('keys', { type: [KeyListEntry] }),
      nextMarker: f.exposeString('nextMarker', { nullable: true }),
      truncated: f.exposeBoolean('truncated'),
    }),
  }),
  description: "ListKeys: your account's keys, in pages (limit 1-1000).",
  input: ListKeysInput,
  inputRequired: false,
});

const GetPublicKeyInput = builder.inputType('GetPublicKeyInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), grantTokens: t.stringList() }),
});

kmsField('GetPublicKey', {
  type: builder.objectRef<PublicKeyResult>('GetPublicKeyResponse').implement({
    fields: (f) => ({
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      publicKey: f.expose('publicKey', { type: 'Base64', description: 'DER-encoded X.509 SubjectPublicKeyInfo (RFC 5280).' }),
      customerMasterKeySpec: f.field({
        type: KeySpec,
        deprecationReason: 'Use keySpec.',
        resolve: (r) => r.customerMasterKeySpec as (typeof KEY_SPECS)[number],
      }),
      keySpec: f.field({ type: KeySpec, resolve: (r) => r.keySpec as (typeof KEY_SPECS)[number] }),
      keyUsage: f.field({ type: KeyUsageType, resolve: (r) => r.keyUsage as (typeof KEY_USAGES)[number] }),
      ...algorithmFields(f),
    }),
  }),
  description:
    "GetPublicKey: an asymmetric key's public key (DER SubjectPublicKeyInfo), with its spec, " +
    'usage and algorithms. Symmetric and HMAC keys have none (UnsupportedOperationException).',
  input: GetPublicKeyInput,
});

const KEY_LAST_USAGE_OPERATIONS = [
  'Decrypt',
  'DeriveSharedSecret',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateMac',
  'ReEncrypt',
  'Sign',
  'Verify',
  'VerifyMac',
] as const;
const KeyLastUsageTrackingOperation = builder.enumType('KeyLastUsageTrackingOperation', { values: KEY_LAST_USAGE_OPERATIONS });
type KeyLastUsageOperation = (typeof KEY_LAST_USAGE_OPERATIONS)[number];

const KeyLastUsageData = builder.objectRef<NonNullable<KeyLastUsageResult['keyLastUsage']>>('KeyLastUsageData').implement({
  description: 'The last successful cryptographic operation with a key.',
  fields: (f) => ({
    operation: f.field({ type: KeyLastUsageTrackingOperation, resolve: (u) => u.operation as KeyLastUsageOperation }),
    timestamp: f.expose('timestamp', { type: 'DateTime' }),
    cloudTrailEventId: f.exposeString('cloudTrailEventId', { description: "The audit record's event id (auditEvents)." }),
    kmsRequestId: f.exposeString('kmsRequestId', { description: "The request id, the audit record's requestId." }),
  }),
});

kmsField('GetKeyLastUsage', {
  type: builder.objectRef<KeyLastUsageResult>('GetKeyLastUsageResponse').implement({
    fields: (f) => ({
      keyId: f.exposeString('keyId', { description: 'The key id.' }),
      keyLastUsage: f.field({
        type: KeyLastUsageData,
        nullable: true,
        description: 'Null when the key has had no successful cryptographic operation since trackingStartDate.',
        resolve: (r) => r.keyLastUsage,
      }),
      trackingStartDate: f.expose('trackingStartDate', {
        type: 'DateTime',
        description: "keyledger records every request from a key's creation on: the key's creation date.",
      }),
      keyCreationDate: f.expose('keyCreationDate', { type: 'DateTime' }),
    }),
  }),
  description:
    "GetKeyLastUsage: the key's last successful cryptographic operation, " +
    "from the audit log's usage rollups. Key id or key ARN only (no alias); the caller's account's keys only.",
  input: builder.inputType('GetKeyLastUsageInput', {
    fields: (t) => ({ keyId: t.string({ required: true, description: 'Key id or key ARN (alias names are not supported, as in AWS).' }) }),
  }),
});

const UpdateKeyDescriptionInput = builder.inputType('UpdateKeyDescriptionInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), description: t.string({ required: true }) }),
});
emptyKmsMutation('UpdateKeyDescription', 'UpdateKeyDescription.', UpdateKeyDescriptionInput);

emptyKmsMutation('EnableKey', 'EnableKey: Disabled -> Enabled.', KeyIdInput('EnableKeyInput'));
emptyKmsMutation('DisableKey', 'DisableKey: Enabled -> Disabled; the key can no longer be used.', KeyIdInput('DisableKeyInput'));

const ScheduleKeyDeletionInput = builder.inputType('ScheduleKeyDeletionInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), pendingWindowInDays: t.int({ description: '7-30, default 30.' }) }),
});
kmsField('ScheduleKeyDeletion', {
  type: builder.objectRef<{ keyId: string; deletionDate: Date; keyState: string; pendingWindowInDays: number }>('ScheduleKeyDeletionResponse').implement({
    fields: (f) => ({
      keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
      deletionDate: f.expose('deletionDate', { type: 'DateTime' }),
      keyState: f.field({ type: KeyState, resolve: (r) => r.keyState as (typeof KEY_STATES)[number] }),
      pendingWindowInDays: f.exposeInt('pendingWindowInDays'),
    }),
  }),
  description: 'ScheduleKeyDeletion: PendingDeletion until deletionDate, when the worker deletes the key.',
  input: ScheduleKeyDeletionInput,
});

kmsField('CancelKeyDeletion', {
  type: builder.objectRef<{ keyId: string }>('CancelKeyDeletionResponse').implement({
    fields: (f) => ({ keyId: f.exposeString('keyId', { description: 'The key ARN.' }) }),
  }),
  description: 'CancelKeyDeletion: PendingDeletion -> Disabled.',
  input: KeyIdInput('CancelKeyDeletionInput'),
});

const TagResourceInput = builder.inputType('TagResourceInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), tags: t.field({ type: [TagInput], required: true }) }),
});
emptyKmsMutation('TagResource', 'TagResource: add or overwrite tags (at most 50 per key).', TagResourceInput);

const UntagResourceInput = builder.inputType('UntagResourceInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), tagKeys: t.stringList({ required: true }) }),
});
emptyKmsMutation('UntagResource', 'UntagResource.', UntagResourceInput);

const ListResourceTagsInput = builder.inputType('ListResourceTagsInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), limit: t.int(), marker: t.string() }),
});
kmsField('ListResourceTags', {
  type: builder.objectRef<{ tags: Tag[]; nextMarker: string | null; truncated: boolean }>('ListResourceTagsResponse').implement({
    fields: (f) => ({
      tags: f.expose('tags', { type: [TagRef] }),
      nextMarker: f.exposeString('nextMarker', { nullable: true }),
      truncated: f.exposeBoolean('truncated'),
    }),
  }),
  description: "ListResourceTags: a key's tags, in pages (limit 1-50).",
  input: ListResourceTagsInput,
});

const AliasInput = (name: string) =>
  builder.inputType(name, {
    fields: (t) => ({
      aliasName: t.string({ required: true, description: 'alias/<name>' }),
      targetKeyId: t.string({ required: true, description: 'Key id or key ARN (not an alias).' }),
    }),
  });
emptyKmsMutation('CreateAlias', 'CreateAlias: a friendly name for a key, unique in your account.', AliasInput('CreateAliasInput'));
emptyKmsMutation('UpdateAlias', 'UpdateAlias: point an alias at another key.', AliasInput('UpdateAliasInput'));

const DeleteAliasInput = builder.inputType('DeleteAliasInput', {
  fields: (t) => ({ aliasName: t.string({ required: true }) }),
});
emptyKmsMutation('DeleteAlias', 'DeleteAlias.', DeleteAliasInput);

const ListAliasesInput = builder.inputType('ListAliasesInput', {
  fields: (t) => ({ keyId: t.string({ description: 'Only aliases of this key (key id or ARN).' }), limit: t.int(), marker: t.string() }),
});
kmsField('ListAliases', {
  type: builder.objectRef<{ aliases: AliasListEntry[]; nextMarker: string | null; truncated: boolean }>('ListAliasesResponse').implement({
    fields: (f) => ({
      aliases: f.expose('aliases', { type: [AliasListEntryRef] }),
      nextMarker: f.exposeString('nextMarker', { nullable: true }),
      truncated: f.exposeBoolean('truncated'),
    }),
  }),
  description: "ListAliases: your account's aliases, in pages (limit 1-100).",
  input: ListAliasesInput,
  inputRequired: false,
});
