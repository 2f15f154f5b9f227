import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import {
  aliasStreamId,
  decideCreateAlias,
  decideDeleteAlias,
  decideUpdateAlias,
  foldAlias,
  validateAliasName,
  type AliasEvent,
  type AliasState,
} from '../domain/alias.ts';
import { aliasArn, keyArn, parseKeyReference } from '../domain/arn.ts';
import { PREDEFINED_AWS_ALIASES } from '../domain/aws-managed-key.ts';
import { KmsError, Validator, type Decision } from '../domain/errors.ts';
import {
  checkKeyState,
  decideCancelKeyDeletion,
  decideCreateKey,
  decidePutKeyPolicy,
  decideDisableKey,
  decideEnableKey,
  decideScheduleKeyDeletion,
  decideTagResource,
  decideUntagResource,
  decideUpdateKeyDescription,
  defaultKeyPolicy,
  MAX_TAGS_PER_KEY,
  ORIGINS,
  publicKeyRefusal,
  type KeyEvent,
  type KeyOperation,
  type KeyState,
  type Recorded,
} from '../domain/key.ts';
import { KEY_SPECS, KEY_USAGES, keyAlgorithms, resolveKeyUsage, sm2Refused, type KeyAlgorithms, type KeySpecName, type KeyUsage } from '../domain/key-specs.ts';
import { validateTagKeys, validateTags, type Tag } from '../domain/tags.ts';
import type { Database } from '../store/database.ts';
import { readKeyUse } from '../store/compliance-queries.ts';
import { aliasStream, applyDecision } from '../store/apply-decision.ts';
import { readStream } from '../store/event-store.ts';
import { countAccountKeys, countKeyAliases, readAccountKeysPage, readAliasesPage, readKeyProjection } from '../store/projections.ts';
import { IMPORTABLE_KEY_SPECS } from '../crypto/import-wrapping.ts';
import { MAX_KEYS_PER_ACCOUNT, tooManyKeysMessage } from '../domain/quotas.ts';
import { generateKeyMaterialFor, wrapKeyMaterial, type NewKeyMaterial } from '../crypto/key-material.ts';
import type { RootKey } from '../crypto/root-key.ts';
import { lockKeyShared } from '../store/key-locks.ts';
import { insertKeyMaterial } from '../store/key-material-store.ts';
import type { RequestContext } from './context.ts';
import { parsePolicy, wouldLockOut } from '../domain/policy/index.ts';
import { enforce, type Authorizer } from './authorization.ts';
import { applyKeyDecision, lockAuthorizedKey, readAuthorizedKey, type JobScheduler, type KeyChangeDeps } from './key-changes.ts';
import { KeyResolver, keyNotFound } from './key-resolver.ts';
import { decodeMarker, page, pageSize } from './pagination.ts';
import type { AuditDraft, RequestRunner } from './request-runner.ts';

type Trx = Transaction<Database>;

/** GetKeyLastUsage's answer, AWS's members in lowerCamelCase; keyLastUsage is null when the key has no successful cryptographic use. */
export interface KeyLastUsageResult {
  keyId: string;
  keyLastUsage: { operation: string; timestamp: Date; cloudTrailEventId: string; kmsRequestId: string } | null;
  trackingStartDate: Date;
  keyCreationDate: Date;
}

