import { resolve } from 'node:path';

/** Configuration, read from environment variables and validated once at start. */
export interface Config {
  dataDir: string;
  host: string;
  port: number;
  databaseUrl: string | undefined;
  /** base64 of 32 bytes, from KEYLEDGER_ROOT_KEY; else the key is read from rootKeyFile. */
  rootKeyBase64: string | undefined;
  rootKeyFile: string;
  region: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Reads and validates the configuration; throws a ConfigError naming every bad value.
 *
 * | variable | default |
 * |---|---|
 * | KEYLEDGER_DATA_DIR | ./.keyledger |
 * | KEYLEDGER_HOST | 127.0.0.1 |
 * | KEYLEDGER_PORT | 4000 |
 * | DATABASE_URL | (embedded Postgres under the data dir) |
 * | KEYLEDGER_ROOT_KEY | (unset: read KEYLEDGER_ROOT_KEY_FILE) |
 * | KEYLEDGER_ROOT_KEY_FILE | <data dir>/root-key |
 * | KEYLEDGER_REGION | us-east-1 |
 * | KEYLEDGER_LOG_LEVEL | info |
 *
 * @example
 * const config = loadConfig(process.env);
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const dataDir = resolve(env.KEYLEDGER_DATA_DIR || './.keyledger');

  const portText = env.KEYLEDGER_PORT ?? '4000';
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    problems.push(`KEYLEDGER_PORT must be a TCP port from 1 to 65535, got '${portText}'`);
  }

  const host = env.KEYLEDGER_HOST || '127.0.0.1';

  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push(`DATABASE_URL must be a postgres:// or postgresql:// URL`);
  }

  const rootKeyBase64 = env.KEYLEDGER_ROOT_KEY || undefined;
  if (rootKeyBase64 !== undefined) {
    const valid = /^[A-Za-z0-9+/]{43}=$/.test(rootKeyBase64) && Buffer.from(rootKeyBase64, 'base64').length === 32;
    if (!valid) problems.push('KEYLEDGER_ROOT_KEY must be exactly 32 bytes in standard base64 (44 characters)');
  }

  const region = env.KEYLEDGER_REGION || 'us-east-1';
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) {
    problems.push(`KEYLEDGER_REGION must look like an AWS region (e.g. us-east-1), got '${region}'`);
  }

  const logLevel = (env.KEYLEDGER_LOG_LEVEL || 'info') as Config['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`KEYLEDGER_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got '${String(logLevel)}'`);
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    dataDir,
    host,
    port,
    databaseUrl,
    rootKeyBase64,
    rootKeyFile: resolve(env.KEYLEDGER_ROOT_KEY_FILE || `${dataDir}/root-key`),
    region,
    logLevel,
  };
}
