import { describe, expect, it } from 'vitest';
import { KmsError, type Decision } from '../../src/domain/errors.ts';
import {
  defaultKeyPolicy,
  evolveKey,
  foldKey,
  isEnabled,
  KEY_EVENT_TYPES,
  type KeyCreatedData,
  type KeyEvent,
  type KeyState,
  type KeyStateName,
  type Recorded,
} from '../../src/domain/key.ts';
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
import { applyDecision, FIXTURE_ACCOUNT, FIXTURE_ARN, FIXTURE_KEY_ID, keyCreatedData, recordedKeyEvent } from '../support/key-fixtures.ts';

// ---------------------------------------------------------------- fixtures

const ACCOUNT = FIXTURE_ACCOUNT;
const KEY_ID = FIXTURE_KEY_ID;
const ARN = FIXTURE_ARN;
const T0 = new Date('2026-03-01T09:00:00.000Z');
const T1 = new Date('2026-03-02T10:30:00.000Z');

const createdData = (over: Partial<KeyCreatedData> = {}): KeyCreatedData =>
  keyCreatedData({ description: 'orders', policy: '{"Version":"2012-10-17","Statement":[]}', ...over });

const recorded = (event: KeyEvent, streamVersion: number | bigint, recordedAt: Date = T0): Recorded<KeyEvent> =>
  recordedKeyEvent(event, streamVersion, recordedAt);

const created = (over: Partial<KeyCreatedData> = {}): KeyState => foldKey([recorded({ type: 'KeyCreated', data: createdData(over) }, 1)])!;

/** Applies a decision's events to `key`, as the service does after appending them. */
const applied = (key: KeyState, decision: Decision<KeyEvent>, at: Date = T1): KeyState => applyDecision(key, decision, at);

/**
 * A key in `keyState`, built by hand on top of a freshly created key: the decide
 * functions must not care how the state came about (PendingImport, for one, has
 * no event in keyledger yet).
 */
function keyIn(keyState: KeyStateName, over: Partial<KeyState> = {}): KeyState {
  const pending = keyState === 'PendingDeletion';
  return {
    ...created(),
    keyState,
    origin: keyState === 'PendingImport' ? 'EXTERNAL' : 'AWS_KMS',
    deletionDate: pending ? new Date('2026-03-31T09:00:00.000Z') : null,
    pendingDeletionWindowInDays: pending ? 30 : null,
    version: 5n,
    ...over,
  };
}

const tags = (entries: Record<string, string>): Tag[] => Object.entries(entries).map(([tagKey, tagValue]) => ({ tagKey, tagValue }));
const manyTags = (n: number, prefix = 't', value = 'v'): Tag[] =>
  Array.from({ length: n }, (_, i) => ({ tagKey: `${prefix}${String(i).padStart(2, '0')}`, tagValue: value }));

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The AWS error a decision refused with. */
function refusal(decision: Decision<KeyEvent>): { code: string; message: string } {
  expect(decision.ok, 'expected a refusal').toBe(false);
  if (decision.ok) throw new Error('unreachable');
  expect(decision.error).toBeInstanceOf(KmsError);
  return { code: decision.error.code, message: decision.error.message };
}

function eventsOf(decision: Decision<KeyEvent>): KeyEvent[] {
  if (!decision.ok) throw new Error(`expected events, got ${decision.error.code}: ${decision.error.message}`);
  return decision.events;
}

const pendingDeletion = { code: 'KMSInvalidStateException', message: `${ARN} is pending deletion.` };
const pendingImport = { code: 'KMSInvalidStateException', message: `${ARN} is pending import.` };
const notPendingDeletion = { code: 'KMSInvalidStateException', message: `${ARN} is not pending deletion.` };

// ---------------------------------------------------------------- evolve / fold

