import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DEFAULT_SUBSCRIPTION_LIMITS, type SubscriptionLimits } from './service/subscription-slots.ts';
import { quotaSettingsFrom, type QuotaSettings } from './service/quotas.ts';
import { JOB_QUEUE_LOGIN, SERVICE_LOGIN, type ServiceLogins } from './store/service-login.ts';

/** Configuration, read from environment variables and validated once at start. */
export interface Config {
  dataDir: string;
  host: string;
  port: number;
  databaseUrl: string | undefined;
  /**
   * The service's and the job queue's own logins, from
   * KEYLEDGER_SERVICE_DATABASE_URL and KEYLEDGER_JOB_QUEUE_DATABASE_URL (both or
   * neither): `serve` and `worker` then need no owner login at all.
   */
  logins: ServiceLogins | undefined;
  /** base64 of 32 bytes, from KEYLEDGER_ROOT_KEY; else the key is read from rootKeyFile. */
  rootKeyBase64: string | undefined;
  rootKeyFile: string;
  /** base64 of the 32-byte Ed25519 seed that signs checkpoints, from KEYLEDGER_SEAL_KEY; else read from sealKeyFile. */
  sealKeyBase64: string | undefined;
  sealKeyFile: string;
  /** Where the worker publishes the log's signed checkpoints (KEYLEDGER_CHECKPOINT_DIR). */
  checkpointDir: string;
  region: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** KEYLEDGER_GROUP_COMMIT: cryptographic operations commit their records in batches (on) or one transaction each (off). */
  groupCommit: boolean;
  /** PEM files from KEYLEDGER_TLS_CERT and KEYLEDGER_TLS_KEY (both or neither): `serve` speaks HTTPS with them. */
  tls: TlsFiles | undefined;
  /** AWS request quotas from KEYLEDGER_QUOTAS and KEYLEDGER_QUOTA_* (undefined when KEYLEDGER_QUOTAS=off). */
  quotas: QuotaSettings | undefined;
  /** Open subscriptions (auditEvents and checkpoints together) per principal and per process (KEYLEDGER_AUDIT_TAILS_PER_PRINCIPAL, KEYLEDGER_AUDIT_TAILS). */
  subscriptions: SubscriptionLimits;
}

