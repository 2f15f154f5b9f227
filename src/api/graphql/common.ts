/** Types and helpers the per-area schema modules share. */
import type { InputObjectRef, ObjectRef } from '@pothos/core';
import { EXPIRATION_MODELS, KEY_SPECS, KEY_STATES, KEY_USAGES, ORIGINS } from '../../domain/key.ts';
import type { Tag } from '../../domain/tags.ts';
import type { RequestContext } from '../../service/context.ts';
import type { AliasListEntry } from '../../service/alias-service.ts';
import type { KeyMetadata } from '../../domain/key-metadata.ts';
import { kmsOperation, type KmsOperation } from '../../service/operations.ts';
import { builder, type BuilderTypes, type GraphQLContext } from './builder.ts';

export const KeyUsageType = builder.enumType('KeyUsageType', { values: KEY_USAGES });
export const KeySpec = builder.enumType('KeySpec', { values: KEY_SPECS });
export const OriginType = builder.enumType('OriginType', { values: ORIGINS });
export const KeyState = builder.enumType('KeyState', { values: KEY_STATES });
export const KeyManagerType = builder.enumType('KeyManagerType', { values: ['AWS', 'CUSTOMER'] as const });
export const EncryptionAlgorithmSpec = builder.enumType('EncryptionAlgorithmSpec', {
  values: ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'] as const,
});

export const SigningAlgorithmSpec = builder.enumType('SigningAlgorithmSpec', {
  values: [
    'RSASSA_PSS_SHA_256',
    'RSASSA_PSS_SHA_384',
    'RSASSA_PSS_SHA_512',
    'RSASSA_PKCS1_V1_5_SHA_256',
    'RSASSA_PKCS1_V1_5_SHA_384',
    'RSASSA_PKCS1_V1_5_SHA_512',
    'ECDSA_SHA_256',
    'ECDSA_SHA_384',
    'ECDSA_SHA_512',
    'SM2DSA',
    'ML_DSA_SHAKE_256',
    'ED25519_SHA_512',
    'ED25519_PH_SHA_512',
  ] as const,
});
export const MacAlgorithmSpec = builder.enumType('MacAlgorithmSpec', { values: ['HMAC_SHA_224', 'HMAC_SHA_256', 'HMAC_SHA_384', 'HMAC_SHA_512'] as const });
export const KeyAgreementAlgorithmSpec = builder.enumType('KeyAgreementAlgorithmSpec', { values: ['ECDH'] as const });

type EnumValue<E> = E extends PothosSchemaTypes.EnumRef<BuilderTypes, infer V> ? V : never;

/**
 * The algorithm lists of KeyMetadata and GetPublicKey: each is null where AWS
 * leaves the member out (a list that does not apply to the key's spec and usage).
 */
export function algorithmFields<
  T extends { encryptionAlgorithms?: string[]; signingAlgorithms?: string[]; macAlgorithms?: string[]; keyAgreementAlgorithms?: string[] },
>(t: PothosSchemaTypes.ObjectFieldBuilder<BuilderTypes, T>) {
  return {
    encryptionAlgorithms: t.field({
      type: [EncryptionAlgorithmSpec],
      nullable: true,
      description: 'Encryption algorithms of an ENCRYPT_DECRYPT key; null for other keys.',
      resolve: (k) => (k.encryptionAlgorithms ?? null) as EnumValue<typeof EncryptionAlgorithmSpec>[] | null,
    }),
    signingAlgorithms: t.field({
      type: [SigningAlgorithmSpec],
      nullable: true,
      description: 'Signing algorithms of a SIGN_VERIFY key; null for other keys.',
      resolve: (k) => (k.signingAlgorithms ?? null) as EnumValue<typeof SigningAlgorithmSpec>[] | null,
    }),
    macAlgorithms: t.field({
      type: [MacAlgorithmSpec],
      nullable: true,
      description: 'MAC algorithms of a GENERATE_VERIFY_MAC (HMAC) key; null for other keys.',
      resolve: (k) => (k.macAlgorithms ?? null) as EnumValue<typeof MacAlgorithmSpec>[] | null,
    }),
    keyAgreementAlgorithms: t.field({
      type: [KeyAgreementAlgorithmSpec],
      nullable: true,
      description: 'Key agreement algorithms of a KEY_AGREEMENT key; null for other keys.',
      resolve: (k) => (k.keyAgreementAlgorithms ?? null) as EnumValue<typeof KeyAgreementAlgorithmSpec>[] | null,
    }),
  };
}

