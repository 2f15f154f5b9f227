/** The compliance report: findings with their evidence, inventory and usage per day. */
import { parseJson } from '../../json.ts';
import type { ComplianceReport, ReportFinding, UsageDay } from '../../service/compliance-report.ts';
import { builder } from './builder.ts';

const FindingRef = builder.objectRef<ReportFinding>('ComplianceFinding').implement({
  description: 'One finding of a compliance report, with the audit event ids that are its evidence.',
  fields: (t) => ({
    section: t.exposeString('section', { description: 'rotation | pendingDeletion | disabledInUse | denied | grants | unusedKeys | decryptAccess' }),
    kind: t.exposeString('kind'),
    severity: t.exposeString('severity', { description: 'info | low | medium | high' }),
    keyArn: t.exposeString('keyArn', { nullable: true }),
    principal: t.exposeString('principal', { nullable: true }),
    grantId: t.exposeString('grantId', { nullable: true }),
    summary: t.exposeString('summary'),
    details: t.field({ type: 'JSON', resolve: (f) => f.details }),
    evidenceEventIds: t.stringList({
      description: "The first audit event ids (oldest first, capped at the report's evidenceCap).",
      resolve: (f) => f.evidence.eventIds,
    }),
    evidenceCount: t.int({ description: 'How many audit records support the finding in all.', resolve: (f) => f.evidence.count }),
    evidenceTruncated: t.boolean({ resolve: (f) => f.evidence.truncated }),
  }),
});

const UsageDayRef = builder.objectRef<UsageDay>('ComplianceUsageDay').implement({
  fields: (t) => ({
    day: t.exposeString('day', { description: 'YYYY-MM-DD (UTC)' }),
    count: t.exposeInt('count'),
    failures: t.exposeInt('failures'),
    denied: t.exposeInt('denied'),
  }),
});

const ReportRef = builder.objectRef<ComplianceReport>('ComplianceReport').implement({
  fields: (t) => ({
    accountId: t.exposeString('accountId'),
    region: t.exposeString('region'),
    from: t.expose('from', { type: 'DateTime' }),
    to: t.expose('to', { type: 'DateTime' }),
    generatedAt: t.expose('generatedAt', { type: 'DateTime' }),
    unusedDays: t.exposeInt('unusedDays'),
    evidenceCap: t.exposeInt('evidenceCap'),
    inventory: t.field({ type: 'JSON', description: '{total, byState, byKeySpec, byKeyManager}', resolve: (r) => r.inventory }),
    keys: t.field({
      type: 'JSON',
      description: 'Every key of the account: id, ARN, aliases, description, state, spec, manager, rotation, last use.',
      resolve: (r) => parseJson(JSON.stringify(r.keys)),
    }),
    summary: t.field({ type: 'JSON', description: 'Findings per section.', resolve: (r) => r.summary }),
    usagePerDay: t.field({ type: [UsageDayRef], resolve: (r) => r.usagePerDay }),
    findings: t.field({
      type: [FindingRef],
      args: { section: t.arg.string({ description: "Only this section's findings." }) },
      resolve: (r, args) => (args.section ? r.findings.filter((f) => f.section === args.section) : r.findings),
    }),
  }),
});

builder.queryField('complianceReport', (t) =>
  t.field({
    type: ReportRef,
    description:
      'The compliance report of your account over [from, to): key inventory, rotation coverage, keys pending deletion and uses attempted on them, ' +
      'disabled keys still called, denied requests, grants, unused keys, who can decrypt each key. Requires cloudtrail:LookupEvents.',
    args: {
      from: t.arg({ type: 'DateTime', required: true }),
      to: t.arg({ type: 'DateTime', required: true }),
      unusedDays: t.arg.int({ description: 'A key with no successful cryptographic use in this many days before `to` is unused (default 90).' }),
    },
    resolve: (_root, args, ctx, info) =>
      ctx.reports.complianceReport(ctx.newRequest(info), { from: args.from, to: args.to, unusedDays: args.unusedDays ?? null }),
  }),
);
