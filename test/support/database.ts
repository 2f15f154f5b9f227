import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { inject } from 'vitest';
import { openDatabase, type Db } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrations.ts';

export interface TestDatabase {
  /** Connection URL of this database as the admin (owner) login. */
  url: string;
  /** The owner: runs migrations, may do what the service must not. */
  owner: Db;
  /** Sessions as `keyledger_app`, the role the service runs as. */
  app: Db;
  /** Closes both pools and drops the database. */
  drop(): Promise<void>;
}

/**
 * Creates a fresh, migrated database on the run's shared server, copied from
 * the run's template database. One per test
 * FILE (call it in `beforeAll`): files then run in parallel without seeing each
 * other's events. Cluster-wide state (the `keyledger_app` role, transaction ids,
 * the xmin horizon) is still shared.
 *
 * @example
 * let db: TestDatabase;
 * beforeAll(async () => { db = await createTestDatabase(); });
 * afterAll(() => db?.drop());
 */
export async function createTestDatabase(adminUrl: string = inject('adminDatabaseUrl')): Promise<TestDatabase> {
  const name = `keyledger_test_${randomBytes(6).toString('hex')}`;
  // On the run's server, a copy of the database the global setup migrated once;
  // elsewhere (a test's private server), an empty one migrated below.
  const template = adminUrl === inject('adminDatabaseUrl') ? inject('templateDatabase') : undefined;
  await adminQuery(adminUrl, template ? `CREATE DATABASE ${name} TEMPLATE ${template}` : `CREATE DATABASE ${name}`);
  const url = databaseUrl(adminUrl, name);
  const owner = openDatabase(url, { as: 'owner', max: 4, applicationName: 'keyledger-test-owner' });
  const app = openDatabase(url, { as: 'app', max: 10, applicationName: 'keyledger-test-app' });
  const drop = async (): Promise<void> => {
    await Promise.all([owner.destroy(), app.destroy()]);
    // FORCE: a test that failed half-way may have left a session open.
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  };
  try {
    // Against a copy of the template this finds nothing to do; it still checks that.
    await migrateToLatest(owner);
  } catch (error) {
    await drop();
    throw error;
  }
  return { url, owner, app, drop };
}

/** `adminUrl` with its database replaced by `database`. */
export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Runs one statement on a short-lived connection (CREATE/DROP DATABASE cannot run in a pool's transaction). */
export async function adminQuery(adminUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/**
 * Installs a test-only row trigger, named `name` (its function too), that runs
 * `body` (PL/pgSQL statements ending in a RETURN) for every row of `table` on
 * `on` (e.g. 'BEFORE INSERT', 'AFTER DELETE'). Tests use them to widen a race's
 * windows (pg_sleep) or to make a write fail. Answers the trigger's removal.
 *
 * @example
 * const remove = await installTestTrigger(db.owner, 'test_slow_audit', 'BEFORE INSERT', 'events', `PERFORM pg_sleep(0.05); RETURN NEW;`);
 * await remove();
 */
export async function installTestTrigger(owner: Db, name: string, on: string, table: string, body: string): Promise<() => Promise<void>> {
  await sql
    .raw(
      `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${body} END $$;
       CREATE TRIGGER ${name} ${on} ON ${table} FOR EACH ROW EXECUTE FUNCTION ${name}();`,
    )
    .execute(owner);
  return async () => {
    await sql.raw(`DROP TRIGGER IF EXISTS ${name} ON ${table}; DROP FUNCTION IF EXISTS ${name}();`).execute(owner);
  };
}
