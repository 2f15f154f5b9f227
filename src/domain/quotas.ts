/**
 * AWS KMS request quotas: which quota a request counts against, AWS's default
 * rate for each, and the token bucket that enforces a rate. Pure: time is
 * passed in (milliseconds of a monotonic clock).
 *
 * AWS counts every request against one quota per account and Region: the
 * cryptographic operations share one quota per kind of key (symmetric and
 * HMAC keys, RSA keys, elliptic-curve keys), GenerateDataKeyPair has one per
 * key pair spec, and every other operation has its own.
 */

/** A quota's name, as AWS's Service Quotas console names it (without " request rate"). */
export type QuotaName = string;

export const SYMMETRIC_QUOTA = 'Cryptographic operations (symmetric)';
export const RSA_QUOTA = 'Cryptographic operations (RSA)';
export const ECC_QUOTA = 'Cryptographic operations (ECC)';
/** Requests that fail authentication, per source IP address: AWS has no published figure; keyledger's own. */
export const UNAUTHENTICATED_QUOTA = 'Unauthenticated requests per source IP';
/** keyledger's audit read side (auditEvents and its subscription, dataKey, keyAsOf, keyHistory, usageStatistics, principalActivity, keyAccess). */
export const AUDIT_QUERY_QUOTA = 'Audit log queries';
/** complianceReport, which reads the most. */
export const COMPLIANCE_REPORT_QUOTA = 'Compliance reports';
/** The tamper-evident log's reads: checkpoint, checkpoints (and their subscription), proofs. */
export const CHECKPOINT_QUOTA = 'Checkpoints and proofs';

/**
 * keyledger's own operations (not KMS's), each a recorded request of its
 * caller, by event name: the quota each counts against. AWS's nearest figure
 * is CloudTrail's LookupEvents, 2 requests per second per account; keyledger's
 * audit read side is its product, so its defaults are higher (below), and the
 * per-document cap on recorded operations (MAX_RECORDED_OPERATIONS in the
 * GraphQL layer) keeps one document within them.
 */
const KEYLEDGER_OPERATION_QUOTAS: Readonly<Record<string, QuotaName>> = {
  ListAuditEvents: AUDIT_QUERY_QUOTA,
  SubscribeAuditEvents: AUDIT_QUERY_QUOTA,
  GetDataKeyLineage: AUDIT_QUERY_QUOTA,
  DescribeKeyAsOf: AUDIT_QUERY_QUOTA,
  ListKeyHistory: AUDIT_QUERY_QUOTA,
  GetUsageStatistics: AUDIT_QUERY_QUOTA,
  GetPrincipalActivity: AUDIT_QUERY_QUOTA,
  KeyAccess: AUDIT_QUERY_QUOTA,
  GetComplianceReport: COMPLIANCE_REPORT_QUOTA,
  GetCheckpoint: CHECKPOINT_QUOTA,
  ListCheckpoints: CHECKPOINT_QUOTA,
  GetInclusionProof: CHECKPOINT_QUOTA,
  GetConsistencyProof: CHECKPOINT_QUOTA,
  SubscribeCheckpoints: CHECKPOINT_QUOTA,
  PutPrincipalPolicy: 'PutPrincipalPolicy',
  DeletePrincipalPolicy: 'DeletePrincipalPolicy',
  ListPrincipalPolicies: 'ListPrincipalPolicies',
  GetCallerIdentity: 'GetCallerIdentity',
};

/**
 * The quota of one of keyledger's own operations (by its audit record's event
 * name), or undefined for a KMS operation (see quotaOf) or anything else.
 *
 * @example
 * keyledgerOperationQuota('GetInclusionProof') // 'Checkpoints and proofs'
 * keyledgerOperationQuota('Encrypt')           // undefined
 */
export const keyledgerOperationQuota = (eventName: string): QuotaName | undefined =>
  Object.hasOwn(KEYLEDGER_OPERATION_QUOTAS, eventName) ? KEYLEDGER_OPERATION_QUOTAS[eventName] : undefined;

/**
 * AWS's default rate of each quota, in requests per second (the AWS KMS
 * Developer Guide, "Request quotas"). The symmetric quota is AWS's default
 * (5,500; some Regions have 10,000 to 100,000). Operations AWS publishes no
 * figure for (GetKeyLastUsage, ListKeyRotations, RotateKeyOnDemand) take the
 * figure of their neighbours: the List/Get reads 100, RotateKeyOnDemand 5; the
 * import operations (GetParametersForImport, ImportKeyMaterial,
 * DeleteImportedKeyMaterial) 5, like the other key-management writes.
 */
