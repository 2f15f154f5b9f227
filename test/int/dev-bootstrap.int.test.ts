import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrapAdmin, type AdminCredentials } from '../../src/cli/dev-bootstrap.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestApp, operator, type TestApp } from '../support/app.ts';

/**
 * `keyledger dev`'s first start makes one admin, whatever happens: two starts at
 * once on one database, a start that crashed half way, a file already there.
 */

let t: TestApp;
let dir: string;
beforeAll(async () => {
  t = await createTestApp();
  dir = await mkdtemp(join(tmpdir(), 'keyledger-bootstrap-'));
});
afterAll(async () => {
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const logger = createLogger('silent');
const defaultAccounts = async () =>
  (await sql<{ account_id: string }>`SELECT account_id FROM accounts WHERE name = 'default' ORDER BY account_id`.execute(t.db.owner)).rows.map(
    (r) => r.account_id,
  );

async function expectWorkingCredentials(file: string): Promise<AdminCredentials> {
  const credentials = JSON.parse(await readFile(file, 'utf8')) as AdminCredentials;
  expect((await stat(file)).mode & 0o777).toBe(0o600);
  const auth = await t.app.identity.authenticate(credentials.accessKeyId, credentials.secretAccessKey);
  expect(auth.ok && auth.caller.principalArn).toBe(`arn:aws:iam::${credentials.accountId}:user/admin`);
  // AdministratorAccess: the admin can create a key in its account.
  const created = await t.gql(credentials, 'mutation { createKey(input: {}) { keyMetadata { keyId } } }');
  expect(created.errors).toBeUndefined();
  return credentials;
}

describe('dev bootstrap', () => {
  it('two starts at once make one admin; the later finds it done', async () => {
    const file = join(dir, 'race', 'admin-credentials.json');
    const before = await defaultAccounts();
    const results = await Promise.all([bootstrapAdmin(t.app, t.db.app, file, logger), bootstrapAdmin(t.app, t.db.app, file, logger)]);
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    const credentials = await expectWorkingCredentials(file);
    expect(await defaultAccounts()).toEqual([...before, credentials.accountId].sort());
    await expect(stat(`${file}.pending`)).rejects.toThrow(/ENOENT/);
    // A third start: nothing to do, nothing created.
    expect(await bootstrapAdmin(t.app, t.db.app, file, logger)).toBeUndefined();
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(credentials);
  });

  it('finishes the account a crashed start left half made, instead of making another', async () => {
    const file = join(dir, 'crash', 'admin-credentials.json');
    // The crash: the id chosen and written down, the account and its admin created, then nothing.
    const accountId = '481516234200';
    await mkdir(join(dir, 'crash'), { recursive: true });
    await writeFile(`${file}.pending`, `${accountId}\n`);
    await t.app.identity.createAccount(operator(), { accountId, name: 'default' });
    await t.app.identity.createPrincipal(operator(), { accountId, type: 'user', name: 'admin' });
    const before = await defaultAccounts();

    expect(await bootstrapAdmin(t.app, t.db.app, file, logger)).toEqual({ accountId });
    const credentials = await expectWorkingCredentials(file);
    expect(credentials.accountId).toBe(accountId);
    expect(await defaultAccounts()).toEqual(before);
    await expect(stat(`${file}.pending`)).rejects.toThrow(/ENOENT/);
  });

  it('a fresh start does not adopt an account it did not choose', async () => {
    // Without a pending file, an existing account is never taken over: a new id is chosen.
    const file = join(dir, 'fresh', 'admin-credentials.json');
    // Leftovers that are not a resumable bootstrap: a pending file without an account id, a stale partial file.
    await mkdir(join(dir, 'fresh'), { recursive: true });
    await writeFile(`${file}.pending`, 'not an account id\n');
    await writeFile(`${file}.${process.pid}.tmp`, 'stale');
    const before = await defaultAccounts();
    const result = await bootstrapAdmin(t.app, t.db.app, file, logger);
    expect(result).toBeDefined();
    expect(before).not.toContain(result!.accountId);
    await expectWorkingCredentials(file);
    await expect(stat(`${file}.pending`)).rejects.toThrow(/ENOENT/);
    await expect(stat(`${file}.${process.pid}.tmp`)).rejects.toThrow(/ENOENT/);
  });
});
