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
  const bounded: AuditRecord = {
    ...record,
    requestParameters: record.requestParameters === null ? null : (boundedValues(record.requestParameters) as Record<string, unknown>),
    ...(record.errorMessage === undefined ? {} : { errorMessage: boundedText(record.errorMessage, MAX_ERROR_MESSAGE) }),
  };
  // A whole that fits the parameters' bound fits both: for nearly every record an upper bound, without writing its JSON, says so.
  const data = recordable(jsonSizeAtMost(bounded, MAX_RECORDED_PARAMETERS) ? bounded : boundedRecord(withinParametersBound(bounded)));
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
/**
 * The most a record keeps of its request parameters as a whole: 16 KiB of
 * JSON (UTF-8). Each value and member name is bounded above, but a client can
 * send many of them (a refused Encrypt with 450 encryption context keys, 2,000
 * grant tokens): past this, the largest top-level members are kept as
 * `{truncated, length, sha256, prefix}` of their JSON, largest first, until the
 * rest fits (the key id, and an encryption context of a valid size, stay
 * whole), and if even that does not fit, the parameters as a whole are. A
 * valid request's are far smaller, but for its grant tokens: 10 of 8,192
 * characters are 80 KiB, and are then kept as such a digest.
 */
export const MAX_RECORDED_PARAMETERS = 16_384;
/**
 * The most a whole record holds: 64 KiB of JSON (UTF-8), whatever the input.
 * Every field is bounded on its own (the parameters as above, an error message
 * to MAX_ERROR_MESSAGE characters, the event name and user agent in the
 * request runner), but escaping can make a character six bytes of JSON. A
 * record still larger keeps its parameters, response elements, additional
 * event data and authorization evidence as digests, largest first, and then
 * its error message's first RECORDED_PREFIX characters: what remains (ids,
 * ARNs, times, a user agent of at most 1,024 characters) is under 32 KiB.
 */
export const MAX_AUDIT_RECORD = 65_536;
/** The longest error message a record keeps (a validation message quotes values). */
export const MAX_ERROR_MESSAGE = 20_000;

/** The record with its parameters (each value and name already bounded) within MAX_RECORDED_PARAMETERS as a whole. */
function withinParametersBound(record: AuditRecord): AuditRecord {
  const parameters = record.requestParameters;
  return parameters === null ? record : { ...record, requestParameters: withinSize(parameters, MAX_RECORDED_PARAMETERS) };
}

/**
 * `members` itself when its JSON fits in `max` bytes; else with its largest
 * members replaced by their digests, largest first, until it fits; else (many
 * small members) its own digest, `{truncated: true, length, sha256, prefix}`.
 */
function withinSize(members: Record<string, unknown>, max: number): Record<string, unknown> {
  let size = jsonSize(members);
  if (size <= max) return members;
  const bounded = { ...members };
  const largestFirst = Object.entries(members)
    .map(([name, value]) => ({ name, size: jsonSize(value) }))
    .sort((a, b) => b.size - a.size);
  // A member's JSON is a piece of the whole's: replacing it changes the size by the difference (linear, however many members).
  for (const member of largestFirst) {
    const digest = jsonDigest(members[member.name]);
    const digestSize = jsonSize(digest);
    if (digestSize >= member.size) break; // the rest are smaller than a digest: only the whole's own digest helps
    bounded[member.name] = digest;
    size += digestSize - member.size;
    if (size <= max) return bounded;
  }
  return jsonDigest(members);
}

/** The fields of a record whose size its request decides, which the last resort keeps as digests. */
const FREE_FORM_FIELDS = ['requestParameters', 'responseElements', 'additionalEventData', 'authorization'] as const;

/** The record within MAX_AUDIT_RECORD (see there); the record itself when it fits, as it nearly always does. */
function boundedRecord(record: AuditRecord): AuditRecord {
  let size = jsonSize(record);
  if (size <= MAX_AUDIT_RECORD) return record;
  const bounded: Record<string, unknown> = { ...record };
  const largestFirst = FREE_FORM_FIELDS.filter((field) => record[field] != null)
    .map((field) => ({ field, size: jsonSize(record[field]) }))
    .sort((a, b) => b.size - a.size);
  for (const member of largestFirst) {
    const digest = jsonDigest(record[member.field]);
    bounded[member.field] = digest;
    size += jsonSize(digest) - member.size;
    if (size <= MAX_AUDIT_RECORD) return bounded as unknown as AuditRecord;
  }
  if (record.errorMessage !== undefined) bounded['errorMessage'] = boundedText(record.errorMessage, RECORDED_PREFIX);
  return bounded as unknown as AuditRecord;
}

/** A value's size as a record stores it: its JSON in UTF-8 bytes (JSON.stringify escapes lone surrogates, so this is never less than stored). */
const jsonSize = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? 'null', 'utf8');

/**
 * Whether `value`'s JSON is surely at most `max` bytes, by an upper bound that
 * writes nothing (6 bytes per UTF-16 unit of a string, as `\u0001` takes),
 * else by measuring it.
 */
function jsonSizeAtMost(value: unknown, max: number): boolean {
  return jsonSizeBound(value, max) <= max || jsonSize(value) <= max;
}

/** An upper bound of `value`'s JSON size in bytes; stops counting past `max`. */
function jsonSizeBound(value: unknown, max: number): number {
  if (typeof value === 'string') return 6 * value.length + 2;
  if (value === null || typeof value !== 'object' || value instanceof Date) return 32;
  let size = 2;
  if (Array.isArray(value)) {
    for (const item of value) {
      size += jsonSizeBound(item, max) + 1;
      if (size > max) return size;
    }
    return size;
  }
  for (const key in value) {
    size += 6 * key.length + 4 + jsonSizeBound((value as Record<string, unknown>)[key], max);
    if (size > max) return size;
  }
  return size;
}

/** What a record keeps of a value too large to keep: its JSON's length (UTF-16 units), SHA-256 and first characters. */
function jsonDigest(value: unknown): { truncated: true; length: number; sha256: string; prefix: string } {
  const json = JSON.stringify(value) ?? 'null';
  return { truncated: true, length: json.length, sha256: createHash('sha256').update(json).digest('hex'), prefix: json.slice(0, RECORDED_PREFIX) };
}

function boundedValues(value: unknown): unknown {
  if (typeof value === 'string') {
    if (value.length <= MAX_RECORDED_VALUE) return value;
    return { truncated: true, length: value.length, sha256: createHash('sha256').update(value).digest('hex'), prefix: value.slice(0, RECORDED_PREFIX) };
  }
  if (Array.isArray(value)) return value.map(boundedValues);
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [boundedKey(k), boundedValues(v)]));
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
