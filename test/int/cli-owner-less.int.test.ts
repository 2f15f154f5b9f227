import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, DecryptCommand, EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyledger } from '../../src/app.ts';
import { systemClock } from '../../src/clock.ts';
import { rootKeyFromBytes } from '../../src/crypto/root-key.ts';
import { createLogger } from '../../src/logger.ts';
import { ADMINISTRATOR_ACCESS } from '../../src/service/identity-service.ts';
import { freePort } from '../../src/store/free-port.ts';
import { JOB_QUEUE_LOGIN, SERVICE_LOGIN } from '../../src/store/service-login.ts';
import { operator } from '../support/app.ts';
import { CLI_MAIN, runKeyledger } from '../support/cli.ts';
import { waitFor } from '../support/concurrency.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * Issue 15: `serve` and `worker` given only the service's and the job queue's
 * logins (KEYLEDGER_SERVICE_DATABASE_URL, KEYLEDGER_JOB_QUEUE_DATABASE_URL, as
 * `migrate --print-logins` prints them) and no DATABASE_URL hold no login that
 * could rewrite the log: every connection they open is one of those two, and
 * they still serve, sweep and refuse a database that is not migrated.
 */

let db: TestDatabase;
let dataDir: string;
const children: ChildProcess[] = [];
const rootKeyBytes = randomBytes(32);
let logins: { service: string; jobQueue: string };

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(join(tmpdir(), 'keyledger-owner-less-'));
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
  await db?.drop();
});

/** The environment of an owner-less process: no DATABASE_URL, an empty data dir (no embedded database to find). */
const ownerLessEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KEYLEDGER_SERVICE_DATABASE_URL: logins.service,
    KEYLEDGER_JOB_QUEUE_DATABASE_URL: logins.jobQueue,
    KEYLEDGER_ROOT_KEY: rootKeyBytes.toString('base64'),
    KEYLEDGER_DATA_DIR: dataDir,
    KEYLEDGER_LOG_LEVEL: 'warn',
    ...extra,
  };
  delete env.DATABASE_URL;
  return env;
};

/** Who the connections of `applicationName` (a prefix) log in as; this file's own pools (keyledger-test-*) aside. */
async function loginsOf(applicationName: string): Promise<string[]> {
  const { rows } = await sql<{ usename: string }>`
    SELECT DISTINCT usename::text AS usename FROM pg_stat_activity
     WHERE datname = current_database() AND application_name LIKE ${`${applicationName}%`}
       AND application_name NOT LIKE 'keyledger-test-%' ORDER BY 1`.execute(db.owner);
  return rows.map((r) => r.usename);
}

