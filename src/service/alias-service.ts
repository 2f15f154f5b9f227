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
import { KmsError, Validator, type Decision } from '../domain/errors.ts';
import { type KeyState, type Recorded } from '../domain/key.ts';
import { checkKeyState, type KeyOperation } from '../domain/key-state-rules.ts';
import { aliasStream, applyDecision } from '../store/apply-decision.ts';
import { readStream } from '../store/event-store.ts';
import { lockKeyShared } from '../store/key-locks.ts';
import { countKeyAliases, readAliasesPage, readKeyProjection } from '../store/projections.ts';
import { enforce, type Authorizer } from './authorization.ts';
import type { RequestContext } from './context.ts';
import { keyResource } from './key-changes.ts';
import { KeyResolver, keyNotFound } from './key-resolver.ts';
import { PREDEFINED_AWS_ALIASES } from '../domain/aws-managed-key.ts';
import { decodeMarker, page, pageSize } from './pagination.ts';
import type { TransactionScope } from './operation-scope.ts';
import type { RequestRunner } from './request-runner.ts';

/** A predefined `alias/aws/` alias whose key does not exist yet has no target and no dates, as AWS lists it. */
export interface AliasListEntry {
  aliasName: string;
  aliasArn: string;
  targetKeyId: string | null;
  creationDate: Date | null;
  lastUpdatedDate: Date | null;
}

/**
 * Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases. An alias is
 * its own stream (`alias-<account>-<name>`), decided and applied like a key's
 * changes; naming or moving it also needs permission on the keys involved.
 */
export class AliasService {
  readonly #runner: RequestRunner;
  readonly #region: string;
  readonly #resolver: KeyResolver;
  readonly #authorizer: Authorizer;

  constructor(deps: { runner: RequestRunner; region: string; resolver: KeyResolver; authorizer: Authorizer }) {
    this.#runner = deps.runner;
    this.#region = deps.region;
    this.#resolver = deps.resolver;
    this.#authorizer = deps.authorizer;
  }

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
    return this.#runner.run(ctx, { eventName: 'ListAliases', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      await enforce(this.#authorizer, scope, { action: 'kms:ListAliases' });
      const v = new Validator();
      const size = pageSize(v, input.limit, 100, 50);
      v.throwIfAny();
      const after = decodeMarker(input.marker);
      // By key id or key ARN only, as in AWS.
      const targetKeyId = input.keyId == null ? undefined : (await this.#readOwnKey(scope, input.keyId)).keyId;
      // AWS lists its predefined aliases in every account, with no TargetKeyId until their key exists.
      const rows = await readAliasesPage(trx, scope.ctx.caller.accountId, { targetKeyId, after, limit: size + 1, predefined: PREDEFINED_AWS_ALIASES });
      const p = page(rows, size, (r) => r.alias_name);
      return {
        aliases: p.items.map((r) => ({
          aliasName: r.alias_name,
          aliasArn: aliasArn(this.#region, scope.ctx.caller.accountId, r.alias_name),
          targetKeyId: r.target_key_id,
          creationDate: r.creation_date,
          lastUpdatedDate: r.last_updated_date,
        })),
        nextMarker: p.nextMarker,
        truncated: p.truncated,
      };
    });
  }

  async #aliasChange(
    ctx: RequestContext,
    operation: 'CreateAlias' | 'UpdateAlias' | 'DeleteAlias',
    input: { aliasName: string; targetKeyId?: string },
    decide: (alias: AliasState | null, target: KeyState | null, aliasArn: string, aliasesOnTarget: number) => Decision<AliasEvent>,
  ): Promise<Record<string, never>> {
    const requestParameters = { aliasName: input.aliasName, targetKeyId: input.targetKeyId };
    return this.#runner.run(ctx, { eventName: operation, readOnly: false, requestParameters }, async (scope) => {
      const { trx, now } = scope;
      const invalidName = validateAliasName(input.aliasName);
      if (invalidName) throw invalidName;
      const accountId = scope.ctx.caller.accountId;
      const arn = aliasArn(this.#region, accountId, input.aliasName);
      scope.addResource({ arn, type: 'AWS::KMS::Alias', accountId });
      // As in AWS, the alias itself is a resource of identity policies (an explicit Deny on alias/prod-* holds),
      // besides the permission on the key(s) checked below.
      await enforce(this.#authorizer, scope, { action: `kms:${operation}`, resourceArn: arn });

      let target: KeyState | null = null;
      let aliasesOnTarget = 0;
      if (input.targetKeyId !== undefined) {
        new Validator().minLength('targetKeyId', input.targetKeyId, 1).maxLength('targetKeyId', input.targetKeyId, 2048).throwIfAny();
        const ref = parseKeyReference(input.targetKeyId);
        if (ref?.kind === 'aliasName' || ref?.kind === 'aliasArn') {
          throw new KmsError('ValidationException', 'Aliases must refer to keys. Not aliases');
        }
        const resolved = await this.#resolver.resolve(trx, scope.ctx.caller.accountId, input.targetKeyId, 'targetKeyId');
        const keyId = resolved.keyId;
        // An alias and its key are always in the same account.
        if (resolved.accountId !== accountId) throw keyNotFound(input.targetKeyId);
        // The target's shared lock: it cannot be scheduled for deletion under us.
        await lockKeyShared(trx, [keyId]);
        target = await readKeyProjection(trx, keyId);
        if (!target) throw keyNotFound(keyArn(this.#region, accountId, keyId));
        scope.addResource(keyResource(target));
        await enforce(this.#authorizer, scope, { action: `kms:${operation}`, key: target });
        const refused = checkKeyState(operation as KeyOperation, target);
        if (refused) throw refused;
        aliasesOnTarget = await countKeyAliases(trx, keyId);
      }

      const alias = foldAlias((await readStream(trx, aliasStreamId(accountId, input.aliasName))) as Recorded<AliasEvent>[]);
      // Moving or deleting an alias also needs permission on the key it points at now.
      if (operation !== 'CreateAlias' && alias && !alias.deleted) {
        const current = await readKeyProjection(trx, alias.targetKeyId);
        if (current) await enforce(this.#authorizer, scope, { action: `kms:${operation}`, key: current });
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

  /** Resolves and reads a key of the caller's own account, for a request already authorized (ListAliases' filter). */
  async #readOwnKey(scope: TransactionScope, text: string): Promise<KeyState> {
    const accountId = scope.ctx.caller.accountId;
    const resolved = await this.#resolver.resolveKeyOnly(scope.trx, accountId, text);
    const key = await readKeyProjection(scope.trx, resolved.keyId);
    if (!key || key.accountId !== accountId) throw keyNotFound(key?.arn ?? keyArn(this.#region, resolved.accountId, resolved.keyId));
    scope.addResource(keyResource(key));
    return key;
  }
}
