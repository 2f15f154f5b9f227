import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runKeyledger, type CliResult } from '../support/cli.ts';
import { adminQuery, databaseUrl } from '../support/database.ts';

/**
 * A command that needs an existing database (replay, report, worker,
 * principal, access-key) and finds none says where it looked and creates
 * nothing: not the data dir, not an embedded cluster. And the entry points
 * name the Node version they need instead of failing on a `.ts` import.
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(REPO, 'bin/keyledger.js');
let root: string;
let emptyDatabase: { name: string; url: string } | undefined;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'keyledger-locate-'));
});
afterAll(async () => {
  if (emptyDatabase) await adminQuery(inject('adminDatabaseUrl'), `DROP DATABASE IF EXISTS ${emptyDatabase.name} WITH (FORCE)`);
  if (root) await rm(root, { recursive: true, force: true });
});

function keyledger(args: string[], options: { cwd: string; env: Record<string, string | undefined> }): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, KEYLEDGER_LOG_LEVEL: undefined, ...options.env };
  for (const name of ['DATABASE_URL', 'KEYLEDGER_DATA_DIR', 'KEYLEDGER_ROOT_KEY_FILE', 'KEYLEDGER_PG_PORT']) {
    if (!(name in options.env)) delete env[name];
  }
  return runKeyledger(args, { cwd: options.cwd, env });
}

const NEEDS_A_DATABASE: [string, string[]][] = [
  ['replay --verify', ['replay', '--verify']],
  ['replay', ['replay']],
  ['report', ['report', '--account', '111122223333', '--from', '2026-01-01', '--to', '2026-02-01', '--out', 'report.json']],
  ['worker --status', ['worker', '--status']],
  ['principal create', ['principal', 'create', '--account', '111122223333', '--name', 'alice']],
  ['access-key create', ['access-key', 'create', '--principal', 'arn:aws:iam::111122223333:user/alice']],
];

// Each spawns keyledger, whose start alone takes seconds on a loaded machine.
describe('commands that need an existing database', { timeout: 60_000 }, () => {
  // The root key is given so the identity commands get as far as the database.
  const rootKey = randomBytes(32).toString('base64');

  it.each(NEEDS_A_DATABASE)('%s without KEYLEDGER_DATA_DIR says where it looked and creates nothing', async (_, args) => {
    const cwd = await mkdtemp(join(root, 'cwd-'));
    const r = await keyledger(args, { cwd, env: { KEYLEDGER_ROOT_KEY: rootKey } });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('no keyledger database found');
    expect(r.stderr).toContain(join(cwd, '.keyledger'));
    expect(r.stderr).toContain('KEYLEDGER_DATA_DIR is not set');
    expect(r.stderr).toMatch(/keyledger dev.*keyledger migrate/);
    expect(r.stderr).not.toContain('does not exist');
    expect(r.stdout).toBe('');
    expect(await readdir(cwd)).toEqual([]);
  });

  it('names the KEYLEDGER_DATA_DIR it was given, and leaves it uncreated', async () => {
    const dataDir = join(root, 'no-such-data-dir');
    const r = await keyledger(['replay', '--verify'], { cwd: root, env: { KEYLEDGER_DATA_DIR: dataDir } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${dataDir} holds no embedded Postgres (KEYLEDGER_DATA_DIR=${dataDir})`);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('on a DATABASE_URL without the tables, replay says it is not migrated instead of `relation "public.keys" does not exist`', async () => {
    const adminUrl = inject('adminDatabaseUrl');
    const name = `keyledger_test_empty_${randomBytes(6).toString('hex')}`;
    await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
    emptyDatabase = { name, url: databaseUrl(adminUrl, name) };
    const r = await keyledger(['replay', '--verify'], { cwd: root, env: { DATABASE_URL: emptyDatabase.url } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`the database \\S+/${name} is not migrated \\(pending: 0001_event_store`));
    expect(r.stderr).toContain('run `keyledger migrate` first');
    expect(r.stderr).not.toContain('relation');
    const password = new URL(emptyDatabase.url).password;
    if (password) expect(r.stderr).not.toContain(password);
  });
});

describe('the entry points on a Node older than 24', () => {
  // The machine's own `node`, when it is an older one (the pinned Node 24 is first on PATH under npm, so look elsewhere).
  const candidates = ['/usr/bin/node', '/usr/local/bin/node'];
  const old = candidates
    .map((path) => ({ path, version: existsSync(path) ? spawnSync(path, ['--version'], { encoding: 'utf8' }).stdout.trim() : '' }))
    .find((n) => /^v(\d+)/.test(n.version) && Number(/^v(\d+)/.exec(n.version)![1]) < 24);

  it.skipIf(!old)(
    `bin/keyledger.js names the version it needs and how to run it (${old ? `${old.path} ${old.version}` : 'no Node older than 24 installed'})`,
    () => {
      const r = spawnSync(old!.path, [BIN, 'replay', '--verify'], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, DATABASE_URL: undefined, KEYLEDGER_DATA_DIR: undefined },
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`keyledger needs Node.js 24 or later, but this is Node ${old!.version}`);
      expect(r.stderr).toContain('npm run keyledger -- <command>');
      expect(r.stderr).not.toContain('ERR_UNKNOWN_FILE_EXTENSION');
      expect(r.stdout).toBe('');
    },
  );
});
