import { describe, expect, it } from 'vitest';
import { defaultKeyPolicy } from '../../src/domain/key.ts';
import { MAX_POLICY_LENGTH, parsePolicy, type PolicyKind } from '../../src/domain/policy/index.ts';
import { ACCOUNT, ALICE, ROOT } from '../support/policy.ts';

const ok = { Effect: 'Allow', Principal: { AWS: ROOT }, Action: 'kms:*', Resource: '*' };
const doc = (statement: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ Version: '2012-10-17', Statement: statement, ...extra });
const withStatement = (changes: Record<string, unknown>, drop: string[] = []) => {
  const st: Record<string, unknown> = { ...ok, ...changes };
  for (const d of drop) delete st[d];
  return doc([st]);
};

function errorOf(text: string, kind: PolicyKind = 'key'): string {
  const parsed = parsePolicy(text, kind);
  if (parsed.ok) throw new Error(`expected a parse error for ${text}`);
  expect(parsed.error.code).toBe('MalformedPolicyDocumentException');
  return parsed.error.message;
}

describe('parsePolicy: malformed documents name what is wrong', () => {
  const rows: { name: string; text: string; kind?: PolicyKind; message: string | RegExp }[] = [
    // The document as a whole
    { name: 'empty text', text: '', message: 'The policy document is empty' },
    { name: 'whitespace', text: '  \n ', message: 'The policy document is empty' },
    {
      name: 'not JSON',
      text: '{Statement: []}',
      message: /^The policy document is not valid JSON: unexpected character 'S' \(expected a quoted name\) at line 1 column 2$/,
    },
    { name: 'truncated JSON', text: '{"Statement": [', message: /not valid JSON: unexpected end of text at line 1 column 16/ },
    { name: 'trailing comma', text: '{"Statement": [],}', message: /not valid JSON/ },
    { name: 'text after the document', text: `${doc([ok])} x`, message: /not valid JSON: unexpected text after the document/ },
    { name: 'single quotes', text: "{'Statement': []}", message: /not valid JSON/ },
    { name: 'a comment', text: '{"Statement": [] /* c */}', message: /not valid JSON/ },
    { name: 'NaN', text: '{"Version": NaN}', message: /not valid JSON/ },
    { name: 'a byte order mark', text: `\uFEFF${doc([ok])}`, message: /not valid JSON: unexpected character '\uFEFF'/ },
    { name: 'an unescaped control character', text: '{"Id": "a\u0001b"}', message: /control characters must be escaped/ },
    { name: 'a JSON list', text: '[]', message: 'The policy document must be a JSON object, not a list' },
    { name: 'a JSON string', text: '"policy"', message: 'The policy document must be a JSON object, not a string' },
    { name: 'too deep', text: `{"Id": ${'['.repeat(40)}${']'.repeat(40)}}`, message: /nesting deeper than 32 levels/ },
    { name: 'too long', text: doc([ok], { Id: 'x'.repeat(MAX_POLICY_LENGTH) }), message: `The policy document is longer than ${MAX_POLICY_LENGTH} characters` },
    {
      name: 'duplicate top-level element',
      text: '{"Statement": [], "Statement": []}',
      message: /^The policy document repeats an element: the document has "Statement" twice at line 1 column 19$/,
    },
    {
      name: 'duplicate Effect (a reviewer would read Deny)',
      text: '{"Statement": [{"Effect": "Deny", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}',
      message: /repeats an element: Statement\[0\] has "Effect" twice/,
    },
    {
      name: 'duplicate condition key',
      text:
        '{"Statement": {"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*", ' +
        '"Condition": {"StringEquals": {"kms:CallerAccount": "1", "kms:CallerAccount": "2"}}}}',
      message: /Statement.Condition.StringEquals has "kms:CallerAccount" twice/,
    },
    {
      name: 'unknown top-level element',
      text: doc([ok], { Owner: 'me' }),
      message: 'The policy document has an unknown element "Owner" (allowed: Version, Id, Statement)',
    },
    {
      name: 'misspelt top-level element',
      text: JSON.stringify({ Statements: [ok] }),
      message: 'The policy document has an unknown element "Statements" (did you mean "Statement"?)',
    },
    {
      name: 'lower-case element',
      text: JSON.stringify({ version: '2012-10-17', Statement: [ok] }),
      message: 'The policy document has an unknown element "version" (did you mean "Version"?)',
    },
    { name: 'bad Version', text: doc([ok], { Version: '2012-10-18' }), message: 'Version must be "2012-10-17" or "2008-10-17", not "2012-10-18"' },
    { name: 'Version as a number', text: JSON.stringify({ Version: 2012, Statement: [ok] }), message: 'Version must be "2012-10-17" or "2008-10-17"' },
    { name: 'Id not a string', text: doc([ok], { Id: 7 }), message: 'Id must be a string, not a number' },
    { name: 'no Statement', text: JSON.stringify({ Version: '2012-10-17' }), message: 'The policy document has no Statement' },
    { name: 'empty Statement list', text: doc([]), message: 'Statement must not be an empty list' },
    { name: 'Statement a string', text: doc('allow all'), message: 'Statement[0] must be an object, not a string' },
    { name: 'a statement that is a list', text: doc([ok, [ok]]), message: 'Statement[1] must be an object, not a list' },
    // Statement elements
    {
      name: 'unknown statement element',
      text: withStatement({ Actions: ['kms:*'] }),
      message: 'Statement[0] has an unknown element "Actions" (did you mean "Action"?)',
    },
    {
      name: 'unknown statement element, no near match',
      text: withStatement({ Comment: 'x' }),
      message:
        'Statement[0] has an unknown element "Comment" (allowed: Sid, Effect, Principal, NotPrincipal, Action, NotAction, Resource, NotResource, Condition)',
    },
    { name: 'Sid not a string', text: withStatement({ Sid: 1 }), message: 'Statement[0].Sid must be a string, not a number' },
    {
      name: 'duplicate Sid',
      text: doc([
        { ...ok, Sid: 'A' },
        { ...ok, Sid: 'B' },
        { ...ok, Sid: 'A' },
      ]),
      message: 'Statement[2].Sid "A" is already used by Statement[0]; Sids must be unique',
    },
    { name: 'no Effect', text: withStatement({}, ['Effect']), message: 'Statement[0] has no Effect; it must be Allow or Deny' },
    { name: 'Effect lower-case', text: doc([ok, { ...ok, Effect: 'allow' }]), message: 'Statement[1].Effect must be Allow or Deny, not "allow"' },
    { name: 'Effect a boolean', text: withStatement({ Effect: true }), message: 'Statement[0].Effect must be Allow or Deny' },
    { name: 'Effect a list', text: withStatement({ Effect: ['Allow'] }), message: 'Statement[0].Effect must be Allow or Deny' },
    { name: 'no Action', text: withStatement({}, ['Action']), message: 'Statement[0] has no Action; it needs Action or NotAction' },
    { name: 'Action and NotAction', text: withStatement({ NotAction: 'kms:Decrypt' }), message: 'Statement[0] cannot have both Action and NotAction' },
    { name: 'empty Action list', text: withStatement({ Action: [] }), message: 'Statement[0].Action must not be an empty list' },
    { name: 'empty action string', text: withStatement({ Action: '' }), message: 'Statement[0].Action must not be empty' },
    {
      name: 'Action an object',
      text: withStatement({ Action: { kms: '*' } }),
      message: 'Statement[0].Action must be a string or a list of strings, not an object',
    },
    {
      name: 'Action list with a number',
      text: withStatement({ Action: ['kms:Decrypt', 5] }),
      message: 'Statement[0].Action[1] must be a string, not a number',
    },
    { name: 'action without a service', text: withStatement({ Action: 'Decrypt' }), message: /^Statement\[0\]\.Action\[0\] "Decrypt" is not an action/ },
    { name: 'action with a space', text: withStatement({ Action: 'kms: Decrypt' }), message: /Action\[0\] "kms: Decrypt" is not an action/ },
    { name: 'NotAction junk', text: withStatement({ NotAction: ['kms:*', 'kms'] }, ['Action']), message: /NotAction\[1\] "kms" is not an action/ },
    { name: 'no Resource', text: withStatement({}, ['Resource']), message: 'Statement[0] has no Resource; it needs Resource or NotResource' },
    { name: 'Resource and NotResource', text: withStatement({ NotResource: '*' }), message: 'Statement[0] cannot have both Resource and NotResource' },
    { name: 'Resource not an ARN', text: withStatement({ Resource: 'my-key' }), message: 'Statement[0].Resource[0] "my-key" must be "*" or an ARN' },
    {
      name: 'Resource a bare key id',
      text: withStatement({ Resource: ['*', '1234abcd-12ab-34cd-56ef-1234567890ab'] }),
      message: /Resource\[1\] .* must be "\*" or an ARN/,
    },
    {
      name: 'Resource with a malformed variable',
      text: withStatement({ Resource: 'arn:aws:kms:us-east-1:${aws:PrincipalAccount:key/*' }),
      message: /^Statement\[0\]\.Resource\[0\] .* has a malformed policy variable at position 22: missing closing \}$/,
    },
    // Principals
    {
      name: 'key policy without Principal',
      text: withStatement({}, ['Principal']),
      message: 'Statement[0] has no Principal; a key policy statement must name its principals',
    },
    {
      name: 'identity policy with Principal',
      text: withStatement({}),
      kind: 'identity',
      message: 'Statement[0].Principal is not allowed in an identity policy: it applies to the principal it is attached to',
    },
    {
      name: 'identity policy with NotPrincipal',
      text: withStatement({ Effect: 'Deny', NotPrincipal: { AWS: ROOT } }, ['Principal']),
      kind: 'identity',
      message: /NotPrincipal is not allowed in an identity policy/,
    },
    {
      name: 'Principal and NotPrincipal',
      text: withStatement({ Effect: 'Deny', NotPrincipal: { AWS: ALICE } }),
      message: 'Statement[0] cannot have both Principal and NotPrincipal',
    },
    {
      name: 'NotPrincipal with Allow',
      text: withStatement({ NotPrincipal: { AWS: ALICE } }, ['Principal']),
      message: 'Statement[0].NotPrincipal may only be used with Effect Deny',
    },
    {
      name: 'NotPrincipal "*"',
      text: withStatement({ Effect: 'Deny', NotPrincipal: { AWS: '*' } }, ['Principal']),
      message: 'Statement[0].NotPrincipal cannot contain "*"',
    },
    {
      name: 'Principal a plain string',
      text: withStatement({ Principal: ROOT }),
      message: /^Statement\[0\]\.Principal must be "\*" or an object such as \{"AWS": .*\}, not the string/,
    },
    { name: 'Principal a list', text: withStatement({ Principal: [ROOT] }), message: /Statement\[0\]\.Principal must be "\*" or an object .* not a list/ },
    { name: 'Principal empty object', text: withStatement({ Principal: {} }), message: 'Statement[0].Principal must name at least one principal' },
    {
      name: 'Principal unknown type',
      text: withStatement({ Principal: { IAM: ROOT } }),
      message: /Statement\[0\]\.Principal has an unknown element "IAM" \(allowed: AWS, Service, Federated, CanonicalUser\)/,
    },
    { name: 'Principal aws lower-case', text: withStatement({ Principal: { aws: ROOT } }), message: /unknown element "aws" \(did you mean "AWS"\?\)/ },
    { name: 'AWS principal empty list', text: withStatement({ Principal: { AWS: [] } }), message: 'Statement[0].Principal.AWS must not be an empty list' },
    {
      name: 'AWS principal a number',
      text: withStatement({ Principal: { AWS: 111122223333 } }),
      message: 'Statement[0].Principal.AWS must be a string or a list of strings, not a number',
    },
    {
      name: 'AWS principal 11 digits',
      text: withStatement({ Principal: { AWS: '11112222333' } }),
      message: /^Statement\[0\]\.Principal\.AWS\[0\] "11112222333" is not a valid principal/,
    },
    {
      name: 'AWS principal with a wildcard',
      text: withStatement({ Principal: { AWS: 'arn:aws:iam::*:root' } }),
      message: /Principal\.AWS\[0\] "arn:aws:iam::\*:root": a principal cannot contain wildcards except "\*" alone/,
    },
    {
      name: 'AWS principal role wildcard',
      text: withStatement({ Principal: { AWS: [ROOT, `arn:aws:iam::${ACCOUNT}:role/*`] } }),
      message: /Principal\.AWS\[1\] .* cannot contain wildcards/,
    },
    {
      name: 'AWS principal another partition',
      text: withStatement({ Principal: { AWS: `arn:aws-cn:iam::${ACCOUNT}:root` } }),
      message: /is not a valid principal/,
    },
    {
      name: 'AWS principal a KMS ARN',
      text: withStatement({ Principal: { AWS: `arn:aws:kms:us-east-1:${ACCOUNT}:key/x` } }),
      message: /is not a valid principal/,
    },
    {
      name: 'Service principal with a wildcard',
      text: withStatement({ Principal: { Service: '*.amazonaws.com' } }),
      message: /Principal\.Service\[0\] .* is not a valid Service principal/,
    },
    // Conditions
    { name: 'Condition a list', text: withStatement({ Condition: [] }), message: /^Statement\[0\]\.Condition must be an object mapping condition operators/ },
    {
      name: 'unknown operator',
      text: withStatement({ Condition: { StringEqual: { 'kms:CallerAccount': ACCOUNT } } }),
      message: 'Statement[0].Condition has an unknown condition operator "StringEqual"',
    },
    {
      name: 'unknown qualifier',
      text: withStatement({ Condition: { 'ForSomeValues:StringEquals': { 'kms:CallerAccount': ACCOUNT } } }),
      message: /unknown condition operator "ForSomeValues:StringEquals"/,
    },
    {
      name: 'IfExists twice',
      text: withStatement({ Condition: { StringEqualsIfExistsIfExists: { 'kms:CallerAccount': ACCOUNT } } }),
      message: /unknown condition operator/,
    },
    {
      name: 'NullIfExists',
      text: withStatement({ Condition: { NullIfExists: { 'kms:CallerAccount': 'true' } } }),
      message: /Null takes neither IfExists nor a set qualifier/,
    },
    { name: 'ForAnyValue:Null', text: withStatement({ Condition: { 'ForAnyValue:Null': { 'kms:CallerAccount': 'true' } } }), message: /Null takes neither/ },
    {
      name: 'operator body a string',
      text: withStatement({ Condition: { StringEquals: 'kms:CallerAccount' } }),
      message: 'Statement[0].Condition.StringEquals must be an object mapping condition keys to values, not a string',
    },
    {
      name: 'operator with no keys',
      text: withStatement({ Condition: { StringEquals: {} } }),
      message: 'Statement[0].Condition.StringEquals must name at least one condition key',
    },
    {
      name: 'condition key without a prefix',
      text: withStatement({ Condition: { StringEquals: { tenant: 'acme' } } }),
      message: /\["tenant"\]: "tenant" is not a condition key \(expected prefix:name/,
    },
    {
      name: 'condition value null',
      text: withStatement({ Condition: { StringEquals: { 'kms:CallerAccount': null } } }),
      message: 'Statement[0].Condition.StringEquals["kms:CallerAccount"] must be a string, number, boolean or a list of them, not null',
    },
    {
      name: 'condition value an object',
      text: withStatement({ Condition: { StringEquals: { 'kms:CallerAccount': { v: 1 } } } }),
      message: /must be a string, number, boolean or a list of them, not an object/,
    },
    {
      name: 'condition values empty list',
      text: withStatement({ Condition: { StringNotEquals: { 'kms:CallerAccount': [] } } }),
      message: 'Statement[0].Condition.StringNotEquals["kms:CallerAccount"] must have at least one value',
    },
    {
      name: 'condition list with a nested list',
      text: withStatement({ Condition: { StringEquals: { 'kms:CallerAccount': ['a', ['b']] } } }),
      message: 'Statement[0].Condition.StringEquals["kms:CallerAccount"][1] must be a string, number or boolean, not a list',
    },
    {
      name: 'numeric value not a number',
      text: withStatement({ Condition: { NumericLessThan: { 'kms:RotationPeriodInDays': 'ninety' } } }),
      message: 'Statement[0].Condition.NumericLessThan["kms:RotationPeriodInDays"] value "ninety" is not a number',
    },
    {
      name: 'numeric value empty',
      text: withStatement({ Condition: { NumericEquals: { 'kms:RotationPeriodInDays': '' } } }),
      message: /value "" is not a number/,
    },
    {
      name: 'numeric value hex',
      text: withStatement({ Condition: { NumericEquals: { 'kms:RotationPeriodInDays': '0x10' } } }),
      message: /value "0x10" is not a number/,
    },
    {
      name: 'numeric value with a variable',
      text: withStatement({ Condition: { NumericEquals: { 'kms:RotationPeriodInDays': '${aws:PrincipalTag/days}' } } }),
      message: /is not a number/,
    },
    {
      name: 'date value not a date',
      text: withStatement({ Condition: { DateLessThan: { 'aws:CurrentTime': 'next week' } } }),
      message: /\["aws:CurrentTime"\] value "next week" is not an ISO 8601 date or epoch seconds/,
    },
    {
      name: 'date value 30 February',
      text: withStatement({ Condition: { DateLessThan: { 'aws:CurrentTime': '2026-02-30' } } }),
      message: /value "2026-02-30" is not an ISO 8601 date/,
    },
    {
      name: 'date value hour 24',
      text: withStatement({ Condition: { DateLessThan: { 'aws:CurrentTime': '2026-01-01T24:00:00Z' } } }),
      message: /is not an ISO 8601 date/,
    },
    {
      name: 'Bool value yes',
      text: withStatement({ Condition: { Bool: { 'kms:GrantIsForAWSResource': 'yes' } } }),
      message: 'Statement[0].Condition.Bool["kms:GrantIsForAWSResource"] value "yes" must be true or false',
    },
    { name: 'Null value 1', text: withStatement({ Condition: { Null: { 'kms:GranteePrincipal': 1 } } }), message: /value "1" must be true or false/ },
    {
      name: 'IpAddress not an address',
      text: withStatement({ Condition: { IpAddress: { 'aws:SourceIp': 'intranet' } } }),
      message: /value "intranet" is not an IPv4 or IPv6 address or CIDR block/,
    },
    {
      name: 'IpAddress prefix too long',
      text: withStatement({ Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/33' } } }),
      message: /value "10.0.0.0\/33" is not an IPv4/,
    },
    {
      name: 'IpAddress octet too large',
      text: withStatement({ Condition: { NotIpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '256.1.1.1'] } } }),
      message: /value "256.1.1.1" is not an IPv4/,
    },
    { name: 'IpAddress IPv6 /129', text: withStatement({ Condition: { IpAddress: { 'aws:SourceIp': '2001:db8::/129' } } }), message: /is not an IPv4 or IPv6/ },
    { name: 'IpAddress IPv6 two ::', text: withStatement({ Condition: { IpAddress: { 'aws:SourceIp': '2001::db8::1' } } }), message: /is not an IPv4 or IPv6/ },
    {
      name: 'BinaryEquals not base64',
      text: withStatement({ Condition: { BinaryEquals: { 'kms:RecipientAttestation:ImageSha384': 'not base64!' } } }),
      message: /is not base64/,
    },
    {
      name: 'unterminated variable',
      text: withStatement({ Condition: { StringEquals: { 'kms:EncryptionContext:t': '${aws:username' } } }),
      message:
        'Statement[0].Condition.StringEquals["kms:EncryptionContext:t"] value ' +
        '"${aws:username" has a malformed policy variable at position 0: missing closing }',
    },
    {
      name: 'empty variable',
      text: withStatement({ Condition: { StringEquals: { 'kms:EncryptionContext:t': 'a${}' } } }),
      message: /policy variable at position 1: "" is not a condition key name/,
    },
    {
      name: 'variable with an unquoted default',
      text: withStatement({ Condition: { StringEquals: { 'kms:EncryptionContext:t': '${aws:username, bob}' } } }),
      message: /a default value must be quoted/,
    },
    {
      name: 'variable with an unterminated default',
      text: withStatement({ Condition: { StringLike: { 'kms:EncryptionContext:t': "${aws:username, 'bob}" } } }),
      message: /unterminated default value/,
    },
  ];

  it.each(rows)('$name', ({ text, kind, message }) => {
    const m = errorOf(text, kind);
    if (typeof message === 'string') expect(m).toBe(message);
    else expect(m).toMatch(message);
  });

  it('refuses a non-string input without throwing', () => {
    expect(errorOf(42 as never)).toBe('The policy document must be a string');
  });
});

