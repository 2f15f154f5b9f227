import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluatePolicy, parsePolicy, type PolicyKind, type RequestFacts } from '../../src/domain/policy/index.ts';
import { ACCOUNT, ALICE, APP_ROLE, KEY_ARN, OTHER_ACCOUNT, ROOT } from '../support/policy.ts';

/**
 * Fuzzing the parser and evaluator: random text, random JSON, and documents
 * generated slot by slot where each slot is either well-formed or junk. The
 * generator knows which documents it spoiled, so it can demand that exactly
 * those are refused — a junk document never parses, so it can never allow.
 * For documents that parse, every allow is checked against a deliberately
 * simple over-approximation: an allow must come from an Allow statement whose
 * principal, action and resource could cover the request.
 */

const RUNS = Number(process.env.POLICY_FUZZ_RUNS ?? 400);
const BOB = `arn:aws:iam::${OTHER_ACCOUNT}:user/bob`;
const OTHER_KEY = `arn:aws:kms:eu-west-1:${OTHER_ACCOUNT}:key/0000abcd-12ab-34cd-56ef-1234567890ab`;

// ---- random request facts ----

const callers = [
  { principalArn: ALICE, principalAccount: ACCOUNT, principalType: 'user' as const, principalName: 'alice' },
  { principalArn: APP_ROLE, principalAccount: ACCOUNT, principalType: 'role' as const, principalName: 'app' },
  { principalArn: ROOT, principalAccount: ACCOUNT, principalType: 'root' as const, principalName: 'root' },
  { principalArn: BOB, principalAccount: OTHER_ACCOUNT, principalType: 'user' as const, principalName: 'bob' },
];
const ACTIONS = ['kms:Decrypt', 'kms:Encrypt', 'kms:PutKeyPolicy', 'kms:GenerateDataKey', 'kms:ScheduleKeyDeletion', 'kms:CreateGrant', 's3:GetObject'];
const CONTEXT_KEYS = [
  'kms:EncryptionContext:tenant',
  'kms:CallerAccount',
  'kms:RequestAlias',
  'kms:GrantIsForAWSResource',
  'kms:RotationPeriodInDays',
  'kms:EncryptionContextKeys',
];

const contextValue = fc.oneof(
  fc.constantFrom('acme', 'globex', ACCOUNT, 'alias/app', 'true', '90', ''),
  fc.string({ maxLength: 8 }),
  fc.integer({ min: -5, max: 400 }),
  fc.boolean(),
  fc.array(fc.constantFrom('tenant', 'stage', 'acme'), { maxLength: 3 }),
);

const factsArb: fc.Arbitrary<RequestFacts> = fc
  .record({
    caller: fc.constantFrom(...callers),
    action: fc.constantFrom(...ACTIONS),
    resourceArn: fc.constantFrom(KEY_ARN, OTHER_KEY),
    principalTags: fc.dictionary(fc.constantFrom('tenant', 'team', 'Tenant'), fc.constantFrom('acme', 'globex', '*'), { maxKeys: 2 }),
    sourceIp: fc.constantFrom(null, '10.1.2.3', '203.0.113.9', '2001:db8::1', 'garbage'),
    currentTime: fc.date({ min: new Date('2020-01-01'), max: new Date('2030-01-01'), noInvalidDate: true }),
    context: fc.dictionary(fc.constantFrom(...CONTEXT_KEYS), contextValue, { maxKeys: 4 }),
  })
  .map(({ caller, ...rest }) => ({ ...caller, ...rest }));

// ---- documents built slot by slot: each slot well-formed or junk ----

interface Built<T> {
  value: T;
  junk: boolean;
}
const good = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<Built<T>> => arb.map((value) => ({ value, junk: false }));
const bad = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<Built<T>> => arb.map((value) => ({ value, junk: true }));
/** A slot: well-formed, or (when junk is allowed) sometimes junk. */
const slot = <T>(valid: fc.Arbitrary<T>, junk: fc.Arbitrary<unknown>, allowJunk: boolean): fc.Arbitrary<Built<unknown>> =>
  allowJunk
    ? fc.oneof({ weight: 6, arbitrary: good(valid) as fc.Arbitrary<Built<unknown>> }, { weight: 1, arbitrary: bad(junk) })
    : (good(valid) as fc.Arbitrary<Built<unknown>>);
/** An optional spoiler: never when junk is not allowed. */
const maybe = <T>(arb: fc.Arbitrary<T>, allowJunk: boolean, freq = 5): fc.Arbitrary<T | undefined> =>
  allowJunk ? fc.option(arb, { freq, nil: undefined }) : fc.constant(undefined);

