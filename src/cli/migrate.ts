import { migrateToLatest } from '../store/migrations.ts';
import { parseCommandArgs, setUp, withDatabase, withPool, type CliIo } from './runtime.ts';

export const migrateHelp = `Usage: keyledger migrate

Applies the pending migrations in sql/ to the database (DATABASE_URL, or the
embedded Postgres under the data dir), as the owner login, and prints the
names of those it applied. \`dev\` and \`serve\` migrate on start too.
`;

export async function runMigrate(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs('migrate', args, {});
  if (values.help) {
    io.stdout.write(migrateHelp);
    return 0;
  }
  const { config, logger } = setUp(io, { longRunning: false });
  // The one one-shot command that may create the embedded database.
  const applied = await withDatabase(config, logger, io, (database) => withPool(database.url, 'owner', migrateToLatest, 2), { create: true });
  io.stdout.write(applied.length > 0 ? `${applied.map((name) => `applied ${name}`).join('\n')}\n` : 'already up to date\n');
  return 0;
}