export const DEFAULT_REQUEST_QUOTAS: Readonly<Record<QuotaName, number>> = {
  [SYMMETRIC_QUOTA]: 5500,
  [RSA_QUOTA]: 500,
  [ECC_QUOTA]: 300,
  'GenerateDataKeyPair (ECC_NIST_P256)': 25,
  'GenerateDataKeyPair (ECC_NIST_P384)': 10,
  'GenerateDataKeyPair (ECC_NIST_P521)': 5,
  'GenerateDataKeyPair (ECC_SECG_P256K1)': 25,
  'GenerateDataKeyPair (RSA_2048)': 1,
  'GenerateDataKeyPair (RSA_3072)': 0.5,
  'GenerateDataKeyPair (RSA_4096)': 0.1,
  CancelKeyDeletion: 5,
  CreateAlias: 5,
  CreateGrant: 50,
  CreateKey: 5,
  DeleteAlias: 15,
  DeleteImportedKeyMaterial: 5,
  DescribeKey: 2000,
  DisableKey: 5,
  DisableKeyRotation: 5,
  EnableKey: 5,
  EnableKeyRotation: 5,
  GetKeyLastUsage: 100,
  GetParametersForImport: 5,
  GetKeyPolicy: 1000,
  GetKeyRotationStatus: 1000,
  GetPublicKey: 2000,
  ImportKeyMaterial: 5,
  ListAliases: 500,
  ListGrants: 100,
  ListKeyPolicies: 100,
  ListKeyRotations: 100,
  ListKeys: 500,
  ListResourceTags: 2000,
  ListRetirableGrants: 100,
  PutKeyPolicy: 15,
  RetireGrant: 30,
  RevokeGrant: 30,
  RotateKeyOnDemand: 5,
  ScheduleKeyDeletion: 15,
  TagResource: 10,
  UntagResource: 5,
  UpdateAlias: 5,
  UpdateKeyDescription: 5,
  [UNAUTHENTICATED_QUOTA]: 10,
  // keyledger's own operations (KEYLEDGER_OPERATION_QUOTAS): its figures, not AWS's.
  [AUDIT_QUERY_QUOTA]: 10,
  [COMPLIANCE_REPORT_QUOTA]: 1,
  [CHECKPOINT_QUOTA]: 100,
  PutPrincipalPolicy: 5,
  DeletePrincipalPolicy: 5,
  ListPrincipalPolicies: 100,
  GetCallerIdentity: 100,
};

