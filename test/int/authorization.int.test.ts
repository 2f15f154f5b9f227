import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, operator, type GqlResult, type Principal, type TestApp } from '../support/app.ts';

let t: TestApp;
let alice: Principal; // admin of account A
let bobAdmin: Principal; // admin of account B

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('account-a');
  bobAdmin = await t.newAccount('account-b');
});
afterAll(() => t?.close());

const b64 = (s: string) => Buffer.from(s).toString('base64');
const code = (r: GqlResult<unknown>) => r.errors?.[0]?.extensions?.code;
const statement = (s: object) => JSON.stringify({ Version: '2012-10-17', Statement: [s] });
const policy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });

const ENCRYPT = `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob } }`;
const DECRYPT = `mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext } }`;
const PUT_POLICY = `mutation($i: PutKeyPolicyInput!) { putKeyPolicy(input: $i) { requestId } }`;

async function createKey(as: Principal, input: Record<string, unknown> = {}) {
  const r = await t.gql(as, `mutation($i: CreateKeyInput) { createKey(input: $i) { keyMetadata { keyId arn } } }`, { i: input });
  expect(r.errors).toBeUndefined();
  return r.data.createKey.keyMetadata as { keyId: string; arn: string };
}

/** The audit record of the request an error names. */
async function recordOf(requestId: string) {
  const rows = await t.db.owner.selectFrom('events').select('data').where('stream_id', '=', `request-${requestId}`).execute();
  expect(rows).toHaveLength(1);
  return rows[0]!.data as any;
}

const adminPolicy = (accountId: string) =>
  policy({ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: 'kms:*', Resource: '*' });

describe('identity policies and the default key policy', () => {
  it('a principal without any policy may do nothing, and the refusal says why', async () => {
    const nobody = await t.newUser(alice.accountId, 'nobody');
    const r = await t.gql(nobody, `mutation { createKey { keyMetadata { keyId } } }`);
    expect(r.errors?.[0]).toMatchObject({
      message:
        `User: ${nobody.principalArn} is not authorized to perform: kms:CreateKey on resource: ` +
        `* because no identity-based policy allows the kms:CreateKey action`,
      extensions: { code: 'AccessDeniedException' },
    });
    const key = await createKey(alice);
    const e = await t.gql(nobody, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('x') } });
    expect(e.errors?.[0]?.message).toBe(
      `User: ${nobody.principalArn} is not authorized to perform: ` +
        `kms:Encrypt on resource: ${key.arn} because no identity-based policy allows the kms:Encrypt action`,
    );
    const record = await recordOf(e.errors![0]!.extensions!.requestId!);
    expect(record).toMatchObject({
      outcome: 'failure',
      errorCode: 'AccessDeniedException',
      authorization: { action: 'kms:Encrypt', decision: 'implicitDeny', allowedBy: [], deniedBy: [] },
    });
  });

  it("records which statements allowed a request: the key policy's delegation and the identity policy", async () => {
    const key = await createKey(alice);
    const e = await t.gql(alice, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('x') } });
    expect(e.errors).toBeUndefined();
    const { rows } = await t.db.owner
      .selectFrom('events')
      .select('data')
      .where('type', '=', 'AuditRecord')
      .execute()
      .then((r) => ({ rows: r }));
    const record = rows
      .map((r) => r.data as any)
      .filter((d) => d.eventName === 'Encrypt' && d.outcome === 'success')
      .at(-1);
    expect(record.authorization).toMatchObject({
      decision: 'allow',
      allowedBy: [
        { kind: 'keyPolicy', sid: 'Enable IAM User Permissions', via: 'account' },
        { kind: 'identityPolicy', policy: 'AdministratorAccess', sid: 'AdministratorAccess' },
      ],
    });
  });

  it('an identity policy can be narrow: Encrypt only, with a context condition', async () => {
    const key = await createKey(alice);
    const writer = await t.newUser(
      alice.accountId,
      'writer',
      statement({ Effect: 'Allow', Action: 'kms:Encrypt', Resource: key.arn, Condition: { StringEquals: { 'kms:EncryptionContext:app': 'billing' } } }),
    );
    expect((await t.gql(writer, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('x'), encryptionContext: { app: 'billing' } } })).errors).toBeUndefined();
    expect(code(await t.gql(writer, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('x'), encryptionContext: { app: 'other' } } }))).toBe(
      'AccessDeniedException',
    );
    const blob = (await t.gql(alice, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('x') } })).data.encrypt.ciphertextBlob;
    expect(code(await t.gql(writer, DECRYPT, { i: { ciphertextBlob: blob } }))).toBe('AccessDeniedException');
  });
});

