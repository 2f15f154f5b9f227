import { Kysely, PostgresDialect, sql, type ColumnType, type Generated } from 'kysely';
import pg from 'pg';
import { serviceLoginUrl } from './service-login.ts';
import type { ImportedMaterial } from '../domain/key.ts';
import { assertPgTypeParsersInstalled } from './pg-types.ts';

/** `bigint` and `xid8` columns: `pg` returns them as strings and so do we. */
type Int8 = ColumnType<string, string | bigint, string | bigint>;

export interface StreamsTable {
  stream_id: string;
  version: Int8;
}

export interface EventsTable {
  global_position: Generated<string>;
  transaction_id: Generated<string>;
  stream_id: string;
  stream_version: Int8;
  event_id: string;
  type: string;
  data: ColumnType<unknown, string, never>;
  metadata: ColumnType<Record<string, unknown>, string, never>;
  recorded_at: ColumnType<Date, Date, never>;
}

export interface AccountsTable {
  account_id: string;
  name: string;
  created_at: Date;
}

export interface PrincipalsTable {
  principal_arn: string;
  account_id: string;
  principal_type: 'root' | 'user' | 'role';
  name: string;
  tags: ColumnType<Record<string, string>, string, string>;
  created_at: Date;
}

export interface AccessKeysTable {
  access_key_id: string;
  principal_arn: string;
  wrapped_secret: Buffer;
  status: 'Active' | 'Inactive';
  created_at: Date;
}

export interface KeysTable {
  key_id: string;
  account_id: string;
  arn: string;
  description: string;
  key_state: string;
  enabled: boolean;
  key_usage: string;
  key_spec: string;
  origin: string;
  key_manager: string;
  multi_region: boolean;
  policy: string;
  creation_date: Date;
  deletion_date: Date | null;
  pending_deletion_window_in_days: number | null;
  current_key_material_id: string | null;
  key_material_ids: string[];
  rotation_enabled: boolean;
  rotation_period_in_days: number | null;
  next_rotation_date: Date | null;
  on_demand_rotations: number;
  /** DER SubjectPublicKeyInfo of an asymmetric key; null otherwise (sql/0021). */
  public_key: Buffer | null;
  /** Imported material versions of an Origin EXTERNAL key (sql/0026); written as JSON text, read as the array. */
  imported_materials: ColumnType<ImportedMaterial[], string, string>;
  version: Int8;
}

/** GetParametersForImport's wrapping keys (sql/0026). */
export interface ImportParametersTable {
  import_token_id: string;
  key_id: string;
  wrapping_algorithm: string;
  wrapping_key_spec: string;
  wrapped_private_key: Buffer;
  valid_to: Date;
  created_at: Date;
}

export interface KeyMaterialsTable {
  key_id: string;
  key_material_id: string;
  wrapped: Buffer;
  created_at: Date;
}

export interface KeyTagsTable {
  key_id: string;
  tag_key: string;
  tag_value: string;
}

export interface AliasesTable {
  account_id: string;
  alias_name: string;
  target_key_id: string;
  creation_date: Date;
  last_updated_date: Date;
  version: Int8;
}

export interface PrincipalPoliciesTable {
  principal_arn: string;
  policy_name: string;
  document: string;
  updated_at: Date;
}

export interface GrantsTable {
  grant_id: string;
  key_id: string;
  key_account_id: string;
  name: string | null;
  grantee_principal: string;
  retiring_principal: string | null;
  operations: string[];
  constraints: ColumnType<unknown, string | null, string | null>;
  issuing_account: string;
  grant_token: string;
  creation_date: Date;
  version: Int8;
}

/** sql/0025_fences.sql: how often each key's or alias's decision inputs changed. */
export interface FencesTable {
  scope: string;
  version: Int8;
}

export interface Database {
  streams: StreamsTable;
  events: EventsTable;
  accounts: AccountsTable;
  principals: PrincipalsTable;
  access_keys: AccessKeysTable;
  keys: KeysTable;
  key_tags: KeyTagsTable;
  aliases: AliasesTable;
  key_materials: KeyMaterialsTable;
  import_parameters: ImportParametersTable;
  principal_policies: PrincipalPoliciesTable;
  grants: GrantsTable;
  fences: FencesTable;
}

export type Db = Kysely<Database>;

/** The role the service acts as: it may append to the log but never rewrite it. */
export const APP_ROLE = 'keyledger_app';

export interface OpenDatabaseOptions {
  /**
   * `app` (default) runs every session as the `keyledger_app` role, which has no
   * UPDATE, DELETE or TRUNCATE on `events`. `owner` keeps the login role: only
   * migrations and maintenance commands use it.
   */
  as?: 'app' | 'owner';
  max?: number;
  applicationName?: string;
}

