import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type SecureVersion } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGraphQLHandler } from '../../src/api/graphql/yoga.ts';
import { startHttpServer, type RunningServer } from '../../src/api/http-server.ts';
import { createKeyledger } from '../../src/app.ts';
import { ensureDevCertificate, isLoopbackHost } from '../../src/cli/server-tls.ts';
import { systemClock } from '../../src/clock.ts';
import { rootKeyFromBytes } from '../../src/crypto/root-key.ts';
import { createLogger } from '../../src/logger.ts';
import { ADMINISTRATOR_ACCESS } from '../../src/service/identity-service.ts';
import { freePort } from '../../src/store/free-port.ts';
import { basicAuth, createTestApp, type TestApp } from '../support/app.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * HTTPS: `keyledger serve --tls-cert/--tls-key` as a child process (TLS 1.2 at
 * least, the certificate made by `dev --tls`'s generator), its refusals (plain
 * HTTP beyond loopback, bad certificate settings), and the HTTP server in
 * process: TLS, and GraphiQL served without any other host.
 */

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const rootKeyBytes = randomBytes(32);
let root: string;
let db: TestDatabase;
let cert: { certFile: string; keyFile: string; ca: string };
const children: ChildProcess[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'keyledger-tls-'));
  db = await createTestDatabase();
  const made = await ensureDevCertificate(join(root, 'dev-data'));
  cert = { certFile: made.files.certFile, keyFile: made.files.keyFile, ca: made.credentials.cert };
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await db?.drop();
  if (root) await rm(root, { recursive: true, force: true });
});

