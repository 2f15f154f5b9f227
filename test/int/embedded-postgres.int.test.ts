import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { canConnect, EmbeddedPostgres } from '../../src/store/embedded-postgres.ts';
import { freePort } from '../../src/store/free-port.ts';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

it('initialises a data dir whose parents it creates, and keeps its data across a restart', { timeout: 120_000 }, async () => {
  // Like a project dir, the top is traversable; as root the server runs as
  // `postgres`, so the dirs EmbeddedPostgres creates below it must be too.
  const dir = await mkdtemp(join(tmpdir(), 'keyledger-embedded-'));
  dirs.push(dir);
  await chmod(dir, 0o711);
  const server = new EmbeddedPostgres({
    dataDir: join(dir, 'not', 'yet', 'there', 'data'),
    logFile: join(dir, 'postgres.log'),
    password: randomBytes(12).toString('hex'),
    port: await freePort(),
  });

  expect(await server.initialised).toBe(false);
  await server.initialise();
  expect(await server.initialised).toBe(true);
  await server.start();
  try {
    const client = new pg.Client({ connectionString: server.url('postgres') });
    await client.connect();
    await client.query('create table kept (n int); insert into kept values (42)');
    await client.end();
    await server.stop();
    expect(await canConnect(server.url('postgres'))).toBe(false);

    await server.start();
    const again = new pg.Client({ connectionString: server.url('postgres') });
    await again.connect();
    expect((await again.query('select n from kept')).rows).toEqual([{ n: 42 }]);
    await again.end();
  } finally {
    await server.stop();
  }
});

it('listens on a Unix socket in socketDir beside 127.0.0.1, and its URL names the socket', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keyledger-embedded-'));
  dirs.push(dir);
  await chmod(dir, 0o711);
  const password = randomBytes(12).toString('hex');
  const port = await freePort();
  const socketDir = join(dir, 'sock');
  const server = new EmbeddedPostgres({ dataDir: join(dir, 'data'), logFile: join(dir, 'postgres.log'), password, port, socketDir });
  expect(server.transport).toBe('unix socket');
  expect(server.url('postgres')).toBe(`postgresql://postgres:${password}@${encodeURIComponent(socketDir)}:${port}/postgres`);
  await server.initialise();
  await server.start();
  try {
    expect((await stat(socketDir)).mode & 0o777).toBe(0o700);
    const clientAddress = async (url: string) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query<{ address: string | null }>('select inet_client_addr()::text as address')).rows[0]!.address;
      } finally {
        await client.end();
      }
    };
    // A Unix-socket session has no client address; TCP still answers, with its password.
    expect(await clientAddress(server.url('postgres'))).toBeNull();
    expect(await clientAddress(`postgresql://postgres:${password}@127.0.0.1:${port}/postgres`)).toBe('127.0.0.1/32');
    expect(await canConnect(`postgresql://postgres:wrong@${encodeURIComponent(socketDir)}:${port}/postgres`)).toBe(false);
  } finally {
    await server.stop();
  }
});

it('stays on TCP when the socket path would be too long for the kernel, or the dir would need quoting', async () => {
  const port = 54321;
  const options = { dataDir: '/nowhere/data', logFile: '/nowhere/log', password: 'p', port };
  for (const socketDir of [`/tmp/${'x'.repeat(100)}`, '/tmp/a,b', '/tmp/a b', 'relative/sock']) {
    const server = new EmbeddedPostgres({ ...options, socketDir });
    expect(server.transport).toBe('tcp');
    expect(server.url('db')).toBe(`postgresql://postgres:p@127.0.0.1:${port}/db`);
  }
  expect(new EmbeddedPostgres({ ...options, socketDir: `/tmp/${'x'.repeat(80)}` }).transport).toBe('unix socket');
});
