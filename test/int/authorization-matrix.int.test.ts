import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type GqlResult, type Principal, type TestApp } from '../support/app.ts';

/**
 * A cross-account authorization matrix through the GraphQL API: every caller
 * of accounts A (the key owner) and B against keys of A under four key
 * policies, for Decrypt and DescribeKey (by ARN). Expected outcomes follow
 * AWS KMS: same account — the key policy allows the caller, or delegates to
 * the account and an identity policy allows; another account — the key policy
 * must allow (the caller or its account) AND the caller's identity policy must
 * allow; a grant suffices alone; an explicit Deny wins over everything. A
 * refusal is AccessDeniedException in the key's account and NotFoundException
 * from another account, and every refusal is in the audit log with its reason.
 */

let t: TestApp;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const code = (r: GqlResult<unknown>) => r.errors?.[0]?.extensions?.code;
const policy = (...statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });
const identity = (action: string) => policy({ Effect: 'Allow', Action: action, Resource: '*' });

const ENCRYPT = `mutation($i: EncryptInput!) { encrypt(input: $i) { ciphertextBlob } }`;
const DECRYPT = `mutation($i: DecryptInput!) { decrypt(input: $i) { plaintext keyId } }`;
const DESCRIBE = `query($k: String!) { describeKey(input: { keyId: $k }) { keyMetadata { keyId arn } } }`;
const LIST_KEYS = `{ listKeys(input: { limit: 1000 }) { keys { keyId keyArn } } }`;
const CREATE_GRANT = `mutation($i: CreateGrantInput!) { createGrant(input: $i) { grantId } }`;

type CallerName =
  'A admin' | 'A user, no policy' | 'A user, Decrypt policy' | 'B admin' | 'B user, no policy' | 'B user, Decrypt policy' | 'B grantee (grant only)';
type PolicyName = 'default' | 'A + B account (Decrypt)' | 'A + B user ARNs (Decrypt)' | 'A + B account, explicit Deny for B';
type Op = 'Decrypt' | 'DescribeKey';
type Outcome =
  | { kind: 'allow'; by: 'keyPolicy' | 'grant' }
  | {
      kind: 'AccessDeniedException' | 'NotFoundException';
      decision: 'implicitDeny';
      reason: 'no identity-based policy allows the action' | 'no resource-based policy allows the action';
    }
  | { kind: 'NotFoundException'; decision: 'explicitDeny'; sid: string };

const CALLERS: CallerName[] = [
  'A admin',
  'A user, no policy',
  'A user, Decrypt policy',
  'B admin',
  'B user, no policy',
  'B user, Decrypt policy',
  'B grantee (grant only)',
];
const POLICIES: PolicyName[] = ['default', 'A + B account (Decrypt)', 'A + B user ARNs (Decrypt)', 'A + B account, explicit Deny for B'];

const callers = {} as Record<CallerName, Principal>;
const keys = {} as Record<PolicyName, { keyId: string; arn: string; blob: string; grantId: string }>;

const IDENTITY_MISSING = 'no identity-based policy allows the action' as const;
const RESOURCE_MISSING = 'no resource-based policy allows the action' as const;

/** What AWS answers for `caller` doing `op` on the key under `policyName`. */
function expected(caller: CallerName, policyName: PolicyName, op: Op): Outcome {
  const allow = (by: 'keyPolicy' | 'grant' = 'keyPolicy'): Outcome => ({ kind: 'allow', by });
  if (caller.startsWith('A ')) {
    // Every key policy keeps the delegation to account A: A's identity policies decide.
    if (caller === 'A admin') return allow();
    if (caller === 'A user, Decrypt policy' && op === 'Decrypt') return allow();
    return { kind: 'AccessDeniedException', decision: 'implicitDeny', reason: IDENTITY_MISSING };
  }
  const refused = (reason: typeof IDENTITY_MISSING | typeof RESOURCE_MISSING): Outcome => ({ kind: 'NotFoundException', decision: 'implicitDeny', reason });
  if (policyName === 'A + B account, explicit Deny for B') return { kind: 'NotFoundException', decision: 'explicitDeny', sid: 'DenyAccountB' };
  if (caller === 'B grantee (grant only)') return allow('grant'); // the grant allows Decrypt and DescribeKey
  if (op === 'DescribeKey') return refused(RESOURCE_MISSING); // no key policy gives B DescribeKey
  const identityAllows = caller === 'B admin' || caller === 'B user, Decrypt policy';
  const keyPolicyAllows =
    policyName === 'A + B account (Decrypt)' ||
    (policyName === 'A + B user ARNs (Decrypt)' && (caller === 'B user, no policy' || caller === 'B user, Decrypt policy'));
  if (!keyPolicyAllows) return refused(RESOURCE_MISSING);
  return identityAllows ? allow() : refused(IDENTITY_MISSING);
}

