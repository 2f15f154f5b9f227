import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyledger, startFenceFeed, type Keyledger } from '../../src/app.ts';
import { KmsError } from '../../src/domain/errors.ts';
import type { RequestContext } from '../../src/service/context.ts';
import { GroupCommitter } from '../../src/service/group-commit.ts';
import { openDatabase, type Db } from '../../src/store/database.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/concurrency.ts';
import { installTestTrigger } from '../support/database.ts';

/**
 * Group commit (issue 14): the cryptographic operations decide on cached key
 * views and commit their records in batches. Each keyledger below is what one
 * process holds: its own pool, cache and committer, sharing only the database.
 * `t.app` is "process A" (no fence feed: its cache learns only from batches);
 * `other` is "process B", through which the lifecycle changes arrive, so that
 * A's cache is stale when A next decides.
 */

let t: TestApp;
let alice: Principal;
let bob: Principal;
let otherDb: Db;
let other: Keyledger;

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('alice');
  bob = await t.newUser(alice.accountId, 'bob');
  otherDb = openDatabase(t.db.url, { as: 'app', max: 4, applicationName: 'keyledger-test-other' });
  other = createKeyledger({ db: otherDb, rootKey: t.rootKey, clock: t.clock, logger: t.app.logger, region: t.app.region });
});
afterAll(async () => {
  await otherDb?.destroy();
  await t?.close();
});

const request = async (p: Principal): Promise<RequestContext> => ({ ...(await t.ctx(p)), requestId: randomUUID() });
const stats = (app: Keyledger) => app.groupCommit!.committer.stats();

async function keyWithBlob(description: string, policy?: string) {
  const { keyMetadata } = await t.app.kms.createKey(await request(alice), { description, ...(policy ? { policy } : {}) });
  const context = { purpose: description };
  const plaintext = randomBytes(32);
  const { ciphertextBlob } = await t.app.crypto.encrypt(await request(alice), {
    keyId: keyMetadata.keyId,
    plaintext: Buffer.from(plaintext),
    encryptionContext: context,
  });
  const decrypt = async (app: Keyledger, as: Principal) => {
    const ctx = await request(as);
    try {
      const out = await app.crypto.decrypt(ctx, { ciphertextBlob, encryptionContext: context });
      expect(out.plaintext.equals(plaintext)).toBe(true);
      return { requestId: ctx.requestId, code: 'ok' };
    } catch (error) {
      if (!(error instanceof KmsError)) throw error;
      return { requestId: ctx.requestId, code: error.code };
    }
  };
  return { keyId: keyMetadata.keyId, decrypt };
}

async function recordsOf(requestId: string) {
  const rows = await t.db.owner
    .selectFrom('events')
    .select('data')
    .where('type', '=', 'AuditRecord')
    .where(sql<string>`data->>'requestId'`, '=', requestId)
    .execute();
  return rows.map((r) => r.data as { outcome: string; errorCode?: string; responseElements: unknown });
}

const policyFor = (accountId: string, extra: object[] = []) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Sid: 'root', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: 'kms:*', Resource: '*' }, ...extra],
  });

