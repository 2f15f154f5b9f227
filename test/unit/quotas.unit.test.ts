import { describe, expect, it } from 'vitest';
import {
  AUDIT_QUERY_QUOTA,
  CHECKPOINT_QUOTA,
  COMPLIANCE_REPORT_QUOTA,
  ECC_QUOTA,
  keyledgerOperationQuota,
  keyQuotaKind,
  quotaOf,
  RSA_QUOTA,
  shareOf,
  SYMMETRIC_QUOTA,
  TokenBucket,
} from '../../src/domain/quotas.ts';
import { DEFAULT_QUOTA_SETTINGS, quotaSettingsFrom, quotaVariable } from '../../src/service/quotas.ts';
import { KMS_OPERATIONS } from '../../src/service/operations.ts';

describe('TokenBucket', () => {
  it('admits its capacity at once, then its rate', () => {
    const bucket = new TokenBucket(5, 5, 0);
    expect([1, 2, 3, 4, 5, 6].map(() => bucket.take(0))).toEqual([true, true, true, true, true, false]);
    expect(bucket.take(199)).toBe(false);
    expect(bucket.take(200)).toBe(true); // one token every 200 ms
    expect(bucket.take(200)).toBe(false);
    expect(bucket.full(10_000)).toBe(true);
  });

  it('never holds more than its capacity, and a clock going back does not refill it', () => {
    const bucket = new TokenBucket(1, 1, 0);
    expect(bucket.take(60_000)).toBe(true);
    expect(bucket.take(60_000)).toBe(false);
    expect(bucket.take(30_000)).toBe(false);
  });

  it('a rate under one a second still admits one request, then one per period', () => {
    const { ratePerSecond, capacity } = shareOf(0.1, 1);
    const bucket = new TokenBucket(ratePerSecond, capacity, 0);
    expect(bucket.take(0)).toBe(true);
    expect(bucket.take(9_999)).toBe(false);
    expect(bucket.take(10_000)).toBe(true);
  });
});

describe('quotaOf', () => {
  it("follows AWS's shared cryptographic quotas by kind of key", () => {
    expect(quotaOf('Encrypt', {}, 'symmetric')).toBe(SYMMETRIC_QUOTA);
    expect(quotaOf('Decrypt', {}, 'rsa')).toBe(RSA_QUOTA);
    expect(quotaOf('Sign', {}, 'ecc')).toBe(ECC_QUOTA);
    expect(quotaOf('GenerateMac', {})).toBe(SYMMETRIC_QUOTA);
    expect(quotaOf('GenerateRandom', {})).toBe(SYMMETRIC_QUOTA);
    expect(quotaOf('DeriveSharedSecret', {})).toBe(ECC_QUOTA);
    expect(quotaOf('GenerateDataKeyPair', { keyPairSpec: 'RSA_4096' })).toBe('GenerateDataKeyPair (RSA_4096)');
    expect(quotaOf('GenerateDataKeyPairWithoutPlaintext', { keyPairSpec: 'ECC_NIST_P256' })).toBe('GenerateDataKeyPair (ECC_NIST_P256)');
    expect(quotaOf('CreateKey', {})).toBe('CreateKey');
    expect(quotaOf('CreateGrant', {})).toBe('CreateGrant');
  });

  it('gives every operation keyledger offers a quota', () => {
    for (const op of KMS_OPERATIONS) expect(quotaOf(op.name, {}), op.name).toBeDefined();
  });

  it("gives keyledger's own operations quotas of their own, and none to KMS's", () => {
    for (const name of ['ListAuditEvents', 'SubscribeAuditEvents', 'GetDataKeyLineage', 'DescribeKeyAsOf', 'ListKeyHistory', 'GetUsageStatistics']) {
      expect(keyledgerOperationQuota(name), name).toBe(AUDIT_QUERY_QUOTA);
    }
    expect(keyledgerOperationQuota('GetComplianceReport')).toBe(COMPLIANCE_REPORT_QUOTA);
    for (const name of ['GetCheckpoint', 'ListCheckpoints', 'GetInclusionProof', 'GetConsistencyProof', 'SubscribeCheckpoints']) {
      expect(keyledgerOperationQuota(name), name).toBe(CHECKPOINT_QUOTA);
    }
    expect(keyledgerOperationQuota('PutPrincipalPolicy')).toBe('PutPrincipalPolicy');
    for (const op of KMS_OPERATIONS) expect(keyledgerOperationQuota(op.name), op.name).toBeUndefined();
    expect(keyledgerOperationQuota('toString')).toBeUndefined();
    expect(quotaVariable(AUDIT_QUERY_QUOTA)).toBe('KEYLEDGER_QUOTA_AUDIT_LOG_QUERIES');
    expect(quotaVariable(CHECKPOINT_QUOTA)).toBe('KEYLEDGER_QUOTA_CHECKPOINTS_AND_PROOFS');
    expect(quotaVariable(COMPLIANCE_REPORT_QUOTA)).toBe('KEYLEDGER_QUOTA_COMPLIANCE_REPORTS');
  });

  it('sorts key specs into symmetric, RSA and ECC', () => {
    expect(keyQuotaKind('SYMMETRIC_DEFAULT')).toBe('symmetric');
    expect(keyQuotaKind('HMAC_256')).toBe('symmetric');
    expect(keyQuotaKind('RSA_3072')).toBe('rsa');
    expect(keyQuotaKind('ECC_NIST_P256')).toBe('ecc');
    expect(keyQuotaKind('ECC_NIST_EDWARDS25519')).toBe('ecc');
  });

  it('splits a quota evenly between processes', () => {
    expect(shareOf(50, 2)).toEqual({ ratePerSecond: 25, capacity: 25 });
    expect(shareOf(5, 10)).toEqual({ ratePerSecond: 0.5, capacity: 1 });
  });
});

describe('quota settings from the environment', () => {
  it('defaults to AWS figures and takes each quota by its variable', () => {
    const problems: string[] = [];
    const settings = quotaSettingsFrom(
      { KEYLEDGER_QUOTA_CREATE_KEY: '20', KEYLEDGER_QUOTA_CRYPTOGRAPHIC_OPERATIONS_RSA: '1000', KEYLEDGER_QUOTA_WINDOW_SECONDS: '10' },
      problems,
    );
    expect(problems).toEqual([]);
    expect(settings?.rates['CreateKey']).toBe(20);
    expect(settings?.rates[RSA_QUOTA]).toBe(1000);
    expect(settings?.rates[SYMMETRIC_QUOTA]).toBe(5500);
    expect(settings?.windowSeconds).toBe(10);
    expect(quotaSettingsFrom({}, [])).toEqual(DEFAULT_QUOTA_SETTINGS);
    expect(quotaVariable('GenerateDataKeyPair (RSA_2048)')).toBe('KEYLEDGER_QUOTA_GENERATE_DATA_KEY_PAIR_RSA_2048');
  });

  it('names every bad value, and turns off', () => {
    const problems: string[] = [];
    quotaSettingsFrom(
      { KEYLEDGER_QUOTA_CREATE_KEY: 'fast', KEYLEDGER_QUOTA_NOPE: '1', KEYLEDGER_QUOTAS: 'maybe', KEYLEDGER_QUOTA_WINDOW_SECONDS: '0' },
      problems,
    );
    expect(problems).toHaveLength(4);
    expect(problems.join('\n')).toMatch(/KEYLEDGER_QUOTA_CREATE_KEY must be a positive number/);
    expect(quotaSettingsFrom({ KEYLEDGER_QUOTAS: 'off' }, [])).toBeUndefined();
  });
});
