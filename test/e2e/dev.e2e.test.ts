import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOptional } from '../../src/store/embedded-postgres.ts';
import { freePort } from '../../src/store/free-port.ts';

/**
 * `keyledger dev` as a user runs it: a child process on the embedded Postgres
 * (DATABASE_URL unset) in a fresh data dir, driven over real HTTP. Then a
 * restart on the same dir, and `replay --verify` against what it left.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(REPO, 'src/cli/main.ts');

interface Credentials {
  accountId: string;
  principalArn: string;
  accessKeyId: string;
  secretAccessKey: string;
}

interface Cli {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  stdout(): string;
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let root: string;
let dataDir: string;
const children: ChildProcess[] = [];
/** Everything every keyledger process printed, to check no secret ever appears. */
const transcripts: (() => string)[] = [];

function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, KEYLEDGER_DATA_DIR: dataDir, KEYLEDGER_LOG_LEVEL: 'info', ...extra };
  // The embedded path, with everything generated under the data dir.
  for (const name of ['DATABASE_URL', 'KEYLEDGER_ROOT_KEY', 'KEYLEDGER_ROOT_KEY_FILE', 'KEYLEDGER_PG_PORT', 'KEYLEDGER_HOST']) delete env[name];
  return env;
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Cli {
  // process.execPath: vitest runs under the pinned Node 24, which strips the types.
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let all = '';
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    all += chunk.toString();
    out += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    all += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  transcripts.push(() => all);
  return {
    child,
    output: () => all,
    stdout: () => out,
    exited,
    async waitForOutput(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let done = false;
      void exited.then(() => (done = true));
      for (;;) {
        const match = out.match(pattern);
        if (match) return match;
        if (done) throw new Error(`keyledger ${args.join(' ')} exited before printing ${pattern}:\n${all}`);
        if (Date.now() > deadline) throw new Error(`keyledger ${args.join(' ')} printed no ${pattern} within ${timeoutMs} ms:\n${all}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

async function runToEnd(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; output: string }> {
  const cli = runCli(args, env);
  const timer = setTimeout(() => cli.child.kill('SIGKILL'), timeoutMs);
  const { code } = await cli.exited;
  clearTimeout(timer);
  return { code, stdout: cli.stdout(), output: cli.output() };
}

async function startDev(): Promise<{ cli: Cli; url: string }> {
  const cli = runCli(['dev'], cliEnv({ KEYLEDGER_PORT: String(await freePort()) }));
  const [, url] = await cli.waitForOutput(/GraphQL\s+(http:\/\/\S+\/graphql)/, 90_000);
  return { cli, url: url! };
}

/** SIGINT, as Ctrl-C sends it; resolves with the exit code and how long it took. */
async function interrupt(cli: Cli): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  cli.child.kill('SIGINT');
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no exit within 10 s of SIGINT:\n${cli.output()}`)), 10_000));
  const { code } = await Promise.race([cli.exited, timeout]);
  return { code, ms: Date.now() - started };
}

const basic = (c: Pick<Credentials, 'accessKeyId' | 'secretAccessKey'>) => `Basic ${Buffer.from(`${c.accessKeyId}:${c.secretAccessKey}`).toString('base64')}`;

interface GqlResponse {
  status: number;
  data: any;
  errors: { message: string; extensions?: { code?: string; requestId?: string } }[] | undefined;
}

async function gql(url: string, auth: string, query: string, variables?: Record<string, unknown>): Promise<GqlResponse> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: auth },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: unknown; errors?: GqlResponse['errors'] };
  return { status: response.status, data: body.data, errors: body.errors };
}

/** Stops whatever a failed test left running: the children, and the embedded Postgres they started. */
async function killLeftovers(): Promise<void> {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  const pidFile = await readOptional(join(dataDir, 'postgres', 'postmaster.pid')).catch(() => undefined);
  const pid = Number(pidFile?.split('\n')[0]);
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGINT');
      for (let i = 0; i < 100; i++) {
        process.kill(pid, 0);
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch {
      // gone
    }
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'keyledger-e2e-'));
  // As root, Postgres runs as `postgres`, which must pass through to the data dir.
  await chmod(root, 0o711);
  dataDir = join(root, 'data');
});

