import { KmsError, Validator } from '../domain/errors.ts';
import { readUsageStatistics } from '../store/usage-statistics.ts';
import {
  readAccountInventory,
  readDeniedRequests,
  readFailuresByKey,
  readGrantUse,
  readKeyUse,
  readLastRotations,
  readLatestLifecycleRecords,
} from '../store/compliance-queries.ts';
import type { Database } from '../store/database.ts';
import { accountExists } from '../store/identity-store.ts';
import type { Transaction } from 'kysely';
import { analyzeKeyAccess, type AccessEntry } from './access-analysis.ts';
import { AUDIT_READ_ACTION } from './audit/records.ts';
import { enforce, type Authorizer } from './authorization.ts';
import type { OperatorContext, RequestContext } from './context.ts';
import type { OperationSpec, RequestRunner } from './request-runner.ts';
import { decryptAccessFindings, isDecryptionKey } from './report/decrypt-access.ts';
import { deniedFindings } from './report/denied.ts';
import { disabledInUseFindings } from './report/disabled-in-use.ts';
import { grantFindings } from './report/grants.ts';
import { keyInventory, reportKeys } from './report/inventory.ts';
import { EVIDENCE_CAP, summarizeFindings, type ComplianceReport } from './report/model.ts';
import { pendingDeletionFindings } from './report/pending-deletion.ts';
import { rotationFindings } from './report/rotation.ts';
import { unusedKeyFindings } from './report/unused-keys.ts';
import { usagePerDay } from './report/usage-per-day.ts';

type Trx = Transaction<Database>;

// The report's shape is the report's module's own; callers (renderers, GraphQL) know only this entry point.
export { REPORT_SECTIONS, type ComplianceReport, type ReportFinding, type UsageDay } from './report/model.ts';

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

const DEFAULT_UNUSED_DAYS = 90;
/** The lifecycle requests whose records are the evidence of findings about key state and grants. */
const LIFECYCLE_EVENT_NAMES = [
  'CreateKey',
  'PutKeyPolicy',
  'EnableKeyRotation',
  'DisableKeyRotation',
  'RotateKey',
  'RotateKeyOnDemand',
  'ScheduleKeyDeletion',
  'DisableKey',
  'CreateGrant',
];

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
    return this.#runner.run(ctx, SPEC(input), async (scope) => {
      const { trx, now } = scope;
      await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
      return this.#build(trx, scope.ctx.caller.accountId, input, now, options);
    });
  }

  /** An operator's report on `accountId` (`keyledger report --account`), recorded as an operator action in that account. */
  complianceReportAsOperator(op: OperatorContext, accountId: string, input: ComplianceReportInput, options: ReportOptions = {}): Promise<ComplianceReport> {
    return this.#runner.runAsOperator(op, accountId, SPEC(input), async (scope) => {
      const { trx, now } = scope;
      new Validator().pattern('accountId', accountId, /^\d{12}$/, '^\\d{12}$').throwIfAny();
      if (!(await accountExists(trx, accountId))) throw new KmsError('NotFoundException', `Account ${accountId} does not exist.`);
      return this.#build(trx, accountId, input, now, options);
    });
  }

  /**
   * Reads what each section needs, in the report's transaction, and hands it to
   * the section's pure function (./report/). One query at a time: they share the
   * transaction's one connection, so Promise.all would only look parallel.
   */
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

    const { keys: rows, aliases: aliasRows, grants: grantRows } = await readAccountInventory(trx, accountId);
    const lastRotations = await readLastRotations(
      trx,
      rows.map((r) => r.key_id),
      to,
    );
    const lastUse = await readKeyUse(
      trx,
      accountId,
      rows.map((r) => r.arn),
      { to },
    );
    const lifecycle = await readLatestLifecycleRecords(trx, accountId, to, LIFECYCLE_EVENT_NAMES);
    const keys = reportKeys(rows, aliasRows, lastRotations, lastUse);
    const inventory = keyInventory(keys);
    progress('inventory');

    const rotation = rotationFindings(keys, lifecycle, to);
    progress('rotation');

    const invalidState = await readFailuresByKey(trx, accountId, window, ['KMSInvalidStateException'], EVIDENCE_CAP);
    const pendingDeletion = pendingDeletionFindings(keys, lifecycle, invalidState);
    progress('pending deletion');

    const disabledInUse = disabledInUseFindings(keys, await readFailuresByKey(trx, accountId, window, ['DisabledException'], EVIDENCE_CAP));
    progress('disabled keys');

    const denied = deniedFindings(await readDeniedRequests(trx, accountId, window, EVIDENCE_CAP));
    progress('denied requests');

    const grants = grantFindings(grantRows, await readGrantUse(trx, accountId, to, EVIDENCE_CAP), keys, lifecycle, to);
    progress('grants');

    const unusedKeys = unusedKeyFindings(keys, lastUse, lifecycle, to, unusedDays);
    progress('unused keys');

    const access = new Map<string, AccessEntry[]>();
    for (const row of rows) {
      if (!isDecryptionKey(row.key_usage)) continue;
      access.set(row.key_id, await analyzeKeyAccess(trx, { keyId: row.key_id, accountId: row.account_id, arn: row.arn, policy: row.policy }, 'kms:Decrypt'));
    }
    const decryptAccess = decryptAccessFindings(keys, access, lifecycle);
    progress('decrypt access');

    const usage = usagePerDay(await readUsageStatistics(trx, accountId, { from, to }, ['DAY'], 10_000), from, to);
    progress('usage per day');

    const findings = [...rotation, ...pendingDeletion, ...disabledInUse, ...denied, ...grants, ...unusedKeys, ...decryptAccess];
    return {
      accountId,
      region: this.#region,
      from,
      to,
      generatedAt: now,
      unusedDays,
      evidenceCap: EVIDENCE_CAP,
      inventory,
      keys,
      usagePerDay: usage,
      findings,
      summary: summarizeFindings(findings),
    };
  }
}
