/** Key policies, identity policies and grants. */
import type { AccessEntry } from '../../service/access-analysis.ts';
import type { GrantListEntry } from '../../service/grant-service.ts';
import { builder } from './builder.ts';
import { emptyKmsMutation, emptyMutation, KEY_ID, kmsField } from './common.ts';

// ------------------------------------------------------------------ key policies

const PutKeyPolicyInput = builder.inputType('PutKeyPolicyInput', {
  fields: (t) => ({
    keyId: t.string(KEY_ID),
    policyName: t.string({ description: 'Only `default`.' }),
    policy: t.string({ required: true, description: 'The key policy document (JSON), up to 32 KB.' }),
    bypassPolicyLockoutSafetyCheck: t.boolean(),
  }),
});
emptyKmsMutation(
  'PutKeyPolicy',
  'PutKeyPolicy: replaces the key policy. Refused when it would lock you out unless bypassPolicyLockoutSafetyCheck.',
  PutKeyPolicyInput,
);

const GetKeyPolicyInput = builder.inputType('GetKeyPolicyInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), policyName: t.string({ description: 'Only `default`.' }) }),
});
kmsField('GetKeyPolicy', {
  type: builder.objectRef<{ policy: string; policyName: string }>('GetKeyPolicyResponse').implement({
    fields: (f) => ({ policy: f.exposeString('policy'), policyName: f.exposeString('policyName') }),
  }),
  description: 'GetKeyPolicy.',
  input: GetKeyPolicyInput,
});

const ListKeyPoliciesInput = builder.inputType('ListKeyPoliciesInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), limit: t.int(), marker: t.string() }),
});
kmsField('ListKeyPolicies', {
  type: builder.objectRef<{ policyNames: string[]; nextMarker: string | null; truncated: boolean }>('ListKeyPoliciesResponse').implement({
    fields: (f) => ({
      policyNames: f.exposeStringList('policyNames'),
      nextMarker: f.exposeString('nextMarker', { nullable: true }),
      truncated: f.exposeBoolean('truncated'),
    }),
  }),
  description: 'ListKeyPolicies: always `default`.',
  input: ListKeyPoliciesInput,
});

// ------------------------------------------------------------------ identity policies

const PrincipalPolicyInput = builder.inputType('PutPrincipalPolicyInput', {
  fields: (t) => ({
    principalArn: t.string({ required: true, description: 'A user or role of your account.' }),
    policyName: t.string({ required: true }),
    policyDocument: t.string({ required: true, description: 'An IAM identity policy (JSON; no Principal element).' }),
  }),
});
emptyMutation(
  'putPrincipalPolicy',
  'Attaches or replaces an identity policy on a user or role of your account (iam:PutUserPolicy / iam:PutRolePolicy).',
  PrincipalPolicyInput,
  (ctx, req, input) => ctx.identity.putPrincipalPolicyAsCaller(req, input),
);

const DeletePrincipalPolicyInput = builder.inputType('DeletePrincipalPolicyInput', {
  fields: (t) => ({ principalArn: t.string({ required: true }), policyName: t.string({ required: true }) }),
});
emptyMutation(
  'deletePrincipalPolicy',
  'Detaches an identity policy (iam:DeleteUserPolicy / iam:DeleteRolePolicy).',
  DeletePrincipalPolicyInput,
  (ctx, req, input) => ctx.identity.deletePrincipalPolicyAsCaller(req, input),
);

