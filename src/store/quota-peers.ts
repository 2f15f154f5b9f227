import { sql } from 'kysely';
import type { Db } from './database.ts';

/** How long a process counts as serving after its last heartbeat. */
export const PEER_LIVENESS_SECONDS = 15;
/** Rows of processes silent this long are deleted. */
const PEER_EXPIRY_SECONDS = 60;

/**
 * Announces `processId` as serving (sql/0027_hostile_clients.sql) and returns
 * how many processes are serving now, itself included: the N each splits an
 * account's request quotas by. Times are the database's, so processes with
 * skewed clocks still agree.
 *
 * @example
 * const processes = await heartbeatQuotaPeer(db, processId); // 2 with two `serve`s
 */
export async function heartbeatQuotaPeer(db: Db, processId: string): Promise<number> {
  await sql`INSERT INTO quota_peers (process_id) VALUES (${processId}::uuid)
            ON CONFLICT (process_id) DO UPDATE SET seen_at = now()`.execute(db);
  await sql`DELETE FROM quota_peers WHERE seen_at < now() - make_interval(secs => ${PEER_EXPIRY_SECONDS})`.execute(db);
  const { rows } = await sql<{ n: string }>`
    SELECT count(*) AS n FROM quota_peers WHERE seen_at >= now() - make_interval(secs => ${PEER_LIVENESS_SECONDS})`.execute(db);
  return Math.max(1, Number(rows[0]?.n ?? 1));
}

/**
 * Withdraws `processId` (on shutdown), so the others take its share at their next heartbeat.
 *
 * @example
 * await leaveQuotaPeers(db, processId); // at shutdown: the next heartbeatQuotaPeer of the others counts one process fewer
 */
export async function leaveQuotaPeers(db: Db, processId: string): Promise<void> {
  await sql`DELETE FROM quota_peers WHERE process_id = ${processId}::uuid`.execute(db);
}
