/**
 * The operation scope (src/service/operation-scope.ts): the only way an
 * operation writes its audit record, and the holder of the request's caller.
 */
import { describe, expect, it } from 'vitest';
import type { AuthorizationEvidence } from '../../src/domain/audit-record.ts';
import type { Caller, RequestContext } from '../../src/service/context.ts';
import { OperationScope, RequestScope } from '../../src/service/operation-scope.ts';

const now = new Date('2026-01-02T03:04:05Z');
const key = (n: number, accountId = '111122223333') => ({ arn: `arn:aws:kms:us-east-1:${accountId}:key/${n}`, type: 'AWS::KMS::Key', accountId });
const allow = (action: string): AuthorizationEvidence => ({ action, decision: 'allow', allowedBy: [{ kind: 'root' }], deniedBy: [] });

const caller = (policies: string[]): Caller => ({
  accountId: '111122223333',
  principalArn: 'arn:aws:iam::111122223333:user/alice',
  principalType: 'user',
  name: 'alice',
  accessKeyId: 'AKIAEXAMPLE',
  tags: {},
  identityPolicies: policies.map((name) => ({ name, document: '{}' })),
  credentialsFence: 1n,
});

describe('OperationScope', () => {
  it('starts with an empty record at the request instant', () => {
    const scope = new OperationScope(now);
    expect(scope.now).toBe(now);
    expect(scope.recorded()).toEqual({ resources: [], responseElements: null, additionalEventData: null, authorization: null, recipientAccountId: null });
  });

  it('hands the runner a copy: changing what recorded() returned does not change the record', () => {
    const scope = new OperationScope(now);
    scope.addResource(key(1));
    const copy = scope.recorded();
    copy.resources.push(key(2));
    copy.responseElements = { forged: true };
    expect(scope.recorded().resources).toEqual([key(1)]);
    expect(scope.recorded().responseElements).toBeNull();
  });

  it('names resources in the order met; addResourceOnce skips an ARN already named', () => {
    const scope = new OperationScope(now);
    scope.addResource(key(1));
    scope.addResource(key(2));
    scope.addResourceOnce(key(1));
    scope.addResourceOnce(key(3));
    expect(scope.recorded().resources.map((r) => r.arn)).toEqual([key(1).arn, key(2).arn, key(3).arn]);
  });

  it("withdraws every mention of a resource (another account's key answered as missing), keeping the others in order", () => {
    const scope = new OperationScope(now);
    scope.addResource(key(1));
    scope.addResource(key(2, '444455556666'));
    scope.addResource(key(3));
    scope.addResource(key(2, '444455556666'));
    scope.withdrawResource(key(2, '444455556666').arn);
    expect(scope.recorded().resources).toEqual([key(1), key(3)]);
  });

  it("records the last decision, and the key's account only when a decision is about a key", () => {
    const scope = new OperationScope(now);
    scope.recordAuthorization(allow('kms:Decrypt'), '444455556666');
    scope.recordAuthorization(allow('kms:ReEncrypt'));
    expect(scope.authorization?.action).toBe('kms:ReEncrypt');
    expect(scope.recorded().recipientAccountId).toBe('444455556666');
  });

  it('sets additionalEventData whole, or adds to it', () => {
    const scope = new OperationScope(now);
    scope.addAdditionalEventData({ a: 1 });
    scope.addAdditionalEventData({ b: 2 });
    expect(scope.recorded().additionalEventData).toEqual({ a: 1, b: 2 });
    scope.setAdditionalEventData({ c: 3 });
    expect(scope.recorded().additionalEventData).toEqual({ c: 3 });
    scope.setResponseElements({ keyId: 'k' });
    expect(scope.recorded().responseElements).toEqual({ keyId: 'k' });
  });
});

describe('RequestScope', () => {
  it('refreshes its own caller, leaving the context the request came with as it was', () => {
    const ctx: RequestContext = { requestId: 'r-1', caller: caller([]), sourceIp: '203.0.113.9', userAgent: 'test' };
    const scope = new RequestScope(ctx, now);
    const fresh = { ...caller(['grant']), credentialsFence: 2n };
    scope.refreshCaller(fresh);
    expect(scope.ctx.caller).toBe(fresh);
    expect(scope.ctx).toMatchObject({ requestId: 'r-1', sourceIp: '203.0.113.9', userAgent: 'test' });
    expect(ctx.caller.identityPolicies).toEqual([]);
    expect(ctx.caller.credentialsFence).toBe(1n);
  });
});