describe('evolveKey', () => {
  it('KeyCreated starts an Enabled key whose creation date is the recording time', () => {
    const data = createdData({ description: 'payments', tags: tags({ zeta: '1', alpha: '2', mid: '' }) });
    const state = evolveKey(null, recorded({ type: 'KeyCreated', data }, 1, T1));
    expect(state).toEqual({
      keyId: KEY_ID,
      accountId: ACCOUNT,
      arn: ARN,
      description: 'payments',
      keyState: 'Enabled',
      keyUsage: 'ENCRYPT_DECRYPT',
      keySpec: 'SYMMETRIC_DEFAULT',
      origin: 'AWS_KMS',
      keyManager: 'CUSTOMER',
      multiRegion: false,
      policy: data.policy,
      creationDate: T1,
      deletionDate: null,
      pendingDeletionWindowInDays: null,
      currentKeyMaterialId: data.keyMaterialId,
      keyMaterialIds: [data.keyMaterialId],
      publicKey: null,
      rotationEnabled: false,
      rotationPeriodInDays: null,
      nextRotationDate: null,
      onDemandRotations: 0,
      deleted: false,
      importedMaterials: [],
      // Sorted by key, so that equal states compare equal whatever the input order.
      tags: tags({ alpha: '2', mid: '', zeta: '1' }),
      version: 1n,
    });
    expect(isEnabled(state)).toBe(true);
  });

  it('KeyDescriptionUpdated replaces the description', () => {
    const s = evolveKey(created(), recorded({ type: 'KeyDescriptionUpdated', data: { description: 'new' } }, 2));
    expect(s).toMatchObject({ description: 'new', keyState: 'Enabled', version: 2n });
  });

  it('KeyDisabled and KeyEnabled toggle the state', () => {
    const disabled = evolveKey(created(), recorded({ type: 'KeyDisabled', data: {} }, 2));
    expect(disabled).toMatchObject({ keyState: 'Disabled', version: 2n });
    expect(isEnabled(disabled)).toBe(false);
    const enabled = evolveKey(disabled, recorded({ type: 'KeyEnabled', data: {} }, 3));
    expect(enabled).toMatchObject({ keyState: 'Enabled', version: 3n });
  });

  it('KeyTagged adds new tags and overwrites existing values, keeping tags sorted', () => {
    const start = created({ tags: tags({ b: '1', d: '2' }) });
    const s = evolveKey(start, recorded({ type: 'KeyTagged', data: { tags: tags({ d: 'new', a: '0', c: '' }) } }, 2));
    expect(s.tags).toEqual(tags({ a: '0', b: '1', c: '', d: 'new' }));
  });

  it('KeyUntagged removes the named tags and ignores names that are not there', () => {
    const start = created({ tags: tags({ a: '1', b: '2', c: '3' }) });
    const s = evolveKey(start, recorded({ type: 'KeyUntagged', data: { tagKeys: ['b', 'zzz'] } }, 2));
    expect(s.tags).toEqual(tags({ a: '1', c: '3' }));
  });

  it('KeyDeletionScheduled enters PendingDeletion with the recorded date and window', () => {
    const s = evolveKey(created(), recorded({ type: 'KeyDeletionScheduled', data: { deletionDate: '2026-03-08T09:00:00.000Z', pendingWindowInDays: 7 } }, 2));
    expect(s).toMatchObject({
      keyState: 'PendingDeletion',
      deletionDate: new Date('2026-03-08T09:00:00.000Z'),
      pendingDeletionWindowInDays: 7,
      version: 2n,
    });
    expect(isEnabled(s)).toBe(false);
  });

  it('KeyDeletionCanceled leaves the key Disabled (as AWS does) and clears the deletion date', () => {
    const s = evolveKey(keyIn('PendingDeletion'), recorded({ type: 'KeyDeletionCanceled', data: {} }, 6));
    expect(s).toMatchObject({ keyState: 'Disabled', deletionDate: null, pendingDeletionWindowInDays: null, version: 6n });
  });

  it('refuses any event before KeyCreated', () => {
    const types = [...KEY_EVENT_TYPES].filter((t) => t !== 'KeyCreated');
    expect(types).toHaveLength(KEY_EVENT_TYPES.size - 1);
    for (const type of types) {
      expect(() => evolveKey(null, recorded({ type, data: {} } as KeyEvent, 1)), type).toThrow(`${type} before KeyCreated`);
    }
  });

  it('never mutates the state it is given', () => {
    const start = deepFreeze(keyIn('Disabled', { tags: tags({ a: '1', b: '2' }) }));
    const events: KeyEvent[] = [
      { type: 'KeyDescriptionUpdated', data: { description: 'x' } },
      { type: 'KeyEnabled', data: {} },
      { type: 'KeyDisabled', data: {} },
      { type: 'KeyTagged', data: { tags: tags({ a: '9', c: '3' }) } },
      { type: 'KeyUntagged', data: { tagKeys: ['a'] } },
      { type: 'KeyDeletionScheduled', data: { deletionDate: '2026-04-01T00:00:00.000Z', pendingWindowInDays: 30 } },
      { type: 'KeyDeletionCanceled', data: {} },
      { type: 'KeyRotationEnabled', data: { rotationPeriodInDays: 90, nextRotationDate: '2026-06-01T00:00:00.000Z' } },
      { type: 'KeyRotationDisabled', data: {} },
      { type: 'KeyRotated', data: { keyMaterialId: 'ef'.repeat(32), rotationType: 'ON_DEMAND', nextRotationDate: null } },
      { type: 'KeyDeleted', data: { destroyedKeyMaterialIds: ['cd'.repeat(32)] } },
      { type: 'KeyPolicyPut', data: { policy: '{}' } },
      {
        type: 'KeyMaterialImported',
        data: {
          keyMaterialId: '12'.repeat(32),
          importType: 'NEW_KEY_MATERIAL',
          expirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
          validTo: null,
          keyMaterialDescription: null,
          importTokenId: 't',
          wrappingAlgorithm: 'RSAES_OAEP_SHA_256',
          wrappingKeySpec: 'RSA_2048',
        },
      },
      { type: 'KeyMaterialDeleted', data: { keyMaterialId: '12'.repeat(32), reason: 'DELETED' } },
    ];
    expect(new Set(events.map((e) => e.type))).toEqual(new Set([...KEY_EVENT_TYPES].filter((t) => t !== 'KeyCreated')));
    for (const e of events) expect(() => evolveKey(start, recorded(e, 6)), e.type).not.toThrow();
    expect(start.tags).toEqual(tags({ a: '1', b: '2' }));
    expect(start.keyState).toBe('Disabled');
    expect(start.keyMaterialIds).toHaveLength(1);
  });
});

