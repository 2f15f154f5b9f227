/**
 * The shape of the audit log: one CloudTrail-like record per request, written
 * by the service (service/audit.ts) and read back by the store's forensic
 * queries (store/audit-queries.ts). Pure types and constants, so that both can
 * name them.
 */

/** The event type of an audit record in the log. */
export const AUDIT_RECORD_TYPE = 'AuditRecord';

/** One statement or grant that decided (part of) an authorization. */
export interface EvidenceItem {
  kind: 'keyPolicy' | 'identityPolicy' | 'grant' | 'root';
  policy?: string;
  sid?: string;
  index?: number;
  grantId?: string;
  /** For key policy allows: whether the statement named the caller, anyone, or the caller's account (delegation to IAM). */
  via?: string;
}

/** Why a request was allowed or refused; written into its audit record. */
export interface AuthorizationEvidence {
  action: string;
  decision: 'allow' | 'explicitDeny' | 'implicitDeny';
  allowedBy: EvidenceItem[];
  deniedBy: EvidenceItem[];
  /** For an implicit deny: what was missing. */
  reason?: string;
}

/** How the caller was identified, CloudTrail's `userIdentity`. */
export interface AuditIdentity {
  type: 'IAMUser' | 'AssumedRole' | 'Root' | 'Unknown' | 'Operator' | 'AWSService';
  principalArn: string | null;
  accountId: string | null;
  accessKeyId: string | null;
  invokedBy?: string;
}

/**
 * One request's audit record, CloudTrail-like. It is written as an event of type
 * `AuditRecord` on the one-event stream `request-<requestId>`. It never holds a
 * plaintext, ciphertext, key material or secret: `requestParameters` and
 * `responseElements` are built field by field by each operation, never copied
 * from the raw input.
 */
export interface AuditRecord {
  eventVersion: '1.0';
  eventSource: 'kms' | 'iam' | 'sts';
  eventName: string;
  eventTime: string;
  requestId: string;
  awsRegion: string;
  /** The account the request acted in (the caller's), null when unknown. */
  accountId: string | null;
  userIdentity: AuditIdentity;
  sourceIp: string | null;
  userAgent: string | null;
  requestParameters: Record<string, unknown> | null;
  responseElements: Record<string, unknown> | null;
  resources: { arn: string; type: string; accountId: string }[];
  /** Crypto operations: keyMaterialId, ciphertextId, dataKeyId (a data key's identity), algorithm ... */
  additionalEventData?: Record<string, unknown>;
  /** The authorization decision and the statements or grant behind it. */
  authorization?: AuthorizationEvidence;
  /** The account owning the key, when another account made the request (it sees the record too). */
  recipientAccountId?: string;
  readOnly: boolean;
  outcome: 'success' | 'failure';
  errorCode?: string;
  errorMessage?: string;
}