/** KeyMetadata as AWS returns it, in lowerCamelCase; of the algorithm lists, only those that apply to the key are present. */
export interface KeyMetadata extends KeyAlgorithms {
  awsAccountId: string;
  keyId: string;
  arn: string;
  creationDate: Date;
  enabled: boolean;
  description: string;
  keyUsage: string;
  keyState: string;
  deletionDate: Date | null;
  origin: string;
  keyManager: string;
  customerMasterKeySpec: string;
  keySpec: string;
  multiRegion: boolean;
  pendingDeletionWindowInDays: number | null;
  currentKeyMaterialId: string | null;
  /** Keys with imported material: whether it expires, and when. */
  expirationModel?: string;
  validTo?: Date;
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

/** A predefined `alias/aws/` alias whose key does not exist yet has no target and no dates, as AWS lists it. */
export interface AliasListEntry {
  aliasName: string;
  aliasArn: string;
  targetKeyId: string | null;
  creationDate: Date | null;
  lastUpdatedDate: Date | null;
}

/** AWS's model allows a Policy member of 131,072 characters; AWS's key policy quota is 32 KB. */
const MAX_POLICY_MEMBER_LENGTH = 131_072;
const MAX_POLICY_LENGTH = 32_768;

/** A key policy within the model's limit but over the key policy quota is LimitExceededException, as in AWS. */
function checkPolicySize(policy: string | null | undefined): void {
  if (policy === null || policy === undefined || policy.length <= MAX_POLICY_LENGTH) return;
  if ([...policy].length > MAX_POLICY_LENGTH)
    throw new KmsError('LimitExceededException', `A key policy can be at most ${MAX_POLICY_LENGTH} characters (32 KB).`);
}

/**
 * The KMS operations on keys and aliases, one method per AWS operation. Each
 * runs audit-first through the RequestRunner: authenticate (done by the
 * transport) -> load -> authorize -> decide -> append + project -> respond.
 */
export class KmsService {
  readonly #runner: RequestRunner;
  readonly #region: string;
  readonly #rootKey: RootKey;
  readonly #resolver: KeyResolver;
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
    this.#resolver = deps.resolver;
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
      return await this.#runner.run(ctx, { eventName: 'CreateKey', readOnly: false, requestParameters }, async (trx, draft, now) => {
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
        if (tags.length > MAX_TAGS_PER_KEY) {
          throw new KmsError('LimitExceededException', `A KMS key can have at most ${MAX_TAGS_PER_KEY} tags.`);
        }
        await enforce(this.#authorizer, trx, ctx, draft, now, {
          action: 'kms:CreateKey',
          conditions: { 'kms:KeySpec': keySpec, 'kms:KeyUsage': keyUsage, 'kms:KeyOrigin': origin },
        });
        const accountId = ctx.caller.accountId;
        // Counted in the request's transaction: concurrent CreateKeys may pass the quota by as many as run at once.
        if ((await countAccountKeys(trx, accountId)) >= this.#maxKeysPerAccount)
          throw new KmsError('LimitExceededException', tooManyKeysMessage(this.#maxKeysPerAccount));
        const policy = input.policy ?? defaultKeyPolicy(accountId);
        const keyId = randomUUID();
        if (input.policy != null)
          this.#checkPolicy(input.policy, ctx, now, keyArn(this.#region, accountId, keyId), input.bypassPolicyLockoutSafetyCheck ?? false);

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
        draft.resources.push(keyResource(key));
        const keyMetadata = toKeyMetadata(key);
        draft.responseElements = { keyMetadata };
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
    return this.#runner.run(ctx, { eventName: 'GetPublicKey', readOnly: true, requestParameters }, async (trx, draft, now) => {
      const key = await this.#readKey(trx, ctx, input.keyId, draft, now, 'kms:GetPublicKey', 'GetPublicKey');
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
    return this.#runner.run(ctx, { eventName: 'DescribeKey', readOnly: true, requestParameters: { keyId: input.keyId } }, async (trx, draft, now) => {
      const key = await readAuthorizedKey(this.#changeDeps, trx, ctx, draft, now, input.keyId, 'kms:DescribeKey', {
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
    return this.#runner.run(ctx, { eventName: 'GetKeyLastUsage', readOnly: true, requestParameters: { keyId: input.keyId } }, async (trx, draft, now) => {
      const key = await this.#readKey(trx, ctx, input.keyId, draft, now, 'kms:GetKeyLastUsage');
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
      async (trx, draft, now) => {
        await enforce(this.#authorizer, trx, ctx, draft, now, { action: 'kms:ListKeys' });
        const v = new Validator().minLength('marker', input.marker, 1).maxLength('marker', input.marker, 1024);
        const size = pageSize(v, input.limit, 1000, 100);
        v.throwIfAny();
        const after = decodeMarker(input.marker);
        const rows = await readAccountKeysPage(trx, ctx.caller.accountId, after, size + 1);
        const p = page(rows, size, (r) => r.key_id);
        return { keys: p.items.map((r) => ({ keyId: r.key_id, keyArn: r.arn })), nextMarker: p.nextMarker, truncated: p.truncated };
      },
    );
  }

  updateKeyDescription(ctx: RequestContext, input: { keyId: string; description: string }): Promise<Record<string, never>> {
    return this.#lifecycle(ctx, 'UpdateKeyDescription', input.keyId, { description: input.description }, (key) => {
      new Validator().maxLength('description', input.description, 8192).throwIfAny();
      return decideUpdateKeyDescription(key, input.description);
    });
  }

  enableKey(ctx: RequestContext, input: { keyId: string }): Promise<Record<string, never>> {
    return this.#lifecycle(ctx, 'EnableKey', input.keyId, {}, (key) => decideEnableKey(key));
  }

  disableKey(ctx: RequestContext, input: { keyId: string }): Promise<Record<string, never>> {
    return this.#lifecycle(ctx, 'DisableKey', input.keyId, {}, (key) => decideDisableKey(key));
  }

  /** ScheduleKeyDeletion: PendingDeletion for 7–30 days (default 30). The deletion itself is the worker's. */
  async scheduleKeyDeletion(
    ctx: RequestContext,
    input: { keyId: string; pendingWindowInDays?: number | null },
  ): Promise<{ keyId: string; deletionDate: Date; keyState: string; pendingWindowInDays: number }> {
    let result: KeyState | undefined;
    await this.#lifecycle(
      ctx,
      'ScheduleKeyDeletion',
      input.keyId,
      { pendingWindowInDays: input.pendingWindowInDays ?? undefined },
      (key, now) => {
        new Validator().range('pendingWindowInDays', input.pendingWindowInDays, 7, 30).throwIfAny();
        return decideScheduleKeyDeletion(key, input.pendingWindowInDays ?? 30, now);
      },
      async (trx, key, draft) => {
        result = key;
        draft.responseElements = {
          keyId: key.arn,
          deletionDate: key.deletionDate?.toISOString(),
          keyState: key.keyState,
          pendingWindowInDays: key.pendingDeletionWindowInDays,
        };
        await this.#jobs.keyDeletionScheduled(trx, key.keyId, key.deletionDate!);
      },
      { 'kms:ScheduleKeyDeletionPendingWindowInDays': input.pendingWindowInDays ?? 30 },
    );
    const key = result!;
    return { keyId: key.arn, deletionDate: key.deletionDate!, keyState: key.keyState, pendingWindowInDays: key.pendingDeletionWindowInDays! };
  }