describe('foldKey', () => {
  it('an empty stream folds to no key', () => {
    expect(foldKey([])).toBeNull();
  });

  it('folds a whole history, its version being the last stream version', () => {
    const log: Recorded<KeyEvent>[] = [
      recorded({ type: 'KeyCreated', data: createdData({ tags: tags({ team: 'a' }) }) }, 1, T0),
      recorded({ type: 'KeyDisabled', data: {} }, 2, T1),
      recorded({ type: 'KeyTagged', data: { tags: tags({ env: 'prod', team: 'b' }) } }, 3, T1),
      recorded({ type: 'KeyDeletionScheduled', data: { deletionDate: '2026-03-09T10:30:00.000Z', pendingWindowInDays: 7 } }, 4, T1),
      recorded({ type: 'KeyDeletionCanceled', data: {} }, 5, T1),
      recorded({ type: 'KeyEnabled', data: {} }, 6, T1),
      recorded({ type: 'KeyUntagged', data: { tagKeys: ['team'] } }, 7, T1),
      recorded({ type: 'KeyDescriptionUpdated', data: { description: 'final' } }, 8, T1),
    ];
    expect(foldKey(log)).toEqual({
      ...created({ tags: tags({ team: 'a' }) }),
      description: 'final',
      keyState: 'Enabled',
      creationDate: T0,
      deletionDate: null,
      pendingDeletionWindowInDays: null,
      tags: tags({ env: 'prod' }),
      version: 8n,
    });
  });

  it('is the same whether the events come straight from decide or back from the JSON in the log', () => {
    const log: Recorded<KeyEvent>[] = [
      recorded({ type: 'KeyCreated', data: createdData({ tags: tags({ b: '1', a: '2' }) }) }, 1),
      recorded({ type: 'KeyDeletionScheduled', data: { deletionDate: '2026-03-31T09:00:00.000Z', pendingWindowInDays: 30 } }, 2),
    ];
    const roundTripped = log.map((e) => ({ ...e, data: JSON.parse(JSON.stringify(e.data)) }) as Recorded<KeyEvent>);
    expect(foldKey(roundTripped)).toEqual(foldKey(log));
  });
});

