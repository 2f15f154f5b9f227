/**
 * Time travel over the log: a key as it was at an instant (its stream folded up
 * to then, never today's projection), its lifecycle history, and an alias's
 * targets over time. Pure reads of the key and alias streams, so they work for
 * deleted keys too: deletion destroys material, never history. keyAsOf and
 * keyHistory are the audited requests over them (TimeTravelService).
 */
import type { Transaction } from 'kysely';
import { foldGrant, type GrantEvent, type GrantState } from '../../domain/grant.ts';
import { aliasStreamId, evolveAlias, foldAlias, type AliasEvent, type AliasState } from '../../domain/alias.ts';
import { aliasArn, keyArn, parseKeyReference } from '../../domain/arn.ts';
import { KmsError, Validator } from '../../domain/errors.ts';
import { foldKey, isEnabled, keyStreamId, type ImportedMaterial, type KeyEvent, type KeyState, type Recorded } from '../../domain/key.ts';
import { readAliasStreamsOfKey, readAuditRecordsOfTransactions, readGrantStreamsOfKey, type AuditRow, type KeyMatch } from '../../store/audit-queries.ts';
import type { Database } from '../../store/database.ts';
import { readStream, type RecordedEvent } from '../../store/event-store.ts';
import { enforce, type Authorizer } from '../authorization.ts';
import type { RequestContext } from '../context.ts';
import { toListEntry, type GrantListEntry } from '../grant-service.ts';
import { keyNotFound } from '../key-resolver.ts';
import { toKeyMetadata, type KeyMetadata } from '../../domain/key-metadata.ts';
import type { RequestRunner } from '../request-runner.ts';
import { AUDIT_READ_ACTION } from './records.ts';

type Trx = Transaction<Database>;

/** A key as it was at `asOf`. */
export interface KeyAsOf {
  asOf: Date;
  state: KeyState;
  /** Alias names pointing at the key at that instant, sorted. */
  aliases: string[];
  /** When the last event folded into `state` was recorded. */
  lastChangedAt: Date;
  /** The grants live on the key at that instant, each folded from its stream up to then. */
  grants: GrantState[];
}

/** One event of a key's history (its own stream, and the aliases that pointed at it). */
export interface KeyHistoryEntry {
  streamId: string;
  streamVersion: bigint;
  globalPosition: bigint;
  type: string;
  recordedAt: Date;
  /** The event's data, with any field that could hold a secret removed. */
  data: Record<string, unknown>;
  /** The audit record of the request that made the change (same transaction), when there is one. */
  request: AuditRow | null;
}

export interface KeyAsOfView {
  asOf: Date;
  keyMetadata: KeyMetadata;
  deleted: boolean;
  aliases: string[];
  policy: string;
  tags: { tagKey: string; tagValue: string }[];
  rotation: {
    enabled: boolean;
    periodInDays: number | null;
    nextRotationDate: Date | null;
    onDemandRotations: number;
    keyMaterialIds: string[];
  };
  /** Origin EXTERNAL: every imported material version then, with its import state and expiry. */
  importedMaterials: ImportedMaterial[];
  version: bigint;
  lastChangedAt: Date;
  /** Grants live on the key then (their tokens are never shown). */
  grants: GrantListEntry[];
}

/**
 * The audited time-travel requests: a key as of an instant, and its history.
 *
 * @example
 * const timeTravel = new TimeTravelService({ runner, region: 'us-east-1', authorizer });
 * await timeTravel.keyAsOf(ctx, { keyId: 'alias/orders', asOf: new Date('2026-03-01T00:00:00Z') });
 */
export class TimeTravelService {
  readonly #runner: RequestRunner;
  readonly #region: string;
  readonly #authorizer: Authorizer;

  constructor(deps: { runner: RequestRunner; region: string; authorizer: Authorizer }) {
    this.#runner = deps.runner;
    this.#region = deps.region;
    this.#authorizer = deps.authorizer;
  }

