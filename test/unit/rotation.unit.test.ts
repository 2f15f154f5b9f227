import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KmsError, Validator, type Decision } from '../../src/domain/errors.ts';
import { foldKey, KEY_STATES, type KeyCreatedData, type KeyEvent, type KeyState, type KeyStateName } from '../../src/domain/key.ts';
import {
  DAY_MS,
  decideAutomaticRotation,
  decideCancelKeyDeletion,
  decideDeleteKey,
  decideDisableKeyRotation,
  decideEnableKeyRotation,
  decideRotateKeyOnDemand,
  decideScheduleKeyDeletion,
  isDeletionDue,
  isRotationDue,
  MAX_ON_DEMAND_ROTATIONS,
} from '../../src/domain/key-decisions.ts';
import { applyDecision, FIXTURE_ARN, keyCreatedData, recordedKeyEvent } from '../support/key-fixtures.ts';

/**
 * The pure side of rotation and scheduled deletion: what each decision does in
 * every key state, the dates it computes from the injected `now`, and that the
 * worker's decisions are idempotent (not due -> no events).
 */

// ---------------------------------------------------------------- fixtures

const ARN = FIXTURE_ARN;
const T0 = new Date('2026-03-01T09:00:00.000Z');
const M0 = 'a0'.repeat(32);
const M1 = 'b1'.repeat(32);
const M2 = 'c2'.repeat(32);

const createdData = (over: Partial<KeyCreatedData> = {}): KeyCreatedData => keyCreatedData({ keyMaterialId: M0, ...over });

const recorded = recordedKeyEvent;

const created = (over: Partial<KeyCreatedData> = {}): KeyState => foldKey([recorded({ type: 'KeyCreated', data: createdData(over) }, 1n, T0)])!;

/** Applies a decision's events as the service does after appending them (recorded at `at`). */
const applied = applyDecision;

/** A key in any state, by hand: the decisions must not care how it got there. */
function keyIn(keyState: KeyStateName, over: Partial<KeyState> = {}): KeyState {
  const pending = keyState === 'PendingDeletion';
  return {
    ...created(),
    keyState,
    deletionDate: pending ? new Date('2026-03-31T09:00:00.000Z') : null,
    pendingDeletionWindowInDays: pending ? 30 : null,
    version: 4n,
    ...over,
  };
}

const rotating = (over: Partial<KeyState> = {}): KeyState =>
  keyIn('Enabled', { rotationEnabled: true, rotationPeriodInDays: 365, nextRotationDate: new Date(T0.getTime() + 365 * DAY_MS), ...over });

const plusDays = (at: Date, days: number) => new Date(at.getTime() + days * DAY_MS);

function eventsOf(decision: Decision<KeyEvent>): KeyEvent[] {
  if (!decision.ok) throw new Error(`expected events, got ${decision.error.code}: ${decision.error.message}`);
  return decision.events;
}

function refusal(decision: Decision<KeyEvent>): { code: string; message: string } {
  if (decision.ok) throw new Error(`expected a refusal, got ${JSON.stringify(decision.events)}`);
  expect(decision.error).toBeInstanceOf(KmsError);
  return { code: decision.error.code, message: decision.error.message };
}

/** What AWS answers for a key in `state` on an operation that needs an Enabled key. */
function useRefusal(state: KeyStateName): { code: string; message: string } | undefined {
  if (state === 'Enabled') return undefined;
  if (state === 'Disabled') return { code: 'DisabledException', message: `${ARN} is disabled.` };
  const words: Record<string, string> = {
    PendingDeletion: 'pending deletion',
    PendingImport: 'pending import',
    PendingReplicaDeletion: 'pending replica deletion',
    Unavailable: 'unavailable',
    Creating: 'being created',
    Updating: 'being updated',
  };
  return { code: 'KMSInvalidStateException', message: `${ARN} is ${words[state]}.` };
}

