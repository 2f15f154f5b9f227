import type { Transaction } from 'kysely';
import { acceptsAliasKeyId } from '../domain/alias.ts';
import type { Decision } from '../domain/errors.ts';
import { foldKey, keyStreamId, type KeyEvent, type KeyState, type Recorded } from '../domain/key.ts';
import { type KeyOperation } from '../domain/key-state-rules.ts';
import type { Database } from '../store/database.ts';
import { applyDecision, keyStream } from '../store/apply-decision.ts';
import { readStream, type RecordedEvent } from '../store/event-store.ts';
import { keyArn } from '../domain/arn.ts';
import { lockKeyExclusive, lockKeyRow } from '../store/key-locks.ts';
import { enforce, type AuthorizationRequest, type Authorizer } from './authorization.ts';
import type { RequestContext } from './context.ts';
import { keyNotFound, type KeyResolver } from './key-resolver.ts';
import type { TransactionScope } from './operation-scope.ts';
import type { RequestRunner } from './request-runner.ts';
import { readKeyProjection } from '../store/projections.ts';

type Trx = Transaction<Database>;

/** Folds a key's stream from the log: the authoritative state for decisions. */
export async function loadKey(trx: Trx, keyId: string): Promise<KeyState | null> {
  const events = await readStream(trx, keyStreamId(keyId));
  return foldKey(events as RecordedEvent[] as Recorded<KeyEvent>[]);
}

/**
 * Locks a key for a lifecycle change and folds its stream. The exclusive key
 * lock orders the change after every crypto operation in flight on the key and
 * before every later one (see key-locks.ts). Null when there is no such key (or
 * it was deleted).
 */
export async function lockKeyForChange(trx: Trx, keyId: string): Promise<KeyState | null> {
  await lockKeyExclusive(trx, keyId);
  if (!(await lockKeyRow(trx, keyId))) return null;
  const key = await loadKey(trx, keyId);
  return key && !key.deleted ? key : null;
}

/**
 * Records a decision about a key through applyDecision (store/apply-decision.ts):
 * appended with the version it was made on, folded and projected. Returns the
 * new state; a decision with no events on no key is a bug.
 */
export async function applyKeyDecision(trx: Trx, key: KeyState | null, keyId: string, decision: Decision<KeyEvent>, now: Date): Promise<KeyState> {
  const next = await applyDecision(trx, keyStream(keyId), key, decision, now);
  if (!next) throw new Error(`a decision on key ${keyId} recorded nothing for a key that does not exist`);
  return next;
}

/** What resolving, locking and authorizing a key for a change needs. */
export interface KeyChangeDeps {
  resolver: KeyResolver;
  authorizer: Authorizer;
  region: string;
}

/**
 * Resolves the key a caller named (by alias too where the operation `action`
 * names accepts one), reads it from its projection, records it as the
 * request's resource, and authorizes `action` on it (with kms:RequestAlias
 * when named by an alias). The start of every operation on one key.
 */
export async function readAuthorizedKey(
  deps: KeyChangeDeps,
  scope: TransactionScope,
  keyIdText: string,
  action: string,
  options: { conditions?: Record<string, string | number | boolean | undefined>; grantOperation?: string; createsAwsManagedKey?: boolean } = {},
): Promise<KeyState> {
  return (await readAndAuthorize(deps, scope, keyIdText, action, options)).key;
}

async function readAndAuthorize(
  deps: KeyChangeDeps,
  scope: TransactionScope,
  keyIdText: string,
  action: string,
  {
    createsAwsManagedKey,
    ...options
  }: { conditions?: Record<string, string | number | boolean | undefined>; grantOperation?: string; createsAwsManagedKey?: boolean },
): Promise<{ key: KeyState; request: Omit<AuthorizationRequest, 'caller' | 'sourceIp' | 'now' | 'key'> }> {
  const managed = createsAwsManagedKey ? { scope, action } : undefined;
  const { keyId, accountId, viaAlias } = acceptsAliasKeyId(action.slice('kms:'.length))
    ? await deps.resolver.resolve(scope.trx, scope.ctx.caller.accountId, keyIdText, 'keyId', managed)
    : { ...(await deps.resolver.resolveKeyOnly(scope.trx, scope.ctx.caller.accountId, keyIdText)), viaAlias: undefined };
  const key = await readKeyProjection(scope.trx, keyId);
  if (!key) throw keyNotFound(keyArn(deps.region, accountId, keyId));
  scope.addResource(keyResource(key));
  const request = { action, ...options, ...(viaAlias ? { requestAlias: viaAlias } : {}) };
  await enforce(deps.authorizer, scope, { ...request, key });
  return { key, request };
}

