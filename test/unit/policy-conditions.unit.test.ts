import { describe, expect, it } from 'vitest';
import { evaluatePolicy, parsePolicy, type RequestFacts } from '../../src/domain/policy/index.ts';
import { ACCOUNT, ALICE, APP_ROLE, facts, OTHER_ACCOUNT, roleFacts, statementPolicy } from '../support/policy.ts';

/**
 * Condition operators, table by table. Each row is one Condition element on an
 * Allow statement; `holds` is whether the statement then allows the request.
 * Where AWS's documentation gives an example, the row follows it.
 */

type Context = RequestFacts['context'];
interface Row {
  name: string;
  condition: Record<string, Record<string, unknown>>;
  context?: Context;
  facts?: Partial<RequestFacts>;
  version?: string;
  holds: boolean;
}

function holds(row: Row): boolean {
  const base = facts({ ...row.facts, context: { ...row.context } });
  const doc = row.version
    ? (() => {
        const parsed = parsePolicy(
          JSON.stringify({
            Version: row.version,
            Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:Decrypt', Resource: '*', Condition: row.condition }],
          }),
          'key',
        );
        if (!parsed.ok) throw new Error(parsed.error.message);
        return parsed.policy;
      })()
    : statementPolicy({ Condition: row.condition });
  return evaluatePolicy(doc, base, 'key-policy', 'key').allows.length === 1;
}

const table = (title: string, rows: Row[]): void => {
  describe(title, () => {
    it.each(rows)('$name', (row) => {
      expect(holds(row)).toBe(row.holds);
    });
  });
};

table('String operators', [
  // AWS docs: StringEquals on aws:PrincipalTag/job-category.
  {
    name: 'StringEquals: tag equals',
    condition: { StringEquals: { 'aws:PrincipalTag/job-category': 'iamuser-admin' } },
    facts: { principalTags: { 'job-category': 'iamuser-admin' } },
    holds: true,
  },
  {
    name: 'StringEquals: tag differs',
    condition: { StringEquals: { 'aws:PrincipalTag/job-category': 'iamuser-admin' } },
    facts: { principalTags: { 'job-category': 'dev' } },
    holds: false,
  },
  { name: 'StringEquals: tag absent -> false', condition: { StringEquals: { 'aws:PrincipalTag/job-category': 'iamuser-admin' } }, holds: false },
  {
    name: 'StringEquals: case-sensitive value',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': 'Acme' } },
    context: { 'kms:EncryptionContext:tenant': 'acme' },
    holds: false,
  },
  {
    name: 'StringEquals: values are ORed',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': ['a', 'b', 'acme'] } },
    context: { 'kms:EncryptionContext:tenant': 'acme' },
    holds: true,
  },
  {
    name: 'StringEquals: keys are ANDed (one fails)',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': 'acme', 'kms:EncryptionContext:stage': 'prod' } },
    context: { 'kms:EncryptionContext:tenant': 'acme', 'kms:EncryptionContext:stage': 'dev' },
    holds: false,
  },
  {
    name: 'StringEquals: keys are ANDed (both hold)',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': 'acme', 'kms:EncryptionContext:stage': 'prod' } },
    context: { 'kms:EncryptionContext:tenant': 'acme', 'kms:EncryptionContext:stage': 'prod' },
    holds: true,
  },
  {
    name: 'StringEquals: * is not a wildcard',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': '*' } },
    context: { 'kms:EncryptionContext:tenant': 'acme' },
    holds: false,
  },
  {
    name: 'StringEquals: condition key names are case-insensitive',
    condition: { StringEquals: { 'KMS:encryptioncontext:TENANT': 'acme' } },
    context: { 'kms:EncryptionContext:tenant': 'acme' },
    holds: true,
  },
  { name: 'StringEquals: operator names are case-insensitive', condition: { stringequals: { 'kms:CallerAccount': ACCOUNT } }, holds: true },
  { name: 'StringEquals: a JSON number value compares as text', condition: { StringEquals: { 'kms:CallerAccount': 111122223333 } }, holds: true },
  {
    name: 'StringEquals: empty string value matches empty request value',
    condition: { StringEquals: { 'kms:EncryptionContext:note': '' } },
    context: { 'kms:EncryptionContext:note': '' },
    holds: true,
  },
  { name: 'StringNotEquals: value differs -> true', condition: { StringNotEquals: { 'kms:CallerAccount': OTHER_ACCOUNT } }, holds: true },
  { name: 'StringNotEquals: value equals -> false', condition: { StringNotEquals: { 'kms:CallerAccount': ACCOUNT } }, holds: false },
  // Negated operators with several values are NOR: no value may match.
  {
    name: 'StringNotEquals: several values, matches none -> true',
    condition: { StringNotEquals: { 'aws:PrincipalTag/dept': ['hr', 'finance'] } },
    facts: { principalTags: { dept: 'eng' } },
    holds: true,
  },
  {
    name: 'StringNotEquals: several values, matches one -> false',
    condition: { StringNotEquals: { 'aws:PrincipalTag/dept': ['hr', 'finance'] } },
    facts: { principalTags: { dept: 'finance' } },
    holds: false,
  },
  { name: 'StringNotEquals: key absent -> true (AWS)', condition: { StringNotEquals: { 'aws:PrincipalTag/dept': 'hr' } }, holds: true },
  {
    name: 'StringEqualsIgnoreCase: matches across case',
    condition: { StringEqualsIgnoreCase: { 'kms:EncryptionContext:tenant': 'ACME' } },
    context: { 'kms:EncryptionContext:tenant': 'acme' },
    holds: true,
  },
  {
    name: 'StringEqualsIgnoreCase: different text',
    condition: { StringEqualsIgnoreCase: { 'kms:EncryptionContext:tenant': 'ACMEX' } },
    context: { 'kms:EncryptionContext:tenant': 'acme' },
    holds: false,
  },
  {
    name: 'StringNotEqualsIgnoreCase: same text other case -> false',
    condition: { StringNotEqualsIgnoreCase: { 'kms:EncryptionContext:tenant': 'ACME' } },
    context: { 'kms:EncryptionContext:tenant': 'acme' },
    holds: false,
  },
  {
    name: 'StringNotEqualsIgnoreCase: other text -> true',
    condition: { StringNotEqualsIgnoreCase: { 'kms:EncryptionContext:tenant': 'ACME' } },
    context: { 'kms:EncryptionContext:tenant': 'globex' },
    holds: true,
  },
  {
    name: 'StringLike: * matches a run',
    condition: { StringLike: { 'kms:RequestAlias': 'alias/team-*' } },
    context: { 'kms:RequestAlias': 'alias/team-payments' },
    holds: true,
  },
  {
    name: 'StringLike: ? matches exactly one character',
    condition: { StringLike: { 'kms:RequestAlias': 'alias/app-?' } },
    context: { 'kms:RequestAlias': 'alias/app-12' },
    holds: false,
  },
  {
    name: 'StringLike: ? one character',
    condition: { StringLike: { 'kms:RequestAlias': 'alias/app-?' } },
    context: { 'kms:RequestAlias': 'alias/app-1' },
    holds: true,
  },
  {
    name: 'StringLike: case-sensitive',
    condition: { StringLike: { 'kms:RequestAlias': 'alias/App*' } },
    context: { 'kms:RequestAlias': 'alias/app' },
    holds: false,
  },
  { name: 'StringLike: "*" requires the key to be present', condition: { StringLike: { 'kms:RequestAlias': '*' } }, holds: false },
  {
    name: 'StringLike: "*" with the key present',
    condition: { StringLike: { 'kms:RequestAlias': '*' } },
    context: { 'kms:RequestAlias': 'alias/x' },
    holds: true,
  },
  {
    name: 'StringNotLike: does not match -> true',
    condition: { StringNotLike: { 'kms:RequestAlias': 'alias/test-*' } },
    context: { 'kms:RequestAlias': 'alias/prod' },
    holds: true,
  },
  {
    name: 'StringNotLike: matches -> false',
    condition: { StringNotLike: { 'kms:RequestAlias': 'alias/test-*' } },
    context: { 'kms:RequestAlias': 'alias/test-1' },
    holds: false,
  },
  { name: 'StringNotLike: key absent -> true (AWS)', condition: { StringNotLike: { 'kms:RequestAlias': 'alias/test-*' } }, holds: true },
  {
    name: 'String on a boolean request value compares "true"',
    condition: { StringEquals: { 'kms:GrantIsForAWSResource': 'true' } },
    context: { 'kms:GrantIsForAWSResource': true },
    holds: true,
  },
  {
    name: 'String on a numeric request value compares its text',
    condition: { StringEquals: { 'kms:RotationPeriodInDays': '90' } },
    context: { 'kms:RotationPeriodInDays': 90 },
    holds: true,
  },
]);