// ---------------------------------------------------------------- decisions, state by state

describe('decideEnableKey', () => {
  it('Disabled -> KeyEnabled', () => {
    const key = keyIn('Disabled');
    expect(eventsOf(decideEnableKey(key))).toEqual([{ type: 'KeyEnabled', data: {} }]);
    expect(applied(key, decideEnableKey(key)).keyState).toBe('Enabled');
  });
  it('is idempotent: an Enabled key produces no event', () => {
    expect(eventsOf(decideEnableKey(keyIn('Enabled')))).toEqual([]);
  });
  it('refuses a key pending deletion or pending import', () => {
    expect(refusal(decideEnableKey(keyIn('PendingDeletion')))).toEqual(pendingDeletion);
    expect(refusal(decideEnableKey(keyIn('PendingImport')))).toEqual(pendingImport);
  });
});

describe('decideDisableKey', () => {
  it('Enabled -> KeyDisabled', () => {
    const key = keyIn('Enabled');
    expect(eventsOf(decideDisableKey(key))).toEqual([{ type: 'KeyDisabled', data: {} }]);
    expect(applied(key, decideDisableKey(key)).keyState).toBe('Disabled');
  });
  it('is idempotent: a Disabled key produces no event', () => {
    expect(eventsOf(decideDisableKey(keyIn('Disabled')))).toEqual([]);
  });
  it('refuses a key pending deletion or pending import', () => {
    expect(refusal(decideDisableKey(keyIn('PendingDeletion')))).toEqual(pendingDeletion);
    expect(refusal(decideDisableKey(keyIn('PendingImport')))).toEqual(pendingImport);
  });
});

describe('decideUpdateKeyDescription', () => {
  it.each(['Enabled', 'Disabled', 'PendingImport'] as const)('updates the description of a %s key', (state) => {
    const key = keyIn(state);
    expect(eventsOf(decideUpdateKeyDescription(key, 'new'))).toEqual([{ type: 'KeyDescriptionUpdated', data: { description: 'new' } }]);
    expect(applied(key, decideUpdateKeyDescription(key, 'new'))).toMatchObject({ description: 'new', keyState: state });
  });
  it('produces no event when the description does not change', () => {
    expect(eventsOf(decideUpdateKeyDescription(keyIn('Enabled'), 'orders'))).toEqual([]);
  });
  it('allows an empty description', () => {
    expect(eventsOf(decideUpdateKeyDescription(keyIn('Enabled'), ''))).toEqual([{ type: 'KeyDescriptionUpdated', data: { description: '' } }]);
  });
  it('refuses a key pending deletion, even when nothing would change', () => {
    expect(refusal(decideUpdateKeyDescription(keyIn('PendingDeletion'), 'new'))).toEqual(pendingDeletion);
    expect(refusal(decideUpdateKeyDescription(keyIn('PendingDeletion'), 'orders'))).toEqual(pendingDeletion);
  });
});

