import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type GqlResult, type Principal, type TestApp } from '../support/app.ts';

/**
 * Grants with an encryption context constraint (EncryptionContextEquals /
 * EncryptionContextSubset) that also allow DescribeKey, RetireGrant and
 * CreateGrant, as AWS allows (CreateGrantRequest.Constraints, GrantConstraints
 * in its service model): the constraint does not apply to DescribeKey and
 * RetireGrant, and grants created through CreateGrant must be as strict or
 * stricter. Every caller here is allowed by grants alone (no policy names them).
 */

let t: TestApp;
let admin: Principal;

beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('grant-constraints');
});
afterAll(() => t?.close());

const b64 = (s: string) => Buffer.from(s).toString('base64');
const code = (r: GqlResult<unknown>) => r.errors?.[0]?.extensions?.code;

const CREATE_GRANT = `mutation($i: CreateGrantInput!) { createGrant(input: $i) { grantId grantToken } }`;
const DESCRIBE_KEY = `query($k: String!) { describeKey(input: { keyId: $k }) { keyMetadata { keyId arn } } }`;
const ENCRYPT = `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob } }`;
const DECRYPT = `mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext } }`;
const RETIRE = `mutation($i: RetireGrantInput!) { retireGrant(input: $i) { requestId } }`;

async function createKey(as: Principal) {
  const r = await t.gql(as, `mutation { createKey { keyMetadata { keyId arn } } }`);
  expect(r.errors).toBeUndefined();
  return r.data.createKey.keyMetadata as { keyId: string; arn: string };
}

async function grant(as: Principal, input: Record<string, unknown>): Promise<{ grantId: string; grantToken: string }> {
  const r = await t.gql(as, CREATE_GRANT, { i: input });
  expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
  return r.data.createGrant;
}

/** The newest audit record of `eventName` made by `p`. */
async function lastRecord(p: Principal, eventName: string) {
  const rows = await t.db.owner.selectFrom('events').select('data').where('type', '=', 'AuditRecord').orderBy('global_position', 'desc').execute();
  const record = rows.map((r) => r.data as any).find((d) => d.eventName === eventName && d.userIdentity.principalArn === p.principalArn);
  expect(record, eventName).toBeDefined();
  return record;
}

/** The audit record of the CreateGrant that created `grantId`. */
async function creationOf(grantId: string) {
  const rows = await t.db.owner.selectFrom('events').select('data').where('type', '=', 'AuditRecord').execute();
  const found = rows.map((r) => r.data as any).filter((d) => d.eventName === 'CreateGrant' && d.additionalEventData?.grantId === grantId);
  expect(found).toHaveLength(1);
  return found[0];
}

