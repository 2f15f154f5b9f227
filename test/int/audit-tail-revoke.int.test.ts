import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyledger, type Keyledger } from '../../src/app.ts';
import { KmsError } from '../../src/domain/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/concurrency.ts';

let t: TestApp;
/** The same database, with a tail that re-checks its caller on every pass. */
let eager: Keyledger;
/** The same database with the default re-check (30 s) and small caps on open tails. */
let capped: Keyledger;

beforeAll(async () => {
  t = await createTestApp();
  eager = createKeyledger({
    db: t.db.app,
    rootKey: t.rootKey,
    clock: t.clock,
    logger: createLogger('silent'),
    region: 'us-east-1',
    auditTailPollMs: 50,
    auditTailRecheckMs: 0,
    checkpointPollMs: 50,
  });
  capped = createKeyledger({
    db: t.db.app,
    rootKey: t.rootKey,
    clock: t.clock,
    logger: createLogger('silent'),
    region: 'us-east-1',
    subscriptionLimits: { perPrincipal: 2, perProcess: 3 },
  });
});
afterAll(async () => {
  await eager?.auditFeed.close();
  await capped?.auditFeed.close();
  await t?.close();
});

const reader = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['cloudtrail:LookupEvents', 'kms:ListKeys'], Resource: '*' }] });

async function nextWithin<T>(iterator: AsyncIterator<T>, ms: number): Promise<IteratorResult<T> | 'timeout' | { error: unknown }> {
  return Promise.race([iterator.next().catch((error: unknown) => ({ error })), new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms))]);
}

async function listKeys(app: Keyledger, p: Principal): Promise<void> {
  await app.kms.listKeys({ ...(await t.ctx(p)), requestId: randomUUID() }, {});
}

