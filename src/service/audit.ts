import { createHash } from 'node:crypto';
import type { Transaction } from 'kysely';
import { AUDIT_RECORD_TYPE, type AuditRecord } from '../domain/audit-record.ts';
import type { Database, Db } from '../store/database.ts';
import { appendSingleEventStream } from '../store/event-store.ts';

// The record's shape lives in the domain, where the store's queries can name it too.
export { AUDIT_RECORD_TYPE, type AuditIdentity, type AuditRecord } from '../domain/audit-record.ts';

export const requestStreamId = (requestId: string): string => `request-${requestId}`;

/** Appends the record in the caller's transaction (or on its own when given the pool). */
export async function appendAuditRecord(db: Db | Transaction<Database>, record: AuditRecord, recordedAt: Date): Promise<void> {
  const { streamId, event } = auditEvent(record);
  await appendSingleEventStream(db, streamId, event, recordedAt);
}

/** The event a record is stored as, bounded and recordable: its request's one-event stream. */
export function auditEvent(record: AuditRecord): { streamId: string; event: { type: typeof AUDIT_RECORD_TYPE; data: unknown } } {
  const data = recordable({
    ...record,
    requestParameters: boundedParameters(record.requestParameters),
    ...(record.errorMessage === undefined ? {} : { errorMessage: boundedText(record.errorMessage, MAX_ERROR_MESSAGE) }),
  });
  return { streamId: requestStreamId(record.requestId), event: { type: AUDIT_RECORD_TYPE, data } };
}

/**
 * The longest parameter value a record keeps whole. A longer one (a client
 * can send a 256 KiB key id) is kept as its first characters, its length and
 * its SHA-256, so the record stays small and the value can still be matched.
 */
export const MAX_RECORDED_VALUE = 10_000;
const RECORDED_PREFIX = 1_000;
/**
 * The longest member name (an encryption context key) a record keeps whole.
 * Encryption context keys are indexed one by one as text (a GIN index:
 * sql/0010's events_audit_encryption_context_keys), and Postgres refuses an
 * index entry over 2,712 bytes: the insert, and so the record, would fail. 512
 * UTF-16 units are at most 1,536 bytes of UTF-8. A longer name is kept as its
 * first characters, its length and its SHA-256, so distinct names stay distinct.
 */
export const MAX_RECORDED_KEY = 512;
const RECORDED_KEY_PREFIX = 256;
/** The longest error message a record keeps (a validation message quotes values). */
export const MAX_ERROR_MESSAGE = 20_000;

function boundedParameters(value: unknown): any {
  if (typeof value === 'string') {
    if (value.length <= MAX_RECORDED_VALUE) return value;
    return { truncated: true, length: value.length, sha256: createHash('sha256').update(value).digest('hex'), prefix: value.slice(0, RECORDED_PREFIX) };
  }
  if (Array.isArray(value)) return value.map(boundedParameters);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [boundedKey(k), boundedParameters(v)]));
  }
  return value;
}

/** A member name as a record keeps it: whole up to MAX_RECORDED_KEY, else `<prefix>...[<length> characters, sha256 <hex>]`. */
function boundedKey(key: string): string {
  if (key.length <= MAX_RECORDED_KEY) return key;
  return `${key.slice(0, RECORDED_KEY_PREFIX)}...[${key.length} characters, sha256 ${createHash('sha256').update(key).digest('hex')}]`;
}

const boundedText = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}...` : text);

/** U+2400 SYMBOL FOR NULL stands in for U+0000, which jsonb cannot store. */
const NUL_STAND_IN = '\u2400';

/**
 * The record as jsonb can hold it: every request must be recordable, including
 * one whose parameters carry a NUL character or an unpaired UTF-16 surrogate
 * (which the runner refuses, but must still record). jsonb refuses both; an
 * unpaired surrogate becomes U+FFFD, as a UTF-8 encoder writes it.
 */
function recordable<T>(value: T): T {
  return alreadyRecordable(value) ? value : rewritten(value);
}

/** Whether no string in `value` (keys included) needs rewriting: the common case, checked without copying. */
function alreadyRecordable(value: unknown): boolean {
  if (typeof value === 'string') return value.isWellFormed() && !value.includes('\u0000');
  if (Array.isArray(value)) return value.every(alreadyRecordable);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    for (const key in value) {
      if (!alreadyRecordable(key) || !alreadyRecordable((value as Record<string, unknown>)[key])) return false;
    }
  }
  return true;
}

function rewritten<T>(value: T): T {
  if (typeof value === 'string') {
    const wellFormed = value.isWellFormed() ? value : value.toWellFormed();
    return (wellFormed.includes('\u0000') ? wellFormed.replaceAll('\u0000', NUL_STAND_IN) : wellFormed) as T;
  }
  if (Array.isArray(value)) return value.map(rewritten) as T;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [rewritten(k), rewritten(v)])) as T;
  }
  return value;
}

/** A string Postgres text or jsonb cannot hold as given, and what is wrong with it. */
export function unrecordableText(text: string): string | undefined {
  if (text.includes('\u0000')) return 'Member must not contain the NUL character';
  if (!text.isWellFormed()) return 'Member must not contain an unpaired UTF-16 surrogate';
  return undefined;
}

/**
 * The first string (value or key) in `value` that Postgres could not store as
 * given (a NUL character, an unpaired surrogate), with its path and why.
 */
export function findUnrecordable(value: unknown, path = ''): { path: string; constraint: string } | undefined {
  if (typeof value === 'string') {
    const constraint = unrecordableText(value);
    return constraint ? { path, constraint } : undefined;
  }
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = findUnrecordable(item, `${path}.${i + 1}.member`);
      if (found) return found;
    }
    return undefined;
  }
  if (value && typeof value === 'object' && !(value instanceof Date) && !Buffer.isBuffer(value)) {
    for (const [k, v] of Object.entries(value)) {
      const at = path ? `${path}.${k}` : k;
      const constraint = unrecordableText(k);
      if (constraint) return { path: at, constraint };
      const found = findUnrecordable(v, at);
      if (found) return found;
    }
  }
  return undefined;
}