/** A certificate (chain) and its private key, as PEM files; `source` names where each path came from, for messages. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  source: { cert: string; key: string };
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
 * | KEYLEDGER_SERVICE_DATABASE_URL, KEYLEDGER_JOB_QUEUE_DATABASE_URL | (unset: derived from DATABASE_URL's owner) |
 * | KEYLEDGER_ROOT_KEY | (unset: read KEYLEDGER_ROOT_KEY_FILE) |
 * | KEYLEDGER_ROOT_KEY_FILE | <data dir>/root-key |
 * | KEYLEDGER_SEAL_KEY | (unset: read <root key's directory>/seal-key) |
 * | KEYLEDGER_CHECKPOINT_DIR | <data dir>/checkpoints |
 * | KEYLEDGER_REGION | us-east-1 |
 * | KEYLEDGER_LOG_LEVEL | info |
 * | KEYLEDGER_GROUP_COMMIT | on |
 * | KEYLEDGER_TLS_CERT, KEYLEDGER_TLS_KEY | (unset: plain HTTP) |
 * | KEYLEDGER_QUOTAS | on |
 * | KEYLEDGER_QUOTA_<NAME>, KEYLEDGER_QUOTA_WINDOW_SECONDS | AWS's request quotas; 60 |
 * | KEYLEDGER_AUDIT_TAILS_PER_PRINCIPAL, KEYLEDGER_AUDIT_TAILS | 10, 500 |
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

  const logins = loginsFrom(env, problems);

  const rootKeyBase64 = env.KEYLEDGER_ROOT_KEY || undefined;
  if (rootKeyBase64 !== undefined) {
    const valid = /^[A-Za-z0-9+/]{43}=$/.test(rootKeyBase64) && Buffer.from(rootKeyBase64, 'base64').length === 32;
    if (!valid) problems.push('KEYLEDGER_ROOT_KEY must be exactly 32 bytes in standard base64 (44 characters)');
  }

  const sealKeyBase64 = env.KEYLEDGER_SEAL_KEY || undefined;
  if (sealKeyBase64 !== undefined && !(/^[A-Za-z0-9+/]{43}=$/.test(sealKeyBase64) && Buffer.from(sealKeyBase64, 'base64').length === 32)) {
    problems.push('KEYLEDGER_SEAL_KEY must be a 32-byte Ed25519 seed in standard base64 (44 characters)');
  }

  const region = env.KEYLEDGER_REGION || 'us-east-1';
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) {
    problems.push(`KEYLEDGER_REGION must look like an AWS region (e.g. us-east-1), got '${region}'`);
  }

  const logLevel = (env.KEYLEDGER_LOG_LEVEL || 'info') as Config['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`KEYLEDGER_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got '${String(logLevel)}'`);
  }

  const groupCommitText = env.KEYLEDGER_GROUP_COMMIT || 'on';
  if (groupCommitText !== 'on' && groupCommitText !== 'off') problems.push(`KEYLEDGER_GROUP_COMMIT must be on or off, got '${groupCommitText}'`);

  const tls = tlsFilesFrom({ cert: env.KEYLEDGER_TLS_CERT, key: env.KEYLEDGER_TLS_KEY }, { cert: 'KEYLEDGER_TLS_CERT', key: 'KEYLEDGER_TLS_KEY' }, problems);

  const quotas = quotaSettingsFrom(env, problems);
  const subscriptions = {
    perPrincipal: positiveInteger(env, 'KEYLEDGER_AUDIT_TAILS_PER_PRINCIPAL', DEFAULT_SUBSCRIPTION_LIMITS.perPrincipal, problems),
    perProcess: positiveInteger(env, 'KEYLEDGER_AUDIT_TAILS', DEFAULT_SUBSCRIPTION_LIMITS.perProcess, problems),
  };

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    dataDir,
    host,
    port,
    databaseUrl,
    logins,
    rootKeyBase64,
    rootKeyFile: resolve(env.KEYLEDGER_ROOT_KEY_FILE || `${dataDir}/root-key`),
    sealKeyBase64,
    sealKeyFile: resolve(dirname(resolve(env.KEYLEDGER_ROOT_KEY_FILE || `${dataDir}/root-key`)), 'seal-key'),
    checkpointDir: resolve(env.KEYLEDGER_CHECKPOINT_DIR || `${dataDir}/checkpoints`),
    region,
    logLevel,
    groupCommit: groupCommitText !== 'off',
    tls,
    quotas,
    subscriptions,
  };
}

/**
 * KEYLEDGER_SERVICE_DATABASE_URL and KEYLEDGER_JOB_QUEUE_DATABASE_URL, both or
 * neither; each must log in as its own login (`keyledger migrate
 * --print-logins` prints both), never as the owner.
 */