const anyJson = fc.jsonValue({ maxDepth: 2 });

const validActions = fc.constantFrom<unknown>(
  'kms:*',
  '*',
  'kms:Decrypt',
  ['kms:Encrypt', 'kms:Decrypt'],
  'kms:Generate*',
  'kms:?ncrypt',
  ['kms:PutKeyPolicy'],
  'KMS:decrypt',
);
const junkActions = fc.constantFrom<unknown>('', [], 'Decrypt', ['kms:Decrypt', 7], { kms: '*' }, null, 'kms: Decrypt', 'kms:Dec!rypt', true, [''], '*:*');
const validResources = fc.constantFrom<unknown>(
  '*',
  KEY_ARN,
  `arn:aws:kms:*:${ACCOUNT}:key/*`,
  'arn:aws:kms:us-east-1:${aws:PrincipalAccount}:key/*',
  ['arn:aws:kms:*:*:alias/*', '*'],
  'arn:aws:kms:*',
);
const junkResources = fc.constantFrom<unknown>('key', '', [], null, 5, ['*', 'not-an-arn'], { arn: '*' }, 'arn:aws:kms:${oops', [null]);
const validPrincipals = fc.constantFrom<unknown>(
  '*',
  { AWS: '*' },
  { AWS: ACCOUNT },
  { AWS: [ROOT, ALICE] },
  { AWS: APP_ROLE },
  { AWS: `arn:aws:iam::${OTHER_ACCOUNT}:root` },
  { Service: 'logs.amazonaws.com' },
  { AWS: [BOB] },
);
const junkPrincipals = fc.constantFrom<unknown>(
  ROOT,
  'anyone',
  {},
  { AWS: [] },
  { AWS: 'arn:aws:iam::*:root' },
  { aws: '*' },
  ['*'],
  null,
  5,
  { AWS: '1234' },
  { AWS: [null] },
  { AWS: `arn:aws:iam::${ACCOUNT}:user/*` },
  { Service: '*' },
  { AWS: `arn:aws-cn:iam::${ACCOUNT}:root` },
);
const validConditions = fc.constantFrom<unknown>(
  { StringEquals: { 'kms:EncryptionContext:tenant': '${aws:PrincipalTag/tenant}' } },
  { StringEquals: { 'kms:CallerAccount': [ACCOUNT, OTHER_ACCOUNT] } },
  { StringNotEquals: { 'kms:EncryptionContext:tenant': 'globex' } },
  { StringLike: { 'kms:RequestAlias': 'alias/*' } },
  { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['tenant', 'stage'] }, Null: { 'kms:EncryptionContextKeys': 'false' } },
  { 'ForAnyValue:StringEquals': { 'kms:EncryptionContextKeys': 'tenant' } },
  { NumericLessThanEquals: { 'kms:RotationPeriodInDays': 365 } },
  { BoolIfExists: { 'kms:GrantIsForAWSResource': true } },
  { IpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '2001:db8::/32'] } },
  { NotIpAddress: { 'aws:SourceIp': '203.0.113.0/24' } },
  { DateLessThan: { 'aws:CurrentTime': '2026-01-01T00:00:00Z' } },
  { ArnLike: { 'aws:PrincipalArn': `arn:aws:iam::${ACCOUNT}:role/*` } },
  { Null: { 'aws:PrincipalTag/team': 'true' } },
  { StringEqualsIgnoreCase: { 'kms:unknownKey': 'x' } },
);
const junkConditions = fc.constantFrom<unknown>(
  [],
  'x',
  null,
  5,
  { StringEqual: { 'kms:CallerAccount': ACCOUNT } },
  { StringEquals: {} },
  { StringEquals: { tenant: 'acme' } },
  { StringEquals: { 'kms:CallerAccount': null } },
  { StringEquals: { 'kms:CallerAccount': [] } },
  { StringEquals: { 'kms:CallerAccount': { a: 1 } } },
  { StringEquals: 'kms:CallerAccount' },
  { NumericEquals: { 'kms:RotationPeriodInDays': 'abc' } },
  { IpAddress: { 'aws:SourceIp': '300.0.0.1' } },
  { IpAddress: { 'aws:SourceIp': '10.0.0.0/40' } },
  { Bool: { 'kms:GrantIsForAWSResource': 'maybe' } },
  { DateLessThan: { 'aws:CurrentTime': 'tomorrow' } },
  { NullIfExists: { 'kms:CallerAccount': 'true' } },
  { 'ForSomeValues:StringEquals': { 'kms:CallerAccount': ACCOUNT } },
  { BinaryEquals: { 'kms:X': '!!' } },
);
const unknownElementName = (allowed: string[]) => fc.string({ minLength: 1, maxLength: 10 }).filter((s) => !allowed.includes(s));

