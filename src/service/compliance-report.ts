import { KmsError, Validator } from '../domain/errors.ts';
import { readUsageStatistics } from '../store/usage-statistics.ts';
import {
  readDeniedRequests,
  readFailuresByKey,
  readGrantUse,
  readKeyUse,
  readLastRotations,
  readLatestLifecycleRecords,
  type EvidenceGroup,
} from '../store/compliance-queries.ts';
import type { Database } from '../store/database.ts';
import type { Transaction } from 'kysely';
import { analyzeKeyAccess, type AccessEntry } from './access-analysis.ts';
import { AUDIT_READ_ACTION } from './audit-service.ts';
import { enforce, type Authorizer } from './authorization.ts';
import type { OperatorContext, RequestContext } from './context.ts';
import type { OperationSpec, RequestRunner } from './request-runner.ts';

type Trx = Transaction<Database>;

/** The report's sections, in the order they are rendered. */
export const REPORT_SECTIONS = [
  { id: 'rotation', title: 'Rotation coverage' },
  { id: 'pendingDeletion', title: 'Keys pending deletion and uses attempted on them' },
  { id: 'disabledInUse', title: 'Disabled keys still being called' },
  { id: 'denied', title: 'Denied requests by principal and key' },
  { id: 'grants', title: 'Grants inventory' },
  { id: 'unusedKeys', title: 'Unused keys' },
  { id: 'decryptAccess', title: 'Who can decrypt each key' },
] as const;

export type ReportSection = (typeof REPORT_SECTIONS)[number]['id'];

export type Severity = 'info' | 'low' | 'medium' | 'high';

/** The audit records a finding rests on: the first `eventIds` (oldest first, capped) and how many there are. */
export interface Evidence {
  eventIds: string[];
  count: number;
  truncated: boolean;
}

/** One row of the report: what was found, about which key / principal / grant, and the records that show it. */
export interface ReportFinding {
  section: ReportSection;
  /** rotationDisabled | rotationOverdue | pendingDeletionUsed | pendingDeletion | disabledKeyCalled | deniedRequests | grant | grantNeverUsed | unusedKey | decryptAccess */
  kind: string;
  severity: Severity;
  keyArn: string | null;
  principal: string | null;
  grantId: string | null;
  summary: string;
  details: Record<string, unknown>;
  evidence: Evidence;
}

export interface ReportKey {
  keyId: string;
  arn: string;
  aliases: string[];
  description: string;
  keyState: string;
  keySpec: string;
  keyUsage: string;
  keyManager: string;
  origin: string;
  creationDate: Date;
  deletionDate: Date | null;
  rotationEnabled: boolean;
  rotationPeriodInDays: number | null;
  nextRotationDate: Date | null;
  lastRotationDate: Date | null;
  /** The last successful cryptographic use before `to`. */
  lastUsed: Date | null;
}

export interface UsageDay {
  /** YYYY-MM-DD (UTC). */
  day: string;
  count: number;
  failures: number;
  denied: number;
}

export interface ComplianceReport {
  accountId: string;
  region: string;
  /** Inclusive. */
  from: Date;
  /** Exclusive. */
  to: Date;
  generatedAt: Date;
  unusedDays: number;
  /** How many evidence event ids a finding lists at most. */
  evidenceCap: number;
  inventory: {
    total: number;
    byState: Record<string, number>;
    byKeySpec: Record<string, number>;
    byKeyManager: Record<string, number>;
  };
  keys: ReportKey[];
  usagePerDay: UsageDay[];
  findings: ReportFinding[];
  /** Findings per section. */
  summary: Record<ReportSection, number>;
}

export interface ComplianceReportInput {
  from: Date;
  to: Date;
  /** A key with no successful cryptographic use in the last `unusedDays` before `to` is unused (default 90). */
  unusedDays?: number | null;
}

