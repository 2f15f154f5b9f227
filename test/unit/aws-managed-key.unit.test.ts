import { describe, expect, it } from 'vitest';
import {
  AWS_MANAGED_ROTATION_PERIOD_DAYS,
  awsManagedAliasService,
  awsManagedKeyEvents,
  awsManagedKeyPolicy,
  isAwsManagedKeyChange,
  viaServiceOf,
} from '../../src/domain/aws-managed-key.ts';
import { foldKey, type KeyState } from '../../src/domain/key.ts';
import {
  decideDisableKey,
  decidePutKeyPolicy,
  decideRotateKeyOnDemand,
  decideScheduleKeyDeletion,
  decideUpdateKeyDescription,
} from '../../src/domain/key-decisions.ts';
import { evaluatePolicy } from '../../src/domain/policy/index.ts';
import { parseJson } from '../../src/json.ts';
import { recordedKeyEvent } from '../support/key-fixtures.ts';
import { ACCOUNT, ALICE, facts, OTHER_ACCOUNT, policy } from '../support/policy.ts';

const NOW = new Date('2026-03-01T09:00:00.000Z');
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';

const managedKey = (): KeyState =>
  foldKey(
    awsManagedKeyEvents({ keyId: KEY_ID, accountId: ACCOUNT, region: 'us-east-1', service: 's3', keyMaterialId: 'a'.repeat(64), now: NOW }).map((e, i) =>
      recordedKeyEvent(e, i + 1, NOW),
    ),
  )!;

describe('predefined alias/aws/ aliases', () => {
  it('names a known service only', () => {
    expect(awsManagedAliasService('alias/aws/s3')).toBe('s3');
    expect(awsManagedAliasService('alias/aws/ebs')).toBe('ebs');
    expect(awsManagedAliasService('alias/aws/nope')).toBeUndefined();
    expect(awsManagedAliasService('alias/aws/')).toBeUndefined();
    expect(awsManagedAliasService('alias/aws/constructor')).toBeUndefined();
    expect(awsManagedAliasService('alias/s3')).toBeUndefined();
  });

  it('gives the kms:ViaService of the service endpoint (EBS goes through EC2)', () => {
    expect(viaServiceOf('alias/aws/ebs', 'eu-west-1')).toBe('ec2.eu-west-1.amazonaws.com');
    expect(viaServiceOf('alias/aws/s3', 'us-east-1')).toBe('s3.us-east-1.amazonaws.com');
    expect(viaServiceOf('alias/orders', 'us-east-1')).toBeUndefined();
  });
});

describe('the key an AWS managed key starts as', () => {
  it('is symmetric, KeyManager AWS, rotating every 365 days from creation', () => {
    const key = managedKey();
    expect(key).toMatchObject({
      keyManager: 'AWS',
      keySpec: 'SYMMETRIC_DEFAULT',
      keyUsage: 'ENCRYPT_DECRYPT',
      origin: 'AWS_KMS',
      keyState: 'Enabled',
      rotationEnabled: true,
      rotationPeriodInDays: AWS_MANAGED_ROTATION_PERIOD_DAYS,
    });
    expect(key.nextRotationDate).toEqual(new Date('2027-03-01T09:00:00.000Z'));
  });
});

describe("AWS's fixed policy of an AWS managed key", () => {
  const doc = policy(parseJson(awsManagedKeyPolicy(ACCOUNT, 'us-east-1', 's3')));
  const via = { 'kms:ViaService': 's3.us-east-1.amazonaws.com' };

  it('lets a principal of the account use the key through the service, and no one directly', () => {
    const through = evaluatePolicy(doc, facts({ action: 'kms:Encrypt', context: { 'kms:CallerAccount': ACCOUNT, ...via } }), 'default', 'key');
    expect(through.allows).toEqual([expect.objectContaining({ via: 'anyone', index: 0 })]);
    expect(
      evaluatePolicy(doc, facts({ action: 'kms:GenerateDataKeyWithoutPlaintext', context: { 'kms:CallerAccount': ACCOUNT, ...via } }), 'default', 'key').allows,
    ).toHaveLength(1);
    expect(evaluatePolicy(doc, facts({ action: 'kms:Encrypt', context: { 'kms:CallerAccount': ACCOUNT } }), 'default', 'key').allows).toEqual([]);
    expect(
      evaluatePolicy(
        doc,
        facts({ action: 'kms:Encrypt', context: { 'kms:CallerAccount': ACCOUNT, 'kms:ViaService': 'ec2.us-east-1.amazonaws.com' } }),
        'default',
        'key',
      ).allows,
    ).toEqual([]);
    expect(
      evaluatePolicy(
        doc,
        facts({ action: 'kms:Encrypt', principalAccount: OTHER_ACCOUNT, context: { 'kms:CallerAccount': OTHER_ACCOUNT, ...via } }),
        'default',
        'key',
      ).allows,
    ).toEqual([]);
  });

  it('delegates reading its metadata to the account, and allows no change to anyone', () => {
    expect(evaluatePolicy(doc, facts({ action: 'kms:GetKeyPolicy', principalArn: ALICE }), 'default', 'key').allows).toEqual([
      expect.objectContaining({ via: 'account', index: 1 }),
    ]);
    for (const action of [
      'kms:DisableKey',
      'kms:ScheduleKeyDeletion',
      'kms:PutKeyPolicy',
      'kms:EnableKeyRotation',
      'kms:TagResource',
      'kms:UpdateKeyDescription',
      'kms:CreateAlias',
    ]) {
      expect({ action, allows: evaluatePolicy(doc, facts({ action, context: { 'kms:CallerAccount': ACCOUNT, ...via } }), 'default', 'key').allows }).toEqual({
        action,
        allows: [],
      });
    }
  });
});

describe('the domain guard behind the policy', () => {
  it('refuses every change of an AWS managed key, whatever a policy said', () => {
    const key = managedKey();
    for (const decision of [
      decideDisableKey(key),
      decideScheduleKeyDeletion(key, 7, NOW),
      decidePutKeyPolicy(key, '{}'),
      decideUpdateKeyDescription(key, 'x'),
      decideRotateKeyOnDemand(key, 'b'.repeat(64)),
    ]) {
      expect(decision).toMatchObject({ ok: false, error: { code: 'UnsupportedOperationException' } });
    }
    expect(isAwsManagedKeyChange('DescribeKey', key)).toBe(false);
    expect(isAwsManagedKeyChange('DisableKey', { keyManager: 'CUSTOMER' })).toBe(false);
  });
});
