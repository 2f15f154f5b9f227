import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, readTlsFiles, tlsFilesFrom, type Config, type TlsCredentials, type TlsFiles } from '../config.ts';
import { readOptional } from '../store/embedded-postgres.ts';
import { ensureDataDir } from '../store/locate-database.ts';
import { CliError, UsageError } from './runtime.ts';

/**
 * TLS for `keyledger serve` and `dev`: where the certificate comes from, and
 * the refusal to serve plain HTTP beyond loopback.
 */

/** The options `serve` and `dev` take for TLS (parseArgs shapes); `tls` is dev's only. */
export const SERVER_TLS_OPTIONS = {
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'insecure-http': { type: 'boolean' },
} as const;
export const DEV_TLS_OPTIONS = { ...SERVER_TLS_OPTIONS, tls: { type: 'boolean' } } as const;

export interface ServerTls {
  credentials: TlsCredentials;
  files: TlsFiles;
  /** True for dev's own certificate: clients must be told to trust its file. */
  selfSigned: boolean;
  /** True when this start generated it. */
  created: boolean;
}

/**
 * The certificate to serve with: `--tls-cert`/`--tls-key` (both), else
 * KEYLEDGER_TLS_CERT/KEYLEDGER_TLS_KEY, else (dev --tls) the self-signed one
 * under the data dir, else none. Files are read and checked here, before
 * anything starts; a bad one is a ConfigError naming the flag or variable.
 *
 * @example
 * const tls = await resolveServerTls('serve', values, config);
 */
export async function resolveServerTls(
  mode: 'dev' | 'serve',
  values: { 'tls-cert'?: string; 'tls-key'?: string; tls?: boolean },
  config: Config,
): Promise<ServerTls | undefined> {
  const problems: string[] = [];
  const fromFlags = tlsFilesFrom({ cert: values['tls-cert'], key: values['tls-key'] }, { cert: '--tls-cert', key: '--tls-key' }, problems);
  if (problems.length > 0) throw new UsageError(mode, problems.join('; '));
  const given = fromFlags ?? config.tls;
  if (values.tls && given) {
    throw new UsageError(mode, `--tls makes a self-signed certificate, but one is already given (${given.source.cert}): use one or the other`);
  }
  if (given) return { credentials: readTlsFiles(given), files: given, selfSigned: false, created: false };
  if (mode === 'dev' && values.tls) {
    const { files, credentials, created } = await ensureDevCertificate(config.dataDir);
    return { credentials, files, selfSigned: true, created };
  }
  return undefined;
}

/**
 * True for addresses only this machine can reach: `localhost`, 127.0.0.0/8,
 * ::1 and IPv4-mapped 127.x. Anything else (0.0.0.0, ::, a LAN address, a host
 * name) may be reached from the network.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost') return true;
  if (isIPv4(bare)) return bare.startsWith('127.');
  if (isIPv6(bare)) {
    if (bare === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(bare)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/**
 * Refuses plain HTTP on an address beyond loopback unless `--insecure-http`
 * says so: access keys (HTTP Basic), plaintext and data keys would cross the
 * network in clear. Called before anything starts. Exit code 2.
 */
export function assertBindAllowed(mode: 'dev' | 'serve', host: string, tls: ServerTls | undefined, insecureHttp: boolean): void {
  if (tls || insecureHttp || isLoopbackHost(host)) return;
  throw new CliError(
    `refusing to serve plain HTTP on ${host}, which is not a loopback address: access keys, plaintexts and data keys would cross the network unencrypted. ` +
      'Give a certificate (--tls-cert FILE --tls-key FILE, or KEYLEDGER_TLS_CERT and KEYLEDGER_TLS_KEY), ' +
      `bind to 127.0.0.1 (KEYLEDGER_HOST), or, if a TLS-terminating proxy is in front, say so with \`keyledger ${mode} --insecure-http\`. Nothing was started.`,
    2,
  );
}

const run = promisify(execFile);

/** The names the `dev --tls` certificate is valid for: every way to say "this machine" locally. */
export const DEV_CERTIFICATE_NAMES = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'] as const;

/** How long a generated certificate lasts: 825 days, the longest some clients (macOS) accept for a server certificate. */
const VALID_DAYS = 825;

/** A certificate closer than this to expiry is replaced on start rather than reused. */
const RENEW_BEFORE_MS = 24 * 60 * 60 * 1000;

