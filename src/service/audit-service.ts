import { sql } from 'kysely';
import { KmsError, Validator } from '../domain/errors.ts';
import { AUDIT_RECORD_TYPE, type AuditRecord } from './audit.ts';
import type { RequestContext } from './context.ts';
import type { RequestRunner } from './request-runner.ts';

export interface AuditEventView extends AuditRecord {
  eventId: string;
}

export interface AuditEventConnection {
  edges: { cursor: string; node: AuditEventView }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

const CURSOR_PREFIX = 'audit:';

const encodeCursor = (position: string) => Buffer.from(`${CURSOR_PREFIX}${position}`).toString('base64url');

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith(CURSOR_PREFIX) || !/^\d{1,19}$/.test(text.slice(CURSOR_PREFIX.length))) {
    throw new KmsError('ValidationException', `Invalid cursor '${cursor}'`);
  }
  return text.slice(CURSOR_PREFIX.length);
}

/**
 * The audit read side: the caller's account's audit records, newest first.
 * Reading the audit log is itself a recorded request.
 */
export class AuditService {
  readonly #runner: RequestRunner;

  constructor(deps: { runner: RequestRunner }) {
    this.#runner = deps.runner;
  }

  auditEvents(ctx: RequestContext, input: { first?: number | null; after?: string | null }): Promise<AuditEventConnection> {
    const requestParameters = { first: input.first ?? undefined, after: input.after ?? undefined };
    return this.#runner.run(ctx, { eventName: 'ListAuditEvents', readOnly: true, requestParameters }, async (trx) => {
      new Validator().range('first', input.first, 1, 1000).throwIfAny();
      const size = input.first ?? 50;
      let query = trx
        .selectFrom('events')
        .select(['global_position', 'event_id', 'data'])
        .where('type', '=', AUDIT_RECORD_TYPE)
        .where(sql<string>`data ->> 'accountId'`, '=', ctx.caller.accountId);
      if (input.after != null) query = query.where('global_position', '<', decodeCursor(input.after));
      const rows = await query.orderBy('global_position', 'desc').limit(size + 1).execute();
      const hasNextPage = rows.length > size;
      const edges = rows.slice(0, size).map((r) => ({
        cursor: encodeCursor(r.global_position),
        node: { ...(r.data as AuditRecord), eventId: r.event_id },
      }));
      return {
        edges,
        pageInfo: {
          hasNextPage,
          hasPreviousPage: input.after != null,
          startCursor: edges[0]?.cursor ?? null,
          endCursor: edges.at(-1)?.cursor ?? null,
        },
      };
    });
  }
}
