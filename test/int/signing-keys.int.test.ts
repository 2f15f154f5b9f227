import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startFenceFeed } from '../../src/app.ts';
import type { RunningServer } from '../../src/api/http-server.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { serveOverHttp } from '../support/aws.ts';
import { wire } from '../support/aws-clients.ts';
import { waitFor } from '../support/concurrency.ts';

/**
 * SigV4 verification keeps the signing key it derives from an access key's
 * secret, per key and scope (IdentityService#withSigningKey). What it must not
 * keep is the access key's standing: the key is looked up on every request, so
 * a key deactivated, deleted, or given another secret is judged on that, not on
 * the signing key held from before.
 */

let t: TestApp;
let server: RunningServer;
let admin: Principal;

beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('signing-keys');
  server = await serveOverHttp(t);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

const listKeys = (p: Pick<Principal, 'accessKeyId' | 'secretAccessKey'>) => wire(server, 'ListKeys', '{}', p, { signingDate: t.clock.now() });
const ADMIN = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] });

describe('the signing key held for an access key', () => {
  it('answers while the key is active, and a key deactivated behind the service is refused on the next request', async () => {
    const user = await t.newUser(admin.accountId, `deactivated-${randomBytes(3).toString('hex')}`, ADMIN);
    for (let i = 0; i < 3; i++) expect((await listKeys(user)).status).toBe(200);
    await t.db.owner.updateTable('access_keys').set({ status: 'Inactive' }).where('access_key_id', '=', user.accessKeyId).execute();
    const refused = await listKeys(user);
    expect([refused.status, refused.json?.__type]).toEqual([400, 'UnrecognizedClientException']);
  });

  it('a deleted access key is refused on the next request', async () => {
    const user = await t.newUser(admin.accountId, `deleted-${randomBytes(3).toString('hex')}`, ADMIN);
    expect((await listKeys(user)).status).toBe(200);
    await t.db.owner.deleteFrom('access_keys').where('access_key_id', '=', user.accessKeyId).execute();
    const refused = await listKeys(user);
    expect([refused.status, refused.json?.__type]).toEqual([400, 'UnrecognizedClientException']);
  });

  it('an access key given another secret by an operator: once the fence feed drops its credentials, only the new secret signs', async () => {
    const feed = await startFenceFeed(t.app);
    onTestFinished(() => feed?.close());
    const user = await t.newUser(admin.accountId, `resecret-${randomBytes(3).toString('hex')}`, ADMIN);
    expect((await listKeys(user)).status).toBe(200);
    const secret = randomBytes(30).toString('base64');
    const wrapped = t.rootKey.wrap(Buffer.from(secret, 'utf8'), `access-key:${user.accessKeyId}`);
    await t.db.owner.updateTable('access_keys').set({ wrapped_secret: wrapped }).where('access_key_id', '=', user.accessKeyId).execute();
    const renewed = { accessKeyId: user.accessKeyId, secretAccessKey: secret };
    await waitFor(async () => (await listKeys(renewed)).status === 200, 'the new secret to be accepted');
    const old = await listKeys(user);
    expect([old.status, old.json?.__type]).toEqual([400, 'InvalidSignatureException']);
    expect((await listKeys(renewed)).status).toBe(200);
  });

  it('a wrong signature is refused even when the key for its scope is held', async () => {
    expect((await listKeys(admin)).status).toBe(200);
    const wrong = await listKeys({ accessKeyId: admin.accessKeyId, secretAccessKey: `${admin.secretAccessKey}x` });
    expect([wrong.status, wrong.json?.__type]).toEqual([400, 'InvalidSignatureException']);
  });
});
