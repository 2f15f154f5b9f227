import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideCreateAlias, decideDeleteAlias, decideUpdateAlias, foldAlias, type AliasEvent, type AliasState } from '../../src/domain/alias.ts';
import type { Decision } from '../../src/domain/errors.ts';
import { evolveKey, foldKey, type KeyEvent, type KeyState, type Recorded } from '../../src/domain/key.ts';
import {
  decideCancelKeyDeletion,
  decideDisableKey,
  decideEnableKey,
  decideScheduleKeyDeletion,
  decideTagResource,
  decideUntagResource,
  decideUpdateKeyDescription,
  MAX_TAGS_PER_KEY,
} from '../../src/domain/key-decisions.ts';
import type { Tag } from '../../src/domain/tags.ts';
import { keyCreatedData, recordedKeyEvent } from '../support/key-fixtures.ts';

/**
 * Properties of the key and alias aggregates: random command sequences are
 * decided one by one against the folded state, like the service does, and the
 * outcome is compared with a deliberately naive model.
 */

const ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const START = Date.parse('2026-03-01T09:00:00.000Z');

type Command =
  | { kind: 'enable' }
  | { kind: 'disable' }
  | { kind: 'describe'; description: string }
  | { kind: 'tag'; tags: Tag[] }
  | { kind: 'untag'; tagKeys: string[] }
  | { kind: 'schedule'; days: number }
  | { kind: 'cancel' }
  | { kind: 'wait'; ms: number };

/** A small key space, so that overwrites, untags of present keys and the 50-tag limit all happen. */
const tagKey = (space: number) => fc.integer({ min: 0, max: space - 1 }).map((i) => `k${i}`);
const tagValue = fc.constantFrom('', 'a', 'b', 'Zürich', '1 2');

const command = (space: number, batch: number): fc.Arbitrary<Command> =>
  fc.oneof(
    fc.constant<Command>({ kind: 'enable' }),
    fc.constant<Command>({ kind: 'disable' }),
    fc.constantFrom('', 'a', 'b').map((description): Command => ({ kind: 'describe', description })),
    fc
      .uniqueArray(fc.record({ tagKey: tagKey(space), tagValue }), { selector: (t) => t.tagKey, maxLength: batch })
      .map((tags): Command => ({ kind: 'tag', tags })),
    fc.array(tagKey(space), { maxLength: batch }).map((tagKeys): Command => ({ kind: 'untag', tagKeys })),
    fc.integer({ min: 7, max: 30 }).map((days): Command => ({ kind: 'schedule', days })),
    fc.constant<Command>({ kind: 'cancel' }),
    fc.integer({ min: 0, max: 3 * 86_400_000 }).map((ms): Command => ({ kind: 'wait', ms })),
  );

function decide(key: KeyState, c: Exclude<Command, { kind: 'wait' }>, now: Date): Decision<KeyEvent> {
  switch (c.kind) {
    case 'enable':
      return decideEnableKey(key);
    case 'disable':
      return decideDisableKey(key);
    case 'describe':
      return decideUpdateKeyDescription(key, c.description);
    case 'tag':
      return decideTagResource(key, c.tags);
    case 'untag':
      return decideUntagResource(key, c.tagKeys);
    case 'schedule':
      return decideScheduleKeyDeletion(key, c.days, now);
    case 'cancel':
      return decideCancelKeyDeletion(key);
  }
}

/** The naive model: what the key should look like, written without the aggregate's code. */
interface Model {
  state: 'Enabled' | 'Disabled' | 'PendingDeletion';
  description: string;
  tags: Map<string, string>;
  deletionDate: number | null;
}

/** The model's answer: the next model, or the AWS error code. */
function step(m: Model, c: Exclude<Command, { kind: 'wait' }>, now: number): Model | string {
  const pending = m.state === 'PendingDeletion';
  switch (c.kind) {
    case 'enable':
      return pending ? 'KMSInvalidStateException' : { ...m, state: 'Enabled' };
    case 'disable':
      return pending ? 'KMSInvalidStateException' : { ...m, state: 'Disabled' };
    case 'describe':
      return pending ? 'KMSInvalidStateException' : { ...m, description: c.description };
    case 'tag': {
      if (pending) return 'KMSInvalidStateException';
      const tags = new Map(m.tags);
      for (const t of c.tags) tags.set(t.tagKey, t.tagValue);
      return tags.size > 50 ? 'LimitExceededException' : { ...m, tags };
    }
    case 'untag': {
      if (pending) return 'KMSInvalidStateException';
      const tags = new Map(m.tags);
      for (const k of c.tagKeys) tags.delete(k);
      return { ...m, tags };
    }
    case 'schedule':
      return pending ? 'KMSInvalidStateException' : { ...m, state: 'PendingDeletion', deletionDate: now + c.days * 24 * 3600 * 1000 };
    case 'cancel':
      return pending ? { ...m, state: 'Disabled', deletionDate: null } : 'KMSInvalidStateException';
  }
}