table('Numeric operators', [
  { name: 'NumericEquals', condition: { NumericEquals: { 'kms:RotationPeriodInDays': '365' } }, context: { 'kms:RotationPeriodInDays': 365 }, holds: true },
  {
    name: 'NumericEquals: 365.0 equals 365',
    condition: { NumericEquals: { 'kms:RotationPeriodInDays': '365.0' } },
    context: { 'kms:RotationPeriodInDays': 365 },
    holds: true,
  },
  {
    name: 'NumericEquals: JSON number value',
    condition: { NumericEquals: { 'kms:RotationPeriodInDays': 365 } },
    context: { 'kms:RotationPeriodInDays': 365 },
    holds: true,
  },
  {
    name: 'NumericEquals: request value as numeric text',
    condition: { NumericEquals: { 'kms:RotationPeriodInDays': 365 } },
    context: { 'kms:RotationPeriodInDays': '365' },
    holds: true,
  },
  {
    name: 'NumericEquals: non-numeric request value never matches',
    condition: { NumericEquals: { 'kms:RotationPeriodInDays': 365 } },
    context: { 'kms:RotationPeriodInDays': 'many' },
    holds: false,
  },
  {
    name: 'NumericNotEquals: differs',
    condition: { NumericNotEquals: { 'kms:RotationPeriodInDays': 365 } },
    context: { 'kms:RotationPeriodInDays': 90 },
    holds: true,
  },
  {
    name: 'NumericNotEquals: equal',
    condition: { NumericNotEquals: { 'kms:RotationPeriodInDays': 365 } },
    context: { 'kms:RotationPeriodInDays': 365 },
    holds: false,
  },
  {
    name: 'NumericNotEquals: several values NOR',
    condition: { NumericNotEquals: { 'kms:RotationPeriodInDays': [90, 180] } },
    context: { 'kms:RotationPeriodInDays': 180 },
    holds: false,
  },
  // AWS KMS docs: allow ScheduleKeyDeletion only with a waiting period of at least 21 days.
  {
    name: 'NumericGreaterThanEquals: 30 >= 21',
    condition: { NumericGreaterThanEquals: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 21 } },
    context: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 30 },
    holds: true,
  },
  {
    name: 'NumericGreaterThanEquals: 21 >= 21',
    condition: { NumericGreaterThanEquals: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 21 } },
    context: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 21 },
    holds: true,
  },
  {
    name: 'NumericGreaterThanEquals: 7 < 21',
    condition: { NumericGreaterThanEquals: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 21 } },
    context: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 7 },
    holds: false,
  },
  {
    name: 'NumericGreaterThan: 21 > 21 is false',
    condition: { NumericGreaterThan: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 21 } },
    context: { 'kms:ScheduleKeyDeletionPendingWindowInDays': 21 },
    holds: false,
  },
  // AWS KMS docs: kms:RotationPeriodInDays between 90 and 180 (two operators, ANDed).
  {
    name: 'NumericLessThanEquals + GreaterThanEquals: 120 in [90,180]',
    condition: { NumericLessThanEquals: { 'kms:RotationPeriodInDays': 180 }, NumericGreaterThanEquals: { 'kms:RotationPeriodInDays': 90 } },
    context: { 'kms:RotationPeriodInDays': 120 },
    holds: true,
  },
  {
    name: 'NumericLessThanEquals + GreaterThanEquals: 365 outside',
    condition: { NumericLessThanEquals: { 'kms:RotationPeriodInDays': 180 }, NumericGreaterThanEquals: { 'kms:RotationPeriodInDays': 90 } },
    context: { 'kms:RotationPeriodInDays': 365 },
    holds: false,
  },
  {
    name: 'NumericLessThan: 179 < 180',
    condition: { NumericLessThan: { 'kms:RotationPeriodInDays': 180 } },
    context: { 'kms:RotationPeriodInDays': 179 },
    holds: true,
  },
  {
    name: 'NumericLessThan: 180 < 180 is false',
    condition: { NumericLessThan: { 'kms:RotationPeriodInDays': 180 } },
    context: { 'kms:RotationPeriodInDays': 180 },
    holds: false,
  },
  {
    name: 'NumericLessThan: decimals',
    condition: { NumericLessThan: { 'kms:RotationPeriodInDays': '0.5' } },
    context: { 'kms:RotationPeriodInDays': 0.25 },
    holds: true,
  },
  { name: 'NumericLessThan: key absent -> false', condition: { NumericLessThan: { 'kms:RotationPeriodInDays': 180 } }, holds: false },
  { name: 'NumericNotEquals: key absent -> true (AWS)', condition: { NumericNotEquals: { 'kms:RotationPeriodInDays': 180 } }, holds: true },
]);

