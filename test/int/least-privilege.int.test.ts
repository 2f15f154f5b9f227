import { sql } from 'kysely';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { createLogger } from '../../src/logger.ts';
import { withPooledClient } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrations.ts';
import { JOB_QUEUE_LOGIN, jobQueueUrl, JOBS_SCHEMA, SERVICE_LOGIN } from '../../src/store/service-login.ts';
import { startWorker } from '../../src/worker/worker.ts';
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

/** Runs each statement on its own connection as the job queue's login, and returns Postgres's error code for each (or 'ok'). */
async function asJobQueue(url: string, statements: string[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: jobQueueUrl(url) });
  await client.connect();
  try {
    const codes: string[] = [];
    for (const statement of statements) {
      try {
        await client.query(statement);
        codes.push('ok');
      } catch (error) {
        codes.push((error as { code?: string }).code ?? 'error');
      }
    }
    return codes;
  } finally {
    await client.end();
  }
}

/** Objects in pg-boss's schema (the schema itself included) owned by anyone but the job queue's login. */
async function jobsObjectsNotOwnedByTheQueue(owner: TestDatabase['owner']): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT nspname AS name FROM pg_namespace WHERE nspname = ${JOBS_SCHEMA} AND nspowner <> ${JOB_QUEUE_LOGIN}::regrole
    UNION ALL SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = ${JOBS_SCHEMA}::regnamespace AND c.relowner <> ${JOB_QUEUE_LOGIN}::regrole
    UNION ALL SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = ${JOBS_SCHEMA}::regnamespace AND p.proowner <> ${JOB_QUEUE_LOGIN}::regrole
    UNION ALL SELECT t.oid::regtype::text FROM pg_type t
               WHERE t.typnamespace = ${JOBS_SCHEMA}::regnamespace AND t.typowner <> ${JOB_QUEUE_LOGIN}::regrole`.execute(owner);
  return rows.map((r) => r.name);
}

describe("the worker's job queue (pg-boss) login", () => {
  it("is keyledger_job_queue, a member of no role, owning pg-boss's schema; the worker's pg-boss connects with it", async () => {
    const logger = createLogger('silent');
    const worker = await startWorker({ connectionString: db.url, logger, clock: systemClock, db: db.app, pollingIntervalSeconds: 0.5 });
    try {
      const { rows } = await sql<{ user: string }>`
        SELECT DISTINCT usename AS user FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'keyledger-worker'`.execute(db.owner);
      expect(rows).toEqual([{ user: JOB_QUEUE_LOGIN }]);
      expect((await worker.status()).installed).toBe(true);
    } finally {
      await worker.stop();
    }
    const role = await sql<{ rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean; rolbypassrls: boolean; memberOf: number }>`
      SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, (SELECT count(*)::int FROM pg_auth_members m WHERE m.member = r.oid) AS "memberOf"
        FROM pg_roles r WHERE rolname = ${JOB_QUEUE_LOGIN}`.execute(db.owner);
    expect(role.rows).toEqual([{ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolbypassrls: false, memberOf: 0 }]);
    expect(await jobsObjectsNotOwnedByTheQueue(db.owner)).toEqual([]);
  });

  it('cannot read or rewrite the log, disable its trigger, change the schema outside its own, or become another role', async () => {
    expect(
      await asJobQueue(db.url, [
        `UPDATE events SET type = type WHERE global_position = 1`,
        `DELETE FROM events`,
        `TRUNCATE events`,
        `SELECT count(*) FROM events`,
        `ALTER TABLE events DISABLE TRIGGER events_append_only`,
        `ALTER TABLE events DISABLE TRIGGER ALL`,
        `DROP TABLE events`,
        `CREATE TABLE public.escape_hatch (x int)`,
        `SET ROLE keyledger_app`,
        `SET ROLE postgres`,
      ]),
    ).toEqual(['42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501', '42501']);
  });

  it('may do what pg-boss does in its own schema', async () => {
    expect(await asJobQueue(db.url, [`CREATE TABLE ${JOBS_SCHEMA}.probe (x int)`, `DROP TABLE ${JOBS_SCHEMA}.probe`])).toEqual(['ok', 'ok']);
  });

  it('takes over a queue the owner installed before it existed, keeping its jobs', async () => {
    const old = await createTestDatabase();
    try {
      // As before: the schema and pg-boss's tables belong to the owner, and a job waits.
      await sql`DROP SCHEMA ${sql.id(JOBS_SCHEMA)} CASCADE`.execute(old.owner);
      const ownersBoss = new PgBoss({ connectionString: old.url, schema: JOBS_SCHEMA, supervise: false, schedule: false, registerInstance: false, max: 2 });
      ownersBoss.on('error', () => {});
      await ownersBoss.start();
      await ownersBoss.createQueue('keyledger-test-old');
      const jobId = await ownersBoss.send('keyledger-test-old', { left: 'behind' });
      await ownersBoss.stop({ graceful: false });
      expect((await jobsObjectsNotOwnedByTheQueue(old.owner)).length).toBeGreaterThan(10);

      await migrateToLatest(old.owner);
      expect(await jobsObjectsNotOwnedByTheQueue(old.owner)).toEqual([]);
      const worker = await startWorker({
        connectionString: old.url,
        logger: createLogger('silent'),
        clock: systemClock,
        db: old.app,
        pollingIntervalSeconds: 0.5,
      });
      try {
        expect((await worker.status()).installed).toBe(true);
        const { rows } = await sql<{ data: unknown }>`SELECT data FROM ${sql.id(JOBS_SCHEMA, 'job')} WHERE id = ${jobId}`.execute(old.owner);
        expect(rows).toEqual([{ data: { left: 'behind' } }]);
      } finally {
        await worker.stop();
      }
    } finally {
      await old.drop();
    }
  });
});
