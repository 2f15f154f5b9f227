import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyledger, type Keyledger } from '../../src/app.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
let app: Keyledger;

beforeAll(async () => {
  t = await createTestApp();
  // The same database, with a tail that re-checks its caller on every pass.
  app = createKeyledger({ db: t.db.app, rootKey: t.rootKey, clock: t.clock, logger: createLogger('silent'), region: 'us-east-1', auditTailPollMs: 50, auditTailRecheckMs: 0 });
});
afterAll(async () => {
  await app?.auditFeed.close();
  await t?.close();
});

const reader = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['cloudtrail:LookupEvents', 'kms:ListKeys'], Resource: '*' }] });

async function nextWithin<T>(iterator: AsyncIterator<T>, ms: number): Promise<IteratorResult<T> | 'timeout'> {
  return Promise.race([iterator.next(), new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms))]);
}

describe('a running audit tail', () => {
  it('ends once its caller may no longer read the audit log', async () => {
    const admin = await t.newAccount('tail-revoke');
    const watcher = await t.newUser(admin.accountId, 'watcher', reader);
    const ctx = await t.ctx(watcher);
    const tail = await app.audit.followAuditEvents(ctx, { filter: { eventNames: ['ListKeys'] } });

    await app.kms.listKeys({ ...ctx, requestId: randomUUID() }, {});
    const first = await nextWithin(tail, 10_000);
    expect(first).not.toBe('timeout');
    expect((first as IteratorResult<{ node: { eventName: string } }>).value.node.eventName).toBe('ListKeys');

    // The watcher's policy is taken away: the tail stops, whatever happens next.
    await t.db.owner.deleteFrom('principal_policies').where('principal_arn', '=', watcher.principalArn).execute();
    await app.kms.listKeys({ ...(await t.ctx(admin)), requestId: randomUUID() }, {});
    const end = await nextWithin(tail, 10_000);
    expect(end).toEqual({ done: true, value: undefined });
  });

  it('ends once its access key is deactivated', async () => {
    const admin = await t.newAccount('tail-inactive');
    const watcher = await t.newUser(admin.accountId, 'watcher', reader);
    const ctx = await t.ctx(watcher);
    const tail = await app.audit.followAuditEvents(ctx, { filter: { eventNames: ['ListKeys'] } });
    await t.db.owner.updateTable('access_keys').set({ status: 'Inactive' }).where('access_key_id', '=', watcher.accessKeyId).execute();
    await app.kms.listKeys({ ...(await t.ctx(admin)), requestId: randomUUID() }, {});
    expect(await nextWithin(tail, 10_000)).toEqual({ done: true, value: undefined });
  });
});