describe('a constrained grant may include DescribeKey, RetireGrant and CreateGrant', () => {
  it('is created, and DescribeKey works through it whatever the context, while crypto stays constrained', async () => {
    const key = await createKey(admin);
    const grantee = await t.newUser(admin.accountId, 'describer');
    const g = await grant(admin, {
      keyId: key.keyId,
      granteePrincipal: grantee.principalArn,
      operations: ['Encrypt', 'Decrypt', 'DescribeKey', 'RetireGrant', 'CreateGrant'],
      constraints: { encryptionContextSubset: { tenant: 'acme' } },
    });

    const described = await t.gql(grantee, DESCRIBE_KEY, { k: key.keyId });
    expect(described.errors).toBeUndefined();
    expect(described.data.describeKey.keyMetadata).toEqual({ keyId: key.keyId, arn: key.arn });
    expect((await lastRecord(grantee, 'DescribeKey')).authorization).toMatchObject({
      action: 'kms:DescribeKey',
      decision: 'allow',
      allowedBy: [{ kind: 'grant', grantId: g.grantId }],
    });

    expect(
      (await t.gql(grantee, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('x'), encryptionContext: { tenant: 'acme', extra: '1' } } })).errors,
    ).toBeUndefined();
    expect(code(await t.gql(grantee, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('x'), encryptionContext: { tenant: 'globex' } } }))).toBe(
      'AccessDeniedException',
    );
    expect(code(await t.gql(grantee, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('x') } }))).toBe('AccessDeniedException');

    // Another principal gets nothing from the grant.
    const stranger = await t.newUser(admin.accountId, 'describe-stranger');
    expect(code(await t.gql(stranger, DESCRIBE_KEY, { k: key.keyId }))).toBe('AccessDeniedException');
  });

  it('an Equals constraint with DescribeKey alone is accepted, and allows DescribeKey', async () => {
    const key = await createKey(admin);
    const grantee = await t.newUser(admin.accountId, 'equals-describer');
    await grant(admin, {
      keyId: key.keyId,
      granteePrincipal: grantee.principalArn,
      operations: ['DescribeKey'],
      constraints: { encryptionContextEquals: { tenant: 'acme' } },
    });
    expect((await t.gql(grantee, DESCRIBE_KEY, { k: key.arn })).errors).toBeUndefined();
  });

  it('operations that take no encryption context and are not DescribeKey, RetireGrant or CreateGrant still refuse a constraint', async () => {
    const key = await createKey(admin);
    const r = await t.gql(admin, CREATE_GRANT, {
      i: {
        keyId: key.keyId,
        granteePrincipal: admin.principalArn,
        operations: ['Decrypt', 'Sign'],
        constraints: { encryptionContextSubset: { tenant: 'acme' } },
      },
    });
    expect(r.errors?.[0]).toMatchObject({
      message:
        'Grant constraints cannot be used with the Sign operation: ' +
        'only with operations that take an encryption context, and DescribeKey, RetireGrant and CreateGrant.',
      extensions: { code: 'ValidationException' },
    });
  });

  it('the grantee retires its constrained grant (by key and grant id, and by token); then DescribeKey is refused', async () => {
    const key = await createKey(admin);
    const grantee = await t.newUser(admin.accountId, 'retiring-grantee');
    const byId = await grant(admin, {
      keyId: key.keyId,
      granteePrincipal: grantee.principalArn,
      operations: ['Decrypt', 'DescribeKey', 'RetireGrant'],
      constraints: { encryptionContextEquals: { tenant: 'acme' } },
    });
    const byToken = await grant(admin, {
      keyId: key.keyId,
      granteePrincipal: grantee.principalArn,
      operations: ['Encrypt', 'RetireGrant'],
      constraints: { encryptionContextSubset: { tenant: 'acme' } },
    });
    expect((await t.gql(grantee, DESCRIBE_KEY, { k: key.keyId })).errors).toBeUndefined();

    const retired = await t.gql(grantee, RETIRE, { i: { keyId: key.keyId, grantId: byId.grantId } });
    expect(retired.errors).toBeUndefined();
    expect(code(await t.gql(grantee, DESCRIBE_KEY, { k: key.keyId }))).toBe('AccessDeniedException');

    expect((await t.gql(grantee, RETIRE, { i: { grantToken: byToken.grantToken } })).errors).toBeUndefined();
    const listed = await t.gql(admin, `query($k: String!) { listGrants(input: { keyId: $k }) { grants { grantId } } }`, { k: key.keyId });
    expect(listed.data.listGrants.grants).toEqual([]);
  });
});

