/**
 * The live tail of auditEvents (the GraphQL subscription): records as they
 * commit, woken by the shared LISTEN, resumable from any cursor, ended when
 * its caller may no longer read the audit log.
 */
import { Validator } from '../../domain/errors.ts';
import { readAuditPage, type AuditPosition, type AuditQueryFilter } from '../../store/audit-queries.ts';
import type { AuditFeed, AuditWakeup } from '../../store/audit-notifications.ts';
import type { Db } from '../../store/database.ts';
import { logHorizon } from '../../store/event-store.ts';
import { enforce, type Authorizer } from '../authorization.ts';
import type { RequestContext } from '../context.ts';
import type { RequestRunner } from '../request-runner.ts';
import { resolveAuditFilter, type AuditEventFilter } from './filter.ts';
import { AUDIT_READ_ACTION, decodeCursor, recordEdge, type AuditEventEdge } from './records.ts';

/** The live tail's input: an auditEvents filter and, to resume, the cursor of the last record received. */
export interface AuditTailInput {
  filter?: AuditEventFilter | null;
  after?: string | null;
}

/** How often a running tail re-checks that its caller may still read the audit log. */
const TAIL_RECHECK_MS = 30_000;
/** The live tail reads at most this many records per query. */
const TAIL_BATCH = 200;
/** Fallback poll of the live tail, in case a notification was lost. */
const TAIL_POLL_MS = 2000;
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
  readonly #pollMs: number;
  readonly #recheckMs: number;

  constructor(deps: { runner: RequestRunner; region: string; authorizer: Authorizer; db: Db; feed: AuditFeed; pollMs?: number; recheckMs?: number }) {
    this.#runner = deps.runner;
    this.#region = deps.region;
    this.#authorizer = deps.authorizer;
    this.#db = deps.db;
    this.#feed = deps.feed;
    this.#pollMs = deps.pollMs ?? TAIL_POLL_MS;
    this.#recheckMs = deps.recheckMs ?? TAIL_RECHECK_MS;
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
   * and by a fallback poll. The key filter is resolved once, when it starts.
   *
   * @example
   * const tail = await audit.followAuditEvents(ctx, { filter: { eventNames: ['Decrypt'] }, after: lastCursor });
   * for await (const { cursor, node } of tail) save(cursor, node);
   */
  async followAuditEvents(ctx: RequestContext, input: AuditTailInput): Promise<AsyncIterableIterator<AuditEventEdge>> {
    const requestParameters = { filter: input.filter ?? undefined, after: input.after ?? undefined };
    const account = ctx.caller.accountId;
    const start = await this.#runner.run(ctx, { eventName: 'SubscribeAuditEvents', readOnly: true, requestParameters }, async (trx, draft, now) => {
      await enforce(this.#authorizer, trx, ctx, draft, now, { action: AUDIT_READ_ACTION });
      new Validator().maxLength('after', input.after, 200).throwIfAny();
      const after = input.after != null ? decodeCursor(input.after, 'after') : null;
      const filter = await resolveAuditFilter(trx, this.#region, account, input.filter ?? {});
      // (horizon, 0) as an exclusive lower bound: every record of a transaction at or above the horizon.
      const from: AuditPosition = after ?? { transactionId: await logHorizon(trx), globalPosition: 0n };
      return { filter, from };
    });
    const wakeup = await this.#feed.follow();
    const controller = new AbortController();
    const records = this.#follow(ctx, start.filter, start.from, wakeup, controller.signal);
    const stop = () => {
      controller.abort();
      wakeup.close();
    };
    // A generator suspended in a read or a wait only sees return() once it
    // yields again: abort first so that ending a tail is prompt.
    const tail: AsyncIterableIterator<AuditEventEdge> = {
      next: () => records.next(),
      return: (value?: unknown) => {
        stop();
        return records.return(value as undefined);
      },
      throw: (error?: unknown) => {
        stop();
        return records.throw(error);
      },
      [Symbol.asyncIterator]: () => tail,
    };
    return tail;
  }

  async *#follow(ctx: RequestContext, filter: AuditQueryFilter, from: AuditPosition, wakeup: AuditWakeup, signal: AbortSignal): AsyncGenerator<AuditEventEdge, undefined> {
    const account = ctx.caller.accountId;
    let cursor = from;
    let checkedAt = Date.now();
    try {
      while (!signal.aborted) {
        // A tail outlives the request that opened it: it ends once its access key is no longer active or the
        // caller's identity policies no longer allow reading the audit log.
        if (Date.now() - checkedAt >= this.#recheckMs) {
          if (!(await this.#stillAllowed(ctx))) break;
          checkedAt = Date.now();
        }
        const horizon = await logHorizon(this.#db);
        const rows = await readAuditPage(this.#db, account, { filter, direction: 'asc', after: cursor, before: null, limit: TAIL_BATCH, fromEnd: false, horizon });
        for (const r of rows) {
          cursor = { transactionId: r.transactionId, globalPosition: r.globalPosition };
          yield recordEdge(r, account);
        }
        if (rows.length === TAIL_BATCH) continue;
        // A transaction that committed at or above the horizon waits behind an
        // older one still in flight, whose commit may notify nobody (rolled back).
        const delay = wakeup.latestNotified() >= horizon ? TAIL_BEHIND_HORIZON_MS : this.#pollMs;
        if ((await wakeup.wait(delay, signal)) === 'closed') break;
      }
    } finally {
      wakeup.close();
    }
    return undefined;
  }

  /** Whether the caller that opened a tail may still read the audit log (access key active, policies allowing). */
  async #stillAllowed(ctx: RequestContext): Promise<boolean> {
    const key = await this.#db.selectFrom('access_keys').select('status').where('access_key_id', '=', ctx.caller.accessKeyId).executeTakeFirst();
    if (key?.status !== 'Active') return false;
    const policies = await this.#db.selectFrom('principal_policies').select(['policy_name', 'document']).where('principal_arn', '=', ctx.caller.principalArn).execute();
    const caller = { ...ctx.caller, identityPolicies: policies.map((p) => ({ name: p.policy_name, document: p.document })) };
    const evidence = await this.#db.transaction().execute((trx) => this.#authorizer.authorize(trx, { caller, sourceIp: ctx.sourceIp, now: new Date(), action: AUDIT_READ_ACTION }));
    return evidence.decision === 'allow';
  }
}
