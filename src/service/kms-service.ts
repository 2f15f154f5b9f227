import { randomUUID } from 'node:crypto';
import { keyArn } from '../domain/arn.ts';
import { KmsError, Validator } from '../domain/errors.ts';
import { defaultKeyPolicy, ORIGINS, type KeyState } from '../domain/key.ts';
import {
  decideCancelKeyDeletion,
  decideCreateKey,
  decideDisableKey,
  decideEnableKey,
  decideScheduleKeyDeletion,
  decideUpdateKeyDescription,
  publicKeyRefusal,
} from '../domain/key-decisions.ts';
import { checkKeyState } from '../domain/key-state-rules.ts';
import { KEY_SPECS, KEY_USAGES, keyAlgorithms, resolveKeyUsage, sm2Refused, type KeyAlgorithms, type KeySpecName, type KeyUsage } from '../domain/key-specs.ts';
import { validateTags, type Tag } from '../domain/tags.ts';
import { readKeyUse } from '../store/compliance-queries.ts';
import { countAccountKeys, readAccountKeysPage } from '../store/projections.ts';
import { IMPORTABLE_KEY_SPECS } from '../crypto/import-wrapping.ts';
import { MAX_KEYS_PER_ACCOUNT, tooManyKeysMessage } from '../domain/quotas.ts';
import { generateKeyMaterialFor, wrapKeyMaterial, type NewKeyMaterial } from '../crypto/key-material.ts';
import type { RootKey } from '../crypto/root-key.ts';
import { insertKeyMaterial } from '../store/key-material-store.ts';
import type { RequestContext } from './context.ts';
import { toKeyMetadata, type KeyMetadata } from '../domain/key-metadata.ts';
import { enforce, type Authorizer } from './authorization.ts';
import { applyKeyDecision, changeKey, keyResource, readAuthorizedKey, type JobScheduler, type KeyChangeDeps } from './key-changes.ts';
import { checkNewKeyPolicy, checkPolicySize, MAX_POLICY_MEMBER_LENGTH } from './key-policy-service.ts';
import type { KeyResolver } from './key-resolver.ts';
import { decodeMarker, page, pageSize } from './pagination.ts';
import type { RequestRunner } from './request-runner.ts';

/** GetKeyLastUsage's answer, AWS's members in lowerCamelCase; keyLastUsage is null when the key has no successful cryptographic use. */
export interface KeyLastUsageResult {
  keyId: string;
  keyLastUsage: { operation: string; timestamp: Date; cloudTrailEventId: string; kmsRequestId: string } | null;
  trackingStartDate: Date;
  keyCreationDate: Date;
}

export interface CreateKeyInput {
  description?: string | null;
  keyUsage?: string | null;
  keySpec?: string | null;
  customerMasterKeySpec?: string | null;
  origin?: string | null;
  policy?: string | null;
  bypassPolicyLockoutSafetyCheck?: boolean | null;
  tags?: Tag[] | null;
  multiRegion?: boolean | null;
  customKeyStoreId?: string | null;
}

/** GetPublicKey's response, in lowerCamelCase. */
export interface PublicKeyResult extends KeyAlgorithms {
  keyId: string;
  publicKey: Buffer;
  customerMasterKeySpec: string;
  keySpec: string;
  keyUsage: string;
}

/**
 * The KMS operations on keys themselves (their creation, description, state
 * and deletion), one method per AWS operation; aliases, tags and key policies
 * have services of their own. Each runs audit-first through the
 * RequestRunner: authenticate (done by the transport) -> load -> authorize ->
 * decide -> append + project -> respond.
 */
export class KmsService {
  readonly #runner: RequestRunner;
  readonly #region: string;
  readonly #rootKey: RootKey;
  readonly #jobs: JobScheduler;
  readonly #authorizer: Authorizer;

  readonly #changeDeps: KeyChangeDeps;

  readonly #maxKeysPerAccount: number;

