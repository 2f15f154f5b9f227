import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyledger } from '../../src/app.ts';
import { renderProgress } from '../../src/cli/progress.ts';
import { systemClock } from '../../src/clock.ts';
import { rootKeyFromBytes } from '../../src/crypto/root-key.ts';
import { createLogger } from '../../src/logger.ts';
import { ADMINISTRATOR_ACCESS } from '../../src/service/identity-service.ts';
import { runKeyledger, type CliResult } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * The operator commands (`migrate`, `principal create`, `access-key create`) as
 * child processes on DATABASE_URL (this file's test database), and the CLI's
 * argument and configuration errors.
 */

const rootKeyBytes = randomBytes(32);
let db: TestDatabase;
let dataDir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = await mkdtemp(join(tmpdir(), 'keyledger-cli-'));
});
afterAll(async () => {
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function keyledger(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runKeyledger(args, {
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      KEYLEDGER_DATA_DIR: dataDir,
      KEYLEDGER_ROOT_KEY: rootKeyBytes.toString('base64'),
      KEYLEDGER_LOG_LEVEL: undefined,
      ...env,
    },
  });
}

describe('operator commands on DATABASE_URL', () => {
  it('migrate reports an up-to-date database', async () => {
    const r = await keyledger(['migrate']);
    expect(r).toMatchObject({ code: 0, stdout: 'already up to date\n' });
  });

  it('principal create makes the account on first use, then reuses it; tags are kept', async () => {
    const first = await keyledger(['principal', 'create', '--account', '111122223333', '--name', 'alice', '--tag', 'team=payments', '--tag', 'note=a=b']);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({
      principalArn: 'arn:aws:iam::111122223333:user/alice',
      accountId: '111122223333',
      type: 'user',
      accountCreated: true,
    });

    const second = await keyledger(['principal', 'create', '--account', '111122223333', '--name', 'deployer', '--type', 'role']);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ principalArn: 'arn:aws:iam::111122223333:role/deployer', accountCreated: false });

    const row = await db.owner
      .selectFrom('principals')
      .select(['tags', 'principal_type'])
      .where('principal_arn', '=', 'arn:aws:iam::111122223333:user/alice')
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ tags: { team: 'payments', note: 'a=b' }, principal_type: 'user' });

    const again = await keyledger(['principal', 'create', '--account', '111122223333', '--name', 'alice']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('AlreadyExistsException');
  });

  it('access-key create prints the secret once, on stdout, and it authenticates', async () => {
    const r = await keyledger(['access-key', 'create', '--principal', 'arn:aws:iam::111122223333:user/alice']);
    expect(r.code, r.stderr).toBe(0);
    const key = JSON.parse(r.stdout) as { accessKeyId: string; secretAccessKey: string; principalArn: string };
    expect(Object.keys(key)).toEqual(['accessKeyId', 'secretAccessKey', 'principalArn']);
    expect(r.stderr).not.toContain(key.secretAccessKey);

    const app = createKeyledger({
      db: db.app,
      rootKey: rootKeyFromBytes(rootKeyBytes),
      clock: systemClock,
      logger: createLogger('silent'),
      region: 'us-east-1',
    });
    const auth = await app.identity.authenticate(key.accessKeyId, key.secretAccessKey);
    expect(auth.ok && auth.caller.principalArn).toBe('arn:aws:iam::111122223333:user/alice');

    // Audited as an operator action, without the secret.
    const { rows } = await sql<{ hits: number; leaks: number }>`
      select count(*) filter (where data ->> 'eventName' = 'CreateAccessKey')::int as hits,
             count(*) filter (where data::text like ${`%${key.secretAccessKey}%`})::int as leaks
        from events`.execute(db.owner);
    expect(rows[0]).toEqual({ hits: 1, leaks: 0 });
  });

  it('replay --verify finds a tampered row and exits 1; replay rewrites it and lists it', async () => {
    const app = createKeyledger({
      db: db.app,
      rootKey: rootKeyFromBytes(rootKeyBytes),
      clock: systemClock,
      logger: createLogger('silent'),
      region: 'us-east-1',
    });
    const op = () => ({ requestId: crypto.randomUUID(), invokedBy: 'keyledger-test' });
    const { accountId } = await app.identity.createAccount(op(), { name: 'replay-cli' });
    const { principalArn } = await app.identity.createPrincipal(op(), { accountId, type: 'user', name: 'admin' });
    await app.identity.putPrincipalPolicy(op(), { principalArn, policyName: 'admin', policyDocument: ADMINISTRATOR_ACCESS });
    const access = await app.identity.createAccessKey(op(), { principalArn });
    const auth = await app.identity.authenticate(access.accessKeyId, access.secretAccessKey);
    if (!auth.ok) throw new Error('cannot authenticate');
    const ctx = { requestId: crypto.randomUUID(), caller: auth.caller, sourceIp: '203.0.113.7', userAgent: 'keyledger-test' };
    const key = (await app.kms.createKey(ctx, { description: 'honest', tags: [{ tagKey: 'env', tagValue: 'prod' }] })).keyMetadata;

    const clean = await keyledger(['replay', '--verify']);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/^projections match the log \(\d+ events replayed: 1 keys, 0 aliases; \d+ audit records folded for the usage rollups\)\n$/);

    await db.owner.updateTable('keys').set({ description: 'tampered' }).where('key_id', '=', key.keyId).execute();
    const found = await keyledger(['replay', '--verify']);
    expect(found.code).toBe(1);
    expect(found.stdout).toContain('keys: live row not produced by replay: ');
    expect(found.stdout).toContain('"description":"tampered"');
    expect(found.stdout).toMatch(/2 differences between the projections and the log/);

    const rebuilt = await keyledger(['replay']);
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stdout).toContain('"description":"honest"');
    expect(rebuilt.stdout).toMatch(
      /projections rebuilt \(1 keys, 0 aliases; \d+ audit records folded for the usage rollups; the rows above were rewritten\)\n$/,
    );
    const again = await keyledger(['replay']);
    expect(again.stdout).toMatch(
      /^replayed \d+ events: projections rebuilt \(1 keys, 0 aliases; \d+ audit records folded for the usage rollups; nothing differed\)\n$/,
    );
    expect((await keyledger(['replay', '--verify'])).code).toBe(0);
    const tags = await db.owner.selectFrom('key_tags').select(['tag_key', 'tag_value']).where('key_id', '=', key.keyId).execute();
    expect(tags).toEqual([{ tag_key: 'env', tag_value: 'prod' }]);
  });

  it('access-key create for a principal that does not exist fails with the AWS error', async () => {
    const r = await keyledger(['access-key', 'create', '--principal', 'arn:aws:iam::111122223333:user/nobody']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/NotFoundException: Principal arn:aws:iam::111122223333:user\/nobody does not exist/);
    expect(r.stdout).toBe('');
  });

  it('wrote nothing to the data dir: with DATABASE_URL and KEYLEDGER_ROOT_KEY it is not needed', async () => {
    expect(await readdir(dataDir)).toEqual([]);
  });
});

