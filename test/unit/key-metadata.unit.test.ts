import { describe, expect, it } from 'vitest';
import { evolveKey, type KeyCreatedData } from '../../src/domain/key.ts';
import { decideDisableKey, decideScheduleKeyDeletion } from '../../src/domain/key-decisions.ts';
import { toKeyMetadata } from '../../src/domain/key-metadata.ts';
import { applyDecision, FIXTURE_ACCOUNT, FIXTURE_ARN, FIXTURE_KEY_ID, keyCreatedData, recordedKeyEvent } from '../support/key-fixtures.ts';

// KeyMetadata as AWS answers it, from a key's fold alone: no Postgres.

const T0 = new Date('2026-03-01T09:00:00.000Z');
const created = (over: Partial<KeyCreatedData> = {}) =>
  evolveKey(null, recordedKeyEvent({ type: 'KeyCreated', data: keyCreatedData({ keyMaterialId: 'ab'.repeat(32), ...over }) }, 1, T0));

describe('toKeyMetadata', () => {
  it("a symmetric key: AWS's members, its encryption algorithm and its current key material", () => {
    expect(toKeyMetadata(created({ description: 'orders' }))).toEqual({
      awsAccountId: FIXTURE_ACCOUNT,
      keyId: FIXTURE_KEY_ID,
      arn: FIXTURE_ARN,
      creationDate: T0,
      enabled: true,
      description: 'orders',
      keyUsage: 'ENCRYPT_DECRYPT',
      keyState: 'Enabled',
      deletionDate: null,
      origin: 'AWS_KMS',
      keyManager: 'CUSTOMER',
      customerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      keySpec: 'SYMMETRIC_DEFAULT',
      encryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      multiRegion: false,
      pendingDeletionWindowInDays: null,
      currentKeyMaterialId: 'ab'.repeat(32),
    });
  });

  it('an asymmetric signing key: its signing algorithms, and no current key material (only symmetric keys name it)', () => {
    const metadata = toKeyMetadata(created({ keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY' }));
    expect(metadata.signingAlgorithms).toEqual(['ECDSA_SHA_256']);
    expect(metadata.encryptionAlgorithms).toBeUndefined();
    expect(metadata.currentKeyMaterialId).toBeNull();
  });

  it('a disabled key is not enabled; a key pending deletion shows its DeletionDate and no waiting period', () => {
    const disabled = applyDecision(created(), decideDisableKey(created()), T0);
    expect(toKeyMetadata(disabled)).toMatchObject({ enabled: false, keyState: 'Disabled' });
    const pending = applyDecision(created(), decideScheduleKeyDeletion(created(), 7, T0), T0);
    expect(toKeyMetadata(pending)).toMatchObject({
      enabled: false,
      keyState: 'PendingDeletion',
      deletionDate: new Date('2026-03-08T09:00:00.000Z'),
      pendingDeletionWindowInDays: null,
    });
  });

  it('a key awaiting imported material shows no expiration members until material is imported', () => {
    const metadata = toKeyMetadata(created({ origin: 'EXTERNAL' }));
    expect(metadata.origin).toBe('EXTERNAL');
    expect(metadata).not.toHaveProperty('expirationModel');
    expect(metadata).not.toHaveProperty('validTo');
  });
});