const NOW = { currentTime: new Date('2026-03-01T12:00:00Z') };
table('Date operators (aws:CurrentTime is derived from currentTime)', [
  { name: 'DateLessThan: before the deadline', condition: { DateLessThan: { 'aws:CurrentTime': '2026-12-31T23:59:59Z' } }, facts: NOW, holds: true },
  { name: 'DateLessThan: after the deadline', condition: { DateLessThan: { 'aws:CurrentTime': '2026-01-01T00:00:00Z' } }, facts: NOW, holds: false },
  // AWS docs: a window between two dates, two operators ANDed.
  {
    name: 'DateGreaterThan + DateLessThan: inside the window',
    condition: { DateGreaterThan: { 'aws:CurrentTime': '2026-02-01T00:00:00Z' }, DateLessThan: { 'aws:CurrentTime': '2026-04-01T00:00:00Z' } },
    facts: NOW,
    holds: true,
  },
  {
    name: 'DateGreaterThan + DateLessThan: outside',
    condition: { DateGreaterThan: { 'aws:CurrentTime': '2026-03-02T00:00:00Z' }, DateLessThan: { 'aws:CurrentTime': '2026-04-01T00:00:00Z' } },
    facts: NOW,
    holds: false,
  },
  {
    name: 'DateEquals: same instant in another offset',
    condition: { DateEquals: { 'aws:CurrentTime': '2026-03-01T13:00:00+01:00' } },
    facts: NOW,
    holds: true,
  },
  {
    name: 'DateEquals: epoch seconds',
    condition: { DateEquals: { 'aws:CurrentTime': String(Date.parse('2026-03-01T12:00:00Z') / 1000) } },
    facts: NOW,
    holds: true,
  },
  {
    name: 'DateEquals: JSON number epoch seconds on aws:EpochTime',
    condition: { DateEquals: { 'aws:EpochTime': Date.parse('2026-03-01T12:00:00Z') / 1000 } },
    facts: NOW,
    holds: true,
  },
  { name: 'DateNotEquals: a different instant', condition: { DateNotEquals: { 'aws:CurrentTime': '2026-03-01' } }, facts: NOW, holds: true },
  { name: 'DateLessThanEquals: equal instant', condition: { DateLessThanEquals: { 'aws:CurrentTime': '2026-03-01T12:00:00.000Z' } }, facts: NOW, holds: true },
  {
    name: 'DateGreaterThanEquals: date-only means midnight UTC',
    condition: { DateGreaterThanEquals: { 'aws:CurrentTime': '2026-03-01' } },
    facts: NOW,
    holds: true,
  },
  {
    name: 'DateGreaterThanEquals: time without zone is UTC',
    condition: { DateGreaterThanEquals: { 'aws:CurrentTime': '2026-03-01T12:00:01' } },
    facts: NOW,
    holds: false,
  },
  {
    name: 'DateLessThan on a request key in ISO form',
    condition: { DateLessThan: { 'kms:ValidTo': '2027-01-01T00:00:00Z' } },
    context: { 'kms:ValidTo': '2026-06-01T00:00:00Z' },
    holds: true,
  },
  {
    name: 'DateLessThan on a request key in epoch seconds',
    condition: { DateLessThan: { 'kms:ValidTo': '2027-01-01T00:00:00Z' } },
    context: { 'kms:ValidTo': 1_780_000_000 },
    holds: true,
  },
  {
    name: 'DateLessThan: unparseable request value never matches',
    condition: { DateLessThan: { 'kms:ValidTo': '2027-01-01T00:00:00Z' } },
    context: { 'kms:ValidTo': 'soon' },
    holds: false,
  },
]);

