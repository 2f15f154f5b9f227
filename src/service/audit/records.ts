/**
 * How the audit read side shows records: as the viewing account may see them,
 * each with an opaque cursor, to callers allowed to read the audit log.
 */
import { KmsError } from '../../domain/errors.ts';
import type { AuditPosition, AuditRow } from '../../store/audit-queries.ts';
import type { AuditRecord } from '../audit.ts';

/** The IAM action that allows reading the audit log, as CloudTrail's own. */
export const AUDIT_READ_ACTION = 'cloudtrail:LookupEvents';

export interface AuditEventView extends AuditRecord {
  eventId: string;
}

export interface AuditEventEdge {
  cursor: string;
  node: AuditEventView;
}

const CURSOR_VERSION = 'a1';

/**
 * Cursors are opaque: base64url of a version and a (transaction id, log position).
 *
 * @example
 * encodeCursor({ transactionId: 812n, globalPosition: 40_221n }); // 'YTE6ODEyOjQwMjIx'
 */
export const encodeCursor = (p: AuditPosition): string => Buffer.from(`${CURSOR_VERSION}:${p.transactionId}:${p.globalPosition}`).toString('base64url');

/**
 * The position a cursor of `field` names; ValidationException for anything
 * encodeCursor did not make.
 *
 * @example
 * const after = input.after != null ? decodeCursor(input.after, 'after') : null;
 */
export function decodeCursor(cursor: string, field: string): AuditPosition {
  const m = /^a1:(\d{1,20}):(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m || cursor.length > 200) throw new KmsError('ValidationException', `Invalid cursor in '${field}'.`);
  return { transactionId: BigInt(m[1]!), globalPosition: BigInt(m[2]!) };
}

/**
 * A record as `viewer` (an account id) may see it. A request that another
 * account's key refused as missing is in both accounts' logs; the caller's copy
 * must not tell it more than the answer did, so the key's account and the
 * authorization evidence are only shown to the key's owner.
 *
 * @example
 * rows.map((r) => viewRecord(r, ctx.caller.accountId));
 */
export function viewRecord(r: AuditRow, viewer: string): AuditEventView {
  const record: AuditEventView = { ...r.data, eventId: r.eventId };
  if (record.recipientAccountId && record.recipientAccountId !== viewer && record.outcome === 'failure') {
    const { recipientAccountId: _hidden, authorization: _evidence, ...shown } = record;
    return shown;
  }
  return record;
}

/**
 * A record as `viewer` may see it, with its cursor: one edge of auditEvents or of a live tail.
 *
 * @example
 * page.map((r) => recordEdge(r, ctx.caller.accountId));
 */
export const recordEdge = (r: AuditRow, viewer: string): AuditEventEdge => ({ cursor: encodeCursor(r), node: viewRecord(r, viewer) });
