/**
 * SQL of the compliance report: aggregates over the audit records an account
 * may see (its own requests and other accounts' requests on its keys, see
 * `scoped` in audit-queries.ts), each group carrying the first event ids that
 * are its evidence and the full count.
 *
 * Every query is one grouped scan of the records matching its filter in the
 * report's window; the indexes of 0010 (account + time, errorCode via the
 * filter) serve them. Grant use reads every grant-authorized record up to `to`
 * (a grant is "never used" over its whole life, not only in the window).
 */
import { sql, type RawBuilder, type Selectable, type Transaction } from 'kysely';
import { scoped, type AuditQueryFilter } from './audit-queries.ts';
import { readLastUse } from './usage-statistics.ts';
import type { Database, Db, GrantsTable, KeysTable } from './database.ts';

type Executor = Db | Transaction<Database>;

/** One group of audit records: its evidence (the first `cap` event ids, oldest first) and how many there are. */
export interface EvidenceGroup {
  /** The grouping values, by name (e.g. key, principal, grantId). */
  group: Record<string, string | null>;
  eventIds: string[];
  count: number;
  first: Date;
  last: Date;
}

/** The operations that use a key's material: a successful one is a "use" of the key. */
export const CRYPTO_EVENT_NAMES = [
  'Encrypt',
  'Decrypt',
  'ReEncrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'Sign',
  'Verify',
  'GenerateMac',
  'VerifyMac',
  'DeriveSharedSecret',
] as const;

/** The key a record is about: its first resource, else the keyId it asked for (refused before the key was resolved). */
const KEY_OF = sql`coalesce(data -> 'resources' -> 0 ->> 'arn', data -> 'requestParameters' ->> 'keyId')`;
const PRINCIPAL_OF = sql`coalesce(data -> 'userIdentity' ->> 'principalArn', data -> 'userIdentity' ->> 'invokedBy')`;

type RawGroup = { event_ids: string[]; count: string; first: Date; last: Date } & Record<string, unknown>;

async function grouped(
  db: Executor,
  accountId: string,
  filter: AuditQueryFilter,
  extra: RawBuilder<unknown>[],
  by: Record<string, RawBuilder<unknown>>,
  cap: number,
): Promise<EvidenceGroup[]> {
  const names = Object.keys(by);
  const selects = names.map((n) => sql`${by[n]!} AS ${sql.ref(n)}`);
  const columns = [
    ...selects,
    sql`(array_agg(event_id::text ORDER BY global_position))[1:${cap}] AS event_ids`,
    sql`count(*) AS count`,
    sql`min(recorded_at) AS first`,
    sql`max(recorded_at) AS last`,
  ];
  const { rows } = await sql<RawGroup>`
    SELECT ${sql.join(columns)}
      FROM ${scoped(accountId, filter, extra)}
     GROUP BY ${sql.join(names.map((_, i) => sql.lit(i + 1)))}
     ORDER BY count(*) DESC, ${sql.join(names.map((_, i) => sql`${sql.lit(i + 1)} NULLS FIRST`))}`.execute(db);
  return rows.map((r) => ({
    group: Object.fromEntries(names.map((n) => [n, (r[n] as string | null) ?? null])),
    eventIds: r.event_ids,
    count: Number(r.count),
    first: r.first,
    last: r.last,
  }));
}

/**
 * Records with one of `errorCodes` in the window, by the key they named.
 *
 * @example
 * await readFailuresByKey(db, '111122223333', { from, to }, ['DisabledException', 'KMSInvalidStateException'], 20)
 * // [{ group: { key: 'arn:aws:kms:…:key/…' }, eventIds: [up to 20, oldest first], count: 57, first, last }, …], largest count first
 */
export function readFailuresByKey(
  db: Executor,
  accountId: string,
  window: { from: Date; to: Date },
  errorCodes: string[],
  cap: number,
): Promise<EvidenceGroup[]> {
  return grouped(db, accountId, { ...window, outcome: 'failure', errorCodes }, [], { key: KEY_OF }, cap);
}