table('Bool and BinaryEquals', [
  // AWS KMS docs: allow CreateGrant only when the grant is for an AWS service integrated with KMS.
  {
    name: 'Bool: kms:GrantIsForAWSResource true',
    condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    context: { 'kms:GrantIsForAWSResource': true },
    holds: true,
  },
  {
    name: 'Bool: false request value',
    condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    context: { 'kms:GrantIsForAWSResource': false },
    holds: false,
  },
  {
    name: 'Bool: JSON boolean policy value',
    condition: { Bool: { 'kms:ReEncryptOnSameKey': false } },
    context: { 'kms:ReEncryptOnSameKey': false },
    holds: true,
  },
  { name: 'Bool: "TRUE" is true', condition: { Bool: { 'kms:ReEncryptOnSameKey': 'TRUE' } }, context: { 'kms:ReEncryptOnSameKey': 'true' }, holds: true },
  { name: 'Bool: key absent -> false', condition: { Bool: { 'kms:ReEncryptOnSameKey': 'false' } }, holds: false },
  {
    name: 'Bool: non-boolean request text never matches',
    condition: { Bool: { 'kms:ReEncryptOnSameKey': 'false' } },
    context: { 'kms:ReEncryptOnSameKey': 'no' },
    holds: false,
  },
  {
    name: 'BinaryEquals: same base64',
    condition: { BinaryEquals: { 'kms:RecipientAttestation:ImageSha384': 'AAECAw==' } },
    context: { 'kms:RecipientAttestation:ImageSha384': 'AAECAw==' },
    holds: true,
  },
  {
    name: 'BinaryEquals: different',
    condition: { BinaryEquals: { 'kms:RecipientAttestation:ImageSha384': 'AAECAw==' } },
    context: { 'kms:RecipientAttestation:ImageSha384': 'AAECBA==' },
    holds: false,
  },
]);

table('IpAddress / NotIpAddress (aws:SourceIp is derived from sourceIp)', [
  // AWS docs: IPv4 and IPv6 ranges in one condition.
  {
    name: 'IpAddress: inside 203.0.113.0/24',
    condition: { IpAddress: { 'aws:SourceIp': ['203.0.113.0/24', '2001:DB8:1234:5678::/64'] } },
    facts: { sourceIp: '203.0.113.10' },
    holds: true,
  },
  {
    name: 'IpAddress: inside the IPv6 /64',
    condition: { IpAddress: { 'aws:SourceIp': ['203.0.113.0/24', '2001:DB8:1234:5678::/64'] } },
    facts: { sourceIp: '2001:db8:1234:5678:abcd::1' },
    holds: true,
  },
  {
    name: 'IpAddress: outside both',
    condition: { IpAddress: { 'aws:SourceIp': ['203.0.113.0/24', '2001:DB8:1234:5678::/64'] } },
    facts: { sourceIp: '198.51.100.1' },
    holds: false,
  },
  { name: 'IpAddress: single address', condition: { IpAddress: { 'aws:SourceIp': '203.0.113.10' } }, facts: { sourceIp: '203.0.113.10' }, holds: true },
  { name: 'IpAddress: /0 matches any IPv4', condition: { IpAddress: { 'aws:SourceIp': '0.0.0.0/0' } }, facts: { sourceIp: '8.8.8.8' }, holds: true },
  {
    name: 'IpAddress: /0 IPv4 does not match IPv6',
    condition: { IpAddress: { 'aws:SourceIp': '0.0.0.0/0' } },
    facts: { sourceIp: '2001:db8::1' },
    holds: false,
  },
  {
    name: 'IpAddress: IPv4-mapped IPv6 source compares as IPv4',
    condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } },
    facts: { sourceIp: '::ffff:10.1.2.3' },
    holds: true,
  },
  {
    name: 'IpAddress: host bits in the block are ignored',
    condition: { IpAddress: { 'aws:SourceIp': '10.1.2.3/8' } },
    facts: { sourceIp: '10.200.0.1' },
    holds: true,
  },
  { name: 'IpAddress: /25 boundary', condition: { IpAddress: { 'aws:SourceIp': '192.0.2.0/25' } }, facts: { sourceIp: '192.0.2.128' }, holds: false },
  { name: 'IpAddress: no source address -> false', condition: { IpAddress: { 'aws:SourceIp': '0.0.0.0/0' } }, facts: { sourceIp: null }, holds: false },
  {
    name: 'IpAddress: unparseable source never matches',
    condition: { IpAddress: { 'aws:SourceIp': '0.0.0.0/0' } },
    facts: { sourceIp: 'localhost' },
    holds: false,
  },
  { name: 'NotIpAddress: outside -> true', condition: { NotIpAddress: { 'aws:SourceIp': '192.0.2.0/24' } }, facts: { sourceIp: '203.0.113.10' }, holds: true },
  {
    name: 'NotIpAddress: inside one of several -> false (NOR)',
    condition: { NotIpAddress: { 'aws:SourceIp': ['192.0.2.0/24', '203.0.113.0/24'] } },
    facts: { sourceIp: '203.0.113.10' },
    holds: false,
  },
  {
    name: 'NotIpAddress: no source address -> true (AWS)',
    condition: { NotIpAddress: { 'aws:SourceIp': '192.0.2.0/24' } },
    facts: { sourceIp: null },
    holds: true,
  },
  {
    name: 'aws:SourceIp cannot be supplied through context',
    condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } },
    facts: { sourceIp: '203.0.113.10' },
    context: { 'aws:SourceIp': '10.0.0.1' },
    holds: false,
  },
]);

