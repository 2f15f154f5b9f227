import { sql, type ControlledTransaction } from 'kysely';
import type { Database, Db } from '../../src/store/database.ts';

/** The server process id behind a transaction's connection, to watch it from another session. */
export async function backendPid(trx: ControlledTransaction<Database>): Promise<number> {
  const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
  return rows[0]!.pid;
}

/**
 * Resolves once `predicate` holds, polling: lets a test assert on an
 * interleaving (for instance "the second writer is now waiting on the first's
 * lock") instead of sleeping and hoping.
 */
export async function waitFor(predicate: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves once session `pid` is waiting on a lock held by another session. */
export function waitUntilBlocked(observer: Db, pid: number): Promise<void> {
  return waitFor(async () => {
    const { rows } = await sql<{ blocked: boolean }>`select cardinality(pg_blocking_pids(${pid}::int)) > 0 as blocked`.execute(observer);
    return rows[0]!.blocked;
  }, `backend ${pid} is blocked`);
}

/** Rolls back a transaction a failed test left open, so its connection goes back to the pool. */
export async function finish(trx: ControlledTransaction<Database>): Promise<void> {
  if (!trx.isCommitted && !trx.isRolledBack) await trx.rollback().execute();
}