beforeAll(async () => {
  t = await createTestApp();
  callers['A admin'] = await t.newAccount('matrix-a');
  callers['B admin'] = await t.newAccount('matrix-b');
  const a = callers['A admin'].accountId;
  const b = callers['B admin'].accountId;
  callers['A user, no policy'] = await t.newUser(a, 'a-none');
  callers['A user, Decrypt policy'] = await t.newUser(a, 'a-decrypt', identity('kms:Decrypt'));
  callers['B user, no policy'] = await t.newUser(b, 'b-none');
  callers['B user, Decrypt policy'] = await t.newUser(b, 'b-decrypt', identity('kms:Decrypt'));
  callers['B grantee (grant only)'] = await t.newUser(b, 'b-grantee');

  const delegateA = { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${a}:root` }, Action: 'kms:*', Resource: '*' };
  const documents: Record<PolicyName, string | undefined> = {
    default: undefined,
    'A + B account (Decrypt)': policy(delegateA, { Sid: 'AccountB', Effect: 'Allow', Principal: { AWS: b }, Action: 'kms:Decrypt', Resource: '*' }),
    'A + B user ARNs (Decrypt)': policy(delegateA, {
      Sid: 'UsersOfB',
      Effect: 'Allow',
      Principal: { AWS: [callers['B user, no policy'].principalArn, callers['B user, Decrypt policy'].principalArn] },
      Action: 'kms:Decrypt',
      Resource: '*',
    }),
    'A + B account, explicit Deny for B': policy(
      delegateA,
      { Sid: 'AccountB', Effect: 'Allow', Principal: { AWS: b }, Action: ['kms:Decrypt', 'kms:DescribeKey'], Resource: '*' },
      { Sid: 'DenyAccountB', Effect: 'Deny', Principal: { AWS: `arn:aws:iam::${b}:root` }, Action: 'kms:*', Resource: '*' },
    ),
  };
  for (const name of POLICIES) {
    const created = await t.gql(callers['A admin'], `mutation($i: CreateKeyInput) { createKey(input: $i) { keyMetadata { keyId arn } } }`, {
      i: documents[name] ? { policy: documents[name] } : {},
    });
    expect(created.errors, name).toBeUndefined();
    const { keyId, arn } = created.data.createKey.keyMetadata;
    const enc = await t.gql(callers['A admin'], ENCRYPT, { i: { keyId, plaintext: b64(`secret under ${name}`) } });
    expect(enc.errors, name).toBeUndefined();
    const grant = await t.gql(callers['A admin'], CREATE_GRANT, {
      i: { keyId, granteePrincipal: callers['B grantee (grant only)'].principalArn, operations: ['Decrypt', 'DescribeKey'] },
    });
    expect(grant.errors, name).toBeUndefined();
    keys[name] = { keyId, arn, blob: enc.data.encrypt.ciphertextBlob, grantId: grant.data.createGrant.grantId };
  }
});
afterAll(() => t?.close());

/** The audit record of a refused request, by the request id its error carries. */
async function recordOf(requestId: string) {
  const rows = await t.db.owner.selectFrom('events').select(['type', 'data']).where('stream_id', '=', `request-${requestId}`).execute();
  expect(rows).toHaveLength(1);
  return rows[0]!.data as any;
}

const cells = POLICIES.flatMap((p) => CALLERS.flatMap((c) => (['Decrypt', 'DescribeKey'] as Op[]).map((op) => [p, c, op] as const)));

describe.each(POLICIES)('key policy: %s', (policyName) => {
  it.each(CALLERS.flatMap((c) => (['Decrypt', 'DescribeKey'] as Op[]).map((op) => [c, op] as const)))('%s → %s', async (callerName, op) => {
    const caller = callers[callerName];
    const key = keys[policyName];
    const want = expected(callerName, policyName, op);
    const action = `kms:${op}`;
    const r = op === 'Decrypt' ? await t.gql(caller, DECRYPT, { i: { ciphertextBlob: key.blob } }) : await t.gql(caller, DESCRIBE, { k: key.arn });
    const cell = `${callerName} / ${policyName} / ${op}`;

    if (want.kind === 'allow') {
      expect(r.errors, cell).toBeUndefined();
      if (op === 'Decrypt') {
        expect(Buffer.from(r.data.decrypt.plaintext, 'base64').toString(), cell).toBe(`secret under ${policyName}`);
        expect(r.data.decrypt.keyId).toBe(key.arn);
      } else {
        expect(r.data.describeKey.keyMetadata, cell).toEqual({ keyId: key.keyId, arn: key.arn });
      }
      return;
    }

    // Decrypt names the key only through the blob: another account's key refused answers
    // as garbage would, naming nothing (issue 15, finding 9).
    const answered = op === 'Decrypt' && want.kind === 'NotFoundException' ? 'InvalidCiphertextException' : want.kind;
    expect(code(r), `${cell}: ${JSON.stringify(r.errors)}`).toBe(answered);
    const error = r.errors![0]!;
    if (answered === 'InvalidCiphertextException') {
      expect(error.message, cell).toBe('');
    } else if (want.kind === 'NotFoundException') {
      expect(error.message, cell).toBe(`Key '${key.arn}' does not exist`);
    } else {
      // AWS's message names the action; the recorded reason stays generic.
      expect(error.message, cell).toBe(
        `User: ${caller.principalArn} is not authorized to perform: ${action} on ` +
          `resource: ${key.arn} because ${want.reason.replace(/the action$/, `the ${action} action`)}`,
      );
    }

    // Every refusal is in the audit log, with the decision and why.
    const requestId = error.extensions?.requestId;
    expect(requestId, cell).toEqual(expect.any(String));
    const record = await recordOf(requestId!);
    expect(record, cell).toMatchObject({ outcome: 'failure', errorCode: answered, eventName: op });
    // recipientAccountId appears only when the key's account is not the caller's.
    if (callerName.startsWith('B ')) expect(record.recipientAccountId, cell).toBe(callers['A admin'].accountId);
    else expect(record.recipientAccountId, cell).toBeUndefined();
    expect(record.userIdentity.principalArn, cell).toBe(caller.principalArn);
    expect(record.authorization, cell).toMatchObject({ action, decision: want.decision, allowedBy: [] });
    if (want.decision === 'implicitDeny') {
      expect(record.authorization.reason, cell).toBe(want.reason);
      expect(record.authorization.deniedBy, cell).toEqual([]);
    } else {
      expect(record.authorization.deniedBy, cell).toEqual([expect.objectContaining({ kind: 'keyPolicy', sid: want.sid, index: 2 })]);
    }
    // A foreign caller's record does not name the key it was refused.
    if (want.kind === 'NotFoundException') expect(JSON.stringify(record.resources ?? []), cell).not.toContain(key.arn);
  });

  it.each(CALLERS.filter((c) => c.startsWith('B ')))("listKeys as %s never includes A's key", async (callerName) => {
    const r = await t.gql(callers[callerName], LIST_KEYS);
    const listed = (r.data?.listKeys?.keys ?? []) as { keyId: string; keyArn: string }[];
    expect(listed.map((k) => k.keyId)).not.toContain(keys[policyName].keyId);
    expect(listed.map((k) => k.keyArn)).not.toContain(keys[policyName].arn);
    // Only B's admin may list at all (ListKeys is an identity-policy action); the others are refused with a reason.
    if (callerName === 'B admin') expect(r.errors).toBeUndefined();
    else {
      expect(code(r)).toBe('AccessDeniedException');
      const record = await recordOf(r.errors![0]!.extensions!.requestId!);
      expect(record.authorization).toMatchObject({ action: 'kms:ListKeys', decision: 'implicitDeny', reason: IDENTITY_MISSING });
    }
  });
});

describe('the matrix as a whole', () => {
  it("covers every cell, and A's own listKeys shows all four keys", async () => {
    expect(cells).toHaveLength(POLICIES.length * CALLERS.length * 2);
    const r = await t.gql(callers['A admin'], LIST_KEYS);
    expect(r.data.listKeys.keys.map((k: { keyId: string }) => k.keyId)).toEqual(expect.arrayContaining(POLICIES.map((p) => keys[p].keyId)));
  });
});
