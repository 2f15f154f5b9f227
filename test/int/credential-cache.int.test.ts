import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyledger, startFenceFeed, type Keyledger } from '../../src/app.ts';
import { KmsError } from '../../src/domain/errors.ts';
import type { RequestContext } from '../../src/service/context.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { storedAuditRecords } from '../support/aws-clients.ts';
import { waitFor } from '../support/concurrency.ts';

/**
 * Cached credentials (issue 14, item 3): authentication reads an access key,
 * its principal and identity policies from the process's cache, remembering
 * the principal's fence (sql/0033). Changes below are made as the database
 * owner, behind the service's back, as another process or an operator would:
 * the cache still holds the old credentials when the next request arrives,
 * and the fence must make that request answer on the new ones.
 */

let t: TestApp;
let alice: Principal;
let app: Keyledger;

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('alice');
  app = t.app;
});
afterAll(async () => {
  await t?.close();
});

const decryptAllowed = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kms:Decrypt', 'kms:DescribeKey'], Resource: '*' }] });
const credentials = () => app.groupCommit!.credentials;
const fenced = () => app.groupCommit!.committer.stats().fenced;

/** A context authenticated as `p` now: from the cache when it holds `p`'s key. */
async function request(p: Principal): Promise<RequestContext> {
  const auth = await app.identity.authenticate(p.accessKeyId, p.secretAccessKey);
  if (!auth.ok) throw new KmsError(auth.failure.code, auth.failure.message);
  return { requestId: randomUUID(), caller: auth.caller, sourceIp: '203.0.113.9', userAgent: 'credential-cache-test' };
}

async function outcome(run: (ctx: RequestContext) => Promise<unknown>, ctx: RequestContext): Promise<string> {
  try {
    await run(ctx);
    return 'ok';
  } catch (error) {
    if (error instanceof KmsError) return error.code;
    throw error;
  }
}

async function recordsOf(requestId: string) {
  const rows = await t.db.owner
    .selectFrom('events')
    .select('data')
    .where('type', '=', 'AuditRecord')
    .where(sql<string>`data->>'requestId'`, '=', requestId)
    .execute();
  return rows.map((r) => {
    const data = r.data as { outcome: string; errorCode?: string };
    return [data.outcome, data.errorCode ?? null];
  });
}

async function userWithCiphertext(name: string) {
  const user = await t.newUser(alice.accountId, `${name}-${randomBytes(3).toString('hex')}`, decryptAllowed);
  const { keyMetadata } = await app.kms.createKey(await t.ctx(alice), { description: name });
  const { ciphertextBlob } = await app.crypto.encrypt(await t.ctx(alice), { keyId: keyMetadata.keyId, plaintext: randomBytes(16) });
  const decrypt = (ctx: RequestContext) => app.crypto.decrypt(ctx, { ciphertextBlob });
  const describe = (ctx: RequestContext) => app.kms.describeKey(ctx, { keyId: keyMetadata.keyId });
  return { user, decrypt, describe };
}