describe('CreateGrant through a constrained grant: only grants as strict or stricter', () => {
  it('a Subset parent: more pairs or an Equals holding its pairs are allowed; dropping or changing the constraint is not', async () => {
    const key = await createKey(admin);
    const delegate = await t.newUser(admin.accountId, 'subset-delegate');
    const child = await t.newUser(admin.accountId, 'subset-child');
    const parent = await grant(admin, {
      keyId: key.keyId,
      granteePrincipal: delegate.principalArn,
      operations: ['Decrypt', 'DescribeKey', 'CreateGrant'],
      constraints: { encryptionContextSubset: { tenant: 'acme' } },
    });
    const ask = (operations: string[], constraints?: Record<string, unknown>) =>
      t.gql(delegate, CREATE_GRANT, { i: { keyId: key.keyId, granteePrincipal: child.principalArn, operations, ...(constraints ? { constraints } : {}) } });

    // Refused: no constraint, DescribeKey alone without it, another value, a Subset parent turned into a weaker one, an operation the parent lacks.
    for (const [operations, constraints] of [
      [['Decrypt'], undefined],
      [['DescribeKey'], undefined],
      [['Decrypt'], { encryptionContextSubset: { tenant: 'globex' } }],
      [['Decrypt'], { encryptionContextSubset: { region: 'eu' } }],
      [['Decrypt'], { encryptionContextEquals: { region: 'eu' } }],
      [['Encrypt'], { encryptionContextSubset: { tenant: 'acme' } }],
    ] as const) {
      const r = await ask([...operations], constraints);
      expect(code(r), JSON.stringify({ operations, constraints })).toBe('AccessDeniedException');
      expect(r.errors![0]!.message).toBe(
        `User: ${delegate.principalArn} is not authorized to perform: kms:CreateGrant on resource: ${key.arn} because ` +
          `its grants allow only grants with some of their operations and at least their encryption context constraint`,
      );
    }

    // Allowed: the same constraint, more pairs, an Equals holding the pairs; each recorded as allowed by the parent grant.
    const same = await ask(['DescribeKey'], { encryptionContextSubset: { tenant: 'acme' } });
    expect(same.errors).toBeUndefined();
    const more = await ask(['Decrypt', 'DescribeKey'], { encryptionContextSubset: { tenant: 'acme', region: 'eu' } });
    expect(more.errors).toBeUndefined();
    const equals = await ask(['Decrypt'], { encryptionContextEquals: { tenant: 'acme', purpose: 'exact' } });
    expect(equals.errors).toBeUndefined();
    for (const r of [same, more, equals]) {
      expect((await creationOf(r.data.createGrant.grantId)).authorization).toMatchObject({
        action: 'kms:CreateGrant',
        decision: 'allow',
        allowedBy: [{ kind: 'grant', grantId: parent.grantId }],
      });
    }

    // The child grants work as created: DescribeKey regardless, Decrypt only in their context.
    expect((await t.gql(child, DESCRIBE_KEY, { k: key.keyId })).errors).toBeUndefined();
    const encrypt = async (encryptionContext: Record<string, string>) =>
      (await t.gql(admin, ENCRYPT, { i: { keyId: key.keyId, plaintext: b64('secret'), encryptionContext } })).data.encrypt.ciphertextBlob as string;
    const inEu = await encrypt({ tenant: 'acme', region: 'eu' });
    const acmeOnly = await encrypt({ tenant: 'acme' });
    const exact = await encrypt({ tenant: 'acme', purpose: 'exact' });
    expect((await t.gql(child, DECRYPT, { i: { ciphertextBlob: inEu, encryptionContext: { tenant: 'acme', region: 'eu' } } })).errors).toBeUndefined();
    expect((await t.gql(child, DECRYPT, { i: { ciphertextBlob: exact, encryptionContext: { tenant: 'acme', purpose: 'exact' } } })).errors).toBeUndefined();
    expect(code(await t.gql(child, DECRYPT, { i: { ciphertextBlob: acmeOnly, encryptionContext: { tenant: 'acme' } } }))).toBe('AccessDeniedException');
    // The delegate's own Decrypt is still bound by its constraint.
    expect((await t.gql(delegate, DECRYPT, { i: { ciphertextBlob: acmeOnly, encryptionContext: { tenant: 'acme' } } })).errors).toBeUndefined();
  });

  it('an Equals parent: only the same Equals', async () => {
    const key = await createKey(admin);
    const delegate = await t.newUser(admin.accountId, 'equals-delegate');
    const child = await t.newUser(admin.accountId, 'equals-child');
    await grant(admin, {
      keyId: key.keyId,
      granteePrincipal: delegate.principalArn,
      operations: ['Decrypt', 'DescribeKey', 'CreateGrant'],
      constraints: { encryptionContextEquals: { tenant: 'acme' } },
    });
    const ask = (operations: string[], constraints?: Record<string, unknown>) =>
      t.gql(delegate, CREATE_GRANT, { i: { keyId: key.keyId, granteePrincipal: child.principalArn, operations, ...(constraints ? { constraints } : {}) } });
    expect(code(await ask(['Decrypt'], { encryptionContextSubset: { tenant: 'acme' } }))).toBe('AccessDeniedException');
    expect(code(await ask(['Decrypt'], { encryptionContextEquals: { tenant: 'acme', region: 'eu' } }))).toBe('AccessDeniedException');
    expect(code(await ask(['DescribeKey']))).toBe('AccessDeniedException');
    expect((await ask(['Decrypt', 'DescribeKey', 'CreateGrant'], { encryptionContextEquals: { tenant: 'acme' } })).errors).toBeUndefined();
    // The grandchild level: the child, now holding CreateGrant under the same Equals, is bound the same way.
    const grandchild = await t.newUser(admin.accountId, 'equals-grandchild');
    const deeper = (constraints?: Record<string, unknown>) =>
      t.gql(child, CREATE_GRANT, {
        i: { keyId: key.keyId, granteePrincipal: grandchild.principalArn, operations: ['Decrypt'], ...(constraints ? { constraints } : {}) },
      });
    expect(code(await deeper())).toBe('AccessDeniedException');
    expect((await deeper({ encryptionContextEquals: { tenant: 'acme' } })).errors).toBeUndefined();
  });

  it('with several grants, any one under which the new grant is no broader allows it', async () => {
    const key = await createKey(admin);
    const delegate = await t.newUser(admin.accountId, 'multi-delegate');
    const child = await t.newUser(admin.accountId, 'multi-child');
    await grant(admin, {
      keyId: key.keyId,
      granteePrincipal: delegate.principalArn,
      operations: ['Decrypt', 'CreateGrant'],
      constraints: { encryptionContextSubset: { tenant: 'acme' } },
    });
    const open = await grant(admin, { keyId: key.keyId, granteePrincipal: delegate.principalArn, operations: ['Encrypt', 'CreateGrant'] });
    const ask = (operations: string[], constraints?: Record<string, unknown>) =>
      t.gql(delegate, CREATE_GRANT, { i: { keyId: key.keyId, granteePrincipal: child.principalArn, operations, ...(constraints ? { constraints } : {}) } });

    const viaOpen = await ask(['Encrypt']);
    expect(viaOpen.errors).toBeUndefined();
    expect((await creationOf(viaOpen.data.createGrant.grantId)).authorization.allowedBy).toEqual([{ kind: 'grant', grantId: open.grantId }]);
    expect(code(await ask(['Decrypt']))).toBe('AccessDeniedException');
    // No single grant holds both operations.
    expect(code(await ask(['Decrypt', 'Encrypt'], { encryptionContextSubset: { tenant: 'acme' } }))).toBe('AccessDeniedException');
    expect((await ask(['Decrypt'], { encryptionContextSubset: { tenant: 'acme' } })).errors).toBeUndefined();
  });

  it("across accounts: a constrained grant on another account's key allows DescribeKey and a stricter CreateGrant by key ARN", async () => {
    const key = await createKey(admin);
    const other = await t.newAccount('grant-constraints-other');
    const foreignUser = await t.newUser(other.accountId, 'foreign-grantee');
    await grant(admin, {
      keyId: key.keyId,
      granteePrincipal: foreignUser.principalArn,
      operations: ['Decrypt', 'DescribeKey', 'CreateGrant'],
      constraints: { encryptionContextSubset: { tenant: 'acme' } },
    });
    const described = await t.gql(foreignUser, DESCRIBE_KEY, { k: key.arn });
    expect(described.errors).toBeUndefined();
    expect(described.data.describeKey.keyMetadata.arn).toBe(key.arn);
    const stricter = await t.gql(foreignUser, CREATE_GRANT, {
      i: {
        keyId: key.arn,
        granteePrincipal: other.principalArn,
        operations: ['Decrypt'],
        constraints: { encryptionContextSubset: { tenant: 'acme', team: 'ops' } },
      },
    });
    expect(stricter.errors).toBeUndefined();
    // Broader: refused, as another account's key refuses anything (NotFoundException, nothing about the key shown).
    const broader = await t.gql(foreignUser, CREATE_GRANT, { i: { keyId: key.arn, granteePrincipal: other.principalArn, operations: ['Decrypt'] } });
    expect(code(broader)).toBe('NotFoundException');
  });
});
