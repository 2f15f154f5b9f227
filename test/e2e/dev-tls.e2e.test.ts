import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOptional } from '../../src/store/embedded-postgres.ts';
import { freePort } from '../../src/store/free-port.ts';

/**
 * `keyledger dev --tls` as a user runs it: a fresh data dir, a self-signed
 * certificate made on first start and printed as the file to trust, HTTPS for
 * /healthz and GraphQL to clients trusting that file (Node, and Python's ssl
 * with strict X.509 checks as botocore and the AWS CLI use it), and the same
 * certificate on the next start.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(REPO, 'src/cli/main.ts');
const run = promisify(execFile);
let root: string;
let dataDir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'keyledger-dev-tls-'));
  // As root, Postgres runs as `postgres`, which must pass through to the data dir.
  await chmod(root, 0o711);
  dataDir = join(root, 'data');
});

afterAll(async () => {
  if (!root) return;
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  const pid = Number((await readOptional(join(dataDir, 'postgres', 'postmaster.pid')).catch(() => undefined))?.split('\n')[0]);
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      // gone
    }
  }
  await rm(root, { recursive: true, force: true });
});

async function startDevTls(): Promise<{ child: ChildProcess; stdout: () => string; url: string; exited: Promise<number | null> }> {
  const env: NodeJS.ProcessEnv = { ...process.env, KEYLEDGER_DATA_DIR: dataDir, KEYLEDGER_PORT: String(await freePort()), KEYLEDGER_LOG_LEVEL: 'warn' };
  for (const name of [
    'DATABASE_URL',
    'KEYLEDGER_ROOT_KEY',
    'KEYLEDGER_ROOT_KEY_FILE',
    'KEYLEDGER_PG_PORT',
    'KEYLEDGER_HOST',
    'KEYLEDGER_TLS_CERT',
    'KEYLEDGER_TLS_KEY',
  ])
    delete env[name];
  const child = spawn(process.execPath, [MAIN, 'dev', '--tls'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let all = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    all += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => (all += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + 90_000;
  for (;;) {
    const match = /GraphQL\s+(\S+)/.exec(out);
    if (match && out.includes('Press Ctrl-C')) return { child, stdout: () => out, url: match[1]!, exited };
    if (done || Date.now() > deadline) throw new Error(`keyledger dev --tls did not get ready:\n${all}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function https(
  url: string,
  ca: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: init.method ?? 'GET', headers: init.headers, ca, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end(init.body);
  });
}

async function python3(): Promise<string | undefined> {
  try {
    await run('python3', ['-c', 'import ssl']);
    return 'python3';
  } catch {
    return undefined;
  }
}

describe('keyledger dev --tls', () => {
  let certFile: string;
  let firstCert: string;

  it('makes a self-signed certificate, prints the file to trust, and serves HTTPS to clients trusting it', { timeout: 150_000 }, async () => {
    const dev = await startDevTls();
    certFile = join(dataDir, 'tls', 'cert.pem');
    expect(dev.url).toMatch(/^https:\/\/localhost:\d+\/graphql$/);
    expect(dev.stdout()).toContain(`TLS          self-signed certificate ${certFile} (new)`);
    expect(dev.stdout()).toContain(`aws --ca-bundle ${certFile}`);
    expect(dev.stdout()).toContain(`AWS_CA_BUNDLE=${certFile}`);
    expect((await stat(join(dataDir, 'tls', 'key.pem'))).mode & 0o777).toBe(0o600);
    firstCert = await readFile(certFile, 'utf8');

    const base = dev.url.replace(/\/graphql$/, '');
    expect(await https(`${base}/healthz`, firstCert)).toEqual({ status: 200, body: 'ok\n' });
    const credentials = JSON.parse(await readFile(join(dataDir, 'admin-credentials.json'), 'utf8')) as { accessKeyId: string; secretAccessKey: string };
    const auth = `Basic ${Buffer.from(`${credentials.accessKeyId}:${credentials.secretAccessKey}`).toString('base64')}`;
    const listed = await https(dev.url, firstCert, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: auth },
      body: JSON.stringify({ query: '{ listKeys { keys { keyId } } }' }),
    });
    expect(listed.status).toBe(200);
    expect(JSON.parse(listed.body)).toEqual({
      data: { listKeys: { keys: [] } },
      extensions: { requestId: expect.any(String), requestIds: { listKeys: expect.any(String) } },
    });

    // Python's ssl, as botocore (and so `aws --ca-bundle`) uses it, with the strict checks Python 3.13 turns on.
    const python = await python3();
    if (python) {
      const script = [
        'import ssl, sys, urllib.request',
        'ctx = ssl.create_default_context(cafile=sys.argv[1])',
        'ctx.verify_flags |= ssl.VERIFY_X509_STRICT',
        'print(urllib.request.urlopen(sys.argv[2], context=ctx).read().decode(), end="")',
      ].join('\n');
      const { stdout } = await run(python, ['-c', script, certFile, `${base}/healthz`]);
      expect(stdout).toBe('ok\n');
    } else {
      console.warn("python3 not found: the check with Python's ssl is skipped");
    }

    dev.child.kill('SIGINT');
    expect(await dev.exited).toBe(0);
  });

  it('reuses the certificate on the next start', { timeout: 150_000 }, async () => {
    expect(firstCert, 'needs the first start').toBeDefined();
    const dev = await startDevTls();
    expect(dev.stdout()).toContain(`TLS          self-signed certificate ${certFile}\n`);
    expect(dev.stdout()).not.toContain('(new)');
    expect(await readFile(certFile, 'utf8')).toBe(firstCert);
    expect((await https(`${dev.url.replace(/\/graphql$/, '')}/healthz`, firstCert)).status).toBe(200);
    dev.child.kill('SIGINT');
    expect(await dev.exited).toBe(0);
  });
});
