import { readdir } from 'node:fs/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/store/database.ts';
import { appendToStream, readStream } from '../../src/store/event-store.ts';
import { migrateToLatest } from '../../src/store/migrations.ts';
import { waitFor } from '../support/concurrency.ts';
import { adminQuery, createTestDatabase, databaseUrl, type TestDatabase } from '../support/database.ts';
import { startPostgresServer } from '../support/postgres-server.ts';

const allMigrations = async (): Promise<string[]> =>
  (await readdir(new URL('../../sql/', import.meta.url)))
    .filter((f) => f.endsWith('.sql'))
    .map((f) => f.slice(0, -4))
    .sort();

describe('migrateToLatest', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db?.drop());

  it('has applied every file in sql/, and running it again changes nothing', async () => {
    const recorded = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db.owner);
    expect(recorded.rows.map((r) => r.name)).toEqual(await allMigrations());

    expect(await migrateToLatest(db.owner)).toEqual([]);
    expect(await Promise.all([migrateToLatest(db.owner), migrateToLatest(db.owner)])).toEqual([[], []]);
  });

  it('refuses to run while an index is INVALID, naming it, and runs once it is dropped', async () => {
    // A unique index built CONCURRENTLY over duplicates fails, and leaves an INVALID index behind.
    await sql`CREATE TABLE scratch_invalid (x int)`.execute(db.owner);
    await sql`INSERT INTO scratch_invalid VALUES (1), (1)`.execute(db.owner);
    await expect(sql`CREATE UNIQUE INDEX CONCURRENTLY scratch_invalid_x ON scratch_invalid (x)`.execute(db.owner)).rejects.toThrow(
      /could not create unique index/,
    );
    await expect(migrateToLatest(db.owner)).rejects.toThrow(/^index scratch_invalid_x is INVALID .*\(DROP INDEX CONCURRENTLY scratch_invalid_x\)/);
    await sql`DROP INDEX scratch_invalid_x`.execute(db.owner);
    await sql`DROP TABLE scratch_invalid`.execute(db.owner);
    expect(await migrateToLatest(db.owner)).toEqual([]);
  });
});

describe('migrating two databases of one fresh cluster at once', () => {
  // `keyledger_app` is cluster-wide and already exists on the shared server, so
  // this race needs a server of its own.
  it('both succeed while racing to create the shared role', { timeout: 120_000 }, async () => {
    const server = await startPostgresServer();
    const holder = new pg.Client({ connectionString: server.adminUrl });
    const owners: Db[] = [];
    try {
      await adminQuery(server.adminUrl, 'CREATE DATABASE race_a');
      await adminQuery(server.adminUrl, 'CREATE DATABASE race_b');
      owners.push(...['race_a', 'race_b'].map((d) => openDatabase(databaseUrl(server.adminUrl, d), { as: 'owner', max: 2 })));
      await holder.connect();
      const roleExists = async () => (await holder.query(`select 1 from pg_roles where rolname = 'keyledger_app'`)).rowCount === 1;
      expect(await roleExists()).toBe(false);

      // Hold an uncommitted CREATE ROLE so both migrations reach theirs and wait
      // on it; rolling it back releases them into the race: one creates the
      // role, the other finds it taken when the first commits.
      await holder.query('BEGIN');
      await holder.query('CREATE ROLE keyledger_app NOLOGIN');
      const migrating = Promise.allSettled(owners.map((owner) => migrateToLatest(owner)));
      const holderPid = (await holder.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      // Watched from a pooled session: a transaction (the holder's) sees one
      // frozen snapshot of pg_stat_activity.
      await waitFor(async () => {
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
           where datname in ('race_a', 'race_b') and ${holderPid}::int = any(pg_blocking_pids(pid))`.execute(owners[0]!);
        return rows[0]!.n === 2;
      }, 'both migrations wait on the role');
      await holder.query('ROLLBACK');

      const all = await allMigrations();
      expect(await migrating).toEqual([
        { status: 'fulfilled', value: all },
        { status: 'fulfilled', value: all },
      ]);
      expect(await roleExists()).toBe(true);

      // And the role works in both databases.
      for (const [i, d] of ['race_a', 'race_b'].entries()) {
        const app = openDatabase(databaseUrl(server.adminUrl, d), { as: 'app', max: 1 });
        try {
          await app.transaction().execute((trx) => appendToStream(trx, `s-${i}`, 'no_stream', [{ type: 'T', data: {} }], new Date()));
          expect(await readStream(app, `s-${i}`)).toHaveLength(1);
        } finally {
          await app.destroy();
        }
      }
    } finally {
      await holder.end().catch(() => {});
      await Promise.all(owners.map((o) => o.destroy()));
      await server.stop();
    }
  });
});