describe('parsePolicy: well-formed documents', () => {
  it('normalizes a single statement object and single strings into lists', () => {
    const parsed = parsePolicy(
      JSON.stringify({ Id: 'p', Statement: { Sid: 'One', Effect: 'Deny', Principal: { AWS: ACCOUNT }, Action: 'kms:Decrypt', Resource: '*' } }),
      'key',
    );
    expect(parsed).toEqual({
      ok: true,
      warnings: [],
      policy: {
        version: undefined,
        id: 'p',
        statements: [
          {
            index: 0,
            sid: 'One',
            effect: 'Deny',
            principal: { aws: [{ kind: 'account', accountId: ACCOUNT, text: ACCOUNT }], service: [], federated: [], canonicalUser: [] },
            notPrincipal: undefined,
            actions: ['kms:Decrypt'],
            notActions: undefined,
            resources: ['*'],
            notResources: undefined,
            conditions: [],
          },
        ],
      },
    });
  });

  it('splits conditions into one block per operator and key', () => {
    const parsed = parsePolicy(
      withStatement({
        Condition: {
          'ForAnyValue:StringLikeIfExists': { 'kms:EncryptionContextKeys': ['a*', 'b'], 'kms:GrantOperations': 'Decrypt' },
          NumericLessThan: { 'kms:RotationPeriodInDays': 365 },
          Bool: { 'kms:GrantIsForAWSResource': true },
        },
      }),
      'key',
    );
    if (!parsed.ok) throw parsed.error;
    expect(parsed.policy.statements[0]!.conditions).toEqual([
      {
        operator: 'ForAnyValue:StringLikeIfExists',
        test: 'StringLike',
        qualifier: 'ForAnyValue',
        ifExists: true,
        key: 'kms:EncryptionContextKeys',
        values: ['a*', 'b'],
      },
      {
        operator: 'ForAnyValue:StringLikeIfExists',
        test: 'StringLike',
        qualifier: 'ForAnyValue',
        ifExists: true,
        key: 'kms:GrantOperations',
        values: ['Decrypt'],
      },
      { operator: 'NumericLessThan', test: 'NumericLessThan', qualifier: undefined, ifExists: false, key: 'kms:RotationPeriodInDays', values: ['365'] },
      { operator: 'Bool', test: 'Bool', qualifier: undefined, ifExists: false, key: 'kms:GrantIsForAWSResource', values: ['true'] },
    ]);
  });

  it('keeps number literals as written', () => {
    const parsed = parsePolicy(withStatement({ Condition: { NumericEquals: { 'kms:RotationPeriodInDays': 90.1 } } }).replace('90.1', '90.10'), 'key');
    if (!parsed.ok) throw parsed.error;
    expect(parsed.policy.statements[0]!.conditions[0]!.values).toEqual(['90.10']);
  });

  it('accepts every principal form', () => {
    const parsed = parsePolicy(
      withStatement({
        Principal: {
          AWS: ['*', ACCOUNT, ROOT, ALICE, `arn:aws:iam::${ACCOUNT}:role/path/to/app`, `arn:aws:sts::${ACCOUNT}:assumed-role/app/session-1`],
          Service: ['logs.amazonaws.com'],
          Federated: 'cognito-identity.amazonaws.com',
          CanonicalUser: '79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be',
        },
      }),
      'key',
    );
    if (!parsed.ok) throw parsed.error;
    expect(parsed.policy.statements[0]!.principal!.aws.map((a) => a.kind)).toEqual(['anyone', 'account', 'account', 'principal', 'principal', 'principal']);
  });

  it('accepts both versions and no version, and an empty Sid twice', () => {
    for (const Version of ['2012-10-17', '2008-10-17', undefined]) {
      expect(
        parsePolicy(
          JSON.stringify({
            Version,
            Statement: [
              { ...ok, Sid: '' },
              { ...ok, Sid: '' },
            ],
          }),
          'key',
        ).ok,
      ).toBe(true);
    }
  });

  it('accepts an identity policy without Principal', () => {
    const parsed = parsePolicy(
      JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kms:Decrypt'], Resource: `arn:aws:kms:*:${ACCOUNT}:key/*` }] }),
      'identity',
    );
    expect(parsed.ok).toBe(true);
  });

  it('accepts a document of exactly the maximum length', () => {
    const base = doc([ok], { Id: '' });
    const text = doc([ok], { Id: 'x'.repeat(MAX_POLICY_LENGTH - base.length) });
    expect(text.length).toBe(MAX_POLICY_LENGTH);
    expect(parsePolicy(text, 'key').ok).toBe(true);
  });

  it('counts characters, not UTF-16 units', () => {
    const base = doc([ok], { Id: '' });
    const text = doc([ok], { Id: '😀'.repeat(MAX_POLICY_LENGTH - base.length) });
    expect(text.length).toBeGreaterThan(MAX_POLICY_LENGTH);
    expect(parsePolicy(text, 'key').ok).toBe(true);
  });

  it('the default key policy parses', () => {
    expect(parsePolicy(defaultKeyPolicy(ACCOUNT), 'key').ok).toBe(true);
  });

  it('returns a frozen document', () => {
    const parsed = parsePolicy(doc([ok]), 'key');
    if (!parsed.ok) throw parsed.error;
    expect(Object.isFrozen(parsed.policy)).toBe(true);
    expect(Object.isFrozen(parsed.policy.statements[0]!.actions)).toBe(true);
  });

  it('warns about unknown kms: condition keys and literal ${...} without Version 2012-10-17', () => {
    const parsed = parsePolicy(
      JSON.stringify({
        Statement: [
          {
            ...ok,
            Condition: { StringEquals: { 'kms:EncryptionContex:tenant': 'a', 'kms:EncryptionContext:x': '${aws:username}', 'kms:CallerAccount': ACCOUNT } },
          },
        ],
      }),
      'key',
    );
    if (!parsed.ok) throw parsed.error;
    expect(parsed.warnings).toEqual([
      'Statement[0]: policy variables need "Version": "2012-10-17"; here ${...} is literal text',
      'Statement[0].Condition.StringEquals["kms:EncryptionContex:tenant"]: "kms:EncryptionContex:tenant" is not an AWS KMS condition key; it is always absent',
    ]);
  });
});
