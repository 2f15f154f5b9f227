import { describe, expect, it } from 'vitest';
import {
  defaultKeyPolicyDocument,
  evaluatePolicy,
  principalsIn,
  wouldLockOut,
  type PolicyDocument,
  type PolicyStatement,
  type RequestFacts,
} from '../../src/domain/policy/index.ts';
import { ACCOUNT, ALICE, APP_ROLE, facts, KEY_ARN, OTHER_ACCOUNT, policy, roleFacts, ROOT, statementPolicy } from '../support/policy.ts';

const evaluate = (doc: PolicyDocument, f: RequestFacts = facts(), kind: 'key' | 'identity' = 'key') => evaluatePolicy(doc, f, 'key-policy', kind);
const BOB_OTHER = `arn:aws:iam::${OTHER_ACCOUNT}:user/bob`;
const otherFacts = (overrides: Partial<RequestFacts> = {}): RequestFacts =>
  facts({ principalArn: BOB_OTHER, principalAccount: OTHER_ACCOUNT, principalName: 'bob', ...overrides });

describe('principal forms in key policies', () => {
  const rows: { name: string; principal: unknown; caller: RequestFacts; via: string | undefined }[] = [
    { name: '"*" is anyone', principal: '*', caller: facts(), via: 'anyone' },
    { name: '{"AWS": "*"} is anyone', principal: { AWS: '*' }, caller: otherFacts(), via: 'anyone' },
    { name: 'account id: the account (delegation)', principal: { AWS: ACCOUNT }, caller: facts(), via: 'account' },
    { name: 'root ARN: the account (delegation)', principal: { AWS: ROOT }, caller: roleFacts(), via: 'account' },
    {
      name: 'root ARN: the root itself matches as account',
      principal: { AWS: ROOT },
      caller: facts({ principalArn: ROOT, principalType: 'root', principalName: 'root' }),
      via: 'account',
    },
    { name: 'account id: another account does not match', principal: { AWS: ACCOUNT }, caller: otherFacts(), via: undefined },
    { name: 'cross-account: the other account named', principal: { AWS: `arn:aws:iam::${OTHER_ACCOUNT}:root` }, caller: otherFacts(), via: 'account' },
    { name: 'user ARN: that user', principal: { AWS: ALICE }, caller: facts(), via: 'principal' },
    { name: 'user ARN: another user of the account', principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/carol` }, caller: facts(), via: undefined },
    { name: 'user ARN: same name, other account', principal: { AWS: `arn:aws:iam::${OTHER_ACCOUNT}:user/alice` }, caller: facts(), via: undefined },
    { name: 'role ARN: that role', principal: { AWS: APP_ROLE }, caller: roleFacts(), via: 'principal' },
    { name: 'role ARN does not match a user of the same name', principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/alice` }, caller: facts(), via: undefined },
    { name: 'list: the most specific match wins', principal: { AWS: [ACCOUNT, '*', ALICE] }, caller: facts(), via: 'principal' },
    { name: 'list: anyone before account', principal: { AWS: [ACCOUNT, '*'] }, caller: facts(), via: 'anyone' },
    { name: 'Service principals never match a keyledger caller', principal: { Service: 'logs.amazonaws.com' }, caller: facts(), via: undefined },
    { name: 'ARN comparison is case-sensitive', principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/Alice` }, caller: facts(), via: undefined },
  ];
  it.each(rows)('$name', ({ principal, caller, via }) => {
    const result = evaluate(statementPolicy({ Principal: principal }), caller);
    expect(result.denies).toEqual([]);
    expect(result.allows.map((a) => a.via)).toEqual(via === undefined ? [] : [via]);
  });
});

describe('Action and NotAction', () => {
  const rows: { action: unknown; requested: string; matches: boolean }[] = [
    { action: 'kms:Decrypt', requested: 'kms:Decrypt', matches: true },
    { action: 'kms:Decrypt', requested: 'kms:Encrypt', matches: false },
    { action: 'kms:*', requested: 'kms:ScheduleKeyDeletion', matches: true },
    { action: '*', requested: 'kms:PutKeyPolicy', matches: true },
    { action: 'kms:Generate*', requested: 'kms:GenerateDataKeyWithoutPlaintext', matches: true },
    { action: 'kms:Generate*', requested: 'kms:Encrypt', matches: false },
    { action: 'kms:*DataKey*', requested: 'kms:GenerateDataKeyPair', matches: true },
    { action: 'kms:?ncrypt', requested: 'kms:Encrypt', matches: true },
    { action: 'kms:?ncrypt', requested: 'kms:ReEncrypt', matches: false },
    { action: 'kms:ReEncrypt*', requested: 'kms:ReEncryptFrom', matches: true },
    { action: 'KMS:decrypt', requested: 'kms:Decrypt', matches: true }, // actions are case-insensitive
    { action: 'kms:Decrypt', requested: 'KMS:DECRYPT', matches: true },
    { action: ['kms:Encrypt', 'kms:Decrypt'], requested: 'kms:Decrypt', matches: true },
    { action: 's3:*', requested: 'kms:Decrypt', matches: false },
    { action: 'kms:Decrypt*', requested: 'kms:Decrypt', matches: true }, // * also matches nothing
  ];
  it.each(rows)('Action $action vs $requested', ({ action, requested, matches }) => {
    expect(evaluate(statementPolicy({ Action: action }), facts({ action: requested })).allows).toHaveLength(matches ? 1 : 0);
  });
  it.each(rows)('NotAction $action vs $requested is the complement', ({ action, requested, matches }) => {
    const doc = policy({ Version: '2012-10-17', Statement: { Effect: 'Allow', Principal: '*', NotAction: action, Resource: '*' } });
    expect(evaluate(doc, facts({ action: requested })).allows).toHaveLength(matches ? 0 : 1);
  });
});

describe('Resource and NotResource', () => {
  const rows: { resource: unknown; matches: boolean }[] = [
    { resource: '*', matches: true },
    { resource: KEY_ARN, matches: true },
    { resource: `arn:aws:kms:us-east-1:${ACCOUNT}:key/*`, matches: true },
    { resource: `arn:aws:kms:*:${ACCOUNT}:key/*`, matches: true },
    { resource: 'arn:aws:kms:*:*:key/*', matches: true },
    { resource: `arn:aws:kms:us-east-1:${OTHER_ACCOUNT}:key/*`, matches: false },
    { resource: `arn:aws:kms:us-west-2:${ACCOUNT}:key/*`, matches: false },
    { resource: `arn:aws:kms:us-east-1:${ACCOUNT}:alias/*`, matches: false },
    { resource: 'arn:aws:kms:*', matches: true }, // a * ending a component may run past colons
    { resource: 'arn:aws:kms:us-east-?:*', matches: true },
    { resource: 'arn:aws:kms:us-e*1:*', matches: true },
    { resource: 'arn:aws:kms:us*:key/*', matches: true }, // a * ending a component runs on (region:account)
    { resource: 'arn:aws:kms:us*3:key/*', matches: false }, // a * inside a component stays in it
    { resource: `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234ABCD-*`, matches: false }, // case-sensitive
    { resource: ['arn:aws:kms:*:*:alias/*', KEY_ARN], matches: true },
    { resource: 'arn:aws:kms:us-east-1:${aws:PrincipalAccount}:key/*', matches: true },
    { resource: 'arn:aws:kms:us-east-1:${aws:PrincipalTag/home-account}:key/*', matches: false }, // unresolved: matches nothing
  ];
  it.each(rows)('Resource $resource', ({ resource, matches }) => {
    expect(evaluate(statementPolicy({ Resource: resource })).allows).toHaveLength(matches ? 1 : 0);
  });
  it.each(rows.filter((r) => !String(r.resource).includes('${')))('NotResource $resource is the complement', ({ resource, matches }) => {
    const doc = policy({ Version: '2012-10-17', Statement: { Effect: 'Allow', Principal: '*', Action: 'kms:Decrypt', NotResource: resource } });
    expect(evaluate(doc).allows).toHaveLength(matches ? 0 : 1);
  });
  it('an unresolved variable in NotResource excludes nothing', () => {
    const doc = policy({
      Version: '2012-10-17',
      Statement: { Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', NotResource: 'arn:aws:kms:*:${aws:PrincipalTag/x}:key/*' },
    });
    expect(evaluate(doc).denies).toHaveLength(1);
  });
});

describe('explicit Deny', () => {
  const doc = policy({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'kms:*', Resource: '*' },
      { Sid: 'AllowAppDecrypt', Effect: 'Allow', Principal: { AWS: APP_ROLE }, Action: 'kms:Decrypt', Resource: '*' },
      {
        Sid: 'DenyOutsideNetwork',
        Effect: 'Deny',
        Principal: '*',
        Action: 'kms:*',
        Resource: '*',
        Condition: { NotIpAddress: { 'aws:SourceIp': '10.0.0.0/8' } },
      },
      { Sid: 'DenyDeletion', Effect: 'Deny', Principal: { AWS: APP_ROLE }, Action: ['kms:ScheduleKeyDeletion', 'kms:PutKeyPolicy'], Resource: '*' },
    ],
  });

  it('reports every matching Deny and Allow with its Sid and index', () => {
    const result = evaluatePolicy(doc, roleFacts({ sourceIp: '203.0.113.1' }), 'key-policy', 'key');
    expect(result.denies).toEqual([{ policy: 'key-policy', sid: 'DenyOutsideNetwork', index: 2 }]);
    expect(result.allows).toEqual([
      { policy: 'key-policy', sid: 'Enable IAM User Permissions', index: 0, via: 'account' },
      { policy: 'key-policy', sid: 'AllowAppDecrypt', index: 1, via: 'principal' },
    ]);
  });

  it('inside the network only the allows match', () => {
    const result = evaluate(doc, roleFacts({ sourceIp: '10.1.1.1' }));
    expect(result.denies).toEqual([]);
    expect(result.allows.map((a) => a.sid)).toEqual(['Enable IAM User Permissions', 'AllowAppDecrypt']);
  });

  it('a Deny naming a principal applies only to it', () => {
    const deletion = (f: RequestFacts) => evaluate(doc, { ...f, action: 'kms:ScheduleKeyDeletion', sourceIp: '10.0.0.1' }).denies.map((d) => d.sid);
    expect(deletion(roleFacts())).toEqual(['DenyDeletion']);
    expect(deletion(facts())).toEqual([]);
  });

  it('Deny with a statement without Sid is reported by index', () => {
    const d = policy({ Statement: [{ Effect: 'Deny', Principal: '*', Action: '*', Resource: '*' }] });
    expect(evaluate(d).denies).toEqual([{ policy: 'key-policy', sid: undefined, index: 0 }]);
  });
});

describe('NotPrincipal (Deny only)', () => {
  const deny = (notPrincipal: unknown) =>
    policy({ Version: '2012-10-17', Statement: { Effect: 'Deny', NotPrincipal: notPrincipal, Action: 'kms:*', Resource: '*' } });

  it('denies everyone not listed', () => {
    expect(evaluate(deny({ AWS: [APP_ROLE, ROOT] })).denies).toHaveLength(1); // alice
    expect(evaluate(deny({ AWS: [APP_ROLE, ROOT] }), otherFacts()).denies).toHaveLength(1);
  });
  it('exempts a listed role when its account is listed too', () => {
    expect(evaluate(deny({ AWS: [APP_ROLE, ROOT] }), roleFacts()).denies).toHaveLength(0);
  });
  it('does not exempt a listed role whose account is missing (as AWS)', () => {
    expect(evaluate(deny({ AWS: [APP_ROLE] }), roleFacts()).denies).toHaveLength(1);
  });
  it('exempts the account root when the account is listed', () => {
    expect(evaluate(deny({ AWS: ACCOUNT }), facts({ principalArn: ROOT, principalType: 'root', principalName: 'root' })).denies).toHaveLength(0);
    expect(evaluate(deny({ AWS: ACCOUNT })).denies).toHaveLength(1); // alice is not exempt by her account alone
  });
});

describe('identity policies', () => {
  const identity = (statement: Record<string, unknown>) => statementPolicy(statement, 'identity');

  it('statements apply to the attached principal, via identity', () => {
    expect(evaluate(identity({}), facts(), 'identity').allows).toEqual([{ policy: 'key-policy', sid: undefined, index: 0, via: 'identity' }]);
  });
  it('Resource narrows to keys by ARN', () => {
    expect(evaluate(identity({ Resource: `arn:aws:kms:*:${ACCOUNT}:key/*` }), facts(), 'identity').allows).toHaveLength(1);
    expect(evaluate(identity({ Resource: `arn:aws:kms:*:${OTHER_ACCOUNT}:key/*` }), facts(), 'identity').allows).toHaveLength(0);
  });
  it('Deny in an identity policy', () => {
    expect(evaluate(identity({ Effect: 'Deny', Action: 'kms:*' }), facts(), 'identity').denies).toHaveLength(1);
  });
  it('a document with Principal handed to the identity evaluator fails closed', () => {
    const keyDoc = statementPolicy({ Principal: '*' });
    expect(evaluate(keyDoc, facts(), 'identity')).toEqual({ denies: [], allows: [] });
    const keyDeny = statementPolicy({ Effect: 'Deny', Principal: { AWS: APP_ROLE } });
    expect(evaluate(keyDeny, facts(), 'identity').denies).toHaveLength(1);
  });
});

describe('fail-closed on documents the parser would refuse', () => {
  const base: PolicyStatement = {
    index: 0,
    sid: undefined,
    effect: 'Allow',
    principal: { aws: [{ kind: 'anyone', text: '*' }], service: [], federated: [], canonicalUser: [] },
    notPrincipal: undefined,
    actions: ['kms:*'],
    notActions: undefined,
    resources: ['*'],
    notResources: undefined,
    conditions: [],
  };
  const doc = (st: Partial<PolicyStatement>, version: PolicyDocument['version'] = '2012-10-17'): PolicyDocument => ({
    version,
    id: undefined,
    statements: [{ ...base, ...st }],
  });
  const badCondition = { operator: 'NumericLessThan', test: 'NumericLessThan' as const, qualifier: undefined, ifExists: false, key: 'kms:X', values: ['abc'] };

  it.each([
    ['no Action nor NotAction', { actions: undefined }],
    ['no Resource nor NotResource', { resources: undefined }],
    ['no principal in a key policy', { principal: undefined }],
    ['NotPrincipal on an Allow', { principal: undefined, notPrincipal: base.principal }],
    ['a condition value that does not compile', { conditions: [badCondition] }],
    ['an unknown condition test', { conditions: [{ ...badCondition, test: 'Bogus' as never }] }],
    ['a malformed variable in a resource', { resources: ['arn:aws:kms:${oops'] }],
  ])('%s: an Allow allows nothing, a Deny denies', (_name, st) => {
    expect(evaluate(doc(st))).toEqual({ denies: [], allows: [] });
    expect(evaluate(doc({ ...st, effect: 'Deny' })).denies).toHaveLength(1);
  });

  it('an effect that is neither Allow nor Deny is treated as Deny', () => {
    expect(evaluate(doc({ effect: 'allow' as never })).denies).toHaveLength(1);
  });

  it('garbage instead of a document never throws and allows nothing', () => {
    for (const junk of [null, undefined, {}, { statements: null }, { statements: [null] }, { statements: [{}] }, { statements: 'x' }]) {
      const result = evaluatePolicy(junk as never, facts(), 'key-policy', 'key');
      expect(result.allows).toEqual([]);
    }
  });

  it('garbage facts never throw and do not allow through conditions', () => {
    const conditional = statementPolicy({ Condition: { StringEquals: { 'aws:PrincipalTag/tenant': 'acme' } } });
    const weird = { ...facts(), principalTags: null, context: null, currentTime: new Date('invalid'), sourceIp: 42 } as unknown as RequestFacts;
    expect(evaluate(conditional, weird).allows).toEqual([]);
  });
});

describe('the default key policy', () => {
  const doc = defaultKeyPolicyDocument(ACCOUNT);

  it('parses into one statement delegating kms:* to the account', () => {
    expect(doc.statements).toHaveLength(1);
    expect(doc.statements[0]).toMatchObject({ sid: 'Enable IAM User Permissions', effect: 'Allow', actions: ['kms:*'], resources: ['*'] });
    expect(doc.statements[0]!.principal!.aws).toEqual([{ kind: 'account', accountId: ACCOUNT, text: ROOT }]);
  });

  it('allows the account root and every principal of the account via account, nobody else', () => {
    for (const f of [facts(), roleFacts(), facts({ principalArn: ROOT, principalType: 'root', principalName: 'root' })]) {
      expect(evaluate(doc, { ...f, action: 'kms:PutKeyPolicy' }).allows).toEqual([
        { policy: 'key-policy', sid: 'Enable IAM User Permissions', index: 0, via: 'account' },
      ]);
    }
    expect(evaluate(doc, otherFacts()).allows).toEqual([]);
  });
});

describe('wouldLockOut', () => {
  it('the default policy does not lock the account out', () => {
    expect(wouldLockOut(defaultKeyPolicyDocument(ACCOUNT), facts({ action: 'kms:Decrypt' }))).toBe(false);
  });
  it('a policy that only lets the caller decrypt locks it out', () => {
    expect(wouldLockOut(statementPolicy({ Principal: { AWS: ALICE }, Action: 'kms:Decrypt' }), facts())).toBe(true);
  });
  it('a policy naming the caller for kms:PutKeyPolicy does not', () => {
    expect(wouldLockOut(statementPolicy({ Principal: { AWS: ALICE }, Action: ['kms:PutKeyPolicy'] }), facts())).toBe(false);
  });
  it('a policy for another account locks the caller out', () => {
    expect(wouldLockOut(statementPolicy({ Principal: { AWS: OTHER_ACCOUNT }, Action: 'kms:*' }), facts())).toBe(true);
  });
  it('an explicit Deny of kms:PutKeyPolicy locks out even with an allow', () => {
    const doc = policy({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'kms:*', Resource: '*' },
        { Effect: 'Deny', Principal: { AWS: ALICE }, Action: 'kms:Put*', Resource: '*' },
      ],
    });
    expect(wouldLockOut(doc, facts())).toBe(true);
    expect(wouldLockOut(doc, roleFacts())).toBe(false);
  });
  it('conditions are judged with the caller facts', () => {
    const doc = statementPolicy({ Principal: { AWS: ROOT }, Action: 'kms:*', Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } } });
    expect(wouldLockOut(doc, facts({ sourceIp: '10.0.0.5' }))).toBe(false);
    expect(wouldLockOut(doc, facts({ sourceIp: '203.0.113.5' }))).toBe(true);
  });
});

describe('principalsIn', () => {
  const doc = policy({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Admins', Effect: 'Allow', Principal: { AWS: [ROOT, APP_ROLE] }, Action: 'kms:*', Resource: '*' },
      {
        Sid: 'Partner',
        Effect: 'Allow',
        Principal: { AWS: OTHER_ACCOUNT },
        Action: ['kms:Decrypt', 'kms:DescribeKey'],
        Resource: '*',
        Condition: { StringEquals: { 'kms:EncryptionContext:tenant': 'partner' } },
      },
      { Sid: 'Logs', Effect: 'Allow', Principal: { Service: 'logs.amazonaws.com' }, Action: 'kms:Encrypt*', Resource: '*' },
      {
        Sid: 'Anyone',
        Effect: 'Allow',
        Principal: '*',
        Action: 'kms:DescribeKey',
        Resource: '*',
        Condition: { StringEquals: { 'kms:CallerAccount': ACCOUNT } },
      },
      { Sid: 'NoDelete', Effect: 'Deny', NotPrincipal: { AWS: [ROOT] }, Action: 'kms:ScheduleKeyDeletion', Resource: '*' },
    ],
  });

  it('lists every Allow statement with its principals, actions and conditions', () => {
    const all = principalsIn(doc);
    expect(all.map((s) => s.sid)).toEqual(['Admins', 'Partner', 'Logs', 'Anyone']);
    expect(all[0]!.principals).toEqual([
      { kind: 'account', accountId: ACCOUNT },
      { kind: 'principal', arn: APP_ROLE, accountId: ACCOUNT },
    ]);
    expect(all[1]).toMatchObject({ principals: [{ kind: 'account', accountId: OTHER_ACCOUNT }], actions: ['kms:Decrypt', 'kms:DescribeKey'] });
    expect(all[1]!.conditions).toEqual([
      { operator: 'StringEquals', test: 'StringEquals', qualifier: undefined, ifExists: false, key: 'kms:EncryptionContext:tenant', values: ['partner'] },
    ]);
    expect(all[2]!.principals).toEqual([{ kind: 'service', name: 'logs.amazonaws.com' }]);
    expect(all[3]!.principals).toEqual([{ kind: 'anyone' }]);
  });

  it('filters by action, with wildcards', () => {
    expect(principalsIn(doc, { action: 'kms:Decrypt' }).map((s) => s.sid)).toEqual(['Admins', 'Partner']);
    expect(principalsIn(doc, { action: 'kms:EncryptWhatever' }).map((s) => s.sid)).toEqual(['Admins', 'Logs']);
    expect(principalsIn(doc, { action: 'kms:DescribeKey' }).map((s) => s.sid)).toEqual(['Admins', 'Partner', 'Anyone']);
  });

  it('lists Deny statements on request, NotPrincipal included', () => {
    expect(principalsIn(doc, { effect: 'Deny', action: 'kms:ScheduleKeyDeletion' })).toEqual([
      expect.objectContaining({ sid: 'NoDelete', principals: [], notPrincipals: [{ kind: 'account', accountId: ACCOUNT }] }),
    ]);
  });

  it('identity policy statements name the attached principal', () => {
    expect(principalsIn(statementPolicy({}, 'identity'))[0]!.principals).toEqual([{ kind: 'identity' }]);
  });
});
