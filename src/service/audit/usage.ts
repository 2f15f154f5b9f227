/** principalActivity and usageStatistics: who did what, and how much, from the usage rollups and the log. */
import { Validator } from '../../domain/errors.ts';
import { DENIED_ERROR_CODES, readNewestRecords } from '../../store/audit-queries.ts';
import { readPrincipalActivity, type ActivityBucket } from '../../store/principal-activity.ts';
import { readUsageStatistics, USAGE_DIMENSIONS, type UsageDimension, type UsageGroup } from '../../store/usage-statistics.ts';
import { enforce, type Authorizer } from '../authorization.ts';
import type { RequestContext } from '../context.ts';
import type { RequestRunner } from '../request-runner.ts';
import { checkRange, resolveAuditFilter, type AuditEventFilter } from './filter.ts';
import { AUDIT_READ_ACTION, viewRecord, type AuditEventView } from './records.ts';

// usageStatistics' dimensions and groups, as the transports name them.
export { USAGE_DIMENSIONS, type UsageDimension, type UsageGroup } from '../../store/usage-statistics.ts';

export interface PrincipalActivity {
  principalArn: string;
  from: Date;
  to: Date;
  total: number;
  failures: number;
  denied: number;
  firstSeen: Date | null;
  lastSeen: Date | null;
  operations: ActivityCount[];
  keys: ActivityCount[];
  sourceIps: ActivityCount[];
  accessKeys: ActivityCount[];
  /** The newest denied attempts (at most 100). */
  deniedAttempts: AuditEventView[];
}

/** One value of a dimension of principalActivity (an operation, a key, a source IP, an access key). */
export type ActivityCount = Omit<ActivityBucket, 'dimension'>;

export const MAX_DENIED_LISTED = 100;
const MAX_USAGE_GROUPS = 10_000;

/**
 * Activity and usage statistics over the caller's account's audit records.
 *
 * @example
 * const usage = new UsageService({ runner, region: 'us-east-1', authorizer });
 * await usage.usageStatistics(ctx, { groupBy: ['DAY'] });
 */
export class UsageService {
  readonly #runner: RequestRunner;
  readonly #region: string;
  readonly #authorizer: Authorizer;

  constructor(deps: { runner: RequestRunner; region: string; authorizer: Authorizer }) {
    this.#runner = deps.runner;
    this.#region = deps.region;
    this.#authorizer = deps.authorizer;
  }

  /**
   * principalActivity: what one principal did in [from, to): keys, operations, denied attempts, source IPs, access keys.
   *
   * @example
   * const activity = await audit.principalActivity(ctx, { principalArn, from: new Date('2026-03-01'), to: new Date('2026-04-01') });
   * activity.deniedAttempts.length;
   */
  principalActivity(ctx: RequestContext, input: { principalArn: string; from: Date; to: Date }): Promise<PrincipalActivity> {
    const requestParameters = { principalArn: input.principalArn, from: input.from.toISOString(), to: input.to.toISOString() };
    return this.#runner.run(ctx, { eventName: 'GetPrincipalActivity', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
      new Validator().minLength('principalArn', input.principalArn, 1).maxLength('principalArn', input.principalArn, 2048).throwIfAny();
      checkRange(input.from, input.to);
      const account = scope.ctx.caller.accountId;
      const query = { principalArn: input.principalArn, from: input.from, to: input.to };
      // One after the other: both run on the transaction's one connection, so Promise.all would only look parallel.
      const buckets = await readPrincipalActivity(trx, account, query);
      const denied = await readNewestRecords(trx, account, { ...query, outcome: 'failure', errorCodes: [...DENIED_ERROR_CODES] }, MAX_DENIED_LISTED);
      const of = (dimension: string): ActivityCount[] =>
        buckets
          .filter((b) => b.dimension === dimension)
          .map(({ value, count, failures, denied: d, first, last }) => ({ value, count, failures, denied: d, first, last }))
          .sort((a, b) => b.count - a.count || String(a.value).localeCompare(String(b.value)));
      const total = buckets.find((b) => b.dimension === 'total');
      return {
        principalArn: input.principalArn,
        from: input.from,
        to: input.to,
        total: total?.count ?? 0,
        failures: total?.failures ?? 0,
        denied: total?.denied ?? 0,
        firstSeen: total?.first ?? null,
        lastSeen: total?.last ?? null,
        operations: of('operation'),
        keys: of('key'),
        sourceIps: of('sourceIp'),
        accessKeys: of('accessKey'),
        deniedAttempts: denied.map((r) => viewRecord(r, scope.ctx.caller.accountId)),
      };
    });
  }

  /**
   * usageStatistics: request counts grouped by any of KEY, PRINCIPAL, OPERATION, DAY, HOUR (UTC), over a filter.
   *
   * @example
   * const { groups } = await audit.usageStatistics(ctx, { groupBy: ['KEY', 'OPERATION'], filter: { from, to } });
   */
  usageStatistics(
    ctx: RequestContext,
    input: { groupBy: UsageDimension[]; filter?: AuditEventFilter | null; limit?: number | null },
  ): Promise<{ groups: UsageGroup[]; truncated: boolean }> {
    const requestParameters = { groupBy: input.groupBy, filter: input.filter ?? undefined, limit: input.limit ?? undefined };
    return this.#runner.run(ctx, { eventName: 'GetUsageStatistics', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
      const v = new Validator().range('limit', input.limit, 1, MAX_USAGE_GROUPS);
      for (const d of input.groupBy) v.oneOf('groupBy', d, USAGE_DIMENSIONS);
      v.throwIfAny();
      const filter = await resolveAuditFilter(trx, this.#region, scope.ctx.caller.accountId, input.filter ?? {});
      const limit = input.limit ?? 1000;
      const groups = await readUsageStatistics(trx, scope.ctx.caller.accountId, filter, input.groupBy, limit + 1);
      return { groups: groups.slice(0, limit), truncated: groups.length > limit };
    });
  }
}
