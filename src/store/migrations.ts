import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { Migrator, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely/migration';
import pg from 'pg';
import { connectionStringOf, type Db } from './database.ts';
import { JOB_QUEUE_LOGIN, JOBS_SCHEMA, SERVICE_LOGIN, serviceLoginPassword, serviceLoginUrl } from './service-login.ts';

const SQL_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));

/**
 * Reads the numbered plain-SQL files in `sql/` as Kysely migrations. Each file is
 * one migration, run as a single multi-statement query inside the migrator's
 * transaction; the file name (without `.sql`) is the migration's name.
 */
export class SqlFileMigrationProvider implements MigrationProvider {
  readonly #dir: string;

  constructor(dir: string = SQL_DIR) {
    this.#dir = dir;
  }

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(this.#dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
    const migrations: Record<string, Migration> = {};
    for (const file of files) {
      const text = await readFile(`${this.#dir}/${file}`, 'utf8');
      migrations[file.replace(/\.sql$/, '')] = {
        up: async (db) => {
          await sql.raw(text).execute(db);
        },
      };
    }
    return migrations;
  }
}

/**
 * The migrations in `sql/` that `db` has not run, by name, in order: read as
 * whoever `db` logs in as (keyledger_app may read which migrations ran), so a
 * process holding no owner login can still refuse a database behind its code.
 *
 * @example
 * const pending = await pendingMigrations(appDb); // [] when up to date
 */
export async function pendingMigrations(db: Db, provider: MigrationProvider = new SqlFileMigrationProvider()): Promise<string[]> {
  const known = Object.keys(await provider.getMigrations());
  const { rows } = await sql<{ present: boolean }>`SELECT to_regclass('public.kysely_migration') IS NOT NULL AS present`.execute(db);
  if (!rows[0]!.present) return known;
  const ran = new Set((await sql<{ name: string }>`SELECT name FROM kysely_migration`.execute(db)).rows.map((r) => r.name));
  return known.filter((name) => !ran.has(name));
}

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/**
 * Refuses to migrate while an index in `public` is INVALID: what a CREATE INDEX
 * CONCURRENTLY leaves when it fails (or while it is still running). A
 * migration's `CREATE INDEX IF NOT EXISTS` of the same name would take it as
 * built, and the index would never serve a query.
 */
async function refuseInvalidIndexes(db: Db): Promise<void> {
  const { rows } = await sql<{ name: string }>`
    SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE NOT i.indisvalid AND c.relnamespace = 'public'::regnamespace ORDER BY 1`.execute(db);
  if (rows.length === 0) return;
  const names = rows.map((r) => r.name);
  throw new MigrationError(
    `index ${names.join(', ')} is INVALID (a CREATE INDEX CONCURRENTLY failed, or is still running); ` +
      `a migration creating an index of that name would skip it. Drop it (DROP INDEX CONCURRENTLY ${names[0]}) and migrate again`,
  );
}

/**
 * Applies every pending migration in `sql/`, after checking that no index is
 * INVALID (see refuseInvalidIndexes). Must run as the owner role.
 *
 * @example
 * const owner = openDatabase(url, { as: 'owner' });
 * const applied = await migrateToLatest(owner); // ['0001_event_store', ...]
 */
