import { ConfigError } from '../config.ts';
import { KmsError } from '../domain/errors.ts';
import { CliError, UsageError, type CliIo, type CommandRunner } from './runtime.ts';

interface CommandEntry {
  summary: string;
  /** Loaded on use: `principal create` need not load GraphQL, nor `migrate` pg-boss. */
  load: () => Promise<CommandRunner>;
}

const COMMANDS: Record<string, CommandEntry> = {
  dev: { summary: 'run everything locally: embedded Postgres, API, worker; bootstraps an admin', load: async () => (await import('./serve.ts')).runDev },
  serve: {
    summary: 'run the API: AWS KMS (SigV4) at / and GraphQL at /graphql (no bootstrap, no worker)',
    load: async () => (await import('./serve.ts')).runServe,
  },
  worker: { summary: 'run the background worker, or print its status (--status)', load: async () => (await import('./worker.ts')).runWorker },
  migrate: { summary: 'apply pending database migrations', load: async () => (await import('./migrate.ts')).runMigrate },
  replay: { summary: 'rebuild the projections from the log, or compare them (--verify)', load: async () => (await import('./replay.ts')).runReplay },
  principal: { summary: 'create a user or role (and its account)', load: async () => (await import('./identity.ts')).runPrincipal },
  'access-key': { summary: 'create an access key for a principal', load: async () => (await import('./identity.ts')).runAccessKey },
  audit: { summary: 'export the sealed log, or verify an export offline (tamper-evident log)', load: async () => (await import('./audit.ts')).runAudit },
  checkpoint: { summary: "print the log's latest signed checkpoint, or its public key", load: async () => (await import('./audit.ts')).runCheckpoint },
  report: { summary: "write an account's compliance report (md, html, csv or json)", load: async () => (await import('./report.ts')).runReport },
};

export const usage = `Usage: keyledger <command> [options]

A self-hosted key management service with AWS KMS semantics.

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(11)} ${c.summary}`)
  .join('\n')}

Run 'keyledger <command> --help' for a command's options.

Every command finds its database the same way: DATABASE_URL if set, else an
embedded Postgres under KEYLEDGER_DATA_DIR (default ./.keyledger), started on
demand and stopped again when the command that started it ends.
`;

/**
 * Runs `keyledger <argv>` and returns the exit code: 0 success, 1 failure, 2
 * usage or configuration error. Writes results to io.stdout and everything
 * else to io.stderr.
 *
 * @example
 * process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage);
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    io.stderr.write(`keyledger: unknown command '${name}'\n\n${usage}`);
    return 2;
  }
  try {
    return await (
      await command.load()
    )(args, io);
  } catch (error) {
    return reportError(error, name, io);
  }
}

function reportError(error: unknown, command: string, io: CliIo): number {
  if (error instanceof UsageError) {
    io.stderr.write(`keyledger ${error.command}: ${error.message}\nRun 'keyledger ${error.command} --help' for usage.\n`);
    return 2;
  }
  if (error instanceof ConfigError) {
    // Its message lists every bad variable, one a line.
    io.stderr.write(`keyledger: ${error.message}\n`);
    return 2;
  }
  if (error instanceof CliError) {
    io.stderr.write(`keyledger ${command}: ${error.message}\n`);
    return error.exitCode;
  }
  if (error instanceof KmsError) {
    io.stderr.write(`keyledger ${command}: ${error.code}: ${error.message}\n`);
    return 1;
  }
  // Expected failures (root key, database location, migrations, a port in use)
  // are named errors with an operator-facing message; the stack is for debugging.
  const message = error instanceof Error ? error.message : String(error);
  io.stderr.write(`keyledger ${command}: ${message}\n`);
  if (error instanceof Error && io.env.KEYLEDGER_LOG_LEVEL && ['debug', 'trace'].includes(io.env.KEYLEDGER_LOG_LEVEL)) {
    io.stderr.write(`${error.stack ?? ''}\n`);
  }
  return 1;
}
