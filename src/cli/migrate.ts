import { migrateToLatest } from '../store/migrations.ts';
import { serviceLogins } from '../store/service-login.ts';
import { CliError, parseCommandArgs, setUp, withDatabase, withPool, type CliIo } from './runtime.ts';

export const migrateHelp = `Usage: keyledger migrate [--print-logins]

Applies the pending migrations in sql/ to the database (DATABASE_URL, or the
embedded Postgres under the data dir), as the owner login, and prints the
names of those it applied. \`dev\` and \`serve\` migrate on start too.

Options:
  --print-logins   then print, as two environment assignments, the URLs of the
                   service's and the job queue's own logins (passwords
                   included: they are secrets). Given them, \`serve\` and
                   \`worker\` need no DATABASE_URL and hold no owner login.
`;

export async function runMigrate(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs('migrate', args, { 'print-logins': { type: 'boolean' } });
  if (values.help) {
    io.stdout.write(migrateHelp);
    return 0;
  }
  const { config, logger } = setUp(io, { longRunning: false });
  // The one one-shot command that may create the embedded database.
  const { applied, ownerUrl } = await withDatabase(
    config,
    logger,
    io,
    async (database) => ({ applied: await withPool(database.url, 'owner', migrateToLatest, 2), ownerUrl: database.url }),
    { create: true },
  );
  io.stdout.write(applied.length > 0 ? `${applied.map((name) => `applied ${name}`).join('\n')}\n` : 'already up to date\n');
  if (values['print-logins']) {
    const logins = serviceLogins(ownerUrl);
    if (!logins)
      throw new CliError('the owner URL carries no password, so there are no service logins: serve and worker use the owner login (SET ROLE keyledger_app)');
    io.stdout.write(`KEYLEDGER_SERVICE_DATABASE_URL=${logins.service}\nKEYLEDGER_JOB_QUEUE_DATABASE_URL=${logins.jobQueue}\n`);
  }
  return 0;
}
