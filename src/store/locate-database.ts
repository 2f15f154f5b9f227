import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { ConfigError, type Config } from '../config.ts';
import { redactUrl, type Logger } from '../logger.ts';
import { canConnect, EmbeddedPostgres, embeddedServerUser, readOptional } from './embedded-postgres.ts';
import { freePort } from './free-port.ts';

/** The database keyledger uses on its embedded server. */
export const EMBEDDED_DATABASE = 'keyledger';

/** Where the embedded setup keeps its files under the data dir. */
export interface EmbeddedPaths {
  /** The full owner URL, password included: mode 0600, never printed. */
  databaseUrlFile: string;
  /** The Postgres cluster (owned by the `postgres` user when we are root). */
  postgresDir: string;
  postgresLog: string;
  /** The server's Unix socket (0700, the server's user): the URL names it when its path fits, else 127.0.0.1. */
  postgresSocketDir: string;
}

/**
 * Where the embedded setup's files lie under a data dir: one place names them, so every command finds
 * the server another one started.
 *
 * @example
 * embeddedPaths('/var/lib/keyledger')
 * // { databaseUrlFile: '/var/lib/keyledger/database-url', postgresDir: '/var/lib/keyledger/postgres', postgresLog: '/var/lib/keyledger/postgres.log',
 * //   postgresSocketDir: '/var/lib/keyledger/postgres-socket' }
 */
export function embeddedPaths(dataDir: string): EmbeddedPaths {
  return {
    databaseUrlFile: join(dataDir, 'database-url'),
    postgresDir: join(dataDir, 'postgres'),
    postgresLog: join(dataDir, 'postgres.log'),
    postgresSocketDir: join(dataDir, 'postgres-socket'),
  };
}

export interface LocatedDatabase {
  /** Connection URL as the owner login (migrations, pg-boss); open the app role with openDatabase(url, { as: 'app' }). */
  url: string;
  /** True for the embedded server under the data dir, false for DATABASE_URL. */
  embedded: boolean;
  /** True when this process started the embedded server, and release() stops it. */
  startedHere: boolean;
  /** Stops the embedded server if this process started it; otherwise does nothing. Idempotent. */
  release(): Promise<void>;
}

export class DatabaseLocationError extends Error {
  override readonly name = 'DatabaseLocationError';
}

/** Attempts at starting on a port: a port we picked can be taken before Postgres binds it. */
const START_ATTEMPTS = 3;

/**
 * Finds the database every command uses: DATABASE_URL when set, else the
 * embedded Postgres under the data dir, started when it is not already running.
 *
 * Only with `create` (`dev`, `serve` and `migrate`, which go on to migrate it)
 * is a missing embedded server initialised, and its `keyledger` database
 * created. Without it, a data dir holding no server is a DatabaseLocationError
 * that says where it looked, and nothing is written: not the data dir, not a
 * cluster, not the `postgres` user.
 *
 * The embedded server's URL, with its random password, is kept in
 * `<dataDir>/database-url` (0600). When that URL answers, the running server is
 * reused (another keyledger process owns it; release() leaves it running).
 * Otherwise this process starts it and release() stops it. Its port is
 * KEYLEDGER_PG_PORT when set, else the one it had last time, else a free one.
 * It listens on 127.0.0.1 and on a Unix socket in `<dataDir>/postgres-socket`,
 * which the URL names (loopback TCP when that path is too long for a socket).
 *
 * @example
 * const database = await locateDatabase({ config, logger });
 * const owner = openDatabase(database.url, { as: 'owner' });
 * try { ... } finally { await owner.destroy(); await database.release(); }
 */