function start(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe('keyledger migrate --print-logins', () => {
  it("prints both logins' URLs, neither of them the owner's", async () => {
    const { code, stdout, stderr } = await runKeyledger(['migrate', '--print-logins'], { env: { ...process.env, DATABASE_URL: db.url } });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const assignments = Object.fromEntries(
      stdout
        .split('\n')
        .filter((line) => line.startsWith('KEYLEDGER_'))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    expect(Object.keys(assignments)).toEqual(['KEYLEDGER_SERVICE_DATABASE_URL', 'KEYLEDGER_JOB_QUEUE_DATABASE_URL']);
    logins = { service: assignments['KEYLEDGER_SERVICE_DATABASE_URL']!, jobQueue: assignments['KEYLEDGER_JOB_QUEUE_DATABASE_URL']! };
    const owner = new URL(db.url);
    for (const [url, login] of [
      [logins.service, SERVICE_LOGIN],
      [logins.jobQueue, JOB_QUEUE_LOGIN],
    ] as const) {
      const parsed = new URL(url);
      expect(parsed.username).toBe(login);
      expect(parsed.password).not.toBe('');
      expect(parsed.password).not.toBe(owner.password);
      expect(`${parsed.host}${parsed.pathname}`).toBe(`${owner.host}${owner.pathname}`);
    }
  });
});

describe('the logins are checked at start', () => {
  it('refuses one without the other, and an owner login in their place', async () => {
    const alone = await runKeyledger(['worker'], { env: ownerLessEnv({ KEYLEDGER_JOB_QUEUE_DATABASE_URL: '' }) });
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain(
      'KEYLEDGER_SERVICE_DATABASE_URL and KEYLEDGER_JOB_QUEUE_DATABASE_URL go together: KEYLEDGER_JOB_QUEUE_DATABASE_URL is missing',
    );

    const owner = await runKeyledger(['serve'], { env: ownerLessEnv({ KEYLEDGER_SERVICE_DATABASE_URL: db.url }) });
    expect(owner.code).toBe(2);
    expect(owner.stderr).toContain(`KEYLEDGER_SERVICE_DATABASE_URL must log in as ${SERVICE_LOGIN} with its password`);
    expect(owner.stderr).not.toContain(new URL(db.url).password);

    const dev = await runKeyledger(['dev'], { env: ownerLessEnv() });
    expect(dev.code).not.toBe(0);
    expect(dev.stderr).toContain('KEYLEDGER_SERVICE_DATABASE_URL and KEYLEDGER_JOB_QUEUE_DATABASE_URL are for serve and worker');
  });
});

describe('keyledger worker without an owner login', () => {
  it('sweeps on its two logins only, and `worker --status` reads it the same way', { timeout: 90_000 }, async () => {
    const worker = start(['worker'], ownerLessEnv());
    await waitFor(async () => worker.output().includes('keyledger worker: running'), 'the worker is running', 60_000);
    await waitFor(
      async () => {
        const status = await runKeyledger(['worker', '--status', '--json'], { env: ownerLessEnv() });
        if (status.code !== 0) return false;
        return Number((JSON.parse(status.stdout) as { lastSweep: { sweeps: string } | null }).lastSweep?.sweeps ?? 0) >= 1;
      },
      `the owner-less worker swept (output: ${worker.output()})`,
      60_000,
    );
    expect(await loginsOf('keyledger-worker')).toEqual([JOB_QUEUE_LOGIN, SERVICE_LOGIN]);
    worker.child.kill('SIGINT');
    expect(await worker.exited).toBe(0);
    // It found no embedded database and made none.
    expect(await readdir(dataDir)).not.toContain('postgres');
  });
});

describe('keyledger serve without an owner login', () => {
  it('answers AWS SDK requests, every connection one of the two logins', { timeout: 90_000 }, async () => {
    const app = createKeyledger({
      db: db.app,
      rootKey: rootKeyFromBytes(rootKeyBytes),
      clock: systemClock,
      logger: createLogger('silent'),
      region: 'us-east-1',
    });
    const { accountId } = await app.identity.createAccount(operator(), { name: 'owner-less' });
    const { principalArn } = await app.identity.createPrincipal(operator(), { accountId, type: 'user', name: 'admin' });
    await app.identity.putPrincipalPolicy(operator(), { principalArn, policyName: 'admin', policyDocument: ADMINISTRATOR_ACCESS });
    const accessKey = await app.identity.createAccessKey(operator(), { principalArn });

    const port = await freePort();
    const server = start(['serve'], ownerLessEnv({ KEYLEDGER_HOST: '127.0.0.1', KEYLEDGER_PORT: String(port) }));
    await waitFor(async () => server.output().includes('keyledger serve: ready'), 'serve is ready', 60_000);
    expect(server.output()).toContain('(no owner login)');
    expect(server.output()).not.toContain(new URL(logins.service).password);

    const kms = new KMSClient({
      endpoint: `http://127.0.0.1:${port}/`,
      region: 'us-east-1',
      credentials: { accessKeyId: accessKey.accessKeyId, secretAccessKey: accessKey.secretAccessKey },
      maxAttempts: 1,
    });
    try {
      const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Description: 'served without an owner login' }));
      const plaintext = randomBytes(32);
      const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: KeyMetadata!.KeyId!, Plaintext: plaintext }));
      const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob }));
      expect(Buffer.from(decrypted.Plaintext!).equals(plaintext)).toBe(true);
      const recorded = await db.owner
        .selectFrom('events')
        .select(sql<string>`data->>'requestId'`.as('requestId'))
        .where('type', '=', 'AuditRecord')
        .where(sql<string>`data->>'requestId'`, '=', decrypted.$metadata.requestId!)
        .execute();
      expect(recorded).toHaveLength(1);
    } finally {
      kms.destroy();
    }
    // Requests, the fence and audit feeds (application 'keyledger...') and the send-only job queue.
    expect((await loginsOf('keyledger')).filter((login) => login !== JOB_QUEUE_LOGIN)).toEqual([SERVICE_LOGIN]);
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(0);
  });
});

describe('a database that is not migrated', () => {
  it('is refused by an owner-less worker and serve, naming the pending migration and the fix', async () => {
    const last = await db.owner
      .selectFrom('kysely_migration' as never)
      .select(sql<string>`max(name)`.as('name'))
      .executeTakeFirstOrThrow();
    const name = (last as { name: string }).name;
    await sql`DELETE FROM kysely_migration WHERE name = ${name}`.execute(db.owner);
    try {
      for (const command of ['worker', 'serve']) {
        const { code, stderr } = await runKeyledger([command], { env: ownerLessEnv() });
        expect(code).not.toBe(0);
        expect(stderr).toContain(`is not migrated (pending: ${name}): run \`keyledger migrate\` first`);
      }
    } finally {
      await sql`INSERT INTO kysely_migration (name, timestamp) VALUES (${name}, now()::text)`.execute(db.owner);
    }
  });
});
