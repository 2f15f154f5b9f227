import type { Transaction } from 'kysely';
import { aliasStreamId, decideDeleteAlias, foldAlias } from '../domain/alias.ts';
import { aliasArn } from '../domain/arn.ts';
import { KmsError, Validator, type Decision } from '../domain/errors.ts';
import { foldKey, keyStreamId, type ExpirationModel, type KeyEvent, type KeyState, type Recorded } from '../domain/key.ts';
import {
  decideAutomaticRotation,
  decideDeleteKey,
  decideDisableKeyRotation,
  decideExpireKeyMaterial,
  decideEnableKeyRotation,
  decideRotateKeyOnDemand,
  isDeletionDue,
  isMaterialExpiryDue,
  isRotationDue,
  keyMaterialState,
  nextMaterialExpiry,
} from '../domain/key-decisions.ts';
import { checkKeyState, type KeyOperation } from '../domain/key-state-rules.ts';
import { generateKeyMaterial, wrapKeyMaterial } from '../crypto/key-material.ts';
import type { RootKey } from '../crypto/root-key.ts';
import type { Database } from '../store/database.ts';
import { aliasStream, applyDecision } from '../store/apply-decision.ts';
import { readStream } from '../store/event-store.ts';
import { destroyKeyMaterial, dropImportParameters, insertKeyMaterial } from '../store/key-material-store.ts';
import { readKeyAliases, readKeyProjection } from '../store/projections.ts';
import type { OperatorContext, RequestContext } from './context.ts';
import { applyKeyDecision, lockAuthorizedKey, lockKeyForChange, readAuthorizedKey, type JobScheduler, type KeyChangeDeps } from './key-changes.ts';
import type { KeyResolver } from './key-resolver.ts';
import { decodeMarker, page, pageSize } from './pagination.ts';
import type { Authorizer } from './authorization.ts';
import { retireAllGrants } from './grant-service.ts';
import type { OperatorScope, TransactionScope } from './operation-scope.ts';
import type { RequestRunner } from './request-runner.ts';
import { uuidV7 } from '../domain/uuid-v7.ts';

type Trx = Transaction<Database>;

export interface KeyRotationStatus {
  keyId: string;
  keyRotationEnabled: boolean;
  rotationPeriodInDays: number | null;
  nextRotationDate: Date | null;
}

/** AWS's RotationsListEntry; the import members only for imported material, rotationDate and rotationType only for a rotation. */
export interface RotationListEntry {
  keyId: string;
  keyMaterialId: string;
  keyMaterialDescription?: string | null;
  importState?: 'IMPORTED' | 'PENDING_IMPORT';
  keyMaterialState: 'CURRENT' | 'NON_CURRENT' | 'PENDING_ROTATION';
  expirationModel?: ExpirationModel | null;
  validTo?: Date | null;
  rotationDate?: Date;
  rotationType?: 'AUTOMATIC' | 'ON_DEMAND';
}

export const INCLUDE_KEY_MATERIAL = ['ALL_KEY_MATERIAL', 'ROTATIONS_ONLY'] as const;

/** What the worker did with one due key. */
export type ScheduledOutcome = 'done' | 'not-due';

const WORKER: Omit<OperatorContext, 'requestId'> = { invokedBy: 'keyledger-worker', identityType: 'AWSService' };

/**
 * Key rotation (automatic and on demand) and the scheduled deletion of keys.
 * The request operations are the AWS ones; `rotateIfDue` and `deleteIfDue` are
 * what the worker calls. Both re-decide under the key's row lock from the folded
 * stream and append with the version they decided on, so a retried job, two
 * workers, or a restarted worker yield one rotation / one deletion.
 */
export class RotationService {
  readonly #runner: RequestRunner;
  readonly #rootKey: RootKey;
  readonly #jobs: JobScheduler;

  readonly #changeDeps: KeyChangeDeps;
  readonly #region: string;

  constructor(deps: { runner: RequestRunner; rootKey: RootKey; resolver: KeyResolver; region: string; jobs: JobScheduler; authorizer: Authorizer }) {
    this.#changeDeps = deps;
    this.#region = deps.region;
    this.#runner = deps.runner;
    this.#rootKey = deps.rootKey;
    this.#jobs = deps.jobs;
  }