export interface ReportOptions {
  /** Called after each step, e.g. to draw a progress bar. */
  onProgress?: (done: number, total: number, step: string) => void;
}

export const EVIDENCE_CAP = 20;
const DEFAULT_UNUSED_DAYS = 90;
const DAY_MS = 86_400_000;
/** Filling days without requests is for the chart; a longer range lists only the days that have some. */
const MAX_FILLED_DAYS = 400;

const evidenceOf = (ids: readonly string[], count = ids.length): Evidence => ({
  eventIds: ids.slice(0, EVIDENCE_CAP),
  count,
  truncated: count > Math.min(ids.length, EVIDENCE_CAP),
});

const SPEC = (input: ComplianceReportInput): OperationSpec => ({
  eventName: 'GetComplianceReport',
  readOnly: true,
  requestParameters: { from: input.from.toISOString(), to: input.to.toISOString(), unusedDays: input.unusedDays ?? undefined },
});

/**
 * The compliance report of one account over [from, to): key inventory, rotation
 * coverage, keys pending deletion and the uses attempted on them, disabled keys
 * still called, denied requests, grants (used or never), unused keys, and who
 * can decrypt each key. Every finding names the audit event ids that are its
 * evidence. Generating it is an audited read, authorized as the other forensic
 * reads (`cloudtrail:LookupEvents`); an operator at the CLI runs it for an
 * account of their choosing.
 *
 * Key state, grants and policies are today's (the projections), as an auditor
 * asks "what is exposed now"; requests are those in the window.
 *
 * @example
 * const report = await reports.complianceReport(ctx, { from: new Date('2026-03-01'), to: new Date('2026-04-01') });
 * report.findings.filter((f) => f.section === 'denied');
 */
export class ComplianceReportService {
  readonly #runner: RequestRunner;
  readonly #region: string;
  readonly #authorizer: Authorizer;

  constructor(deps: { runner: RequestRunner; region: string; authorizer: Authorizer }) {
    this.#runner = deps.runner;
    this.#region = deps.region;
    this.#authorizer = deps.authorizer;
  }

