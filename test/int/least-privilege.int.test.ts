import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPooledClient } from '../../src/store/database.ts';
import { SERVICE_LOGIN } from '../../src/store/service-login.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * The service's connections log in as a least-privilege role (issue 15,
 * finding 8): RESET ROLE gives back nothing, so a session that escapes
 * keyledger_app still cannot rewrite the log or change the schema.
 */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/**
 * Runs `statement` on one of the service's own connections once it has shed
 * keyledger_app (SET ROLE NONE: back to the login; RESET ROLE only goes back to
 * the role the connection started as), and returns Postgres's error code (or 'ok').
 */
async function afterResetRole(statement: string): Promise<string> {
  return withPooledClient(db.app, async (client) => {
    await client.query('RESET ROLE');
    await client.query('SET ROLE NONE');
    try {
      await client.query(statement);
      return 'ok';
    } catch (error) {
      return (error as { code?: string }).code ?? 'error';
    } finally {
      await client.query(`SET ROLE keyledger_app`);
    }
  });
}

describe("the service's database login", () => {
  it('is the service login, acting as keyledger_app', async () => {
    const { rows } = await sql<{ session: string; current: string; superuser: string }>`
      SELECT session_user AS session, current_user AS current, current_setting('is_superuser') AS superuser`.execute(db.app);
    expect(rows[0]).toEqual({ session: SERVICE_LOGIN, current: 'keyledger_app', superuser: 'off' });
  });

  it('has nothing of its own after SET ROLE NONE / RESET ROLE: no UPDATE, DELETE or TRUNCATE of events, no DDL, no other role, not even a read', async () => {
    const whoAmI = await withPooledClient(db.app, async (client) => {
      await client.query('SET ROLE NONE');
      const { rows } = await client.query<{ current: string }>('SELECT current_user AS current');
      await client.query('SET ROLE keyledger_app');
      return rows[0]!.current;
    });
    expect(whoAmI).toBe(SERVICE_LOGIN);
    expect(await afterResetRole(`UPDATE events SET type = type WHERE global_position = 1`)).toBe('42501');
    expect(await afterResetRole(`DELETE FROM events`)).toBe('42501');
    expect(await afterResetRole(`TRUNCATE events`)).toBe('42501');
    expect(await afterResetRole(`SELECT count(*) FROM events`)).toBe('42501');
    expect(await afterResetRole(`CREATE TABLE escape_hatch (x int)`)).toBe('42501');
    expect(await afterResetRole(`ALTER TABLE events DISABLE TRIGGER ALL`)).toBe('42501');
    expect(await afterResetRole(`SET ROLE postgres`)).toBe('42501');
    expect(await afterResetRole(`CREATE ROLE intruder SUPERUSER`)).toBe('42501');
  });

  it('as keyledger_app, still cannot rewrite the log', async () => {
    await expect(sql`DELETE FROM events`.execute(db.app)).rejects.toMatchObject({ code: '42501' });
  });
});