export const ExpirationModelType = builder.enumType('ExpirationModelType', { values: EXPIRATION_MODELS });

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
    ...algorithmFields(t),
    multiRegion: t.exposeBoolean('multiRegion'),
    pendingDeletionWindowInDays: t.exposeInt('pendingDeletionWindowInDays', { nullable: true }),
    currentKeyMaterialId: t.exposeString('currentKeyMaterialId', { nullable: true }),
    expirationModel: t.field({
      type: ExpirationModelType,
      nullable: true,
      description: 'Keys with imported material: whether the current material expires.',
      resolve: (k) => (k.expirationModel ?? null) as (typeof EXPIRATION_MODELS)[number] | null,
    }),
    validTo: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the current imported material expires (KEY_MATERIAL_EXPIRES).',
      resolve: (k) => k.validTo ?? null,
    }),
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
    // Null for a predefined alias/aws/ alias whose AWS managed key does not exist yet.
    targetKeyId: t.exposeString('targetKeyId', { nullable: true }),
    creationDate: t.expose('creationDate', { type: 'DateTime', nullable: true }),
    lastUpdatedDate: t.expose('lastUpdatedDate', { type: 'DateTime', nullable: true }),
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
      resolve: async (_root, args, ctx, info) => {
        const req = ctx.newRequest(info);
        await run(ctx, req, (args as { input: Shape }).input);
        return { requestId: req.requestId };
      },
    }),
  );
}

/** What a KMS operation's GraphQL field declares; the rest (name, query or mutation, resolver) comes from the registry. */
export interface KmsFieldOptions<Shape> {
  /** The response type: AWS's response members in lowerCamelCase. */
  type: ObjectRef<BuilderTypes, Shape>;
  description: string;
  /** The one `input` argument: AWS's request members in lowerCamelCase. */
  input: InputObjectRef<BuilderTypes, object>;
  /** Whether `input` must be given (default true); false where every AWS member is optional and the call makes sense without. */
  inputRequired?: boolean;
}

/**
 * The GraphQL field of a KMS operation of the registry (src/service/operations.ts),
 * by its AWS name: registered as a query or a mutation as the registry says,
 * under its lowerCamelCase name, and resolved by the registry as the AWS
 * endpoint is. The field only declares its GraphQL types.
 *
 * @example
 * kmsField('Encrypt', { type: EncryptResponse, description: 'Encrypt: ...', input: EncryptInput });
 */
export function kmsField<Shape>(name: string, options: KmsFieldOptions<Shape>): KmsOperation {
  return registerKmsField(name, (operation, t) =>
    t.field({
      // The registry's handlers return `object`; `Shape` is what this operation's returns look like.
      type: options.type as ObjectRef<BuilderTypes, object>,
      description: options.description,
      args: { input: t.arg({ type: options.input, required: options.inputRequired ?? true }) },
      resolve: (_root, args, ctx, info) => ctx.operations.invoke(operation, ctx.newRequest(info), withoutNulls(args.input) ?? {}),
    }),
  );
}

/**
 * The GraphQL field of a KMS operation whose AWS response is empty: it answers
 * with the request id (its audit record's).
 *
 * @example
 * emptyKmsMutation('EnableKey', 'EnableKey: Disabled -> Enabled.', KeyIdInput('EnableKeyInput'));
 */
export function emptyKmsMutation(name: string, description: string, input: InputObjectRef<BuilderTypes, object>): KmsOperation {
  return registerKmsField(name, (operation, t) =>
    t.field({
      type: EmptyResponse,
      description,
      args: { input: t.arg({ type: input, required: true }) },
      resolve: async (_root, args, ctx, info) => {
        const req = ctx.newRequest(info);
        await ctx.operations.invoke(operation, req, withoutNulls(args.input) ?? {});
        return { requestId: req.requestId };
      },
    }),
  );
}

// Pothos's own parent type for root fields is `{}`.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
type RootFieldBuilder = PothosSchemaTypes.RootFieldBuilder<BuilderTypes, {}, 'Query' | 'Mutation'>;

/** Adds the field `define` makes for the registry's operation `name`, as a query or a mutation under its graphqlField. */
function registerKmsField(name: string, define: (operation: KmsOperation, t: RootFieldBuilder) => ReturnType<RootFieldBuilder['field']>): KmsOperation {
  const operation = kmsOperation(name);
  if (!operation) throw new Error(`${name} is not a KMS operation of the registry (src/service/operations.ts)`);
  if (operation.graphqlKind === 'query') builder.queryField(operation.graphqlField, (t) => define(operation, t));
  else builder.mutationField(operation.graphqlField, (t) => define(operation, t));
  return operation;
}

/**
 * An input as the AWS endpoint decodes one: a member given as null is absent
 * (also in nested input objects), so both transports hand the operation the
 * same shape. Buffers, dates and strings are values, not input objects.
 */
function withoutNulls(value: object | null | undefined): Record<string, unknown> | undefined {
  if (value == null) return undefined;
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v === null || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof Date) return v;
    return Object.fromEntries(Object.entries(v).flatMap(([k, x]) => (x == null ? [] : [[k, strip(x)]])));
  };
  return strip(value) as Record<string, unknown>;
}

export const KEY_ID = { required: true, description: 'Key id, key ARN, alias name or alias ARN.' } as const;

export const KeyIdInput = (name: string) => builder.inputType(name, { fields: (t) => ({ keyId: t.string(KEY_ID) }) });
