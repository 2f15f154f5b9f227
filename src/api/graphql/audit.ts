/** The audit read side. */
import type { AuditEventConnection, AuditEventView } from '../../service/audit-service.ts';
import { builder } from './builder.ts';

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
