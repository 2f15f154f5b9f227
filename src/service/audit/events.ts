/** auditEvents: the audit records the caller may see, filtered and paged as a Relay connection. */
import { KmsError, Validator } from '../../domain/errors.ts';
import { auditRecordExistsBeyond, readAuditPage } from '../../store/audit-queries.ts';
import { logHorizon } from '../../store/event-store.ts';
import { enforce, type Authorizer } from '../authorization.ts';
import type { RequestContext } from '../context.ts';
import type { RequestRunner } from '../request-runner.ts';
import { resolveAuditFilter, type AuditEventFilter } from './filter.ts';
import { AUDIT_READ_ACTION, decodeCursor, recordEdge, type AuditEventEdge } from './records.ts';

export interface PageInfo {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}

export interface AuditEventConnection {
  edges: AuditEventEdge[];
  pageInfo: PageInfo;
}

export type AuditEventOrder = 'NEWEST_FIRST' | 'OLDEST_FIRST';

export interface AuditEventsInput {
  filter?: AuditEventFilter | null;
  order?: AuditEventOrder | null;
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 50;

/**
 * The caller's account's audit records (and records of other accounts'
 * requests on its keys), filtered and paged. Reading them is itself a recorded
 * (read-only) request.
 *
 * @example
 * const events = new AuditEventsService({ runner, region: 'us-east-1', authorizer });
 * await events.auditEvents(ctx, { first: 50 });
 */
export class AuditEventsService {
  readonly #runner: RequestRunner;
  readonly #region: string;
  readonly #authorizer: Authorizer;

  constructor(deps: { runner: RequestRunner; region: string; authorizer: Authorizer }) {
    this.#runner = deps.runner;
    this.#region = deps.region;
    this.#authorizer = deps.authorizer;
  }

  /**
   * auditEvents: a Relay connection over the records, newest first by default.
   *
   * Order is (transaction id, log position), and only records of transactions
   * below the in-flight horizon are returned (see logHorizon): a record
   * committed after a page was read therefore never lands between pages already
   * read, so paging never skips or repeats one. Newest-first, the records that
   * arrive later are above the first page: fetch them with `last`/`before:
   * startCursor`.
   *
   * @example
   * await audit.auditEvents(ctx, { filter: { encryptionContext: { tenant: 'acme' }, eventNames: ['Decrypt'] }, first: 50 });
   */
  auditEvents(ctx: RequestContext, input: AuditEventsInput): Promise<AuditEventConnection> {
    const requestParameters = {
      filter: input.filter ?? undefined,
      order: input.order ?? undefined,
      first: input.first ?? undefined,
      after: input.after ?? undefined,
      last: input.last ?? undefined,
      before: input.before ?? undefined,
    };
    return this.#runner.run(ctx, { eventName: 'ListAuditEvents', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
      const v = new Validator().range('first', input.first, 1, MAX_PAGE).range('last', input.last, 1, MAX_PAGE);
      v.maxLength('after', input.after, 200).maxLength('before', input.before, 200).throwIfAny();
      if (input.first != null && input.last != null) throw new KmsError('ValidationException', 'Give first or last, not both.');
      const after = input.after != null ? decodeCursor(input.after, 'after') : null;
      const before = input.before != null ? decodeCursor(input.before, 'before') : null;
      const filter = await resolveAuditFilter(trx, this.#region, scope.ctx.caller.accountId, input.filter ?? {});
      const direction = (input.order ?? 'NEWEST_FIRST') === 'NEWEST_FIRST' ? 'desc' : 'asc';
      const fromEnd = input.last != null;
      const size = input.last ?? input.first ?? DEFAULT_PAGE;
      const account = scope.ctx.caller.accountId;

      const horizon = await logHorizon(trx);
      const rows = await readAuditPage(trx, account, { filter, direction, after, before, limit: size + 1, fromEnd, horizon });
      const more = rows.length > size;
      const page = more ? (fromEnd ? rows.slice(1) : rows.slice(0, size)) : rows;
      // The side a page was not taken from: is there anything beyond the cursor given for it?
      const beyondAfter = after !== null && (await auditRecordExistsBeyond(trx, account, filter, after, direction === 'desc' ? 'asc' : 'desc', horizon));
      const beyondBefore = before !== null && (await auditRecordExistsBeyond(trx, account, filter, before, direction, horizon));
      const edges = page.map((r) => recordEdge(r, scope.ctx.caller.accountId));
      return {
        edges,
        pageInfo: {
          hasNextPage: fromEnd ? beyondBefore : more,
          hasPreviousPage: fromEnd ? more : beyondAfter,
          startCursor: edges[0]?.cursor ?? null,
          endCursor: edges.at(-1)?.cursor ?? null,
        },
      };
    });
  }
}
