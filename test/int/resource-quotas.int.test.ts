import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tooManyKeysMessage } from '../../src/domain/quotas.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { storedAuditRecords } from '../support/aws-clients.ts';

/**
 * Resource quotas (issue 15, "What to build" 2): an account past its key
 * quota (AWS's 100,000; 3 here) is refused CreateKey with
 * LimitExceededException, recorded; keys pending deletion still count, and
 * other accounts are not affected.
 */

let t: TestApp;
let a: Principal;
let b: Principal;
const CREATE_KEY = `mutation { createKey(input: {}) { keyMetadata { keyId } } }`;

beforeAll(async () => {
  t = await createTestApp({ maxKeysPerAccount: 3 });
  a = await t.newAccount('resource-quotas-a');
  b = await t.newAccount('resource-quotas-b');
});
afterAll(() => t?.close());

describe('keys per account', () => {
  it('refuses the key past the quota with LimitExceededException, recorded, and counts keys pending deletion', async () => {
    const created = [];
    for (let i = 0; i < 3; i++) created.push((await t.gql(a, CREATE_KEY)).data.createKey.keyMetadata.keyId);
    const scheduled = await t.gql(a, `mutation($k: String!) { scheduleKeyDeletion(input: {keyId: $k, pendingWindowInDays: 7}) { keyState } }`, {
      k: created[0],
    });
    expect(scheduled.errors).toBeUndefined();
    const refused = await t.gql(a, CREATE_KEY);
    expect(refused.errors?.[0]?.extensions?.code).toBe('LimitExceededException');
    expect(refused.errors?.[0]?.message).toBe(tooManyKeysMessage(3));
    const [record] = await storedAuditRecords(t, refused.errors![0]!.extensions!.requestId!);
    expect(record).toMatchObject({ eventName: 'CreateKey', outcome: 'failure', errorCode: 'LimitExceededException' });
    // Another account has its own quota.
    expect((await t.gql(b, CREATE_KEY)).errors).toBeUndefined();
  });
});
