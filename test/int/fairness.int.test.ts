import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
import { attacks, basic, post } from '../support/hostile.ts';

/**
 * Fairness under a hostile client (issue 15): 8 well-behaved clients encrypt
 * in a loop against a `keyledger serve` (request quotas on, as shipped) while
 * one hostile client, from an address of its own, sends the review's attacks
 * back to back on one connection
 * (huge bodies, alias and introspection bombs, bad signatures and secrets, a
 * quota-breaking CreateAlias loop). Within one run, on a shared machine:
 * - the good clients' p99 with the flood stays within 2x of their p99 without
 *   it (calm and flooded phases alternate, so drift falls on both);
 * - the log grows by a bounded number of bytes per second from the hostile
 *   client's requests (records are bounded, floods throttled and aggregated);
 * - nothing is lost: every good request answered has its record.
 */

const GOOD_CLIENTS = 8;
/** Calm and flooded phases alternate ROUNDS times, each PHASE_MS long: many short rounds, so one burst of the machine's other work moves either p99 little. */
const ROUNDS = 6;
const PHASE_MS = 2000;
/** Bytes per second the hostile client may add to the log, all its records together. */
const MAX_HOSTILE_LOG_BYTES_PER_SECOND = 64 * 1024;

let db: TestDatabase;
let app: Keyledger;
let dataDir: string;
let child: ChildProcess | undefined;
const rootKeyBytes = randomBytes(32);

beforeAll(async () => {
  db = await createTestDatabase();
  app = createKeyledger({ db: db.app, rootKey: rootKeyFromBytes(rootKeyBytes), clock: systemClock, logger: createLogger('silent'), region: 'us-east-1' });
  dataDir = await mkdtemp(join(tmpdir(), 'keyledger-fairness-'));
});
afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await app?.auditFeed.close();
  await rm(dataDir, { recursive: true, force: true });
  await db?.drop();
});

