/**
 * The policy engine: pure parsing and evaluation of key policies and identity
 * policies in the AWS policy language. No I/O; the service layer combines the
 * evaluations (explicit Deny wins, account delegation, grants) and records them.
 */
export {
  CONDITION_TESTS,
  MAX_POLICY_LENGTH,
  POLICY_VERSIONS,
  type AllowVia,
  type AwsPrincipal,
  type ConditionBlock,
  type ConditionTest,
  type ContextValue,
  type Effect,
  type Evaluation,
  type PolicyDocument,
  type PolicyKind,
  type PolicyStatement,
  type PolicyVersion,
  type PrincipalSpec,
  type RequestFacts,
  type SetQualifier,
  type StatementRef,
} from './document.ts';
export { parsePolicy, type ParsePolicyResult } from './parse.ts';
export { evaluatePolicy, principalVia, statementCoversAction } from './evaluate.ts';
export { defaultKeyPolicyDocument, principalsIn, wouldLockOut, type NamedPrincipal, type StatementAccess } from './analysis.ts';
