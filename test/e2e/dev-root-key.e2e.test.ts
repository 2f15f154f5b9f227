import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/store/free-port.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(REPO, 'src/cli/main.ts');
let root: string;
let dataDir: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'keyledger-rootkey-'));
  // The postgres user must traverse to its data dir when we are root.
  await chmod(root, 0o711);
  dataDir = join(root, 'data');
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** Runs `keyledger dev`; stops it with SIGINT once ready (when `stopWhenReady`), and resolves with its exit code and output. */
async function dev(stopWhenReady: boolean): Promise<{ code: number | null; output: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, KEYLEDGER_DATA_DIR: dataDir, KEYLEDGER_PORT: String(await freePort()), KEYLEDGER_LOG_LEVEL: 'warn' };
  for (const name of ['DATABASE_URL', 'KEYLEDGER_ROOT_KEY', 'KEYLEDGER_ROOT_KEY_FILE', 'KEYLEDGER_PG_PORT']) delete env[name];
  const child = spawn(process.execPath, [MAIN, 'dev'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let stopping = false;
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    // Once: a second SIGINT means "exit now, without a clean shutdown".
    if (stopWhenReady && !stopping && output.includes('keyledger dev: ready')) {
      stopping = true;
      child.kill('SIGINT');
    }
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, output };
}

describe('keyledger dev and a lost root key', () => {
  it('refuses to generate a new root key for a database holding secrets wrapped under the old one', { timeout: 180_000 }, async () => {
    const first = await dev(true);
    expect(first.code, first.output).toBe(0);
    const keyFile = join(dataDir, 'root-key');
    expect(existsSync(keyFile)).toBe(true);

    await rm(keyFile);
    const second = await dev(false);
    expect(second.code).not.toBe(0);
    expect(second.output).toContain('root-key is missing, but the database holds access keys and key material wrapped under a root key');
    expect(existsSync(keyFile)).toBe(false);
  });
});