async function account(name: string) {
  const { accountId } = await app.identity.createAccount(operator(), { name });
  const { principalArn } = await app.identity.createPrincipal(operator(), { accountId, type: 'user', name });
  await app.identity.putPrincipalPolicy(operator(), { principalArn, policyName: 'admin', policyDocument: ADMINISTRATOR_ACCESS });
  const key = await app.identity.createAccessKey(operator(), { principalArn });
  return { accountId, accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
}

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

it('8 good clients keep their p99 within 2x while a hostile client floods; the log grows boundedly; nothing is lost', async () => {
  const good = await account('good');
  const hostile = await account('hostile');
  const port = await freePort();
  child = spawn(process.execPath, [CLI_MAIN, 'serve'], {
    env: {
      ...process.env,
      DATABASE_URL: db.url,
      KEYLEDGER_ROOT_KEY: rootKeyBytes.toString('base64'),
      KEYLEDGER_DATA_DIR: dataDir,
      KEYLEDGER_HOST: '127.0.0.1',
      KEYLEDGER_PORT: String(port),
      KEYLEDGER_LOG_LEVEL: 'fatal',
      // Quotas low enough that one client on a slow machine breaks them: the throttled requests must stay cheap and aggregated.
      KEYLEDGER_QUOTA_CREATE_ALIAS: '1',
      KEYLEDGER_QUOTA_UNAUTHENTICATED_REQUESTS_PER_SOURCE_IP: '1',
      KEYLEDGER_QUOTA_REQUESTS_REFUSED_BEFORE_ANY_OPERATION: '1',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${base}/healthz`).catch(() => null))?.ok === true, `keyledger serve answers (stderr: ${stderr})`, 60_000);

  // The good clients and the hostile one come from different addresses (the per-IP throttle is the hostile one's alone).
  const goodAgent = new http.Agent({ keepAlive: true, localAddress: '127.0.0.1', maxSockets: GOOD_CLIENTS });
  const hostileAgent = new http.Agent({ keepAlive: true, localAddress: '127.0.0.2', maxSockets: 1 });
  const auth = basic(good.accessKeyId, good.secretAccessKey);
  const created = await post(
    goodAgent,
    `${base}/graphql`,
    { 'content-type': 'application/json', authorization: auth },
    JSON.stringify({ query: 'mutation { createKey(input: {}) { keyMetadata { keyId } } }' }),
  );
  const keyId = (JSON.parse(created.body) as { data: { createKey: { keyMetadata: { keyId: string } } } }).data.createKey.keyMetadata.keyId;
  const encrypt = JSON.stringify({
    query: 'mutation($i: EncryptInput!) { encrypt(input: $i) { keyId } }',
    variables: { i: { keyId, plaintext: randomBytes(32).toString('base64') } },
  });

  let answered = 0;
  const failed: string[] = [];
  const phase = async (ms: number): Promise<number[]> => {
    const latencies: number[] = [];
    const end = Date.now() + ms;
    await Promise.all(
      Array.from({ length: GOOD_CLIENTS }, async () => {
        while (Date.now() < end) {
          const started = performance.now();
          const answer = await post(goodAgent, `${base}/graphql`, { 'content-type': 'application/json', authorization: auth }, encrypt);
          latencies.push(performance.now() - started);
          if (answer.status === 200 && !answer.body.includes('"errors"')) answered++;
          else failed.push(answer.body.slice(0, 200));
        }
      }),
    );
    return latencies;
  };

  await phase(1500); // warm-up

  // Calm and flooded phases alternate, so that the machine's drift (other work on a shared host) falls on both alike.
  const calm: number[] = [];
  const flooded: number[] = [];
  const tally = new Map<string, Map<number, number>>();
  const all = attacks(base, hostileAgent, hostile);
  let sent = 0;
  let floodMs = 0;
  const floodStarted = new Date();
  for (let round = 0; round < ROUNDS; round++) {
    calm.push(...(await phase(PHASE_MS)));
    let flooding = true;
    const started = Date.now();
    // One hostile client: one connection sending the attacks back to back, in turn, as fast as it is answered.
    const hostileLoop = (async () => {
      while (flooding) {
        const attack = all[sent++ % all.length]!;
        const answer = await attack.send().catch(() => ({ status: 0 }));
        const statuses = tally.get(attack.name) ?? new Map<number, number>();
        tally.set(attack.name, statuses);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      }
    })();
    flooded.push(...(await phase(PHASE_MS)));
    flooding = false;
    await hostileLoop;
    floodMs += Date.now() - started;
  }
  const floodSeconds = floodMs / 1000;
  goodAgent.destroy();
  hostileAgent.destroy();

  const figures = {
    p99: { calm: Math.round(p99(calm)), flooded: Math.round(p99(flooded)) },
    p50: { calm: Math.round(p50(calm)), flooded: Math.round(p50(flooded)) },
    requests: { calm: calm.length, flooded: flooded.length, hostile: sent },
    hostile: Object.fromEntries([...tally].map(([name, statuses]) => [name, Object.fromEntries(statuses)])),
  };

  // Nothing lost: every good answer has its success record (a GraphQL success names no request id: count them).
  expect(failed, JSON.stringify(figures)).toEqual([]);
  const { rows: recorded } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM events
    WHERE type = 'AuditRecord' AND data ->> 'accountId' = ${good.accountId} AND data ->> 'eventName' = 'Encrypt' AND data ->> 'outcome' = 'success'`.execute(
    db.owner,
  );
  expect(recorded[0]!.n).toBe(answered);

  // The log: what the hostile client's requests added, per second of flood (its account's records and the unauthenticated ones).
  const { rows: growth } = await sql<{ records: number; bytes: string }>`
    SELECT count(*)::int AS records, coalesce(sum(pg_column_size(e.*)), 0)::text AS bytes FROM events e
    WHERE recorded_at >= ${floodStarted} AND (data ->> 'accountId' IS NULL OR data ->> 'accountId' = ${hostile.accountId}
      OR stream_id IN (SELECT 'key-' || k.key_id FROM keys k WHERE k.account_id = ${hostile.accountId}))`.execute(db.owner);
  const bytesPerSecond = Number(growth[0]!.bytes) / floodSeconds;
  const report = { ...figures, log: { records: growth[0]!.records, bytesPerSecond: Math.round(bytesPerSecond) } };
  expect(bytesPerSecond, JSON.stringify(report)).toBeLessThan(MAX_HOSTILE_LOG_BYTES_PER_SECOND);

  // Fairness: the good clients' p99 under the flood within 2x of theirs without it.
  expect(p99(flooded), JSON.stringify(report)).toBeLessThanOrEqual(2 * p99(calm));
  // It broke its quotas and was throttled (and, once over the unauthenticated quota, throttled before its credentials were read).
  const throttled = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM events WHERE type = 'AuditRecord' AND recorded_at >= ${floodStarted}
      AND data ->> 'errorCode' = 'ThrottlingException' AND (data ->> 'accountId' IS NULL OR data ->> 'accountId' = ${hostile.accountId})`.execute(db.owner);
  expect(throttled.rows[0]!.n, JSON.stringify(report)).toBeGreaterThan(0);
  // The hostile client was answered, and refused: no attack went through unanswered or as a server error.
  for (const [name, statuses] of tally) {
    expect(
      [...statuses.keys()].filter((s) => s === 0 || s >= 500),
      `${name}: ${JSON.stringify(report)}`,
    ).toEqual([]);
  }
  console.info(`fairness: ${JSON.stringify(report)}`);
}, 120_000);