/**
 * Opens a pooled Kysely database on `connectionString`.
 *
 * @example
 * const db = openDatabase(process.env.DATABASE_URL!, { as: 'app' });
 * await db.selectFrom('keys').selectAll().execute();
 * await db.destroy();
 */
export function openDatabase(connectionString: string, options: OpenDatabaseOptions = {}): Db {
  assertPgTypeParsersInstalled();
  const app = (options.as ?? 'app') === 'app';
  const pool = new pg.Pool({
    // The app logs in as the service login (service-login.ts), so that RESET ROLE gives back nothing.
    connectionString: app ? (serviceLoginUrl(connectionString) ?? connectionString) : connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'keyledger',
    // A startup parameter, so the role is in force before the first query runs.
    ...(app ? { options: `-c role=${APP_ROLE}` } : {}),
  });
  // An idle client losing its server must not crash the process; the next
  // checkout gets a fresh connection.
  pool.on('error', () => {});
  // Nor a checked-out one (pg-pool listens only while a client is idle): its
  // query is rejected with the error, which is how it is reported, and the
  // pool drops the connection when it comes back.
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  pools.set(db, pool);
  return db;
}

const pools = new WeakMap<Db, pg.Pool>();

/**
 * The URL `db`'s pool logs in with (for a database opened with openDatabase), or undefined.
 *
 * @example
 * connectionStringOf(openDatabase(ownerUrl))                   // serviceLoginUrl(ownerUrl): the login the app's pool really uses
 * connectionStringOf(openDatabase(ownerUrl, { as: 'owner' })) // ownerUrl
 * connectionStringOf(new Kysely<Database>({ dialect }))       // undefined: not opened with openDatabase
 */
export function connectionStringOf(db: Db): string | undefined {
  return pools.get(db)?.options.connectionString;
}

/**
 * One of `db`'s own pooled connections, as a raw `pg` client, for what Kysely
 * cannot say (a streamed result, COPY). A connection that `use` failed on is
 * closed rather than returned, since its session may be left mid-transaction.
 *
 * @example
 * const n = await withPooledClient(db, async (client) => (await client.query('SELECT 1')).rowCount);
 */
export async function withPooledClient<T>(db: Db, use: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const pool = pools.get(db);
  if (!pool) throw new Error('withPooledClient needs a database opened with openDatabase');
  const client = await pool.connect();
  try {
    const result = await use(client);
    client.release();
    return result;
  } catch (error) {
    client.release(true);
    throw error;
  }
}

/**
 * A new connection outside `db`'s pool, to the same database as the same role:
 * for a session that must stay open and keep its own state, such as a LISTEN.
 * Not connected yet; the caller connects and ends it.
 *
 * @example
 * const client = dedicatedClient(db, 'keyledger-listen');
 * await client.connect();
 * await client.query('LISTEN keyledger_audit');
 */
export function dedicatedClient(db: Db, applicationName: string): pg.Client {
  assertPgTypeParsersInstalled();
  const pool = pools.get(db);
  if (!pool) throw new Error('dedicatedClient needs a database opened with openDatabase');
  const { connectionString, options: startup, ssl } = pool.options;
  return new pg.Client({ connectionString, options: startup, ssl, application_name: applicationName });
}

/**
 * Whether the table `schema`.`table` exists in the database (read from the catalog: no privilege on the schema needed).
 *
 * @example
 * await tableExists(db, 'pgboss', 'job') // true once pg-boss has installed its schema
 */
export async function tableExists(db: Db, schema: string, table: string): Promise<boolean> {
  const { rows } = await sql<{ installed: boolean }>`
    select exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                    where n.nspname = ${schema} and c.relname = ${table}) as installed`.execute(db);
  return rows[0]?.installed === true;
}

/**
 * Runs `body` holding the session advisory lock `lockKey` (a bigint, as a
 * string) on one of `db`'s connections: a second caller, in this process or
 * another, waits until the first is done.
 *
 * @example
 * await withSessionAdvisoryLock(db, '7740672246483678068', () => bootstrap());
 */
export async function withSessionAdvisoryLock<T>(db: Db, lockKey: string, body: () => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql`SELECT pg_advisory_lock(${lockKey}::bigint)`.execute(conn);
    try {
      return await body();
    } finally {
      // Should the unlock fail, the session is gone, and its lock with it: the body's own error matters more.
      await sql`SELECT pg_advisory_unlock(${lockKey}::bigint)`.execute(conn).catch(() => {});
    }
  });
}