describe('key policies', () => {
  it('role app may Decrypt only when encryptionContext.tenant equals its tag', async () => {
    const { principalArn } = await t.app.identity.createPrincipal(operator(), {
      accountId: alice.accountId,
      type: 'role',
      name: 'app',
      tags: { tenant: 'acme' },
    });
    const appKey = await t.app.identity.createAccessKey(operator(), { principalArn });
    const app: Principal = { accountId: alice.accountId, principalArn, accessKeyId: appKey.accessKeyId, secretAccessKey: appKey.secretAccessKey };
    const key = await createKey(alice, {
      policy: policy(JSON.parse(adminPolicy(alice.accountId)).Statement[0], {
        Sid: 'TenantDecrypt',
        Effect: 'Allow',
        Principal: { AWS: principalArn },
        Action: 'kms:Decrypt',
        Resource: '*',
        Condition: { StringEquals: { 'kms:EncryptionContext:tenant': '${aws:PrincipalTag/tenant}' } },
      }),
    });
    const acme = (await t.gql(alice, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('for acme'), encryptionContext: { tenant: 'acme' } } })).data.encrypt
      .ciphertextBlob;
    const globex = (await t.gql(alice, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('for globex'), encryptionContext: { tenant: 'globex' } } })).data
      .encrypt.ciphertextBlob;

    const ok = await t.gql(app, DECRYPT, { i: { ciphertextBlob: acme, encryptionContext: { tenant: 'acme' } } });
    expect(ok.errors).toBeUndefined();
    const denied = await t.gql(app, DECRYPT, { i: { ciphertextBlob: globex, encryptionContext: { tenant: 'globex' } } });
    // The admin statement delegates to the account, so what is missing is an identity policy for the role.
    expect(denied.errors?.[0]?.message).toBe(
      `User: ${principalArn} is not authorized to perform: kms:Decrypt on resource: ${key.arn} because no identity-based policy allows the kms:Decrypt action`,
    );

    const records = (await t.db.owner.selectFrom('events').select('data').where('type', '=', 'AuditRecord').execute()).map((r) => r.data as any);
    const allowed = records.find((d) => d.eventName === 'Decrypt' && d.userIdentity.principalArn === principalArn && d.outcome === 'success');
    expect(allowed.authorization.allowedBy).toEqual([expect.objectContaining({ kind: 'keyPolicy', sid: 'TenantDecrypt', via: 'principal' })]);
    expect(allowed.requestParameters.encryptionContext).toEqual({ tenant: 'acme' });
  });

  it('an explicit Deny in the key policy wins over any Allow', async () => {
    const key = await createKey(alice, {
      policy: policy(JSON.parse(adminPolicy(alice.accountId)).Statement[0], {
        Sid: 'NoDecrypt',
        Effect: 'Deny',
        Principal: '*',
        Action: 'kms:Decrypt',
        Resource: '*',
      }),
      bypassPolicyLockoutSafetyCheck: false,
    });
    const blob = (await t.gql(alice, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('x') } })).data.encrypt.ciphertextBlob;
    const r = await t.gql(alice, DECRYPT, { i: { ciphertextBlob: blob } });
    expect(r.errors?.[0]?.message).toBe(
      `User: ${alice.principalArn} is not authorized to perform: kms:Decrypt on resource: ${key.arn} with an explicit deny in a resource-based policy`,
    );
    const record = await recordOf(r.errors![0]!.extensions!.requestId!);
    expect(record.authorization).toMatchObject({ decision: 'explicitDeny', deniedBy: [{ kind: 'keyPolicy', sid: 'NoDecrypt', index: 1 }] });
  });

  it('putKeyPolicy validates the document and refuses a policy that would lock the caller out', async () => {
    const key = await createKey(alice);
    const malformed = await t.gql(alice, PUT_POLICY, { i: { keyId: key.keyId, policy: '{"Statement": [{"Effect": "Maybe"}]}' } });
    expect(code(malformed)).toBe('MalformedPolicyDocumentException');
    expect(malformed.errors?.[0]?.message).toMatch(/Effect/);
    const lockout = policy({ Effect: 'Allow', Principal: { AWS: bobAdmin.principalArn }, Action: 'kms:*', Resource: '*' });
    const refused = await t.gql(alice, PUT_POLICY, { i: { keyId: key.keyId, policy: lockout } });
    expect(refused.errors?.[0]).toMatchObject({ extensions: { code: 'MalformedPolicyDocumentException' } });
    expect(refused.errors?.[0]?.message).toMatch(/will not allow you to update the key policy/);
    const custom = policy(JSON.parse(adminPolicy(alice.accountId)).Statement[0], {
      Sid: 'Extra',
      Effect: 'Allow',
      Principal: { AWS: bobAdmin.accountId },
      Action: 'kms:DescribeKey',
      Resource: '*',
    });
    expect((await t.gql(alice, PUT_POLICY, { i: { keyId: key.keyId, policy: custom } })).errors).toBeUndefined();
    const got = await t.gql(
      alice,
      `query($k: String!) { getKeyPolicy(input: { keyId: $k }) { policy policyName } listKeyPolicies(input: { keyId: $k }) { policyNames } }`,
      { k: key.keyId },
    );
    expect(got.data).toEqual({ getKeyPolicy: { policy: custom, policyName: 'default' }, listKeyPolicies: { policyNames: ['default'] } });
    const bypass = await t.gql(alice, PUT_POLICY, { i: { keyId: key.keyId, policy: lockout, bypassPolicyLockoutSafetyCheck: true } });
    expect(bypass.errors).toBeUndefined();
    // Locked out indeed: the admin can no longer change or even read it.
    expect(code(await t.gql(alice, PUT_POLICY, { i: { keyId: key.keyId, policy: custom } }))).toBe('AccessDeniedException');
  });
});