describe('decideScheduleKeyDeletion', () => {
  it.each([
    ['Enabled', 7, '2026-03-01T09:00:00.000Z', '2026-03-08T09:00:00.000Z'],
    ['Disabled', 30, '2026-03-01T09:00:00.000Z', '2026-03-31T09:00:00.000Z'],
    ['PendingImport', 10, '2026-03-01T09:00:00.000Z', '2026-03-11T09:00:00.000Z'],
    // Milliseconds are kept; the arithmetic is in UTC, so no DST shift.
    ['Enabled', 7, '2026-03-25T23:59:59.999Z', '2026-04-01T23:59:59.999Z'],
    // Across the end of a leap February and of a year.
    ['Enabled', 7, '2028-02-25T12:00:00.000Z', '2028-03-03T12:00:00.000Z'],
    ['Enabled', 30, '2026-12-15T00:00:00.000Z', '2027-01-14T00:00:00.000Z'],
  ] as const)('a %s key, %i days from %s, is deleted at %s', (state, days, now, expected) => {
    const key = keyIn(state);
    const decision = decideScheduleKeyDeletion(key, days, new Date(now));
    expect(eventsOf(decision)).toEqual([{ type: 'KeyDeletionScheduled', data: { deletionDate: expected, pendingWindowInDays: days } }]);
    expect(applied(key, decision)).toMatchObject({
      keyState: 'PendingDeletion',
      deletionDate: new Date(expected),
      pendingDeletionWindowInDays: days,
      version: key.version + 1n,
    });
  });

  it('reads time only from the injected now: the same inputs decide the same event', () => {
    const now = new Date('2026-06-01T00:00:00.000Z');
    expect(decideScheduleKeyDeletion(keyIn('Enabled'), 7, now)).toEqual(decideScheduleKeyDeletion(keyIn('Enabled'), 7, now));
  });

  it('refuses a key already pending deletion', () => {
    expect(refusal(decideScheduleKeyDeletion(keyIn('PendingDeletion'), 7, T0))).toEqual(pendingDeletion);
  });
});

describe('decideCancelKeyDeletion', () => {
  it('PendingDeletion -> KeyDeletionCanceled, which leaves the key Disabled', () => {
    const key = keyIn('PendingDeletion');
    const decision = decideCancelKeyDeletion(key);
    expect(eventsOf(decision)).toEqual([{ type: 'KeyDeletionCanceled', data: {} }]);
    expect(applied(key, decision)).toMatchObject({ keyState: 'Disabled', deletionDate: null, pendingDeletionWindowInDays: null });
  });
  it.each(['Enabled', 'Disabled', 'PendingImport'] as const)('refuses a %s key: it is not pending deletion', (state) => {
    expect(refusal(decideCancelKeyDeletion(keyIn(state)))).toEqual(notPendingDeletion);
  });
});

