import { randomUUID } from 'node:crypto';

/**
 * Time-ordered ids for what the log keys by id: request ids (an audit record's
 * stream is `request-<requestId>`) and event ids.
 *
 * A UUID version 7 (RFC 9562, section 5.7): the first 48 bits are the Unix time
 * in milliseconds, then the version (7), 12 random bits, the variant (10) and 62
 * random bits. Ids made later sort after ids made earlier (as text too), so the
 * log's unique indexes on them grow at their right edge. With version 4 ids
 * every insert landed on a random leaf of indexes that, at 10M records, are
 * gigabytes: a page read, a dirty page to write back and a full-page image in
 * the WAL after each checkpoint (issue 14; figures in the README).
 *
 * The time in an id is the wall clock's, not the injected clock's: it orders
 * the index, it decides nothing. It tells what the record already says (its
 * eventTime), to the millisecond.
 */

const MAX_UNIX_MS = 2 ** 48 - 1;
const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * The version 7 UUID for `unixMs`, its random bits taken from `random` (a
 * version 4 UUID, whose 122 random bits are in the same places).
 *
 * @example
 * uuidV7From(0x0190_1234_5678, '0b1f4a9e-5c2d-4e3f-9a8b-7c6d5e4f3a2b') // '01901234-5678-7e3f-9a8b-7c6d5e4f3a2b'
 */
export function uuidV7From(unixMs: number, random: string): string {
  if (!Number.isSafeInteger(unixMs) || unixMs < 0 || unixMs > MAX_UNIX_MS) throw new RangeError(`not a 48-bit Unix time in milliseconds: ${unixMs}`);
  if (!V4.test(random)) throw new RangeError('not a version 4 UUID');
  const time = unixMs.toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8)}-7${random.slice(15)}`;
}

/**
 * A new version 7 UUID, for now.
 *
 * @example
 * const requestId = uuidV7(); // '0193a1b2-c3d4-7…'
 */
export function uuidV7(): string {
  return uuidV7From(Date.now(), randomUUID());
}
