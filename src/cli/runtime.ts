import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, type Config } from '../config.ts';
import { createLogger, redactUrl, type Logger } from '../logger.ts';
import type { OperatorContext } from '../service/context.ts';
import { openDatabase, type Db } from '../store/database.ts';
import { locateDatabase, type LocatedDatabase } from '../store/locate-database.ts';
import { pendingMigrations } from '../store/migrations.ts';
import { uuidV7 } from '../domain/uuid-v7.ts';

/** Where a command writes and what it reads; process.* in production. */
export interface CliIo {
  /** Results: JSON, URLs, tables. Nothing else goes here. */
  stdout: NodeJS.WritableStream;
  /** Progress, notices and (as JSON lines) logs. */
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

/** A command's entry point: returns the exit code. */
export type CommandRunner = (args: string[], io: CliIo) => Promise<number>;

/** Wrong arguments: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly command: string;

  constructor(command: string, message: string) {
    super(message);
    this.command = command;
  }
}

/** An expected failure with a message for the operator (no stack trace). */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

/**
 * parseArgs, strict, with its errors turned into UsageErrors for `command`.
 *
 * @example
 * const { values } = parseCommandArgs('replay', args, { verify: { type: 'boolean' } });
 */
export function parseCommandArgs<O extends NonNullable<ParseArgsConfig['options']>>(command: string, args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...HELP_OPTION, ...options }, strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(command, error instanceof Error ? error.message : String(error));
  }
}

/**
 * The configuration and the logger. Logs are JSON lines on stderr; one-shot
 * commands log warnings only unless KEYLEDGER_LOG_LEVEL asks for more, so their
 * output stays readable.
 */
export function setUp(io: CliIo, options: { longRunning: boolean }): { config: Config; logger: Logger } {
  const config = loadConfig(io.env);
  const level = options.longRunning || io.env.KEYLEDGER_LOG_LEVEL ? config.logLevel : 'warn';
  // process.stderr: pino's own synchronous fd 2, so nothing is lost at process.exit.
  return { config, logger: createLogger(level, io.stderr === process.stderr ? undefined : io.stderr) };
}

/** The identity the CLI's own requests (principal, access-key) are audited under. */
export function operatorContext(): OperatorContext {
  return { requestId: uuidV7(), invokedBy: 'keyledger-cli' };
}

/**
 * Locates the database (DATABASE_URL or the embedded server, as `dev` does),
 * runs `body`, and releases it whatever happens. An embedded database that does
 * not exist yet is made only with `create` (`migrate`); every other command
 * fails, saying where it looked, and creates nothing.
 */
export async function withDatabase<T>(
  config: Config,
  logger: Logger,
  io: CliIo,
  body: (database: LocatedDatabase) => Promise<T>,
  options: { create?: boolean } = {},
): Promise<T> {
  // A signal's default action ends the process without 'exit' hooks, which would
  // leave an embedded Postgres we started running; exiting runs them (they stop it).
  const onSignal = (signal: NodeJS.Signals) => {
    io.stderr.write(`\n${signal}: interrupted\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const database = await locateDatabase({ config, logger, env: io.env, create: options.create === true });
    try {
      return await body(database);
    } finally {
      await database.release();
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/** Where a serving or working process logs in: see serviceDatabase. */
export interface ServiceDatabase {
  /** Opened with openDatabase(url, { as: 'app' }): the service login (given, or derived from the owner's). */
  appUrl: string;
  /** Given to pg-boss (startWorker, openJobScheduler): the job queue's login, or the owner's URL it derives it from. */
  jobQueueUrl: string;
  /** True when the process holds no owner login at all (KEYLEDGER_SERVICE_DATABASE_URL and KEYLEDGER_JOB_QUEUE_DATABASE_URL). */
  ownerLess: boolean;
  release(): Promise<void>;
}

/**
 * The database of `worker` (and `worker --status`): with
 * KEYLEDGER_SERVICE_DATABASE_URL and KEYLEDGER_JOB_QUEUE_DATABASE_URL, those
 * logins and no owner's, so a compromised worker holds nothing that could
 * rewrite the log; else DATABASE_URL or the embedded server, as every command.
 * Either way it fails, naming the fix, when migrations are pending.
 */
export async function serviceDatabase(config: Config, logger: Logger, io: CliIo): Promise<ServiceDatabase> {
  if (config.logins) {
    await assertMigrated(config.logins.service, 'app');
    return { appUrl: config.logins.service, jobQueueUrl: config.logins.jobQueue, ownerLess: true, release: async () => {} };
  }
  const database = await locateDatabase({ config, logger, env: io.env });
  try {
    await assertMigrated(database.url);
  } catch (error) {
    await database.release();
    throw error;
  }
  return { appUrl: database.url, jobQueueUrl: database.url, ownerLess: false, release: () => database.release() };
}

/** Opens a pool, runs `body`, closes the pool. */
export async function withPool<T>(url: string, as: 'app' | 'owner', body: (db: Db) => Promise<T>, max = 4): Promise<T> {
  const db = openDatabase(url, { as, max, applicationName: `keyledger-cli-${as}` });
  try {
    return await body(db);
  } finally {
    await db.destroy();
  }
}

/**
 * Fails with the fix when migrations are pending: only `migrate`, `dev` and
 * `serve` apply them. `as: 'app'` reads as the service login, for a process
 * given no owner login (KEYLEDGER_SERVICE_DATABASE_URL).
 */
export async function assertMigrated(url: string, as: 'app' | 'owner' = 'owner'): Promise<void> {
  const pending = await withPool(
    url,
    as,
    async (db) => {
      try {
        return await pendingMigrations(db);
      } catch (error) {
        // keyledger_app may read the migrations table only from 0041 on.
        if ((error as { code?: string }).code === '42501') return ['0041_migration_state_readable'];
        throw error;
      }
    },
    1,
  );
  if (pending.length > 0) {
    throw new CliError(`the database ${redactUrl(url)} is not migrated (pending: ${pending.join(', ')}): run \`keyledger migrate\` first`);
  }
}

/** Resources a long-running command holds, closed in reverse order of acquisition. */
export class Resources {
  readonly #stack: { name: string; close: () => Promise<unknown> }[] = [];

  add(name: string, close: () => Promise<unknown>): void {
    this.#stack.push({ name, close });
  }

  /** Closes everything; a failure is logged and does not stop the rest from closing. Returns false if any failed. */
  async closeAll(logger: Logger): Promise<boolean> {
    let clean = true;
    for (let entry = this.#stack.pop(); entry; entry = this.#stack.pop()) {
      try {
        await entry.close();
      } catch (error) {
        clean = false;
        logger.error({ resource: entry.name, error: error instanceof Error ? error.message : String(error) }, 'could not close cleanly');
      }
    }
    return clean;
  }
}

/**
 * Resolves on the first SIGINT or SIGTERM. A second one exits at once (the
 * embedded Postgres is still stopped by its exit hook); a shutdown that hangs
 * is cut short after `graceMs`.
 */
export function shutdownSignal(io: CliIo, graceMs = 30_000): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (received) {
        io.stderr.write(`\n${signal} again: exiting without a clean shutdown\n`);
        process.exit(130);
      }
      received = true;
      io.stderr.write(`\n${signal}: shutting down\n`);
      setTimeout(() => {
        io.stderr.write(`shutdown did not finish within ${graceMs / 1000} s: exiting\n`);
        process.exit(1);
      }, graceMs).unref();
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
