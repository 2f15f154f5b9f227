import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, DecryptCommand, EncryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKeyledger, type Keyledger } from '../../src/app.ts';
import { systemClock } from '../../src/clock.ts';
import { rootKeyFromBytes } from '../../src/crypto/root-key.ts';
import { createLogger } from '../../src/logger.ts';
import { ADMINISTRATOR_ACCESS } from '../../src/service/identity-service.ts';
import { freePort } from '../../src/store/free-port.ts';
import { operator } from '../support/app.ts';
import { CLI_MAIN, runKeyledger } from '../support/cli.ts';
import { waitFor } from '../support/concurrency.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * Group commit and a crash (issue 14): a `keyledger serve` process answers 8
 * AWS SDK clients (Encrypt, Decrypt, GenerateDataKey) and is killed with
 * SIGKILL in the middle of the load, batches in flight. Every request that was
 * answered with success has its success record in the log (no answer before
 * its record is durable), and `replay --verify` finds the projections equal
 * to the log's fold.
 */

let db: TestDatabase;
let app: Keyledger;
let dataDir: string;
let child: ChildProcess | undefined;
const rootKeyBytes = randomBytes(32);

beforeAll(async () => {
  db = await createTestDatabase();
  app = createKeyledger({ db: db.app, rootKey: rootKeyFromBytes(rootKeyBytes), clock: systemClock, logger: createLogger('silent'), region: 'us-east-1' });
  dataDir = await mkdtemp(join(tmpdir(), 'keyledger-crash-'));
});
afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
  await db?.drop();
});

const env = (port: number): NodeJS.ProcessEnv => ({
  ...process.env,
  DATABASE_URL: db.url,
  KEYLEDGER_ROOT_KEY: rootKeyBytes.toString('base64'),
  KEYLEDGER_DATA_DIR: dataDir,
  KEYLEDGER_HOST: '127.0.0.1',
  KEYLEDGER_PORT: String(port),
  KEYLEDGER_LOG_LEVEL: 'error',
});

it('after kill -9 under load, every request answered with success has its record, and replay --verify is clean', async () => {
  const { accountId } = await app.identity.createAccount(operator(), { name: 'crash' });
  const { principalArn } = await app.identity.createPrincipal(operator(), { accountId, type: 'user', name: 'crash' });
  await app.identity.putPrincipalPolicy(operator(), { principalArn, policyName: 'admin', policyDocument: ADMINISTRATOR_ACCESS });
  const accessKey = await app.identity.createAccessKey(operator(), { principalArn });

  const port = await freePort();
  child = spawn(process.execPath, [CLI_MAIN, 'serve'], { env: env(port), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const base = `http://127.0.0.1:${port}/`;
  await waitFor(async () => (await fetch(`${base}healthz`).catch(() => null))?.ok === true, `keyledger serve answers (stderr: ${stderr})`, 60_000);

  const kms = new KMSClient({
    endpoint: base,
    region: 'us-east-1',
    credentials: { accessKeyId: accessKey.accessKeyId, secretAccessKey: accessKey.secretAccessKey },
    maxAttempts: 1,
  });
  const { KeyMetadata } = await kms.send(new CreateKeyCommand({ Description: 'crash' }));
  const keyId = KeyMetadata!.KeyId!;
  const context = { run: randomUUID() };
  const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: randomBytes(32), EncryptionContext: context }));

  const answered: { requestId: string; op: string }[] = [];
  let failures = 0;
  let stop = false;
  const client = async (n: number) => {
    for (let i = 0; !stop; i++) {
      try {
        const kind = (n + i) % 3;
        const out =
          kind === 0
            ? await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: randomBytes(64), EncryptionContext: context }))
            : kind === 1
              ? await kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: context }))
              : await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));
        answered.push({ requestId: out.$metadata.requestId!, op: ['Encrypt', 'Decrypt', 'GenerateDataKey'][kind]! });
      } catch {
        failures++;
        return; // the server is gone
      }
    }
  };
  const clients = Array.from({ length: 8 }, (_, n) => client(n));
  await waitFor(async () => answered.length >= 200, 'the clients are being served', 60_000);
  const exited = new Promise((resolve) => child!.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  stop = true;
  await Promise.all(clients);
  kms.destroy();
  expect(failures).toBeGreaterThan(0); // the kill landed during the load

  const ids = answered.map((a) => a.requestId);
  const rows = await db.owner
    .selectFrom('events')
    .select(sql<string>`data->>'requestId'`.as('requestId'))
    .where('type', '=', 'AuditRecord')
    .where(sql<string>`data->>'outcome'`, '=', 'success')
    .where(sql<string>`data->>'requestId'`, 'in', ids)
    .execute();
  const recorded = new Set(rows.map((r) => r.requestId));
  expect(ids.filter((id) => !recorded.has(id))).toEqual([]);
  expect(rows).toHaveLength(ids.length);

  const replay = await runKeyledger(['replay', '--verify'], { env: env(port), timeoutMs: 120_000 });
  expect(replay.stderr + replay.stdout).not.toMatch(/differ|mismatch/i);
  expect(replay.code).toBe(0);
});
