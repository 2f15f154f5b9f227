import type { InputObjectRef } from '@pothos/core';
import { lexicographicSortSchema, type GraphQLSchema } from 'graphql';
import { KEY_SPECS, KEY_STATES, KEY_USAGES, ORIGINS } from '../../domain/key.ts';
import type { Tag } from '../../domain/tags.ts';
import type { AuditEventConnection, AuditEventView } from '../../service/audit-service.ts';
import type { AliasListEntry, KeyMetadata } from '../../service/kms-service.ts';
import type { RequestContext } from '../../service/context.ts';
import { builder, type BuilderTypes, type GraphQLContext } from './builder.ts';

// ------------------------------------------------------------------ enums

const KeyUsageType = builder.enumType('KeyUsageType', { values: KEY_USAGES });
const KeySpec = builder.enumType('KeySpec', { values: KEY_SPECS });
const OriginType = builder.enumType('OriginType', { values: ORIGINS });
const KeyState = builder.enumType('KeyState', { values: KEY_STATES });
const KeyManagerType = builder.enumType('KeyManagerType', { values: ['AWS', 'CUSTOMER'] as const });
const EncryptionAlgorithmSpec = builder.enumType('EncryptionAlgorithmSpec', {
  values: ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'] as const,
});

// ------------------------------------------------------------------ objects

const KeyMetadataRef = builder.objectRef<KeyMetadata>('KeyMetadata').implement({
  description: "A key's metadata, as AWS KMS's KeyMetadata.",
  fields: (t) => ({
    awsAccountId: t.exposeString('awsAccountId'),
    keyId: t.exposeString('keyId'),
    arn: t.exposeString('arn'),
    creationDate: t.expose('creationDate', { type: 'DateTime' }),
    enabled: t.exposeBoolean('enabled'),
    description: t.exposeString('description'),
    keyUsage: t.field({ type: KeyUsageType, resolve: (k) => k.keyUsage as (typeof KEY_USAGES)[number] }),
    keyState: t.field({ type: KeyState, resolve: (k) => k.keyState as (typeof KEY_STATES)[number] }),
    deletionDate: t.expose('deletionDate', { type: 'DateTime', nullable: true }),
    origin: t.field({ type: OriginType, resolve: (k) => k.origin as (typeof ORIGINS)[number] }),
    keyManager: t.field({ type: KeyManagerType, resolve: (k) => k.keyManager as 'AWS' | 'CUSTOMER' }),
    customerMasterKeySpec: t.field({ type: KeySpec, deprecationReason: 'Use keySpec.', resolve: (k) => k.customerMasterKeySpec as (typeof KEY_SPECS)[number] }),
    keySpec: t.field({ type: KeySpec, resolve: (k) => k.keySpec as (typeof KEY_SPECS)[number] }),
    encryptionAlgorithms: t.field({ type: [EncryptionAlgorithmSpec], resolve: (k) => k.encryptionAlgorithms as 'SYMMETRIC_DEFAULT'[] }),
    multiRegion: t.exposeBoolean('multiRegion'),
    pendingDeletionWindowInDays: t.exposeInt('pendingDeletionWindowInDays', { nullable: true }),
    currentKeyMaterialId: t.exposeString('currentKeyMaterialId', { nullable: true }),
  }),
});

const TagRef = builder.objectRef<Tag>('Tag').implement({
  fields: (t) => ({ tagKey: t.exposeString('tagKey'), tagValue: t.exposeString('tagValue') }),
});

const TagInput = builder.inputType('TagInput', {
  fields: (t) => ({ tagKey: t.string({ required: true }), tagValue: t.string({ required: true }) }),
});

const KeyListEntry = builder.objectRef<{ keyId: string; keyArn: string }>('KeyListEntry').implement({
  fields: (t) => ({ keyId: t.exposeString('keyId'), keyArn: t.exposeString('keyArn') }),
});

const AliasListEntryRef = builder.objectRef<AliasListEntry>('AliasListEntry').implement({
  fields: (t) => ({
    aliasName: t.exposeString('aliasName'),
    aliasArn: t.exposeString('aliasArn'),
    targetKeyId: t.exposeString('targetKeyId'),
    creationDate: t.expose('creationDate', { type: 'DateTime' }),
    lastUpdatedDate: t.expose('lastUpdatedDate', { type: 'DateTime' }),
  }),
});

