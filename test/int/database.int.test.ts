import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/store/database.ts';
import { waitFor } from '../support/concurrency.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let victim: Db;
beforeAll(async () => {
  db = await createTestDatabase();
  victim = openDatabase(db.url, { as: 'owner', max: 2, applicationName: 'keyledger-test-victim' });
});
afterAll(async () => {
  await victim?.destroy();
  await db?.drop();
});

/** Terminates the victim pool's backend once it runs `pg_sleep`. */
function killWhenSleeping(): Promise<void> {
  return waitFor(async () => {
    const { rows } = await sql<{ n: number }>`
      SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
       WHERE application_name = 'keyledger-test-victim' AND query LIKE '%pg_sleep%' AND state = 'active'`.execute(db.owner);
    return rows[0]!.n > 0;
  }, 'the victim sleeps and is terminated');
}

describe('a connection whose server goes away mid-query', () => {
  it('rejects the query or transaction that used it, without an uncaught error, and the pool goes on', async () => {
    const query = sql`SELECT pg_sleep(30)`.execute(victim);
    query.catch(() => {});
    await killWhenSleeping();
    await expect(query).rejects.toThrow(/terminat/i);
    // The server's error arrives before its socket closes; once it has closed, the pool has dropped that client.
    await new Promise((resolve) => setTimeout(resolve, 200));

    const transaction = victim.transaction().execute(async (trx) => {
      await sql`SELECT 1`.execute(trx);
      await sql`SELECT pg_sleep(30)`.execute(trx);
    });
    transaction.catch(() => {});
    await killWhenSleeping();
    await expect(transaction).rejects.toThrow(/terminat/i);

    // Vitest fails the run on an uncaught error; give one the time to surface (and the socket to close).
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { rows } = await sql<{ one: number }>`SELECT 1 AS one`.execute(victim);
    expect(rows).toEqual([{ one: 1 }]);
  });
});
