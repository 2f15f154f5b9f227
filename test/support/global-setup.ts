import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/store/database.ts';
import { migrateToLatest } from '../../src/store/migrations.ts';
import { installPgTypeParsers } from '../../src/store/pg-types.ts';
import { adminQuery, databaseUrl } from './database.ts';
import { startPostgresServer } from './postgres-server.ts';

declare module 'vitest' {
  interface ProvidedContext {
    /** A superuser URL on the run's one Postgres server; each test file creates its own database there. */
    adminDatabaseUrl: string;
    /** A database on that server migrated once for the run: each test file's database is created from it (CREATE DATABASE … TEMPLATE). */
    templateDatabase: string;
  }
}

/**
 * One Postgres server for the whole run: DATABASE_URL if set (a superuser: tests
 * create databases and check what even a superuser may not do to the log), else
 * a container, else the embedded binaries. A server per file would cost seconds
 * each; a database per file is cheap and still lets files run in parallel.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  installPgTypeParsers();
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv) {
    project.provide('adminDatabaseUrl', fromEnv);
    return createTemplate(project, fromEnv);
  }
  const started = Date.now();
  const server = await startPostgresServer();
  console.log(`[keyledger tests] ${server.kind} Postgres ready in ${Date.now() - started} ms`);
  project.provide('adminDatabaseUrl', server.adminUrl);
  await createTemplate(project, server.adminUrl);
  return () => server.stop();
}

/**
 * Migrates one database for the whole run and provides its name: copying it is
 * much cheaper than running every migration once per test file. Its pool is
 * closed before any file starts, as CREATE DATABASE … TEMPLATE requires.
 */
async function createTemplate(project: TestProject, adminUrl: string): Promise<() => Promise<void>> {
  const name = `keyledger_template_${process.pid}`;
  await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const owner = openDatabase(databaseUrl(adminUrl, name), { as: 'owner', max: 1, applicationName: 'keyledger-test-template' });
  try {
    await migrateToLatest(owner);
  } finally {
    await owner.destroy();
  }
  project.provide('templateDatabase', name);
  return () => adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}
