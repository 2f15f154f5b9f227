import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyledger, type Keyledger } from '../../src/app.ts';
import { KmsError } from '../../src/domain/errors.ts';
import type { RequestContext } from '../../src/service/context.ts';
import { openDatabase, type Db } from '../../src/store/database.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/concurrency.ts';
import { installTestTrigger } from '../support/database.ts';

/**
 * Invariant 6: a lifecycle change and the crypto operations on the same key are
 * ordered. 32 clients decrypt under one key in a loop; DisableKey is issued
 * while they run. In log order (global_position) no successful Decrypt comes
 * after the key's KeyDisabled event, the decrypts after it were refused with
 * DisabledException, and the decrypts did not serialize on each other.
 *
 * To make "in flight" observable, a test-only trigger sleeps 50 ms in every
 * successful Decrypt's audit insert — the last statement of its transaction,
 * run while it holds its share lock on the key row. pg_stat_activity then shows
 * how many decrypt transactions are inside that sleep at one moment. The sleep
 * only widens windows; nothing is timed for speed and every wait is bounded.
 *
 * The clients go through the service layer of the test app (pool of 10
 * connections, so at most 10 decrypt transactions at once). DisableKey goes
 * through a second keyledger on its own one-connection pool — a second API
 * server, as it were — so it never queues for a pool slot behind the clients
 * and its session can be told apart in pg_stat_activity.
 */

const CLIENTS = 32;
/** Attempts per client once the key is disabled (each must be refused). */
const REFUSED_AFTER = 2;
/** Safety net: no client makes more attempts than this. */
const MAX_ATTEMPTS_PER_CLIENT = 300;
const CLIENT_APP = 'keyledger-test-app';
const LIFECYCLE_APP = 'keyledger-test-lifecycle';

let t: TestApp;
let alice: Principal;
let lifecycleDb: Db;
let lifecycle: Keyledger;
let removeSlowDecrypts: (() => Promise<void>) | undefined;

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('alice');
  lifecycleDb = openDatabase(t.db.url, { as: 'app', max: 1, applicationName: LIFECYCLE_APP });
  lifecycle = createKeyledger({ db: lifecycleDb, rootKey: t.rootKey, clock: t.clock, logger: t.app.logger, region: t.app.region });
  removeSlowDecrypts = await installTestTrigger(
    t.db.owner,
    'test_slow_decrypt_audit',
    'BEFORE INSERT',
    'events',
    `IF NEW.type = 'AuditRecord' AND NEW.data->>'eventName' = 'Decrypt' AND NEW.data->>'outcome' = 'success' THEN
       PERFORM pg_sleep(0.05);
     END IF;
     RETURN NEW;`,
  );
});
afterAll(async () => {
  await removeSlowDecrypts?.();
  await lifecycleDb?.destroy();
  await t?.close();
});

/** When an attempt started, relative to the DisableKey call. */
type Phase = 'before' | 'pending' | 'pending-while-waiting' | 'after';

interface Attempt {
  requestId: string;
  client: number;
  phase: Phase;
  ok: boolean;
  code?: string;
}

interface RaceResult {
  keyId: string;
  attempts: Attempt[];
  /** Most decrypt transactions seen inside the trigger's sleep at one moment. */
  maxInFlight: number;
  /** Whether DisableKey's session was seen waiting on a lock. */
  disableSeenWaiting: boolean;
}

async function sample(): Promise<{ inFlight: number; disableWaiting: boolean }> {
  const { rows } = await sql<{ in_flight: number; disable_waiting: number }>`
    select count(*) filter (where application_name = ${CLIENT_APP} and wait_event = 'PgSleep')::int as in_flight,
           count(*) filter (where application_name = ${LIFECYCLE_APP} and wait_event_type = 'Lock')::int as disable_waiting
      from pg_stat_activity
     where datname = current_database()`.execute(t.db.owner);
  return { inFlight: rows[0]!.in_flight, disableWaiting: rows[0]!.disable_waiting > 0 };
}