describe('a cache made stale by another process costs a retry, never a wrong answer', () => {
  it('a grant revoked elsewhere: the next Decrypt decided on the cached grant is sent back and refused', async () => {
    const key = await keyWithBlob('gc-revoke');
    const { grantId } = await t.app.grants.createGrant(await request(alice), { keyId: key.keyId, granteePrincipal: bob.principalArn, operations: ['Decrypt'] });
    expect((await key.decrypt(t.app, bob)).code).toBe('ok');
    expect((await key.decrypt(t.app, bob)).code).toBe('ok'); // served from the cache

    await other.grants.revokeGrant(await request(alice), { keyId: key.keyId, grantId });
    const before = stats(t.app);
    const refused = await key.decrypt(t.app, bob);
    expect(refused.code).toBe('AccessDeniedException');
    expect(stats(t.app).fenced - before.fenced).toBe(1);
    // One record for the request: the refusal, not the stale success.
    expect((await recordsOf(refused.requestId)).map((r) => [r.outcome, r.errorCode])).toEqual([['failure', 'AccessDeniedException']]);
  });

  it('a key policy changed elsewhere takes effect on the next request', async () => {
    const allowBob = { Sid: 'bob', Effect: 'Allow', Principal: { AWS: bob.principalArn }, Action: 'kms:Decrypt', Resource: '*' };
    const key = await keyWithBlob('gc-policy', policyFor(alice.accountId, [allowBob]));
    expect((await key.decrypt(t.app, bob)).code).toBe('ok');

    await other.keyPolicies.putKeyPolicy(await request(alice), { keyId: key.keyId, policy: policyFor(alice.accountId) });
    const before = stats(t.app);
    const refused = await key.decrypt(t.app, bob);
    expect(refused.code).toBe('AccessDeniedException');
    expect(stats(t.app).fenced - before.fenced).toBe(1);
    expect((await recordsOf(refused.requestId)).map((r) => r.outcome)).toEqual(['failure']);
  });

  it('DisableKey elsewhere: refused with DisabledException; EnableKey elsewhere: served again', async () => {
    const key = await keyWithBlob('gc-disable');
    expect((await key.decrypt(t.app, alice)).code).toBe('ok');
    await other.kms.disableKey(await request(alice), { keyId: key.keyId });
    expect((await key.decrypt(t.app, alice)).code).toBe('DisabledException');
    await other.kms.enableKey(await request(alice), { keyId: key.keyId });
    expect((await key.decrypt(t.app, alice)).code).toBe('ok');
  });

  it('an alias retargeted elsewhere: Encrypt through the alias uses the new key', async () => {
    const one = await t.app.kms.createKey(await request(alice), { description: 'gc-alias-1' });
    const two = await t.app.kms.createKey(await request(alice), { description: 'gc-alias-2' });
    const aliasName = `alias/gc-${randomBytes(4).toString('hex')}`;
    await t.app.aliases.createAlias(await request(alice), { aliasName, targetKeyId: one.keyMetadata.keyId });
    const encrypt = async () => (await t.app.crypto.encrypt(await request(alice), { keyId: aliasName, plaintext: randomBytes(8) })).keyId;
    expect(await encrypt()).toBe(one.keyMetadata.arn);
    expect(await encrypt()).toBe(one.keyMetadata.arn);
    await other.aliases.updateAlias(await request(alice), { aliasName, targetKeyId: two.keyMetadata.keyId });
    expect(await encrypt()).toBe(two.keyMetadata.arn);
  });

  it("with the fence feed, another process's change drops the cached view before any request finds it stale", async () => {
    const feed = await startFenceFeed(t.app);
    try {
      const key = await keyWithBlob('gc-feed');
      expect((await key.decrypt(t.app, alice)).code).toBe('ok');
      await other.kms.disableKey(await request(alice), { keyId: key.keyId });
      // The feed's NOTIFY arrives at DisableKey's commit; wait for the view to be dropped ...
      const cache = t.app.groupCommit!.cache;
      await waitFor(async () => !cache.holds(key.keyId), 'the disabled key is dropped from the cache', 5000);
      const before = stats(t.app);
      expect((await key.decrypt(t.app, alice)).code).toBe('DisabledException');
      // ... so the refusal was decided on a fresh view: no retry.
      expect(stats(t.app).fenced - before.fenced).toBe(0);
    } finally {
      await feed?.close();
    }
  });
});

describe('a batch goes to Postgres as literals', () => {
  it('stores every record exactly as given, whatever quotes, dollar tags and escapes its values hold', async () => {
    const { keyMetadata } = await t.app.kms.createKey(await request(alice), { description: 'gc-literals' });
    const contexts: Record<string, string>[] = [
      { a: '$q$', b: 'ends with $q', c: '$q0$ and $q1$ \' " \\ \n \t ünïcødé 🔑', d: '$$', e: '' },
      { x$q: '$q$$q0$$q$', "o'brien": "E'\\x41'" },
    ];
    const ids = await Promise.all(
      contexts.map(async (encryptionContext) => {
        const ctx = await request(alice);
        await t.app.crypto.encrypt(ctx, { keyId: keyMetadata.keyId, plaintext: randomBytes(4), encryptionContext });
        return ctx.requestId;
      }),
    );
    for (const [i, requestId] of ids.entries()) {
      const [record] = (await recordsOf(requestId)) as unknown as { requestParameters: { encryptionContext: unknown } }[];
      expect(record!.requestParameters.encryptionContext).toEqual(contexts[i]);
    }
  });
});