  /** The caller's account's report. */
  complianceReport(ctx: RequestContext, input: ComplianceReportInput, options: ReportOptions = {}): Promise<ComplianceReport> {
    return this.#runner.run(ctx, SPEC(input), async (trx, draft, now) => {
      await enforce(this.#authorizer, trx, ctx, draft, now, { action: AUDIT_READ_ACTION });
      return this.#build(trx, ctx.caller.accountId, input, now, options);
    });
  }

  /** An operator's report on `accountId` (`keyledger report --account`), recorded as an operator action in that account. */
  complianceReportAsOperator(op: OperatorContext, accountId: string, input: ComplianceReportInput, options: ReportOptions = {}): Promise<ComplianceReport> {
    return this.#runner.runAsOperator(op, accountId, SPEC(input), async (trx, _draft, now) => {
      new Validator().pattern('accountId', accountId, /^\d{12}$/, '^\\d{12}$').throwIfAny();
      const account = await trx.selectFrom('accounts').select('account_id').where('account_id', '=', accountId).executeTakeFirst();
      if (!account) throw new KmsError('NotFoundException', `Account ${accountId} does not exist.`);
      return this.#build(trx, accountId, input, now, options);
    });
  }

  async #build(trx: Trx, accountId: string, input: ComplianceReportInput, now: Date, options: ReportOptions): Promise<ComplianceReport> {
    const v = new Validator().range('unusedDays', input.unusedDays, 1, 3650);
    if (Number.isNaN(input.from.getTime()) || Number.isNaN(input.to.getTime())) v.add({ field: 'from', constraint: 'Member must be a valid date' });
    v.throwIfAny();
    if (input.from.getTime() >= input.to.getTime()) throw new KmsError('ValidationException', 'from must be before to.');
    const { from, to } = input;
    const window = { from, to };
    const unusedDays = input.unusedDays ?? DEFAULT_UNUSED_DAYS;
    const steps = 9;
    let step = 0;
    const progress = (name: string) => options.onProgress?.(++step, steps, name);
    const findings: ReportFinding[] = [];

    // ---- inventory
    const rows = await trx.selectFrom('keys').selectAll().where('account_id', '=', accountId).orderBy('creation_date').orderBy('key_id').execute();
    const aliasRows = await trx.selectFrom('aliases').select(['alias_name', 'target_key_id']).where('account_id', '=', accountId).orderBy('alias_name').execute();
    const [lastRotations, lastUse, lifecycle] = await Promise.all([
      readLastRotations(trx, rows.map((r) => r.key_id), to),
      readKeyUse(trx, accountId, rows.map((r) => r.arn), { to }),
      readLatestLifecycleRecords(trx, accountId, to, ['CreateKey', 'PutKeyPolicy', 'EnableKeyRotation', 'DisableKeyRotation', 'RotateKey', 'RotateKeyOnDemand', 'ScheduleKeyDeletion', 'DisableKey', 'CreateGrant']),
    ]);
    const keys: ReportKey[] = rows.map((r) => ({
      keyId: r.key_id,
      arn: r.arn,
      aliases: aliasRows.filter((a) => a.target_key_id === r.key_id).map((a) => a.alias_name),
      description: r.description,
      keyState: r.key_state,
      keySpec: r.key_spec,
      keyUsage: r.key_usage,
      keyManager: r.key_manager,
      origin: r.origin,
      creationDate: r.creation_date,
      deletionDate: r.deletion_date,
      rotationEnabled: r.rotation_enabled,
      rotationPeriodInDays: r.rotation_period_in_days,
      nextRotationDate: r.next_rotation_date,
      lastRotationDate: lastRotations.get(r.key_id) ?? null,
      lastUsed: lastUse.get(r.arn)?.lastUsed ?? null,
    }));
    const countBy = (f: (k: ReportKey) => string) => keys.reduce<Record<string, number>>((acc, k) => ((acc[f(k)] = (acc[f(k)] ?? 0) + 1), acc), {});
    const inventory = { total: keys.length, byState: countBy((k) => k.keyState), byKeySpec: countBy((k) => k.keySpec), byKeyManager: countBy((k) => k.keyManager) };
    /** The newest successful record of one of `names` on `arn`. */
    const latest = (arn: string, names: string[]) => lifecycle.filter((l) => l.keyArn === arn && names.includes(l.eventName));
    progress('inventory');

    // ---- rotation coverage (only symmetric encryption keys rotate automatically)
    for (const k of keys) {
      if (k.keyState === 'PendingDeletion' || k.keySpec !== 'SYMMETRIC_DEFAULT' || k.keyUsage !== 'ENCRYPT_DECRYPT' || k.origin !== 'AWS_KMS') continue;
      if (!k.rotationEnabled) {
        const ids = [...latest(k.arn, ['DisableKeyRotation']).slice(0, 1), ...latest(k.arn, ['CreateKey'])].map((l) => l.eventId);
        findings.push({
          section: 'rotation',
          kind: 'rotationDisabled',
          severity: 'medium',
          keyArn: k.arn,
          principal: null,
          grantId: null,
          summary: `Automatic rotation is not enabled for ${keyLabel(k)}.`,
          details: { keyState: k.keyState, lastRotationDate: k.lastRotationDate?.toISOString() ?? null },
          evidence: evidenceOf(ids),
        });
        continue;
      }
      const period = k.rotationPeriodInDays ?? 365;
      const dueMissed = k.nextRotationDate !== null && k.nextRotationDate.getTime() < to.getTime();
      const staleMaterial = k.lastRotationDate !== null && k.lastRotationDate.getTime() + period * DAY_MS < to.getTime();
      if (dueMissed || staleMaterial) {
        const ids = [...latest(k.arn, ['RotateKey', 'RotateKeyOnDemand']).slice(0, 1), ...latest(k.arn, ['EnableKeyRotation']).slice(0, 1)].map((l) => l.eventId);
        findings.push({
          section: 'rotation',
          kind: 'rotationOverdue',
          severity: 'high',
          keyArn: k.arn,
          principal: null,
          grantId: null,
          summary: `Rotation of ${keyLabel(k)} is overdue for its ${period}-day period.`,
          details: {
            rotationPeriodInDays: period,
            nextRotationDate: k.nextRotationDate?.toISOString() ?? null,
            lastRotationDate: k.lastRotationDate?.toISOString() ?? null,
            reason: dueMissed ? 'nextRotationDate passed' : 'last rotation older than the period',
          },
          evidence: evidenceOf(ids),
        });
      }
    }
    progress('rotation');

    // ---- pending deletion, and the uses attempted on those keys
    const invalidState = new Map((await readFailuresByKey(trx, accountId, window, ['KMSInvalidStateException'], EVIDENCE_CAP)).map((g) => [g.group['key'], g]));
    for (const k of keys.filter((x) => x.keyState === 'PendingDeletion')) {
      const uses = invalidState.get(k.arn);
      const scheduled = latest(k.arn, ['ScheduleKeyDeletion']).slice(0, 1).map((l) => l.eventId);
      findings.push({
        section: 'pendingDeletion',
        kind: uses ? 'pendingDeletionUsed' : 'pendingDeletion',
        severity: uses ? 'high' : 'info',
        keyArn: k.arn,
        principal: null,
        grantId: null,
        summary: uses
          ? `${keyLabel(k)} is pending deletion (on ${k.deletionDate?.toISOString() ?? '?'}) and ${uses.count} request(s) tried to use it.`
          : `${keyLabel(k)} is pending deletion (on ${k.deletionDate?.toISOString() ?? '?'}); no use attempted.`,
        details: { deletionDate: k.deletionDate?.toISOString() ?? null, attemptedUses: uses?.count ?? 0, lastAttempt: uses?.last.toISOString() ?? null, scheduledBy: scheduled[0] ?? null },
        evidence: uses ? evidenceOf(uses.eventIds, uses.count) : evidenceOf(scheduled),
      });
    }
    progress('pending deletion');

    // ---- disabled keys still called
    const keyByArn = new Map(keys.map((k) => [k.arn, k]));
    for (const g of await readFailuresByKey(trx, accountId, window, ['DisabledException'], EVIDENCE_CAP)) {
      const k = g.group['key'] ? keyByArn.get(g.group['key']) : undefined;
      findings.push({
        section: 'disabledInUse',
        kind: 'disabledKeyCalled',
        severity: 'medium',
        keyArn: g.group['key'] ?? null,
        principal: null,
        grantId: null,
        summary: `${k ? keyLabel(k) : (g.group['key'] ?? 'A key')} was called ${g.count} time(s) while disabled.`,
        details: { currentKeyState: k?.keyState ?? 'deleted', firstCall: g.first.toISOString(), lastCall: g.last.toISOString() },
        evidence: evidenceOf(g.eventIds, g.count),
      });
    }
    progress('disabled keys');

    // ---- denied requests
    for (const g of await readDeniedRequests(trx, accountId, window, EVIDENCE_CAP)) {
      const principal = g.group['principal'] ?? null;
      findings.push({
        section: 'denied',
        kind: 'deniedRequests',
        severity: g.group['errorCode'] === 'NotFoundException' ? 'high' : 'medium',
        keyArn: g.group['key'] ?? null,
        principal,
        grantId: null,
        summary: `${principal ?? 'An unknown caller'} was refused ${g.count} time(s) (${g.group['errorCode']})${g.group['key'] ? ` on ${g.group['key']}` : ''}.`,
        details: { errorCode: g.group['errorCode'], firstAttempt: g.first.toISOString(), lastAttempt: g.last.toISOString(), crossAccount: g.group['errorCode'] === 'NotFoundException' },
        evidence: evidenceOf(g.eventIds, g.count),
      });
    }
    progress('denied requests');

    // ---- grants
    const grantRows = await trx.selectFrom('grants').selectAll().where('key_account_id', '=', accountId).orderBy('creation_date').orderBy('grant_id').execute();
    const grantUse = new Map<string, EvidenceGroup>((await readGrantUse(trx, accountId, to, EVIDENCE_CAP)).map((g) => [g.group['grantId']!, g]));
    const arnOfKey = new Map(keys.map((k) => [k.keyId, k.arn]));
    const grantCreation = new Map<string, string>();
    for (const l of lifecycle) {
      const id = l.eventName === 'CreateGrant' ? l.responseElements?.['grantId'] : undefined;
      if (typeof id === 'string' && !grantCreation.has(id)) grantCreation.set(id, l.eventId);
    }
    const creationOrder = new Map([...grantCreation.values()].map((eventId, i) => [eventId, i]));
    for (const g of grantRows) {
      const use = grantUse.get(g.grant_id);
      const ageDays = Math.floor((to.getTime() - g.creation_date.getTime()) / DAY_MS);
      const created = grantCreation.get(g.grant_id);
      findings.push({
        section: 'grants',
        kind: use ? 'grant' : 'grantNeverUsed',
        severity: use ? 'info' : 'low',
        keyArn: arnOfKey.get(g.key_id) ?? null,
        principal: g.grantee_principal,
        grantId: g.grant_id,
        summary: use
          ? `Grant ${g.grant_id} to ${g.grantee_principal} (${ageDays} days old) was used ${use.count} time(s).`
          : `Grant ${g.grant_id} to ${g.grantee_principal} (${ageDays} days old) has never been used.`,
        details: {
          name: g.name,
          creationDate: g.creation_date.toISOString(),
          ageDays,
          operations: g.operations,
          constraints: g.constraints ?? null,
          retiringPrincipal: g.retiring_principal,
          useCount: use?.count ?? 0,
          lastUsed: use?.last.toISOString() ?? null,
          createdBy: created ?? null,
        },
        evidence: use ? evidenceOf(use.eventIds, use.count) : evidenceOf(created ? [created] : []),
      });
    }
    progress('grants');

    // ---- unused keys
    const unusedSince = new Date(to.getTime() - unusedDays * DAY_MS);
    for (const k of keys) {
      if (k.creationDate.getTime() > unusedSince.getTime()) continue; // too young to judge
      const last = lastUse.get(k.arn);
      if (last && last.lastUsed.getTime() >= unusedSince.getTime()) continue;
      const created = latest(k.arn, ['CreateKey']).map((l) => l.eventId);
      findings.push({
        section: 'unusedKeys',
        kind: 'unusedKey',
        severity: 'low',
        keyArn: k.arn,
        principal: null,
        grantId: null,
        summary: last
          ? `${keyLabel(k)} has not been used for ${unusedDays} days (last use ${last.lastUsed.toISOString()}).`
          : `${keyLabel(k)} has never been used.`,
        details: { keyState: k.keyState, lastUsed: last?.lastUsed.toISOString() ?? null, unusedSince: unusedSince.toISOString() },
        evidence: evidenceOf(last ? [last.lastEventId] : created),
      });
    }
    progress('unused keys');

    // ---- who can decrypt each key
    for (const row of rows) {
      const k = keyByArn.get(row.arn)!;
      if (k.keyUsage !== 'ENCRYPT_DECRYPT') continue;
      const entries = await analyzeKeyAccess(trx, { keyId: row.key_id, accountId: row.account_id, arn: row.arn, policy: row.policy }, 'kms:Decrypt');
      const policyIds = latest(k.arn, ['PutKeyPolicy', 'CreateKey']).slice(0, 1).map((l) => l.eventId);
      // Evidence oldest first: grants in the order they were created, not by grant id
      // (the lifecycle records, and so creationOrder, run newest first).
      const grantIds = entries
        .flatMap((e) => ('grantId' in e.source ? [grantCreation.get(e.source.grantId)].filter((x): x is string => !!x) : []))
        .sort((a, b) => creationOrder.get(b)! - creationOrder.get(a)!);
      const allows = entries.filter((e) => e.effect === 'Allow');
      const anyone = allows.some((e) => e.kind === 'anyone' && e.conditions.length === 0);
      findings.push({
        section: 'decryptAccess',
        kind: 'decryptAccess',
        severity: anyone ? 'high' : 'info',
        keyArn: k.arn,
        principal: null,
        grantId: null,
        summary: `${keyLabel(k)}: ${describeAccess(entries)}.`,
        details: { entries: entries.map(simplifyEntry) },
        evidence: evidenceOf([...policyIds, ...grantIds]),
      });
    }
    progress('decrypt access');

    // ---- usage per day
    const groups = await readUsageStatistics(trx, accountId, { from, to }, ['DAY'], 10_000);
    const usagePerDay = fillDays(
      groups.filter((g) => g.day).map((g) => ({ day: g.day!.toISOString().slice(0, 10), count: g.count, failures: g.failures, denied: g.denied })),
      from,
      to,
    );
    progress('usage per day');

    const summary = Object.fromEntries(REPORT_SECTIONS.map((s) => [s.id, findings.filter((f) => f.section === s.id).length])) as Record<ReportSection, number>;
    return { accountId, region: this.#region, from, to, generatedAt: now, unusedDays, evidenceCap: EVIDENCE_CAP, inventory, keys, usagePerDay, findings, summary };
  }
}

