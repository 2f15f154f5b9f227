import { describe, expect, it } from 'vitest';
import { KmsError } from '../../src/domain/errors.ts';
import { decideCreateGrant, evolveGrant, MAX_GRANTS_PER_KEY, type CreateGrantCommand, type GrantEvent } from '../../src/domain/grant.ts';
import { evolveKey, foldKey, type KeyEvent, type Recorded } from '../../src/domain/key.ts';
import { decideCreateKey, type CreateKeyCommand } from '../../src/domain/key-decisions.ts';
import { FIXTURE_ACCOUNT, FIXTURE_ARN, FIXTURE_KEY_ID, keyCreatedData, recordedKeyEvent } from '../support/key-fixtures.ts';

// The decisions that start a stream, and their fold, without Postgres: what applyDecision appends and evolves.

const T0 = new Date('2026-03-01T09:00:00.000Z');

const keyCommand = (over: Partial<CreateKeyCommand> = {}): CreateKeyCommand => ({
  keyId: FIXTURE_KEY_ID,
  accountId: FIXTURE_ACCOUNT,
  arn: FIXTURE_ARN,
  description: 'orders',
  keyUsage: 'ENCRYPT_DECRYPT',
  keySpec: 'SYMMETRIC_DEFAULT',
  origin: 'AWS_KMS',
  policy: '{}',
  tags: [{ tagKey: 'team', tagValue: 'payments' }],
  keyMaterialId: 'ab'.repeat(32),
  ...over,
});

describe('decideCreateKey', () => {
  it('is one KeyCreated of a customer managed, single-Region key, whose fold is the new key at version 1', () => {
    const decision = decideCreateKey(null, keyCommand());
    expect(decision).toEqual({
      ok: true,
      events: [{ type: 'KeyCreated', data: { ...keyCommand(), keyManager: 'CUSTOMER', multiRegion: false } }],
    });
    if (!decision.ok) return;
    const key = evolveKey(null, recordedKeyEvent(decision.events[0]!, 1, T0));
    expect(key).toMatchObject({
      keyId: FIXTURE_KEY_ID,
      arn: FIXTURE_ARN,
      keyState: 'Enabled',
      keyManager: 'CUSTOMER',
      description: 'orders',
      creationDate: T0,
      version: 1n,
    });
    expect(key.tags).toEqual([{ tagKey: 'team', tagValue: 'payments' }]);
  });

  it("records a key pair's public key, and no publicKey member for a key without one", () => {
    const pair = decideCreateKey(null, keyCommand({ keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY', publicKey: 'MFkw' }));
    expect(pair.ok && (pair.events[0] as Extract<KeyEvent, { type: 'KeyCreated' }>).data.publicKey).toBe('MFkw');
    const symmetric = decideCreateKey(null, keyCommand({ publicKey: undefined }));
    expect(symmetric.ok && 'publicKey' in (symmetric.events[0] as Extract<KeyEvent, { type: 'KeyCreated' }>).data).toBe(false);
  });

  it('refuses a key id whose stream already holds a key', () => {
    const existing = foldKey([recordedKeyEvent({ type: 'KeyCreated', data: keyCreatedData() }, 1, T0)]);
    const decision = decideCreateKey(existing, keyCommand());
    expect(decision.ok).toBe(false);
    if (decision.ok) return;
    expect(decision.error).toBeInstanceOf(KmsError);
    expect(decision.error.code).toBe('AlreadyExistsException');
  });
});

const grantCommand = (over: Partial<CreateGrantCommand> = {}): CreateGrantCommand => ({
  grantId: 'ab'.repeat(32),
  keyId: FIXTURE_KEY_ID,
  keyArn: FIXTURE_ARN,
  keyAccountId: FIXTURE_ACCOUNT,
  name: null,
  granteePrincipal: `arn:aws:iam::${FIXTURE_ACCOUNT}:role/app`,
  retiringPrincipal: null,
  operations: ['Decrypt', 'Encrypt'],
  constraints: { encryptionContextSubset: { tenant: 'acme' } },
  issuingAccount: `arn:aws:iam::${FIXTURE_ACCOUNT}:root`,
  grantToken: 'token',
  ...over,
});

describe('decideCreateGrant', () => {
  it('is one GrantCreated, whose fold is the live grant at version 1', () => {
    const decision = decideCreateGrant(0, grantCommand());
    expect(decision).toEqual({ ok: true, events: [{ type: 'GrantCreated', data: grantCommand() }] });
    if (!decision.ok) return;
    const recorded = { ...decision.events[0]!, recordedAt: T0, streamVersion: 1n } as Recorded<GrantEvent>;
    expect(evolveGrant(null, recorded)).toEqual({ ...grantCommand(), creationDate: T0, retired: false, version: 1n });
  });

  it("copies the operations: the caller's array changed afterwards does not change the event", () => {
    const operations = ['Decrypt'];
    const decision = decideCreateGrant(0, grantCommand({ operations }));
    operations.push('Encrypt');
    expect(decision.ok && (decision.events[0] as Extract<GrantEvent, { type: 'GrantCreated' }>).data.operations).toEqual(['Decrypt']);
  });

  it(`refuses the ${MAX_GRANTS_PER_KEY + 1}th grant on a key with LimitExceededException, and allows the ${MAX_GRANTS_PER_KEY}th`, () => {
    expect(decideCreateGrant(MAX_GRANTS_PER_KEY - 1, grantCommand()).ok).toBe(true);
    const decision = decideCreateGrant(MAX_GRANTS_PER_KEY, grantCommand());
    expect(decision.ok).toBe(false);
    if (decision.ok) return;
    expect(decision.error.code).toBe('LimitExceededException');
    expect(decision.error.message).toBe(`A KMS key can have at most ${MAX_GRANTS_PER_KEY} grants.`);
  });
});