export async function locateDatabase(options: { config: Config; logger: Logger; env?: NodeJS.ProcessEnv; create?: boolean }): Promise<LocatedDatabase> {
  const { config, logger } = options;
  const create = options.create === true;
  if (config.databaseUrl) {
    logger.debug({ url: redactUrl(config.databaseUrl) }, 'using DATABASE_URL');
    return { url: config.databaseUrl, embedded: false, startedHere: false, release: async () => {} };
  }
  const pinnedPort = embeddedPortFromEnv(options.env ?? process.env);
  const paths = embeddedPaths(config.dataDir);

  const previousUrl = (await readOptional(paths.databaseUrlFile))?.trim() || undefined;
  if (previousUrl && (await canConnect(previousUrl))) {
    logger.info({ url: redactUrl(previousUrl) }, 'reusing the running embedded Postgres');
    return { url: previousUrl, embedded: true, startedHere: false, release: async () => {} };
  }
  const previous = previousUrl ? parseEmbeddedUrl(previousUrl, paths.databaseUrlFile) : undefined;

  // Looked at before anything is created, the data dir included.
  const initialised = await new EmbeddedPostgres({ dataDir: paths.postgresDir, logFile: paths.postgresLog, password: '', port: 0 }).initialised;
  if (!initialised && !create) throw new DatabaseLocationError(noDatabaseMessage(config.dataDir, options.env ?? process.env));

  await ensureDataDir(config.dataDir);
  const serverUser = await embeddedServerUser();
  if (serverUser) await assertTraversable(config.dataDir, serverUser);

  if (initialised && !previous) {
    throw new DatabaseLocationError(
      `${paths.postgresDir} holds a Postgres cluster but ${paths.databaseUrlFile}, ` +
        `which has its password, is missing: restore that file, or move the data dir aside to start afresh`,
    );
  }
  const password = previous?.password ?? randomBytes(24).toString('base64url');

  let server: EmbeddedPostgres | undefined;
  for (let attempt = 1; ; attempt++) {
    const port = pinnedPort ?? (attempt === 1 && previous ? previous.port : await freePort());
    const candidate = new EmbeddedPostgres({ dataDir: paths.postgresDir, logFile: paths.postgresLog, password, port, socketDir: paths.postgresSocketDir });
    if (!(await candidate.initialised)) {
      logger.info({ dataDir: paths.postgresDir }, 'initialising the embedded Postgres (first use)');
      await candidate.initialise();
    }
    try {
      await candidate.start();
      server = candidate;
      break;
    } catch (error) {
      // A pinned port is the operator's choice: do not wander off it.
      if (pinnedPort !== undefined || attempt >= START_ATTEMPTS) throw error;
      logger.warn({ port, error: error instanceof Error ? error.message : String(error) }, 'embedded Postgres did not start; trying another port');
    }
  }

  try {
    if (!(await ensureDatabase(server.url('postgres'), EMBEDDED_DATABASE, create))) {
      throw new DatabaseLocationError(
        `the embedded Postgres under ${paths.postgresDir} has no '${EMBEDDED_DATABASE}' database: ` +
          `run \`keyledger migrate\` (or \`keyledger dev\`) to create it`,
      );
    }
    const url = server.url(EMBEDDED_DATABASE);
    if (url !== previousUrl) await writeSecretFile(paths.databaseUrlFile, `${url}\n`);
    logger.info({ url: redactUrl(url), dataDir: paths.postgresDir }, 'started the embedded Postgres');
    let released: Promise<void> | undefined;
    const running = server;
    return {
      url,
      embedded: true,
      startedHere: true,
      release: () => {
        released ??= running.stop().then(() => logger.info('stopped the embedded Postgres'));
        return released;
      },
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** Where a command that needs an existing database looked, and how to point it at one. */
function noDatabaseMessage(dataDir: string, env: NodeJS.ProcessEnv): string {
  const where = env.KEYLEDGER_DATA_DIR
    ? `KEYLEDGER_DATA_DIR=${env.KEYLEDGER_DATA_DIR}`
    : `KEYLEDGER_DATA_DIR is not set, so the default ./.keyledger, relative to the current directory ${process.cwd()}`;
  return (
    `no keyledger database found: DATABASE_URL is not set, and ${dataDir} holds no embedded Postgres (${where}). ` +
    'Set KEYLEDGER_DATA_DIR to the data dir `keyledger dev` uses, or DATABASE_URL to your Postgres; ' +
    'to make a new one, run `keyledger dev` or `keyledger migrate`. Nothing was created.'
  );
}

/** KEYLEDGER_PG_PORT, the embedded server's port when set. Read here: only the embedded path uses it. */
function embeddedPortFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const text = env.KEYLEDGER_PG_PORT;
  if (!text) return undefined;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw new ConfigError([`KEYLEDGER_PG_PORT must be a TCP port from 1 to 65535, got '${text}'`]);
  }
  return port;
}

function parseEmbeddedUrl(url: string, file: string): { password: string; port: number } {
  try {
    const parsed = new URL(url);
    const port = Number(parsed.port);
    if (!parsed.password || !(port > 0)) throw new Error('no password or port');
    return { password: decodeURIComponent(parsed.password), port };
  } catch {
    throw new DatabaseLocationError(`${file} does not hold a postgresql:// URL with a password and a port`);
  }
}

/**
 * 0711: as root the server runs as `postgres`, which must pass through the data
 * dir to its cluster but not list it; the secrets beside it are 0600 root files.
 *
 * @example
 * await ensureDataDir('/var/lib/keyledger') // the directory exists; if this call created it, its mode is 0711
 */
export async function ensureDataDir(dataDir: string): Promise<void> {
  const created = await mkdir(dataDir, { recursive: true, mode: 0o711 });
  if (created !== undefined) await chmod(dataDir, 0o711);
}

/** Fails early, with the fix, when the server's user cannot reach its cluster (initdb's own error is cryptic). */
async function assertTraversable(dir: string, user: { uid: number; gid: number }): Promise<void> {
  const blocked: string[] = [];
  for (let current = dir; ; current = dirname(current)) {
    const s = await stat(current);
    const bit = s.uid === user.uid ? 0o100 : s.gid === user.gid ? 0o010 : 0o001;
    if ((s.mode & bit) === 0) blocked.push(current);
    if (dirname(current) === current) break;
  }
  if (blocked.length > 0) {
    throw new DatabaseLocationError(
      `the embedded Postgres runs as the 'postgres' user, which cannot traverse ${blocked.join(', ')}: ` +
        `make ${blocked.length === 1 ? 'it' : 'them'} traversable (chmod o+x), choose another KEYLEDGER_DATA_DIR, or set DATABASE_URL`,
    );
  }
}

/** True when `database` exists on the server, after creating it if `create`. */
async function ensureDatabase(adminUrl: string, database: string, create: boolean): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (rowCount) return true;
    if (!create) return false;
    // CREATE DATABASE takes no parameters; the name is our constant.
    await client.query(`create database ${database}`);
    return true;
  } finally {
    await client.end();
  }
}

/** Writes a 0600 file atomically, so a reader never sees half a URL. */
async function writeSecretFile(path: string, text: string): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
  await rename(temporary, path);
}
