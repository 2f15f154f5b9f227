/**
 * Questions about a policy as a whole: who it names (access analysis), whether
 * it would lock its author out, and the default key policy.
 */
import { defaultKeyPolicy } from '../key.ts';
import type { ConditionBlock, Effect, PolicyDocument, PrincipalSpec, RequestFacts } from './document.ts';
import { evaluatePolicy, statementCoversAction } from './evaluate.ts';
import { parsePolicy } from './parse.ts';

/** A principal as a statement names it. */
export type NamedPrincipal =
  | { kind: 'anyone' }
  | { kind: 'account'; accountId: string }
  | { kind: 'principal'; arn: string; accountId: string }
  | { kind: 'service'; name: string }
  | { kind: 'federated'; name: string }
  | { kind: 'canonicalUser'; id: string }
  /** An identity policy statement: whichever principal the policy is attached to. */
  | { kind: 'identity' };

export interface StatementAccess {
  sid: string | undefined;
  index: number;
  effect: Effect;
  /** Who the statement applies to. Empty when it uses NotPrincipal (see notPrincipals). */
  principals: NamedPrincipal[];
  /** Deny statements with NotPrincipal: everyone except these. */
  notPrincipals: NamedPrincipal[] | undefined;
  actions: string[] | undefined;
  notActions: string[] | undefined;
  resources: string[] | undefined;
  notResources: string[] | undefined;
  /** Every condition must hold for the statement to apply; empty means unconditional. */
  conditions: ConditionBlock[];
}

const named = (spec: PrincipalSpec): NamedPrincipal[] => [
  ...spec.aws.map((a): NamedPrincipal =>
    a.kind === 'anyone'
      ? { kind: 'anyone' }
      : a.kind === 'account'
        ? { kind: 'account', accountId: a.accountId }
        : { kind: 'principal', arn: a.arn, accountId: a.accountId },
  ),
  ...spec.service.map((name): NamedPrincipal => ({ kind: 'service', name })),
  ...spec.federated.map((name): NamedPrincipal => ({ kind: 'federated', name })),
  ...spec.canonicalUser.map((id): NamedPrincipal => ({ kind: 'canonicalUser', id })),
];

/**
 * The statements of a policy with the principals each names — by default the
 * Allow statements; pass `effect: 'Deny'` for the denials. With `action`, only
 * the statements whose Action / NotAction cover it. Resource and conditions are
 * returned, not evaluated: they are the "under which conditions" of an answer.
 *
 * @example
 * principalsIn(keyPolicy, { action: 'kms:Decrypt' })
 * // [{ sid: 'Enable IAM User Permissions', principals: [{ kind: 'account', accountId: '111122223333' }], conditions: [], ... }]
 */
export function principalsIn(policy: PolicyDocument, options: { action?: string; effect?: Effect } = {}): StatementAccess[] {
  const effect = options.effect ?? 'Allow';
  return policy.statements
    .filter((st) => st.effect === effect && (options.action === undefined || statementCoversAction(st, options.action)))
    .map((st) => ({
      sid: st.sid,
      index: st.index,
      effect: st.effect,
      principals: st.principal ? named(st.principal) : st.notPrincipal ? [] : [{ kind: 'identity' }],
      notPrincipals: st.notPrincipal ? named(st.notPrincipal) : undefined,
      actions: st.actions,
      notActions: st.notActions,
      resources: st.resources,
      notResources: st.notResources,
      conditions: st.conditions,
    }));
}

/**
 * AWS's lockout safety check for PutKeyPolicy / CreateKey: true when, under the
 * new key policy, the caller could not call kms:PutKeyPolicy on the key again —
 * no statement allows it (an allow delegated to the caller's account counts, as
 * AWS counts it for the account root), or a Deny statement matches. Conditions
 * are evaluated against `callerFacts` (its action is replaced by kms:PutKeyPolicy).
 *
 * @example
 * if (!bypassPolicyLockoutSafetyCheck && wouldLockOut(newPolicy, facts)) {
 *   return reject('MalformedPolicyDocumentException', 'The new key policy will not allow you to update the key policy in the future.');
 * }
 */
export function wouldLockOut(policy: PolicyDocument, callerFacts: RequestFacts): boolean {
  const { denies, allows } = evaluatePolicy(policy, { ...callerFacts, action: 'kms:PutKeyPolicy' }, 'key-policy', 'key');
  return denies.length > 0 || allows.length === 0;
}

/**
 * The default key policy (key.ts's `defaultKeyPolicy`) as a parsed document:
 * one statement that delegates `kms:*` on the key to the account.
 *
 * @example
 * defaultKeyPolicyDocument('111122223333').statements[0]
 * // { sid: 'Enable IAM User Permissions', effect: 'Allow', principal: { aws: [{ kind: 'account', accountId: '111122223333', … }], … },
 * //   actions: ['kms:*'], resources: ['*'], conditions: [], … }
 */
export function defaultKeyPolicyDocument(accountId: string): PolicyDocument {
  const parsed = parsePolicy(defaultKeyPolicy(accountId), 'key');
  if (!parsed.ok) throw new Error(`the default key policy does not parse: ${parsed.error.message}`);
  return parsed.policy;
}