/**
 * A fresh key, a blob under it, and 32 clients decrypting it in a loop. Once at
 * least 4 decrypts are in flight together, DisableKey is issued. While it is
 * pending, each client starts at most `attemptsWhilePending` more decrypts, then
 * waits for it to return and makes REFUSED_AFTER more attempts.
 */
async function race(attemptsWhilePending: number): Promise<RaceResult> {
  const keyId = (await t.gql(alice, `mutation { createKey(input: { description: "linearizable" }) { keyMetadata { keyId } } }`)).data.createKey.keyMetadata
    .keyId as string;
  const plaintext = randomBytes(32);
  const base: RequestContext = await t.ctx(alice);
  const request = (): RequestContext => ({ ...base, requestId: randomUUID() });
  const context = { purpose: `linearizable-${keyId}` };
  const { ciphertextBlob } = await t.app.crypto.encrypt(request(), { keyId, plaintext: Buffer.from(plaintext), encryptionContext: context });

  const attempts: Attempt[] = [];
  let disable: Promise<void> | undefined;
  let disableWaiting = false;
  let disableReturned = false;
  let stop = false;
  let maxInFlight = 0;
  let disableSeenWaiting = false;

  const client = async (n: number): Promise<void> => {
    let whilePending = 0;
    let refusedAfter = 0;
    for (let i = 0; i < MAX_ATTEMPTS_PER_CLIENT && !stop; i++) {
      if (disableReturned && refusedAfter >= REFUSED_AFTER) return;
      if (disable && !disableReturned && whilePending >= attemptsWhilePending) {
        await disable.catch(() => {});
        continue;
      }
      const phase: Phase = disableReturned ? 'after' : disableWaiting ? 'pending-while-waiting' : disable ? 'pending' : 'before';
      if (phase === 'pending' || phase === 'pending-while-waiting') whilePending++;
      const ctx = request();
      try {
        const out = await t.app.crypto.decrypt(ctx, { ciphertextBlob, encryptionContext: context });
        expect(out.plaintext.equals(plaintext)).toBe(true);
        attempts.push({ requestId: ctx.requestId, client: n, phase, ok: true });
      } catch (error) {
        if (!(error instanceof KmsError)) throw error;
        attempts.push({ requestId: ctx.requestId, client: n, phase, ok: false, code: error.code });
      }
      if (phase === 'after') refusedAfter++;
    }
  };

  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const s = await sample();
      maxInFlight = Math.max(maxInFlight, s.inFlight);
      if (disable && s.disableWaiting) disableWaiting = disableSeenWaiting = true;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const clients = Array.from({ length: CLIENTS }, (_, n) => client(n));
  try {
    await waitFor(async () => (await sample()).inFlight >= 4, 'at least 4 decrypt transactions are in flight at once', 20_000);
    disable = lifecycle.kms.disableKey(request(), { keyId }).then(() => {
      disableReturned = true;
    });
    await disable;
    await Promise.all(clients);
  } finally {
    stop = true;
    sampling = false;
    await Promise.allSettled([sampler, ...clients]);
  }
  return { keyId, attempts, maxInFlight, disableSeenWaiting };
}

/** The key's lifecycle events and every Decrypt / DisableKey record of it, in global_position order. */
async function logOf(keyId: string, attempts: readonly Attempt[]) {
  const ids = new Set(attempts.map((a) => a.requestId));
  const rows = await t.db.owner
    .selectFrom('events')
    .select(['global_position', 'stream_id', 'type', 'data'])
    .where((eb) =>
      eb.or([
        eb('stream_id', '=', `key-${keyId}`),
        eb.and([eb('type', '=', 'AuditRecord'), eb(sql<string>`data->>'eventName'`, 'in', ['Decrypt', 'DisableKey'])]),
      ]),
    )
    .orderBy('global_position')
    .execute();
  const position = (e: { global_position: string }) => BigInt(e.global_position);
  const record = (e: { data: unknown }) =>
    e.data as { eventName: string; requestId: string; outcome: string; errorCode?: string; resources: { arn: string }[] };
  const keyDisabled = rows.filter((e) => e.stream_id === `key-${keyId}` && e.type === 'KeyDisabled');
  const disableRecords = rows.filter(
    (e) => e.type === 'AuditRecord' && record(e).eventName === 'DisableKey' && record(e).resources.some((r) => r.arn.endsWith(keyId)),
  );
  const decrypts = rows.filter((e) => e.type === 'AuditRecord' && record(e).eventName === 'Decrypt' && ids.has(record(e).requestId));
  return { keyDisabled, disableRecords, decrypts, position, record };
}

