import type { Decision } from '../../src/domain/errors.ts';
import { evolveKey, type KeyCreatedData, type KeyEvent, type KeyState, type Recorded } from '../../src/domain/key.ts';

/** Shared by the key aggregate's unit tests: the default key, the way events are recorded, and how decisions apply. */
export const FIXTURE_ACCOUNT = '111122223333';
export const FIXTURE_KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
export const FIXTURE_ARN = `arn:aws:kms:us-east-1:${FIXTURE_ACCOUNT}:key/${FIXTURE_KEY_ID}`;

/** A KeyCreated event's data for a plain symmetric key; `over` replaces any field. */
export function keyCreatedData(over: Partial<KeyCreatedData> = {}): KeyCreatedData {
  return {
    keyId: FIXTURE_KEY_ID,
    accountId: FIXTURE_ACCOUNT,
    arn: FIXTURE_ARN,
    description: '',
    keyUsage: 'ENCRYPT_DECRYPT',
    keySpec: 'SYMMETRIC_DEFAULT',
    origin: 'AWS_KMS',
    keyManager: 'CUSTOMER',
    multiRegion: false,
    policy: '{}',
    tags: [],
    keyMaterialId: 'ab'.repeat(32),
    ...over,
  };
}

/** An event as the fold sees it once recorded at `streamVersion` and `recordedAt`. */
export const recordedKeyEvent = (event: KeyEvent, streamVersion: number | bigint, recordedAt: Date): Recorded<KeyEvent> =>
  ({ ...event, streamVersion: BigInt(streamVersion), recordedAt }) as Recorded<KeyEvent>;

/** Applies a decision's events to `key` as the service does after appending them (recorded at `at`). */
export function applyDecision(key: KeyState, decision: Decision<KeyEvent>, at: Date): KeyState {
  if (!decision.ok) throw decision.error;
  return decision.events.reduce<KeyState>((s, e, i) => evolveKey(s, recordedKeyEvent(e, key.version + BigInt(i + 1), at)), key);
}
