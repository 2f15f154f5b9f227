/**
 * The normalized form of a key policy or identity policy: what `parsePolicy`
 * returns and what `evaluatePolicy` reads. Plain, frozen data (no functions, no
 * RegExp), so it can be compared, logged and quoted as audit evidence.
 */

export type PolicyKind = 'key' | 'identity';
export type Effect = 'Allow' | 'Deny';

/** The two Version values the policy language knows. Policy variables work only in 2012-10-17. */
export const POLICY_VERSIONS = ['2012-10-17', '2008-10-17'] as const;
export type PolicyVersion = (typeof POLICY_VERSIONS)[number];

/** Key policies and identity policies may be at most this many characters (code points). */
export const MAX_POLICY_LENGTH = 32_768;

/** One entry of a Principal's `AWS` list, classified. */
export type AwsPrincipal =
  /** `"*"`: anyone, authenticated or not in AWS; in keyledger any authenticated principal. */
  | { kind: 'anyone'; text: string }
  /** An account id or `arn:aws:iam::<account>:root`: delegation to that account's IAM. */
  | { kind: 'account'; accountId: string; text: string }
  /** A user, role or assumed-role session ARN: exactly that principal. */
  | { kind: 'principal'; arn: string; accountId: string; text: string };

/**
 * A `Principal` or `NotPrincipal` element. `"Principal": "*"` is normalized to
 * `{ aws: [{ kind: 'anyone' }] }` as AWS treats it the same as `{"AWS": "*"}`.
 * Service, Federated and CanonicalUser principals are kept for display and
 * access analysis; keyledger callers are never one of them, so they match no one.
 */
export interface PrincipalSpec {
  aws: AwsPrincipal[];
  service: string[];
  federated: string[];
  canonicalUser: string[];
}

export const CONDITION_TESTS = [
  'StringEquals',
  'StringNotEquals',
  'StringEqualsIgnoreCase',
  'StringNotEqualsIgnoreCase',
  'StringLike',
  'StringNotLike',
  'NumericEquals',
  'NumericNotEquals',
  'NumericLessThan',
  'NumericLessThanEquals',
  'NumericGreaterThan',
  'NumericGreaterThanEquals',
  'DateEquals',
  'DateNotEquals',
  'DateLessThan',
  'DateLessThanEquals',
  'DateGreaterThan',
  'DateGreaterThanEquals',
  'Bool',
  'BinaryEquals',
  'IpAddress',
  'NotIpAddress',
  'ArnEquals',
  'ArnNotEquals',
  'ArnLike',
  'ArnNotLike',
  'Null',
] as const;
/** A condition operator without its set qualifier and IfExists suffix. */
export type ConditionTest = (typeof CONDITION_TESTS)[number];

export type SetQualifier = 'ForAnyValue' | 'ForAllValues';

/**
 * One condition key under one operator: `"StringEquals": {"a": "x", "b": "y"}`
 * becomes two blocks. All blocks of a statement must hold (AND); the values of
 * one block are alternatives (OR, or NOR for the negated operators).
 */
export interface ConditionBlock {
  /** The operator as written, e.g. `ForAnyValue:StringEqualsIfExists`. */
  operator: string;
  test: ConditionTest;
  qualifier: SetQualifier | undefined;
  ifExists: boolean;
  /** The condition key as written. Condition key names are case-insensitive. */
  key: string;
  /** The values as written; JSON numbers and booleans as their text. */
  values: string[];
}

export interface PolicyStatement {
  /** Position in the Statement list (0 when Statement is a single object). */
  index: number;
  sid: string | undefined;
  effect: Effect;
  /** Key policies: who the statement applies to. Always undefined in identity policies. */
  principal: PrincipalSpec | undefined;
  /** Key policies only, and only with Effect Deny: everyone except these. */
  notPrincipal: PrincipalSpec | undefined;
  /** Exactly one of actions / notActions is set. */
  actions: string[] | undefined;
  notActions: string[] | undefined;
  /** Exactly one of resources / notResources is set. In a key policy `"*"` means this key. */
  resources: string[] | undefined;
  notResources: string[] | undefined;
  conditions: ConditionBlock[];
}

export interface PolicyDocument {
  version: PolicyVersion | undefined;
  id: string | undefined;
  statements: PolicyStatement[];
}

/** Names a statement in evidence: which policy, which Sid, which position. */
export interface StatementRef {
  /** `'key-policy'`, or the identity policy's name. */
  policy: string;
  sid: string | undefined;
  index: number;
}

/** How an Allow statement's principal matched the caller. */
export type AllowVia =
  /** The statement names the caller's own ARN. */
  | 'principal'
  /** The statement names the caller's account: the caller's identity policies must allow too. */
  | 'account'
  /** The statement's principal is `*`. */
  | 'anyone'
  /** An identity policy statement (it applies to the principal it is attached to). */
  | 'identity';

export interface Evaluation {
  /** Explicit Deny statements that matched. */
  denies: StatementRef[];
  /** Allow statements that matched, each with how the principal matched. */
  allows: (StatementRef & { via: AllowVia })[];
}

/** A value in the request context. Arrays are multivalued keys; an empty array counts as absent. */
export type ContextValue = string | string[] | number | boolean | undefined;

export interface RequestFacts {
  /** `kms:Decrypt` */
  action: string;
  /** The key's ARN. */
  resourceArn: string;
  /** `arn:aws:iam::111122223333:user/alice`, `...:role/app` or `...:root` */
  principalArn: string;
  principalAccount: string;
  principalType: 'root' | 'user' | 'role';
  /** The user or role name (`aws:username` for users). */
  principalName: string;
  principalTags: Record<string, string>;
  sourceIp: string | null;
  currentTime: Date;
  /**
   * Request condition keys: `kms:EncryptionContext:<k>`, `kms:EncryptionContextKeys`
   * (string[]), `kms:CallerAccount`, `kms:RequestAlias`, `kms:GrantOperations`
   * (string[]), `kms:GranteePrincipal`, `kms:RetiringPrincipal`,
   * `kms:GrantIsForAWSResource` (boolean), `kms:EncryptionAlgorithm`,
   * `kms:KeySpec`, `kms:KeyUsage`, `kms:KeyOrigin`, `kms:ReEncryptOnSameKey`
   * (boolean), `kms:RotationPeriodInDays` (number),
   * `kms:ScheduleKeyDeletionPendingWindowInDays` (number) ...
   *
   * The engine derives `aws:SourceIp`, `aws:PrincipalArn`, `aws:PrincipalAccount`,
   * `aws:PrincipalType`, `aws:PrincipalTag/<k>`, `aws:CurrentTime`,
   * `aws:EpochTime`, `aws:username` and `aws:ResourceAccount` from the fields
   * above (they win over the same names here), and `kms:CallerAccount` from
   * principalAccount unless given here.
   */
  context: Record<string, ContextValue>;
}
