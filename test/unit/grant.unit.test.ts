import { describe, expect, it } from 'vitest';
import {
  grantAllows,
  grantOperationFor,
  isNoBroaderThan,
  mayRetire,
  validateCreateGrant,
  type CreateGrantRequest,
  type GrantConstraints,
  type GrantState,
} from '../../src/domain/grant.ts';

const ACCOUNT = '111122223333';
const GRANTEE = `arn:aws:iam::${ACCOUNT}:user/grantee`;
const OTHER = `arn:aws:iam::${ACCOUNT}:user/other`;
const RETIRER = `arn:aws:iam::${ACCOUNT}:user/retirer`;

const grant = (over: Partial<GrantState> = {}): GrantState => ({
  grantId: 'g-1',
  keyId: '1234abcd-12ab-34cd-56ef-1234567890ab',
  keyArn: `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
  keyAccountId: ACCOUNT,
  name: null,
  granteePrincipal: GRANTEE,
  retiringPrincipal: null,
  operations: ['Decrypt', 'Encrypt'],
  constraints: null,
  issuingAccount: `arn:aws:iam::${ACCOUNT}:root`,
  grantToken: 'token',
  creationDate: new Date('2026-03-01T09:00:00Z'),
  retired: false,
  version: 0n,
  ...over,
});

describe('grantAllows', () => {
  const equals = (e: Record<string, string>) => grant({ constraints: { encryptionContextEquals: e } });
  const subset = (s: Record<string, string>) => grant({ constraints: { encryptionContextSubset: s } });
  type Ctx = Record<string, string> | undefined;
  const cases: [string, GrantState, string, string, Ctx, boolean][] = [
    // grantee, state, operation, no constraint
    ['the grantee, a listed operation, no constraint', grant(), GRANTEE, 'Decrypt', undefined, true],
    ['no constraint: any context', grant(), GRANTEE, 'Encrypt', { a: '1' }, true],
    ['another principal', grant(), OTHER, 'Decrypt', undefined, false],
    ['grantee ARN in another case', grant(), GRANTEE.toUpperCase(), 'Decrypt', undefined, false],
    ['grantee ARN with a trailing slash', grant(), `${GRANTEE}/`, 'Decrypt', undefined, false],
    ['the account root is not the grantee', grant(), `arn:aws:iam::${ACCOUNT}:root`, 'Decrypt', undefined, false],
    ['a retired grant', grant({ retired: true }), GRANTEE, 'Decrypt', undefined, false],
    [
      'a retired grant, even with a matching context',
      grant({ retired: true, constraints: { encryptionContextSubset: { a: '1' } } }),
      GRANTEE,
      'Decrypt',
      { a: '1' },
      false,
    ],
    ['an operation not listed', grant(), GRANTEE, 'GenerateDataKey', undefined, false],
    ['an operation in another case', grant(), GRANTEE, 'decrypt', undefined, false],
    ['a kms:-prefixed action is not an operation name', grant(), GRANTEE, 'kms:Decrypt', undefined, false],
    ['empty constraint object is no constraint', grant({ constraints: {} }), GRANTEE, 'Decrypt', undefined, true],
    // Equals
    ['Equals: same pairs', equals({ a: '1', b: '2' }), GRANTEE, 'Decrypt', { a: '1', b: '2' }, true],
    ['Equals: same pairs in another order', equals({ a: '1', b: '2' }), GRANTEE, 'Decrypt', { b: '2', a: '1' }, true],
    ['Equals: an extra pair', equals({ a: '1' }), GRANTEE, 'Decrypt', { a: '1', b: '2' }, false],
    ['Equals: a missing pair', equals({ a: '1', b: '2' }), GRANTEE, 'Decrypt', { a: '1' }, false],
    ['Equals: a different value', equals({ a: '1' }), GRANTEE, 'Decrypt', { a: '2' }, false],
    ['Equals: key in another case', equals({ tenant: 'acme' }), GRANTEE, 'Decrypt', { Tenant: 'acme' }, false],
    ['Equals: value in another case', equals({ tenant: 'acme' }), GRANTEE, 'Decrypt', { tenant: 'ACME' }, false],
    ['Equals: an empty context', equals({ a: '1' }), GRANTEE, 'Decrypt', {}, false],
    ['Equals: no context at all', equals({ a: '1' }), GRANTEE, 'Decrypt', undefined, false],
    ['Equals: swapped key and value', equals({ a: '1' }), GRANTEE, 'Decrypt', { '1': 'a' }, false],
    ['Equals: same count, one key replaced', equals({ a: '1', b: '2' }), GRANTEE, 'Decrypt', { a: '1', c: '2' }, false],
    // Subset
    ['Subset: exactly the pairs', subset({ a: '1' }), GRANTEE, 'Decrypt', { a: '1' }, true],
    ['Subset: a superset', subset({ a: '1' }), GRANTEE, 'Decrypt', { a: '1', b: '2', c: '3' }, true],
    ['Subset: any order', subset({ a: '1', b: '2' }), GRANTEE, 'Decrypt', { c: '3', b: '2', a: '1' }, true],
    ['Subset: a missing pair', subset({ a: '1', b: '2' }), GRANTEE, 'Decrypt', { a: '1', c: '3' }, false],
    ['Subset: a different value', subset({ a: '1' }), GRANTEE, 'Decrypt', { a: '2', b: '2' }, false],
    ['Subset: key in another case', subset({ tenant: 'acme' }), GRANTEE, 'Decrypt', { TENANT: 'acme' }, false],
    ['Subset: value in another case', subset({ tenant: 'acme' }), GRANTEE, 'Decrypt', { tenant: 'Acme' }, false],
    ['Subset: an empty context', subset({ a: '1' }), GRANTEE, 'Decrypt', {}, false],
    ['Subset: no context at all', subset({ a: '1' }), GRANTEE, 'Decrypt', undefined, false],
    ['Subset: value with surrounding space', subset({ a: '1' }), GRANTEE, 'Decrypt', { a: ' 1' }, false],
    // Constrained grants and operations without a context: the constraint does not apply (AWS's GrantConstraints)
    [
      'constrained grant, DescribeKey',
      grant({ operations: ['Decrypt', 'DescribeKey'], constraints: { encryptionContextSubset: { a: '1' } } }),
      GRANTEE,
      'DescribeKey',
      undefined,
      true,
    ],
    [
      'constrained grant, DescribeKey with another context',
      grant({ operations: ['Decrypt', 'DescribeKey'], constraints: { encryptionContextEquals: { a: '1' } } }),
      GRANTEE,
      'DescribeKey',
      { a: '2' },
      true,
    ],
    [
      'constrained grant, RetireGrant',
      grant({ operations: ['RetireGrant'], constraints: { encryptionContextSubset: { a: '1' } } }),
      GRANTEE,
      'RetireGrant',
      undefined,
      true,
    ],
    [
      'constrained grant, DescribeKey not listed',
      grant({ operations: ['Decrypt'], constraints: { encryptionContextSubset: { a: '1' } } }),
      GRANTEE,
      'DescribeKey',
      undefined,
      false,
    ],
    [
      'constrained grant, DescribeKey by another principal',
      grant({ operations: ['DescribeKey'], constraints: { encryptionContextSubset: { a: '1' } } }),
      OTHER,
      'DescribeKey',
      undefined,
      false,
    ],
    [
      'constrained retired grant, DescribeKey',
      grant({ retired: true, operations: ['DescribeKey'], constraints: { encryptionContextSubset: { a: '1' } } }),
      GRANTEE,
      'DescribeKey',
      undefined,
      false,
    ],
    [
      'constrained grant, an operation that takes no context and is not exempt',
      grant({ operations: ['Sign'], constraints: { encryptionContextSubset: { a: '1' } } }),
      GRANTEE,
      'Sign',
      undefined,
      false,
    ],
    [
      'constrained grant, CreateGrant without the grant asked for',
      grant({ operations: ['Decrypt', 'CreateGrant'], constraints: { encryptionContextEquals: { a: '1' } } }),
      GRANTEE,
      'CreateGrant',
      { a: '1' },
      false,
    ],
    [
      'unconstrained grant, CreateGrant without the grant asked for',
      grant({ operations: ['Decrypt', 'CreateGrant'] }),
      GRANTEE,
      'CreateGrant',
      undefined,
      false,
    ],
    ['unconstrained grant, DescribeKey', grant({ operations: ['DescribeKey'] }), GRANTEE, 'DescribeKey', undefined, true],
    [
      'constrained grant, GenerateDataKey in context',
      grant({ operations: ['GenerateDataKey'], constraints: { encryptionContextSubset: { a: '1' } } }),
      GRANTEE,
      'GenerateDataKey',
      { a: '1' },
      true,
    ],
    [
      'constrained grant, ReEncryptFrom in context',
      grant({ operations: ['ReEncryptFrom'], constraints: { encryptionContextEquals: { a: '1' } } }),
      GRANTEE,
      'ReEncryptFrom',
      { a: '1' },
      true,
    ],
  ];
  it.each(cases)('%s', (_name, g, caller, op, ctx, expected) => {
    expect(grantAllows(g, caller, op, ctx)).toBe(expected);
  });
});

describe('grantAllows CreateGrant: only for a grant no broader than itself', () => {
  const asked = (operations: string[], constraints?: GrantConstraints | null): CreateGrantRequest => ({ granteePrincipal: OTHER, operations, constraints });
  const subsetParent = grant({ operations: ['Decrypt', 'DescribeKey', 'RetireGrant', 'CreateGrant'], constraints: { encryptionContextSubset: { t: 'a' } } });
  const equalsParent = grant({ operations: ['Decrypt', 'DescribeKey', 'CreateGrant'], constraints: { encryptionContextEquals: { t: 'a' } } });
  const cases: [string, GrantState, string, CreateGrantRequest, boolean][] = [
    ['unconstrained parent, some of its operations', grant({ operations: ['Decrypt', 'CreateGrant'] }), GRANTEE, asked(['Decrypt']), true],
    ['unconstrained parent, an operation it lacks', grant({ operations: ['Decrypt', 'CreateGrant'] }), GRANTEE, asked(['Encrypt']), false],
    ['Subset parent, the same Subset', subsetParent, GRANTEE, asked(['Decrypt'], { encryptionContextSubset: { t: 'a' } }), true],
    [
      'Subset parent, a Subset with more pairs',
      subsetParent,
      GRANTEE,
      asked(['Decrypt', 'CreateGrant'], { encryptionContextSubset: { t: 'a', r: 'eu' } }),
      true,
    ],
    ['Subset parent, an Equals holding its pairs', subsetParent, GRANTEE, asked(['Decrypt'], { encryptionContextEquals: { t: 'a', r: 'eu' } }), true],
    [
      'Subset parent, DescribeKey alone still carries the constraint',
      subsetParent,
      GRANTEE,
      asked(['DescribeKey'], { encryptionContextSubset: { t: 'a' } }),
      true,
    ],
    ['Subset parent, DescribeKey alone without the constraint', subsetParent, GRANTEE, asked(['DescribeKey']), false],
    ['Subset parent, RetireGrant alone without the constraint', subsetParent, GRANTEE, asked(['RetireGrant']), false],
    ['Subset parent, no constraint', subsetParent, GRANTEE, asked(['Decrypt']), false],
    [
      'Subset parent, a pair dropped',
      grant({ operations: ['Decrypt', 'CreateGrant'], constraints: { encryptionContextSubset: { t: 'a', r: 'eu' } } }),
      GRANTEE,
      asked(['Decrypt'], { encryptionContextSubset: { t: 'a' } }),
      false,
    ],
    ['Equals parent, the same Equals', equalsParent, GRANTEE, asked(['Decrypt', 'DescribeKey'], { encryptionContextEquals: { t: 'a' } }), true],
    ['Equals parent, a Subset of the same pairs', equalsParent, GRANTEE, asked(['Decrypt'], { encryptionContextSubset: { t: 'a' } }), false],
    ['Equals parent, DescribeKey alone without the constraint', equalsParent, GRANTEE, asked(['DescribeKey']), false],
    ['a stricter grant, but asked by another principal', subsetParent, OTHER, asked(['Decrypt'], { encryptionContextSubset: { t: 'a' } }), false],
    [
      'a stricter grant, but the parent is retired',
      { ...subsetParent, retired: true },
      GRANTEE,
      asked(['Decrypt'], { encryptionContextSubset: { t: 'a' } }),
      false,
    ],
    [
      'a stricter grant, but the parent lacks CreateGrant',
      grant({ operations: ['Decrypt'], constraints: { encryptionContextSubset: { t: 'a' } } }),
      GRANTEE,
      asked(['Decrypt'], { encryptionContextSubset: { t: 'a' } }),
      false,
    ],
  ];
  it.each(cases)('%s', (_name, g, caller, requested, expected) => {
    expect(grantAllows(g, caller, 'CreateGrant', undefined, requested)).toBe(expected);
  });
});

describe('isNoBroaderThan', () => {
  const child = (operations: string[], constraints?: GrantConstraints | null): CreateGrantRequest => ({ granteePrincipal: OTHER, operations, constraints });
  const parent = (operations: string[], constraints: GrantConstraints | null = null) => grant({ operations, constraints });
  const cases: [string, CreateGrantRequest, GrantState, boolean][] = [
    ['same operations, unconstrained parent', child(['Decrypt']), parent(['Decrypt', 'CreateGrant']), true],
    ['operations a strict subset', child(['Decrypt']), parent(['Decrypt', 'Encrypt', 'CreateGrant']), true],
    ['the same operations', child(['Decrypt', 'CreateGrant']), parent(['Decrypt', 'CreateGrant']), true],
    ['an operation the parent lacks', child(['Decrypt', 'Encrypt']), parent(['Decrypt', 'CreateGrant']), false],
    ['only an operation the parent lacks', child(['DescribeKey']), parent(['Decrypt', 'CreateGrant']), false],
    [
      'unconstrained parent: child may add any constraint',
      child(['Decrypt'], { encryptionContextSubset: { x: 'y' } }),
      parent(['Decrypt', 'CreateGrant']),
      true,
    ],
    ['unconstrained parent: child Equals', child(['Decrypt'], { encryptionContextEquals: { x: 'y' } }), parent(['Decrypt', 'CreateGrant']), true],
    // Subset parent
    ['Subset parent: child unconstrained', child(['Decrypt']), parent(['Decrypt', 'CreateGrant'], { encryptionContextSubset: { t: 'a' } }), false],
    ['Subset parent: child null constraints', child(['Decrypt'], null), parent(['Decrypt', 'CreateGrant'], { encryptionContextSubset: { t: 'a' } }), false],
    [
      'Subset parent: child same Subset',
      child(['Decrypt'], { encryptionContextSubset: { t: 'a' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextSubset: { t: 'a' } }),
      true,
    ],
    [
      'Subset parent: child Subset with more pairs',
      child(['Decrypt'], { encryptionContextSubset: { t: 'a', r: 'eu' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextSubset: { t: 'a' } }),
      true,
    ],
    [
      'Subset parent: child Equals carrying the pairs',
      child(['Decrypt'], { encryptionContextEquals: { r: 'eu', t: 'a' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextSubset: { t: 'a' } }),
      true,
    ],
    [
      'Subset parent: child Subset missing a pair',
      child(['Decrypt'], { encryptionContextSubset: { t: 'a' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextSubset: { t: 'a', r: 'eu' } }),
      false,
    ],
    [
      'Subset parent: child Subset with another value',
      child(['Decrypt'], { encryptionContextSubset: { t: 'b' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextSubset: { t: 'a' } }),
      false,
    ],
    [
      'Subset parent: child Equals missing a pair',
      child(['Decrypt'], { encryptionContextEquals: { r: 'eu' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextSubset: { t: 'a' } }),
      false,
    ],
    [
      'Subset parent: key case differs',
      child(['Decrypt'], { encryptionContextSubset: { T: 'a' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextSubset: { t: 'a' } }),
      false,
    ],
    [
      'Subset parent: value case differs',
      child(['Decrypt'], { encryptionContextSubset: { t: 'A' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextSubset: { t: 'a' } }),
      false,
    ],
    [
      'Subset parent: constraints fine but operations broader',
      child(['Decrypt', 'Encrypt'], { encryptionContextSubset: { t: 'a' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextSubset: { t: 'a' } }),
      false,
    ],
    // Equals parent
    [
      'Equals parent: the same Equals',
      child(['Decrypt'], { encryptionContextEquals: { t: 'a', r: 'eu' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextEquals: { r: 'eu', t: 'a' } }),
      true,
    ],
    ['Equals parent: child unconstrained', child(['Decrypt']), parent(['Decrypt', 'CreateGrant'], { encryptionContextEquals: { t: 'a' } }), false],
    [
      'Equals parent: child Subset with the same pairs',
      child(['Decrypt'], { encryptionContextSubset: { t: 'a' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextEquals: { t: 'a' } }),
      false,
    ],
    [
      'Equals parent: child Equals with an extra pair',
      child(['Decrypt'], { encryptionContextEquals: { t: 'a', r: 'eu' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextEquals: { t: 'a' } }),
      false,
    ],
    [
      'Equals parent: child Equals with fewer pairs',
      child(['Decrypt'], { encryptionContextEquals: { t: 'a' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextEquals: { t: 'a', r: 'eu' } }),
      false,
    ],
    [
      'Equals parent: child Equals with another value',
      child(['Decrypt'], { encryptionContextEquals: { t: 'b' } }),
      parent(['Decrypt', 'CreateGrant'], { encryptionContextEquals: { t: 'a' } }),
      false,
    ],
  ];
  it.each(cases)('%s', (_name, c, p, expected) => {
    expect(isNoBroaderThan(c, p)).toBe(expected);
  });
});

describe('validateCreateGrant', () => {
  const base: CreateGrantRequest = { granteePrincipal: GRANTEE, operations: ['Decrypt'] };
  const pattern = (field: string, value: string, shown: string) =>
    `1 validation error detected: Value '${value}' at '${field}' failed to satisfy constraint: Member must satisfy regular expression pattern: ${shown}`;
  const PRINCIPAL = '^[\\w+=,.@:/-]+$';
  const NAME = '^[a-zA-Z0-9:/_-]+$';
  const pairs = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`]));

  const valid: [string, Partial<CreateGrantRequest>][] = [
    ['a minimal request', {}],
    [
      'every symmetric operation',
      {
        operations: [
          'Decrypt',
          'Encrypt',
          'GenerateDataKey',
          'GenerateDataKeyWithoutPlaintext',
          'GenerateDataKeyPair',
          'GenerateDataKeyPairWithoutPlaintext',
          'ReEncryptFrom',
          'ReEncryptTo',
          'CreateGrant',
          'RetireGrant',
          'DescribeKey',
        ],
      },
    ],
    ['a service principal grantee', { granteePrincipal: 'logs.us-east-1.amazonaws.com' }],
    ['a retiring principal', { retiringPrincipal: RETIRER }],
    ['a name with every allowed character class', { name: 'My:grant/name_1-2' }],
    ['a 256-character name', { name: 'n'.repeat(256) }],
    ['a 256-character grantee', { granteePrincipal: 'p'.repeat(256) }],
    ['exactly 8 Equals pairs', { constraints: { encryptionContextEquals: pairs(8) } }],
    ['exactly 8 Subset pairs', { constraints: { encryptionContextSubset: pairs(8) } }],
    [
      'constraints with every context operation',
      {
        operations: ['Decrypt', 'Encrypt', 'GenerateDataKey', 'ReEncryptFrom', 'ReEncryptTo', 'GenerateDataKeyPair'],
        constraints: { encryptionContextSubset: { a: '1' } },
      },
    ],
    ['an empty constraints object with DescribeKey', { operations: ['DescribeKey'], constraints: {} }],
    // AWS: a constrained grant may include DescribeKey, RetireGrant and CreateGrant (the constraint does not apply to the first two).
    ['a constraint with DescribeKey', { operations: ['Decrypt', 'DescribeKey'], constraints: { encryptionContextSubset: { a: '1' } } }],
    ['a constraint with CreateGrant', { operations: ['Decrypt', 'CreateGrant'], constraints: { encryptionContextEquals: { a: '1' } } }],
    ['a constraint with RetireGrant', { operations: ['RetireGrant'], constraints: { encryptionContextEquals: { a: '1' } } }],
    ['a constraint with DescribeKey alone', { operations: ['DescribeKey'], constraints: { encryptionContextSubset: { a: '1' } } }],
    [
      'a constraint with every symmetric operation',
      {
        operations: [
          'Decrypt',
          'Encrypt',
          'GenerateDataKey',
          'GenerateDataKeyWithoutPlaintext',
          'GenerateDataKeyPair',
          'GenerateDataKeyPairWithoutPlaintext',
          'ReEncryptFrom',
          'ReEncryptTo',
          'CreateGrant',
          'RetireGrant',
          'DescribeKey',
        ],
        constraints: { encryptionContextEquals: { a: '1' } },
      },
    ],
  ];
  it.each(valid)('accepts %s', (_name, over) => {
    expect(validateCreateGrant({ ...base, ...over })).toBeUndefined();
  });

  const invalid: [string, Partial<CreateGrantRequest>, string | RegExp][] = [
    [
      'an empty grantee',
      { granteePrincipal: '' },
      new RegExp(
        "^2 validation errors detected: Value '' at 'granteePrincipal' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
          "Value '' at 'granteePrincipal' failed to satisfy constraint: Member must satisfy regular expression pattern: ",
      ),
    ],
    [
      'a 257-character grantee',
      { granteePrincipal: 'p'.repeat(257) },
      `1 validation error detected: Value '${'p'.repeat(257)}' at 'granteePrincipal' ` +
        `failed to satisfy constraint: Member must have length less than or equal to 256`,
    ],
    ['a grantee with a space', { granteePrincipal: 'arn:aws:iam::1:user/a b' }, pattern('granteePrincipal', 'arn:aws:iam::1:user/a b', PRINCIPAL)],
    ['a grantee with a star', { granteePrincipal: '*' }, pattern('granteePrincipal', '*', PRINCIPAL)],
    ['a retiring principal with a quote', { retiringPrincipal: "a'b" }, pattern('retiringPrincipal', "a'b", PRINCIPAL)],
    [
      'an empty retiring principal',
      { retiringPrincipal: '' },
      /Value '' at 'retiringPrincipal' failed to satisfy constraint: Member must have length greater than or equal to 1/,
    ],
    [
      'a 257-character retiring principal',
      { retiringPrincipal: 'r'.repeat(257) },
      /at 'retiringPrincipal' failed to satisfy constraint: Member must have length less than or equal to 256$/,
    ],
    ['a name with a space', { name: 'my grant' }, pattern('name', 'my grant', NAME)],
    ['a name with a dot', { name: 'my.grant' }, pattern('name', 'my.grant', NAME)],
    ['an empty name', { name: '' }, /Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1/],
    [
      'a 257-character name',
      { name: 'n'.repeat(257) },
      `1 validation error detected: Value '${'n'.repeat(257)}' at 'name' failed to satisfy constraint: Member must have length less than or equal to 256`,
    ],
    [
      'an unknown operation',
      { operations: ['Decrypt', 'Destroy'] },
      new RegExp(
        String.raw`^1 validation error detected: Value 'Destroy' at 'operations\.2\.member' failed to satisfy constraint: ` +
          String.raw`Member must satisfy enum value set: \[Decrypt, Encrypt, .*DeriveSharedSecret\]$`,
      ),
    ],
    [
      'an operation in another case',
      { operations: ['decrypt'] },
      /Value 'decrypt' at 'operations\.1\.member' failed to satisfy constraint: Member must satisfy enum value set/,
    ],
    ['a kms:-prefixed operation', { operations: ['kms:Decrypt'] }, /Value 'kms:Decrypt' at 'operations\.1\.member'/],
    ['Sign on a symmetric key', { operations: ['Sign'] }, 'Grant operation Sign is not valid for a symmetric encryption KMS key.'],
    ['Verify on a symmetric key', { operations: ['Decrypt', 'Verify'] }, 'Grant operation Verify is not valid for a symmetric encryption KMS key.'],
    ['GenerateMac on a symmetric key', { operations: ['GenerateMac'] }, 'Grant operation GenerateMac is not valid for a symmetric encryption KMS key.'],
    ['GetPublicKey on a symmetric key', { operations: ['GetPublicKey'] }, 'Grant operation GetPublicKey is not valid for a symmetric encryption KMS key.'],
    ['no operations', { operations: [] }, 'A grant must allow at least one operation.'],
    [
      'both Equals and Subset',
      { constraints: { encryptionContextEquals: { a: '1' }, encryptionContextSubset: { a: '1' } } },
      'A grant constraint can have EncryptionContextEquals or EncryptionContextSubset, not both.',
    ],
    ['9 Equals pairs', { constraints: { encryptionContextEquals: pairs(9) } }, 'A grant constraint can have at most 8 encryption context pairs.'],
    ['9 Subset pairs', { constraints: { encryptionContextSubset: pairs(9) } }, 'A grant constraint can have at most 8 encryption context pairs.'],
    // Operations that take no encryption context (Sign, GenerateMac ...) can never carry a constraint, whatever the key.
    [
      'a constraint with Sign',
      { operations: ['Sign'], constraints: { encryptionContextSubset: { a: '1' } } },
      'Grant constraints cannot be used with the Sign operation: ' +
        'only with operations that take an encryption context, and DescribeKey, RetireGrant and CreateGrant.',
    ],
    [
      'a constraint with Decrypt and GenerateMac',
      { operations: ['Decrypt', 'GenerateMac'], constraints: { encryptionContextEquals: { a: '1' } } },
      'Grant constraints cannot be used with the GenerateMac operation: ' +
        'only with operations that take an encryption context, and DescribeKey, RetireGrant and CreateGrant.',
    ],
    [
      'a constraint with DescribeKey and Verify',
      { operations: ['DescribeKey', 'Verify'], constraints: { encryptionContextSubset: { a: '1' } } },
      /the Verify operation/,
    ],
    [
      'an empty constraints object with Sign (no constraint: the key type refuses it)',
      { operations: ['Sign'], constraints: {} },
      'Grant operation Sign is not valid for a symmetric encryption KMS key.',
    ],
  ];
  it.each(invalid)('refuses %s', (_name, over, message) => {
    const error = validateCreateGrant({ ...base, ...over });
    expect(error?.code).toBe('ValidationException');
    if (typeof message === 'string') expect(error?.message).toBe(message);
    else expect(error?.message).toMatch(message);
  });

  it('reports every field violation at once', () => {
    const error = validateCreateGrant({ granteePrincipal: 'a b', retiringPrincipal: 'c d', name: 'e f', operations: ['Nope'] });
    expect(error?.message).toMatch(/^4 validation errors detected: /);
    expect(error?.message).toContain("'granteePrincipal'");
    expect(error?.message).toContain("'retiringPrincipal'");
    expect(error?.message).toContain("'name'");
    expect(error?.message).toContain("'operations.1.member'");
  });
});