afterAll(async () => {
  if (!root) return;
  await killLeftovers();
  await rm(root, { recursive: true, force: true });
});

describe('keyledger dev', () => {
  let credentials: Credentials;
  let keyId: string;
  const alias = 'alias/e2e-orders';

  it('starts on an empty data dir, bootstraps an admin, serves GraphQL with audit, and stops on SIGINT', { timeout: 120_000 }, async () => {
    const { cli, url } = await startDev();

    // The files it made: secrets 0600, the data dir passable but not listable.
    expect((await stat(dataDir)).mode & 0o777).toBe(0o711);
    const credentialsFile = join(dataDir, 'admin-credentials.json');
    expect((await stat(credentialsFile)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dataDir, 'database-url'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dataDir, 'root-key'))).mode & 0o777).toBe(0o600);
    credentials = JSON.parse(await readFile(credentialsFile, 'utf8')) as Credentials;
    expect(Object.keys(credentials).sort()).toEqual(['accessKeyId', 'accountId', 'principalArn', 'secretAccessKey']);
    expect(credentials.accountId).toMatch(/^\d{12}$/);
    expect(credentials.principalArn).toBe(`arn:aws:iam::${credentials.accountId}:user/admin`);
    expect(credentials.accessKeyId).toMatch(/^AKIA[A-Z2-7]{16}$/);
    expect(credentials.secretAccessKey.length).toBeGreaterThanOrEqual(40);
    const databaseUrl = (await readFile(join(dataDir, 'database-url'), 'utf8')).trim();
    // Over the Unix socket in the data dir (its path is short enough here).
    expect(databaseUrl).toMatch(/^postgresql:\/\/postgres:[^@]+@[^:]+:\d+\/keyledger$/);
    expect(decodeURIComponent(new URL(databaseUrl).hostname)).toBe(join(dataDir, 'postgres-socket'));
    expect((await stat(join(dataDir, 'postgres-socket'))).mode & 0o777).toBe(0o700);
    expect(cli.stdout()).toContain(credentialsFile);
    expect(cli.stdout()).toContain(join(dataDir, 'database-url'));

    const auth = basic(credentials);
    const created = await gql(url, auth, `mutation { createKey(input: { description: "e2e orders" }) { keyMetadata { keyId arn keyState } } }`);
    expect(created.errors).toBeUndefined();
    expect(created.data.createKey.keyMetadata.keyState).toBe('Enabled');
    keyId = created.data.createKey.keyMetadata.keyId;

    const disabled = await gql(url, auth, `mutation($k: String!) { disableKey(input: { keyId: $k }) { requestId } }`, { k: keyId });
    expect(disabled.errors).toBeUndefined();
    const aliased = await gql(url, auth, `mutation($a: String!, $k: String!) { createAlias(input: { aliasName: $a, targetKeyId: $k }) { requestId } }`, {
      a: alias,
      k: keyId,
    });
    expect(aliased.errors).toBeUndefined();

    const missing = await gql(url, auth, `query { describeKey(input: { keyId: "alias/no-such-alias" }) { keyMetadata { keyId } } }`);
    expect(missing.data?.describeKey ?? null).toBeNull();
    expect(missing.errors?.[0]?.extensions?.code).toBe('NotFoundException');
    const failedRequestId = missing.errors?.[0]?.extensions?.requestId;
    expect(failedRequestId).toMatch(/^[0-9a-f-]{36}$/);

    // Wrong secret: HTTP 401, no data, and (being audit-first) a record of the attempt.
    const rejected = await gql(
      url,
      basic({ accessKeyId: credentials.accessKeyId, secretAccessKey: 'not-the-secret' }),
      `query { listKeys { keys { keyId } } }`,
    );
    expect(rejected.status).toBe(401);
    expect(rejected.data ?? null).toBeNull();
    expect(rejected.errors?.[0]?.extensions?.code).toBe('InvalidSignatureException');

    const audit = await gql(url, auth, `query { auditEvents(first: 50) { edges { node { eventName outcome errorCode requestId accessKeyId } } } }`);
    expect(audit.errors).toBeUndefined();
    const events = (
      audit.data.auditEvents.edges as {
        node: { eventName: string; outcome: string; errorCode: string | null; requestId: string; accessKeyId: string | null };
      }[]
    ).map((e) => e.node);
    const named = (name: string) => events.filter((e) => e.eventName === name);
    expect(named('CreateKey')).toEqual([expect.objectContaining({ errorCode: null, accessKeyId: credentials.accessKeyId })]);
    expect(named('DisableKey')).toEqual([expect.objectContaining({ errorCode: null, requestId: disabled.data.disableKey.requestId })]);
    expect(named('CreateAlias')).toEqual([expect.objectContaining({ errorCode: null, requestId: aliased.data.createAlias.requestId })]);
    expect(named('DescribeKey')).toEqual([expect.objectContaining({ errorCode: 'NotFoundException', requestId: failedRequestId })]);
    expect(named('DescribeKey')[0]!.outcome).not.toBe(named('CreateKey')[0]!.outcome);
    expect(events.some((e) => e.errorCode === 'InvalidSignatureException')).toBe(true);

    const page = await fetch(url, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect((await page.text()).toLowerCase()).toContain('graphiql');

    const { code, ms } = await interrupt(cli);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    expect(cli.stdout()).toContain('keyledger dev: stopped');
  });

  it('starts again on the same data dir and keeps everything: credentials, keys, aliases', { timeout: 120_000 }, async () => {
    expect(credentials, 'needs the first start').toBeDefined();
    const before = await readFile(join(dataDir, 'admin-credentials.json'), 'utf8');
    const { cli, url } = await startDev();
    expect(cli.stdout()).not.toContain('created account');
    expect(await readFile(join(dataDir, 'admin-credentials.json'), 'utf8')).toBe(before);

    const described = await gql(url, basic(credentials), `query($k: String!) { describeKey(input: { keyId: $k }) { keyMetadata { keyId keyState } } }`, {
      k: alias,
    });
    expect(described.errors).toBeUndefined();
    expect(described.data.describeKey.keyMetadata).toEqual({ keyId, keyState: 'Disabled' });

    // Another command finds the running server through database-url and leaves it running.
    const status = await runToEnd(['worker', '--status'], cliEnv());
    expect(status.code, status.output).toBe(0);
    expect(status.stdout).toMatch(/keyledger-sweep\s+queued \d+/);
    expect(status.stdout).toMatch(/last sweep {3}\d{4}-\d\d-\d\dT/);
    const again = await gql(url, basic(credentials), `query { listKeys { keys { keyId } } }`);
    expect(again.errors).toBeUndefined();

    const { code } = await interrupt(cli);
    expect(code).toBe(0);
  });

  it('replay --verify finds the projections equal to the log', { timeout: 90_000 }, async () => {
    expect(credentials, 'needs the first start').toBeDefined();
    const replay = await runToEnd(['replay', '--verify'], cliEnv());
    expect(replay.code, replay.output).toBe(0);
    expect(replay.stdout).toMatch(/projections match the log \(\d+ events replayed: 1 keys, 1 aliases; \d+ audit records folded for the usage rollups\)/);
    // It started the embedded server itself, so it stopped it again.
    expect(await readOptional(join(dataDir, 'postgres', 'postmaster.pid'))).toBeUndefined();
  });

  it('never printed the access-key secret or the database password', () => {
    expect(credentials, 'needs the first start').toBeDefined();
    const everything = transcripts.map((t) => t()).join('\n');
    expect(everything.length).toBeGreaterThan(0);
    expect(everything).not.toContain(credentials.secretAccessKey);
    return readFile(join(dataDir, 'database-url'), 'utf8').then((url) => {
      const password = decodeURIComponent(new URL(url.trim()).password);
      expect(password.length).toBeGreaterThan(8);
      expect(everything).not.toContain(password);
    });
  });
});
