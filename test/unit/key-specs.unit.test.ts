import { describe, expect, it } from 'vitest';
import { KEY_SPECS, KEY_USAGES, keyAlgorithms, resolveKeyUsage, USAGES_BY_KEY_SPEC, isAsymmetricKeySpec, isHmacKeySpec } from '../../src/domain/key-specs.ts';
import { publicKeyRefusal } from '../../src/domain/key-decisions.ts';
import { grantOperationsFor, grantOperationsRefusal } from '../../src/domain/grant.ts';
import { operationShapes, shape } from '../../src/service/model/kms-model.ts';
import { ENCRYPTION_ALGORITHMS_BY_SPEC, KEY_AGREEMENT_ALGORITHMS_BY_SPEC, SIGNING_ALGORITHMS_BY_SPEC } from '../../src/crypto/asymmetric.ts';
import { MAC_ALGORITHMS_BY_SPEC } from '../../src/crypto/hmac.ts';

describe('the key spec matrix', () => {
  it("names exactly AWS's KeySpec and KeyUsageType enums", () => {
    expect([...KEY_SPECS].sort()).toEqual([...shape('KeySpec').enum!].sort());
    expect([...KEY_USAGES].sort()).toEqual([...shape('KeyUsageType').enum!].sort());
    expect(Object.keys(USAGES_BY_KEY_SPEC).sort()).toEqual([...KEY_SPECS].sort());
  });

  it('every allowed pair resolves, every other pair is refused with ValidationException', () => {
    for (const spec of KEY_SPECS) {
      for (const usage of KEY_USAGES) {
        const r = resolveKeyUsage(spec, usage);
        if ((USAGES_BY_KEY_SPEC[spec] as readonly string[]).includes(usage)) expect(r, `${spec} ${usage}`).toEqual({ ok: true, keyUsage: usage });
        else
          expect(!r.ok && r.error.code === 'ValidationException' && r.error.message, `${spec} ${usage}`).toBe(
            `KeyUsage ${usage} is not compatible with KeySpec ${spec}`,
          );
      }
    }
  });

  it('KeyUsage may be left out only for SYMMETRIC_DEFAULT', () => {
    expect(resolveKeyUsage('SYMMETRIC_DEFAULT', undefined)).toEqual({ ok: true, keyUsage: 'ENCRYPT_DECRYPT' });
    for (const spec of KEY_SPECS.filter((s) => s !== 'SYMMETRIC_DEFAULT' && s !== 'SM2')) {
      const r = resolveKeyUsage(spec, null);
      expect(!r.ok && r.error.message).toBe('You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.');
    }
  });

  it('every algorithm reported is one of AWS enums, and exactly one list applies to each allowed pair', () => {
    const enums = {
      encryptionAlgorithms: shape('EncryptionAlgorithmSpec').enum!,
      signingAlgorithms: shape('SigningAlgorithmSpec').enum!,
      macAlgorithms: shape('MacAlgorithmSpec').enum!,
      keyAgreementAlgorithms: shape('KeyAgreementAlgorithmSpec').enum!,
    };
    for (const [spec, usages] of Object.entries(USAGES_BY_KEY_SPEC)) {
      for (const usage of usages) {
        const lists = keyAlgorithms(spec, usage);
        expect(Object.keys(lists), `${spec} ${usage}`).toHaveLength(1);
        for (const [list, values] of Object.entries(lists)) {
          expect(values!.length, `${spec} ${usage}`).toBeGreaterThan(0);
          for (const v of values!) expect(enums[list as keyof typeof enums]).toContain(v);
        }
      }
    }
    expect(operationShapes('GetPublicKey')).toBeDefined();
  });

  it('classifies specs', () => {
    expect(KEY_SPECS.filter(isAsymmetricKeySpec)).toHaveLength(12);
    expect(KEY_SPECS.filter(isHmacKeySpec)).toEqual(['HMAC_224', 'HMAC_256', 'HMAC_384', 'HMAC_512']);
  });
});

describe("the domain's lists agree with the crypto layer's tables (src/crypto/asymmetric.ts, hmac.ts)", () => {
  it('for every allowed pair', () => {
    for (const [spec, usages] of Object.entries(USAGES_BY_KEY_SPEC)) {
      for (const usage of usages) {
        const lists = keyAlgorithms(spec, usage);
        const crypto =
          usage === 'SIGN_VERIFY'
            ? { signingAlgorithms: SIGNING_ALGORITHMS_BY_SPEC[spec as keyof typeof SIGNING_ALGORITHMS_BY_SPEC] }
            : usage === 'ENCRYPT_DECRYPT'
              ? { encryptionAlgorithms: ENCRYPTION_ALGORITHMS_BY_SPEC[spec as keyof typeof ENCRYPTION_ALGORITHMS_BY_SPEC] }
              : usage === 'KEY_AGREEMENT'
                ? { keyAgreementAlgorithms: KEY_AGREEMENT_ALGORITHMS_BY_SPEC[spec as keyof typeof KEY_AGREEMENT_ALGORITHMS_BY_SPEC] }
                : { macAlgorithms: MAC_ALGORITHMS_BY_SPEC[spec as keyof typeof MAC_ALGORITHMS_BY_SPEC] };
        expect(lists, `${spec} ${usage}`).toEqual(Object.fromEntries(Object.entries(crypto).map(([k, v]) => [k, [...(v ?? [])]])));
      }
    }
  });
});

describe('publicKeyRefusal', () => {
  it('refuses keys without a key pair, with the key ARN', () => {
    const arn = 'arn:aws:kms:us-east-1:111122223333:key/k';
    expect(publicKeyRefusal({ arn, keySpec: 'ECC_NIST_P256', publicKey: 'MFkw' })).toBeUndefined();
    for (const keySpec of ['SYMMETRIC_DEFAULT', 'HMAC_256']) {
      const refused = publicKeyRefusal({ arn, keySpec, publicKey: null });
      expect(refused?.code).toBe('UnsupportedOperationException');
      expect(refused?.message).toContain(arn);
    }
  });
});

describe('grant operations by key type', () => {
  it("follows AWS's lists per key type", () => {
    expect(grantOperationsFor({ keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY' })).toEqual([
      'Sign',
      'Verify',
      'GetPublicKey',
      'CreateGrant',
      'RetireGrant',
      'DescribeKey',
    ]);
    expect(grantOperationsFor({ keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' })).toEqual([
      'GenerateMac',
      'VerifyMac',
      'CreateGrant',
      'RetireGrant',
      'DescribeKey',
    ]);
    expect(grantOperationsRefusal({ keySpec: 'RSA_2048', keyUsage: 'ENCRYPT_DECRYPT' }, ['Encrypt', 'GetPublicKey'])).toBeUndefined();
    expect(grantOperationsRefusal({ keySpec: 'RSA_2048', keyUsage: 'ENCRYPT_DECRYPT' }, ['GenerateDataKey'])?.message).toBe(
      'Grant operation GenerateDataKey is not valid for an asymmetric KMS key with key usage ENCRYPT_DECRYPT.',
    );
  });
});
