/**
 * The one way a state change is written: a pure decision (`decide*` in
 * src/domain) is appended to its stream with the version it was decided on,
 * folded into the new state with the domain's `evolve`, and projected, all in
 * the caller's transaction. Emmett's CommandHandler({ evolve, initialState })
 * is the model; the stream descriptors below say, per kind of stream, where it
 * lives, how it evolves and where it is projected.
 */
import type { Transaction } from 'kysely';
import { aliasStreamId, evolveAlias, type AliasEvent, type AliasState } from '../domain/alias.ts';
import type { Decision } from '../domain/errors.ts';
import { evolveGrant, grantStreamId, type GrantEvent, type GrantState } from '../domain/grant.ts';
import { evolveKey, keyStreamId, type KeyEvent, type KeyState, type Recorded } from '../domain/key.ts';
import type { Database } from './database.ts';
import { appendToStream } from './event-store.ts';
import { writeGrantProjection } from './grant-store.ts';
import { writeAliasProjection, writeKeyProjection } from './projections.ts';

type Trx = Transaction<Database>;

/** A stream whose state is a fold of its events (`evolve`) and is kept in a projection (`project`). */
export interface DecisionStream<S extends { version: bigint }, E extends { type: string; data: unknown }> {
  streamId: string;
  evolve: (state: S | null, event: Recorded<E>) => S;
  project: (trx: Trx, state: S) => Promise<void>;
}

/**
 * A key's stream (`key-<uuid>`), projected into `keys` and `key_tags`.
 *
 * @example
 * await applyDecision(trx, keyStream(keyId), key, decideEnableKey(key), now);
 */
export const keyStream = (keyId: string): DecisionStream<KeyState, KeyEvent> => ({
  streamId: keyStreamId(keyId),
  evolve: evolveKey,
  project: writeKeyProjection,
});

/**
 * An alias's stream (`alias-<account>-<name>`), projected into `aliases`.
 *
 * @example
 * await applyDecision(trx, aliasStream(accountId, 'alias/orders'), alias, decideDeleteAlias(alias, aliasArn), now); // the alias, deleted: true
 */
export const aliasStream = (accountId: string, aliasName: string): DecisionStream<AliasState, AliasEvent> => ({
  streamId: aliasStreamId(accountId, aliasName),
  evolve: evolveAlias,
  project: writeAliasProjection,
});

/**
 * A grant's stream (`grant-<id>`), projected into `grants` while the grant lives.
 *
 * @example
 * await applyDecision(trx, grantStream(grant.grantId), grant, decideRetireGrant(grant, callerArn, 'RevokeGrant'), now); // the grant, retired: true
 */
export const grantStream = (grantId: string): DecisionStream<GrantState, GrantEvent> => ({
  streamId: grantStreamId(grantId),
  evolve: evolveGrant,
  project: writeGrantProjection,
});

/**
 * Records a decision taken on `state` (the fold of `stream`, null for a new
 * stream): a refusal is thrown; no events leave the state as it is; otherwise
 * the events are appended expecting `state`'s version (a concurrent change is a
 * StreamVersionConflictError, which the request runner retries), folded, and
 * the new state projected. Returns the new state.
 *
 * @example
 * const key = await lockKeyForChange(trx, keyId);
 * const next = await applyDecision(trx, keyStream(keyId), key, decideDisableKey(key), now);
 */
export async function applyDecision<S extends { version: bigint }, E extends { type: string; data: unknown }, Current extends S | null>(
  trx: Trx,
  stream: DecisionStream<S, E>,
  state: Current,
  decision: Decision<E>,
  now: Date,
): Promise<S | Current> {
  if (!decision.ok) throw decision.error;
  if (decision.events.length === 0) return state;
  const { events } = await appendToStream(trx, stream.streamId, state ? state.version : 'no_stream', decision.events, now);
  const next = events.reduce<S | null>((s, e) => stream.evolve(s, e as unknown as Recorded<E>), state)!;
  await stream.project(trx, next);
  return next;
}