const created = (initialTags: Tag[]): Recorded<KeyEvent> =>
  recordedKeyEvent({ type: 'KeyCreated', data: keyCreatedData({ arn: ARN, tags: initialTags, keyMaterialId: 'ef'.repeat(32) }) }, 1n, new Date(START));

interface Run {
  log: Recorded<KeyEvent>[];
  /** The state after each accepted command, evolved incrementally as the service does. */
  live: KeyState;
  model: Model;
  refusals: number;
}

/** Plays `commands` the way the service does (decide on the current state, record, evolve) and checks each step against the model. */
function play(initialTags: Tag[], commands: Command[]): Run {
  const log: Recorded<KeyEvent>[] = [created(initialTags)];
  let live = foldKey(log)!;
  let model: Model = { state: 'Enabled', description: '', tags: new Map(initialTags.map((t) => [t.tagKey, t.tagValue])), deletionDate: null };
  let now = START;
  let refusals = 0;
  for (const c of commands) {
    if (c.kind === 'wait') {
      now += c.ms;
      continue;
    }
    const decision = decide(live, c, new Date(now));
    const expected = step(model, c, now);
    if (typeof expected === 'string') {
      expect(decision.ok, `${c.kind} in ${model.state} should be refused`).toBe(false);
      if (!decision.ok) expect(decision.error.code).toBe(expected);
      refusals++;
      continue;
    }
    expect(decision.ok, `${c.kind} in ${model.state} should be accepted`).toBe(true);
    if (!decision.ok) continue;
    for (const e of decision.events) {
      const r = { ...e, streamVersion: BigInt(log.length + 1), recordedAt: new Date(now) } as Recorded<KeyEvent>;
      log.push(r);
      live = evolveKey(live, r);
    }
    model = expected;
  }
  return { log, live, model, refusals };
}

const sortedEntries = (tags: Map<string, string>): Tag[] =>
  [...tags].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([tagKey, tagValue]) => ({ tagKey, tagValue }));