describe('argument and configuration errors', () => {
  it('lists every bad variable and exits 2', async () => {
    const r = await keyledger(['migrate'], { KEYLEDGER_PORT: '99999', KEYLEDGER_LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid configuration');
    for (const name of ['KEYLEDGER_PORT', 'KEYLEDGER_LOG_LEVEL', 'DATABASE_URL']) expect(r.stderr).toContain(name);
  });

  it('rejects unknown commands, unknown options and missing required options with exit 2', async () => {
    expect((await keyledger(['frobnicate'])).code).toBe(2);
    const unknown = await keyledger(['replay', '--fast']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown option '--fast'[\s\S]*keyledger replay --help/);
    const missing = await keyledger(['principal', 'create', '--account', '111122223333']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--name is required');
    const badType = await keyledger(['principal', 'create', '--account', '111122223333', '--name', 'x', '--type', 'group']);
    expect(badType.code).toBe(2);
  });

  it('has --help for every command', async () => {
    const all = [
      ['--help'],
      ['dev', '--help'],
      ['serve', '--help'],
      ['worker', '--help'],
      ['migrate', '--help'],
      ['replay', '--help'],
      ['principal', 'create', '--help'],
      ['access-key', 'create', '--help'],
    ];
    const results = await Promise.all(all.map((args) => keyledger(args)));
    for (const [i, r] of results.entries()) {
      expect(r.code, all[i]!.join(' ')).toBe(0);
      expect(r.stdout, all[i]!.join(' ')).toMatch(/^Usage: keyledger/);
    }
  });

  it('fails clearly when the root key is missing', async () => {
    const r = await keyledger(['access-key', 'create', '--principal', 'arn:aws:iam::111122223333:user/alice'], { KEYLEDGER_ROOT_KEY: undefined });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no root key: set KEYLEDGER_ROOT_KEY/);
  });
});

describe('renderProgress', () => {
  it('draws a bar, the percentage and the counts, fitted to the terminal', () => {
    expect(renderProgress('replaying', 0, 0, 80)).toMatch(/^replaying \[\.+\]   0%  0\/0$/);
    const half = renderProgress('replaying', 5000, 10000, 80);
    expect(half).toMatch(/^replaying \[#+\.+\]  50%  5,000\/10,000$/);
    expect(half.length).toBeLessThanOrEqual(80);
    expect(renderProgress('replaying', 10, 10, 40)).toMatch(/\[#+\] 100%/);
  });
});