describe('decideTagResource', () => {
  it.each(['Enabled', 'Disabled', 'PendingImport'] as const)('tags a %s key', (state) => {
    const key = keyIn(state);
    expect(eventsOf(decideTagResource(key, tags({ a: '1' })))).toEqual([{ type: 'KeyTagged', data: { tags: tags({ a: '1' }) } }]);
  });

  it('records only the tags that change: new keys and new values', () => {
    const key = keyIn('Enabled', { tags: tags({ a: '1', b: '2' }) });
    const decision = decideTagResource(key, tags({ a: '1', b: 'two', c: '3' }));
    expect(eventsOf(decision)).toEqual([{ type: 'KeyTagged', data: { tags: tags({ b: 'two', c: '3' }) } }]);
    expect(applied(key, decision).tags).toEqual(tags({ a: '1', b: 'two', c: '3' }));
  });

  it('produces no event when every tag is already there with that value', () => {
    expect(eventsOf(decideTagResource(keyIn('Enabled', { tags: tags({ a: '1', b: '' }) }), tags({ b: '', a: '1' })))).toEqual([]);
    expect(eventsOf(decideTagResource(keyIn('Enabled'), []))).toEqual([]);
  });

  it(`allows up to ${MAX_TAGS_PER_KEY} tags per key, counting overwritten keys once`, () => {
    expect(MAX_TAGS_PER_KEY).toBe(50);
    const full = keyIn('Enabled', { tags: manyTags(49) });
    const fifty = applied(full, decideTagResource(full, tags({ last: 'x' })));
    expect(fifty.tags).toHaveLength(50);
    // Overwriting some of the 50 is no new tag.
    const overwritten = decideTagResource(fifty, [...manyTags(10, 't', 'w'), { tagKey: 'last', tagValue: 'x' }]);
    expect(eventsOf(overwritten)).toEqual([{ type: 'KeyTagged', data: { tags: manyTags(10, 't', 'w') } }]);
    expect(applied(fifty, overwritten).tags).toHaveLength(50);
    expect(eventsOf(decideTagResource(keyIn('Enabled'), manyTags(50)))).toHaveLength(1);
  });

  it('refuses the 51st tag with LimitExceededException, and a request that alone brings 51', () => {
    const limit = { code: 'LimitExceededException', message: 'A KMS key can have at most 50 tags.' };
    const fifty = keyIn('Enabled', { tags: manyTags(50) });
    expect(refusal(decideTagResource(fifty, tags({ one: 'more' })))).toEqual(limit);
    // Even when mixed with overwrites.
    expect(refusal(decideTagResource(fifty, [...manyTags(3, 't', 'w'), { tagKey: 'one', tagValue: 'more' }]))).toEqual(limit);
    expect(refusal(decideTagResource(keyIn('Enabled'), manyTags(51)))).toEqual(limit);
    expect(refusal(decideTagResource(keyIn('Enabled', { tags: manyTags(30, 'a') }), manyTags(21, 'b')))).toEqual(limit);
  });

  it('refuses a key pending deletion before counting tags', () => {
    expect(refusal(decideTagResource(keyIn('PendingDeletion'), tags({ a: '1' })))).toEqual(pendingDeletion);
    expect(refusal(decideTagResource(keyIn('PendingDeletion'), manyTags(51)))).toEqual(pendingDeletion);
  });
});

describe('decideUntagResource', () => {
  it.each(['Enabled', 'Disabled', 'PendingImport'] as const)('untags a %s key', (state) => {
    const key = keyIn(state, { tags: tags({ a: '1', b: '2' }) });
    const decision = decideUntagResource(key, ['a']);
    expect(eventsOf(decision)).toEqual([{ type: 'KeyUntagged', data: { tagKeys: ['a'] } }]);
    expect(applied(key, decision).tags).toEqual(tags({ b: '2' }));
  });

  it('records each present key once and ignores absent ones', () => {
    const key = keyIn('Enabled', { tags: tags({ a: '1', b: '2', c: '3' }) });
    expect(eventsOf(decideUntagResource(key, ['c', 'zzz', 'a', 'c']))).toEqual([{ type: 'KeyUntagged', data: { tagKeys: ['c', 'a'] } }]);
  });

  it('produces no event when none of the keys is present', () => {
    expect(eventsOf(decideUntagResource(keyIn('Enabled', { tags: tags({ a: '1' }) }), ['b', 'c']))).toEqual([]);
    expect(eventsOf(decideUntagResource(keyIn('Enabled'), []))).toEqual([]);
  });

  it('refuses a key pending deletion', () => {
    expect(refusal(decideUntagResource(keyIn('PendingDeletion', { tags: tags({ a: '1' }) }), ['a']))).toEqual(pendingDeletion);
  });
});

describe('defaultKeyPolicy', () => {
  it("delegates every kms action to the account's root", () => {
    const policy = JSON.parse(defaultKeyPolicy(ACCOUNT));
    expect(policy).toEqual({
      Version: '2012-10-17',
      Id: 'key-default-1',
      Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }],
    });
  });
});
