import { describe, expect, it } from 'vitest';
import { validationError } from '../../src/domain/errors.ts';
import { memberField } from '../../src/service/model/kms-model.ts';
import { modelViolations } from '../../src/service/model/validate.ts';

const message = (operation: string, input: Record<string, unknown>) => {
  const violations = modelViolations(operation, input);
  return violations.length === 0 ? undefined : validationError(violations).message;
};

describe('memberField', () => {
  it('lowers the first word of an AWS member name', () => {
    expect(memberField('KeyId')).toBe('keyId');
    expect(memberField('AWSAccountId')).toBe('awsAccountId');
    expect(memberField('CiphertextBlob')).toBe('ciphertextBlob');
    expect(memberField('GrantTokens')).toBe('grantTokens');
  });
});

describe('modelViolations: the constraints of AWS service model, worded as AWS words them', () => {
  it('accepts a valid request', () => {
    expect(message('Encrypt', { keyId: 'alias/a', plaintext: Buffer.from('x') })).toBeUndefined();
  });

  it('names a missing required member', () => {
    expect(message('Encrypt', { plaintext: Buffer.from('x') })).toBe(
      "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null",
    );
    expect(message('CreateAlias', {})).toBe(
      "2 validation errors detected: Value null at 'aliasName' failed to satisfy constraint: " +
        "Member must not be null; Value null at 'targetKeyId' failed to satisfy constraint: Member must not be null",
    );
  });

  it('requires the ciphertext of Decrypt and ReEncrypt, which the model relaxed', () => {
    expect(message('Decrypt', {})).toBe("1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null");
    expect(message('ReEncrypt', { destinationKeyId: 'k' })).toContain("Value null at 'ciphertextBlob'");
  });

  it('checks string lengths, enums, patterns and integer ranges, quoting the value', () => {
    expect(message('DescribeKey', { keyId: '' })).toBe(
      "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1",
    );
    expect(message('ListKeys', { limit: 0 })).toBe(
      "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    expect(message('CreateKey', { keySpec: 'NOPE' })).toMatch(
      new RegExp(
        String.raw`^1 validation error detected: Value 'NOPE' at 'keySpec' failed to satisfy constraint: ` +
          String.raw`Member must satisfy enum value set: \[RSA_2048, .*SYMMETRIC_DEFAULT.*\]$`,
      ),
    );
    expect(message('GetKeyPolicy', { keyId: 'k', policyName: 'x y' })).toBe(
      "1 validation error detected: Value 'x y' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+",
    );
  });

  it('never quotes a blob or a sensitive member', () => {
    const text = message('Encrypt', { keyId: 'k', plaintext: Buffer.alloc(4097, 65) })!;
    expect(text).toBe("1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096");
    expect(message('Decrypt', { ciphertextBlob: Buffer.alloc(0) })).not.toContain("Value '");
  });

  it('checks list sizes and list members, with AWS paths', () => {
    expect(message('Encrypt', { keyId: 'k', plaintext: Buffer.from('x'), grantTokens: Array.from({ length: 11 }, () => 't') })).toBe(
      "1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10",
    );
    expect(message('TagResource', { keyId: 'k', tags: [{ tagKey: 'a' }] })).toBe(
      "1 validation error detected: Value null at 'tags.1.member.tagValue' failed to satisfy constraint: Member must not be null",
    );
    expect(message('CreateGrant', { keyId: 'k', granteePrincipal: 'p', operations: ['Nope'] })).toMatch(
      /Value 'Nope' at 'operations.1.member' failed to satisfy constraint: Member must satisfy enum value set: \[Decrypt, /,
    );
  });
});