const keyLabel = (k: Pick<ReportKey, 'keyId' | 'aliases'>) => (k.aliases.length > 0 ? `key ${k.keyId} (${k.aliases.join(', ')})` : `key ${k.keyId}`);

function simplifyEntry(e: AccessEntry) {
  return {
    effect: e.effect,
    kind: e.kind,
    principal: e.principal,
    conditions: e.conditions,
    source: 'grantId' in e.source ? `grant ${e.source.grantId}` : `key policy statement ${e.source.sid ?? `#${e.source.index}`}`,
    ...(e.viaIdentityPolicies ? { viaIdentityPolicies: e.viaIdentityPolicies.map((p) => ({ principal: p.principal, policy: p.policy, sid: p.sid, conditions: p.conditions })) } : {}),
  };
}

function describeAccess(entries: AccessEntry[]): string {
  const who = new Set<string>();
  for (const e of entries) {
    if (e.effect !== 'Allow') continue;
    if (e.kind === 'account' && e.viaIdentityPolicies) for (const p of e.viaIdentityPolicies) who.add(p.principal);
    else if (e.kind === 'grant') who.add(`${e.principal} (grant)`);
    else who.add(e.principal === '*' ? 'anyone' : e.principal);
  }
  const denies = entries.filter((e) => e.effect === 'Deny').length;
  const list = [...who];
  return `${list.length === 0 ? 'no one' : list.join(', ')} can decrypt${denies > 0 ? ` (${denies} Deny statement(s) apply)` : ''}`;
}

/** Every day of [from, to) with its counts (zero when none), when the range is short enough to chart. */
function fillDays(days: UsageDay[], from: Date, to: Date): UsageDay[] {
  const start = Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate());
  const count = Math.ceil((to.getTime() - start) / DAY_MS);
  if (count > MAX_FILLED_DAYS) return days;
  const byDay = new Map(days.map((d) => [d.day, d]));
  return Array.from({ length: count }, (_, i) => {
    const day = new Date(start + i * DAY_MS).toISOString().slice(0, 10);
    return byDay.get(day) ?? { day, count: 0, failures: 0, denied: 0 };
  });
}