/** Operations that count against the quota of the kind of key they use (AWS's shared cryptographic quotas). */
const KEY_TYPED = new Set(['Encrypt', 'Decrypt', 'ReEncrypt', 'Sign', 'Verify']);
/** Operations that only ever use symmetric or HMAC keys, or none. */
const SYMMETRIC_ONLY = new Set(['GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'GenerateMac', 'VerifyMac', 'GenerateRandom']);

/** The kind of key a cryptographic request uses, for its shared quota. */
export type KeyQuotaKind = 'symmetric' | 'rsa' | 'ecc';

/**
 * The quota kind of a key spec: RSA keys, elliptic-curve keys (ECC_*, Ed25519, ML-DSA, SM2), the rest symmetric.
 *
 * @example
 * keyQuotaKind('RSA_3072')          // 'rsa'
 * keyQuotaKind('ML_DSA_65')         // 'ecc'
 * keyQuotaKind('SYMMETRIC_DEFAULT') // 'symmetric' (so is every HMAC_*)
 */
export function keyQuotaKind(keySpec: string): KeyQuotaKind {
  if (keySpec.startsWith('RSA_')) return 'rsa';
  if (keySpec.startsWith('ECC_') || keySpec.startsWith('ML_DSA') || keySpec === 'SM2') return 'ecc';
  return 'symmetric';
}

/**
 * Whether the quota of `operation` depends on the key it names (then ask quotaOf with the key's kind).
 *
 * @example
 * quotaDependsOnKey('Sign')            // true: RSA, ECC and symmetric keys count against different quotas
 * quotaDependsOnKey('GenerateDataKey') // false
 */
export const quotaDependsOnKey = (operation: string): boolean => KEY_TYPED.has(operation);

/**
 * The quota a request counts against, or undefined for an operation AWS does
 * not throttle in keyledger (none today: every implemented operation has one).
 *
 * @example
 * quotaOf('Encrypt', {}, 'rsa')                             // 'Cryptographic operations (RSA)'
 * quotaOf('GenerateDataKeyPair', { keyPairSpec: 'RSA_2048' }) // 'GenerateDataKeyPair (RSA_2048)'
 * quotaOf('CreateKey', {})                                  // 'CreateKey'
 */
export function quotaOf(operation: string, input: Record<string, unknown>, keyKind: KeyQuotaKind = 'symmetric'): QuotaName | undefined {
  if (KEY_TYPED.has(operation)) return keyKind === 'rsa' ? RSA_QUOTA : keyKind === 'ecc' ? ECC_QUOTA : SYMMETRIC_QUOTA;
  if (SYMMETRIC_ONLY.has(operation)) return SYMMETRIC_QUOTA;
  if (operation === 'DeriveSharedSecret') return ECC_QUOTA;
  if (operation === 'GenerateDataKeyPair' || operation === 'GenerateDataKeyPairWithoutPlaintext') {
    const name = `GenerateDataKeyPair (${String(input['keyPairSpec'])})`;
    return name in DEFAULT_REQUEST_QUOTAS ? name : SYMMETRIC_QUOTA;
  }
  return operation in DEFAULT_REQUEST_QUOTAS ? operation : undefined;
}

/**
 * A token bucket: `ratePerSecond` tokens a second, at most `capacity` held
 * (a second's worth, at least one request). Every admitted request takes one.
 *
 * @example
 * const bucket = new TokenBucket(5, 5, performance.now());
 * if (!bucket.take(performance.now())) throw throttled();
 */
export class TokenBucket {
  #tokens: number;
  #at: number;
  readonly ratePerSecond: number;
  readonly capacity: number;

  constructor(ratePerSecond: number, capacity: number, nowMs: number) {
    this.ratePerSecond = ratePerSecond;
    this.capacity = capacity;
    this.#tokens = capacity;
    this.#at = nowMs;
  }

  /** Takes one token if there is one; false when the rate is exceeded. */
  take(nowMs: number): boolean {
    this.#refill(nowMs);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Whether a token is there, without taking it. */
  available(nowMs: number): boolean {
    this.#refill(nowMs);
    return this.#tokens >= 1;
  }

  /** Whether the bucket is full again (it can be forgotten without changing any answer). */
  full(nowMs: number): boolean {
    this.#refill(nowMs);
    return this.#tokens >= this.capacity;
  }

  #refill(nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.#at);
    this.#at = Math.max(this.#at, nowMs);
    this.#tokens = Math.min(this.capacity, this.#tokens + (elapsed / 1000) * this.ratePerSecond);
  }
}

/**
 * The bucket of one quota in one of `processes` keyledger processes: each
 * takes an equal share of the account's rate, and holds a second's worth of
 * its share (at least one request, so a quota under one request a second,
 * such as GenerateDataKeyPair (RSA_4096), still admits its one).
 *
 * @example
 * shareOf(1000, 4) // { ratePerSecond: 250, capacity: 250 }
 * shareOf(0.5, 2)  // { ratePerSecond: 0.25, capacity: 1 }
 */
export function shareOf(ratePerSecond: number, processes: number): { ratePerSecond: number; capacity: number } {
  const share = ratePerSecond / Math.max(1, processes);
  return { ratePerSecond: share, capacity: Math.max(1, share) };
}

/** AWS's resource quota of customer managed keys per account and Region ("Customer managed keys"). */
export const MAX_KEYS_PER_ACCOUNT = 100_000;

/**
 * The LimitExceededException of a CreateKey past the account's key quota (the wording is keyledger's guess at AWS's).
 *
 * @example
 * tooManyKeysMessage(MAX_KEYS_PER_ACCOUNT)
 * // 'This account already has 100000 KMS keys in this Region, the most it may have. Schedule unused keys for deletion, or raise the limit.'
 */
export const tooManyKeysMessage = (limit: number): string =>
  `This account already has ${limit} KMS keys in this Region, the most it may have. Schedule unused keys for deletion, or raise the limit.`;

/** AWS's message for a throttled request (ThrottlingException, HTTP 400). */
export const THROTTLING_MESSAGE = 'You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.';
