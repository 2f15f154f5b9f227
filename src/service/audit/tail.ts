/**
 * The live tail of auditEvents (the GraphQL subscription): records as they
 * commit, woken by the shared LISTEN only for records it may deliver,
 * resumable from any cursor, ended with AccessDeniedException when its caller
 * may no longer read the audit log, and capped per principal and per process.
 */
import { Validator } from '../../domain/errors.ts';
import { readAuditPage, type AuditPosition, type AuditQueryFilter } from '../../store/audit-queries.ts';
import type { AuditFeed, AuditWakeup } from '../../store/audit-notifications.ts';
import type { Db } from '../../store/database.ts';
import { logHorizon } from '../../store/event-store.ts';
import { enforce, type Authorizer } from '../authorization.ts';
import type { RequestContext } from '../context.ts';
import type { RequestRunner } from '../request-runner.ts';
import { streamUntilStopped, SubscriptionSlots, type SubscriptionSlot } from '../subscription-slots.ts';
import { resolveAuditFilter, type AuditEventFilter } from './filter.ts';
import { ensureStillReading } from './reader-recheck.ts';
import { AUDIT_READ_ACTION, decodeCursor, encodeCursor, recordEdge, type AuditEventEdge } from './records.ts';

/** The live tail's input: an auditEvents filter and, to resume, the cursor of the last record received. */
export interface AuditTailInput {
  filter?: AuditEventFilter | null;
  after?: string | null;
}

/**
 * How often a running tail re-checks that its caller may still read the audit
 * log, whatever the log says: the backstop for changes made outside it (an
 * operator's SQL). Changes through the service re-check at once (ACCESS_CHANGES).
 */
const TAIL_RECHECK_MS = 30_000;
/**
 * The operations whose records, in a tail's account, make it re-check its
 * caller at once: reading the audit log is allowed by identity policies only.
 */
const ACCESS_CHANGES = ['PutPrincipalPolicy', 'DeletePrincipalPolicy'] as const;
/** The live tail reads at most this many records per query. */
const TAIL_BATCH = 200;
/** Fallback poll of the live tail while the feed cannot LISTEN, in case a notification was lost. */
const TAIL_POLL_MS = 2000;
/**
 * While the feed LISTENs, a notification is lost only if the trigger is off
 * (a reconnect wakes every tail): an idle tail then reads only this rarely.
 */
const TAIL_LISTENING_POLL_MS = 30_000;
/** Re-read delay when a committed record waits behind an older transaction still in flight. */
const TAIL_BEHIND_HORIZON_MS = 100;

/**
 * Live tails of the audit log. A tail reads outside any request's transaction
 * (on the pool), as it outlives the request that opened it.
 *
 * @example
 * const tails = new AuditTailService({ runner, region: 'us-east-1', authorizer, db, feed: new AuditFeed(db, logger) });
 * for await (const { node } of await tails.followAuditEvents(ctx, {})) console.log(node.eventName);
 */
export class AuditTailService {
  readonly #runner: RequestRunner;
  readonly #region: string;
  readonly #authorizer: Authorizer;
  readonly #db: Db;
  readonly #feed: AuditFeed;
  /** A fixed fallback poll; by default TAIL_POLL_MS while the feed cannot LISTEN, TAIL_LISTENING_POLL_MS while it can. */
  readonly #pollMs: number | undefined;
  readonly #recheckMs: number;
  /** The process's open subscriptions (shared with the checkpoints stream). */
  readonly #slots: SubscriptionSlots;
  #openTails = 0;

  constructor(deps: {
    runner: RequestRunner;
    region: string;
    authorizer: Authorizer;
    db: Db;
    feed: AuditFeed;
    pollMs?: number;
    recheckMs?: number;
    slots?: SubscriptionSlots;
  }) {
    this.#runner = deps.runner;
    this.#region = deps.region;
    this.#authorizer = deps.authorizer;
    this.#db = deps.db;
    this.#feed = deps.feed;
    this.#pollMs = deps.pollMs;
    this.#recheckMs = deps.recheckMs ?? TAIL_RECHECK_MS;
    this.#slots = deps.slots ?? new SubscriptionSlots();
  }

  /** How many tails this process holds open. */
  get openTails(): number {
    return this.#openTails;
  }

