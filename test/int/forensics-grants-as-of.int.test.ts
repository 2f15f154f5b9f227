import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';

let t: TestApp;
let alice: Principal;

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('grants-as-of');
});
afterAll(() => t?.close());

const KEY_AS_OF =
  `query($k: String!, $at: DateTime!) { keyAsOf(keyId: $k, asOf: $at) ` +
  `{ grants { grantId granteePrincipal operations constraints { encryptionContextSubset } } } }`;

describe('keyAsOf and grants', () => {
  it('shows the grants live at each instant: none before, the grant while it lived, none once retired', async () => {
    const key = (await t.gql(alice, `mutation { createKey { keyMetadata { keyId } } }`)).data.createKey.keyMetadata;
    const grantee = await t.newUser(alice.accountId, 'time-grantee');
    const beforeGrant = t.clock.now();
    t.clock.advance({ hours: 1 });
    const g = await t.gql(alice, `mutation($i: CreateGrantInput!) { createGrant(input: $i) { grantId grantToken } }`, {
      i: { keyId: key.keyId, granteePrincipal: grantee.principalArn, operations: ['Decrypt'], constraints: { encryptionContextSubset: { tenant: 'acme' } } },
    });
    const whileLive = t.clock.now();
    t.clock.advance({ hours: 1 });
    await t.gql(alice, `mutation($k: String!, $g: String!) { revokeGrant(input: { keyId: $k, grantId: $g }) { requestId } }`, {
      k: key.keyId,
      g: g.data.createGrant.grantId,
    });
    const afterRevoke = t.clock.now();

    const at = async (instant: Date) => (await t.gql(alice, KEY_AS_OF, { k: key.keyId, at: instant.toISOString() })).data.keyAsOf.grants;
    expect(await at(beforeGrant)).toEqual([]);
    expect(await at(whileLive)).toEqual([
      {
        grantId: g.data.createGrant.grantId,
        granteePrincipal: grantee.principalArn,
        operations: ['Decrypt'],
        constraints: { encryptionContextSubset: { tenant: 'acme' } },
      },
    ]);
    expect(await at(afterRevoke)).toEqual([]);
    // The token is a grant's handle, never part of what time travel shows.
    const raw = await t.gql(alice, `query($k: String!, $at: DateTime!) { keyAsOf(keyId: $k, asOf: $at) { grants { grantId } } }`, {
      k: key.keyId,
      at: whileLive.toISOString(),
    });
    expect(JSON.stringify(raw)).not.toContain(g.data.createGrant.grantToken);
  });
});
