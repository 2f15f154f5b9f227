/**
 * Evaluates one policy against one request: which Deny statements and which
 * Allow statements match. Combining policies (explicit Deny wins; a key policy
 * 'account' allow needs an identity policy allow too; grants) is the caller's
 * job — this module reports the evidence.
 *
 * Fail-closed: a statement that cannot be evaluated (a hand-built document the
 * parser would refuse, an unexpected error) never allows, and a Deny statement
 * in that state counts as matched.
 */
import { compilePolicy, type CompiledStatement } from './compile.ts';
import { evaluateCondition } from './conditions.ts';
import { buildRequestContext, type RequestContext } from './context.ts';
import type { AllowVia, Evaluation, PolicyDocument, PolicyKind, PolicyStatement, PrincipalSpec, RequestFacts, StatementRef } from './document.ts';
import { compileGlob, globMatch, resolvePattern, type Pattern, type Template } from './match.ts';

/**
 * @example
 * const { denies, allows } = evaluatePolicy(keyPolicy, facts, 'key-policy', 'key');
 * if (denies.length > 0) // explicit deny: AccessDeniedException, cite denies[0]
 * const direct = allows.find((a) => a.via !== 'account'); // allowed by the key policy alone (same account)
 */
export function evaluatePolicy(policy: PolicyDocument, facts: RequestFacts, policyName: string, kind: PolicyKind): Evaluation {
  const denies: StatementRef[] = [];
  const allows: (StatementRef & { via: AllowVia })[] = [];
  const statements: readonly PolicyStatement[] = Array.isArray(policy?.statements) ? policy.statements : [];
  let compiled: ReturnType<typeof compilePolicy>;
  let context: RequestContext;
  try {
    compiled = compilePolicy(policy);
    context = buildRequestContext(facts);
  } catch {
    // Nothing can be evaluated: every Deny statement stands, nothing allows.
    for (const st of statements) if (st?.effect !== 'Allow') denies.push(ref(st, policyName, denies.length));
    return { denies, allows };
  }
  const action = typeof facts.action === 'string' ? facts.action.toLowerCase() : '';
  const resource = typeof facts.resourceArn === 'string' ? facts.resourceArn : '';
  compiled.forEach((result, i) => {
    const st = result.ok ? result.compiled.statement : statements[i];
    const isAllow = st?.effect === 'Allow';
    let matched: { via: AllowVia } | undefined;
    try {
      matched = result.ok ? matchStatement(result.compiled, facts, context, action, resource, kind) : undefined;
      if (!result.ok && !isAllow) matched = { via: 'anyone' };
    } catch {
      matched = isAllow ? undefined : { via: 'anyone' };
    }
    if (!matched) return;
    const r = ref(st, policyName, i);
    if (isAllow) allows.push({ ...r, via: matched.via });
    else denies.push(r);
  });
  return { denies, allows };
}

const ref = (st: PolicyStatement | undefined, policy: string, fallbackIndex: number): StatementRef => ({
  policy,
  sid: typeof st?.sid === 'string' ? st.sid : undefined,
  index: typeof st?.index === 'number' ? st.index : fallbackIndex,
});

function matchStatement(
  c: CompiledStatement,
  facts: RequestFacts,
  context: RequestContext,
  action: string,
  resource: string,
  kind: PolicyKind,
): { via: AllowVia } | undefined {
  const st = c.statement;
  const isAllow = st.effect === 'Allow';
  // Fail closed on shapes the parser never produces.
  const malformed = (): { via: AllowVia } | undefined => (isAllow ? undefined : { via: 'anyone' });

  if (!actionMatches(c.actions, c.notActions, action)) {
    if (c.actions === undefined && c.notActions === undefined) return malformed();
    return undefined;
  }
  if (c.resources === undefined && c.notResources === undefined) return malformed();
  if (!resourceMatches(c.resources, c.notResources, resource, context)) return undefined;

  let via: AllowVia;
  if (kind === 'identity') {
    if (st.principal !== undefined || st.notPrincipal !== undefined) return malformed();
    via = 'identity';
  } else if (st.principal !== undefined && st.notPrincipal === undefined) {
    const v = principalVia(st.principal, facts);
    if (v === undefined) return undefined;
    via = v;
  } else if (st.notPrincipal !== undefined && st.principal === undefined && !isAllow) {
    if (excludedBy(st.notPrincipal, facts)) return undefined;
    via = 'anyone';
  } else {
    return malformed();
  }

  for (const condition of c.conditions) if (!evaluateCondition(condition, context)) return undefined;
  return { via };
}

function actionMatches(actions: Pattern[] | undefined, notActions: Pattern[] | undefined, action: string): boolean {
  if (actions !== undefined) return actions.some((p) => globMatch(p, action));
  if (notActions !== undefined) return !notActions.some((p) => globMatch(p, action));
  return false;
}

function resourceMatches(resources: Template[] | undefined, notResources: Template[] | undefined, resource: string, context: RequestContext): boolean {
  // A pattern whose variable cannot be resolved matches nothing.
  const matches = (t: Template): boolean => {
    const p = resolvePattern(t, context.variable, true);
    return p !== undefined && globMatch(p, resource, true);
  };
  if (resources !== undefined) return resources.some(matches);
  if (notResources !== undefined) return !notResources.some(matches);
  return false;
}

/**
 * How a Principal element names the caller, most specific first; undefined when it does not.
 *
 * @example
 * principalVia(statement.principal!, { principalArn: 'arn:aws:iam::111122223333:role/app', principalAccount: '111122223333' })
 * // 'account' for {"AWS": "111122223333"}
 */
export function principalVia(spec: PrincipalSpec, facts: Pick<RequestFacts, 'principalArn' | 'principalAccount'>): AllowVia | undefined {
  const aws = Array.isArray(spec?.aws) ? spec.aws : [];
  if (aws.some((a) => a.kind === 'principal' && a.arn === facts.principalArn)) return 'principal';
  if (aws.some((a) => a.kind === 'anyone')) return 'anyone';
  if (aws.some((a) => a.kind === 'account' && a.accountId === facts.principalAccount)) return 'account';
  return undefined;
}

/**
 * Whether a NotPrincipal element exempts the caller from its Deny. As in AWS, a
 * user or role is exempt only when both its ARN and its account are listed; the
 * account root when its account is listed.
 */
function excludedBy(spec: PrincipalSpec, facts: RequestFacts): boolean {
  const aws = Array.isArray(spec?.aws) ? spec.aws : [];
  const accountListed = aws.some((a) => a.kind === 'account' && a.accountId === facts.principalAccount);
  if (facts.principalType === 'root') return accountListed;
  const arnListed = aws.some((a) => a.kind === 'principal' && a.arn === facts.principalArn);
  return arnListed && accountListed;
}

/**
 * Whether a statement's Action / NotAction covers an action (case-insensitive, wildcards).
 *
 * @example
 * statementCoversAction(statement, 'kms:GenerateDataKey') // true for "Action": "kms:Generate*"
 */
export function statementCoversAction(statement: PolicyStatement, action: string): boolean {
  const lower = action.toLowerCase();
  const globs = (list: string[] | undefined): Pattern[] | undefined => list?.map((a) => compileGlob(a.toLowerCase()));
  return actionMatches(globs(statement.actions), globs(statement.notActions), lower);
}
