import { randomUUID } from 'node:crypto';
import type { AuditRecord } from '../../src/service/audit.ts';

/** A minimal successful audit record of `accountId`'s probe user: `eventName` marks it, `n` numbers it. */
export function probeRecord(accountId: string, eventName: string, n: number, extra: Partial<AuditRecord> = {}): AuditRecord {
  return {
    eventVersion: '1.0',
    eventSource: 'kms',
    eventName,
    eventTime: new Date().toISOString(),
    requestId: randomUUID(),
    awsRegion: 'us-east-1',
    accountId,
    userIdentity: { type: 'IAMUser', principalArn: `arn:aws:iam::${accountId}:user/probe`, accountId, accessKeyId: null },
    sourceIp: '10.9.9.9',
    userAgent: 'probe',
    requestParameters: { n },
    responseElements: null,
    resources: [],
    readOnly: false,
    outcome: 'success',
    ...extra,
  };
}