/**
 * Denied requests in the window, by principal and key: AccessDeniedException,
 * and NotFoundException on this account's keys from other accounts (a foreign
 * caller is told "not found", the owner sees it as a refused use).
 *
 * @example
 * await readDeniedRequests(db, '111122223333', { from, to }, 20)
 * // [{ group: { principal: 'arn:aws:iam::444455556666:role/ci', key, errorCode: 'AccessDeniedException' }, eventIds, count, first, last }, …]
 */
export function readDeniedRequests(db: Executor, accountId: string, window: { from: Date; to: Date }, cap: number): Promise<EvidenceGroup[]> {
  return grouped(
    db,
    accountId,
    { ...window, outcome: 'failure', errorCodes: ['AccessDeniedException', 'NotFoundException'] },
    [sql`((data ->> 'errorCode') = 'AccessDeniedException' OR (data ->> 'recipientAccountId') = ${accountId})`],
    { principal: PRINCIPAL_OF, key: KEY_OF, errorCode: sql`(data ->> 'errorCode')` },
    cap,
  );
}

/**
 * The last successful crypto operation on each of `keyArns` before `to` (from
 * `from` when given), with its event id, operation and request id as
 * evidence: from the usage rollup by key (see readLastUse), so the report and
 * GetKeyLastUsage do not read the log's every record.
 *
 * @example
 * await readKeyUse(db, '111122223333', [key.arn], { to: null })
 * // Map { key.arn => { lastUsed, lastEventId, lastEventName: 'Decrypt', lastRequestId } }; a key never used has no entry
 */
export async function readKeyUse(
  db: Executor,
  accountId: string,
  keyArns: readonly string[],
  /** `to` exclusive; null: up to the newest record. */
  window: { from?: Date | null; to: Date | null },
): Promise<Map<string, { lastUsed: Date; lastEventId: string; lastEventName: string; lastRequestId: string }>> {
  const last = await readLastUse(db, accountId, { from: window.from ?? null, to: window.to, outcome: 'success', eventNames: [...CRYPTO_EVENT_NAMES] }, keyArns);
  const positions = [...new Set([...last.values()].map((l) => l.lastPosition.toString()))];
  const { rows } = positions.length
    ? await sql<{ global_position: string; event_id: string; event_name: string; request_id: string }>`
        SELECT global_position::text AS global_position, event_id::text AS event_id, data ->> 'eventName' AS event_name, data ->> 'requestId' AS request_id
          FROM events WHERE global_position = ANY(${positions}::bigint[])`.execute(db)
    : { rows: [] };
  const events = new Map(rows.map((r) => [r.global_position, r]));
  return new Map(
    [...last].map(([arn, l]) => {
      const event = events.get(l.lastPosition.toString())!;
      return [arn, { lastUsed: l.lastSeen, lastEventId: event.event_id, lastEventName: event.event_name, lastRequestId: event.request_id }];
    }),
  );
}

/**
 * Every request a grant allowed (authorization.allowedBy names it) before `to`, by grant id.
 *
 * @example
 * await readGrantUse(db, '111122223333', to, 20) // [{ group: { grantId }, eventIds, count, first, last }, …]: a grant missing here was never used
 */