function loginsFrom(env: NodeJS.ProcessEnv, problems: string[]): ServiceLogins | undefined {
  const service = env.KEYLEDGER_SERVICE_DATABASE_URL || undefined;
  const jobQueue = env.KEYLEDGER_JOB_QUEUE_DATABASE_URL || undefined;
  if (service === undefined && jobQueue === undefined) return undefined;
  if (service === undefined || jobQueue === undefined) {
    problems.push(
      `KEYLEDGER_SERVICE_DATABASE_URL and KEYLEDGER_JOB_QUEUE_DATABASE_URL go together: ` +
        `${service === undefined ? 'KEYLEDGER_SERVICE_DATABASE_URL' : 'KEYLEDGER_JOB_QUEUE_DATABASE_URL'} is missing`,
    );
    return undefined;
  }
  const valid = (name: string, url: string, login: string): boolean => {
    let parsed: URL | undefined;
    try {
      parsed = /^postgres(ql)?:\/\//.test(url) ? new URL(url) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!parsed) problems.push(`${name} must be a postgres:// or postgresql:// URL`);
    else if (decodeURIComponent(parsed.username) !== login || parsed.password === '') {
      problems.push(
        `${name} must log in as ${login} with its password (keyledger migrate --print-logins prints it), not as '${decodeURIComponent(parsed.username)}'`,
      );
    } else return true;
    return false;
  };
  const ok = [valid('KEYLEDGER_SERVICE_DATABASE_URL', service, SERVICE_LOGIN), valid('KEYLEDGER_JOB_QUEUE_DATABASE_URL', jobQueue, JOB_QUEUE_LOGIN)];
  return ok.every(Boolean) ? { service, jobQueue } : undefined;
}

/** A whole number from 1 to 1,000,000 from `env[name]`, or `fallback` when unset; pushes a problem naming it otherwise. */
function positiveInteger(env: NodeJS.ProcessEnv, name: string, fallback: number, problems: string[]): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!/^\d{1,7}$/.test(text) || n < 1 || n > 1_000_000) {
    problems.push(`${name} must be a whole number from 1 to 1000000, got '${text.slice(0, 40)}'`);
    return fallback;
  }
  return n;
}

/**
 * The TLS file pair from two settings (the environment, or `serve`'s flags),
 * both or neither; pushes a problem naming the one that is missing.
 *
 * @example
 * const tls = tlsFilesFrom({ cert: values['tls-cert'], key: values['tls-key'] }, { cert: '--tls-cert', key: '--tls-key' }, problems);
 */
export function tlsFilesFrom(
  paths: { cert: string | undefined; key: string | undefined },
  names: { cert: string; key: string },
  problems: string[],
): TlsFiles | undefined {
  const cert = paths.cert || undefined;
  const key = paths.key || undefined;
  if (!cert && !key) return undefined;
  if (!cert || !key) {
    problems.push(
      `${cert ? names.cert : names.key} is set but ${cert ? names.key : names.cert} is not: give both the certificate and its private key (PEM files)`,
    );
    return undefined;
  }
  return { certFile: resolve(cert), keyFile: resolve(key), source: names };
}

/** PEM contents, ready for `https.createServer`. */
export interface TlsCredentials {
  cert: string;
  key: string;
}

/**
 * Reads the certificate and key files and checks them: each one readable and
 * PEM, the certificate not expired, the key the certificate's. Throws a
 * ConfigError naming each bad file by the setting it came from.
 *
 * @example
 * const credentials = config.tls && readTlsFiles(config.tls);
 */
export function readTlsFiles(tls: TlsFiles, now = new Date()): TlsCredentials {
  const problems: string[] = [];
  const read = (path: string, name: string): string | undefined => {
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      problems.push(`${name}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      return undefined;
    }
  };
  const certText = read(tls.certFile, tls.source.cert);
  const keyText = read(tls.keyFile, tls.source.key);
  let certificate: X509Certificate | undefined;
  if (certText !== undefined) {
    try {
      certificate = new X509Certificate(certText);
      if (new Date(certificate.validTo).getTime() < now.getTime()) {
        problems.push(`${tls.source.cert}: the certificate in ${tls.certFile} expired on ${new Date(certificate.validTo).toISOString()}`);
      }
    } catch {
      problems.push(`${tls.source.cert}: ${tls.certFile} does not hold a PEM certificate (-----BEGIN CERTIFICATE-----)`);
    }
  }
  if (keyText !== undefined) {
    try {
      const privateKey = createPrivateKey(keyText);
      if (certificate && !certificate.checkPrivateKey(privateKey)) {
        problems.push(`${tls.source.key}: the private key in ${tls.keyFile} does not belong to the certificate in ${tls.certFile}`);
      }
    } catch {
      problems.push(`${tls.source.key}: ${tls.keyFile} does not hold an unencrypted PEM private key`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { cert: certText!, key: keyText! };
}