interface BuiltStatement {
  value: Record<string, unknown>;
  junk: boolean;
}

const statementArb = (kind: PolicyKind, index: number, allowJunk: boolean): fc.Arbitrary<BuiltStatement> =>
  fc
    .record({
      effect: slot(fc.constantFrom('Allow', 'Deny'), fc.constantFrom('allow', 'ALLOW', 'Permit', '', true, null, ['Allow'], {}, 1), allowJunk),
      negateAction: fc.boolean(),
      action: slot(validActions, junkActions, allowJunk),
      negateResource: fc.boolean(),
      resource: slot(validResources, junkResources, allowJunk),
      principal: slot(validPrincipals, junkPrincipals, allowJunk),
      useNotPrincipal: fc.boolean(),
      condition: fc.option(slot(validConditions, junkConditions, allowJunk), { nil: undefined }),
      sid: fc.option(fc.constant(`S${index}`), { nil: undefined }),
      extra: maybe(
        fc.tuple(unknownElementName(['Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']), anyJson),
        allowJunk,
        10,
      ),
      drop: maybe(fc.constantFrom('Effect', 'Action', 'Resource', 'Principal'), allowJunk, 10),
      misplacedPrincipal: allowJunk ? fc.boolean() : fc.constant(false), // identity policies: a Principal is junk there
    })
    .map((r) => {
      let junk = false;
      const st: Record<string, unknown> = {};
      if (r.sid !== undefined) st.Sid = r.sid;
      st.Effect = r.effect.value;
      junk ||= r.effect.junk;
      st[r.negateAction ? 'NotAction' : 'Action'] = r.action.value;
      junk ||= r.action.junk;
      st[r.negateResource ? 'NotResource' : 'Resource'] = r.resource.value;
      junk ||= r.resource.junk;
      if (kind === 'key') {
        const notPrincipalAllowed = st.Effect === 'Deny' && !r.principal.junk && JSON.stringify(r.principal.value).includes('*') === false;
        st[r.useNotPrincipal && notPrincipalAllowed ? 'NotPrincipal' : 'Principal'] = r.principal.value;
        junk ||= r.principal.junk;
      } else if (r.misplacedPrincipal && r.drop === undefined) {
        st.Principal = r.principal.value;
        junk = true;
      }
      if (r.condition) {
        st.Condition = r.condition.value;
        junk ||= r.condition.junk;
      }
      if (r.extra) {
        st[r.extra[0]] = r.extra[1];
        junk = true;
      }
      if (r.drop !== undefined && r.drop in st) {
        delete st[r.drop];
        junk = true;
      }
      if (r.drop !== undefined && r.drop !== 'Principal' && !(r.drop in st)) {
        // The element was written as NotAction / NotResource: drop that one instead.
        const alt = `Not${r.drop}`;
        if (alt in st) {
          delete st[alt];
          junk = true;
        }
      }
      return { value: st, junk };
    });

interface BuiltDocument {
  kind: PolicyKind;
  document: Record<string, unknown>;
  junk: boolean;
}

const documentFor = (kind: PolicyKind, allowJunk: boolean): fc.Arbitrary<BuiltDocument> =>
  fc
    .record({
      version: slot(fc.constantFrom('2012-10-17', '2008-10-17', undefined), fc.constantFrom('2012-10-18', 2012, null, '', ['2012-10-17']), allowJunk),
      id: fc.option(slot(fc.string({ maxLength: 6 }), fc.constantFrom(5, {}, null, []), allowJunk), { nil: undefined }),
      statements: fc.integer({ min: 1, max: 4 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => statementArb(kind, i, allowJunk)))),
      single: fc.boolean(),
      statementJunk: maybe(fc.constantFrom<unknown>([], 'x', null, 5, [5], [[]]), allowJunk, 12),
      extra: maybe(fc.tuple(unknownElementName(['Version', 'Id', 'Statement']), anyJson), allowJunk, 10),
    })
    .map((r) => {
      let junk = false;
      const doc: Record<string, unknown> = {};
      if (r.version.value !== undefined || r.version.junk) doc.Version = r.version.value;
      junk ||= r.version.junk;
      if (r.id) {
        doc.Id = r.id.value;
        junk ||= r.id.junk;
      }
      if (r.statementJunk !== undefined) {
        doc.Statement = r.statementJunk;
        junk = true;
      } else {
        doc.Statement = r.single && r.statements.length === 1 ? r.statements[0]!.value : r.statements.map((s) => s.value);
        junk ||= r.statements.some((s) => s.junk);
      }
      if (r.extra) {
        doc[r.extra[0]] = r.extra[1];
        junk = true;
      }
      return { kind, document: doc, junk };
    });