export async function readGrantUse(db: Executor, accountId: string, to: Date, cap: number): Promise<EvidenceGroup[]> {
  const allowedByGrant = [
    sql`jsonb_typeof(data -> 'authorization' -> 'allowedBy') = 'array'`,
    sql`(data -> 'authorization' -> 'allowedBy') @> '[{"kind":"grant"}]'::jsonb`,
  ];
  const { rows } = await sql<RawGroup & { grant_id: string }>`
    SELECT e ->> 'grantId' AS grant_id, (array_agg(event_id::text ORDER BY global_position))[1:${cap}] AS event_ids,
           count(*) AS count, min(recorded_at) AS first, max(recorded_at) AS last
      FROM ${scoped(accountId, { to, outcome: 'success' }, allowedByGrant)}
     CROSS JOIN LATERAL jsonb_array_elements(data -> 'authorization' -> 'allowedBy') AS e
     WHERE e ->> 'kind' = 'grant' AND e ? 'grantId'
     GROUP BY 1`.execute(db);
  return rows.map((r) => ({ group: { grantId: r.grant_id }, eventIds: r.event_ids, count: Number(r.count), first: r.first, last: r.last }));
}

/**
 * The successful requests (newest first) of `eventNames` on the account's keys, by key: the lifecycle evidence (rotation set-up, grant creation).
 *
 * @example
 * await readLatestLifecycleRecords(db, '111122223333', to, ['EnableKeyRotation', 'CreateGrant'])
 * // [{ eventId, eventName: 'CreateGrant', keyArn, recordedAt, responseElements: { grantId } }, …], newest first
 */
export async function readLatestLifecycleRecords(
  db: Executor,
  accountId: string,
  to: Date,
  eventNames: string[],
): Promise<{ eventId: string; eventName: string; keyArn: string | null; recordedAt: Date; responseElements: Record<string, unknown> | null }[]> {
  const { rows } = await sql<{ event_id: string; event_name: string; key_arn: string | null; recorded_at: Date; response: Record<string, unknown> | null }>`
    SELECT event_id::text AS event_id, data ->> 'eventName' AS event_name, data -> 'resources' -> 0 ->> 'arn' AS key_arn, recorded_at,
           data -> 'responseElements' AS response
      FROM ${scoped(accountId, { to, outcome: 'success', eventNames })}
     ORDER BY global_position DESC`.execute(db);
  return rows.map((r) => ({ eventId: r.event_id, eventName: r.event_name, keyArn: r.key_arn, recordedAt: r.recorded_at, responseElements: r.response }));
}

/**
 * When each of the account's keys last got new material (KeyRotated), from the key streams.
 *
 * @example
 * await readLastRotations(db, [keyId], to) // Map { keyId => the date of its last KeyRotated before to }; a key never rotated has no entry
 */
export async function readLastRotations(db: Executor, keyIds: readonly string[], to: Date): Promise<Map<string, Date>> {
  if (keyIds.length === 0) return new Map();
  const { rows } = await sql<{ stream_id: string; last: Date }>`
    SELECT stream_id, max(recorded_at) AS last FROM events
     WHERE stream_id = ANY(${keyIds.map((k) => `key-${k}`)}::text[]) AND type = 'KeyRotated' AND recorded_at < ${to}
     GROUP BY stream_id`.execute(db);
  return new Map(rows.map((r) => [r.stream_id.slice('key-'.length), r.last]));
}

/**
 * The report's inventory: an account's keys (oldest first), its aliases by name and its live grants (oldest first).
 *
 * @example
 * const { keys, aliases, grants } = await readAccountInventory(trx, '111122223333');
 */
export async function readAccountInventory(
  db: Executor,
  accountId: string,
): Promise<{ keys: Selectable<KeysTable>[]; aliases: { alias_name: string; target_key_id: string }[]; grants: Selectable<GrantsTable>[] }> {
  // One query at a time: in a transaction they share one connection.
  const keys = await db.selectFrom('keys').selectAll().where('account_id', '=', accountId).orderBy('creation_date').orderBy('key_id').execute();
  const aliases = await db.selectFrom('aliases').select(['alias_name', 'target_key_id']).where('account_id', '=', accountId).orderBy('alias_name').execute();
  const grants = await db.selectFrom('grants').selectAll().where('key_account_id', '=', accountId).orderBy('creation_date').orderBy('grant_id').execute();
  return { keys, aliases, grants };
}
