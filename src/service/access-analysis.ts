import { keyArn } from '../domain/arn.ts';
import { Validator } from '../domain/errors.ts';
import { grantOperationFor } from '../domain/grant.ts';
import { parsePolicy, principalsIn, type StatementAccess } from '../domain/policy/index.ts';
import type { ConditionBlock } from '../domain/policy/document.ts';
import { arnMatch, compileGlob } from '../domain/policy/match.ts';
import { readGrantsAllowing, rowToGrant } from '../store/grant-store.ts';
import { readAccountIdentityPolicies } from '../store/identity-store.ts';
import { readKeyProjection } from '../store/projections.ts';
import type { Database } from '../store/database.ts';
import type { KeyState } from '../domain/key.ts';
import type { Kysely, Transaction } from 'kysely';

type Executor = Kysely<Database> | Transaction<Database>;
import { enforce, type Authorizer } from './authorization.ts';
import type { RequestContext } from './context.ts';
import { keyNotFound, type KeyResolver } from './key-resolver.ts';
import type { RequestRunner } from './request-runner.ts';

/** One way in which the operation can be allowed (or a Deny that can stop it). */
export interface AccessEntry {
  effect: 'Allow' | 'Deny';
  /** anyone | account (every principal of it whose identity policy also allows) | principal | grant */
  kind: 'anyone' | 'account' | 'principal' | 'grant';
  /** The principal's ARN, the account root's ARN, or '*'. */
  principal: string;
  accountId: string | null;
  /** What else must hold: the statement's conditions, or the grant's constraints. */
  conditions: { operator: string; key: string; values: string[] }[];
  /** The key policy statement or the grant that gives (or denies) it. */
  source: { policy: string; sid: string | null; index: number } | { grantId: string };
  /** For kind account: the principals of the key's account whose identity policies allow it, with those statements. */
  viaIdentityPolicies?: { principal: string; policy: string; sid: string | null; index: number; conditions: AccessEntry['conditions'] }[];
}

const conditionsOf = (blocks: readonly ConditionBlock[]) => blocks.map((c) => ({ operator: c.operator, key: c.key, values: [...c.values] }));

/**
 * Access analysis: who can perform an operation on a key, under which
 * conditions, each with the statement or grant that allows it. Read from the
 * key policy, the identity policies of the key's own account's principals (for
 * statements that delegate to that account), and the key's grants. Conditions
 * are listed, not evaluated: they are the "under which conditions" of the answer.
 */
export class AccessAnalysis {
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

  keyAccess(ctx: RequestContext, input: { keyId: string; operation: string }): Promise<{ keyId: string; action: string; entries: AccessEntry[] }> {
    return this.#runner.run(
      ctx,
      { eventName: 'KeyAccess', readOnly: true, requestParameters: { keyId: input.keyId, operation: input.operation } },
      async (scope) => {
        const { trx } = scope;
        new Validator()
          .minLength('operation', input.operation, 1)
          .maxLength('operation', input.operation, 64)
          .pattern('operation', input.operation, /^[A-Za-z]+$/, '^[A-Za-z]+$')
          .throwIfAny();
        const { keyId, accountId } = await this.#resolver.resolve(trx, scope.ctx.caller.accountId, input.keyId);
        const key = await readKeyProjection(trx, keyId);
        if (!key) throw keyNotFound(keyArn(this.#region, accountId, keyId));
        scope.addResource({ arn: key.arn, type: 'AWS::KMS::Key', accountId: key.accountId });
        // Reading who may use a key is reading its policy.
        await enforce(this.#authorizer, scope, { action: 'kms:GetKeyPolicy', key });

        const action = `kms:${input.operation}`;
        const entries = await analyzeKeyAccess(trx, key, action);
        return { keyId: key.arn, action, entries };
      },
    );
  }
}

/**
 * Who can perform `action` (e.g. `kms:Decrypt`) on `key`: key policy statements
 * (Allow and Deny), delegation to the key's account through its principals'
 * identity policies, and the key's grants. Runs inside any transaction, with no
 * request context, so reports can use it for every key.
 *
 * @example
 * const entries = await analyzeKeyAccess(trx, key, 'kms:Decrypt');
 */
export async function analyzeKeyAccess(trx: Executor, key: Pick<KeyState, 'keyId' | 'arn' | 'accountId' | 'policy'>, action: string): Promise<AccessEntry[]> {
  const parsed = parsePolicy(key.policy, 'key');
  const entries: AccessEntry[] = [];
  if (parsed.ok) {
    for (const effect of ['Allow', 'Deny'] as const) {
      for (const st of principalsIn(parsed.policy, { action, effect })) {
        for (const p of st.principals) {
          if (p.kind !== 'anyone' && p.kind !== 'account' && p.kind !== 'principal') continue;
          const entry: AccessEntry = {
            effect,
            kind: p.kind,
            principal: p.kind === 'anyone' ? '*' : p.kind === 'account' ? `arn:aws:iam::${p.accountId}:root` : p.arn,
            accountId: p.kind === 'anyone' ? null : p.accountId,
            conditions: conditionsOf(st.conditions),
            source: { policy: 'default', sid: st.sid ?? null, index: st.index },
          };
          if (effect === 'Allow' && p.kind === 'account' && p.accountId === key.accountId) {
            entry.viaIdentityPolicies = await identityAllows(trx, key.accountId, action, key.arn);
          }
          entries.push(entry);
        }
      }
    }
  }
  const grantOperation = grantOperationFor(action);
  if (grantOperation) {
    const rows = await readGrantsAllowing(trx, key.keyId, grantOperation);
    for (const g of rows.map((r) => rowToGrant(r, key.arn))) {
      const c = g.constraints;
      const conditions = c?.encryptionContextEquals
        ? [
            {
              operator: 'EncryptionContextEquals',
              key: 'kms:EncryptionContext',
              values: Object.entries(c.encryptionContextEquals).map(([k, v]) => `${k}=${v}`),
            },
          ]
        : c?.encryptionContextSubset
          ? [
              {
                operator: 'EncryptionContextSubset',
                key: 'kms:EncryptionContext',
                values: Object.entries(c.encryptionContextSubset).map(([k, v]) => `${k}=${v}`),
              },
            ]
          : [];
      entries.push({
        effect: 'Allow',
        kind: 'grant',
        principal: g.granteePrincipal,
        accountId: g.granteePrincipal.split(':')[4] ?? null,
        conditions,
        source: { grantId: g.grantId },
      });
    }
  }
  return entries;
}

/** The principals of `accountId` whose identity policies have an Allow statement covering the action on this key. */
async function identityAllows(trx: Executor, accountId: string, action: string, arn: string): Promise<NonNullable<AccessEntry['viaIdentityPolicies']>> {
  const rows = await readAccountIdentityPolicies(trx, accountId);
  const found: NonNullable<AccessEntry['viaIdentityPolicies']> = [];
  for (const row of rows) {
    const parsed = parsePolicy(row.document, 'identity');
    if (!parsed.ok) continue;
    for (const st of principalsIn(parsed.policy, { action }).filter((s) => coversResource(s, arn))) {
      found.push({ principal: row.principal_arn, policy: row.policy_name, sid: st.sid ?? null, index: st.index, conditions: conditionsOf(st.conditions) });
    }
  }
  return found;
}

function coversResource(st: StatementAccess, arn: string): boolean {
  if (st.resources) return st.resources.some((r) => r === '*' || r.includes('${') || arnMatch(compileGlob(r), arn));
  return !(st.notResources ?? []).some((r) => r === '*' || arnMatch(compileGlob(r), arn));
}
