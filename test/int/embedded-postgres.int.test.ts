import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
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