describe('batches beside a slow one (a test trigger sleeps on batch "slow", fails on "poison")', () => {
  let slowDb: Db;
  let serial: Keyledger;
  let overlapDb: Db;
  let overlapping: Keyledger;
  let removeFaults: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    // One batch at a time, so that requests arriving while a slow batch commits all join the next one.
    slowDb = openDatabase(t.db.url, { as: 'app', max: 4, applicationName: 'keyledger-test-serial' });
    serial = createKeyledger({ db: slowDb, rootKey: t.rootKey, clock: t.clock, logger: t.app.logger, region: t.app.region, groupCommit: { maxInFlight: 1 } });
    overlapDb = openDatabase(t.db.url, { as: 'app', max: 8, applicationName: 'keyledger-test-overlap' });
    overlapping = createKeyledger({
      db: overlapDb,
      rootKey: t.rootKey,
      clock: t.clock,
      logger: t.app.logger,
      region: t.app.region,
      groupCommit: { maxInFlight: 4, minOverlap: 4 },
    });
    removeFaults = await installTestTrigger(
      t.db.owner,
      'test_batch_faults',
      'BEFORE INSERT',
      'events',
      `IF NEW.type = 'AuditRecord' AND NEW.data->>'outcome' = 'success' THEN
         IF NEW.data#>>'{requestParameters,encryptionContext,batch}' = 'slow' THEN PERFORM pg_sleep(1); END IF;
         IF NEW.data#>>'{requestParameters,encryptionContext,batch}' = 'poison' THEN RAISE EXCEPTION 'test: this batch cannot be written'; END IF;
       END IF;
       RETURN NEW;`,
    );
  });
  afterAll(async () => {
    await removeFaults?.();
    await slowDb?.destroy();
    await overlapDb?.destroy();
  });

  /** Resolves once a batch of the app with this application_name sleeps in the trigger. */
  const batchSleeping = (applicationName: string) =>
    waitFor(
      async () =>
        (
          await sql<{
            n: number;
          }>`select count(*)::int as n from pg_stat_activity where application_name = ${applicationName} and wait_event = 'PgSleep'`.execute(t.db.owner)
        ).rows[0]!.n > 0,
      'the slow batch is committing',
      10_000,
    );

  it('one unwritable record in a batch of ten: all ten answer KMSInternalException, with no data key, and are recorded as failures', async () => {
    const { keyMetadata } = await serial.kms.createKey(await request(alice), { description: 'gc-batch' });
    const generate = async (batch: string) => {
      const ctx = await request(alice);
      try {
        const out = await serial.dataKeys.generateDataKey(ctx, { keyId: keyMetadata.keyId, keySpec: 'AES_256', encryptionContext: { batch } });
        return { requestId: ctx.requestId, code: 'ok', out };
      } catch (error) {
        if (!(error instanceof KmsError)) throw error;
        return { requestId: ctx.requestId, code: error.code, message: error.message, out: undefined };
      }
    };
    await generate('warm'); // the key's view is cached: the ten below decide without a query
    const slow = generate('slow');
    await batchSleeping('keyledger-test-serial');
    const before = stats(serial);
    const ten = await Promise.all([...Array.from({ length: 9 }, () => generate('innocent')), generate('poison')]);
    expect((await slow).code).toBe('ok');

    expect(ten.map((r) => r.code)).toEqual(Array(10).fill('KMSInternalException'));
    for (const r of ten) {
      expect(r.out).toBeUndefined();
      expect(r.message).toBe('An internal error occurred. The request was not completed.');
      // Each request is recorded once, as the failure its caller saw.
      expect((await recordsOf(r.requestId)).map((x) => [x.outcome, x.errorCode, x.responseElements])).toEqual([['failure', 'KMSInternalException', null]]);
    }
    const after = stats(serial);
    expect(after.failedBatches - before.failedBatches).toBe(1);
    // The batch that failed held all ten: the slow one committed alone before it.
    expect(after.batches - before.batches).toBe(1);
  });

  it('records arriving while a batch commits start another beside it only once minOverlap of them wait, and then share it', async () => {
    const { keyMetadata } = await overlapping.kms.createKey(await request(alice), { description: 'gc-overlap' });
    const generate = async (batch: string) =>
      overlapping.dataKeys.generateDataKey(await request(alice), { keyId: keyMetadata.keyId, keySpec: 'AES_256', encryptionContext: { batch } });
    await generate('warm');
    let slowSettled = false;
    const slow = generate('slow').finally(() => (slowSettled = true));
    await batchSleeping('keyledger-test-overlap');
    const before = stats(overlapping);
    // Four records while the slow batch sleeps: the first three wait, the fourth starts one batch for all four.
    await Promise.all(Array.from({ length: 4 }, () => generate('innocent')));
    const after = stats(overlapping);
    expect(slowSettled).toBe(false);
    expect([after.batches - before.batches, after.records - before.records]).toEqual([1, 4]);
    await slow;
  });
});