/** Operations whose AWS response is empty return this, naming the request. */
const EmptyResponse = builder.objectRef<{ requestId: string }>('EmptyResponse').implement({
  description: 'The response of an operation that returns nothing but success; requestId names its audit record.',
  fields: (t) => ({ requestId: t.exposeString('requestId') }),
});

const KeyMetadataResponse = (name: string) =>
  builder.objectRef<{ keyMetadata: KeyMetadata }>(name).implement({
    fields: (t) => ({ keyMetadata: t.expose('keyMetadata', { type: KeyMetadataRef }) }),
  });

// ------------------------------------------------------------------ helpers

/** An operation whose AWS response is empty: run it and answer with its request id. */
function emptyMutation<Shape extends object>(
  name: string,
  description: string,
  input: InputObjectRef<BuilderTypes, Shape>,
  run: (ctx: GraphQLContext, req: RequestContext, input: Shape) => Promise<unknown>,
) {
  builder.mutationField(name, (t) =>
    t.field({
      type: EmptyResponse,
      description,
      args: { input: t.arg({ type: input, required: true }) },
      resolve: async (_root, args, ctx) => {
        const req = ctx.newRequest();
        await run(ctx, req, (args as { input: Shape }).input);
        return { requestId: req.requestId };
      },
    }),
  );
}

const KEY_ID = { required: true, description: 'Key id, key ARN, alias name or alias ARN.' } as const;

// ------------------------------------------------------------------ keys

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

const KeyIdInput = (name: string) => builder.inputType(name, { fields: (t) => ({ keyId: t.string(KEY_ID) }) });
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

// ------------------------------------------------------------------ aliases

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

// ------------------------------------------------------------------ audit

const AuditEvent = builder.objectRef<AuditEventView>('AuditEvent').implement({
  description: 'One request, as recorded in the log before it was answered.',
  fields: (t) => ({
    eventId: t.exposeString('eventId'),
    eventName: t.exposeString('eventName'),
    eventSource: t.exposeString('eventSource'),
    eventTime: t.field({ type: 'DateTime', resolve: (e) => new Date(e.eventTime) }),
    requestId: t.exposeString('requestId'),
    awsRegion: t.exposeString('awsRegion'),
    accountId: t.exposeString('accountId', { nullable: true }),
    principalArn: t.string({ nullable: true, resolve: (e) => e.userIdentity.principalArn }),
    identityType: t.string({ resolve: (e) => e.userIdentity.type }),
    accessKeyId: t.string({ nullable: true, resolve: (e) => e.userIdentity.accessKeyId }),
    sourceIp: t.exposeString('sourceIp', { nullable: true }),
    userAgent: t.exposeString('userAgent', { nullable: true }),
    requestParameters: t.expose('requestParameters', { type: 'JSON', nullable: true }),
    responseElements: t.expose('responseElements', { type: 'JSON', nullable: true }),
    resources: t.stringList({ resolve: (e) => e.resources.map((r) => r.arn) }),
    readOnly: t.exposeBoolean('readOnly'),
    outcome: t.exposeString('outcome'),
    errorCode: t.string({ nullable: true, resolve: (e) => e.errorCode ?? null }),
    errorMessage: t.string({ nullable: true, resolve: (e) => e.errorMessage ?? null }),
    encryptionContext: t.field({
      type: 'EncryptionContext',
      nullable: true,
      description: 'The encryption context of a cryptographic request (for ReEncrypt, the source context).',
      resolve: (e) => {
        const p = e.requestParameters ?? {};
        return (p['encryptionContext'] ?? p['sourceEncryptionContext'] ?? null) as Record<string, string> | null;
      },
    }),
    keyMaterialId: t.string({ nullable: true, resolve: (e) => (e.additionalEventData?.['keyMaterialId'] as string | undefined) ?? null }),
    dataKeyId: t.string({
      nullable: true,
      description: 'The data key this request generated or used: the ciphertext id of a GenerateDataKey result.',
      resolve: (e) => (e.additionalEventData?.['dataKeyId'] as string | undefined) ?? null,
    }),
    ciphertextId: t.string({ nullable: true, resolve: (e) => (e.additionalEventData?.['ciphertextId'] as string | undefined) ?? null }),
    additionalEventData: t.expose('additionalEventData', { type: 'JSON', nullable: true }),
  }),
});

const PageInfo = builder
  .objectRef<{ hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null }>('PageInfo')
  .implement({
    fields: (t) => ({
      hasNextPage: t.exposeBoolean('hasNextPage'),
      hasPreviousPage: t.exposeBoolean('hasPreviousPage'),
      startCursor: t.exposeString('startCursor', { nullable: true }),
      endCursor: t.exposeString('endCursor', { nullable: true }),
    }),
  });