  async cancelKeyDeletion(ctx: RequestContext, input: { keyId: string }): Promise<{ keyId: string }> {
    let arn = '';
    await this.#lifecycle(
      ctx,
      'CancelKeyDeletion',
      input.keyId,
      {},
      (key) => decideCancelKeyDeletion(key),
      (_trx, key, draft) => {
        arn = key.arn;
        draft.responseElements = { keyId: key.arn };
      },
    );
    return { keyId: arn };
  }

  tagResource(ctx: RequestContext, input: { keyId: string; tags: Tag[] }): Promise<Record<string, never>> {
    return this.#lifecycle(ctx, 'TagResource', input.keyId, { tags: input.tags }, (key) => {
      const bad = validateTags(input.tags);
      if (bad) throw bad;
      return decideTagResource(key, input.tags);
    });
  }

  untagResource(ctx: RequestContext, input: { keyId: string; tagKeys: string[] }): Promise<Record<string, never>> {
    return this.#lifecycle(ctx, 'UntagResource', input.keyId, { tagKeys: input.tagKeys }, (key) => {
      const bad = validateTagKeys(input.tagKeys);
      if (bad) throw bad;
      return decideUntagResource(key, input.tagKeys);
    });
  }

  listResourceTags(
    ctx: RequestContext,
    input: { keyId: string; limit?: number | null; marker?: string | null },
  ): Promise<{ tags: Tag[]; nextMarker: string | null; truncated: boolean }> {
    const requestParameters = { keyId: input.keyId, limit: input.limit ?? undefined, marker: input.marker ?? undefined };
    return this.#runner.run(ctx, { eventName: 'ListResourceTags', readOnly: true, requestParameters }, async (trx, draft, now) => {
      const v = new Validator();
      const size = pageSize(v, input.limit, 50, 50);
      v.throwIfAny();
      const after = decodeMarker(input.marker);
      const key = await this.#readKey(trx, ctx, input.keyId, draft, now, 'kms:ListResourceTags');
      const tags = key.tags.filter((t) => after === undefined || t.tagKey > after).slice(0, size + 1);
      const p = page(tags, size, (t) => t.tagKey);
      return { tags: p.items, nextMarker: p.nextMarker, truncated: p.truncated };
    });
  }

  // ---------------------------------------------------------------- aliases

  createAlias(ctx: RequestContext, input: { aliasName: string; targetKeyId: string }): Promise<Record<string, never>> {
    return this.#aliasChange(ctx, 'CreateAlias', input, (alias, target, arn, aliasesOnTarget) =>
      decideCreateAlias(alias, { accountId: ctx.caller.accountId, aliasName: input.aliasName, aliasArn: arn, targetKeyId: target!.keyId, aliasesOnTarget }),
    );
  }

  updateAlias(ctx: RequestContext, input: { aliasName: string; targetKeyId: string }): Promise<Record<string, never>> {
    return this.#aliasChange(ctx, 'UpdateAlias', input, (alias, target, arn, aliasesOnTarget) =>
      decideUpdateAlias(alias, { aliasArn: arn, targetKeyId: target!.keyId, aliasesOnTarget }),
    );
  }

  deleteAlias(ctx: RequestContext, input: { aliasName: string }): Promise<Record<string, never>> {
    return this.#aliasChange(ctx, 'DeleteAlias', input, (alias, _target, arn) => decideDeleteAlias(alias, arn));
  }

  listAliases(
    ctx: RequestContext,
    input: { keyId?: string | null; limit?: number | null; marker?: string | null },
  ): Promise<{ aliases: AliasListEntry[]; nextMarker: string | null; truncated: boolean }> {
    const requestParameters = { keyId: input.keyId ?? undefined, limit: input.limit ?? undefined, marker: input.marker ?? undefined };
    return this.#runner.run(ctx, { eventName: 'ListAliases', readOnly: true, requestParameters }, async (trx, draft, now) => {
      await enforce(this.#authorizer, trx, ctx, draft, now, { action: 'kms:ListAliases' });
      const v = new Validator();
      const size = pageSize(v, input.limit, 100, 50);
      v.throwIfAny();
      const after = decodeMarker(input.marker);
      // By key id or key ARN only, as in AWS.
      const targetKeyId = input.keyId == null ? undefined : (await this.#readKey(trx, ctx, input.keyId, draft, now)).keyId;
      // AWS lists its predefined aliases in every account, with no TargetKeyId until their key exists.
      const rows = await readAliasesPage(trx, ctx.caller.accountId, { targetKeyId, after, limit: size + 1, predefined: PREDEFINED_AWS_ALIASES });
      const p = page(rows, size, (r) => r.alias_name);
      return {
        aliases: p.items.map((r) => ({
          aliasName: r.alias_name,
          aliasArn: aliasArn(this.#region, ctx.caller.accountId, r.alias_name),
          targetKeyId: r.target_key_id,
          creationDate: r.creation_date,
          lastUpdatedDate: r.last_updated_date,
        })),
        nextMarker: p.nextMarker,
        truncated: p.truncated,
      };
    });
  }

  // ---------------------------------------------------------------- internals

  /**
   * A lifecycle change on one key: lock its projection row (so crypto operations
   * and other lifecycle changes on the key are ordered around it), fold its
   * stream, decide, append with the folded version, project.
   */
  async #lifecycle(
    ctx: RequestContext,
    operation: KeyOperation,
    keyIdText: string,
    parameters: Record<string, unknown>,
    decide: (key: KeyState, now: Date) => Decision<KeyEvent>,
    after?: (trx: Trx, key: KeyState, draft: AuditDraft) => Promise<void> | void,
    conditions: Record<string, string | number | boolean | undefined> = {},
  ): Promise<Record<string, never>> {
    const requestParameters = { keyId: keyIdText, ...parameters };
    return this.#runner.run(ctx, { eventName: operation, readOnly: false, requestParameters }, async (trx, draft, now) => {
      const key = await lockAuthorizedKey(this.#changeDeps, trx, ctx, draft, now, keyIdText, `kms:${operation}`, conditions);
      const next = await applyKeyDecision(trx, key, key.keyId, decide(key, now), now);
      await after?.(trx, next, draft);
      return {};
    });
  }

  async #aliasChange(
    ctx: RequestContext,
    operation: 'CreateAlias' | 'UpdateAlias' | 'DeleteAlias',
    input: { aliasName: string; targetKeyId?: string },
    decide: (alias: AliasState | null, target: KeyState | null, aliasArn: string, aliasesOnTarget: number) => Decision<AliasEvent>,
  ): Promise<Record<string, never>> {
    const requestParameters = { aliasName: input.aliasName, targetKeyId: input.targetKeyId };
    return this.#runner.run(ctx, { eventName: operation, readOnly: false, requestParameters }, async (trx, draft, now) => {
      const invalidName = validateAliasName(input.aliasName);
      if (invalidName) throw invalidName;
      const accountId = ctx.caller.accountId;
      const arn = aliasArn(this.#region, accountId, input.aliasName);
      draft.resources.push({ arn, type: 'AWS::KMS::Alias', accountId });
      // As in AWS, the alias itself is a resource of identity policies (an explicit Deny on alias/prod-* holds),
      // besides the permission on the key(s) checked below.
      await enforce(this.#authorizer, trx, ctx, draft, now, { action: `kms:${operation}`, resourceArn: arn });

      let target: KeyState | null = null;
      let aliasesOnTarget = 0;
      if (input.targetKeyId !== undefined) {
        new Validator().minLength('targetKeyId', input.targetKeyId, 1).maxLength('targetKeyId', input.targetKeyId, 2048).throwIfAny();
        const ref = parseKeyReference(input.targetKeyId);
        if (ref?.kind === 'aliasName' || ref?.kind === 'aliasArn') {
          throw new KmsError('ValidationException', 'Aliases must refer to keys. Not aliases');
        }
        const resolved = await this.#resolver.resolve(trx, ctx.caller.accountId, input.targetKeyId, 'targetKeyId');
        const keyId = resolved.keyId;
        // An alias and its key are always in the same account.
        if (resolved.accountId !== accountId) throw keyNotFound(input.targetKeyId);
        // The target's shared lock: it cannot be scheduled for deletion under us.
        await lockKeyShared(trx, [keyId]);
        target = await readKeyProjection(trx, keyId);
        if (!target) throw keyNotFound(keyArn(this.#region, accountId, keyId));
        draft.resources.push(keyResource(target));
        await enforce(this.#authorizer, trx, ctx, draft, now, { action: `kms:${operation}`, key: target });
        const refused = checkKeyState(operation as KeyOperation, target);
        if (refused) throw refused;
        aliasesOnTarget = await countKeyAliases(trx, keyId);
      }

      const alias = foldAlias((await readStream(trx, aliasStreamId(accountId, input.aliasName))) as Recorded<AliasEvent>[]);
      // Moving or deleting an alias also needs permission on the key it points at now.
      if (operation !== 'CreateAlias' && alias && !alias.deleted) {
        const current = await readKeyProjection(trx, alias.targetKeyId);
        if (current) await enforce(this.#authorizer, trx, ctx, draft, now, { action: `kms:${operation}`, key: current });
      }
      if (operation === 'UpdateAlias' && alias && !alias.deleted && target) {
        // AWS: an alias may only move to a key of the same key spec and usage.
        const current = await readKeyProjection(trx, alias.targetKeyId);
        if (current && (current.keySpec !== target.keySpec || current.keyUsage !== target.keyUsage)) {
          throw new KmsError('ValidationException', `${arn} can only be associated with keys of the same key spec and key usage.`);
        }
      }
      await applyDecision(trx, aliasStream(accountId, input.aliasName), alias, decide(alias, target, arn, aliasesOnTarget), now);
      return {};
    });
  }

  /** Resolves and reads a key for a read operation, authorized as `action` (or as the request already was). */
  async #readKey(trx: Trx, ctx: RequestContext, text: string, draft: AuditDraft, now: Date, action?: string, grantOperation?: string): Promise<KeyState> {
    if (action) return readAuthorizedKey(this.#changeDeps, trx, ctx, draft, now, text, action, grantOperation ? { grantOperation } : {});
    // Read as part of a request already authorized (ListAliases' filter): the caller's own keys only.
    const { keyId, accountId } = await this.#resolver.resolveKeyOnly(trx, ctx.caller.accountId, text);
    const key = await readKeyProjection(trx, keyId);
    if (!key || key.accountId !== ctx.caller.accountId) throw keyNotFound(key?.arn ?? keyArn(this.#region, accountId, keyId));
    draft.resources.push(keyResource(key));
    return key;
  }

  /**
   * A key policy must parse (MalformedPolicyDocumentException naming what is
   * wrong) and, unless the caller bypasses the check, must still let the caller
   * change it later (AWS's policy lockout safety check).
   */
  #checkPolicy(text: string, ctx: RequestContext, now: Date, arn: string, bypass: boolean): void {
    const parsed = parsePolicy(text, 'key');
    if (!parsed.ok) throw parsed.error;
    if (!bypass && wouldLockOut(parsed.policy, this.#authorizer.factsFor(ctx.caller, ctx.sourceIp, now, arn))) {
      throw new KmsError('MalformedPolicyDocumentException', 'The new key policy will not allow you to update the key policy in the future.');
    }
  }

  // ---------------------------------------------------------------- key policies

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
    return this.#lifecycle(ctx, 'PutKeyPolicy', input.keyId, parameters, (key, now) => {
      checkPolicyName(input.policyName);
      new Validator().minLength('policy', input.policy, 1).maxLength('policy', input.policy, MAX_POLICY_MEMBER_LENGTH).throwIfAny();
      checkPolicySize(input.policy);
      this.#checkPolicy(input.policy, ctx, now, key.arn, input.bypassPolicyLockoutSafetyCheck ?? false);
      return decidePutKeyPolicy(key, input.policy);
    });
  }

  /** GetKeyPolicy: the key policy document as stored. */
  getKeyPolicy(ctx: RequestContext, input: { keyId: string; policyName?: string | null }): Promise<{ policy: string; policyName: string }> {
    const requestParameters = { keyId: input.keyId, policyName: input.policyName ?? 'default' };
    return this.#runner.run(ctx, { eventName: 'GetKeyPolicy', readOnly: true, requestParameters }, async (trx, draft, now) => {
      checkPolicyName(input.policyName);
      const key = await this.#readKey(trx, ctx, input.keyId, draft, now, 'kms:GetKeyPolicy');
      return { policy: key.policy, policyName: 'default' };
    });
  }

  /** ListKeyPolicies: always just `default`, as in AWS. */
  listKeyPolicies(
    ctx: RequestContext,
    input: { keyId: string; limit?: number | null; marker?: string | null },
  ): Promise<{ policyNames: string[]; nextMarker: string | null; truncated: boolean }> {
    return this.#runner.run(ctx, { eventName: 'ListKeyPolicies', readOnly: true, requestParameters: { keyId: input.keyId } }, async (trx, draft, now) => {
      const v = new Validator();
      pageSize(v, input.limit, 1000, 100);
      v.throwIfAny();
      await this.#readKey(trx, ctx, input.keyId, draft, now, 'kms:ListKeyPolicies');
      return { policyNames: ['default'], nextMarker: null, truncated: false };
    });
  }
}