const KINDS = fc.constantFrom<PolicyKind>('key', 'identity');
/** Documents where any slot may be junk (each knows whether it is). */
const documentArb = KINDS.chain((kind) => documentFor(kind, true));
/** Well-formed documents only. */
const cleanDocumentArb = KINDS.chain((kind) => documentFor(kind, false));

// ---- the over-approximating oracle: could this statement possibly allow this request? ----

const asList = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : [v as string]);
const globRegex = (pattern: string, flags = ''): RegExp =>
  new RegExp(
    `^${pattern
      .replace(/\$\{[^}]*\}/g, '\u0000')
      .replace(/[.+^$()|[\]\\{}]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')
      // eslint-disable-next-line no-control-regex -- NUL is the wildcard's stand-in in this reference matcher
      .replace(/\u0000/g, '.*')}$`,
    flags,
  );

function couldAllow(statement: Record<string, unknown>, f: RequestFacts, kind: PolicyKind): boolean {
  if (statement.Effect !== 'Allow') return false;
  const action =
    'Action' in statement
      ? asList(statement.Action).some((a) => globRegex(a, 'i').test(f.action))
      : !asList(statement.NotAction).some((a) => globRegex(a, 'i').test(f.action));
  if (!action) return false;
  if ('Resource' in statement && !asList(statement.Resource).some((r) => r === '*' || globRegex(r).test(f.resourceArn))) return false;
  if (kind === 'identity') return !('Principal' in statement) && !('NotPrincipal' in statement);
  const p = statement.Principal;
  if (p === '*') return true;
  if (typeof p !== 'object' || p === null) return false;
  const aws = 'AWS' in p ? asList((p as { AWS: unknown }).AWS) : [];
  return aws.some((a) => a === '*' || a === f.principalArn || a === f.principalAccount || a === `arn:aws:iam::${f.principalAccount}:root`);
}

function expectWellFormedError(text: string, kind: PolicyKind): void {
  const parsed = parsePolicy(text, kind);
  if (parsed.ok) return;
  expect(parsed.error.code).toBe('MalformedPolicyDocumentException');
  expect(typeof parsed.error.message).toBe('string');
  expect(parsed.error.message.length).toBeGreaterThan(10);
}

