/** KMS key, tag and alias operations. */
import { KEY_STATES } from '../../domain/key.ts';
import type { Tag } from '../../domain/tags.ts';
import type { AliasListEntry } from '../../service/kms-service.ts';
import { builder } from './builder.ts';
import { AliasListEntryRef, KEY_ID, KeyIdInput, KeyListEntry, KeyMetadataResponse, KeySpec, KeyState, KeyUsageType, OriginType, TagInput, TagRef, emptyMutation } from './common.ts';

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

builder.mutationField('createKey', (t) =>
  t.field({
    type: KeyMetadataResponse('CreateKeyResponse'),
    description: 'CreateKey: a new symmetric encryption key owned by your account.',
    args: { input: t.arg({ type: CreateKeyInput, required: false }) },
    resolve: (_root, { input }, ctx) => ctx.kms.createKey(ctx.newRequest(), input ?? {}),
  }),
);

const DescribeKeyInput = builder.inputType('DescribeKeyInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), grantTokens: t.stringList() }),
});

builder.queryField('describeKey', (t) =>
  t.field({
    type: KeyMetadataResponse('DescribeKeyResponse'),
    description: 'DescribeKey: by key id, key ARN, alias name or alias ARN.',
    args: { input: t.arg({ type: DescribeKeyInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.kms.describeKey(ctx.newRequest(), input),
  }),
);

const ListKeysInput = builder.inputType('ListKeysInput', {
  fields: (t) => ({ limit: t.int(), marker: t.string() }),
});

builder.queryField('listKeys', (t) =>
  t.field({
    type: builder.objectRef<{ keys: { keyId: string; keyArn: string }[]; nextMarker: string | null; truncated: boolean }>('ListKeysResponse').implement({
      fields: (f) => ({
        keys: f.expose('keys', { type: [KeyListEntry] }),
        nextMarker: f.exposeString('nextMarker', { nullable: true }),
        truncated: f.exposeBoolean('truncated'),
      }),
    }),
    description: "ListKeys: your account's keys, in pages (limit 1-1000).",
    args: { input: t.arg({ type: ListKeysInput, required: false }) },
    resolve: (_root, { input }, ctx) => ctx.kms.listKeys(ctx.newRequest(), input ?? {}),
  }),
);

const UpdateKeyDescriptionInput = builder.inputType('UpdateKeyDescriptionInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), description: t.string({ required: true }) }),
});
emptyMutation('updateKeyDescription', 'UpdateKeyDescription.', UpdateKeyDescriptionInput, (ctx, req, input) => ctx.kms.updateKeyDescription(req, input));

emptyMutation('enableKey', 'EnableKey: Disabled -> Enabled.', KeyIdInput('EnableKeyInput'), (ctx, req, input) => ctx.kms.enableKey(req, input));
emptyMutation('disableKey', 'DisableKey: Enabled -> Disabled; the key can no longer be used.', KeyIdInput('DisableKeyInput'), (ctx, req, input) => ctx.kms.disableKey(req, input));

const ScheduleKeyDeletionInput = builder.inputType('ScheduleKeyDeletionInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), pendingWindowInDays: t.int({ description: '7-30, default 30.' }) }),
});
builder.mutationField('scheduleKeyDeletion', (t) =>
  t.field({
    type: builder.objectRef<{ keyId: string; deletionDate: Date; keyState: string; pendingWindowInDays: number }>('ScheduleKeyDeletionResponse').implement({
      fields: (f) => ({
        keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
        deletionDate: f.expose('deletionDate', { type: 'DateTime' }),
        keyState: f.field({ type: KeyState, resolve: (r) => r.keyState as (typeof KEY_STATES)[number] }),
        pendingWindowInDays: f.exposeInt('pendingWindowInDays'),
      }),
    }),
    description: 'ScheduleKeyDeletion: PendingDeletion until deletionDate, when the worker deletes the key.',
    args: { input: t.arg({ type: ScheduleKeyDeletionInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.kms.scheduleKeyDeletion(ctx.newRequest(), input),
  }),
);

builder.mutationField('cancelKeyDeletion', (t) =>
  t.field({
    type: builder.objectRef<{ keyId: string }>('CancelKeyDeletionResponse').implement({
      fields: (f) => ({ keyId: f.exposeString('keyId', { description: 'The key ARN.' }) }),
    }),
    description: 'CancelKeyDeletion: PendingDeletion -> Disabled.',
    args: { input: t.arg({ type: KeyIdInput('CancelKeyDeletionInput'), required: true }) },
    resolve: (_root, { input }, ctx) => ctx.kms.cancelKeyDeletion(ctx.newRequest(), input),
  }),
);

const TagResourceInput = builder.inputType('TagResourceInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), tags: t.field({ type: [TagInput], required: true }) }),
});
emptyMutation('tagResource', 'TagResource: add or overwrite tags (at most 50 per key).', TagResourceInput, (ctx, req, input) => ctx.kms.tagResource(req, input));

const UntagResourceInput = builder.inputType('UntagResourceInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), tagKeys: t.stringList({ required: true }) }),
});
emptyMutation('untagResource', 'UntagResource.', UntagResourceInput, (ctx, req, input) => ctx.kms.untagResource(req, input));

const ListResourceTagsInput = builder.inputType('ListResourceTagsInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), limit: t.int(), marker: t.string() }),
});
builder.queryField('listResourceTags', (t) =>
  t.field({
    type: builder.objectRef<{ tags: Tag[]; nextMarker: string | null; truncated: boolean }>('ListResourceTagsResponse').implement({
      fields: (f) => ({
        tags: f.expose('tags', { type: [TagRef] }),
        nextMarker: f.exposeString('nextMarker', { nullable: true }),
        truncated: f.exposeBoolean('truncated'),
      }),
    }),
    description: "ListResourceTags: a key's tags, in pages (limit 1-50).",
    args: { input: t.arg({ type: ListResourceTagsInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.kms.listResourceTags(ctx.newRequest(), input),
  }),
);

const AliasInput = (name: string) =>
  builder.inputType(name, {
    fields: (t) => ({
      aliasName: t.string({ required: true, description: 'alias/<name>' }),
      targetKeyId: t.string({ required: true, description: 'Key id or key ARN (not an alias).' }),
    }),
  });
emptyMutation('createAlias', 'CreateAlias: a friendly name for a key, unique in your account.', AliasInput('CreateAliasInput'), (ctx, req, input) => ctx.kms.createAlias(req, input));
emptyMutation('updateAlias', 'UpdateAlias: point an alias at another key.', AliasInput('UpdateAliasInput'), (ctx, req, input) => ctx.kms.updateAlias(req, input));

const DeleteAliasInput = builder.inputType('DeleteAliasInput', {
  fields: (t) => ({ aliasName: t.string({ required: true }) }),
});
emptyMutation('deleteAlias', 'DeleteAlias.', DeleteAliasInput, (ctx, req, input) => ctx.kms.deleteAlias(req, input));

const ListAliasesInput = builder.inputType('ListAliasesInput', {
  fields: (t) => ({ keyId: t.string({ description: 'Only aliases of this key (key id or ARN).' }), limit: t.int(), marker: t.string() }),
});
builder.queryField('listAliases', (t) =>
  t.field({
    type: builder.objectRef<{ aliases: AliasListEntry[]; nextMarker: string | null; truncated: boolean }>('ListAliasesResponse').implement({
      fields: (f) => ({
        aliases: f.expose('aliases', { type: [AliasListEntryRef] }),
        nextMarker: f.exposeString('nextMarker', { nullable: true }),
        truncated: f.exposeBoolean('truncated'),
      }),
    }),
    description: "ListAliases: your account's aliases, in pages (limit 1-100).",
    args: { input: t.arg({ type: ListAliasesInput, required: false }) },
    resolve: (_root, { input }, ctx) => ctx.kms.listAliases(ctx.newRequest(), input ?? {}),
  }),
);