/** The SubscribeAuditEvents (or `eventName`) records of `principalArn` that failed with `errorCode`. */
async function failedSubscriptions(principalArn: string, errorCode: string, eventName = 'SubscribeAuditEvents'): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM events
    WHERE type = 'AuditRecord' AND data ->> 'eventName' = ${eventName}
      AND data ->> 'errorCode' = ${errorCode} AND data -> 'userIdentity' ->> 'principalArn' = ${principalArn}`.execute(t.db.owner);
  return rows[0]!.n;
}

function expectAccessDenied(result: Awaited<ReturnType<typeof nextWithin>>): void {
  expect(result).toHaveProperty('error');
  const error = (result as { error: unknown }).error;
  expect(error).toBeInstanceOf(KmsError);
  expect((error as KmsError).code).toBe('AccessDeniedException');
}

describe('a running audit tail', () => {
  it('ends with AccessDeniedException, recorded, as soon as the log records that its caller lost the policy', async () => {
    const admin = await t.newAccount('tail-revoke-event');
    const watcher = await t.newUser(admin.accountId, 'watcher', reader);
    // The default re-check is every 30 s: only the DeletePrincipalPolicy record itself can end the tail in time.
    const tail = await capped.audit.followAuditEvents(await t.ctx(watcher), { filter: { eventNames: ['ListKeys'] } });
    await listKeys(capped, admin);
    const first = await nextWithin(tail, 10_000);
    expect((first as IteratorResult<{ node: { eventName: string } }>).value.node.eventName).toBe('ListKeys');

    await capped.identity.deletePrincipalPolicyAsCaller(
      { ...(await t.ctx(admin)), requestId: randomUUID() },
      { principalArn: watcher.principalArn, policyName: 'test' },
    );
    const started = Date.now();
    expectAccessDenied(await nextWithin(tail, 10_000));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await failedSubscriptions(watcher.principalArn, 'AccessDeniedException')).toBe(1);
    // Its slot is given back.
    await expect(capped.audit.followAuditEvents(await t.ctx(admin), {}).then((x) => x.return?.())).resolves.toBeDefined();
  });

  it('ends once its caller may no longer read the audit log, even when the change bypassed the log (the periodic re-check)', async () => {
    const admin = await t.newAccount('tail-revoke');
    const watcher = await t.newUser(admin.accountId, 'watcher', reader);
    const tail = await eager.audit.followAuditEvents(await t.ctx(watcher), { filter: { eventNames: ['ListKeys'] } });
    await listKeys(eager, watcher);
    const first = await nextWithin(tail, 10_000);
    expect((first as IteratorResult<{ node: { eventName: string } }>).value.node.eventName).toBe('ListKeys');

    await t.db.owner.deleteFrom('principal_policies').where('principal_arn', '=', watcher.principalArn).execute();
    await listKeys(eager, admin);
    expectAccessDenied(await nextWithin(tail, 10_000));
    expect(await failedSubscriptions(watcher.principalArn, 'AccessDeniedException')).toBe(1);
  });

  it('ends once its access key is deactivated', async () => {
    const admin = await t.newAccount('tail-inactive');
    const watcher = await t.newUser(admin.accountId, 'watcher', reader);
    const tail = await eager.audit.followAuditEvents(await t.ctx(watcher), { filter: { eventNames: ['ListKeys'] } });
    await t.db.owner.updateTable('access_keys').set({ status: 'Inactive' }).where('access_key_id', '=', watcher.accessKeyId).execute();
    await listKeys(eager, admin);
    expectAccessDenied(await nextWithin(tail, 10_000));
  });
});

describe('a running checkpoints stream', () => {
  it('ends with AccessDeniedException, recorded as SubscribeCheckpoints, once its caller may no longer read the audit log', async () => {
    const admin = await t.newAccount('checkpoints-revoke');
    const watcher = await t.newUser(admin.accountId, 'watcher', reader);
    const stream = await eager.checkpoints.followCheckpoints(await t.ctx(watcher), {});
    const next = stream.next().catch((error: unknown) => ({ error }));
    const within = (ms: number) => Promise.race([next, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms))]);
    expect(await within(300)).toBe('timeout'); // running: no checkpoint yet, and still allowed
    await t.db.owner.deleteFrom('principal_policies').where('principal_arn', '=', watcher.principalArn).execute();
    expectAccessDenied(await within(10_000));
    expect(await failedSubscriptions(watcher.principalArn, 'AccessDeniedException', 'SubscribeCheckpoints')).toBe(1);
    expect(eager.subscriptions.open).toBe(0);
  });
});

describe('open audit tails', () => {
  it('are capped per principal and per process with LimitExceededException, recorded, and a closed one frees its slot', async () => {
    const admin = await t.newAccount('tail-caps');
    const watcher = await t.newUser(admin.accountId, 'watcher', reader);
    const other = await t.newUser(admin.accountId, 'other', reader);
    const open = async (p: Principal) => capped.audit.followAuditEvents(await t.ctx(p), {});
    const code = (promise: Promise<unknown>) =>
      promise.then(
        () => 'started',
        (error: unknown) => (error instanceof KmsError ? error.code : String(error)),
      );

    const a = await open(watcher);
    const b = await open(watcher);
    expect(await code(open(watcher))).toBe('LimitExceededException');
    expect(await failedSubscriptions(watcher.principalArn, 'LimitExceededException')).toBe(1);
    const c = await open(other);
    // Three in the process: the other principal is under its own cap, but the process is full.
    expect(await code(open(other))).toBe('LimitExceededException');
    expect(capped.audit.openTails).toBe(3);

    await a.return?.();
    const d = await open(watcher);
    for (const tail of [b, c, d]) await tail.return?.();
    expect(capped.audit.openTails).toBe(0);
  });

  it('share their caps with checkpoints subscriptions, which are capped likewise, recorded, and free their slot when closed', async () => {
    const admin = await t.newAccount('checkpoint-caps');
    const witness = await t.newUser(admin.accountId, 'witness', reader);
    const other = await t.newUser(admin.accountId, 'other', reader);
    const stream = async (p: Principal) => capped.checkpoints.followCheckpoints(await t.ctx(p), {});
    const code = (promise: Promise<unknown>) =>
      promise.then(
        () => 'started',
        (error: unknown) => (error instanceof KmsError ? error.code : String(error)),
      );

    const a = await stream(witness);
    const tail = await capped.audit.followAuditEvents(await t.ctx(witness), {});
    // The witness holds two subscriptions, one of each kind: its cap.
    expect(await code(stream(witness))).toBe('LimitExceededException');
    expect(await code(capped.audit.followAuditEvents(await t.ctx(witness), {}))).toBe('LimitExceededException');
    expect(await failedSubscriptions(witness.principalArn, 'LimitExceededException', 'SubscribeCheckpoints')).toBe(1);
    const b = await stream(other);
    // Three in the process.
    expect(await code(stream(other))).toBe('LimitExceededException');
    expect(capped.subscriptions.open).toBe(3);

    await a.return?.();
    const c = await stream(witness);
    for (const s of [b, c, tail]) await s.return?.();
    expect(capped.subscriptions.open).toBe(0);
  });

  it('that can deliver nothing are not woken by other records (an idle tail costs no query per request)', async () => {
    const busy = await t.newAccount('tail-busy');
    const quiet = await t.newAccount('tail-quiet');
    const app = createKeyledger({ db: t.db.app, rootKey: t.rootKey, clock: t.clock, logger: createLogger('silent'), region: 'us-east-1' });
    try {
      // Idle: another account's tail, and one of the busy account waiting for an operation nobody calls.
      const idle = [
        await app.audit.followAuditEvents(await t.ctx(quiet), {}),
        await app.audit.followAuditEvents(await t.ctx(busy), { filter: { eventNames: ['ScheduleKeyDeletion'] } }),
      ];
      const before = app.auditFeed.wakeups;
      for (let i = 0; i < 20; i++) await listKeys(app, busy);
      // The records were committed and notified: a tail that wants them is woken at once.
      const live = await app.audit.followAuditEvents(await t.ctx(busy), { filter: { eventNames: ['ListKeys'] }, after: null });
      await listKeys(app, busy);
      expect(await nextWithin(live, 10_000)).toHaveProperty('value.node.eventName', 'ListKeys');
      // The tail may have read the record before its notification reached this process (under load): wait for it.
      await waitFor(async () => app.auditFeed.wakeups - before >= 1, 'the notification of the last ListKeys', 5_000);
      expect(app.auditFeed.wakeups - before).toBeLessThanOrEqual(2);
      for (const tail of [...idle, live]) await tail.return?.();
    } finally {
      await app.auditFeed.close();
    }
  });
});