const NOT_ENABLED = KEY_STATES.filter((s) => s !== 'Enabled');
const unsupportedOrigin = (origin: string) => ({
  code: 'UnsupportedOperationException',
  message: `${ARN} origin is ${origin} which is not valid for this operation.`,
});
/** Asymmetric and HMAC keys never rotate (issue 13). */
const notSymmetric = {
  code: 'UnsupportedOperationException',
  message: 'You cannot perform this operation on a non-symmetric key or a key with non-ENCRYPT_DECRYPT key usage.',
};

// ---------------------------------------------------------------- EnableKeyRotation

describe('decideEnableKeyRotation', () => {
  it.each([90, 365, 2560])('schedules the first rotation %i days from the injected now', (days) => {
    const now = new Date('2026-07-15T17:45:12.345Z');
    expect(eventsOf(decideEnableKeyRotation(keyIn('Enabled'), days, now))).toEqual([
      { type: 'KeyRotationEnabled', data: { rotationPeriodInDays: days, nextRotationDate: new Date(now.getTime() + days * 86_400_000).toISOString() } },
    ]);
  });

  it('counts days as 86 400 000 ms in UTC, across a leap day and a daylight-saving change', () => {
    const now = new Date('2028-02-28T12:00:00.000Z');
    const [event] = eventsOf(decideEnableKeyRotation(keyIn('Enabled'), 365, now));
    expect(event).toMatchObject({ data: { nextRotationDate: '2029-02-27T12:00:00.000Z' } });
    const [march] = eventsOf(decideEnableKeyRotation(keyIn('Enabled'), 90, new Date('2026-03-01T00:30:00.000Z')));
    expect(march).toMatchObject({ data: { nextRotationDate: '2026-05-30T00:30:00.000Z' } });
  });

  it('is idempotent for the same period, and reschedules from now for another one', () => {
    const key = applied(keyIn('Enabled'), decideEnableKeyRotation(keyIn('Enabled'), 180, T0), T0);
    expect(key).toMatchObject({ rotationEnabled: true, rotationPeriodInDays: 180, nextRotationDate: plusDays(T0, 180) });
    const later = plusDays(T0, 10);
    expect(eventsOf(decideEnableKeyRotation(key, 180, later))).toEqual([]);
    const rescheduled = applied(key, decideEnableKeyRotation(key, 90, later), later);
    expect(rescheduled).toMatchObject({ rotationPeriodInDays: 90, nextRotationDate: plusDays(later, 90) });
  });

  it('enabling again after disabling schedules afresh', () => {
    const on = applied(keyIn('Enabled'), decideEnableKeyRotation(keyIn('Enabled'), 365, T0), T0);
    const off = applied(on, decideDisableKeyRotation(on), T0);
    expect(off).toMatchObject({ rotationEnabled: false, nextRotationDate: null, rotationPeriodInDays: 365 });
    const again = plusDays(T0, 3);
    expect(eventsOf(decideEnableKeyRotation(off, 365, again))).toEqual([
      { type: 'KeyRotationEnabled', data: { rotationPeriodInDays: 365, nextRotationDate: plusDays(again, 365).toISOString() } },
    ]);
  });

  it.each(NOT_ENABLED)('refuses a key in state %s with AWS’s error', (state) => {
    expect(refusal(decideEnableKeyRotation(keyIn(state), 365, T0))).toEqual(useRefusal(state));
  });

  it.each([
    ['keySpec RSA_2048', { keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' }, notSymmetric],
    ['keySpec HMAC_256', { keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' }, notSymmetric],
    ['keySpec RSA_2048 with origin EXTERNAL', { keySpec: 'RSA_2048', keyUsage: 'ENCRYPT_DECRYPT', origin: 'EXTERNAL' }, notSymmetric],
    ['origin EXTERNAL', { origin: 'EXTERNAL' }, unsupportedOrigin('EXTERNAL')],
    ['origin AWS_CLOUDHSM', { origin: 'AWS_CLOUDHSM' }, unsupportedOrigin('AWS_CLOUDHSM')],
  ])('refuses an Enabled key with %s: UnsupportedOperationException', (_what, over, expected) => {
    expect(refusal(decideEnableKeyRotation(keyIn('Enabled', over), 365, T0))).toEqual(expected);
  });
});

describe('rotationPeriodInDays bounds (checked by the service with the Validator)', () => {
  const check = (value: number | null | undefined) => new Validator().range('rotationPeriodInDays', value, 90, 2560).error();
  it('accepts 90, 2560 and an absent value (default 365)', () => {
    expect(check(90)).toBeUndefined();
    expect(check(2560)).toBeUndefined();
    expect(check(undefined)).toBeUndefined();
    expect(check(null)).toBeUndefined();
  });
  it('refuses 89 and 2561 with AWS’s ValidationException wording', () => {
    expect(check(89)).toMatchObject({
      code: 'ValidationException',
      message:
        "1 validation error detected: Value '89' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90",
    });
    expect(check(2561)).toMatchObject({
      code: 'ValidationException',
      message:
        "1 validation error detected: Value '2561' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value less than or equal to 2560",
    });
  });
});

// ---------------------------------------------------------------- DisableKeyRotation

describe('decideDisableKeyRotation', () => {
  it('turns rotation off, and does nothing when it is already off', () => {
    expect(eventsOf(decideDisableKeyRotation(rotating()))).toEqual([{ type: 'KeyRotationDisabled', data: {} }]);
    expect(eventsOf(decideDisableKeyRotation(keyIn('Enabled')))).toEqual([]);
  });

  it('keeps the period (as AWS reports it) but clears the next rotation date', () => {
    const off = applied(rotating(), decideDisableKeyRotation(rotating()), T0);
    expect(off).toMatchObject({ rotationEnabled: false, rotationPeriodInDays: 365, nextRotationDate: null });
  });

  it.each(NOT_ENABLED)('refuses a key in state %s', (state) => {
    expect(refusal(decideDisableKeyRotation(keyIn(state, { rotationEnabled: true })))).toEqual(useRefusal(state));
  });

  it('refuses an asymmetric key', () => {
    expect(refusal(decideDisableKeyRotation(keyIn('Enabled', { keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY' })))).toEqual(notSymmetric);
  });
});

// ---------------------------------------------------------------- RotateKeyOnDemand

describe('decideRotateKeyOnDemand', () => {
  it('rotates to the given material at once; without automatic rotation the next date stays null', () => {
    const key = keyIn('Enabled');
    expect(eventsOf(decideRotateKeyOnDemand(key, M1))).toEqual([
      { type: 'KeyRotated', data: { keyMaterialId: M1, rotationType: 'ON_DEMAND', nextRotationDate: null } },
    ]);
    const next = applied(key, decideRotateKeyOnDemand(key, M1), T0);
    expect(next).toMatchObject({ currentKeyMaterialId: M1, keyMaterialIds: [M0, M1], onDemandRotations: 1, nextRotationDate: null });
  });

  it('leaves the automatic schedule as it is', () => {
    const key = rotating();
    const next = applied(key, decideRotateKeyOnDemand(key, M1), plusDays(T0, 5));
    expect(next.nextRotationDate).toEqual(key.nextRotationDate);
    expect(next.rotationEnabled).toBe(true);
  });

  it(`allows ${MAX_ON_DEMAND_ROTATIONS} on-demand rotations per key, then LimitExceededException with AWS's message`, () => {
    expect(MAX_ON_DEMAND_ROTATIONS).toBe(25);
    let key = keyIn('Enabled');
    for (let i = 0; i < 25; i++) key = applied(key, decideRotateKeyOnDemand(key, i.toString(16).padStart(64, '0')), T0);
    expect(key.onDemandRotations).toBe(25);
    expect(key.keyMaterialIds).toHaveLength(26);
    expect(refusal(decideRotateKeyOnDemand(key, M2))).toEqual({
      code: 'LimitExceededException',
      message: `The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: ${ARN}`,
    });
    expect(eventsOf(decideRotateKeyOnDemand({ ...key, onDemandRotations: 24 }, M2))).toHaveLength(1);
  });

  it('automatic rotations do not count toward the on-demand limit', () => {
    let key = rotating({ onDemandRotations: 25 });
    const at = key.nextRotationDate!;
    key = applied(key, decideAutomaticRotation(key, M1, at), at);
    expect(key.onDemandRotations).toBe(25);
    expect(key.keyMaterialIds).toEqual([M0, M1]);
  });

  it.each(NOT_ENABLED)('refuses a key in state %s before counting rotations', (state) => {
    expect(refusal(decideRotateKeyOnDemand(keyIn(state, { onDemandRotations: 25 }), M1))).toEqual(useRefusal(state));
  });

  it('refuses imported or asymmetric keys (an asymmetric or HMAC key without a message, as AWS)', () => {
    // Imported symmetric material rotates on demand only to material imported for it (NEW_KEY_MATERIAL), as AWS now allows.
    expect(refusal(decideRotateKeyOnDemand(keyIn('Enabled', { origin: 'EXTERNAL' }), M1))?.code).toBe('KMSInvalidStateException');
    const wordless = { code: 'UnsupportedOperationException', message: '' };
    expect(refusal(decideRotateKeyOnDemand(keyIn('Enabled', { origin: 'EXTERNAL', keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' }), M1))).toEqual(
      wordless,
    );
    expect(refusal(decideRotateKeyOnDemand(keyIn('Enabled', { keySpec: 'RSA_4096' }), M1))).toEqual(wordless);
    expect(refusal(decideRotateKeyOnDemand(keyIn('Enabled', { keySpec: 'HMAC_512', keyUsage: 'GENERATE_VERIFY_MAC' }), M1))).toEqual(wordless);
  });
});

// ---------------------------------------------------------------- automatic rotation (the worker)

describe('isRotationDue and decideAutomaticRotation', () => {
  const due = rotating();
  const at = due.nextRotationDate!;

  it('is due from nextRotationDate on, to the millisecond', () => {
    expect(isRotationDue(due, new Date(at.getTime() - 1))).toBe(false);
    expect(isRotationDue(due, at)).toBe(true);
    expect(isRotationDue(due, plusDays(at, 1000))).toBe(true);
  });

  it('rotates AUTOMATIC to the new material and schedules the next one a period after now', () => {
    const now = new Date(at.getTime() + 3_600_000); // the worker ran an hour late
    expect(eventsOf(decideAutomaticRotation(due, M1, now))).toEqual([
      { type: 'KeyRotated', data: { keyMaterialId: M1, rotationType: 'AUTOMATIC', nextRotationDate: plusDays(now, 365).toISOString() } },
    ]);
    const next = applied(due, decideAutomaticRotation(due, M1, now), now);
    expect(next).toMatchObject({
      currentKeyMaterialId: M1,
      keyMaterialIds: [M0, M1],
      nextRotationDate: plusDays(now, 365),
      onDemandRotations: 0,
      rotationEnabled: true,
    });
  });

  it('is idempotent: a second decision at the same now (a retried or duplicate job) decides nothing', () => {
    const once = applied(due, decideAutomaticRotation(due, M1, at), at);
    expect(isRotationDue(once, at)).toBe(false);
    expect(eventsOf(decideAutomaticRotation(once, M2, at))).toEqual([]);
    expect(eventsOf(decideAutomaticRotation(once, M2, plusDays(at, 364)))).toEqual([]);
    expect(eventsOf(decideAutomaticRotation(once, M2, plusDays(at, 365)))).toHaveLength(1);
  });

  it('decides nothing before the date', () => {
    expect(eventsOf(decideAutomaticRotation(due, M1, new Date(at.getTime() - 1)))).toEqual([]);
  });

  it.each(NOT_ENABLED)('never rotates a key in state %s, however late', (state) => {
    const key = rotating({ keyState: state });
    expect(isRotationDue(key, plusDays(at, 5000))).toBe(false);
    expect(eventsOf(decideAutomaticRotation(key, M1, plusDays(at, 5000)))).toEqual([]);
  });

  it('never rotates with rotation off, without a date, or once the key is deleted', () => {
    const late = plusDays(at, 5000);
    expect(eventsOf(decideAutomaticRotation(rotating({ rotationEnabled: false }), M1, late))).toEqual([]);
    expect(eventsOf(decideAutomaticRotation(rotating({ nextRotationDate: null }), M1, late))).toEqual([]);
    expect(eventsOf(decideAutomaticRotation(rotating({ deleted: true }), M1, late))).toEqual([]);
  });

  it('after DisableKeyRotation a stale job finds nothing due', () => {
    const off = applied(due, decideDisableKeyRotation(due), T0);
    expect(eventsOf(decideAutomaticRotation(off, M1, plusDays(at, 1)))).toEqual([]);
  });

  it('property: rotating whenever due, at any sequence of times, rotates at most once per period and never early', () => {
    fc.assert(
      fc.property(fc.integer({ min: 90, max: 2560 }), fc.array(fc.integer({ min: 0, max: 4 * DAY_MS * 100 }), { maxLength: 30 }), (period, steps) => {
        let key = applied(keyIn('Enabled'), decideEnableKeyRotation(keyIn('Enabled'), period, T0), T0);
        let now = T0.getTime();
        let last = T0.getTime();
        let rotations = 0;
        for (const step of steps) {
          now += step;
          const at = new Date(now);
          const decision = decideAutomaticRotation(key, `${rotations}`.padStart(64, 'f'), at);
          const events = eventsOf(decision);
          if (events.length > 0) {
            expect(now - last).toBeGreaterThanOrEqual(period * DAY_MS);
            rotations++;
            last = now;
            key = applied(key, decision, at);
            expect(key.nextRotationDate!.getTime()).toBe(now + period * DAY_MS);
            // the same instant again: nothing
            expect(eventsOf(decideAutomaticRotation(key, 'e'.repeat(64), at))).toEqual([]);
          }
        }
        expect(key.keyMaterialIds).toHaveLength(rotations + 1);
      }),
    );
  });
});

// ---------------------------------------------------------------- scheduled deletion (the worker)

describe('decideScheduleKeyDeletion dates', () => {
  it.each([7, 30])('deletionDate is %i days after the injected now', (days) => {
    const now = new Date('2026-10-25T00:59:59.999Z');
    expect(eventsOf(decideScheduleKeyDeletion(keyIn('Enabled'), days, now))).toEqual([
      { type: 'KeyDeletionScheduled', data: { deletionDate: plusDays(now, days).toISOString(), pendingWindowInDays: days } },
    ]);
  });
});

describe('isDeletionDue and decideDeleteKey', () => {
  const scheduledAt = T0;
  const pending = (() => {
    let key = keyIn('Enabled', { keyMaterialIds: [M0, M1], currentKeyMaterialId: M1 });
    key = applied(key, decideScheduleKeyDeletion(key, 7, scheduledAt), scheduledAt);
    return key;
  })();
  const at = plusDays(scheduledAt, 7);

  it('is due from deletionDate on, to the millisecond', () => {
    expect(pending.keyState).toBe('PendingDeletion');
    expect(pending.deletionDate).toEqual(at);
    expect(isDeletionDue(pending, new Date(at.getTime() - 1))).toBe(false);
    expect(isDeletionDue(pending, at)).toBe(true);
  });

  it('decides KeyDeleted, naming every material version to destroy, only once due', () => {
    expect(eventsOf(decideDeleteKey(pending, new Date(at.getTime() - 1)))).toEqual([]);
    expect(eventsOf(decideDeleteKey(pending, at))).toEqual([{ type: 'KeyDeleted', data: { destroyedKeyMaterialIds: [M0, M1] } }]);
  });

  it('is idempotent: once deleted, nothing more, at any later time', () => {
    const deleted = applied(pending, decideDeleteKey(pending, at), at);
    expect(deleted).toMatchObject({ deleted: true, currentKeyMaterialId: null, keyMaterialIds: [M0, M1] });
    expect(isDeletionDue(deleted, at)).toBe(false);
    expect(eventsOf(decideDeleteKey(deleted, plusDays(at, 1)))).toEqual([]);
    // and a deleted key is never rotated either
    expect(isRotationDue({ ...deleted, keyState: 'Enabled', rotationEnabled: true, nextRotationDate: at }, plusDays(at, 1))).toBe(false);
  });

  it('a cancelled deletion is never carried out, however late the job runs', () => {
    const cancelled = applied(pending, decideCancelKeyDeletion(pending), plusDays(scheduledAt, 1));
    expect(cancelled).toMatchObject({ keyState: 'Disabled', deletionDate: null });
    for (const days of [0, 7, 8, 30, 10_000]) {
      expect(isDeletionDue(cancelled, plusDays(at, days))).toBe(false);
      expect(eventsOf(decideDeleteKey(cancelled, plusDays(at, days)))).toEqual([]);
    }
  });

  it('a deletion cancelled and scheduled again is due at the new date, not the old one', () => {
    const cancelled = applied(pending, decideCancelKeyDeletion(pending), plusDays(scheduledAt, 1));
    const again = plusDays(scheduledAt, 2);
    const rescheduled = applied(cancelled, decideScheduleKeyDeletion(cancelled, 30, again), again);
    expect(eventsOf(decideDeleteKey(rescheduled, at))).toEqual([]);
    expect(eventsOf(decideDeleteKey(rescheduled, plusDays(again, 30)))).toHaveLength(1);
  });

  it.each(KEY_STATES.filter((s) => s !== 'PendingDeletion'))('never deletes a key in state %s, even with a past date', (state) => {
    const key = keyIn(state, { deletionDate: new Date('2000-01-01T00:00:00Z') });
    expect(isDeletionDue(key, at)).toBe(false);
    expect(eventsOf(decideDeleteKey(key, at))).toEqual([]);
  });

  it('cancelling is refused once the key is no longer pending deletion', () => {
    expect(refusal(decideCancelKeyDeletion(keyIn('Enabled')))).toEqual({ code: 'KMSInvalidStateException', message: `${ARN} is not pending deletion.` });
  });

  it('property: a deletion is decided iff the key is pending deletion and now >= deletionDate', () => {
    fc.assert(
      fc.property(fc.constantFrom(...KEY_STATES), fc.integer({ min: -40 * DAY_MS, max: 40 * DAY_MS }), fc.boolean(), (state, offset, deleted) => {
        const deletionDate = plusDays(T0, 7);
        const key = keyIn(state, { deletionDate, deleted });
        const now = new Date(deletionDate.getTime() + offset);
        const events = eventsOf(decideDeleteKey(key, now));
        const expected = state === 'PendingDeletion' && !deleted && offset >= 0;
        expect(events.length).toBe(expected ? 1 : 0);
      }),
    );
  });
});

describe('a whole life, folded', () => {
  it('create, enable rotation, automatic and on-demand rotations, schedule, delete', () => {
    let key = created();
    let now = T0;
    key = applied(key, decideEnableKeyRotation(key, 90, now), now);
    now = plusDays(now, 90);
    key = applied(key, decideAutomaticRotation(key, M1, now), now);
    now = plusDays(now, 1);
    key = applied(key, decideRotateKeyOnDemand(key, M2), now);
    expect(key).toMatchObject({
      keyMaterialIds: [M0, M1, M2],
      currentKeyMaterialId: M2,
      onDemandRotations: 1,
      nextRotationDate: plusDays(T0, 180),
      version: 4n,
    });
    key = applied(key, decideScheduleKeyDeletion(key, 7, now), now);
    expect(isRotationDue(key, plusDays(now, 1000))).toBe(false); // no rotation while pending deletion
    now = plusDays(now, 7);
    key = applied(key, decideDeleteKey(key, now), now);
    expect(key).toMatchObject({ deleted: true, currentKeyMaterialId: null, version: 6n });
  });
});