describe('policy fuzzing', () => {
  it('random text: never throws; errors are MalformedPolicyDocumentException with a message', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.json({ maxDepth: 4 })),
        fc.constantFrom<PolicyKind>('key', 'identity'),
        (text, kind) => {
          expectWellFormedError(text, kind);
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });

  it('random JSON objects with policy-like names: never throws, and whatever parses allows only what it could', () => {
    const names = fc.constantFrom(
      'Version',
      'Id',
      'Statement',
      'Effect',
      'Principal',
      'AWS',
      'Action',
      'Resource',
      'Condition',
      'StringEquals',
      'kms:CallerAccount',
      'Allow',
      '*',
    );
    const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.constantFrom('Allow', 'Deny', '*', 'kms:*', '2012-10-17', ACCOUNT, ROOT, KEY_ARN),
        fc.jsonValue({ maxDepth: 0 }),
        fc.array(tie('node'), { maxLength: 3 }),
        fc.dictionary(names, tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(fc.dictionary(names, value, { maxKeys: 4 }), factsArb, fc.constantFrom<PolicyKind>('key', 'identity'), (doc, f, kind) => {
        const text = JSON.stringify(doc);
        expectWellFormedError(text, kind);
        const parsed = parsePolicy(text, kind);
        if (!parsed.ok) return;
        const result = evaluatePolicy(parsed.policy, f, 'fuzz', kind);
        const statements = asList((doc as { Statement: unknown }).Statement) as unknown as Record<string, unknown>[];
        for (const allow of result.allows) expect(couldAllow(statements[allow.index]!, f, kind)).toBe(true);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('generated documents parse exactly when no slot is junk', () => {
    fc.assert(
      fc.property(documentArb, ({ kind, document, junk }) => {
        const text = JSON.stringify(document);
        const parsed = parsePolicy(text, kind);
        if (junk) {
          expect(parsed.ok, `junk document parsed: ${text}`).toBe(false);
          expectWellFormedError(text, kind);
        } else {
          expect(parsed.ok ? 'ok' : parsed.error.message).toBe('ok');
        }
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('a well-formed document allows only through Allow statements that could cover the request, denies only through Deny statements', () => {
    fc.assert(
      fc.property(cleanDocumentArb, factsArb, ({ kind, document }, f) => {
        const parsed = parsePolicy(JSON.stringify(document), kind);
        if (!parsed.ok) throw parsed.error;
        const statements = asList(document.Statement) as unknown as Record<string, unknown>[];
        const result = evaluatePolicy(parsed.policy, f, 'fuzz', kind);
        for (const allow of result.allows) expect(couldAllow(statements[allow.index]!, f, kind)).toBe(true);
        for (const deny of result.denies) expect(statements[deny.index]!.Effect).toBe('Deny');
      }),
      { numRuns: RUNS },
    );
  });

  it('spoiling one slot of a document that does not allow a request never makes it allow', () => {
    fc.assert(
      fc.property(
        KINDS.chain((kind) =>
          fc.tuple(
            documentFor(kind, false),
            documentFor(kind, true).filter((d) => d.junk),
          ),
        ),
        factsArb,
        ([{ kind, document }, spoiler], f) => {
          const parsed = parsePolicy(JSON.stringify(document), kind);
          if (!parsed.ok) throw parsed.error;
          const before = evaluatePolicy(parsed.policy, f, 'fuzz', kind);
          if (before.allows.length > 0 && before.denies.length === 0) return; // already allowed: nothing to protect
          // Graft the spoiled document's junk (statements, Version, Id, extra element) into the good one.
          const mutated = { ...document, ...spoiler.document, Statement: spoiler.document.Statement };
          const after = parsePolicy(JSON.stringify(mutated), kind);
          expect(after.ok).toBe(false);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('character-level mutations of valid documents: never throws; whatever parses evaluates', () => {
    const mutation = fc.record({
      at: fc.nat(),
      op: fc.constantFrom('delete', 'insert', 'replace', 'duplicate'),
      ch: fc.constantFrom('"', '{', '}', '[', ']', ',', ':', '*', '?', '$', '\\', 'A', ' ', '0', '\u0000'),
    });
    fc.assert(
      fc.property(cleanDocumentArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), factsArb, ({ kind, document }, mutations, f) => {
        let text = JSON.stringify(document);
        for (const m of mutations) {
          const i = m.at % (text.length + 1);
          if (m.op === 'delete') text = text.slice(0, i) + text.slice(i + 1);
          else if (m.op === 'insert') text = text.slice(0, i) + m.ch + text.slice(i);
          else if (m.op === 'replace') text = text.slice(0, i) + m.ch + text.slice(i + 1);
          else text = text.slice(0, i) + text.slice(i, i + 12) + text.slice(i);
        }
        expectWellFormedError(text, kind);
        const parsed = parsePolicy(text, kind);
        if (parsed.ok) {
          const result = evaluatePolicy(parsed.policy, f, 'fuzz', kind);
          expect(Array.isArray(result.allows) && Array.isArray(result.denies)).toBe(true);
          for (const allow of result.allows) expect(parsed.policy.statements[allow.index]!.effect).toBe('Allow');
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('adding an unconditional Deny of everything always denies', () => {
    fc.assert(
      fc.property(documentFor('key', false), factsArb, ({ document }, f) => {
        const statements = asList(document.Statement) as unknown as object[];
        const text = JSON.stringify({ ...document, Statement: [...statements, { Effect: 'Deny', Principal: '*', Action: '*', Resource: '*' }] });
        const parsed = parsePolicy(text, 'key');
        if (!parsed.ok) throw parsed.error;
        expect(evaluatePolicy(parsed.policy, f, 'fuzz', 'key').denies.map((d) => d.index)).toContain(statements.length);
      }),
      { numRuns: RUNS },
    );
  });

  it("removing a statement's conditions never removes an allow it gave", () => {
    fc.assert(
      fc.property(cleanDocumentArb, factsArb, ({ kind, document }, f) => {
        const statements = asList(document.Statement) as unknown as Record<string, unknown>[];
        const stripped = statements.map(({ Condition: _c, ...rest }) => rest);
        const a = parsePolicy(JSON.stringify({ ...document, Statement: statements }), kind);
        const b = parsePolicy(JSON.stringify({ ...document, Statement: stripped }), kind);
        if (!a.ok || !b.ok) throw new Error('well-formed documents must parse');
        const before = evaluatePolicy(a.policy, f, 'fuzz', kind).allows.map((x) => x.index);
        const after = evaluatePolicy(b.policy, f, 'fuzz', kind).allows.map((x) => x.index);
        for (const i of before) expect(after).toContain(i);
      }),
      { numRuns: RUNS },
    );
  });
});
