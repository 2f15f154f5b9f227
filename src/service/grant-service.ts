import { randomBytes } from 'node:crypto';
import type { Transaction } from 'kysely';
import { keyArn } from '../domain/arn.ts';
import { KmsError, Validator } from '../domain/errors.ts';
import {
  decideRetireGrant,
  decideCreateGrant,
  foldGrant,
  grantStreamId,
  retireRight,
  validateCreateGrant,
  grantOperationsRefusal,
  type CreateGrantRequest,
  type GrantEvent,
  type GrantState,
} from '../domain/grant.ts';
import { type KeyState, type Recorded } from '../domain/key.ts';
import { checkKeyState } from '../domain/key-state-rules.ts';
import type { Database } from '../store/database.ts';
import { applyDecision, grantStream } from '../store/apply-decision.ts';
import { readStream } from '../store/event-store.ts';
import {
  countKeyGrants,
  readGrantRow,
  readGrantRowByToken,
  readGrantsPage,
  readKeyGrantIds,
  readKeyGrantRow,
  readNamedGrants,
  readRetirableGrantsPage,
  rowToGrant,
} from '../store/grant-store.ts';
import { lockKeyExclusive, lockKeyShared } from '../store/key-locks.ts';
import { readKeyProjection } from '../store/projections.ts';
import { accessDenied, enforce, type Authorizer } from './authorization.ts';
import type { RequestContext } from './context.ts';
import { keyNotFound, type KeyResolver } from './key-resolver.ts';
import { decodeMarker, page, pageSize } from './pagination.ts';
import type { TransactionScope } from './operation-scope.ts';
import type { RequestRunner } from './request-runner.ts';

type Trx = Transaction<Database>;

export interface GrantListEntry {
  keyId: string;
  grantId: string;
  name: string | null;
  creationDate: Date;
  granteePrincipal: string;
  retiringPrincipal: string | null;
  issuingAccount: string;
  operations: string[];
  constraints: GrantState['constraints'];
}

const GRANT_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant. */
export class GrantService {
  readonly #runner: RequestRunner;
  readonly #resolver: KeyResolver;
  readonly #authorizer: Authorizer;
  readonly #region: string;

  constructor(deps: { runner: RequestRunner; resolver: KeyResolver; authorizer: Authorizer; region: string }) {
    this.#runner = deps.runner;
    this.#resolver = deps.resolver;
    this.#authorizer = deps.authorizer;
    this.#region = deps.region;
  }

  /**
   * CreateGrant. A repeated identical request (same name and parameters) returns
   * the same grant. A caller allowed only by a grant that includes CreateGrant
   * may create grants no broader than that one: some of its operations, and at
   * least its encryption context constraint (which a constrained grant may hold
   * with CreateGrant, DescribeKey and RetireGrant, as in AWS).
   */
  createGrant(
    ctx: RequestContext,
    input: CreateGrantRequest & { keyId: string; grantTokens?: string[] | null; dryRun?: boolean | null },
  ): Promise<{ grantId: string; grantToken: string }> {
    const requestParameters = {
      keyId: input.keyId,
      granteePrincipal: input.granteePrincipal,
      retiringPrincipal: input.retiringPrincipal ?? undefined,
      operations: input.operations,
      constraints: input.constraints ?? undefined,
      name: input.name ?? undefined,
      dryRun: input.dryRun ?? undefined,
    };
    return this.#runner.run(ctx, { eventName: 'CreateGrant', readOnly: false, requestParameters }, async (scope) => {
      const { trx, now } = scope;
      // The request's shape first; its operations against the key's type once the key is known.
      const invalid = validateCreateGrant(input, 'checked-later');
      if (invalid) throw invalid;
      const key = await this.#key(scope, input.keyId);
      const notForKey = grantOperationsRefusal(key, input.operations);
      if (notForKey) throw notForKey;
      // A grant with CreateGrant allows only grants no broader than itself: the
      // authorizer looks for one under which this request is (grantAllows).
      await enforce(this.#authorizer, scope, {
        action: 'kms:CreateGrant',
        key,
        grantOperation: 'CreateGrant',
        requestedGrant: input,
        conditions: {
          'kms:GrantOperations': input.operations,
          'kms:GranteePrincipal': input.granteePrincipal,
          ...(input.retiringPrincipal ? { 'kms:RetiringPrincipal': input.retiringPrincipal } : {}),
          'kms:GrantIsForAWSResource': false,
        },
      });
      const refused = checkKeyState('CreateGrant', key);
      if (refused) throw refused;
      if (input.dryRun) throw new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');