interface Cli {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function keyledger(args: string[], env: Record<string, string | undefined>): Cli {
  const full: NodeJS.ProcessEnv = { ...process.env, KEYLEDGER_LOG_LEVEL: 'warn', KEYLEDGER_DATA_DIR: join(root, 'data'), ...env };
  for (const name of ['KEYLEDGER_TLS_CERT', 'KEYLEDGER_TLS_KEY', 'KEYLEDGER_HOST', 'KEYLEDGER_PG_PORT', 'KEYLEDGER_ROOT_KEY_FILE']) {
    if (!(name in env)) delete full[name];
  }
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete full[name];
  const child = spawn(process.execPath, [MAIN, ...args], { env: full, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let all = '';
  child.stdout!.on('data', (c: Buffer) => (all += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (all += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => all, exited };
}

async function runToEnd(args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; output: string }> {
  const cli = keyledger(args, env);
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), 30_000);
  const code = await cli.exited;
  clearTimeout(timer);
  return { code, output: cli.output() };
}

async function waitForOutput(cli: Cli, pattern: RegExp, timeoutMs = 60_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  let done = false;
  void cli.exited.then(() => (done = true));
  for (;;) {
    const match = cli.output().match(pattern);
    if (match) return match;
    if (done || Date.now() > deadline) throw new Error(`no ${pattern} in:\n${cli.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface HttpsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** An HTTPS request that trusts `ca` alone (Node's fetch cannot be given a CA). */
function https(url: string, options: { ca?: string; method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: options.method ?? 'GET', headers: options.headers, ca: options.ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end(options.body);
  });
}

/** A TLS handshake limited to [min, max]; resolves with the protocol agreed, or the error code. */
function handshake(port: number, versions: { min: SecureVersion; max: SecureVersion }): Promise<{ protocol: string | null } | { error: string }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: cert.ca,
      minVersion: versions.min,
      maxVersion: versions.max,
      // Security level 0: this client may offer TLS 1.0/1.1 at all, so a refusal is the server's.
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    socket.once('secureConnect', () => {
      resolve({ protocol: socket.getProtocol() });
      socket.destroy();
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
  });
}

describe('keyledger serve --tls-cert --tls-key', () => {
  it('serves /healthz and GraphQL over HTTPS to a client trusting the certificate, TLS 1.2 and up only', { timeout: 90_000 }, async () => {
    const app = createKeyledger({
      db: db.app,
      rootKey: rootKeyFromBytes(rootKeyBytes),
      clock: systemClock,
      logger: createLogger('silent'),
      region: 'us-east-1',
    });
    const op = () => ({ requestId: crypto.randomUUID(), invokedBy: 'keyledger-test' });
    const { accountId } = await app.identity.createAccount(op(), { name: 'tls' });
    const { principalArn } = await app.identity.createPrincipal(op(), { accountId, type: 'user', name: 'admin' });
    await app.identity.putPrincipalPolicy(op(), { principalArn, policyName: 'admin', policyDocument: ADMINISTRATOR_ACCESS });
    const key = await app.identity.createAccessKey(op(), { principalArn });

    const port = await freePort();
    const cli = keyledger(['serve', '--tls-cert', cert.certFile, '--tls-key', cert.keyFile], {
      DATABASE_URL: db.url,
      KEYLEDGER_ROOT_KEY: rootKeyBytes.toString('base64'),
      KEYLEDGER_PORT: String(port),
    });
    const [, url] = await waitForOutput(cli, /GraphQL\s+(\S+)/);
    expect(url).toBe(`https://localhost:${port}/graphql`);
    expect(cli.output()).toContain(`TLS          certificate ${cert.certFile}`);

    const health = await https(`https://localhost:${port}/healthz`, { ca: cert.ca });
    expect(health.status).toBe(200);
    expect(health.body.toString()).toBe('ok\n');

    const created = await https(url!, {
      ca: cert.ca,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basicAuth(key) },
      body: JSON.stringify({ query: 'mutation { createKey(input: { description: "over TLS" }) { keyMetadata { keyState } } }' }),
    });
    expect(created.status).toBe(200);
    expect(JSON.parse(created.body.toString())).toEqual({
      data: { createKey: { keyMetadata: { keyState: 'Enabled' } } },
      extensions: { requestId: expect.any(String), requestIds: { createKey: expect.any(String) } },
    });

    // The client really verifies: without the certificate as CA the handshake fails.
    await expect(https(`https://localhost:${port}/healthz`)).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    // Plain HTTP on the TLS port gets no answer from keyledger.
    expect(
      await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.status,
        () => 'no answer',
      ),
    ).not.toBe(200);

    expect(await handshake(port, { min: 'TLSv1', max: 'TLSv1.1' })).toEqual({ error: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
    expect(await handshake(port, { min: 'TLSv1', max: 'TLSv1' })).toEqual({ error: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
    expect(await handshake(port, { min: 'TLSv1.2', max: 'TLSv1.2' })).toEqual({ protocol: 'TLSv1.2' });
    expect(await handshake(port, { min: 'TLSv1.3', max: 'TLSv1.3' })).toEqual({ protocol: 'TLSv1.3' });

    cli.child.kill('SIGINT');
    expect(await cli.exited).toBe(0);
  });
});

// Each spawns keyledger, whose start alone takes seconds on a loaded machine.
describe('refusals, before anything starts', { timeout: 60_000 }, () => {
  // Nothing answers here: a command that got as far as the database would fail differently.
  const nowhere = 'postgresql://nobody:nothing@127.0.0.1:1/none';

  it('serve refuses plain HTTP on a non-loopback address, exit 2, naming the way out', async () => {
    const r = await runToEnd(['serve'], { KEYLEDGER_HOST: '0.0.0.0', DATABASE_URL: nowhere, KEYLEDGER_ROOT_KEY: rootKeyBytes.toString('base64') });
    expect(r.code).toBe(2);
    expect(r.output).toContain('keyledger serve: refusing to serve plain HTTP on 0.0.0.0, which is not a loopback address');
    expect(r.output).toMatch(/--tls-cert FILE --tls-key FILE, or KEYLEDGER_TLS_CERT and KEYLEDGER_TLS_KEY/);
    expect(r.output).toContain('--insecure-http');
    expect(r.output).toContain('Nothing was started');
    expect(r.output).not.toContain('ready');
  });

  it('dev refuses it too, for an IPv6 wildcard', async () => {
    const r = await runToEnd(['dev'], { KEYLEDGER_HOST: '::', DATABASE_URL: nowhere });
    expect(r.code).toBe(2);
    expect(r.output).toContain('refusing to serve plain HTTP on ::');
  });

  it('--insecure-http lets serve past the check (here it then stops at the missing root key, before binding)', async () => {
    const r = await runToEnd(['serve', '--insecure-http'], { KEYLEDGER_HOST: '0.0.0.0', DATABASE_URL: nowhere, KEYLEDGER_ROOT_KEY: undefined });
    expect(r.code).toBe(1);
    expect(r.output).not.toContain('refusing');
    expect(r.output).toContain('no root key');
  });

  it('a non-loopback address with a certificate passes the check', async () => {
    const r = await runToEnd(['serve', '--tls-cert', cert.certFile, '--tls-key', cert.keyFile], {
      KEYLEDGER_HOST: '0.0.0.0',
      DATABASE_URL: nowhere,
      KEYLEDGER_ROOT_KEY: undefined,
    });
    expect(r.code).toBe(1);
    expect(r.output).not.toContain('refusing');
    expect(r.output).toContain('no root key');
  });

  it("names each bad TLS setting: one of the pair missing, unreadable, not PEM, a key that is not the certificate's", { timeout: 120_000 }, async () => {
    const half = await runToEnd(['serve'], { KEYLEDGER_TLS_CERT: cert.certFile, DATABASE_URL: nowhere });
    expect(half.code).toBe(2);
    expect(half.output).toContain('invalid configuration');
    expect(half.output).toContain('KEYLEDGER_TLS_CERT is set but KEYLEDGER_TLS_KEY is not');

    const notPem = join(root, 'not-a-certificate.pem');
    await writeFile(notPem, 'hello\n');
    const bad = await runToEnd(['serve', '--tls-cert', notPem, '--tls-key', join(root, 'missing-key.pem')], { DATABASE_URL: nowhere });
    expect(bad.code).toBe(2);
    expect(bad.output).toContain(`--tls-cert: ${notPem} does not hold a PEM certificate`);
    expect(bad.output).toContain(`--tls-key: cannot read ${join(root, 'missing-key.pem')} (ENOENT)`);

    const other = await ensureDevCertificate(join(root, 'other-dev-data'));
    const mismatched = await runToEnd(['serve'], { KEYLEDGER_TLS_CERT: cert.certFile, KEYLEDGER_TLS_KEY: other.files.keyFile, DATABASE_URL: nowhere });
    expect(mismatched.code).toBe(2);
    expect(mismatched.output).toContain(`KEYLEDGER_TLS_KEY: the private key in ${other.files.keyFile} does not belong to the certificate in ${cert.certFile}`);

    const flagHalf = await runToEnd(['serve', '--tls-key', cert.keyFile], { DATABASE_URL: nowhere });
    expect(flagHalf.code).toBe(2);
    expect(flagHalf.output).toContain('--tls-key is set but --tls-cert is not');
  });

  it("--tls is dev's alone, and not with a certificate of your own", { timeout: 120_000 }, async () => {
    const serve = await runToEnd(['serve', '--tls'], { DATABASE_URL: nowhere });
    expect(serve.code).toBe(2);
    expect(serve.output).toContain("Unknown option '--tls'");
    const both = await runToEnd(['dev', '--tls', '--tls-cert', cert.certFile, '--tls-key', cert.keyFile], { DATABASE_URL: nowhere });
    expect(both.code).toBe(2);
    expect(both.output).toContain('--tls makes a self-signed certificate, but one is already given (--tls-cert)');
  });
});

describe('the dev certificate', () => {
  it('is for localhost, 127.0.0.1 and ::1, its key 0600, and is reused', async () => {
    const x509 = new X509Certificate(cert.ca);
    expect(x509.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(x509.checkHost('localhost')).toBe('localhost');
    expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x509.checkIP('::1')).toBe('::1');
    expect(x509.ca).toBe(false);
    expect(new Date(x509.validTo).getTime()).toBeGreaterThan(Date.now() + 365 * 86_400_000);
    expect((await stat(cert.keyFile)).mode & 0o777).toBe(0o600);
    expect((await stat(cert.certFile)).mode & 0o777).toBe(0o644);

    const again = await ensureDevCertificate(join(root, 'dev-data'));
    expect(again.created).toBe(false);
    expect(readFileSync(again.files.certFile, 'utf8')).toBe(cert.ca);
  });

  it('is made again when it is about to expire', async () => {
    const dir = join(root, 'expiring-dev-data');
    const first = await ensureDevCertificate(dir);
    const later = new Date(new Date(new X509Certificate(first.credentials.cert).validTo).getTime() - 3_600_000);
    const renewed = await ensureDevCertificate(dir, later);
    expect(renewed.created).toBe(true);
    expect(renewed.credentials.cert).not.toBe(first.credentials.cert);
  });

  it('says clearly when openssl is not there', async () => {
    const path = process.env.PATH;
    process.env.PATH = join(root, 'empty-bin');
    try {
      await expect(ensureDevCertificate(join(root, 'no-openssl'))).rejects.toThrow(
        /`openssl` command, which was not found on PATH: install OpenSSL .* or give a certificate with --tls-cert FILE --tls-key FILE/,
      );
    } finally {
      process.env.PATH = path;
    }
  });

  it('treats only loopback addresses as loopback', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1'])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.10', '::ffff:10.0.0.1', 'example.com', 'localhost.example.com', ''])
      expect(isLoopbackHost(host), host).toBe(false);
  });
});

describe('the HTTP server in process', () => {
  let t: TestApp;
  let server: RunningServer;

  beforeAll(async () => {
    t = await createTestApp();
    server = await startHttpServer(
      { graphql: createGraphQLHandler(t.app) },
      { host: '127.0.0.1', port: 0, tls: { cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) } },
    );
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('gives https:// URLs and answers GraphQL over TLS', async () => {
    expect(server.url).toMatch(/^https:\/\/localhost:\d+\/graphql$/);
    expect(server.awsUrl).toBe(server.url.replace(/\/graphql$/, ''));
    const admin = await t.newAccount();
    const r = await https(server.url, {
      ca: cert.ca,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basicAuth(admin) },
      body: JSON.stringify({ query: '{ listKeys { keys { keyId } } }' }),
    });
    expect(JSON.parse(r.body.toString())).toEqual({
      data: { listKeys: { keys: [] } },
      extensions: { requestId: expect.any(String), requestIds: { listKeys: expect.any(String) } },
    });
  });

  it('serves GraphiQL whose page names no other host, and every asset it names', { timeout: 60_000 }, async () => {
    const page = await https(server.url, { ca: cert.ca, headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const html = page.body.toString();
    expect(html).toContain('<title>keyledger</title>');
    expect(html).toContain('YogaGraphiQL.renderYogaGraphiQL');
    // No absolute or protocol-relative URL at all: nothing from a CDN.
    expect(html.match(/(?:[a-z]+:)?\/\/[\w.-]+/gi) ?? []).toEqual([]);
    expect(html).not.toMatch(/unpkg|jsdelivr|cdn/i);

    const referenced = [...html.matchAll(/(?:src|href)="([^"]+)"/g), ...html.matchAll(/"(\/graphiql\/[^"]+)"/g)].map((m) => m[1]!);
    const assets = [...new Set(referenced)].sort();
    expect(assets).toEqual([
      '/graphiql/editor.worker.js',
      '/graphiql/favicon.ico',
      '/graphiql/graphiql.css',
      '/graphiql/graphql.worker.js',
      '/graphiql/json.worker.js',
      '/graphiql/yoga-graphiql.js',
    ]);
    const base = server.url.replace(/\/graphql$/, '');
    for (const path of assets) {
      const r = await https(`${base}${path}`, { ca: cert.ca });
      expect(r.status, path).toBe(200);
      expect(r.headers['content-type'], path).toMatch(path.endsWith('.js') ? /^text\/javascript/ : path.endsWith('.css') ? /^text\/css/ : /^image\/x-icon/);
      expect(r.body.length, path).toBeGreaterThan(10_000);
    }
    const script = await https(`${base}/graphiql/yoga-graphiql.js`, { ca: cert.ca, headers: { 'accept-encoding': 'gzip' } });
    expect(script.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(script.body).toString()).toContain('renderYogaGraphiQL');
    // The bundle loads nothing from elsewhere either.
    expect(gunzipSync(script.body).toString()).not.toMatch(/unpkg\.com|cdn\.jsdelivr|cdnjs/);
    const revalidated = await https(`${base}/graphiql/yoga-graphiql.js`, { ca: cert.ca, headers: { 'if-none-match': String(script.headers.etag) } });
    expect(revalidated.status).toBe(304);
    expect((await https(`${base}/graphiql/nothing-here.js`, { ca: cert.ca })).status).toBe(404);
    expect((await https(`${base}/graphiql/yoga-graphiql.js`, { ca: cert.ca, method: 'POST' })).status).toBe(405);
  });
});