const AuditEventEdge = builder.objectRef<{ cursor: string; node: AuditEventView }>('AuditEventEdge').implement({
  fields: (t) => ({ cursor: t.exposeString('cursor'), node: t.expose('node', { type: AuditEvent }) }),
});

builder.queryField('auditEvents', (t) =>
  t.field({
    type: builder.objectRef<AuditEventConnection>('AuditEventConnection').implement({
      fields: (f) => ({
        edges: f.expose('edges', { type: [AuditEventEdge] }),
        pageInfo: f.expose('pageInfo', { type: PageInfo }),
      }),
    }),
    description: "Your account's audit records, newest first (Relay connection).",
    args: { first: t.arg.int(), after: t.arg.string() },
    resolve: (_root, args, ctx) => ctx.audit.auditEvents(ctx.newRequest(), { first: args.first ?? null, after: args.after ?? null }),
  }),
);

// ------------------------------------------------------------------ cryptography

const EncryptionAlgorithmInput = EncryptionAlgorithmSpec;
const DataKeySpec = builder.enumType('DataKeySpec', { values: ['AES_256', 'AES_128'] as const });

const EncryptInput = builder.inputType('EncryptInput', {
  fields: (t) => ({
    keyId: t.string(KEY_ID),
    plaintext: t.field({ type: 'Base64', required: true, description: '1-4096 bytes.' }),
    encryptionContext: t.field({ type: 'EncryptionContext' }),
    grantTokens: t.stringList(),
    encryptionAlgorithm: t.field({ type: EncryptionAlgorithmInput }),
    dryRun: t.boolean(),
  }),
});