const PrincipalPolicy = builder.objectRef<{ policyName: string; policyDocument: string; updatedAt: Date }>('PrincipalPolicy').implement({
  fields: (t) => ({
    policyName: t.exposeString('policyName'),
    policyDocument: t.exposeString('policyDocument'),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});
builder.queryField('listPrincipalPolicies', (t) =>
  t.field({
    type: [PrincipalPolicy],
    description: 'The identity policies of a user or role of your account (iam:GetUserPolicy / iam:GetRolePolicy).',
    args: { principalArn: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx, info) => (await ctx.identity.listPrincipalPoliciesAsCaller(ctx.newRequest(info), args)).policies,
  }),
);

// ------------------------------------------------------------------ grants

const GrantOperation = builder.enumType('GrantOperation', {
  values: [
    'Decrypt',
    'Encrypt',
    'GenerateDataKey',
    'GenerateDataKeyWithoutPlaintext',
    'GenerateDataKeyPair',
    'GenerateDataKeyPairWithoutPlaintext',
    'ReEncryptFrom',
    'ReEncryptTo',
    'CreateGrant',
    'RetireGrant',
    'DescribeKey',
    'Sign',
    'Verify',
    'GetPublicKey',
    'GenerateMac',
    'VerifyMac',
    'DeriveSharedSecret',
  ] as const,
});

const GrantConstraintsInput = builder.inputType('GrantConstraintsInput', {
  fields: (t) => ({
    encryptionContextEquals: t.field({ type: 'EncryptionContext' }),
    encryptionContextSubset: t.field({ type: 'EncryptionContext' }),
  }),
});

const GrantConstraints = builder
  .objectRef<{ encryptionContextEquals?: Record<string, string>; encryptionContextSubset?: Record<string, string> }>('GrantConstraints')
  .implement({
    fields: (t) => ({
      encryptionContextEquals: t.field({ type: 'EncryptionContext', nullable: true, resolve: (c) => c.encryptionContextEquals ?? null }),
      encryptionContextSubset: t.field({ type: 'EncryptionContext', nullable: true, resolve: (c) => c.encryptionContextSubset ?? null }),
    }),
  });

const CreateGrantInput = builder.inputType('CreateGrantInput', {
  fields: (t) => ({
    keyId: t.string(KEY_ID),
    granteePrincipal: t.string({ required: true }),
    retiringPrincipal: t.string(),
    operations: t.field({ type: [GrantOperation], required: true }),
    constraints: t.field({ type: GrantConstraintsInput }),
    grantTokens: t.stringList(),
    name: t.string({ description: 'A repeated request with the same name and parameters returns the same grant.' }),
    dryRun: t.boolean(),
  }),
});
kmsField('CreateGrant', {
  type: builder.objectRef<{ grantId: string; grantToken: string }>('CreateGrantResponse').implement({
    fields: (f) => ({ grantId: f.exposeString('grantId'), grantToken: f.exposeString('grantToken') }),
  }),
  description: 'CreateGrant: lets the grantee use the key for the listed operations, optionally only under an encryption context.',
  input: CreateGrantInput,
});

export const GrantListEntryRef = builder.objectRef<GrantListEntry>('GrantListEntry').implement({
  fields: (t) => ({
    keyId: t.exposeString('keyId'),
    grantId: t.exposeString('grantId'),
    name: t.exposeString('name', { nullable: true }),
    creationDate: t.expose('creationDate', { type: 'DateTime' }),
    granteePrincipal: t.exposeString('granteePrincipal'),
    retiringPrincipal: t.exposeString('retiringPrincipal', { nullable: true }),
    issuingAccount: t.exposeString('issuingAccount'),
    operations: t.exposeStringList('operations'),
    constraints: t.field({ type: GrantConstraints, nullable: true, resolve: (g) => g.constraints }),
  }),
});

const ListGrantsResponse = builder.objectRef<{ grants: GrantListEntry[]; nextMarker: string | null; truncated: boolean }>('ListGrantsResponse').implement({
  fields: (f) => ({
    grants: f.expose('grants', { type: [GrantListEntryRef] }),
    nextMarker: f.exposeString('nextMarker', { nullable: true }),
    truncated: f.exposeBoolean('truncated'),
  }),
});

const ListGrantsInput = builder.inputType('ListGrantsInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), limit: t.int(), marker: t.string(), grantId: t.string(), granteePrincipal: t.string() }),
});
kmsField('ListGrants', {
  type: ListGrantsResponse,
  description: 'ListGrants: the live grants of a key (limit 1-100).',
  input: ListGrantsInput,
});

const ListRetirableGrantsInput = builder.inputType('ListRetirableGrantsInput', {
  fields: (t) => ({ retiringPrincipal: t.string({ required: true }), limit: t.int(), marker: t.string() }),
});
kmsField('ListRetirableGrants', {
  type: ListGrantsResponse,
  description: 'ListRetirableGrants: grants whose retiring principal is the one given.',
  input: ListRetirableGrantsInput,
});

const RetireGrantInput = builder.inputType('RetireGrantInput', {
  fields: (t) => ({ grantToken: t.string(), keyId: t.string(), grantId: t.string() }),
});
emptyKmsMutation(
  'RetireGrant',
  'RetireGrant: by grant token, or key id + grant id; by the retiring principal, the grantee (if allowed RetireGrant) or the issuing account.',
  RetireGrantInput,
);

const RevokeGrantInput = builder.inputType('RevokeGrantInput', {
  fields: (t) => ({ keyId: t.string(KEY_ID), grantId: t.string({ required: true }) }),
});
emptyKmsMutation('RevokeGrant', 'RevokeGrant: governed by kms:RevokeGrant on the key.', RevokeGrantInput);

// ------------------------------------------------------------------ access analysis

const AccessCondition = builder.objectRef<{ operator: string; key: string; values: string[] }>('AccessCondition').implement({
  fields: (t) => ({ operator: t.exposeString('operator'), key: t.exposeString('key'), values: t.exposeStringList('values') }),
});

const IdentityAllow = builder
  .objectRef<{ principal: string; policy: string; sid: string | null; index: number; conditions: { operator: string; key: string; values: string[] }[] }>(
    'IdentityPolicyAllow',
  )
  .implement({
    fields: (t) => ({
      principal: t.exposeString('principal'),
      policy: t.exposeString('policy'),
      sid: t.exposeString('sid', { nullable: true }),
      index: t.exposeInt('index'),
      conditions: t.expose('conditions', { type: [AccessCondition] }),
    }),
  });

const AccessEntryRef = builder.objectRef<AccessEntry>('KeyAccessEntry').implement({
  description: 'One way the operation is allowed (or denied): by a key policy statement, or a grant.',
  fields: (t) => ({
    effect: t.exposeString('effect'),
    kind: t.exposeString('kind', { description: 'anyone | account | principal | grant' }),
    principal: t.exposeString('principal'),
    accountId: t.exposeString('accountId', { nullable: true }),
    conditions: t.expose('conditions', { type: [AccessCondition] }),
    policy: t.string({ nullable: true, resolve: (e) => ('policy' in e.source ? e.source.policy : null) }),
    sid: t.string({ nullable: true, resolve: (e) => ('sid' in e.source ? e.source.sid : null) }),
    statementIndex: t.int({ nullable: true, resolve: (e) => ('index' in e.source ? e.source.index : null) }),
    grantId: t.string({ nullable: true, resolve: (e) => ('grantId' in e.source ? e.source.grantId : null) }),
    viaIdentityPolicies: t.field({
      type: [IdentityAllow],
      nullable: true,
      description: 'For an account statement: the principals whose identity policies also allow.',
      resolve: (e) => e.viaIdentityPolicies ?? null,
    }),
  }),
});

builder.queryField('keyAccess', (t) =>
  t.field({
    type: builder.objectRef<{ keyId: string; action: string; entries: AccessEntry[] }>('KeyAccessResponse').implement({
      fields: (f) => ({ keyId: f.exposeString('keyId'), action: f.exposeString('action'), entries: f.expose('entries', { type: [AccessEntryRef] }) }),
    }),
    description: 'Access analysis: which principals, accounts and grants can perform `operation` (e.g. Decrypt) on the key, under which conditions.',
    args: { keyId: t.arg.string({ required: true }), operation: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx, info) => ctx.access.keyAccess(ctx.newRequest(info), args),
  }),
);
