/**
 * The operation registry against AWS's service model: every entry is an AWS
 * KMS operation, named on GraphQL as DESIGN.md's conventions say.
 */
import { describe, expect, it } from 'vitest';
import { AWS_KMS_OPERATION_NAMES } from '../../src/service/model/kms-model.ts';
import { KMS_OPERATIONS, kmsOperation, unsupportedOperationMessage } from '../../src/service/operations.ts';

describe('KMS_OPERATIONS', () => {
  it('holds only operations of AWS KMS’s model, each once', () => {
    const names = KMS_OPERATIONS.map((op) => op.name);
    expect(names.filter((name) => !AWS_KMS_OPERATION_NAMES.includes(name))).toEqual([]);
    expect(new Set(names).size).toBe(names.length);
    for (const op of KMS_OPERATIONS) expect(kmsOperation(op.name)).toBe(op);
  });

  it('offers all 54 operations of AWS KMS but the six custom-key-store and the two multi-Region ones, which are refused with a reason', () => {
    expect(AWS_KMS_OPERATION_NAMES).toHaveLength(54);
    const missing = AWS_KMS_OPERATION_NAMES.filter((name) => !kmsOperation(name)).sort();
    expect(missing).toEqual([
      'ConnectCustomKeyStore',
      'CreateCustomKeyStore',
      'DeleteCustomKeyStore',
      'DescribeCustomKeyStores',
      'DisconnectCustomKeyStore',
      'ReplicateKey',
      'UpdateCustomKeyStore',
      'UpdatePrimaryRegion',
    ]);
    for (const name of missing) expect(unsupportedOperationMessage(name)).toMatch(/custom key stores|multi-Region keys/);
  });

  it.each(KMS_OPERATIONS.map((op) => [op.name, op] as const))('%s: graphqlField is its name in lowerCamelCase, action kms:<name>', (name, op) => {
    expect(op.graphqlField).toBe(name.charAt(0).toLowerCase() + name.slice(1));
    expect(op.graphqlField).toMatch(/^[a-z][A-Za-z]*$/);
    expect(op.action).toBe(`kms:${name}`);
  });

  it.each(KMS_OPERATIONS.map((op) => [op.name, op] as const))('%s: a GraphQL query exactly when it is a Describe, List or Get', (name, op) => {
    expect(op.graphqlKind).toBe(/^(Describe|List|Get)[A-Z]/.test(name) ? 'query' : 'mutation');
  });
});
