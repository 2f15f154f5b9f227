/** Types and helpers the per-area schema modules share. */
import type { InputObjectRef } from '@pothos/core';
import { KEY_SPECS, KEY_STATES, KEY_USAGES, ORIGINS } from '../../domain/key.ts';
import type { Tag } from '../../domain/tags.ts';
import type { RequestContext } from '../../service/context.ts';
import type { AliasListEntry, KeyMetadata } from '../../service/kms-service.ts';
import { builder, type BuilderTypes, type GraphQLContext } from './builder.ts';

export const KeyUsageType = builder.enumType('KeyUsageType', { values: KEY_USAGES });
export const KeySpec = builder.enumType('KeySpec', { values: KEY_SPECS });
export const OriginType = builder.enumType('OriginType', { values: ORIGINS });
export const KeyState = builder.enumType('KeyState', { values: KEY_STATES });
export const KeyManagerType = builder.enumType('KeyManagerType', { values: ['AWS', 'CUSTOMER'] as const });
export const EncryptionAlgorithmSpec = builder.enumType('EncryptionAlgorithmSpec', {
  values: ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'] as const,
});

export const KeyMetadataRef = builder.objectRef<KeyMetadata>('KeyMetadata').implement({
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

export const TagRef = builder.objectRef<Tag>('Tag').implement({
  fields: (t) => ({ tagKey: t.exposeString('tagKey'), tagValue: t.exposeString('tagValue') }),
});

export const TagInput = builder.inputType('TagInput', {
  fields: (t) => ({ tagKey: t.string({ required: true }), tagValue: t.string({ required: true }) }),
});

export const KeyListEntry = builder.objectRef<{ keyId: string; keyArn: string }>('KeyListEntry').implement({
  fields: (t) => ({ keyId: t.exposeString('keyId'), keyArn: t.exposeString('keyArn') }),
});

export const AliasListEntryRef = builder.objectRef<AliasListEntry>('AliasListEntry').implement({
  fields: (t) => ({
    aliasName: t.exposeString('aliasName'),
    aliasArn: t.exposeString('aliasArn'),
    targetKeyId: t.exposeString('targetKeyId'),
    creationDate: t.expose('creationDate', { type: 'DateTime' }),
    lastUpdatedDate: t.expose('lastUpdatedDate', { type: 'DateTime' }),
  }),
});

/** Operations whose AWS response is empty return this, naming the request. */
export const EmptyResponse = builder.objectRef<{ requestId: string }>('EmptyResponse').implement({
  description: 'The response of an operation that returns nothing but success; requestId names its audit record.',
  fields: (t) => ({ requestId: t.exposeString('requestId') }),
});

export const KeyMetadataResponse = (name: string) =>
  builder.objectRef<{ keyMetadata: KeyMetadata }>(name).implement({
    fields: (t) => ({ keyMetadata: t.expose('keyMetadata', { type: KeyMetadataRef }) }),
  });

/** An operation whose AWS response is empty: run it and answer with its request id. */
export function emptyMutation<Shape extends object>(
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

export const KEY_ID = { required: true, description: 'Key id, key ARN, alias name or alias ARN.' } as const;

export const KeyIdInput = (name: string) => builder.inputType(name, { fields: (t) => ({ keyId: t.string(KEY_ID) }) });