table('ARN operators', [
  { name: 'ArnEquals: exact', condition: { ArnEquals: { 'aws:PrincipalArn': ALICE } }, holds: true },
  { name: 'ArnEquals: wildcards per component (like ArnLike)', condition: { ArnEquals: { 'aws:PrincipalArn': 'arn:aws:iam::*:user/ali*' } }, holds: true },
  { name: 'ArnLike: role pattern, caller is a user', condition: { ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:role/*` } }, holds: false },
  {
    name: 'ArnLike: role pattern, caller is the role',
    condition: { ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:role/*` } },
    facts: roleFacts(),
    holds: true,
  },
  { name: 'ArnLike: * in the account component does not cross colons', condition: { ArnLike: { 'aws:PrincipalArn': 'arn:aws:iam::*' } }, holds: false },
  {
    name: 'ArnLike: the resource component may contain colons',
    condition: { ArnLike: { 'kms:GranteePrincipal': 'arn:aws:sts::*:assumed-role/app/*' } },
    context: { 'kms:GranteePrincipal': `arn:aws:sts::${ACCOUNT}:assumed-role/app/session:1` },
    holds: true,
  },
  {
    name: 'ArnLike: a lone * matches any value',
    condition: { ArnLike: { 'kms:GranteePrincipal': '*' } },
    context: { 'kms:GranteePrincipal': APP_ROLE },
    holds: true,
  },
  { name: 'ArnLike: case-sensitive', condition: { ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:user/Alice` } }, holds: false },
  {
    name: 'ArnLike: a non-ARN request value never matches',
    condition: { ArnLike: { 'kms:GranteePrincipal': 'arn:aws:iam::*:role/*' } },
    context: { 'kms:GranteePrincipal': 'app' },
    holds: false,
  },
  { name: 'ArnNotEquals: another principal', condition: { ArnNotEquals: { 'aws:PrincipalArn': APP_ROLE } }, holds: true },
  { name: 'ArnNotLike: matches -> false', condition: { ArnNotLike: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:user/*` } }, holds: false },
  { name: 'ArnNotLike: key absent -> true', condition: { ArnNotLike: { 'kms:GranteePrincipal': 'arn:aws:iam::*:role/*' } }, holds: true },
]);

table('Null', [
  // AWS KMS docs: require an encryption context with "Null": {"kms:EncryptionContextKeys": "false"}.
  {
    name: 'Null false: key present',
    condition: { Null: { 'kms:EncryptionContextKeys': 'false' } },
    context: { 'kms:EncryptionContextKeys': ['tenant'] },
    holds: true,
  },
  { name: 'Null false: key absent', condition: { Null: { 'kms:EncryptionContextKeys': 'false' } }, holds: false },
  {
    name: 'Null false: an empty list counts as absent',
    condition: { Null: { 'kms:EncryptionContextKeys': 'false' } },
    context: { 'kms:EncryptionContextKeys': [] },
    holds: false,
  },
  { name: 'Null true: key absent', condition: { Null: { 'kms:GranteePrincipal': 'true' } }, holds: true },
  { name: 'Null true: key present', condition: { Null: { 'kms:GranteePrincipal': 'true' } }, context: { 'kms:GranteePrincipal': APP_ROLE }, holds: false },
  { name: 'Null true: JSON boolean', condition: { Null: { 'aws:PrincipalTag/team': true } }, holds: true },
  { name: 'Null true: an unknown key is absent', condition: { Null: { 'kms:NoSuchKey': 'true' } }, holds: true },
  {
    name: 'Null false: an empty string is present',
    condition: { Null: { 'kms:EncryptionContext:note': 'false' } },
    context: { 'kms:EncryptionContext:note': '' },
    holds: true,
  },
]);

table('...IfExists', [
  { name: 'StringEqualsIfExists: key absent -> true', condition: { StringEqualsIfExists: { 'kms:EncryptionContext:tenant': 'acme' } }, holds: true },
  {
    name: 'StringEqualsIfExists: present and equal',
    condition: { StringEqualsIfExists: { 'kms:EncryptionContext:tenant': 'acme' } },
    context: { 'kms:EncryptionContext:tenant': 'acme' },
    holds: true,
  },
  {
    name: 'StringEqualsIfExists: present and different',
    condition: { StringEqualsIfExists: { 'kms:EncryptionContext:tenant': 'acme' } },
    context: { 'kms:EncryptionContext:tenant': 'globex' },
    holds: false,
  },
  {
    name: 'StringNotLikeIfExists: present and matching -> false',
    condition: { StringNotLikeIfExists: { 'kms:RequestAlias': 'alias/test-*' } },
    context: { 'kms:RequestAlias': 'alias/test-x' },
    holds: false,
  },
  { name: 'NumericLessThanIfExists: absent -> true', condition: { NumericLessThanIfExists: { 'kms:RotationPeriodInDays': 100 } }, holds: true },
  {
    name: 'NumericLessThanIfExists: present, too large',
    condition: { NumericLessThanIfExists: { 'kms:RotationPeriodInDays': 100 } },
    context: { 'kms:RotationPeriodInDays': 365 },
    holds: false,
  },
  { name: 'BoolIfExists: absent -> true', condition: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'true' } }, holds: true },
  { name: 'IpAddressIfExists: no source -> true', condition: { IpAddressIfExists: { 'aws:SourceIp': '10.0.0.0/8' } }, facts: { sourceIp: null }, holds: true },
  { name: 'IpAddressIfExists: source outside -> false', condition: { IpAddressIfExists: { 'aws:SourceIp': '10.0.0.0/8' } }, holds: false },
  { name: 'ArnLikeIfExists: absent -> true', condition: { ArnLikeIfExists: { 'kms:GranteePrincipal': 'arn:aws:iam::*:role/*' } }, holds: true },
  { name: 'DateLessThanIfExists: absent -> true', condition: { DateLessThanIfExists: { 'kms:ValidTo': '2027-01-01' } }, holds: true },
  { name: 'ifexists suffix is case-insensitive', condition: { StringEqualsifexists: { 'kms:EncryptionContext:tenant': 'acme' } }, holds: true },
]);

// AWS docs (multivalued context keys), with aws:TagKeys replaced by kms:EncryptionContextKeys.
const keys = (...k: string[]): Context => ({ 'kms:EncryptionContextKeys': k });
const ALLOWED = ['environment', 'cost-center'];
table('ForAllValues / ForAnyValue', [
  {
    name: 'ForAllValues:StringEquals: subset',
    condition: { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys('environment'),
    holds: true,
  },
  {
    name: 'ForAllValues:StringEquals: equal set',
    condition: { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys('environment', 'cost-center'),
    holds: true,
  },
  {
    name: 'ForAllValues:StringEquals: one value outside',
    condition: { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys('environment', 'dept'),
    holds: false,
  },
  {
    name: 'ForAllValues:StringEquals: case matters',
    condition: { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys('Environment'),
    holds: false,
  },
  { name: 'ForAllValues:StringEquals: key missing -> true', condition: { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ALLOWED } }, holds: true },
  {
    name: 'ForAllValues:StringEquals: empty set -> true',
    condition: { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys(),
    holds: true,
  },
  {
    name: 'ForAllValues + Null false: missing -> false',
    condition: { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ALLOWED }, Null: { 'kms:EncryptionContextKeys': 'false' } },
    holds: false,
  },
  {
    name: 'ForAnyValue:StringEquals: one matches',
    condition: { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys('dept', 'environment'),
    holds: true,
  },
  {
    name: 'ForAnyValue:StringEquals: none matches',
    condition: { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys('dept'),
    holds: false,
  },
  { name: 'ForAnyValue:StringEquals: key missing -> false', condition: { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': ALLOWED } }, holds: false },
  {
    name: 'ForAnyValue:StringEquals: empty set -> false',
    condition: { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys(),
    holds: false,
  },
  {
    name: 'ForAnyValue:StringEqualsIfExists: key missing -> true',
    condition: { 'ForAnyValue:StringEqualsIfExists': { 'kms:EncryptionContextKeys': ALLOWED } },
    holds: true,
  },
  {
    name: 'ForAllValues:StringNotEquals: none of them -> true',
    condition: { 'ForAllValues:StringNotEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys('dept', 'owner'),
    holds: true,
  },
  {
    name: 'ForAllValues:StringNotEquals: one of them -> false',
    condition: { 'ForAllValues:StringNotEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys('dept', 'environment'),
    holds: false,
  },
  {
    name: 'ForAllValues:StringNotEquals: missing -> true',
    condition: { 'ForAllValues:StringNotEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    holds: true,
  },
  {
    name: 'ForAnyValue:StringNotEquals: one outside -> true',
    condition: { 'ForAnyValue:StringNotEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys('environment', 'dept'),
    holds: true,
  },
  {
    name: 'ForAnyValue:StringNotEquals: all inside -> false',
    condition: { 'ForAnyValue:StringNotEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys('environment', 'cost-center'),
    holds: false,
  },
  {
    name: 'ForAnyValue:StringNotEquals: missing -> false',
    condition: { 'ForAnyValue:StringNotEquals': { 'kms:EncryptionContextKeys': ALLOWED } },
    holds: false,
  },
  {
    name: 'ForAllValues:StringLike',
    condition: { 'ForAllValues:StringLike': { 'kms:EncryptionContextKeys': 'app-*' } },
    context: keys('app-a', 'app-b'),
    holds: true,
  },
  {
    name: 'ForAnyValue:StringLike',
    condition: { 'ForAnyValue:StringLike': { 'kms:EncryptionContextKeys': 'app-*' } },
    context: keys('x', 'app-b'),
    holds: true,
  },
  // AWS KMS docs: a grant may allow only these operations.
  {
    name: 'ForAllValues:StringEquals kms:GrantOperations: within',
    condition: { 'ForAllValues:StringEquals': { 'kms:GrantOperations': ['Encrypt', 'Decrypt'] } },
    context: { 'kms:GrantOperations': ['Decrypt'] },
    holds: true,
  },
  {
    name: 'ForAllValues:StringEquals kms:GrantOperations: too wide',
    condition: { 'ForAllValues:StringEquals': { 'kms:GrantOperations': ['Encrypt', 'Decrypt'] } },
    context: { 'kms:GrantOperations': ['Decrypt', 'CreateGrant'] },
    holds: false,
  },
  { name: 'qualifier on a single-valued key: a set of one', condition: { 'ForAnyValue:StringEquals': { 'kms:CallerAccount': [ACCOUNT] } }, holds: true },
  {
    name: 'qualifier names are case-insensitive',
    condition: { 'forallvalues:stringequals': { 'kms:EncryptionContextKeys': ALLOWED } },
    context: keys('dept'),
    holds: false,
  },
  {
    name: 'no qualifier on a multivalued key: any value matches',
    condition: { StringEquals: { 'kms:EncryptionContextKeys': 'environment' } },
    context: keys('dept', 'environment'),
    holds: true,
  },
  {
    name: 'no qualifier, negated, multivalued: true only when none matches',
    condition: { StringNotEquals: { 'kms:EncryptionContextKeys': 'environment' } },
    context: keys('dept', 'environment'),
    holds: false,
  },
]);

table('Unknown keys are absent', [
  { name: 'plain operator -> false', condition: { StringEquals: { 'kms:NoSuchKey': 'x' } }, holds: false },
  { name: 'IfExists -> true', condition: { StringEqualsIfExists: { 'kms:NoSuchKey': 'x' } }, holds: true },
  { name: 'another service prefix -> false', condition: { StringEquals: { 's3:prefix': 'x' } }, holds: false },
  { name: 'negated plain operator -> true (AWS)', condition: { StringNotEquals: { 'kms:NoSuchKey': 'x' } }, holds: true },
]);

table('Policy variables', [
  // The target: "role app may Decrypt only when encryptionContext.tenant equals its tag".
  {
    name: '${aws:PrincipalTag/tenant} equals the context',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': '${aws:PrincipalTag/tenant}' } },
    facts: { principalTags: { tenant: 'acme' } },
    context: { 'kms:EncryptionContext:tenant': 'acme' },
    holds: true,
  },
  {
    name: '${aws:PrincipalTag/tenant} differs',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': '${aws:PrincipalTag/tenant}' } },
    facts: { principalTags: { tenant: 'acme' } },
    context: { 'kms:EncryptionContext:tenant': 'globex' },
    holds: false,
  },
  {
    name: 'tag absent: the value matches nothing',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': '${aws:PrincipalTag/tenant}' } },
    context: { 'kms:EncryptionContext:tenant': '${aws:PrincipalTag/tenant}' },
    holds: false,
  },
  {
    name: 'tag absent: one value fails, another may match',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': ['${aws:PrincipalTag/tenant}', 'shared'] } },
    context: { 'kms:EncryptionContext:tenant': 'shared' },
    holds: true,
  },
  {
    name: 'tag keys in variables are case-insensitive',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': '${aws:principaltag/TENANT}' } },
    facts: { principalTags: { Tenant: 'acme' } },
    context: { 'kms:EncryptionContext:tenant': 'acme' },
    holds: true,
  },
  {
    name: '${aws:username} in StringLike',
    condition: { StringLike: { 'kms:RequestAlias': 'alias/home/${aws:username}/*' } },
    context: { 'kms:RequestAlias': 'alias/home/alice/docs' },
    holds: true,
  },
  {
    name: '${aws:username} is absent for a role',
    condition: { StringLike: { 'kms:RequestAlias': 'alias/home/${aws:username}/*' } },
    facts: roleFacts(),
    context: { 'kms:RequestAlias': 'alias/home/app/docs' },
    holds: false,
  },
  { name: '${aws:PrincipalAccount}', condition: { StringEquals: { 'kms:CallerAccount': '${aws:PrincipalAccount}' } }, holds: true },
  {
    name: '${aws:PrincipalArn} in ArnEquals',
    condition: { ArnEquals: { 'kms:GranteePrincipal': '${aws:PrincipalArn}' } },
    context: { 'kms:GranteePrincipal': ALICE },
    holds: true,
  },
  {
    name: '${aws:PrincipalArn} in ArnEquals, other grantee',
    condition: { ArnEquals: { 'kms:GranteePrincipal': '${aws:PrincipalArn}' } },
    context: { 'kms:GranteePrincipal': APP_ROLE },
    holds: false,
  },
  {
    name: 'a request key as a variable',
    condition: { StringEquals: { 'kms:EncryptionContext:owner': '${kms:CallerAccount}' } },
    context: { 'kms:EncryptionContext:owner': ACCOUNT },
    holds: true,
  },
  {
    name: 'substituted text is literal: a * in a tag is not a wildcard',
    condition: { StringLike: { 'kms:EncryptionContext:tenant': '${aws:PrincipalTag/tenant}' } },
    facts: { principalTags: { tenant: '*' } },
    context: { 'kms:EncryptionContext:tenant': 'acme' },
    holds: false,
  },
  {
    name: 'a multivalued key is not a variable',
    condition: { StringEquals: { 'kms:EncryptionContext:k': '${kms:EncryptionContextKeys}' } },
    context: { 'kms:EncryptionContextKeys': ['k'], 'kms:EncryptionContext:k': 'k' },
    holds: false,
  },
  {
    name: 'default value when absent',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': "${aws:PrincipalTag/tenant, 'shared'}" } },
    context: { 'kms:EncryptionContext:tenant': 'shared' },
    holds: true,
  },
  {
    name: 'default value ignored when present',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': "${aws:PrincipalTag/tenant, 'shared'}" } },
    facts: { principalTags: { tenant: 'acme' } },
    context: { 'kms:EncryptionContext:tenant': 'shared' },
    holds: false,
  },
  {
    name: "default value with an escaped quote ''",
    condition: { StringEquals: { 'kms:EncryptionContext:q': "${aws:PrincipalTag/q, 'it''s'}" } },
    context: { 'kms:EncryptionContext:q': "it's" },
    holds: true,
  },
  {
    name: '${*} is a literal * in StringLike',
    condition: { StringLike: { 'kms:EncryptionContext:tenant': 'a${*}' } },
    context: { 'kms:EncryptionContext:tenant': 'abc' },
    holds: false,
  },
  {
    name: '${*} matches a literal *',
    condition: { StringLike: { 'kms:EncryptionContext:tenant': 'a${*}' } },
    context: { 'kms:EncryptionContext:tenant': 'a*' },
    holds: true,
  },
  {
    name: '${?} is a literal ?',
    condition: { StringLike: { 'kms:EncryptionContext:tenant': 'a${?}' } },
    context: { 'kms:EncryptionContext:tenant': 'ab' },
    holds: false,
  },
  {
    name: '${$} is a literal $',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': '${$}{aws:username}' } },
    context: { 'kms:EncryptionContext:tenant': '${aws:username}' },
    holds: true,
  },
  {
    name: 'variables are text under Version 2008-10-17',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': '${aws:username}' } },
    context: { 'kms:EncryptionContext:tenant': '${aws:username}' },
    version: '2008-10-17',
    holds: true,
  },
  {
    name: 'variables are not substituted under 2008-10-17',
    condition: { StringEquals: { 'kms:EncryptionContext:tenant': '${aws:username}' } },
    context: { 'kms:EncryptionContext:tenant': 'alice' },
    version: '2008-10-17',
    holds: false,
  },
  {
    name: 'negated operator with an absent variable: the value matches nothing, so NotEquals holds',
    condition: { StringNotEquals: { 'kms:EncryptionContext:tenant': '${aws:PrincipalTag/tenant}' } },
    context: { 'kms:EncryptionContext:tenant': 'acme' },
    holds: true,
  },
]);

describe('derived global keys', () => {
  it('aws:PrincipalType, aws:PrincipalAccount, aws:ResourceAccount, kms:CallerAccount', () => {
    expect(
      holds({
        name: '',
        condition: {
          StringEquals: { 'aws:PrincipalType': 'User', 'aws:PrincipalAccount': ACCOUNT, 'aws:ResourceAccount': ACCOUNT, 'kms:CallerAccount': ACCOUNT },
        },
        holds: true,
      }),
    ).toBe(true);
    expect(holds({ name: '', condition: { StringEquals: { 'aws:PrincipalType': 'AssumedRole' } }, facts: roleFacts(), holds: true })).toBe(true);
    expect(
      holds({
        name: '',
        condition: { StringEquals: { 'aws:PrincipalType': 'Account' } },
        facts: { principalType: 'root', principalArn: `arn:aws:iam::${ACCOUNT}:root`, principalName: 'root' },
        holds: true,
      }),
    ).toBe(true);
  });

  it('a request cannot override the principal through its context', () => {
    const spoof = { 'aws:PrincipalArn': APP_ROLE, 'aws:PrincipalTag/tenant': 'acme', 'aws:username': 'bob' };
    expect(holds({ name: '', condition: { ArnEquals: { 'aws:PrincipalArn': APP_ROLE } }, context: spoof, holds: false })).toBe(false);
    expect(holds({ name: '', condition: { StringEquals: { 'aws:PrincipalTag/tenant': 'acme' } }, context: spoof, holds: false })).toBe(false);
    expect(holds({ name: '', condition: { StringEquals: { 'aws:username': 'bob' } }, context: spoof, holds: false })).toBe(false);
  });

  it('kms:CallerAccount from the context wins over the derived default', () => {
    expect(
      holds({ name: '', condition: { StringEquals: { 'kms:CallerAccount': OTHER_ACCOUNT } }, context: { 'kms:CallerAccount': OTHER_ACCOUNT }, holds: true }),
    ).toBe(true);
  });

  it('encryption context keys that differ only in case are both seen', () => {
    const context = { 'kms:EncryptionContext:Tenant': 'acme', 'kms:EncryptionContext:tenant': 'globex' };
    // A Deny on either value still applies.
    const deny = statementPolicy({ Effect: 'Deny', Condition: { StringEquals: { 'kms:EncryptionContext:tenant': 'globex' } } });
    expect(evaluatePolicy(deny, facts({ context }), 'key-policy', 'key').denies).toHaveLength(1);
    const deny2 = statementPolicy({ Effect: 'Deny', Condition: { StringEquals: { 'kms:EncryptionContext:tenant': 'acme' } } });
    expect(evaluatePolicy(deny2, facts({ context }), 'key-policy', 'key').denies).toHaveLength(1);
  });
});
