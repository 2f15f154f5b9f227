import { describe, expect, it } from 'vitest';
import { auditEvent, MAX_AUDIT_RECORD, MAX_ERROR_MESSAGE, MAX_RECORDED_PARAMETERS, type AuditRecord } from '../../src/service/audit.ts';

const size = (value: unknown) => Buffer.byteLength(JSON.stringify(value), 'utf8');

const record = (overrides: Partial<AuditRecord>): AuditRecord => ({
  eventVersion: '1.0',
  eventSource: 'kms',
  eventName: 'Encrypt',
  eventTime: '2026-03-01T09:00:00.000Z',
  requestId: '00000000-0000-4000-8000-000000000000',
  awsRegion: 'us-east-1',
  accountId: '111122223333',
  userIdentity: { type: 'IAMUser', principalArn: 'arn:aws:iam::111122223333:user/a', accountId: '111122223333', accessKeyId: 'AKIAEXAMPLE' },
  sourceIp: '203.0.113.7',
  userAgent: 'u'.repeat(1024),
  requestParameters: { keyId: 'alias/x' },
  responseElements: null,
  resources: [],
  readOnly: false,
  outcome: 'failure',
  errorCode: 'ValidationException',
  ...overrides,
});

const stored = (r: AuditRecord) => auditEvent(r).event.data as Record<string, any>;

describe('an audit record as stored (issue 15: every record is bounded)', () => {
  it('is the record itself when it is small', () => {
    const small = record({ requestParameters: { keyId: 'alias/x', encryptionContext: { tenant: 'acme' } } });
    expect(stored(small)).toEqual(small);
  });

  it('keeps the parameters within MAX_RECORDED_PARAMETERS, their largest members digested first', () => {
    const many = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`k${i}${'x'.repeat(500)}`, 'v'.repeat(100)]));
    const data = stored(record({ requestParameters: { keyId: 'alias/x', encryptionContext: many, grantTokens: ['t'] } }));
    expect(size(data['requestParameters'])).toBeLessThanOrEqual(MAX_RECORDED_PARAMETERS);
    expect(data['requestParameters']).toMatchObject({ keyId: 'alias/x', grantTokens: ['t'], encryptionContext: { truncated: true } });
  });

  it('keeps parameters of many small members as one digest', () => {
    const flat = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`m${i}`, i]));
    const data = stored(record({ requestParameters: flat }));
    expect(data['requestParameters']).toMatchObject({ truncated: true, length: JSON.stringify(flat).length });
    expect(size(data['requestParameters'])).toBeLessThanOrEqual(MAX_RECORDED_PARAMETERS);
  });

  it('stays within MAX_AUDIT_RECORD whatever every free-form field holds', () => {
    // Control characters are six bytes of JSON each: MAX_ERROR_MESSAGE of them alone is 120 KB.
    const escaped = '\u0001'.repeat(MAX_ERROR_MESSAGE * 2);
    const big = { text: '"'.repeat(200_000), list: Array.from({ length: 20_000 }, () => '\u0002') };
    const data = stored(
      record({
        requestParameters: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`p${i}`, '\u0003'.repeat(100)])),
        responseElements: big,
        additionalEventData: big,
        authorization: {
          action: 'kms:Encrypt',
          decision: 'allow',
          allowedBy: Array.from({ length: 5000 }, (_, i) => ({ kind: 'keyPolicy' as const, sid: `\u0004${i}`.repeat(20) })),
          deniedBy: [],
        },
        errorMessage: escaped,
      }),
    );
    expect(size(data)).toBeLessThanOrEqual(MAX_AUDIT_RECORD);
    expect(size(data['requestParameters'])).toBeLessThanOrEqual(MAX_RECORDED_PARAMETERS);
    expect(data['errorMessage']).toBe(`${'\u0001'.repeat(1000)}...`);
    for (const field of ['responseElements', 'additionalEventData', 'authorization']) expect(data[field]).toMatchObject({ truncated: true });
  });
});