/**
 * The first steps of every lifecycle change a caller asks for: read and
 * authorize the key as readAuthorizedKey does — before queueing for its
 * exclusive lock, so a caller without the right cannot stall the key's traffic
 * — then lock it and fold its stream, authorizing again if the policy changed
 * while we waited.
 */
export async function lockAuthorizedKey(
  deps: KeyChangeDeps,
  scope: TransactionScope,
  keyIdText: string,
  action: string,
  conditions: Record<string, string | number | boolean | undefined> = {},
): Promise<KeyState> {
  const { key: current, request } = await readAndAuthorize(deps, scope, keyIdText, action, { conditions });
  const key = await lockKeyForChange(scope.trx, current.keyId);
  if (!key) throw keyNotFound(current.arn);
  if (key.policy !== current.policy) await enforce(deps.authorizer, scope, { ...request, key });
  return key;
}

/**
 * A lifecycle change a caller asks of one key, run audit-first through
 * `runner`: lock and authorize the key (lockAuthorizedKey, so crypto
 * operations and other lifecycle changes on the key are ordered around it),
 * decide on its folded state, append with the folded version, project. `after`
 * sees the new state in the same transaction (a job to schedule, the
 * response's elements).
 *
 * @example
 * await changeKey(runner, deps, ctx, 'DisableKey', input.keyId, {}, (key) => decideDisableKey(key));
 */
export function changeKey(
  runner: RequestRunner,
  deps: KeyChangeDeps,
  ctx: RequestContext,
  operation: KeyOperation,
  keyIdText: string,
  parameters: Record<string, unknown>,
  decide: (key: KeyState, scope: TransactionScope) => Decision<KeyEvent>,
  after?: (scope: TransactionScope, key: KeyState) => Promise<void> | void,
  conditions: Record<string, string | number | boolean | undefined> = {},
): Promise<Record<string, never>> {
  const requestParameters = { keyId: keyIdText, ...parameters };
  return runner.run(ctx, { eventName: operation, readOnly: false, requestParameters }, async (scope) => {
    const key = await lockAuthorizedKey(deps, scope, keyIdText, `kms:${operation}`, conditions);
    const next = await applyKeyDecision(scope.trx, key, key.keyId, decide(key, scope), scope.now);
    await after?.(scope, next);
    return {};
  });
}

/** A key as an audit record's resource. */
export const keyResource = (key: { arn: string; accountId: string }) => ({ arn: key.arn, type: 'AWS::KMS::Key', accountId: key.accountId });

/** What a change scheduled, for the job queue (enqueued in the same transaction). */
export interface JobScheduler {
  /** The key is due for deletion at `at`. */
  keyDeletionScheduled(trx: Trx, keyId: string, at: Date): Promise<void>;
  /** The key is due for automatic rotation at `at`. */
  keyRotationScheduled(trx: Trx, keyId: string, at: Date): Promise<void>;
  /** The key's imported material expires at `at` (its earliest ValidTo). */
  keyMaterialExpiryScheduled(trx: Trx, keyId: string, at: Date): Promise<void>;
}

/** Used where no queue is configured (tests, `migrate`): the worker's sweep finds due work from the projections anyway. */
export const noJobScheduler: JobScheduler = {
  keyDeletionScheduled: async () => {},
  keyRotationScheduled: async () => {},
  keyMaterialExpiryScheduled: async () => {},
};
