/**
 * The forensic read side as one entry point (`app.audit`), each job in its own
 * module under ./audit/: paging the records (events.ts), the live tail
 * (tail.ts), data key lineage (lineage.ts), keys as they were at any instant
 * (time-travel.ts), and activity and usage statistics (usage.ts). Reading the
 * audit log is itself a recorded (read-only) request.
 */
import type { AuditFeed } from '../store/audit-notifications.ts';
import type { Db } from '../store/database.ts';
import type { Authorizer } from './authorization.ts';
import type { RequestContext } from './context.ts';
import type { RequestRunner } from './request-runner.ts';
import { AuditEventsService, type AuditEventConnection, type AuditEventsInput } from './audit/events.ts';
import type { AuditEventFilter } from './audit/filter.ts';
import { LineageService, type DataKeyLineage } from './audit/lineage.ts';
import type { AuditEventEdge } from './audit/records.ts';
import { AuditTailService, type AuditTailInput } from './audit/tail.ts';
import type { SubscriptionSlots } from './subscription-slots.ts';
import { TimeTravelService, type KeyAsOfView, type KeyHistoryEntry } from './audit/time-travel.ts';
import { UsageService, type PrincipalActivity, type UsageDimension, type UsageGroup } from './audit/usage.ts';

// What the transports name: the read side's inputs and answers.
export type { AuditEventConnection, AuditEventOrder, AuditEventsInput, PageInfo } from './audit/events.ts';
export type { AuditEventFilter } from './audit/filter.ts';
export type { DataKeyLineage } from './audit/lineage.ts';
export type { AuditEventEdge, AuditEventView } from './audit/records.ts';
export type { AuditTailInput } from './audit/tail.ts';
export type { KeyAsOfView, KeyHistoryEntry } from './audit/time-travel.ts';
export { USAGE_DIMENSIONS, type ActivityCount, type PrincipalActivity, type UsageDimension, type UsageGroup } from './audit/usage.ts';

/**
 * The caller's account's audit records (and records of other accounts'
 * requests on its keys): filtered and paged, followed live, a data key's
 * lineage, keys as they were at any instant, activity and usage statistics.
 *
 * @example
 * const audit = new AuditService({ runner, region: 'us-east-1', authorizer, db, feed });
 * await audit.auditEvents(ctx, { filter: { eventNames: ['Decrypt'] }, first: 50 });
 */
export class AuditService {
  readonly #events: AuditEventsService;
  readonly #tail: AuditTailService;
  readonly #lineage: LineageService;
  readonly #timeTravel: TimeTravelService;
  readonly #usage: UsageService;

  constructor(deps: {
    runner: RequestRunner;
    region: string;
    authorizer: Authorizer;
    db: Db;
    feed: AuditFeed;
    tailPollMs?: number;
    tailRecheckMs?: number;
    /** Open subscriptions, shared with the checkpoints stream. */
    subscriptions?: SubscriptionSlots;
  }) {
    const { runner, region, authorizer } = deps;
    this.#events = new AuditEventsService({ runner, region, authorizer });
    this.#tail = new AuditTailService({
      runner,
      region,
      authorizer,
      db: deps.db,
      feed: deps.feed,
      pollMs: deps.tailPollMs,
      recheckMs: deps.tailRecheckMs,
      ...(deps.subscriptions ? { slots: deps.subscriptions } : {}),
    });
    this.#lineage = new LineageService({ runner, authorizer });
    this.#timeTravel = new TimeTravelService({ runner, region, authorizer });
    this.#usage = new UsageService({ runner, region, authorizer });
  }

  /** See AuditEventsService.auditEvents. */
  auditEvents(ctx: RequestContext, input: AuditEventsInput): Promise<AuditEventConnection> {
    return this.#events.auditEvents(ctx, input);
  }

  /** How many auditEvents subscriptions this process holds open. */
  get openTails(): number {
    return this.#tail.openTails;
  }

  /** See AuditTailService.followAuditEvents. */
  followAuditEvents(ctx: RequestContext, input: AuditTailInput): Promise<AsyncIterableIterator<AuditEventEdge>> {
    return this.#tail.followAuditEvents(ctx, input);
  }

  /** See LineageService.dataKey. */
  dataKey(ctx: RequestContext, input: { dataKeyId: string; limit?: number | null }): Promise<DataKeyLineage | null> {
    return this.#lineage.dataKey(ctx, input);
  }

  /** See TimeTravelService.keyAsOf. */
  keyAsOf(ctx: RequestContext, input: { keyId: string; asOf: Date }): Promise<KeyAsOfView> {
    return this.#timeTravel.keyAsOf(ctx, input);
  }

  /** See TimeTravelService.keyHistory. */
  keyHistory(ctx: RequestContext, input: { keyId: string }): Promise<{ keyId: string; arn: string; entries: KeyHistoryEntry[] }> {
    return this.#timeTravel.keyHistory(ctx, input);
  }

  /** See UsageService.principalActivity. */
  principalActivity(ctx: RequestContext, input: { principalArn: string; from: Date; to: Date }): Promise<PrincipalActivity> {
    return this.#usage.principalActivity(ctx, input);
  }

  /** See UsageService.usageStatistics. */
  usageStatistics(
    ctx: RequestContext,
    input: { groupBy: UsageDimension[]; filter?: AuditEventFilter | null; limit?: number | null },
  ): Promise<{ groups: UsageGroup[]; truncated: boolean }> {
    return this.#usage.usageStatistics(ctx, input);
  }
}