describe('cross-account', () => {
  it('another account cannot see or use a key until the key policy and its own identity policy both allow', async () => {
    const key = await createKey(alice);
    const blob = (await t.gql(alice, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('shared') } })).data.encrypt.ciphertextBlob;
    const bobUser = await t.newUser(bobAdmin.accountId, 'reader');

    for (const as of [bobAdmin, bobUser]) {
      expect(code(await t.gql(as, DECRYPT, { i: { ciphertextBlob: blob } }))).toBe('InvalidCiphertextException');
      expect(code(await t.gql(as, `query($k: String!) { describeKey(input: { keyId: $k }) { keyMetadata { keyId } } }`, { k: key.arn }))).toBe(
        'NotFoundException',
      );
      const list = await t.gql(as, `{ listKeys(input: { limit: 1000 }) { keys { keyId } } }`);
      expect(list.data?.listKeys?.keys?.map((k: { keyId: string }) => k.keyId) ?? []).not.toContain(key.keyId);
    }

    // The key policy now trusts account B: its admin (identity "*") may decrypt, its bare user still may not.
    const shared = policy(JSON.parse(adminPolicy(alice.accountId)).Statement[0], {
      Sid: 'AccountB',
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${bobAdmin.accountId}:root` },
      Action: ['kms:Decrypt', 'kms:DescribeKey'],
      Resource: '*',
    });
    expect((await t.gql(alice, PUT_POLICY, { i: { keyId: key.keyId, policy: shared } })).errors).toBeUndefined();
    const d = await t.gql(bobAdmin, DECRYPT, { i: { ciphertextBlob: blob } });
    expect(d.errors).toBeUndefined();
    expect(Buffer.from(d.data.decrypt.plaintext, 'base64').toString()).toBe('shared');
    expect(code(await t.gql(bobUser, DECRYPT, { i: { ciphertextBlob: blob } }))).toBe('InvalidCiphertextException');
    // Encrypt is not in the statement: refused, and still reported as not found.
    expect(code(await t.gql(bobAdmin, ENCRYPT, { i: { keyId: key.arn, plaintext: b64('x') } }))).toBe('NotFoundException');
    // Listing never reveals foreign keys, even ones it may use.
    const list = await t.gql(bobAdmin, `{ listKeys(input: { limit: 1000 }) { keys { keyId } } }`);
    expect(list.data.listKeys.keys.map((k: { keyId: string }) => k.keyId)).not.toContain(key.keyId);

    // The owner's audit log shows the other account's successful and denied requests on its key.
    const records = (await t.db.owner.selectFrom('events').select('data').where('type', '=', 'AuditRecord').execute()).map((r) => r.data as any);
    const foreign = records.filter((r) => r.recipientAccountId === alice.accountId && r.accountId === bobAdmin.accountId);
    expect(foreign.some((r) => r.outcome === 'success' && r.eventName === 'Decrypt')).toBe(true);
    expect(foreign.some((r) => r.outcome === 'failure' && r.authorization?.decision === 'implicitDeny')).toBe(true);
  });
});

describe('grants', () => {
  const CREATE_GRANT = `mutation($i: CreateGrantInput!) { createGrant(input: $i) { grantId grantToken } }`;

  it('a grant lets its grantee Decrypt under a context subset, and nothing else', async () => {
    const key = await createKey(alice);
    const worker = await t.newUser(alice.accountId, 'grant-worker');
    const g = await t.gql(alice, CREATE_GRANT, {
      i: {
        keyId: key.keyId,
        granteePrincipal: worker.principalArn,
        operations: ['Decrypt'],
        constraints: { encryptionContextSubset: { tenant: 'acme' } },
        name: 'acme-worker',
      },
    });
    expect(g.errors).toBeUndefined();
    const again = await t.gql(alice, CREATE_GRANT, {
      i: {
        keyId: key.keyId,
        granteePrincipal: worker.principalArn,
        operations: ['Decrypt'],
        constraints: { encryptionContextSubset: { tenant: 'acme' } },
        name: 'acme-worker',
      },
    });
    expect(again.data.createGrant.grantId).toBe(g.data.createGrant.grantId);

    const acme = (await t.gql(alice, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('a'), encryptionContext: { tenant: 'acme', region: 'eu' } } })).data
      .encrypt.ciphertextBlob;
    const other = (await t.gql(alice, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('o'), encryptionContext: { tenant: 'other' } } })).data.encrypt
      .ciphertextBlob;
    const ok = await t.gql(worker, DECRYPT, { i: { ciphertextBlob: acme, encryptionContext: { region: 'eu', tenant: 'acme' } } });
    expect(ok.errors).toBeUndefined();
    expect(code(await t.gql(worker, DECRYPT, { i: { ciphertextBlob: other, encryptionContext: { tenant: 'other' } } }))).toBe('AccessDeniedException');
    expect(code(await t.gql(worker, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('x'), encryptionContext: { tenant: 'acme' } } }))).toBe(
      'AccessDeniedException',
    );

    const record = (await t.db.owner.selectFrom('events').select('data').where('type', '=', 'AuditRecord').execute())
      .map((r) => r.data as any)
      .find((d) => d.eventName === 'Decrypt' && d.userIdentity.principalArn === worker.principalArn && d.outcome === 'success');
    expect(record.authorization.allowedBy).toEqual([{ kind: 'grant', grantId: g.data.createGrant.grantId }]);

    const listed = await t.gql(
      alice,
      `query($k: String!) { listGrants(input: { keyId: $k }) { grants { grantId granteePrincipal operations constraints { encryptionContextSubset } name } } }`,
      { k: key.keyId },
    );
    expect(listed.data.listGrants.grants).toEqual([
      {
        grantId: g.data.createGrant.grantId,
        granteePrincipal: worker.principalArn,
        operations: ['Decrypt'],
        constraints: { encryptionContextSubset: { tenant: 'acme' } },
        name: 'acme-worker',
      },
    ]);

    const revoke = await t.gql(alice, `mutation($k: String!, $g: String!) { revokeGrant(input: { keyId: $k, grantId: $g }) { requestId } }`, {
      k: key.keyId,
      g: g.data.createGrant.grantId,
    });
    expect(revoke.errors).toBeUndefined();
    expect(code(await t.gql(worker, DECRYPT, { i: { ciphertextBlob: acme, encryptionContext: { region: 'eu', tenant: 'acme' } } }))).toBe(
      'AccessDeniedException',
    );
  });

  it('equals constraints need the exact context; a grant with CreateGrant may only create stricter grants; the retiring principal retires', async () => {
    const key = await createKey(alice);
    const delegate = await t.newUser(alice.accountId, 'delegate');
    const retirer = await t.newUser(alice.accountId, 'retirer');
    const parent = await t.gql(alice, CREATE_GRANT, {
      i: { keyId: key.keyId, granteePrincipal: delegate.principalArn, operations: ['Decrypt', 'CreateGrant'], retiringPrincipal: retirer.principalArn },
    });
    expect(parent.errors).toBeUndefined();
    const broader = await t.gql(delegate, CREATE_GRANT, {
      i: { keyId: key.keyId, granteePrincipal: retirer.principalArn, operations: ['Decrypt', 'Encrypt'] },
    });
    expect(code(broader)).toBe('AccessDeniedException');
    const stricter = await t.gql(delegate, CREATE_GRANT, {
      i: { keyId: key.keyId, granteePrincipal: retirer.principalArn, operations: ['Decrypt'], constraints: { encryptionContextEquals: { tenant: 'acme' } } },
    });
    expect(stricter.errors).toBeUndefined();

    const exact = (await t.gql(alice, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('e'), encryptionContext: { tenant: 'acme' } } })).data.encrypt
      .ciphertextBlob;
    const more = (await t.gql(alice, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('m'), encryptionContext: { tenant: 'acme', extra: '1' } } })).data.encrypt
      .ciphertextBlob;
    expect((await t.gql(retirer, DECRYPT, { i: { ciphertextBlob: exact, encryptionContext: { tenant: 'acme' } } })).errors).toBeUndefined();
    expect(code(await t.gql(retirer, DECRYPT, { i: { ciphertextBlob: more, encryptionContext: { tenant: 'acme', extra: '1' } } }))).toBe(
      'AccessDeniedException',
    );
    expect(code(await t.gql(retirer, DECRYPT, { i: { ciphertextBlob: exact, encryptionContext: { tenant: 'ACME' } } }))).not.toBeUndefined();

    const retirable = await t.gql(retirer, `query($p: String!) { listRetirableGrants(input: { retiringPrincipal: $p }) { grants { grantId } } }`, {
      p: retirer.principalArn,
    });
    expect(code(retirable)).toBe('AccessDeniedException'); // needs kms:ListRetirableGrants in an identity policy
    const byToken = await t.gql(retirer, `mutation($t: String!) { retireGrant(input: { grantToken: $t }) { requestId } }`, {
      t: parent.data.createGrant.grantToken,
    });
    expect(byToken.errors).toBeUndefined();
    expect(code(await t.gql(delegate, DECRYPT, { i: { ciphertextBlob: exact, encryptionContext: { tenant: 'acme' } } }))).toBe('AccessDeniedException');
  });
});

describe('access analysis and evidence visibility', () => {
  it('keyAccess lists who can Decrypt: key policy principals and accounts (with the identity policies behind them) and grants, with conditions', async () => {
    const tenantRole = 'arn:aws:iam::' + alice.accountId + ':role/analysis-app';
    const key = await createKey(alice, {
      policy: policy(JSON.parse(adminPolicy(alice.accountId)).Statement[0], {
        Sid: 'App',
        Effect: 'Allow',
        Principal: { AWS: tenantRole },
        Action: ['kms:Decrypt', 'kms:Encrypt'],
        Resource: '*',
        Condition: { StringEquals: { 'kms:EncryptionContext:tenant': 'acme' } },
      }),
    });
    const grantee = await t.newUser(alice.accountId, 'analysis-grantee');
    const g = await t.gql(alice, `mutation($i: CreateGrantInput!) { createGrant(input: $i) { grantId } }`, {
      i: { keyId: key.keyId, granteePrincipal: grantee.principalArn, operations: ['Decrypt'], constraints: { encryptionContextEquals: { tenant: 'acme' } } },
    });
    const r = await t.gql(
      alice,
      `query($k: String!) { keyAccess(keyId: $k, operation: "Decrypt") { action entries { effect kind principal ` +
        `sid grantId conditions { operator key values } viaIdentityPolicies { principal policy sid } } } }`,
      { k: key.keyId },
    );
    expect(r.errors, t.logLines.join('')).toBeUndefined();
    const entries = r.data.keyAccess.entries;
    expect(r.data.keyAccess.action).toBe('kms:Decrypt');
    expect(entries).toContainEqual({
      effect: 'Allow',
      kind: 'account',
      principal: `arn:aws:iam::${alice.accountId}:root`,
      sid: 'Enable IAM User Permissions',
      grantId: null,
      conditions: [],
      viaIdentityPolicies: expect.arrayContaining([{ principal: alice.principalArn, policy: 'AdministratorAccess', sid: 'AdministratorAccess' }]),
    });
    expect(entries).toContainEqual({
      effect: 'Allow',
      kind: 'principal',
      principal: tenantRole,
      sid: 'App',
      grantId: null,
      conditions: [{ operator: 'StringEquals', key: 'kms:EncryptionContext:tenant', values: ['acme'] }],
      viaIdentityPolicies: null,
    });
    expect(entries).toContainEqual({
      effect: 'Allow',
      kind: 'grant',
      principal: grantee.principalArn,
      sid: null,
      grantId: g.data.createGrant.grantId,
      conditions: [{ operator: 'EncryptionContextEquals', key: 'kms:EncryptionContext', values: ['tenant=acme'] }],
      viaIdentityPolicies: null,
    });
    // A principal that may not read the key policy may not analyse it either.
    const nobody = await t.newUser(alice.accountId, 'analysis-nobody');
    expect(code(await t.gql(nobody, `query($k: String!) { keyAccess(keyId: $k, operation: "Decrypt") { action } }`, { k: key.keyId }))).toBe(
      'AccessDeniedException',
    );
  });

  it("a refused probe of another account's key shows the owner why, and the prober nothing more than 'not found'", async () => {
    const key = await createKey(alice);
    const probe = await t.gql(bobAdmin, `query($k: String!) { describeKey(input: { keyId: $k }) { keyMetadata { keyId } } }`, { k: key.arn });
    const requestId = probe.errors![0]!.extensions!.requestId!;
    const AUDIT =
      `query($r: String!) { auditEvents(first: 5, filter: { requestId: $r }) ` +
      `{ edges { node { requestId recipientAccountId authorization resources errorCode } } } }`;
    const ownerView = (await t.gql(alice, AUDIT, { r: requestId })).data.auditEvents.edges.map((e: any) => e.node);
    const proberView = (await t.gql(bobAdmin, AUDIT, { r: requestId })).data.auditEvents.edges.map((e: any) => e.node);
    expect(ownerView).toEqual([
      {
        requestId,
        recipientAccountId: alice.accountId,
        authorization: expect.objectContaining({ decision: 'implicitDeny', action: 'kms:DescribeKey' }),
        resources: [],
        errorCode: 'NotFoundException',
      },
    ]);
    expect(proberView).toEqual([{ requestId, recipientAccountId: null, authorization: null, resources: [], errorCode: 'NotFoundException' }]);
  });
});

describe('review fixes: what policies can never grant', () => {
  it('another account may use a shared key but never manage it, whatever the key policy says', async () => {
    const key = await createKey(alice, {
      policy: policy(JSON.parse(adminPolicy(alice.accountId)).Statement[0], {
        Sid: 'ShareEverything',
        Effect: 'Allow',
        Principal: { AWS: bobAdmin.accountId },
        Action: 'kms:*',
        Resource: '*',
      }),
    });
    const blob = (await t.gql(alice, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('shared') } })).data.encrypt.ciphertextBlob;
    expect((await t.gql(bobAdmin, DECRYPT, { i: { ciphertextBlob: blob } })).errors).toBeUndefined();
    for (const op of [
      `mutation($k: String!) { scheduleKeyDeletion(input: { keyId: $k, pendingWindowInDays: 7 }) { keyState } }`,
      `mutation($k: String!) { disableKey(input: { keyId: $k }) { requestId } }`,
      `mutation($k: String!) { putKeyPolicy(input: { keyId: $k, policy: "{}", bypassPolicyLockoutSafetyCheck: true }) { requestId } }`,
      `query($k: String!) { getKeyPolicy(input: { keyId: $k }) { policy } }`,
      `query($k: String!) { keyAccess(keyId: $k, operation: "Decrypt") { action } }`,
    ]) {
      expect(code(await t.gql(bobAdmin, op, { k: key.arn })), op).toBe('NotFoundException');
    }
    const state = await t.gql(alice, `query($k: String!) { describeKey(input: { keyId: $k }) { keyMetadata { keyState } } }`, { k: key.keyId });
    expect(state.data.describeKey.keyMetadata.keyState).toBe('Enabled');
  });

  it('an explicit Deny on an alias resource holds even when the key allows', async () => {
    const key = await createKey(alice);
    await t.gql(alice, `mutation($k: String!) { createAlias(input: { aliasName: "alias/prod-db", targetKeyId: $k }) { requestId } }`, { k: key.keyId });
    const operatorPolicy = policy(
      { Sid: 'All', Effect: 'Allow', Action: '*', Resource: '*' },
      {
        Sid: 'NoProdAliases',
        Effect: 'Deny',
        Action: ['kms:UpdateAlias', 'kms:DeleteAlias'],
        Resource: `arn:aws:kms:us-east-1:${alice.accountId}:alias/prod-*`,
      },
    );
    const op = await t.newUser(alice.accountId, 'alias-operator', operatorPolicy);
    const other = await createKey(alice);
    const r = await t.gql(op, `mutation($k: String!) { updateAlias(input: { aliasName: "alias/prod-db", targetKeyId: $k }) { requestId } }`, {
      k: other.keyId,
    });
    expect(r.errors?.[0]?.message).toMatch(/with an explicit deny in an identity-based policy$/);
    expect(code(await t.gql(op, `mutation { deleteAlias(input: { aliasName: "alias/prod-db" }) { requestId } }`))).toBe('AccessDeniedException');
    expect(
      (await t.gql(op, `mutation($k: String!) { createAlias(input: { aliasName: "alias/dev-db", targetKeyId: $k }) { requestId } }`, { k: other.keyId }))
        .errors,
    ).toBeUndefined();
  });

  it('a principal of the issuing account retires a grant only with kms:RetireGrant; a foreign key stays hidden', async () => {
    const key = await createKey(alice);
    const grantee = await t.newUser(alice.accountId, 'retire-grantee');
    const g = await t.gql(alice, `mutation($i: CreateGrantInput!) { createGrant(input: $i) { grantId } }`, {
      i: { keyId: key.keyId, granteePrincipal: grantee.principalArn, operations: ['Decrypt'] },
    });
    const bystander = await t.newUser(alice.accountId, 'retire-bystander');
    const RETIRE = `mutation($k: String!, $g: String!) { retireGrant(input: { keyId: $k, grantId: $g }) { requestId } }`;
    expect(code(await t.gql(bystander, RETIRE, { k: key.keyId, g: g.data.createGrant.grantId }))).toBe('AccessDeniedException');
    const missing = await t.gql(bobAdmin, RETIRE, { k: key.arn, g: g.data.createGrant.grantId });
    expect(missing.errors?.[0]).toMatchObject({ message: `Key '${key.arn}' does not exist`, extensions: { code: 'NotFoundException' } });
    expect((await t.gql(alice, RETIRE, { k: key.keyId, g: g.data.createGrant.grantId })).errors).toBeUndefined();
  });

  it('fragments do not pass for introspection: without credentials they get 401 and a record', async () => {
    const r = await t.gql(null, `{ __typename ... on Query { listKeys { truncated } } }`);
    expect(r.status).toBe(401);
    expect(r.data).toBeUndefined();
    const requestId = r.errors![0]!.extensions!.requestId!;
    const rows = await t.db.owner.selectFrom('events').select('data').where('stream_id', '=', `request-${requestId}`).execute();
    expect(rows).toHaveLength(1);
    // Introspection alone needs credentials too (issue 15, item 11).
    expect((await t.gql(null, `{ __schema { queryType { name } } }`)).status).toBe(401);
  });
});