  /** `maxKeysPerAccount`: the account's key quota (AWS's 100,000 by default). */
  constructor(deps: {
    runner: RequestRunner;
    region: string;
    rootKey: RootKey;
    resolver: KeyResolver;
    jobs: JobScheduler;
    authorizer: Authorizer;
    maxKeysPerAccount?: number;
  }) {
    this.#maxKeysPerAccount = deps.maxKeysPerAccount ?? MAX_KEYS_PER_ACCOUNT;
    this.#changeDeps = deps;
    this.#authorizer = deps.authorizer;
    this.#runner = deps.runner;
    this.#region = deps.region;
    this.#rootKey = deps.rootKey;
    this.#jobs = deps.jobs;
  }

  // ---------------------------------------------------------------- keys

  /**
   * CreateKey: a new key of any spec AWS offers outside the China Regions
   * (symmetric encryption, RSA, ECC, Ed25519, ML-DSA, HMAC), Enabled, owned
   * by the caller's account. Its material (the private key of a key pair, an
   * HMAC key, or 256 symmetric bits) is wrapped under the root key; a key
   * pair's public key is recorded in clear in KeyCreated.
   */
  async createKey(ctx: RequestContext, input: CreateKeyInput): Promise<{ keyMetadata: KeyMetadata }> {
    const requestParameters = {
      description: input.description ?? undefined,
      keyUsage: input.keyUsage ?? undefined,
      keySpec: input.keySpec ?? input.customerMasterKeySpec ?? undefined,
      origin: input.origin ?? undefined,
      bypassPolicyLockoutSafetyCheck: input.bypassPolicyLockoutSafetyCheck ?? undefined,
      multiRegion: input.multiRegion ?? undefined,
      tags: input.tags ?? undefined,
      policy: input.policy ?? undefined,
    };
    // A key pair is generated before the transaction, not in it: an RSA_4096
    // pair takes a second or more, and a transaction held open that long holds
    // back every reader that follows the log (logHorizon). Only for a spec and
    // usage that will be accepted; the same checks run again inside, where
    // their refusal is recorded.
    let fresh: NewKeyMaterial | undefined;
    let generationFailure: unknown;
    try {
      const shape = keyShape(input);
      // Origin EXTERNAL: the material comes with ImportKeyMaterial.
      if (shape.origin === 'AWS_KMS') fresh = await generateKeyMaterialFor(shape.keySpec);
    } catch (error) {
      // A refusal is answered (and recorded) by the same check inside; anything else is the request's failure, recorded too.
      if (!(error instanceof KmsError)) generationFailure = error;
    }
    try {
      return await this.#runner.run(ctx, { eventName: 'CreateKey', readOnly: false, requestParameters }, async (scope) => {
        const { trx, now } = scope;
        const v = new Validator()
          .maxLength('description', input.description, 8192)
          .oneOf('keyUsage', input.keyUsage, KEY_USAGES)
          .oneOf('keySpec', input.keySpec, KEY_SPECS)
          .oneOf('customerMasterKeySpec', input.customerMasterKeySpec, KEY_SPECS)
          .oneOf('origin', input.origin, ORIGINS)
          .minLength('policy', input.policy, 1)
          .maxLength('policy', input.policy, MAX_POLICY_MEMBER_LENGTH)
          .minLength('customKeyStoreId', input.customKeyStoreId, 1)
          .maxLength('customKeyStoreId', input.customKeyStoreId, 64);
        v.throwIfAny();
        checkPolicySize(input.policy);
        const { keySpec, keyUsage, origin } = keyShape(input);
        if (input.customKeyStoreId != null) {
          throw new KmsError('UnsupportedOperationException', 'keyledger does not support custom key stores.');
        }
        if (input.multiRegion) {
          throw new KmsError('UnsupportedOperationException', 'keyledger does not support multi-Region keys.');
        }
        const tags = input.tags ?? [];
        const badTags = validateTags(tags);
        if (badTags) throw badTags;
        await enforce(this.#authorizer, scope, {
          action: 'kms:CreateKey',
          conditions: { 'kms:KeySpec': keySpec, 'kms:KeyUsage': keyUsage, 'kms:KeyOrigin': origin },
        });
        const accountId = scope.ctx.caller.accountId;
        // Counted in the request's transaction: concurrent CreateKeys may pass the quota by as many as run at once.
        if ((await countAccountKeys(trx, accountId)) >= this.#maxKeysPerAccount)
          throw new KmsError('LimitExceededException', tooManyKeysMessage(this.#maxKeysPerAccount));
        const policy = input.policy ?? defaultKeyPolicy(accountId);
        const keyId = randomUUID();
        if (input.policy != null)
          checkNewKeyPolicy(
            this.#authorizer,
            input.policy,
            scope.ctx,
            now,
            keyArn(this.#region, accountId, keyId),
            input.bypassPolicyLockoutSafetyCheck ?? false,
          );

        // Made above for this spec; the checks it was made after are the ones just passed.
        if (!fresh && origin === 'AWS_KMS') throw generationFailure ?? new Error(`CreateKey: no key material was generated for ${keySpec}`);
        const keyMaterialId = fresh?.keyMaterialId ?? null;
        const publicKey = fresh?.publicKey;
        if (fresh)
          await insertKeyMaterial(trx, {
            keyId,
            keyMaterialId: fresh.keyMaterialId,
            wrapped: wrapKeyMaterial(this.#rootKey, keyId, fresh.keyMaterialId, fresh.material),
            createdAt: now,
          });
        const decision = decideCreateKey(null, {
          keyId,
          accountId,
          arn: keyArn(this.#region, accountId, keyId),
          description: input.description ?? '',
          keyUsage,
          keySpec,
          origin,
          policy,
          tags,
          keyMaterialId,
          publicKey: publicKey?.toString('base64'),
        });
        const key = await applyKeyDecision(trx, null, keyId, decision, now);
        scope.addResource(keyResource(key));
        const keyMetadata = toKeyMetadata(key);
        scope.setResponseElements({ keyMetadata });
        return { keyMetadata };
      });
    } finally {
      fresh?.material.fill(0);
    }
  }

  /**
   * GetPublicKey: an asymmetric key's public key (DER SubjectPublicKeyInfo),
   * with its spec, usage and algorithms. The public key comes from the key's
   * projection; the private key is never unwrapped for it.
   */
  getPublicKey(ctx: RequestContext, input: { keyId: string; grantTokens?: string[] | null }): Promise<PublicKeyResult> {
    const requestParameters = { keyId: input.keyId, grantTokens: input.grantTokens ?? undefined };
    return this.#runner.run(ctx, { eventName: 'GetPublicKey', readOnly: true, requestParameters }, async (scope) => {
      const key = await readAuthorizedKey(this.#changeDeps, scope, input.keyId, 'kms:GetPublicKey', { grantOperation: 'GetPublicKey' });
      const refused = checkKeyState('GetPublicKey', key) ?? publicKeyRefusal(key);
      if (refused) throw refused;
      return {
        keyId: key.arn,
        publicKey: Buffer.from(key.publicKey!, 'base64'),
        customerMasterKeySpec: key.keySpec,
        keySpec: key.keySpec,
        keyUsage: key.keyUsage,
        ...keyAlgorithms(key.keySpec, key.keyUsage),
      };
    });
  }

  /**
   * DescribeKey: by key id, key ARN, alias name or alias ARN. As in AWS, a
   * predefined `alias/aws/<service>` alias with no key yet creates the
   * account's AWS managed key (src/service/aws-managed-keys.ts).
   */
  describeKey(ctx: RequestContext, input: { keyId: string; grantTokens?: string[] | null }): Promise<{ keyMetadata: KeyMetadata }> {
    return this.#runner.run(ctx, { eventName: 'DescribeKey', readOnly: true, requestParameters: { keyId: input.keyId } }, async (scope) => {
      const key = await readAuthorizedKey(this.#changeDeps, scope, input.keyId, 'kms:DescribeKey', {
        grantOperation: 'DescribeKey',
        createsAwsManagedKey: true,
      });
      return { keyMetadata: toKeyMetadata(key) };
    });
  }

  /**
   * GetKeyLastUsage: the last successful cryptographic operation with the key
   * (its operation, time, audit event id as CloudTrailEventId and request id),
   * answered from the usage rollups by key plus the log records the fold has
   * not reached (readKeyUse), never a scan of the key's records. A ReEncrypt
   * counts for both its keys. keyledger records every request from a key's
   * creation on, so TrackingStartDate is the key's creation date. The key is
   * named by key id or key ARN, not by alias (as AWS); another account's key
   * is NotFoundException (AWS: no cross-account use).
   *
   * @example
   * const { keyLastUsage } = await app.kms.getKeyLastUsage(ctx, { keyId });
   * keyLastUsage?.operation;  // 'Decrypt'
   */
  getKeyLastUsage(ctx: RequestContext, input: { keyId: string }): Promise<KeyLastUsageResult> {
    return this.#runner.run(ctx, { eventName: 'GetKeyLastUsage', readOnly: true, requestParameters: { keyId: input.keyId } }, async (scope) => {
      const { trx } = scope;
      const key = await readAuthorizedKey(this.#changeDeps, scope, input.keyId, 'kms:GetKeyLastUsage');
      // No upper bound: a use recorded in this same instant (or by a server whose clock is ahead) is still the last.
      const last = (await readKeyUse(trx, key.accountId, [key.arn], { to: null })).get(key.arn);
      return {
        keyId: key.keyId,
        keyLastUsage: last
          ? { operation: last.lastEventName, timestamp: last.lastUsed, cloudTrailEventId: last.lastEventId, kmsRequestId: last.lastRequestId }
          : null,
        trackingStartDate: key.creationDate,
        keyCreationDate: key.creationDate,
      };
    });
  }

  /** ListKeys: the caller's account's keys, ordered by key id. */
  listKeys(
    ctx: RequestContext,
    input: { limit?: number | null; marker?: string | null },
  ): Promise<{ keys: { keyId: string; keyArn: string }[]; nextMarker: string | null; truncated: boolean }> {
    return this.#runner.run(
      ctx,
      { eventName: 'ListKeys', readOnly: true, requestParameters: { limit: input.limit ?? undefined, marker: input.marker ?? undefined } },
      async (scope) => {
        const { trx } = scope;
        await enforce(this.#authorizer, scope, { action: 'kms:ListKeys' });
        const v = new Validator().minLength('marker', input.marker, 1).maxLength('marker', input.marker, 1024);
        const size = pageSize(v, input.limit, 1000, 100);
        v.throwIfAny();
        const after = decodeMarker(input.marker);
        const rows = await readAccountKeysPage(trx, scope.ctx.caller.accountId, after, size + 1);
        const p = page(rows, size, (r) => r.key_id);
        return { keys: p.items.map((r) => ({ keyId: r.key_id, keyArn: r.arn })), nextMarker: p.nextMarker, truncated: p.truncated };
      },
    );
  }

  updateKeyDescription(ctx: RequestContext, input: { keyId: string; description: string }): Promise<Record<string, never>> {
    return changeKey(this.#runner, this.#changeDeps, ctx, 'UpdateKeyDescription', input.keyId, { description: input.description }, (key) => {
      new Validator().maxLength('description', input.description, 8192).throwIfAny();
      return decideUpdateKeyDescription(key, input.description);
    });
  }

  enableKey(ctx: RequestContext, input: { keyId: string }): Promise<Record<string, never>> {
    return changeKey(this.#runner, this.#changeDeps, ctx, 'EnableKey', input.keyId, {}, (key) => decideEnableKey(key));
  }

  disableKey(ctx: RequestContext, input: { keyId: string }): Promise<Record<string, never>> {
    return changeKey(this.#runner, this.#changeDeps, ctx, 'DisableKey', input.keyId, {}, (key) => decideDisableKey(key));
  }

  /** ScheduleKeyDeletion: PendingDeletion for 7–30 days (default 30). The deletion itself is the worker's. */
  async scheduleKeyDeletion(
    ctx: RequestContext,
    input: { keyId: string; pendingWindowInDays?: number | null },
  ): Promise<{ keyId: string; deletionDate: Date; keyState: string; pendingWindowInDays: number }> {
    let result: KeyState | undefined;
    await changeKey(
      this.#runner,
      this.#changeDeps,
      ctx,
      'ScheduleKeyDeletion',
      input.keyId,
      { pendingWindowInDays: input.pendingWindowInDays ?? undefined },
      (key, { now }) => {
        new Validator().range('pendingWindowInDays', input.pendingWindowInDays, 7, 30).throwIfAny();
        return decideScheduleKeyDeletion(key, input.pendingWindowInDays ?? 30, now);
      },
      async (scope, key) => {
        result = key;
        scope.setResponseElements({
          keyId: key.arn,
          deletionDate: key.deletionDate?.toISOString(),
          keyState: key.keyState,
          pendingWindowInDays: key.pendingDeletionWindowInDays,
        });
        await this.#jobs.keyDeletionScheduled(scope.trx, key.keyId, key.deletionDate!);
      },
      { 'kms:ScheduleKeyDeletionPendingWindowInDays': input.pendingWindowInDays ?? 30 },
    );
    const key = result!;
    return { keyId: key.arn, deletionDate: key.deletionDate!, keyState: key.keyState, pendingWindowInDays: key.pendingDeletionWindowInDays! };
  }

  async cancelKeyDeletion(ctx: RequestContext, input: { keyId: string }): Promise<{ keyId: string }> {
    let arn = '';
    await changeKey(
      this.#runner,
      this.#changeDeps,
      ctx,
      'CancelKeyDeletion',
      input.keyId,
      {},
      (key) => decideCancelKeyDeletion(key),
      (scope, key) => {
        arn = key.arn;
        scope.setResponseElements({ keyId: key.arn });
      },
    );
    return { keyId: arn };
  }
}

/**
 * The key spec, usage and origin a CreateKey asks for, or AWS's refusal:
 * KeySpec and the deprecated CustomerMasterKeySpec agree; SM2 is refused
 * outside the China Regions; the usage fits the spec (required for every
 * spec but SYMMETRIC_DEFAULT); only AWS_KMS origin is offered.
 */
function keyShape(input: CreateKeyInput): { keySpec: KeySpecName; keyUsage: KeyUsage; origin: string } {
  if (input.keySpec && input.customerMasterKeySpec && input.keySpec !== input.customerMasterKeySpec) {
    throw new KmsError(
      'ValidationException',
      'You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec parameter is deprecated. Use KeySpec parameter instead.',
    );
  }
  const keySpec = (input.keySpec ?? input.customerMasterKeySpec ?? 'SYMMETRIC_DEFAULT') as KeySpecName;
  if (keySpec === 'SM2') throw sm2Refused();
  const usage = resolveKeyUsage(keySpec, input.keyUsage);
  if (!usage.ok) throw usage.error;
  const origin = input.origin ?? 'AWS_KMS';
  if (origin === 'EXTERNAL' && !IMPORTABLE_KEY_SPECS.includes(keySpec)) {
    throw new KmsError(
      'UnsupportedOperationException',
      `keyledger imports key material for symmetric encryption, HMAC, RSA, NIST ECC and secp256k1 keys, not for ${keySpec} keys.`,
    );
  }
  if (origin !== 'AWS_KMS' && origin !== 'EXTERNAL') {
    throw new KmsError('UnsupportedOperationException', `keyledger does not support keys with origin ${origin}.`);
  }
  return { keySpec, keyUsage: usage.keyUsage, origin };
}
