/** The audit read side: forensic queries, lineage, time travel, activity and usage. */
import {
  USAGE_DIMENSIONS,
  type ActivityCount,
  type AuditEventConnection,
  type AuditEventFilter,
  type AuditEventView,
  type DataKeyLineage,
  type KeyAsOfView,
  type KeyHistoryEntry,
  type PrincipalActivity,
  type UsageGroup,
} from '../../service/audit-service.ts';
import { GrantListEntryRef } from './authorization.ts';
import { builder } from './builder.ts';
import { KeyMetadataRef, TagRef } from './common.ts';

export const AuditEvent = builder.objectRef<AuditEventView>('AuditEvent').implement({
  description: 'One request, as recorded in the log before it was answered.',
  fields: (t) => ({
    eventId: t.exposeString('eventId'),
    eventName: t.exposeString('eventName'),
    eventSource: t.exposeString('eventSource'),
    eventTime: t.field({ type: 'DateTime', resolve: (e) => new Date(e.eventTime) }),
    requestId: t.exposeString('requestId'),
    awsRegion: t.exposeString('awsRegion'),
    accountId: t.exposeString('accountId', { nullable: true }),
    recipientAccountId: t.string({
      nullable: true,
      description: 'The account owning the key, when another account made the request.',
      resolve: (e) => (e as { recipientAccountId?: string }).recipientAccountId ?? null,
    }),
    authorization: t.field({
      type: 'JSON',
      nullable: true,
      description:
        'Why it was allowed or refused: {action, decision: allow | explicitDeny | implicitDeny, allowedBy, deniedBy, ' +
        'reason}, naming the key policy statement (policy, Sid, index), identity policy statement or grant id.',
      resolve: (e) => e.authorization ?? null,
    }),
    principalArn: t.string({ nullable: true, resolve: (e) => e.userIdentity.principalArn }),
    identityType: t.string({ resolve: (e) => e.userIdentity.type }),
    accessKeyId: t.string({ nullable: true, resolve: (e) => e.userIdentity.accessKeyId }),
    sourceIp: t.exposeString('sourceIp', { nullable: true }),
    userAgent: t.exposeString('userAgent', { nullable: true }),
    requestParameters: t.expose('requestParameters', { type: 'JSON', nullable: true }),
    responseElements: t.expose('responseElements', { type: 'JSON', nullable: true }),
    resources: t.stringList({ resolve: (e) => e.resources.map((r) => r.arn) }),
    keyArn: t.string({
      nullable: true,
      description: 'The (first) key the request acted on; for ReEncrypt the source key.',
      resolve: (e) => e.resources.find((r) => r.type === 'AWS::KMS::Key')?.arn ?? null,
    }),
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

const AuditOutcome = builder.enumType('AuditOutcome', {
  values: { SUCCESS: { value: 'success' }, FAILURE: { value: 'failure' } } as const,
});

const AuditEventOrder = builder.enumType('AuditEventOrder', {
  description: 'NEWEST_FIRST (default) or OLDEST_FIRST, by transaction and log position.',
  values: ['NEWEST_FIRST', 'OLDEST_FIRST'] as const,
});

const AuditEventFilterInput = builder.inputType('AuditEventFilter', {
  description: 'Every field optional; all given fields must match (AND). Your account is implicit.',
  fields: (t) => ({
    from: t.field({ type: 'DateTime', description: 'Records at or after this instant.' }),
    to: t.field({ type: 'DateTime', description: 'Records before this instant (exclusive).' }),
    eventNames: t.stringList({ description: 'Any of these operations (e.g. ["Decrypt", "ReEncrypt"]).' }),
    principalArn: t.string({ description: 'Exactly this caller.' }),
    principalArnPrefix: t.string({ description: 'Callers whose ARN starts with this (e.g. arn:aws:iam::111122223333:role/).' }),
    accessKeyId: t.string({ description: 'Requests signed with this access key.' }),
    key: t.string({ description: 'Key id, key ARN, alias name or alias ARN. An alias means the key it pointed at when each request was made.' }),
    outcome: t.field({ type: AuditOutcome }),
    errorCodes: t.stringList({ description: 'Any of these error codes (e.g. ["AccessDeniedException"]).' }),
    sourceIp: t.string({ description: 'An address or CIDR block (IPv4 or IPv6).' }),
    requestId: t.string(),
    dataKeyId: t.string({ description: 'Requests that generated or used this data key.' }),
    encryptionContext: t.field({
      type: 'EncryptionContext',
      description: "Pairs that must all be in the request's encryption context (ReEncrypt: source or destination).",
    }),
    encryptionContextKeys: t.stringList({ description: "Keys that must all be present in the request's encryption context." }),
    readOnly: t.boolean(),
  }),
});

/** GraphQL leaves omitted input fields undefined: the service wants null or a value. */
function filterOf(input: Record<string, unknown> | null | undefined): AuditEventFilter {
  return (input ?? {}) as AuditEventFilter;
}

builder.queryField('auditEvents', (t) =>
  t.field({
    type: builder.objectRef<AuditEventConnection>('AuditEventConnection').implement({
      fields: (f) => ({
        edges: f.expose('edges', { type: [AuditEventEdge] }),
        pageInfo: f.expose('pageInfo', { type: PageInfo }),
      }),
    }),
    description:
      "Your account's audit records (and other accounts' requests on your keys), filtered, as a Relay connection with stable cursors: " +
      'paging never skips or repeats a record. Newest first by default; records newer than the first page come with last/before: startCursor.',
    args: {
      filter: t.arg({ type: AuditEventFilterInput }),
      order: t.arg({ type: AuditEventOrder }),
      first: t.arg.int({ description: '1-1000, default 50.' }),
      after: t.arg.string(),
      last: t.arg.int({ description: '1-1000.' }),
      before: t.arg.string(),
    },
    resolve: (_root, args, ctx, info) =>
      ctx.audit.auditEvents(ctx.newRequest(info), {
        filter: filterOf(args.filter),
        order: args.order ?? null,
        first: args.first ?? null,
        after: args.after ?? null,
        last: args.last ?? null,
        before: args.before ?? null,
      }),
  }),
);

builder.subscriptionField('auditEvents', (t) =>
  t.field({
    type: AuditEventEdge,
    description:
      'A live tail of auditEvents over SSE: the records matching the filter, oldest first, as they commit, each with its cursor. ' +
      'Reconnect with after: the last cursor received to get every later record exactly once (after a disconnect or a server restart). ' +
      'Without after, it starts where auditEvents ends now. Starting it is one recorded request. ' +
      'It ends with AccessDeniedException (recorded) once its caller may no longer read the audit log; ' +
      'a principal, and a server, hold a limited number open (LimitExceededException past it).',
    args: {
      filter: t.arg({ type: AuditEventFilterInput }),
      after: t.arg.string({ description: 'Resume after this cursor (from this subscription or from auditEvents).' }),
    },
    subscribe: (_root, args, ctx, info) => ctx.audit.followAuditEvents(ctx.newRequest(info), { filter: filterOf(args.filter), after: args.after ?? null }),
    resolve: (edge) => edge,
  }),
);

// ---------------------------------------------------------------- lineage

const ReEncryption = builder.objectRef<DataKeyLineage['reEncryptedInto'][number]>('DataKeyReEncryption').implement({
  fields: (t) => ({
    ciphertextId: t.exposeString('ciphertextId', { description: 'The new ciphertext: itself a data key (query dataKey with it).' }),
    keyArn: t.exposeString('keyArn', { nullable: true, description: 'The destination key.' }),
    keyMaterialId: t.exposeString('keyMaterialId', { nullable: true }),
    event: t.expose('event', { type: AuditEvent }),
  }),
});

const DataKeyLineageRef = builder.objectRef<DataKeyLineage>('DataKeyLineage').implement({
  description: 'Who generated a data key, and every use of it since.',
  fields: (t) => ({
    dataKeyId: t.exposeString('dataKeyId'),
    generatedBy: t.expose('generatedBy', { type: AuditEvent, nullable: true }),
    derivedFrom: t.expose('derivedFrom', {
      type: AuditEvent,
      nullable: true,
      description: 'The ReEncrypt that produced this ciphertext, for a re-encrypted copy.',
    }),
    keyArn: t.exposeString('keyArn', { nullable: true }),
    keyMaterialId: t.exposeString('keyMaterialId', { nullable: true }),
    encryptionContext: t.expose('encryptionContext', { type: 'EncryptionContext', nullable: true }),
    uses: t.expose('uses', { type: [AuditEvent], description: 'Decrypts and ReEncrypts of it, refused ones too, oldest first.' }),
    usesTruncated: t.exposeBoolean('usesTruncated'),
    useCount: t.exposeInt('useCount'),
    failedUseCount: t.exposeInt('failedUseCount'),
    deniedUseCount: t.exposeInt('deniedUseCount'),
    reEncryptedInto: t.expose('reEncryptedInto', { type: [ReEncryption] }),
  }),
});

builder.queryField('dataKey', (t) =>
  t.field({
    type: DataKeyLineageRef,
    nullable: true,
    description: 'The lineage of one data key (the ciphertext id of a GenerateDataKey result); null when none of your records names it.',
    args: { id: t.arg.string({ required: true }), limit: t.arg.int({ description: 'Uses listed, 1-1000 (default 1000).' }) },
    resolve: (_root, args, ctx, info) => ctx.audit.dataKey(ctx.newRequest(info), { dataKeyId: args.id, limit: args.limit ?? null }),
  }),
);

// ---------------------------------------------------------------- time travel

const KeyRotationAsOf = builder.objectRef<KeyAsOfView['rotation']>('KeyRotationAsOf').implement({
  fields: (t) => ({
    enabled: t.exposeBoolean('enabled'),
    periodInDays: t.exposeInt('periodInDays', { nullable: true }),
    nextRotationDate: t.expose('nextRotationDate', { type: 'DateTime', nullable: true }),
    onDemandRotations: t.exposeInt('onDemandRotations'),
    keyMaterialIds: t.exposeStringList('keyMaterialIds', { description: 'Every material version so far, oldest first.' }),
  }),
});

const ImportedMaterialAsOf = builder.objectRef<KeyAsOfView['importedMaterials'][number]>('ImportedMaterialAsOf').implement({
  description: 'One version of imported key material, as it was then.',
  fields: (t) => ({
    keyMaterialId: t.exposeString('keyMaterialId'),
    importState: t.exposeString('importState', { description: 'IMPORTED, or PENDING_IMPORT once deleted or expired.' }),
    expirationModel: t.exposeString('expirationModel', { nullable: true }),
    validTo: t.field({ type: 'DateTime', nullable: true, resolve: (m) => (m.validTo === null ? null : new Date(m.validTo)) }),
    description: t.exposeString('description', { nullable: true }),
    importedAt: t.field({ type: 'DateTime', nullable: true, resolve: (m) => (m.importedAt === null ? null : new Date(m.importedAt)) }),
  }),
});

const KeyAsOfRef = builder.objectRef<KeyAsOfView>('KeyAsOf').implement({
  description: "A key as it was at an instant: its stream folded up to then (not today's state).",
  fields: (t) => ({
    asOf: t.expose('asOf', { type: 'DateTime' }),
    keyMetadata: t.expose('keyMetadata', { type: KeyMetadataRef }),
    deleted: t.exposeBoolean('deleted', { description: 'The key and its material had been deleted by then.' }),
    aliases: t.exposeStringList('aliases'),
    policy: t.exposeString('policy'),
    tags: t.expose('tags', { type: [TagRef] }),
    rotation: t.expose('rotation', { type: KeyRotationAsOf }),
    importedMaterials: t.expose('importedMaterials', {
      type: [ImportedMaterialAsOf],
      description: 'Origin EXTERNAL keys: imported material and its expiry then (empty for other keys).',
    }),
    grants: t.expose('grants', { type: [GrantListEntryRef], description: 'The grants live on the key at that instant.' }),
    version: t.string({ description: "The key stream's version at that instant.", resolve: (k) => k.version.toString() }),
    lastChangedAt: t.expose('lastChangedAt', { type: 'DateTime' }),
  }),
});

builder.queryField('keyAsOf', (t) =>
  t.field({
    type: KeyAsOfRef,
    description:
      'Time travel: the key (id, ARN, or an alias as it was then) with its metadata, aliases, policy, tags and rotation at `asOf`. Deleted keys too.',
    args: { keyId: t.arg.string({ required: true }), asOf: t.arg({ type: 'DateTime', required: true }) },
    resolve: (_root, args, ctx, info) => ctx.audit.keyAsOf(ctx.newRequest(info), { keyId: args.keyId, asOf: args.asOf }),
  }),
);

const KeyHistoryEntryRef = builder.objectRef<KeyHistoryEntry>('KeyHistoryEntry').implement({
  fields: (t) => ({
    type: t.exposeString('type', { description: 'KeyCreated, KeyDisabled, KeyRotated, AliasUpdated ...' }),
    recordedAt: t.expose('recordedAt', { type: 'DateTime' }),
    streamId: t.exposeString('streamId'),
    streamVersion: t.string({ resolve: (e) => e.streamVersion.toString() }),
    data: t.expose('data', { type: 'JSON' }),
    request: t.field({
      type: AuditEvent,
      nullable: true,
      description: 'The request that made the change (its audit record, same transaction).',
      resolve: (e) => (e.request ? { ...e.request.data, eventId: e.request.eventId } : null),
    }),
  }),
});

builder.queryField('keyHistory', (t) =>
  t.field({
    type: builder.objectRef<{ keyId: string; arn: string; entries: KeyHistoryEntry[] }>('KeyHistory').implement({
      fields: (f) => ({
        keyId: f.exposeString('keyId'),
        arn: f.exposeString('arn'),
        entries: f.expose('entries', { type: [KeyHistoryEntryRef] }),
      }),
    }),
    description: "A key's lifecycle events, oldest first, with the aliases pointed at it or away from it, and the request behind each.",
    args: { keyId: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx, info) => ctx.audit.keyHistory(ctx.newRequest(info), { keyId: args.keyId }),
  }),
);

// ---------------------------------------------------------------- activity and usage

const ActivityCountRef = builder.objectRef<ActivityCount>('ActivityCount').implement({
  fields: (t) => ({
    value: t.exposeString('value', { nullable: true }),
    count: t.exposeInt('count'),
    failures: t.exposeInt('failures'),
    denied: t.exposeInt('denied'),
    first: t.expose('first', { type: 'DateTime' }),
    last: t.expose('last', { type: 'DateTime' }),
  }),
});

const PrincipalActivityRef = builder.objectRef<PrincipalActivity>('PrincipalActivity').implement({
  fields: (t) => ({
    principalArn: t.exposeString('principalArn'),
    from: t.expose('from', { type: 'DateTime' }),
    to: t.expose('to', { type: 'DateTime' }),
    total: t.exposeInt('total'),
    failures: t.exposeInt('failures'),
    denied: t.exposeInt('denied'),
    firstSeen: t.expose('firstSeen', { type: 'DateTime', nullable: true }),
    lastSeen: t.expose('lastSeen', { type: 'DateTime', nullable: true }),
    operations: t.expose('operations', { type: [ActivityCountRef], description: 'Per eventName, most frequent first.' }),
    keys: t.expose('keys', { type: [ActivityCountRef], description: 'Per key ARN used.' }),
    sourceIps: t.expose('sourceIps', { type: [ActivityCountRef] }),
    accessKeys: t.expose('accessKeys', { type: [ActivityCountRef] }),
    deniedAttempts: t.expose('deniedAttempts', { type: [AuditEvent], description: 'The newest 100 denied requests.' }),
  }),
});

builder.queryField('principalActivity', (t) =>
  t.field({
    type: PrincipalActivityRef,
    description: 'What one principal did in [from, to): keys used, counts per operation, denied attempts, source IPs.',
    args: {
      principalArn: t.arg.string({ required: true }),
      from: t.arg({ type: 'DateTime', required: true }),
      to: t.arg({ type: 'DateTime', required: true }),
    },
    resolve: (_root, args, ctx, info) => ctx.audit.principalActivity(ctx.newRequest(info), { principalArn: args.principalArn, from: args.from, to: args.to }),
  }),
);

const UsageDimensionEnum = builder.enumType('UsageDimension', { values: USAGE_DIMENSIONS });

const UsageGroupRef = builder.objectRef<UsageGroup>('UsageGroup').implement({
  description: 'One group: the dimensions grouped by are set (a null key: requests on no key), the others null.',
  fields: (t) => ({
    key: t.exposeString('key', { nullable: true }),
    principal: t.exposeString('principal', { nullable: true }),
    operation: t.exposeString('operation', { nullable: true }),
    day: t.expose('day', { type: 'DateTime', nullable: true }),
    hour: t.expose('hour', { type: 'DateTime', nullable: true }),
    count: t.exposeInt('count'),
    failures: t.exposeInt('failures'),
    denied: t.exposeInt('denied'),
    lastSeen: t.expose('lastSeen', { type: 'DateTime', nullable: true, description: 'When the newest request of the group was made.' }),
  }),
});

builder.queryField('usageStatistics', (t) =>
  t.field({
    type: builder.objectRef<{ groups: UsageGroup[]; truncated: boolean }>('UsageStatistics').implement({
      fields: (f) => ({ groups: f.expose('groups', { type: [UsageGroupRef] }), truncated: f.exposeBoolean('truncated') }),
    }),
    description: 'Request counts grouped by KEY, PRINCIPAL, OPERATION, DAY and/or HOUR (UTC), over an auditEvents filter.',
    args: {
      groupBy: t.arg({ type: [UsageDimensionEnum], required: true }),
      filter: t.arg({ type: AuditEventFilterInput }),
      limit: t.arg.int({ description: 'Groups returned, 1-10000 (default 1000).' }),
    },
    resolve: (_root, args, ctx, info) =>
      ctx.audit.usageStatistics(ctx.newRequest(info), { groupBy: [...args.groupBy], filter: filterOf(args.filter), limit: args.limit ?? null }),
  }),
);