  /**
   * The live tail of auditEvents: the records matching `filter`, oldest first,
   * as they commit, each with its cursor. Starting is one recorded read-only
   * request (SubscribeAuditEvents); the records it then delivers are not
   * requests and record nothing.
   *
   * With `after` (any auditEvents cursor, or the last one this tail delivered),
   * it delivers every record after it exactly once, then follows: a client that
   * reconnects with its last cursor, after a disconnect or a server restart,
   * misses nothing and receives nothing twice. Without it, it starts where
   * auditEvents ends at that moment (the horizon). Each read is auditEvents'
   * horizon-safe query, woken by the shared LISTEN (sql/0011_audit_notify.sql)
   * only for records of its account and operations (sql/0030), and by a
   * fallback poll. The key filter is resolved once, when it starts.
   *
   * A principal holds at most `perPrincipal` subscriptions and the process
   * `perProcess` (SubscriptionSlots: auditEvents tails and checkpoints streams
   * together); past either, starting is LimitExceededException. A
   * running tail re-checks its caller when the log records a change of its
   * account's identity policies (and every `recheckMs`): once the caller may
   * no longer read the log, the tail ends with that AccessDeniedException,
   * recorded as a SubscribeAuditEvents request of its own.
   *
   * @example
   * const tail = await audit.followAuditEvents(ctx, { filter: { eventNames: ['Decrypt'] }, after: lastCursor });
   * for await (const { cursor, node } of tail) save(cursor, node);
   */
  async followAuditEvents(ctx: RequestContext, input: AuditTailInput): Promise<AsyncIterableIterator<AuditEventEdge>> {
    const requestParameters = { filter: input.filter ?? undefined, after: input.after ?? undefined };
    const account = ctx.caller.accountId;
    let slot: SubscriptionSlot | undefined;
    const start = await this.#runner
      .run(ctx, { eventName: 'SubscribeAuditEvents', readOnly: true, requestParameters }, async (scope) => {
        const { trx } = scope;
        await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
        new Validator().maxLength('after', input.after, 200).throwIfAny();
        const after = input.after != null ? decodeCursor(input.after, 'after') : null;
        const filter = await resolveAuditFilter(trx, this.#region, account, input.filter ?? {});
        // (horizon, 0) as an exclusive lower bound: every record of a transaction at or above the horizon.
        const from: AuditPosition = after ?? { transactionId: await logHorizon(trx), globalPosition: 0n };
        // Last, so that nothing in the body can fail with the slot taken (a retried body takes it again).
        slot?.release();
        slot = this.#slots.reserve(scope.ctx.caller.principalArn);
        return { filter, from };
      })
      .catch((error: unknown) => {
        slot?.release(); // the record could not be committed
        throw error;
      });
    const taken = slot!;
    let wakeup: AuditWakeup;
    try {
      wakeup = await this.#feed.follow({ accountId: account, eventNames: start.filter.eventNames ?? null, alertOn: ACCESS_CHANGES });
    } catch (error) {
      taken.release();
      throw error;
    }
    this.#openTails++;
    const controller = new AbortController();
    const records = this.#follow(ctx, requestParameters, start.filter, start.from, wakeup, controller.signal);
    let released = false;
    const stop = () => {
      controller.abort();
      wakeup.close();
      if (!released) {
        taken.release();
        this.#openTails--;
      }
      released = true;
    };
    return streamUntilStopped(records, stop);
  }

  async *#follow(
    ctx: RequestContext,
    requestParameters: Record<string, unknown>,
    filter: AuditQueryFilter,
    from: AuditPosition,
    wakeup: AuditWakeup,
    signal: AbortSignal,
  ): AsyncGenerator<AuditEventEdge, undefined> {
    const account = ctx.caller.accountId;
    let cursor = from;
    let checkedAt = Date.now();
    let recheck = false;
    // Set when the feed closes (the server is stopping): the tail reads once more, up to the log's end, then ends,
    // so the records of the last batches answered before the stop still reach it.
    let closing = false;
    try {
      while (!signal.aborted) {
        // A tail outlives the request that opened it: it ends once its access key is no longer active or the
        // caller's identity policies no longer allow reading the audit log.
        if (recheck || Date.now() - checkedAt >= this.#recheckMs) {
          await ensureStillReading({ db: this.#db, authorizer: this.#authorizer, runner: this.#runner }, ctx, 'SubscribeAuditEvents', {
            ...requestParameters,
            after: encodeCursor(cursor),
          });
          checkedAt = Date.now();
          recheck = false;
        }
        const horizon = await logHorizon(this.#db);
        const rows = await readAuditPage(this.#db, account, {
          filter,
          direction: 'asc',
          after: cursor,
          before: null,
          limit: TAIL_BATCH,
          fromEnd: false,
          horizon,
        });
        for (const r of rows) {
          cursor = { transactionId: r.transactionId, globalPosition: r.globalPosition };
          yield recordEdge(r, account);
        }
        if (rows.length === TAIL_BATCH) continue;
        if (closing) break;
        // A transaction that committed at or above the horizon waits behind an
        // older one still in flight, whose commit may notify nobody (rolled back).
        const delay =
          wakeup.latestNotified() >= horizon ? TAIL_BEHIND_HORIZON_MS : (this.#pollMs ?? (wakeup.listening() ? TAIL_LISTENING_POLL_MS : TAIL_POLL_MS));
        const woken = await wakeup.wait(Math.min(delay, Math.max(this.#recheckMs, TAIL_BEHIND_HORIZON_MS)), signal);
        if (woken === 'closed') closing = true;
        if (woken === 'alert') recheck = true;
      }
    } finally {
      wakeup.close();
    }
    return undefined;
  }
}