builder.mutationField('encrypt', (t) =>
  t.field({
    type: builder.objectRef<{ ciphertextBlob: Buffer; keyId: string; encryptionAlgorithm: string }>('EncryptResponse').implement({
      fields: (f) => ({
        ciphertextBlob: f.expose('ciphertextBlob', { type: 'Base64' }),
        keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
        encryptionAlgorithm: f.field({ type: EncryptionAlgorithmSpec, resolve: () => 'SYMMETRIC_DEFAULT' as const }),
      }),
    }),
    description: 'Encrypt: up to 4096 bytes under a KMS key, bound to the encryption context.',
    args: { input: t.arg({ type: EncryptInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.crypto.encrypt(ctx.newRequest(), input),
  }),
);

const DecryptInput = builder.inputType('DecryptInput', {
  fields: (t) => ({
    ciphertextBlob: t.field({ type: 'Base64', required: true }),
    keyId: t.string({ description: 'Optional for symmetric ciphertext; when given it must name the key in the blob.' }),
    encryptionContext: t.field({ type: 'EncryptionContext' }),
    grantTokens: t.stringList(),
    encryptionAlgorithm: t.field({ type: EncryptionAlgorithmInput }),
    dryRun: t.boolean(),
  }),
});

builder.mutationField('decrypt', (t) =>
  t.field({
    type: builder.objectRef<{ plaintext: Buffer; keyId: string; encryptionAlgorithm: string; keyMaterialId: string }>('DecryptResponse').implement({
      fields: (f) => ({
        plaintext: f.expose('plaintext', { type: 'Base64' }),
        keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
        encryptionAlgorithm: f.field({ type: EncryptionAlgorithmSpec, resolve: () => 'SYMMETRIC_DEFAULT' as const }),
        keyMaterialId: f.exposeString('keyMaterialId'),
      }),
    }),
    description: 'Decrypt: a mutation because it is a recorded action. The encryption context must be the one used to encrypt.',
    args: { input: t.arg({ type: DecryptInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.crypto.decrypt(ctx.newRequest(), input),
  }),
);

const ReEncryptInput = builder.inputType('ReEncryptInput', {
  fields: (t) => ({
    ciphertextBlob: t.field({ type: 'Base64', required: true }),
    sourceEncryptionContext: t.field({ type: 'EncryptionContext' }),
    sourceKeyId: t.string(),
    destinationKeyId: t.string({ required: true }),
    destinationEncryptionContext: t.field({ type: 'EncryptionContext' }),
    sourceEncryptionAlgorithm: t.field({ type: EncryptionAlgorithmInput }),
    destinationEncryptionAlgorithm: t.field({ type: EncryptionAlgorithmInput }),
    grantTokens: t.stringList(),
    dryRun: t.boolean(),
  }),
});

builder.mutationField('reEncrypt', (t) =>
  t.field({
    type: builder
      .objectRef<{ ciphertextBlob: Buffer; sourceKeyId: string; keyId: string; sourceKeyMaterialId: string; destinationKeyMaterialId: string }>('ReEncryptResponse')
      .implement({
        fields: (f) => ({
          ciphertextBlob: f.expose('ciphertextBlob', { type: 'Base64' }),
          sourceKeyId: f.exposeString('sourceKeyId'),
          keyId: f.exposeString('keyId', { description: 'The destination key ARN.' }),
          sourceEncryptionAlgorithm: f.field({ type: EncryptionAlgorithmSpec, resolve: () => 'SYMMETRIC_DEFAULT' as const }),
          destinationEncryptionAlgorithm: f.field({ type: EncryptionAlgorithmSpec, resolve: () => 'SYMMETRIC_DEFAULT' as const }),
          sourceKeyMaterialId: f.exposeString('sourceKeyMaterialId'),
          destinationKeyMaterialId: f.exposeString('destinationKeyMaterialId'),
        }),
      }),
    description: 'ReEncrypt: decrypt and encrypt again under another key or context, inside the service.',
    args: { input: t.arg({ type: ReEncryptInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.crypto.reEncrypt(ctx.newRequest(), input),
  }),
);

const GenerateDataKeyInput = (name: string) =>
  builder.inputType(name, {
    fields: (t) => ({
      keyId: t.string(KEY_ID),
      encryptionContext: t.field({ type: 'EncryptionContext' }),
      keySpec: t.field({ type: DataKeySpec }),
      numberOfBytes: t.int({ description: '1-1024; give exactly one of keySpec and numberOfBytes.' }),
      grantTokens: t.stringList(),
      dryRun: t.boolean(),
    }),
  });

builder.mutationField('generateDataKey', (t) =>
  t.field({
    type: builder.objectRef<{ plaintext: Buffer; ciphertextBlob: Buffer; keyId: string; keyMaterialId: string }>('GenerateDataKeyResponse').implement({
      fields: (f) => ({
        plaintext: f.expose('plaintext', { type: 'Base64' }),
        ciphertextBlob: f.expose('ciphertextBlob', { type: 'Base64' }),
        keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
        keyMaterialId: f.exposeString('keyMaterialId'),
      }),
    }),
    description: 'GenerateDataKey: a data key for envelope encryption, in plaintext and encrypted. Its ciphertext id is its dataKeyId in the audit log.',
    args: { input: t.arg({ type: GenerateDataKeyInput('GenerateDataKeyInput'), required: true }) },
    resolve: (_root, { input }, ctx) => ctx.crypto.generateDataKey(ctx.newRequest(), input),
  }),
);

builder.mutationField('generateDataKeyWithoutPlaintext', (t) =>
  t.field({
    type: builder.objectRef<{ ciphertextBlob: Buffer; keyId: string; keyMaterialId: string }>('GenerateDataKeyWithoutPlaintextResponse').implement({
      fields: (f) => ({
        ciphertextBlob: f.expose('ciphertextBlob', { type: 'Base64' }),
        keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
        keyMaterialId: f.exposeString('keyMaterialId'),
      }),
    }),
    description: 'GenerateDataKeyWithoutPlaintext: only the encrypted data key.',
    args: { input: t.arg({ type: GenerateDataKeyInput('GenerateDataKeyWithoutPlaintextInput'), required: true }) },
    resolve: (_root, { input }, ctx) => ctx.crypto.generateDataKeyWithoutPlaintext(ctx.newRequest(), input),
  }),
);

const GenerateRandomInput = builder.inputType('GenerateRandomInput', {
  fields: (t) => ({ numberOfBytes: t.int({ description: '1-1024.' }), customKeyStoreId: t.string() }),
});

builder.mutationField('generateRandom', (t) =>
  t.field({
    type: builder.objectRef<{ plaintext: Buffer }>('GenerateRandomResponse').implement({
      fields: (f) => ({ plaintext: f.expose('plaintext', { type: 'Base64' }) }),
    }),
    description: 'GenerateRandom: random bytes from the service CSPRNG.',
    args: { input: t.arg({ type: GenerateRandomInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.crypto.generateRandom(ctx.newRequest(), input),
  }),
);

// ------------------------------------------------------------------ rotation

const EnableKeyRotationInput = builder.inputType('EnableKeyRotationInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), rotationPeriodInDays: t.int({ description: '90-2560, default 365.' }) }),
});
emptyMutation('enableKeyRotation', 'EnableKeyRotation: automatic rotation every rotationPeriodInDays.', EnableKeyRotationInput, (ctx, req, input) => ctx.rotation.enableKeyRotation(req, input));
emptyMutation('disableKeyRotation', 'DisableKeyRotation.', KeyIdInput('DisableKeyRotationInput'), (ctx, req, input) => ctx.rotation.disableKeyRotation(req, input));

builder.mutationField('rotateKeyOnDemand', (t) =>
  t.field({
    type: builder.objectRef<{ keyId: string }>('RotateKeyOnDemandResponse').implement({ fields: (f) => ({ keyId: f.exposeString('keyId') }) }),
    description: 'RotateKeyOnDemand: new key material now; at most 25 per key. Older material still decrypts.',
    args: { input: t.arg({ type: KeyIdInput('RotateKeyOnDemandInput'), required: true }) },
    resolve: (_root, { input }, ctx) => ctx.rotation.rotateKeyOnDemand(ctx.newRequest(), input),
  }),
);

builder.queryField('getKeyRotationStatus', (t) =>
  t.field({
    type: builder
      .objectRef<{ keyId: string; keyRotationEnabled: boolean; rotationPeriodInDays: number | null; nextRotationDate: Date | null; onDemandRotationStartDate: Date | null }>('GetKeyRotationStatusResponse')
      .implement({
        fields: (f) => ({
          keyId: f.exposeString('keyId', { description: 'The key ARN.' }),
          keyRotationEnabled: f.exposeBoolean('keyRotationEnabled'),
          rotationPeriodInDays: f.exposeInt('rotationPeriodInDays', { nullable: true }),
          nextRotationDate: f.expose('nextRotationDate', { type: 'DateTime', nullable: true }),
          onDemandRotationStartDate: f.expose('onDemandRotationStartDate', { type: 'DateTime', nullable: true }),
        }),
      }),
    description: 'GetKeyRotationStatus.',
    args: { input: t.arg({ type: KeyIdInput('GetKeyRotationStatusInput'), required: true }) },
    resolve: (_root, { input }, ctx) => ctx.rotation.getKeyRotationStatus(ctx.newRequest(), input),
  }),
);

const RotationType = builder.enumType('RotationType', { values: ['AUTOMATIC', 'ON_DEMAND'] as const });
const RotationsListEntry = builder
  .objectRef<{ keyId: string; keyMaterialId: string; rotationDate: Date; rotationType: 'AUTOMATIC' | 'ON_DEMAND' }>('RotationsListEntry')
  .implement({
    fields: (f) => ({
      keyId: f.exposeString('keyId'),
      keyMaterialId: f.exposeString('keyMaterialId'),
      rotationDate: f.expose('rotationDate', { type: 'DateTime' }),
      rotationType: f.field({ type: RotationType, resolve: (r) => r.rotationType }),
    }),
  });

const ListKeyRotationsInput = builder.inputType('ListKeyRotationsInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), limit: t.int(), marker: t.string() }),
});
builder.queryField('listKeyRotations', (t) =>
  t.field({
    type: builder.objectRef<{ rotations: { keyId: string; keyMaterialId: string; rotationDate: Date; rotationType: 'AUTOMATIC' | 'ON_DEMAND' }[]; nextMarker: string | null; truncated: boolean }>('ListKeyRotationsResponse').implement({
      fields: (f) => ({
        rotations: f.expose('rotations', { type: [RotationsListEntry] }),
        nextMarker: f.exposeString('nextMarker', { nullable: true }),
        truncated: f.exposeBoolean('truncated'),
      }),
    }),
    description: 'ListKeyRotations: completed rotations, oldest first.',
    args: { input: t.arg({ type: ListKeyRotationsInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.rotation.listKeyRotations(ctx.newRequest(), input),
  }),
);

/** GraphQL field -> AWS operation name, for audit records of requests that never reach a resolver. */
export const OPERATION_EVENT_NAMES: Record<string, string> = {
  auditEvents: 'ListAuditEvents',
};

let schema: GraphQLSchema | undefined;

/** The schema, built once, with types and fields sorted (as printed to graphql/schema.graphql). */
export function keyledgerSchema(): GraphQLSchema {
  schema ??= lexicographicSortSchema(builder.toSchema());
  return schema;
}