  /** EnableKeyRotation: every rotationPeriodInDays (90-2560, default 365) from now. */
  enableKeyRotation(ctx: RequestContext, input: { keyId: string; rotationPeriodInDays?: number | null }): Promise<Record<string, never>> {
    const requestParameters = { keyId: input.keyId, rotationPeriodInDays: input.rotationPeriodInDays ?? undefined };
    const conditions = { 'kms:RotationPeriodInDays': input.rotationPeriodInDays ?? 365 };
    return this.#change(ctx, 'EnableKeyRotation', input.keyId, requestParameters, conditions, async ({ trx, now }, key) => {
      new Validator().range('rotationPeriodInDays', input.rotationPeriodInDays, 90, 2560).throwIfAny();
      const next = await applyKeyDecision(trx, key, key.keyId, decideEnableKeyRotation(key, input.rotationPeriodInDays ?? 365, now), now);
      if (next.nextRotationDate && next.version !== key.version) await this.#jobs.keyRotationScheduled(trx, key.keyId, next.nextRotationDate);
    });
  }

  disableKeyRotation(ctx: RequestContext, input: { keyId: string }): Promise<Record<string, never>> {
    return this.#change(ctx, 'DisableKeyRotation', input.keyId, { keyId: input.keyId }, {}, async ({ trx, now }, key) => {
      await applyKeyDecision(trx, key, key.keyId, decideDisableKeyRotation(key), now);
    });
  }

  /**
   * RotateKeyOnDemand: new key material now (at most 25 times per key),
   * answered with the key's ARN as AWS does. The rotation is complete when the
   * answer leaves, so GetKeyRotationStatus never shows one in progress
   * (AWS's OnDemandRotationStartDate).
   */
  async rotateKeyOnDemand(ctx: RequestContext, input: { keyId: string }): Promise<{ keyId: string }> {
    let keyId = '';
    await this.#change(ctx, 'RotateKeyOnDemand', input.keyId, { keyId: input.keyId }, {}, async (scope, key) => {
      keyId = key.arn;
      const next = await this.#rotate(scope.trx, key, scope.now, (id) => decideRotateKeyOnDemand(key, id));
      scope.setAdditionalEventData({ keyMaterialId: next.currentKeyMaterialId, rotationType: 'ON_DEMAND' });
    });
    return { keyId };
  }

  getKeyRotationStatus(ctx: RequestContext, input: { keyId: string }): Promise<KeyRotationStatus> {
    return this.#runner.run(ctx, { eventName: 'GetKeyRotationStatus', readOnly: true, requestParameters: { keyId: input.keyId } }, async (scope) => {
      const key = await this.#read(scope, input.keyId, 'GetKeyRotationStatus');
      return {
        keyId: key.arn,
        keyRotationEnabled: key.rotationEnabled,
        rotationPeriodInDays: key.rotationPeriodInDays,
        nextRotationDate: key.nextRotationDate,
      };
    });
  }

  /**
   * ListKeyRotations: every completed rotation, oldest first (limit 1-1000),
   * with each version's KeyMaterialState. With IncludeKeyMaterial
   * ALL_KEY_MATERIAL, every material version instead: the key's first
   * material (no rotation date), then each rotation's, then imported material
   * pending rotation. Imported versions carry their import state, expiration
   * model, ValidTo and description.
   */
  listKeyRotations(
    ctx: RequestContext,
    input: { keyId: string; includeKeyMaterial?: string | null; limit?: number | null; marker?: string | null },
  ): Promise<{ rotations: RotationListEntry[]; nextMarker: string | null; truncated: boolean }> {
    const requestParameters = {
      keyId: input.keyId,
      includeKeyMaterial: input.includeKeyMaterial ?? undefined,
      limit: input.limit ?? undefined,
      marker: input.marker ?? undefined,
    };
    return this.#runner.run(ctx, { eventName: 'ListKeyRotations', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      const v = new Validator().oneOf('includeKeyMaterial', input.includeKeyMaterial, INCLUDE_KEY_MATERIAL);
      const size = pageSize(v, input.limit, 1000, 100);
      v.throwIfAny();
      const after = decodeMarker(input.marker);
      const key = await this.#read(scope, input.keyId, 'ListKeyRotations');
      const events = (await readStream(trx, keyStreamId(key.keyId))) as unknown as Recorded<KeyEvent>[];
      const folded = foldKey(events) ?? key;
      const entry = (keyMaterialId: string, rotation?: { rotationDate: Date; rotationType: 'AUTOMATIC' | 'ON_DEMAND' }): RotationListEntry => {
        const imported = folded.importedMaterials.find((m) => m.keyMaterialId === keyMaterialId);
        return {
          keyId: key.arn,
          keyMaterialId,
          ...(imported
            ? {
                keyMaterialDescription: imported.description,
                importState: imported.importState,
                expirationModel: imported.expirationModel,
                validTo: imported.validTo === null ? null : new Date(imported.validTo),
              }
            : {}),
          keyMaterialState: keyMaterialState(folded, keyMaterialId),
          ...(rotation ?? {}),
        };
      };
      const rotated = events.flatMap((e) =>
        e.type === 'KeyRotated' ? [entry(e.data.keyMaterialId, { rotationDate: e.recordedAt, rotationType: e.data.rotationType })] : [],
      );
      const all =
        input.includeKeyMaterial === 'ALL_KEY_MATERIAL'
          ? [
              ...folded.keyMaterialIds.slice(0, 1).map((id) => entry(id)),
              ...rotated,
              ...folded.importedMaterials.filter((m) => !folded.keyMaterialIds.includes(m.keyMaterialId)).map((m) => entry(m.keyMaterialId)),
            ]
          : rotated;
      const start = after === undefined ? 0 : Number(after);
      if (!Number.isSafeInteger(start) || start < 0)
        throw new KmsError(
          'InvalidMarkerException',
          'The request was rejected because the marker that specifies where pagination should next begin is not valid.',
        );
      const numbered = all.map((r, i) => ({ n: i + 1, r })).slice(start);
      const p = page(numbered.slice(0, size + 1), size, (x) => String(x.n));
      return { rotations: p.items.map((x) => x.r), nextMarker: p.nextMarker, truncated: p.truncated };
    });
  }

  // ---------------------------------------------------------------- the worker's side

  /**
   * Rotates a key whose nextRotationDate has come. A key that is not due (any
   * more) is left alone and nothing is recorded: that is a duplicate or stale job.
   */
  async rotateIfDue(keyId: string, now: Date): Promise<ScheduledOutcome> {
    const current = await this.#runner.read((db) => readKeyProjection(db, keyId));
    if (!current || !isRotationDue(current, now)) return 'not-due';
    return this.#asWorker('RotateKey', current, async (scope) => {
      const { trx } = scope;
      const key = await lockKeyForChange(trx, keyId);
      if (!key || !isRotationDue(key, now)) return 'not-due';
      const next = await this.#rotate(trx, key, now, (id) => decideAutomaticRotation(key, id, now));
      scope.setAdditionalEventData({ keyMaterialId: next.currentKeyMaterialId, rotationType: 'AUTOMATIC' });
      if (next.nextRotationDate) await this.#jobs.keyRotationScheduled(trx, keyId, next.nextRotationDate);
      return 'done';
    });
  }

  /**
   * Deletes a key whose deletionDate has come: destroys all its key material
   * (crypto-shredding), deletes its aliases, and records KeyDeleted. The events
   * that describe the key stay. Not due (cancelled, rescheduled, deleted): no-op.
   */
  async deleteIfDue(keyId: string, now: Date): Promise<ScheduledOutcome> {
    const current = await this.#runner.read((db) => readKeyProjection(db, keyId));
    if (!current || !isDeletionDue(current, now)) return 'not-due';
    return this.#asWorker('DeleteKey', current, async (scope) => {
      const { trx } = scope;
      const key = await lockKeyForChange(trx, keyId);
      if (!key || !isDeletionDue(key, now)) return 'not-due';
      const aliases = await readKeyAliases(trx, keyId);
      for (const alias of aliases) await this.#deleteAlias(trx, alias.account_id, alias.alias_name, now);
      const retiredGrants = await retireAllGrants(trx, keyId, 'keyledger-worker', now);
      const destroyed = await destroyKeyMaterial(trx, keyId);
      await dropImportParameters(trx, keyId);
      await applyKeyDecision(trx, key, keyId, decideDeleteKey(key, now), now);
      scope.setAdditionalEventData({
        destroyedKeyMaterialIds: key.keyMaterialIds,
        destroyedMaterialRows: destroyed,
        deletedAliases: aliases.map((a) => a.alias_name),
        retiredGrants,
      });
      return 'done';
    });
  }

  /**
   * Deletes imported material whose ValidTo has come (AWS's
   * DeleteExpiredKeyMaterial, recorded as the worker's request): its wrapped
   * rows are destroyed and KeyMaterialDeleted (reason EXPIRED) recorded; the
   * key goes to PendingImport when its current material expired. The next
   * expiry, if any, is scheduled in the same transaction. Not due: no-op.
   */
  async expireKeyMaterialIfDue(keyId: string, now: Date): Promise<ScheduledOutcome> {
    const current = await this.#runner.read((db) => readKeyProjection(db, keyId));
    if (!current || !isMaterialExpiryDue(current, now)) return 'not-due';
    return this.#asWorker('DeleteExpiredKeyMaterial', current, async (scope) => {
      const { trx } = scope;
      const key = await lockKeyForChange(trx, keyId);
      if (!key || !isMaterialExpiryDue(key, now)) return 'not-due';
      const decision = decideExpireKeyMaterial(key, now);
      const expired = decision.ok ? decision.events.map((e) => (e.data as { keyMaterialId: string }).keyMaterialId) : [];
      let destroyedMaterialRows = 0;
      for (const id of expired) destroyedMaterialRows += await destroyKeyMaterial(trx, keyId, id);
      const next = await applyKeyDecision(trx, key, keyId, decision, now);
      scope.setAdditionalEventData({ expiredKeyMaterialIds: expired, destroyedMaterialRows, keyState: next.keyState });
      const following = nextMaterialExpiry(next);
      if (following) await this.#jobs.keyMaterialExpiryScheduled(trx, keyId, following);
      return 'done';
    });
  }

  // ---------------------------------------------------------------- internals

  async #rotate(trx: Trx, key: KeyState, now: Date, decide: (keyMaterialId: string) => Decision<KeyEvent>): Promise<KeyState> {
    // Imported material rotates to the version imported for it, already wrapped in key_materials.
    if (key.origin === 'EXTERNAL') return applyKeyDecision(trx, key, key.keyId, decide(''), now);
    const { keyMaterialId, material } = generateKeyMaterial();
    const decision = decide(keyMaterialId);
    if (decision.ok && decision.events.length > 0) {
      try {
        await insertKeyMaterial(trx, {
          keyId: key.keyId,
          keyMaterialId,
          wrapped: wrapKeyMaterial(this.#rootKey, key.keyId, keyMaterialId, material),
          createdAt: now,
        });
      } finally {
        material.fill(0);
      }
    } else {
      material.fill(0);
    }
    return applyKeyDecision(trx, key, key.keyId, decision, now);
  }

  async #deleteAlias(trx: Trx, accountId: string, aliasName: string, now: Date): Promise<void> {
    const alias = foldAlias((await readStream(trx, aliasStreamId(accountId, aliasName))) as never);
    if (!alias || alias.deleted) return;
    await applyDecision(trx, aliasStream(accountId, aliasName), alias, decideDeleteAlias(alias, aliasArn(this.#region, accountId, aliasName)), now);
  }

  #asWorker(
    eventName: 'RotateKey' | 'DeleteKey' | 'DeleteExpiredKeyMaterial',
    key: KeyState,
    body: (scope: OperatorScope) => Promise<ScheduledOutcome>,
  ): Promise<ScheduledOutcome> {
    return this.#runner.runAsOperator(
      { requestId: uuidV7(), ...WORKER },
      key.accountId,
      { eventName, readOnly: false, requestParameters: { keyId: key.keyId } },
      async (scope) => {
        scope.addResource({ arn: key.arn, type: 'AWS::KMS::Key', accountId: key.accountId });
        const outcome = await body(scope);
        scope.setResponseElements({ outcome });
        return outcome;
      },
    );
  }

  /** A lifecycle change on a key named by the caller: resolve, lock, fold, then `body`. */
  #change(
    ctx: RequestContext,
    operation: KeyOperation,
    keyIdText: string,
    requestParameters: Record<string, unknown>,
    conditions: Record<string, number>,
    body: (scope: TransactionScope, key: KeyState) => Promise<void>,
  ): Promise<Record<string, never>> {
    return this.#runner.run(ctx, { eventName: operation, readOnly: false, requestParameters }, async (scope) => {
      const key = await lockAuthorizedKey(this.#changeDeps, scope, keyIdText, `kms:${operation}`, conditions);
      await body(scope, key);
      return {};
    });
  }

  async #read(scope: TransactionScope, keyIdText: string, operation: KeyOperation): Promise<KeyState> {
    const key = await readAuthorizedKey(this.#changeDeps, scope, keyIdText, `kms:${operation}`);
    const refused = checkKeyState(operation, key);
    if (refused) throw refused;
    return key;
  }
}