  /**
   * keyAsOf: the key's metadata, aliases, policy, tags and rotation status as
   * they were at `asOf`, folded from its stream (deleted keys too). An alias is
   * resolved as it was at `asOf`.
   *
   * @example
   * const then = await audit.keyAsOf(ctx, { keyId: 'alias/orders', asOf: new Date('2026-03-01T00:00:00Z') });
   * then.policy; // the policy in force on 1 March
   */
  keyAsOf(ctx: RequestContext, input: { keyId: string; asOf: Date }): Promise<KeyAsOfView> {
    const requestParameters = { keyId: input.keyId, asOf: input.asOf.toISOString() };
    return this.#runner.run(ctx, { eventName: 'DescribeKeyAsOf', readOnly: true, requestParameters }, async (scope) => {
      const { trx } = scope;
      await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
      const at = await keyAsOf(trx, this.#region, scope.ctx.caller.accountId, input.keyId, input.asOf);
      scope.addResource({ arn: at.state.arn, type: 'AWS::KMS::Key', accountId: at.state.accountId });
      return keyAsOfView(at.asOf, at.state, at.aliases, at.lastChangedAt, at.grants);
    });
  }

  /**
   * keyHistory: the key's lifecycle events, oldest first, with alias moves and the request behind each.
   *
   * @example
   * const { entries } = await audit.keyHistory(ctx, { keyId: 'alias/orders' });
   * entries.map((e) => [e.type, e.request?.data.eventName]);
   */
  keyHistory(ctx: RequestContext, input: { keyId: string }): Promise<{ keyId: string; arn: string; entries: KeyHistoryEntry[] }> {
    return this.#runner.run(ctx, { eventName: 'ListKeyHistory', readOnly: true, requestParameters: { keyId: input.keyId } }, async (scope) => {
      const { trx } = scope;
      await enforce(this.#authorizer, scope, { action: AUDIT_READ_ACTION });
      const history = await keyHistory(trx, this.#region, scope.ctx.caller.accountId, input.keyId);
      scope.addResource({ arn: history.arn, type: 'AWS::KMS::Key', accountId: scope.ctx.caller.accountId });
      return history;
    });
  }
}

function keyAsOfView(asOf: Date, state: KeyState, aliases: string[], lastChangedAt: Date, grants: GrantState[]): KeyAsOfView {
  const metadata = toKeyMetadata(state);
  return {
    asOf,
    keyMetadata: { ...metadata, enabled: isEnabled(state) && !state.deleted },
    deleted: state.deleted,
    aliases,
    policy: state.policy,
    tags: state.tags,
    rotation: {
      enabled: state.rotationEnabled,
      periodInDays: state.rotationPeriodInDays,
      nextRotationDate: state.nextRotationDate,
      onDemandRotations: state.onDemandRotations,
      keyMaterialIds: state.keyMaterialIds,
    },
    importedMaterials: state.importedMaterials,
    version: state.version,
    grants: grants.map(toListEntry),
    lastChangedAt,
  };
}

const asKeyEvents = (events: RecordedEvent[]) => events as RecordedEvent[] as Recorded<KeyEvent>[];
const asAliasEvents = (events: RecordedEvent[]) => events as RecordedEvent[] as Recorded<AliasEvent>[];

/**
 * Resolves a key reference as of `asOf` (an alias to the key it pointed at then)
 * to a key id of `accountId`. Another account's key is NotFoundException, as a
 * missing one is, so its existence is not revealed.
 */
export async function resolveKeyAsOf(trx: Trx, region: string, accountId: string, text: string, asOf: Date | null): Promise<string> {
  new Validator().minLength('keyId', text, 1).maxLength('keyId', text, 2048).throwIfAny();
  const ref = parseKeyReference(text);
  if (!ref) throw new KmsError('NotFoundException', `Invalid keyId '${text}'`);
  const foreign = 'region' in ref && (ref.region !== region || ref.accountId !== accountId);
  switch (ref.kind) {
    case 'keyId':
    case 'keyArn':
      if (foreign) throw keyNotFound(text);
      return ref.keyId;
    case 'aliasName':
    case 'aliasArn': {
      const arn = ref.kind === 'aliasArn' ? text : aliasArn(region, accountId, ref.aliasName);
      const notFound = new KmsError('NotFoundException', `Alias ${arn} is not found${asOf ? ` as of ${asOf.toISOString()}` : ''}.`);
      if (foreign) throw notFound;
      const events = await readStream(trx, aliasStreamId(accountId, ref.aliasName), asOf ? { asOf } : {});
      const alias = foldAlias(asAliasEvents(events));
      if (!alias || alias.deleted) throw notFound;
      return alias.targetKeyId;
    }
  }
}

/**
 * The key's state at `asOf`: its stream folded up to that instant (events
 * recorded at or before it), with the aliases that pointed at it then.
 *
 * @example
 * const { state } = await keyAsOf(trx, 'us-east-1', accountId, 'alias/orders', new Date('2026-03-01T00:00:00Z'));
 * state.policy // the policy in force on 1 March
 */