      const existing = await this.#identical(trx, key.keyId, input, `arn:aws:iam::${scope.ctx.caller.accountId}:root`);
      if (existing) {
        scope.setAdditionalEventData({ grantId: existing.grantId, existing: true });
        return { grantId: existing.grantId, grantToken: existing.grantToken };
      }
      const grantsOnKey = await countKeyGrants(trx, key.keyId);
      const grantId = randomBytes(32).toString('hex');
      const grantToken = randomBytes(32).toString('base64url');
      const decision = decideCreateGrant(grantsOnKey, {
        grantId,
        keyId: key.keyId,
        keyArn: key.arn,
        keyAccountId: key.accountId,
        name: input.name ?? null,
        granteePrincipal: input.granteePrincipal,
        retiringPrincipal: input.retiringPrincipal ?? null,
        operations: input.operations,
        constraints: input.constraints ?? null,
        issuingAccount: `arn:aws:iam::${scope.ctx.caller.accountId}:root`,
        grantToken,
      });
      await applyDecision(trx, grantStream(grantId), null, decision, now);
      scope.setAdditionalEventData({ grantId });
      scope.setResponseElements({ grantId });
      return { grantId, grantToken };
    });
  }

  /** ListGrants: the live grants of a key, optionally one grant or one grantee. */
  listGrants(
    ctx: RequestContext,
    input: { keyId: string; limit?: number | null; marker?: string | null; grantId?: string | null; granteePrincipal?: string | null },
  ): Promise<{ grants: GrantListEntry[]; nextMarker: string | null; truncated: boolean }> {
    const requestParameters = {
      keyId: input.keyId,
      limit: input.limit ?? undefined,
      marker: input.marker ?? undefined,
      grantId: input.grantId ?? undefined,
      granteePrincipal: input.granteePrincipal ?? undefined,
    };
    return this.#runner.run(ctx, { eventName: 'ListGrants', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      const v = new Validator();
      const size = pageSize(v, input.limit, 100, 50);
      v.throwIfAny();
      const after = decodeMarker(input.marker);
      const key = await this.#key(scope, input.keyId);
      await enforce(this.#authorizer, scope, { action: 'kms:ListGrants', key });
      const rows = await readGrantsPage(trx, key.keyId, { grantId: input.grantId, granteePrincipal: input.granteePrincipal, after, limit: size + 1 });
      const p = page(rows, size, (r) => r.grant_id);
      return { grants: p.items.map((r) => toListEntry(rowToGrant(r, key.arn))), nextMarker: p.nextMarker, truncated: p.truncated };
    });
  }

  /** ListRetirableGrants: grants whose retiring principal is the one named (the caller's account's keys or others'). */
  listRetirableGrants(
    ctx: RequestContext,
    input: { retiringPrincipal: string; limit?: number | null; marker?: string | null },
  ): Promise<{ grants: GrantListEntry[]; nextMarker: string | null; truncated: boolean }> {
    const requestParameters = { retiringPrincipal: input.retiringPrincipal, limit: input.limit ?? undefined, marker: input.marker ?? undefined };
    return this.#runner.run(ctx, { eventName: 'ListRetirableGrants', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      const v = new Validator().minLength('retiringPrincipal', input.retiringPrincipal, 1).maxLength('retiringPrincipal', input.retiringPrincipal, 256);
      const size = pageSize(v, input.limit, 100, 50);
      v.throwIfAny();
      await enforce(this.#authorizer, scope, { action: 'kms:ListRetirableGrants' });
      // AWS: the retiring principal must be in the caller's account; another
      // account's grants are not the caller's to read.
      const principalAccount = accountOfPrincipal(input.retiringPrincipal);
      if (principalAccount !== undefined && principalAccount !== scope.ctx.caller.accountId) {
        throw new KmsError(
          'AccessDeniedException',
          `User: ${scope.ctx.caller.principalArn} is not authorized to list the grants retirable ` +
            `by ${input.retiringPrincipal}: it is not a principal of account ${scope.ctx.caller.accountId}.`,
        );
      }
      const after = decodeMarker(input.marker);
      // A principal of no account (a service principal) may retire grants of any account: show only the caller's keys'.
      const keyAccountId = principalAccount === undefined ? scope.ctx.caller.accountId : undefined;
      const rows = await readRetirableGrantsPage(trx, input.retiringPrincipal, { keyAccountId, after, limit: size + 1 });
      const p = page(rows, size, (r) => r.grant_id);
      return { grants: p.items.map((r) => toListEntry(rowToGrant(r, r.arn))), nextMarker: p.nextMarker, truncated: p.truncated };
    });
  }

  /**
   * RetireGrant, by grant token or by key id + grant id. Not governed by policy:
   * the retiring principal, the grantee when RetireGrant is among the grant's
   * operations, or the account that created it may retire a grant.
   */
  retireGrant(ctx: RequestContext, input: { grantToken?: string | null; keyId?: string | null; grantId?: string | null }): Promise<Record<string, never>> {
    const requestParameters = { keyId: input.keyId ?? undefined, grantId: input.grantId ?? undefined, grantToken: input.grantToken ? '[given]' : undefined };
    return this.#runner.run(ctx, { eventName: 'RetireGrant', readOnly: false, requestParameters }, async (scope) => {
      const { trx, now } = scope;
      let row;
      let named: KeyState | undefined;
      if (input.grantToken != null) {
        if (!GRANT_TOKEN.test(input.grantToken)) throw new KmsError('InvalidGrantTokenException', 'The grant token is not valid.');
        row = await readGrantRowByToken(trx, input.grantToken);
      } else if (input.keyId != null && input.grantId != null) {
        named = await this.#key(scope, input.keyId, 'none');
        row = await readKeyGrantRow(trx, named.keyId, input.grantId);
      } else {
        throw new KmsError('ValidationException', 'Specify the grant token, or both the key id and the grant id.');
      }
      const grant = row ? rowToGrant(row, keyArn(this.#region, row.key_account_id, row.key_id)) : null;
      const right = grant ? retireRight(grant, scope.ctx.caller) : undefined;
      if (!grant || !right) {
        if (named && named.accountId !== scope.ctx.caller.accountId) {
          // Another account's key, and nothing here for this caller: as if the key did not exist.
          scope.withdrawResource(named.arn);
          throw keyNotFound(named.arn);
        }
        throw new KmsError('NotFoundException', 'Grant not found.');
      }
      if (right === 'issuingAccount' && scope.ctx.caller.principalType !== 'root') {
        // A principal of the issuing account retires only with kms:RetireGrant from its identity policies.
        const evidence = await this.#authorizer.authorize(trx, {
          caller: scope.ctx.caller,
          sourceIp: scope.ctx.sourceIp,
          now,
          action: 'kms:RetireGrant',
          resourceArn: grant.keyArn,
        });
        scope.recordAuthorization(evidence);
        if (evidence.decision !== 'allow') throw accessDenied(scope.ctx.caller, evidence, grant.keyArn);
      }
      scope.setAdditionalEventData({ grantId: grant.grantId });
      await this.#retire(scope, grant, 'RetireGrant');
      return {};
    });
  }

  /** RevokeGrant: governed by kms:RevokeGrant on the key. */
  revokeGrant(ctx: RequestContext, input: { keyId: string; grantId: string }): Promise<Record<string, never>> {
    return this.#runner.run(
      ctx,
      { eventName: 'RevokeGrant', readOnly: false, requestParameters: { keyId: input.keyId, grantId: input.grantId } },
      async (scope) => {
        const { trx } = scope;
        const key = await this.#key(scope, input.keyId, 'none');
        await enforce(this.#authorizer, scope, { action: 'kms:RevokeGrant', key });
        const grant = await this.#grant(trx, input.grantId, key.arn);
        if (!grant || grant.keyId !== key.keyId) throw new KmsError('NotFoundException', 'Grant not found.');
        scope.setAdditionalEventData({ grantId: grant.grantId });
        await this.#retire(scope, grant, 'RevokeGrant', async () => {
          // As lockAuthorizedKey does for a lifecycle change: the key may have gone, or its policy changed, while we waited.
          const locked = await readKeyProjection(trx, key.keyId);
          if (!locked) throw keyNotFound(key.arn);
          if (locked.policy !== key.policy) await enforce(this.#authorizer, scope, { action: 'kms:RevokeGrant', key: locked });
        });
        return {};
      },
    );
  }

  /**
   * Retires a grant, once the caller's right to has been checked. First takes
   * the key's exclusive lock: a retirement takes a permission away, so like
   * DisableKey it must wait for the crypto operations in flight on the key,
   * and every group-commit batch after it must see the key's fence moved
   * (src/store/fences.ts). Under a shared lock, a batch could read the fence
   * before the retirement committed and commit after it: a Decrypt answered on
   * a grant already revoked. The lock comes after the checks, as for every
   * lifecycle change (lockAuthorizedKey), so a caller without the right cannot
   * stall the key's traffic; `recheck` then runs under it. The grant's stream
   * is folded under the lock, so one retired meanwhile is NotFoundException.
   */
  async #retire(scope: TransactionScope, grant: GrantState, via: 'RetireGrant' | 'RevokeGrant', recheck?: () => Promise<void>): Promise<void> {
    const { trx, now } = scope;
    await lockKeyExclusive(trx, grant.keyId);
    await recheck?.();
    const current = foldGrant((await readStream(trx, grantStreamId(grant.grantId))) as Recorded<GrantEvent>[]);
    await applyDecision(trx, grantStream(grant.grantId), current, decideRetireGrant(current, scope.ctx.caller.principalArn, via), now);
  }

  async #grant(trx: Trx, grantId: string, arn: string): Promise<GrantState | null> {
    const row = await readGrantRow(trx, grantId);
    return row ? rowToGrant(row, arn) : null;
  }

  async #identical(trx: Trx, keyId: string, input: CreateGrantRequest, issuingAccount: string): Promise<GrantState | null> {
    if (!input.name) return null;
    const rows = await readNamedGrants(trx, keyId, input.name);
    const same = rows
      .map((r) => rowToGrant(r, ''))
      .find(
        (g) =>
          g.issuingAccount === issuingAccount &&
          g.granteePrincipal === input.granteePrincipal &&
          g.retiringPrincipal === (input.retiringPrincipal ?? null) &&
          JSON.stringify([...g.operations].sort()) === JSON.stringify([...input.operations].sort()) &&
          JSON.stringify(g.constraints) === JSON.stringify(input.constraints ?? null),
      );
    return same ?? null;
  }

  /**
   * The key a grant operation names. Locked shared to read or add grants
   * (ordered against the key's deletion, which retires them); not locked here
   * to retire one, which takes the exclusive lock later (#retire): a shared
   * lock held until then would deadlock two retirements on the key.
   */
  async #key(scope: TransactionScope, keyIdText: string, lock: 'shared' | 'none' = 'shared'): Promise<KeyState> {
    const { trx } = scope;
    // Grant operations name a key by key id or key ARN only, as in AWS.
    const { keyId, accountId } = await this.#resolver.resolveKeyOnly(trx, scope.ctx.caller.accountId, keyIdText);
    if (lock === 'shared') await lockKeyShared(trx, [keyId]);
    const key = await readKeyProjection(trx, keyId);
    if (!key) throw keyNotFound(keyArn(this.#region, accountId, keyId));
    scope.addResource({ arn: key.arn, type: 'AWS::KMS::Key', accountId: key.accountId });
    return key;
  }
}