export function toKeyMetadata(key: KeyState): KeyMetadata {
  return {
    awsAccountId: key.accountId,
    keyId: key.keyId,
    arn: key.arn,
    creationDate: key.creationDate,
    enabled: key.keyState === 'Enabled',
    description: key.description,
    keyUsage: key.keyUsage,
    keyState: key.keyState,
    deletionDate: key.deletionDate,
    origin: key.origin,
    keyManager: key.keyManager,
    customerMasterKeySpec: key.keySpec,
    keySpec: key.keySpec,
    ...keyAlgorithms(key.keySpec, key.keyUsage),
    multiRegion: key.multiRegion,
    // AWS shows the waiting period only while a multi-Region primary waits for its replicas
    // (PendingReplicaDeletion); a key of one Region pending deletion shows its DeletionDate instead.
    pendingDeletionWindowInDays: null,
    // AWS names the current material of symmetric encryption keys only, the keys whose material rotates.
    currentKeyMaterialId: key.keySpec === 'SYMMETRIC_DEFAULT' ? key.currentKeyMaterialId : null,
    ...(key.origin === 'EXTERNAL' ? importedMetadata(key) : {}),
  };
}

/** KeyMetadata's ExpirationModel and ValidTo of a key with imported material: its current material's, once imported. */
function importedMetadata(key: KeyState): { expirationModel?: string; validTo?: Date } {
  const current = key.importedMaterials.find((m) => m.keyMaterialId === key.currentKeyMaterialId && m.importState === 'IMPORTED');
  if (!current?.expirationModel) return {};
  return { expirationModel: current.expirationModel, ...(current.validTo ? { validTo: new Date(current.validTo) } : {}) };
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

const keyResource = (key: KeyState) => ({ arn: key.arn, type: 'AWS::KMS::Key', accountId: key.accountId });

function checkPolicyName(policyName: string | null | undefined): void {
  if (policyName != null && policyName !== 'default') {
    throw new KmsError('NotFoundException', `No such policy exists: ${policyName}. A KMS key has one policy, named default.`);
  }
}