export async function keyAsOf(trx: Trx, region: string, accountId: string, keyText: string, asOf: Date): Promise<KeyAsOf> {
  const keyId = await resolveKeyAsOf(trx, region, accountId, keyText, asOf);
  const events = await readStream(trx, keyStreamId(keyId), { asOf });
  const state = foldKey(asKeyEvents(events));
  if (!state || state.accountId !== accountId) throw keyNotFound(keyArn(region, accountId, keyId));
  const aliases: string[] = [];
  for (const streamId of await readAliasStreamsOfKey(trx, accountId, keyId)) {
    const alias = foldAlias(asAliasEvents(await readStream(trx, streamId, { asOf })));
    if (alias && !alias.deleted && alias.targetKeyId === keyId) aliases.push(alias.aliasName);
  }
  aliases.sort();
  const grants: GrantState[] = [];
  for (const streamId of await readGrantStreamsOfKey(trx, keyId, asOf)) {
    const grant = foldGrant((await readStream(trx, streamId, { asOf })) as Recorded<GrantEvent>[]);
    if (grant && !grant.retired) grants.push(grant);
  }
  grants.sort((a, b) => a.creationDate.getTime() - b.creationDate.getTime() || (a.grantId < b.grantId ? -1 : 1));
  return { asOf, state, aliases, lastChangedAt: events.at(-1)!.recordedAt, grants };
}

/**
 * Every lifecycle event of the key, oldest first, with the alias events that
 * pointed an alias at it or away from it, and the request behind each.
 */
export async function keyHistory(
  trx: Trx,
  region: string,
  accountId: string,
  keyText: string,
): Promise<{ keyId: string; arn: string; entries: KeyHistoryEntry[] }> {
  const keyId = await resolveKeyAsOf(trx, region, accountId, keyText, null);
  const keyEvents = await readStream(trx, keyStreamId(keyId));
  const state = foldKey(asKeyEvents(keyEvents));
  if (!state || state.accountId !== accountId) throw keyNotFound(keyArn(region, accountId, keyId));
  const aliasEvents: RecordedEvent[] = [];
  for (const streamId of await readAliasStreamsOfKey(trx, accountId, keyId)) {
    for (const e of await readStream(trx, streamId)) {
      const d = e.data as { targetKeyId?: string; previousTargetKeyId?: string };
      if (d.targetKeyId === keyId || d.previousTargetKeyId === keyId) aliasEvents.push(e);
    }
  }
  const all = [...keyEvents, ...aliasEvents].sort((a, b) => (a.globalPosition < b.globalPosition ? -1 : 1));
  const requests = await readAuditRecordsOfTransactions(trx, [...new Set(all.map((e) => e.transactionId))]);
  const entries = all.map((e) => {
    const sameTransaction = requests.filter((r) => r.transactionId === e.transactionId);
    // A transaction with several requests (a worker sweep): the one naming this key.
    const request =
      sameTransaction.length <= 1
        ? (sameTransaction[0] ?? null)
        : (sameTransaction.find((r) => r.data.resources.some((res) => res.arn === state.arn)) ?? sameTransaction[0]!);
    return {
      streamId: e.streamId,
      streamVersion: e.streamVersion,
      globalPosition: e.globalPosition,
      type: e.type,
      recordedAt: e.recordedAt,
      data: withoutSecrets(e.data) as Record<string, unknown>,
      request,
    };
  });
  return { keyId, arn: state.arn, entries };
}

/**
 * The keys an alias pointed at over the log, as windows of log positions: what
 * "the key alias/x named" means for a record at a given place in the log.
 * Empty when the alias never existed (or belongs to another account).
 */
export async function aliasTargetsOverTime(trx: Trx, region: string, accountId: string, aliasName: string): Promise<KeyMatch[]> {
  const events = await readStream(trx, aliasStreamId(accountId, aliasName));
  const windows: KeyMatch[] = [];
  let open: { keyId: string; after: bigint } | null = null;
  let state: AliasState | null = null;
  for (const e of events) {
    state = evolveAlias(state, e as RecordedEvent as Recorded<AliasEvent>);
    if (open) windows.push({ arn: keyArn(region, accountId, open.keyId), afterPosition: open.after, beforePosition: e.globalPosition });
    open = state.deleted ? null : { keyId: state.targetKeyId, after: e.globalPosition };
  }
  if (open) windows.push({ arn: keyArn(region, accountId, open.keyId), afterPosition: open.after });
  return windows;
}

const SECRET_FIELD = /plaintext|secret|password|wrapped|blob|token|privatekey/i;

/** A copy of an event's data without fields whose names say they could hold a secret (events should have none). */
export function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => !SECRET_FIELD.test(k))
        .map(([k, v]) => [k, withoutSecrets(v)]),
    );
  }
  return value;
}
