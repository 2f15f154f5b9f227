import { sql, type Kysely } from 'kysely';

/**
 * The audit records of one request (normally exactly one).
 *
 * @example
 * const [record] = await recordsOfRequest(t.db.owner, response.$metadata.requestId!);
 */
export async function recordsOfRequest(db: Kysely<any>, requestId: string): Promise<Record<string, any>[]> {
  const { rows } = await sql<{
    data: Record<string, any>;
  }>`select data from events where type = 'AuditRecord' and data ->> 'requestId' = ${requestId} order by global_position`.execute(db);
  return rows.map((r) => r.data);
}

/**
 * Whether any stored event (data or metadata) holds `bytes`: as base64,
 * base64url, hex, or as text when the bytes are printable ASCII. For checking
 * that no plaintext, MAC, ciphertext or shared secret was recorded; check a
 * positive control (something that is recorded) beside it.
 *
 * @example
 * expect(await logHolds(t.db.owner, plaintext)).toBe(false);
 */
export async function logHolds(db: Kysely<any>, bytes: Buffer): Promise<boolean> {
  const text = bytes.toString('latin1');
  const needles = [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('hex'), ...(/^[\x20-\x7e]+$/.test(text) ? [text] : [])];
  const { rows } = await sql<{ n: string }>`
    select count(*)::text as n from events
    where ${sql.join(
      needles.map((n) => sql`position(${n} in data::text || coalesce(metadata::text, '')) > 0`),
      sql` or `,
    )}`.execute(db);
  return rows[0]!.n !== '0';
}
