import { KmsError, Validator } from '../domain/errors.ts';
import { decidePutKeyPolicy } from '../domain/key-decisions.ts';
import { parsePolicy, wouldLockOut } from '../domain/policy/index.ts';
import type { Authorizer } from './authorization.ts';
import type { RequestContext } from './context.ts';
import { changeKey, readAuthorizedKey, type KeyChangeDeps } from './key-changes.ts';
import type { KeyResolver } from './key-resolver.ts';
import { pageSize } from './pagination.ts';
import type { RequestRunner } from './request-runner.ts';

/** AWS's model allows a Policy member of 131,072 characters; AWS's key policy quota is 32 KB. */
export const MAX_POLICY_MEMBER_LENGTH = 131_072;
const MAX_POLICY_LENGTH = 32_768;

/** A key policy within the model's limit but over the key policy quota is LimitExceededException, as in AWS. */
export function checkPolicySize(policy: string | null | undefined): void {
  if (policy === null || policy === undefined || policy.length <= MAX_POLICY_LENGTH) return;
  if ([...policy].length > MAX_POLICY_LENGTH)
    throw new KmsError('LimitExceededException', `A key policy can be at most ${MAX_POLICY_LENGTH} characters (32 KB).`);
}

/**
 * A new key policy (CreateKey's, PutKeyPolicy's) must parse
 * (MalformedPolicyDocumentException naming what is wrong) and, unless the
 * caller bypasses the check, must still let the caller change it later
 * (AWS's policy lockout safety check).
 *
 * @example
 * checkNewKeyPolicy(authorizer, input.policy, ctx, now, key.arn, input.bypassPolicyLockoutSafetyCheck ?? false);
 */
export function checkNewKeyPolicy(authorizer: Authorizer, text: string, ctx: RequestContext, now: Date, arn: string, bypass: boolean): void {
  const parsed = parsePolicy(text, 'key');
  if (!parsed.ok) throw parsed.error;
  if (!bypass && wouldLockOut(parsed.policy, authorizer.factsFor(ctx.caller, ctx.sourceIp, now, arn))) {
    throw new KmsError('MalformedPolicyDocumentException', 'The new key policy will not allow you to update the key policy in the future.');
  }
}

/** Key policies: PutKeyPolicy, GetKeyPolicy, ListKeyPolicies. A KMS key has one policy, named `default`. */
export class KeyPolicyService {
  readonly #runner: RequestRunner;
  readonly #authorizer: Authorizer;
  readonly #changeDeps: KeyChangeDeps;

  constructor(deps: { runner: RequestRunner; region: string; resolver: KeyResolver; authorizer: Authorizer }) {
    this.#runner = deps.runner;
    this.#authorizer = deps.authorizer;
    this.#changeDeps = deps;
  }

  /** PutKeyPolicy: replaces the key policy (policyName must be `default`). */
  putKeyPolicy(
    ctx: RequestContext,
    input: { keyId: string; policyName?: string | null; policy: string; bypassPolicyLockoutSafetyCheck?: boolean | null },
  ): Promise<Record<string, never>> {
    const parameters = {
      policyName: input.policyName ?? 'default',
      policy: input.policy,
      bypassPolicyLockoutSafetyCheck: input.bypassPolicyLockoutSafetyCheck ?? undefined,
    };
    return changeKey(this.#runner, this.#changeDeps, ctx, 'PutKeyPolicy', input.keyId, parameters, (key, scope) => {
      checkPolicyName(input.policyName);
      new Validator().minLength('policy', input.policy, 1).maxLength('policy', input.policy, MAX_POLICY_MEMBER_LENGTH).throwIfAny();
      checkPolicySize(input.policy);
      checkNewKeyPolicy(this.#authorizer, input.policy, scope.ctx, scope.now, key.arn, input.bypassPolicyLockoutSafetyCheck ?? false);
      return decidePutKeyPolicy(key, input.policy);
    });
  }

  /** GetKeyPolicy: the key policy document as stored. */
  getKeyPolicy(ctx: RequestContext, input: { keyId: string; policyName?: string | null }): Promise<{ policy: string; policyName: string }> {
    const requestParameters = { keyId: input.keyId, policyName: input.policyName ?? 'default' };
    return this.#runner.run(ctx, { eventName: 'GetKeyPolicy', readOnly: true, requestParameters }, async (scope) => {
      checkPolicyName(input.policyName);
      const key = await readAuthorizedKey(this.#changeDeps, scope, input.keyId, 'kms:GetKeyPolicy');
      return { policy: key.policy, policyName: 'default' };
    });
  }

  /** ListKeyPolicies: always just `default`, as in AWS. */
  listKeyPolicies(
    ctx: RequestContext,
    input: { keyId: string; limit?: number | null; marker?: string | null },
  ): Promise<{ policyNames: string[]; nextMarker: string | null; truncated: boolean }> {
    return this.#runner.run(ctx, { eventName: 'ListKeyPolicies', readOnly: true, requestParameters: { keyId: input.keyId } }, async (scope) => {
      const v = new Validator();
      pageSize(v, input.limit, 1000, 100);
      v.throwIfAny();
      await readAuthorizedKey(this.#changeDeps, scope, input.keyId, 'kms:ListKeyPolicies');
      return { policyNames: ['default'], nextMarker: null, truncated: false };
    });
  }
}

function checkPolicyName(policyName: string | null | undefined): void {
  if (policyName != null && policyName !== 'default') {
    throw new KmsError('NotFoundException', `No such policy exists: ${policyName}. A KMS key has one policy, named default.`);
  }
}