describe('DisableKey against 32 concurrent decrypting clients', () => {
  it('orders every decrypt before or after the KeyDisabled event; the decrypts run concurrently', async () => {
    const { keyId, attempts, maxInFlight, disableSeenWaiting } = await race(5);

    // Concurrency: several decrypt transactions were inside the sleep at one moment
    // (so they held the key's share lock together), and DisableKey waited for them.
    expect(maxInFlight).toBeGreaterThanOrEqual(4);
    expect(disableSeenWaiting).toBe(true);

    // What the callers saw: successes, then DisabledException, and nothing else.
    expect(attempts.filter((a) => !a.ok && a.code !== 'DisabledException')).toEqual([]);
    expect(attempts.filter((a) => a.phase === 'before' && a.ok).length).toBeGreaterThan(0);
    expect(attempts.filter((a) => a.phase === 'after')).toHaveLength(CLIENTS * REFUSED_AFTER);
    expect(attempts.filter((a) => a.phase === 'after' && a.ok)).toEqual([]);
    for (let n = 0; n < CLIENTS; n++) {
      const mine = attempts.filter((a) => a.client === n);
      const firstRefused = mine.findIndex((a) => !a.ok);
      expect(firstRefused, `client ${n} was refused`).toBeGreaterThanOrEqual(0);
      expect(
        mine.slice(firstRefused).filter((a) => a.ok),
        `client ${n} was served after a refusal`,
      ).toEqual([]);
    }

    // The log, in global_position order.
    const { keyDisabled, disableRecords, decrypts, position, record } = await logOf(keyId, attempts);
    expect(keyDisabled).toHaveLength(1);
    const disabledAt = position(keyDisabled[0]!);
    expect(disableRecords).toHaveLength(1);
    expect(record(disableRecords[0]!).outcome).toBe('success');
    expect(position(disableRecords[0]!)).toBeGreaterThan(disabledAt);

    const served = decrypts.filter((e) => record(e).outcome === 'success');
    const refused = decrypts.filter((e) => record(e).outcome === 'failure');
    expect(served.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThanOrEqual(CLIENTS * REFUSED_AFTER);
    // The invariant: nothing recorded after the KeyDisabled event succeeded ...
    expect(served.filter((e) => position(e) > disabledAt).map((e) => record(e).requestId)).toEqual([]);
    // ... and every refusal for the key's state is recorded after it.
    expect(refused.filter((e) => record(e).errorCode !== 'DisabledException')).toEqual([]);
    expect(refused.filter((e) => position(e) < disabledAt).map((e) => record(e).requestId)).toEqual([]);

    // The log and the callers agree: one record per attempt, with its outcome.
    expect(decrypts).toHaveLength(attempts.length);
    const outcomeOf = new Map(decrypts.map((e) => [record(e).requestId, record(e).outcome]));
    for (const a of attempts) expect(outcomeOf.get(a.requestId), a.requestId).toBe(a.ok ? 'success' : 'failure');
  });

  /**
   * Writer starvation (fixed, kept as a regression test). A row's FOR SHARE
   * lets new sharers in ahead of a waiting FOR UPDATE, so a steady stream of
   * decrypts once held DisableKey off for 8-30+ s. The key locks are now
   * advisory locks (src/store/key-locks.ts), where a new shared request queues
   * behind a waiting exclusive one: once DisableKey is seen waiting, a decrypt
   * that starts later must queue behind it and fail.
   */
  it('a decrypt that starts while DisableKey waits does not overtake it (writer starvation)', async () => {
    const { attempts, disableSeenWaiting } = await race(10);
    expect(disableSeenWaiting).toBe(true);
    const overtook = attempts.filter((a) => a.phase === 'pending-while-waiting' && a.ok);
    expect(overtook).toEqual([]);
  });
});
