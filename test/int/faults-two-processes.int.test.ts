import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, DecryptCommand, DescribeKeyCommand, EncryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKeyledger, type Keyledger } from '../../src/app.ts';
import { systemClock } from '../../src/clock.ts';
import { rootKeyFromBytes } from '../../src/crypto/root-key.ts';
import { createLogger } from '../../src/logger.ts';
import { ADMINISTRATOR_ACCESS } from '../../src/service/identity-service.ts';
import { freePort } from '../../src/store/free-port.ts';
import { operator } from '../support/app.ts';
import { CLI_MAIN } from '../support/cli.ts';
import { waitFor } from '../support/concurrency.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * Faults count answers against records (issue 15, finding 7): 12 AWS SDK
 * clients on two `keyledger serve` processes sharing one database; during the
 * load the service's database connections are terminated a few times
 * (pg_terminate_backend), and one process is killed with SIGKILL and started
 * again. Every answer the clients got (success or error) carries a request id,
 * and every one of those ids has its audit record; a failed Decrypt's record
 * names the key its ciphertext names.
 */

const LOAD_MS = 14_000;
const CLIENTS = 12;

let db: TestDatabase;
let app: Keyledger;
let dataDir: string;
const children = new Set<ChildProcess>();
const rootKeyBytes = randomBytes(32);

beforeAll(async () => {
  db = await createTestDatabase();
  app = createKeyledger({ db: db.app, rootKey: rootKeyFromBytes(rootKeyBytes), clock: systemClock, logger: createLogger('silent'), region: 'us-east-1' });
  dataDir = await mkdtemp(join(tmpdir(), 'keyledger-faults-'));
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await app?.auditFeed.close();
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
  KEYLEDGER_LOG_LEVEL: 'fatal',
  // The clients' load is the point, not AWS's request quotas.
  KEYLEDGER_QUOTAS: 'off',
});

async function serve(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI_MAIN, 'serve'], { env: env(port), stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  await waitFor(
    async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok === true,
    `keyledger serve answers (stderr: ${stderr})`,
    60_000,
  );
  return child;
}

interface Answer {
  requestId: string | undefined;
  op: string;
  ok: boolean;
  code?: string;
}

it('every answer under connection kills and a kill -9 has a request id and a record', async () => {
  const { accountId } = await app.identity.createAccount(operator(), { name: 'faults' });
  const { principalArn } = await app.identity.createPrincipal(operator(), { accountId, type: 'user', name: 'faults' });
  await app.identity.putPrincipalPolicy(operator(), { principalArn, policyName: 'admin', policyDocument: ADMINISTRATOR_ACCESS });
  const accessKey = await app.identity.createAccessKey(operator(), { principalArn });
  const credentials = { accessKeyId: accessKey.accessKeyId, secretAccessKey: accessKey.secretAccessKey };

  const ports = [await freePort(), await freePort()] as const;
  await serve(ports[0]);
  let second = await serve(ports[1]);
  const sdk = ports.map((port) => new KMSClient({ endpoint: `http://127.0.0.1:${port}/`, region: 'us-east-1', credentials, maxAttempts: 1 }));

  const { KeyMetadata } = await sdk[0]!.send(new CreateKeyCommand({ Description: 'faults' }));
  const keyArn = KeyMetadata!.Arn!;
  const context = { run: randomUUID() };
  const { CiphertextBlob } = await sdk[0]!.send(new EncryptCommand({ KeyId: keyArn, Plaintext: randomBytes(32), EncryptionContext: context }));

  const answers: Answer[] = [];
  let unanswered = 0;
  let stop = false;
  const client = async (n: number) => {
    const kms = sdk[n % 2]!;
    for (let i = 0; !stop; i++) {
      const kind = (n + i) % 4;
      const op = ['Encrypt', 'Decrypt', 'GenerateDataKey', 'DescribeKey'][kind]!;
      try {
        const out =
          kind === 0
            ? await kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: randomBytes(64), EncryptionContext: context }))
            : kind === 1
              ? await kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: context }))
              : kind === 2
                ? await kms.send(new GenerateDataKeyCommand({ KeyId: keyArn, KeySpec: 'AES_256', EncryptionContext: context }))
                : await kms.send(new DescribeKeyCommand({ KeyId: 'alias/nowhere' })).catch((e: unknown) => {
                    // NotFoundException is this request's normal answer.
                    if ((e as { name?: string }).name === 'NotFoundException') return { $metadata: (e as { $metadata: { requestId?: string } }).$metadata };
                    throw e;
                  });
        answers.push({ requestId: out.$metadata.requestId, op, ok: true });
      } catch (error) {
        const metadata = (error as { $metadata?: { httpStatusCode?: number; requestId?: string } }).$metadata;
        if (metadata?.httpStatusCode === undefined) {
          // No answer (the process is down, or the connection dropped): nothing to account for.
          unanswered++;
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        answers.push({ requestId: metadata.requestId, op, ok: false, code: (error as { name?: string }).name ?? 'unknown' });
      }
    }
  };

  const started = Date.now();
  const clients = Array.from({ length: CLIENTS }, (_, n) => client(n));
  const terminate = () =>
    sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'keyledger' AND pid <> pg_backend_pid()`.execute(db.owner);
  const at = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, started + ms - Date.now())));
  await at(2000);
  await terminate();
  await at(4000);
  await terminate();
  await at(5000);
  const exited = new Promise((resolve) => second.once('exit', resolve));
  second.kill('SIGKILL');
  await exited;
  await at(6000);
  second = await serve(ports[1]);
  await terminate();
  await at(LOAD_MS - 2000);
  await terminate();
  await at(LOAD_MS);
  stop = true;
  await Promise.all(clients);
  for (const kms of sdk) kms.destroy();

  const failures = answers.filter((a) => !a.ok);
  const summary = { answered: answers.length, failed: failures.length, unanswered, codes: [...new Set(failures.map((f) => f.code))] };
  expect(answers.length, JSON.stringify(summary)).toBeGreaterThan(200);
  // The faults landed: some requests failed or went unanswered.
  expect(failures.length + unanswered, JSON.stringify(summary)).toBeGreaterThan(0);
  expect(
    answers.filter((a) => a.requestId === undefined),
    JSON.stringify(summary),
  ).toEqual([]);

  const ids = answers.map((a) => a.requestId!);
  const { rows } = await sql<{ requestId: string; eventName: string; outcome: string; resources: { arn: string }[] | null }>`
    SELECT data ->> 'requestId' AS "requestId", data ->> 'eventName' AS "eventName", data ->> 'outcome' AS outcome, data -> 'resources' AS resources
    FROM events WHERE type = 'AuditRecord' AND (data ->> 'requestId') = ANY(${ids}::text[])`.execute(db.owner);
  const recorded = new Map(rows.map((r) => [r.requestId, r]));
  const missing = answers.filter((a) => !recorded.has(a.requestId!));
  expect(missing, JSON.stringify(summary)).toEqual([]);
  for (const a of answers) expect(recorded.get(a.requestId!)!.outcome).toBe(a.ok && a.op !== 'DescribeKey' ? 'success' : 'failure');
  // A Decrypt that failed (an internal error, mostly) still names the key its ciphertext names.
  const failedDecrypts = rows.filter((r) => r.eventName === 'Decrypt' && r.outcome === 'failure');
  expect(failedDecrypts.filter((r) => !(r.resources ?? []).some((x) => x.arn === keyArn))).toEqual([]);
}, 180_000);