export function devCertificatePaths(dataDir: string): TlsFiles {
  const dir = join(dataDir, 'tls');
  return { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), source: { cert: 'dev --tls certificate', key: 'dev --tls key' } };
}

/**
 * The self-signed certificate `keyledger dev --tls` serves with: made on first
 * use under `<dataDir>/tls/` (cert.pem 0644, key.pem 0600) with the `openssl`
 * command, reused on later starts, and made again when it is about to expire.
 * Clients trust it by its file: `aws --ca-bundle <certFile>`, AWS_CA_BUNDLE,
 * curl --cacert, NODE_EXTRA_CA_CERTS.
 *
 * @example
 * const { files, credentials, created } = await ensureDevCertificate(config.dataDir);
 */
export async function ensureDevCertificate(dataDir: string, now = new Date()): Promise<{ files: TlsFiles; credentials: TlsCredentials; created: boolean }> {
  const files = devCertificatePaths(dataDir);
  const [cert, key] = await Promise.all([readOptional(files.certFile), readOptional(files.keyFile)]);
  if (cert !== undefined && key !== undefined && !expiresSoon(cert, now)) {
    try {
      return { files, credentials: readTlsFiles(files, now), created: false };
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw new CliError(
        `the dev TLS certificate is unusable (${error.problems.join('; ')}): delete ${files.certFile} and ${files.keyFile} to have new ones made`,
      );
    }
  }
  await generateSelfSigned(files);
  return { files, credentials: readTlsFiles(files, now), created: true };
}

function expiresSoon(pem: string, now: Date): boolean {
  try {
    return new Date(new X509Certificate(pem).validTo).getTime() - now.getTime() < RENEW_BEFORE_MS;
  } catch {
    // Unreadable: readTlsFiles names the problem.
    return false;
  }
}

/**
 * `openssl req -x509` with a config of our own (not the system's openssl.cnf,
 * whose defaults differ between distributions): a P-256 key, CA:FALSE, the
 * loopback names, serverAuth, and subject/authority key identifiers, so strict
 * verifiers (Python 3.13's VERIFY_X509_STRICT) accept it as its own trust anchor.
 * Run with execFile, no shell; written beside the targets, then renamed into place.
 */
async function generateSelfSigned(files: TlsFiles): Promise<void> {
  const dir = join(files.certFile, '..');
  await ensureDataDir(join(dir, '..'));
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const suffix = randomBytes(6).toString('hex');
  const configFile = join(dir, `openssl-${suffix}.cnf`);
  const keyTemporary = `${files.keyFile}.${suffix}.tmp`;
  const certTemporary = `${files.certFile}.${suffix}.tmp`;
  const config = [
    '[req]',
    'distinguished_name = subject',
    'x509_extensions = server',
    'prompt = no',
    '[subject]',
    'CN = keyledger dev (localhost)',
    'O = keyledger',
    '[server]',
    `subjectAltName = ${DEV_CERTIFICATE_NAMES.join(', ')}`,
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature',
    'extendedKeyUsage = serverAuth',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid:always',
    '',
  ].join('\n');
  try {
    await writeFile(configFile, config, { mode: 0o600 });
    // The key file exists, empty and 0600, before openssl writes the key into it.
    await writeFile(keyTemporary, '', { mode: 0o600 });
    await run(
      'openssl',
      [
        'req',
        '-x509',
        '-config',
        configFile,
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-sha256',
        '-days',
        String(VALID_DAYS),
        '-nodes',
        '-keyout',
        keyTemporary,
        '-out',
        certTemporary,
      ],
      { timeout: 30_000 },
    );
    await chmod(keyTemporary, 0o600);
    await chmod(certTemporary, 0o644);
    await rename(keyTemporary, files.keyFile);
    await rename(certTemporary, files.certFile);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && (error as { path?: string }).path === 'openssl') {
      throw new CliError(
        'dev --tls makes its self-signed certificate with the `openssl` command, which was not found on PATH: ' +
          'install OpenSSL (Debian/Ubuntu: apt-get install openssl), or give a certificate with --tls-cert FILE --tls-key FILE',
      );
    }
    const stderr = ((error as { stderr?: string }).stderr ?? '').trim();
    if (stderr || (error as { cmd?: string }).cmd) {
      throw new CliError(`openssl could not make the dev TLS certificate: ${stderr || String(error)}`);
    }
    throw error;
  } finally {
    await Promise.all([configFile, keyTemporary, certTemporary].map((file) => rm(file, { force: true })));
  }
}
