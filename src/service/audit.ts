import type { Transaction } from 'kysely';
import type { Database, Db } from '../store/database.ts';
import { appendSingleEventStream } from '../store/event-store.ts';

export const AUDIT_RECORD_TYPE = 'AuditRecord';

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
  eventSource: 'kms' | 'iam';
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
  readOnly: boolean;
  outcome: 'success' | 'failure';
  errorCode?: string;
  errorMessage?: string;
}

export const requestStreamId = (requestId: string): string => `request-${requestId}`;

/** Appends the record in the caller's transaction (or on its own when given the pool). */
export async function appendAuditRecord(db: Db | Transaction<Database>, record: AuditRecord, recordedAt: Date): Promise<void> {
  await appendSingleEventStream(db, requestStreamId(record.requestId), { type: AUDIT_RECORD_TYPE, data: record }, recordedAt);
}