/** Retires every live grant of a key (its deletion). */
export async function retireAllGrants(trx: Trx, keyId: string, by: string, now: Date): Promise<string[]> {
  const grantIds = await readKeyGrantIds(trx, keyId);
  for (const grantId of grantIds) {
    const current = foldGrant((await readStream(trx, grantStreamId(grantId))) as Recorded<GrantEvent>[]);
    const decision = decideRetireGrant(current, by, 'KeyDeleted');
    if (!decision.ok) continue;
    await applyDecision(trx, grantStream(grantId), current, decision, now);
  }
  return grantIds;
}

/** A grant as ListGrants shows it (never its token). */
export function toListEntry(g: GrantState): GrantListEntry {
  return {
    keyId: g.keyArn,
    grantId: g.grantId,
    name: g.name,
    creationDate: g.creationDate,
    granteePrincipal: g.granteePrincipal,
    retiringPrincipal: g.retiringPrincipal,
    issuingAccount: g.issuingAccount,
    operations: g.operations,
    constraints: g.constraints,
  };
}

/** The account a principal names: an IAM or STS ARN's account, or a bare account id; undefined for a service principal. */
function accountOfPrincipal(principal: string): string | undefined {
  return /^arn:aws:(?:iam|sts)::(\d{12}):/.exec(principal)?.[1] ?? (/^\d{12}$/.test(principal) ? principal : undefined);
}
