import type { TestProject } from 'vitest/node';
import { startPostgresServer } from './postgres-server.ts';

declare module 'vitest' {
  interface ProvidedContext {
    /** A superuser URL on the run's one Postgres server; each test file creates its own database there. */
    adminDatabaseUrl: string;
  }
}

/**
 * One Postgres server for the whole run: DATABASE_URL if set (a superuser: tests
 * create databases and check what even a superuser may not do to the log), else
 * a container, else the embedded binaries. A server per file would cost seconds
 * each; a database per file is cheap and still lets files run in parallel.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const fromEnv = process.env.DATABASE_URL;
  if (fromEnv) {
    project.provide('adminDatabaseUrl', fromEnv);
    return async () => {};
  }
  const started = Date.now();
  const server = await startPostgresServer();
  console.log(`[keyledger tests] ${server.kind} Postgres ready in ${Date.now() - started} ms`);
  project.provide('adminDatabaseUrl', server.adminUrl);
  return () => server.stop();
}
