import { parsePolicy, type PolicyDocument, type PolicyKind, type RequestFacts } from '../../src/domain/policy/index.ts';

export const ACCOUNT = '111122223333';
export const OTHER_ACCOUNT = '444455556666';
export const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
export const ALICE = `arn:aws:iam::${ACCOUNT}:user/alice`;
export const APP_ROLE = `arn:aws:iam::${ACCOUNT}:role/app`;
export const ROOT = `arn:aws:iam::${ACCOUNT}:root`;

/** Request facts for alice (a user of ACCOUNT) calling kms:Decrypt on KEY_ARN; override anything. */
export function facts(overrides: Partial<RequestFacts> = {}): RequestFacts {
  return {
    action: 'kms:Decrypt',
    resourceArn: KEY_ARN,
    principalArn: ALICE,
    principalAccount: ACCOUNT,
    principalType: 'user',
    principalName: 'alice',
    principalTags: {},
    sourceIp: '203.0.113.10',
    currentTime: new Date('2026-03-01T12:00:00Z'),
    context: {},
    ...overrides,
  };
}

export const roleFacts = (overrides: Partial<RequestFacts> = {}): RequestFacts =>
  facts({ principalArn: APP_ROLE, principalType: 'role', principalName: 'app', ...overrides });

/** Parses a policy given as a JS object, failing the test with the parser's message when it does not parse. */
export function policy(document: unknown, kind: PolicyKind = 'key'): PolicyDocument {
  const parsed = parsePolicy(JSON.stringify(document), kind);
  if (!parsed.ok) throw new Error(`test policy does not parse: ${parsed.error.message}`);
  return parsed.policy;
}

/** A one-statement key policy: Allow (by default) Principal * kms:Decrypt on * with the given extra elements. */
export function statementPolicy(statement: Record<string, unknown>, kind: PolicyKind = 'key'): PolicyDocument {
  const base: Record<string, unknown> = { Effect: 'Allow', Action: 'kms:Decrypt', Resource: '*' };
  if (kind === 'key') base.Principal = '*';
  return policy({ Version: '2012-10-17', Statement: [{ ...base, ...statement }] }, kind);
}