describe('credentials from the cache are checked against the principal fence', () => {
  it('authentication is served from the cache once a key has been read', async () => {
    const { user, decrypt } = await userWithCiphertext('cached');
    expect(await outcome(decrypt, await request(user))).toBe('ok');
    const ctx = await request(user);
    expect(ctx.caller.credentialsFence).toBeTypeOf('bigint');
    // The row is gone, yet the key still authenticates: the answer came from the cache ...
    await t.db.owner.updateTable('access_keys').set({ status: 'Inactive' }).where('access_key_id', '=', user.accessKeyId).execute();
    const stale = await request(user);
    expect(stale.caller.accessKeyId).toBe(user.accessKeyId);
    // ... and the fence refuses what it decided: the batch sends the Decrypt back, and its recheck refuses it.
    const before = fenced();
    expect(await outcome(decrypt, stale)).toBe('UnrecognizedClientException');
    expect(fenced() - before).toBe(1);
    expect(await recordsOf(stale.requestId)).toEqual([['failure', 'UnrecognizedClientException']]);
    // The stale entry was dropped: the next authentication reads the row, and refuses.
    await expect(request(user)).rejects.toMatchObject({ code: 'UnrecognizedClientException' });
  });

  it('an access key deactivated elsewhere: a management request on the cached caller is refused too', async () => {
    const { user, describe } = await userWithCiphertext('inactive-describe');
    expect(await outcome(describe, await request(user))).toBe('ok');
    await t.db.owner.updateTable('access_keys').set({ status: 'Inactive' }).where('access_key_id', '=', user.accessKeyId).execute();
    const stale = await request(user);
    expect(await outcome(describe, stale)).toBe('UnrecognizedClientException');
    expect(await recordsOf(stale.requestId)).toEqual([['failure', 'UnrecognizedClientException']]);
  });

  it('an identity policy removed elsewhere takes effect on the next Decrypt, with one fenced retry and one record', async () => {
    const { user, decrypt } = await userWithCiphertext('policy-removed');
    expect(await outcome(decrypt, await request(user))).toBe('ok');
    expect(await outcome(decrypt, await request(user))).toBe('ok');
    await t.db.owner.deleteFrom('principal_policies').where('principal_arn', '=', user.principalArn).execute();
    const stale = await request(user);
    expect(stale.caller.identityPolicies).toHaveLength(1); // what the cache still says
    const before = fenced();
    expect(await outcome(decrypt, stale)).toBe('AccessDeniedException');
    expect(fenced() - before).toBe(1);
    expect(await recordsOf(stale.requestId)).toEqual([['failure', 'AccessDeniedException']]);
  });

  it('an identity policy added elsewhere applies at once: the stale caller is refreshed, not refused', async () => {
    const user = await t.newUser(alice.accountId, `policy-added-${randomBytes(3).toString('hex')}`);
    const { keyMetadata } = await app.kms.createKey(await t.ctx(alice), { description: 'policy-added' });
    const describe = (ctx: RequestContext) => app.kms.describeKey(ctx, { keyId: keyMetadata.keyId });
    expect(await outcome(describe, await request(user))).toBe('AccessDeniedException');
    await app.identity.putPrincipalPolicy(
      { requestId: randomUUID(), invokedBy: 'credential-cache-test' },
      { principalArn: user.principalArn, policyName: 'grant', policyDocument: decryptAllowed },
    );
    const stale = await request(user);
    expect(stale.caller.identityPolicies).toEqual([]);
    expect(await outcome(describe, stale)).toBe('ok');
    // Decided on the caller as its credentials stand now (the request's scope holds it; the context it came with is left as it was).
    const [record] = await storedAuditRecords(t, stale.requestId);
    expect(record?.authorization.allowedBy).toContainEqual(expect.objectContaining({ kind: 'identityPolicy', policy: 'grant' }));
  });

  it('another process (its own pool and caches) sees a change on its next request', async () => {
    const other = createKeyledger({ db: t.db.app, rootKey: t.rootKey, clock: t.clock, logger: app.logger, region: app.region });
    const { user } = await userWithCiphertext('other-process');
    const { keyMetadata } = await other.kms.createKey(await t.ctx(alice), { description: 'other' });
    const { ciphertextBlob } = await other.crypto.encrypt(await t.ctx(alice), { keyId: keyMetadata.keyId, plaintext: randomBytes(8) });
    const viaOther = async () => {
      const auth = await other.identity.authenticate(user.accessKeyId, user.secretAccessKey);
      if (!auth.ok) return auth.failure.code;
      return outcome((ctx) => other.crypto.decrypt(ctx, { ciphertextBlob }), { requestId: randomUUID(), caller: auth.caller, sourceIp: null, userAgent: null });
    };
    expect(await viaOther()).toBe('ok');
    // The change is made through this process; the other one's cache is stale until its batch finds the fence moved.
    await app.identity.putPrincipalPolicy(
      { requestId: randomUUID(), invokedBy: 'credential-cache-test' },
      {
        principalArn: user.principalArn,
        policyName: 'test',
        policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'kms:Decrypt', Resource: '*' }] }),
      },
    );
    expect(await viaOther()).toBe('AccessDeniedException');
  });

  it('with the fence feed, a change to a principal drops its cached credentials', async () => {
    const feed = await startFenceFeed(app);
    try {
      const { user, decrypt } = await userWithCiphertext('feed');
      expect(await outcome(decrypt, await request(user))).toBe('ok');
      const holds = async () => {
        // Authenticating while the row says Inactive answers from the cache only while the entry is held.
        const auth = await app.identity.authenticate(user.accessKeyId, user.secretAccessKey);
        return auth.ok;
      };
      const sizeBefore = credentials().size;
      expect(sizeBefore).toBeGreaterThan(0);
      await t.db.owner.updateTable('access_keys').set({ status: 'Inactive' }).where('access_key_id', '=', user.accessKeyId).execute();
      await waitFor(async () => !(await holds()), 'the deactivated key is dropped from the cache', 5000);
      await expect(request(user)).rejects.toMatchObject({ code: 'UnrecognizedClientException' });
    } finally {
      await feed?.close();
    }
  });
});