describe('mayRetire', () => {
  const cases: [string, Partial<GrantState>, { principalArn: string; accountId: string }, boolean][] = [
    ['the retiring principal', { retiringPrincipal: RETIRER }, { principalArn: RETIRER, accountId: ACCOUNT }, true],
    [
      'the retiring principal from another account',
      { retiringPrincipal: 'arn:aws:iam::444455556666:role/r' },
      { principalArn: 'arn:aws:iam::444455556666:role/r', accountId: '444455556666' },
      true,
    ],
    ['the grantee, with RetireGrant in its operations', { operations: ['Decrypt', 'RetireGrant'] }, { principalArn: GRANTEE, accountId: '999999999999' }, true],
    ['the grantee, without RetireGrant', { operations: ['Decrypt'] }, { principalArn: GRANTEE, accountId: '999999999999' }, false],
    ['the issuing account (any principal of it)', {}, { principalArn: OTHER, accountId: ACCOUNT }, true],
    ['the root of the issuing account', {}, { principalArn: `arn:aws:iam::${ACCOUNT}:root`, accountId: ACCOUNT }, true],
    [
      'another principal of another account',
      { retiringPrincipal: RETIRER },
      { principalArn: 'arn:aws:iam::444455556666:user/x', accountId: '444455556666' },
      false,
    ],
    [
      'another account with a principal of the same name',
      { retiringPrincipal: RETIRER },
      { principalArn: 'arn:aws:iam::444455556666:user/retirer', accountId: '444455556666' },
      false,
    ],
    ['no retiring principal, a stranger', { retiringPrincipal: null }, { principalArn: 'arn:aws:iam::444455556666:user/x', accountId: '444455556666' }, false],
  ];
  it.each(cases)('%s', (_name, over, caller, expected) => {
    expect(mayRetire(grant(over), caller)).toBe(expected);
  });
});