export async function migrateToLatest(db: Db): Promise<string[]> {
  await refuseInvalidIndexes(db);
  const migrator = new Migrator({ db, provider: new SqlFileMigrationProvider() });
  const { error, results }: MigrationResultSet = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new MigrationError(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  await ensureLogin(db, SERVICE_LOGIN);
  await ensureLogin(db, JOB_QUEUE_LOGIN);
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * Creates one of keyledger's login roles (see service-login.ts) when missing,
 * sets its password when a login with the derived one fails, and gives it
 * what it may do: the service login may become keyledger_app; the job queue's
 * owns pg-boss's schema and everything in it. Idempotent, and safe when
 * several processes migrate the same cluster at once.
 */
async function ensureLogin(db: Db, login: typeof SERVICE_LOGIN | typeof JOB_QUEUE_LOGIN): Promise<void> {
  const ownerUrl = connectionStringOf(db);
  const password = ownerUrl ? serviceLoginPassword(ownerUrl, login) : null;
  if (!ownerUrl || password === null) return;
  const role = sql.id(login);
  for (let attempt = 1; ; attempt++) {
    try {
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = ${login}`.execute(db);
      if (rows[0]!.n === 0) {
        await sql`CREATE ROLE ${role} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD ${sql.lit(password)}`.execute(db);
      } else if (!(await canLogIn(serviceLoginUrl(ownerUrl, login)!))) {
        await sql`ALTER ROLE ${role} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD ${sql.lit(password)}`.execute(db);
      }
      // Only this: it may become keyledger_app (the app's grants), and nothing of its own.
      if (login === SERVICE_LOGIN) await sql`GRANT keyledger_app TO ${role}`.execute(db);
      else await handOverJobsSchema(db);
      return;
    } catch (error) {
      // Another process creating or altering it at the same moment (duplicate role, tuple concurrently updated).
      const code = (error as { code?: string }).code;
      if (attempt >= 5 || (code !== '42710' && code !== '23505' && code !== 'XX000')) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
}

/**
 * Makes the job queue's login the owner of pg-boss's schema (created by
 * sql/0040) and of every table, sequence, function and type in it (an
 * install from before that login existed was the owner's), so pg-boss can
 * install and migrate itself there (`createSchema: false`) and nothing else.
 * A non-superuser owner must be a member of a role to give it an object, so
 * it makes itself one (it created the role, so it may).
 */
async function handOverJobsSchema(db: Db): Promise<void> {
  await sql
    .raw(
      `DO $$
DECLARE
  target regrole := '${JOB_QUEUE_LOGIN}'::regrole;
  item record;
BEGIN
  -- Serialized: catalog rows are updated in place ("tuple concurrently updated").
  PERFORM pg_advisory_xact_lock(hashtextextended('keyledger:hand-over-jobs-schema', 0));
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AND NOT pg_has_role(current_user, target, 'MEMBER') THEN
    EXECUTE format('GRANT %I TO %I', '${JOB_QUEUE_LOGIN}', current_user);
  END IF;
  IF (SELECT nspowner FROM pg_namespace WHERE nspname = '${JOBS_SCHEMA}') <> target THEN
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', '${JOBS_SCHEMA}', '${JOB_QUEUE_LOGIN}');
  END IF;
  -- Tables (partitions too) and free-standing sequences; a table takes its indexes and owned sequences along.
  FOR item IN
    SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
     WHERE c.relnamespace = '${JOBS_SCHEMA}'::regnamespace AND c.relowner <> target AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
       AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
  LOOP
    EXECUTE format(CASE item.relkind WHEN 'S' THEN 'ALTER SEQUENCE %s OWNER TO %I' WHEN 'v' THEN 'ALTER VIEW %s OWNER TO %I'
      WHEN 'm' THEN 'ALTER MATERIALIZED VIEW %s OWNER TO %I' ELSE 'ALTER TABLE %s OWNER TO %I' END, item.name, '${JOB_QUEUE_LOGIN}');
  END LOOP;
  FOR item IN SELECT p.oid::regprocedure AS name FROM pg_proc p WHERE p.pronamespace = '${JOBS_SCHEMA}'::regnamespace AND p.proowner <> target LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO %I', item.name, '${JOB_QUEUE_LOGIN}');
  END LOOP;
  -- Enums, domains and other free-standing types (not a table's row type or an array type, which follow their owner).
  FOR item IN
    SELECT t.oid::regtype AS name FROM pg_type t
     WHERE t.typnamespace = '${JOBS_SCHEMA}'::regnamespace AND t.typowner <> target AND t.typelem = 0
       AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO %I', item.name, '${JOB_QUEUE_LOGIN}');
  END LOOP;
END $$`,
    )
    .execute(db);
}

async function canLogIn(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}