describe('key aggregate properties', () => {
  it('any sequence of decided events folds without throwing, to the live state, at version = number of events, matching the model', () => {
    fc.assert(
      fc.property(fc.array(command(8, 4), { maxLength: 60 }), (commands) => {
        const { log, live, model } = play([], commands);
        const folded = foldKey(log);
        expect(folded).toEqual(live);
        expect(folded!.version).toBe(BigInt(log.length));
        expect(folded!.keyState).toBe(model.state);
        expect(folded!.description).toBe(model.description);
        expect(folded!.tags).toEqual(sortedEntries(model.tags));
        expect(folded!.deletionDate?.getTime() ?? null).toBe(model.deletionDate);
        expect(folded!.pendingDeletionWindowInDays === null).toBe(model.state !== 'PendingDeletion');
        expect(folded!.creationDate.getTime()).toBe(START);
      }),
      { numRuns: 300 },
    );
  });

  it('a command that is accepted without events leaves the key exactly as it was (idempotence)', () => {
    fc.assert(
      fc.property(fc.array(command(6, 3), { maxLength: 30 }), command(6, 3), (prefix, last) => {
        if (last.kind === 'wait') return;
        const { live } = play([], prefix);
        const decision = decide(live, last, new Date(START));
        if (decision.ok && decision.events.length === 0) {
          const model = step(
            {
              state: live.keyState as Model['state'],
              description: live.description,
              tags: new Map(live.tags.map((t) => [t.tagKey, t.tagValue])),
              deletionDate: live.deletionDate?.getTime() ?? null,
            },
            last,
            START,
          );
          expect(typeof model).not.toBe('string');
          if (typeof model !== 'string') {
            expect(sortedEntries(model.tags)).toEqual(live.tags);
            expect(model.state).toBe(live.keyState);
            expect(model.description).toBe(live.description);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it(`tags equal a plain Map model and never exceed ${MAX_TAGS_PER_KEY}, with the limit actually reached`, () => {
    let limitHits = 0;
    fc.assert(
      fc.property(
        // Start near the limit (CreateKey takes up to 50) so that it is hit, not just approached.
        fc.uniqueArray(fc.record({ tagKey: tagKey(70), tagValue }), { selector: (t) => t.tagKey, minLength: 30, maxLength: 50 }),
        fc.array(
          fc.oneof(
            {
              weight: 3,
              arbitrary: fc
                .uniqueArray(fc.record({ tagKey: tagKey(70), tagValue }), { selector: (t) => t.tagKey, minLength: 1, maxLength: 20, size: 'max' })
                .map((tags): Command => ({ kind: 'tag', tags })),
            },
            { weight: 1, arbitrary: fc.array(tagKey(70), { maxLength: 10 }).map((tagKeys): Command => ({ kind: 'untag', tagKeys })) },
          ),
          { maxLength: 25 },
        ),
        (initial, commands) => {
          const { log, live, model, refusals } = play(initial, commands);
          limitHits += refusals;
          expect(live.tags).toEqual(sortedEntries(model.tags));
          expect(live.tags.length).toBeLessThanOrEqual(MAX_TAGS_PER_KEY);
          expect(foldKey(log)!.tags).toEqual(live.tags);
          // Tags stay sorted and unique, so equal states compare equal.
          const keys = live.tags.map((t) => t.tagKey);
          expect(keys).toEqual([...new Set(keys)].sort());
        },
      ),
      { numRuns: 300 },
    );
    expect(limitHits, 'the generator must exercise the 50-tag limit').toBeGreaterThan(0);
  });

  it('replaying the log from its JSON (as stored in Postgres) folds to the same state', () => {
    fc.assert(
      fc.property(fc.array(command(8, 4), { maxLength: 40 }), (commands) => {
        const { log, live } = play([], commands);
        const fromJson = log.map((e) => ({ ...e, type: e.type, data: JSON.parse(JSON.stringify(e.data)) }) as Recorded<KeyEvent>);
        expect(foldKey(fromJson)).toEqual(live);
      }),
      { numRuns: 200 },
    );
  });
});

describe('alias aggregate properties', () => {
  const NAMES = ['alias/a', 'alias/b', 'alias/c'];
  const KEYS = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'];
  type AliasCommand = { kind: 'create' | 'update'; name: string; target: string } | { kind: 'delete'; name: string };

  const aliasCommand: fc.Arbitrary<AliasCommand> = fc.oneof(
    fc.record({ kind: fc.constantFrom('create' as const, 'update' as const), name: fc.constantFrom(...NAMES), target: fc.constantFrom(...KEYS) }),
    fc.record({ kind: fc.constant('delete' as const), name: fc.constantFrom(...NAMES) }),
  );

  it('each name folds to what a Map model says, and a name is never created twice while it exists', () => {
    fc.assert(
      fc.property(fc.array(aliasCommand, { maxLength: 50 }), (commands) => {
        const streams = new Map<string, Recorded<AliasEvent>[]>(NAMES.map((n) => [n, []]));
        const model = new Map<string, string>();
        let t = START;
        for (const c of commands) {
          t += 1000;
          const stream = streams.get(c.name)!;
          const current: AliasState | null = foldAlias(stream);
          const arn = `arn:aws:kms:us-east-1:111122223333:${c.name}`;
          const d =
            c.kind === 'create'
              ? decideCreateAlias(current, { accountId: '111122223333', aliasName: c.name, aliasArn: arn, targetKeyId: c.target, aliasesOnTarget: 0 })
              : c.kind === 'update'
                ? decideUpdateAlias(current, { aliasArn: arn, targetKeyId: c.target, aliasesOnTarget: 0 })
                : decideDeleteAlias(current, arn);
          const exists = model.has(c.name);
          const shouldFail = c.kind === 'create' ? exists : !exists;
          expect(d.ok).toBe(!shouldFail);
          if (!d.ok) {
            expect(d.error.code).toBe(c.kind === 'create' ? 'AlreadyExistsException' : 'NotFoundException');
            continue;
          }
          for (const e of d.events) stream.push({ ...e, streamVersion: BigInt(stream.length + 1), recordedAt: new Date(t) } as Recorded<AliasEvent>);
          if (c.kind === 'delete') model.delete(c.name);
          else model.set(c.name, c.target);
        }
        for (const name of NAMES) {
          const state = foldAlias(streams.get(name)!);
          const live = state && !state.deleted ? state.targetKeyId : undefined;
          expect(live, name).toBe(model.get(name));
          if (state) expect(state.version).toBe(BigInt(streams.get(name)!.length));
        }
      }),
      { numRuns: 300 },
    );
  });
});