describe('grantOperationFor', () => {
  const cases: [string, 'source' | 'destination' | 'only' | undefined, string | undefined][] = [
    ['kms:ReEncrypt', 'source', 'ReEncryptFrom'],
    ['kms:ReEncrypt', 'destination', 'ReEncryptTo'],
    ['kms:ReEncrypt', undefined, 'ReEncryptFrom'],
    ['ReEncrypt', 'destination', 'ReEncryptTo'],
    ['kms:Decrypt', undefined, 'Decrypt'],
    ['kms:GenerateDataKeyWithoutPlaintext', 'only', 'GenerateDataKeyWithoutPlaintext'],
    ['kms:DescribeKey', undefined, 'DescribeKey'],
    ['kms:CreateGrant', undefined, 'CreateGrant'],
    ['kms:PutKeyPolicy', undefined, undefined],
    ['kms:ScheduleKeyDeletion', undefined, undefined],
    // Grant operations of asymmetric and HMAC keys (issue 13).
    ['kms:Sign', undefined, 'Sign'],
    ['kms:GetPublicKey', undefined, 'GetPublicKey'],
    ['kms:ListGrants', undefined, undefined],
  ];
  it.each(cases)('%s (%s) → %s', (action, role, expected) => {
    expect(grantOperationFor(action, role)).toBe(expected);
  });
});