describe('DisableKey racing batches of two processes', () => {
  it('no Decrypt recorded after KeyDisabled in log order succeeded; every later one was refused', async () => {
    const key = await keyWithBlob('gc-race');
    const lifecycleDb = openDatabase(t.db.url, { as: 'app', max: 1, applicationName: 'keyledger-test-lifecycle' });
    const lifecycle = createKeyledger({ db: lifecycleDb, rootKey: t.rootKey, clock: t.clock, logger: t.app.logger, region: t.app.region, groupCommit: false });
    const attempts: { requestId: string; code: string; after: boolean }[] = [];
    let disabled = false;
    let stop = false;
    const client = async (app: Keyledger) => {
      let refusedAfter = 0;
      for (let i = 0; i < 400 && !stop && refusedAfter < 2; i++) {
        const after = disabled;
        const a = await key.decrypt(app, alice);
        attempts.push({ ...a, after });
        if (after) refusedAfter++;
      }
    };
    try {
      const clients = Array.from({ length: 16 }, (_, n) => client(n % 2 === 0 ? t.app : other));
      await waitFor(async () => attempts.filter((a) => a.code === 'ok').length >= 32, 'both processes are serving', 20_000);
      await lifecycle.kms.disableKey(await request(alice), { keyId: key.keyId });
      disabled = true;
      await Promise.all(clients);
    } finally {
      stop = true;
      await lifecycleDb.destroy();
    }

    expect(attempts.filter((a) => a.code !== 'ok' && a.code !== 'DisabledException')).toEqual([]);
    expect(attempts.filter((a) => a.after && a.code === 'ok')).toEqual([]);
    expect(stats(t.app).batches + stats(other).batches).toBeGreaterThan(0);

    const ids = new Set(attempts.map((a) => a.requestId));
    const rows = await t.db.owner
      .selectFrom('events')
      .select(['global_position', 'stream_id', 'type', 'data'])
      .where((eb) =>
        eb.or([eb('stream_id', '=', `key-${key.keyId}`), eb.and([eb('type', '=', 'AuditRecord'), eb(sql<string>`data->>'eventName'`, '=', 'Decrypt')])]),
      )
      .orderBy('global_position')
      .execute();
    const disabledAt = BigInt(rows.find((e) => e.type === 'KeyDisabled')!.global_position);
    const decrypts = rows.filter((e) => e.type === 'AuditRecord' && ids.has((e.data as { requestId: string }).requestId));
    expect(decrypts).toHaveLength(attempts.length);
    const outcome = (e: (typeof rows)[number]) => (e.data as { outcome: string; errorCode?: string }).outcome;
    expect(decrypts.filter((e) => BigInt(e.global_position) > disabledAt && outcome(e) === 'success')).toEqual([]);
    expect(decrypts.filter((e) => BigInt(e.global_position) < disabledAt && outcome(e) !== 'success')).toEqual([]);
  });
});

describe('the notices of a committed batch', () => {
  it('a notice that cannot go out fails no request: the batch is committed, and its records are answered as written', async () => {
    const committer = new GroupCommitter(t.db.app, {
      notices: {
        publish: () => {
          throw new Error('test: the notice relay is broken');
        },
      },
    });
    const requestIds = [randomUUID(), randomUUID()];
    const written = await Promise.all(
      requestIds.map((requestId) =>
        committer.submit({
          streamId: `request-${requestId}`,
          event: { type: 'AuditRecord', data: { eventName: 'Test', requestId, outcome: 'success' } },
          recordedAt: new Date(),
          fences: new Map(),
        }),
      ),
    );
    expect(written).toEqual([true, true]);
    expect(committer.stats()).toMatchObject({ records: 2, fenced: 0, failedBatches: 0 });
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM events WHERE stream_id IN (${sql.join(requestIds.map((id) => `request-${id}`))})`.execute(t.db.owner);
    expect(rows[0]!.n).toBe(2);
    await committer.drained();
  });
});
