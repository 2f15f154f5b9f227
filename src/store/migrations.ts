import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { Migrator, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely/migration';
import pg from 'pg';
import { connectionStringOf, type Db } from './database.ts';
import { SERVICE_LOGIN, serviceLoginPassword, serviceLoginUrl } from './service-login.ts';

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
  await ensureServiceLogin(db);
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * Creates the service's login role (see service-login.ts) when missing, and
 * sets its password when a login with the derived one fails. Idempotent, and
 * safe when several processes migrate the same cluster at once.
 */
async function ensureServiceLogin(db: Db): Promise<void> {
  const ownerUrl = connectionStringOf(db);
  const password = ownerUrl ? serviceLoginPassword(ownerUrl) : null;
  if (!ownerUrl || password === null) return;
  const role = sql.id(SERVICE_LOGIN);
  for (let attempt = 1; ; attempt++) {
    try {
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_roles WHERE rolname = ${SERVICE_LOGIN}`.execute(db);
      if (rows[0]!.n === 0) {
        await sql`CREATE ROLE ${role} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD ${sql.lit(password)}`.execute(db);
      } else if (!(await canLogIn(serviceLoginUrl(ownerUrl)!))) {
        await sql`ALTER ROLE ${role} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD ${sql.lit(password)}`.execute(db);
      }
      // Only this: it may become keyledger_app (the app's grants), and nothing of its own.
      await sql`GRANT keyledger_app TO ${role}`.execute(db);
      return;
    } catch (error) {
      // Another process creating or altering it at the same moment (duplicate role, tuple concurrently updated).
      const code = (error as { code?: string }).code;
      if (attempt >= 5 || (code !== '42710' && code !== '23505' && code !== 'XX000')) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
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
