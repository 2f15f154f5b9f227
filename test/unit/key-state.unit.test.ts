import { describe, expect, it } from 'vitest';
import { KmsError } from '../../src/domain/errors.ts';
import { keyCreatedData, recordedKeyEvent } from '../support/key-fixtures.ts';
import { foldKey, KEY_STATES, type KeyState, type KeyStateName } from '../../src/domain/key.ts';
import { checkKeyState, OPERATION_RULES, type KeyOperation } from '../../src/domain/key-state-rules.ts';

/**
 * checkKeyState against AWS's key-state table ("Key states of AWS KMS keys",
 * KMS developer guide), written out cell by cell rather than derived from
 * OPERATION_RULES, so a wrong rule shows up as a wrong cell.
 */

const ARN = 'arn:aws:kms:eu-west-1:444455556666:key/0b1e7c3a-1111-4222-8333-944445555666';

function keyIn(keyState: KeyStateName): KeyState {
  const created = foldKey([
    recordedKeyEvent(
      {
        type: 'KeyCreated',
        data: keyCreatedData({ keyId: '0b1e7c3a-1111-4222-8333-944445555666', accountId: '444455556666', arn: ARN, keyMaterialId: 'cd'.repeat(32) }),
      },
      1n,
      new Date('2026-01-01T00:00:00Z'),
    ),
  ])!;
  return { ...created, keyState };
}

type Cell = 'ok' | 'disabled' | 'pendingDeletion' | 'pendingImport' | 'notPendingDeletion';
type Row = Record<'Enabled' | 'Disabled' | 'PendingDeletion' | 'PendingImport', Cell>;

const ALL_OK: Row = { Enabled: 'ok', Disabled: 'ok', PendingDeletion: 'ok', PendingImport: 'ok' };
/** Key management: any state but PendingDeletion. */
const MANAGE: Row = { Enabled: 'ok', Disabled: 'ok', PendingDeletion: 'pendingDeletion', PendingImport: 'ok' };
/** EnableKey / DisableKey. */
const TOGGLE: Row = { Enabled: 'ok', Disabled: 'ok', PendingDeletion: 'pendingDeletion', PendingImport: 'pendingImport' };
/** Cryptographic use: Enabled only; Disabled is DisabledException. */
const USE: Row = { Enabled: 'ok', Disabled: 'disabled', PendingDeletion: 'pendingDeletion', PendingImport: 'pendingImport' };

const AWS_KEY_STATE_TABLE: Record<string, Row> = {
  DescribeKey: ALL_OK,
  ListResourceTags: ALL_OK,
  ListAliases: ALL_OK,
  DeleteAlias: ALL_OK,
  GetKeyPolicy: ALL_OK,
  ListKeyPolicies: ALL_OK,
  // AWS lets you change the policy of a key pending deletion (no footnote in any state).
  PutKeyPolicy: ALL_OK,
  UpdateKeyDescription: MANAGE,
  TagResource: MANAGE,
  UntagResource: MANAGE,
  CreateAlias: MANAGE,
  UpdateAlias: MANAGE,
  ScheduleKeyDeletion: MANAGE,
  EnableKey: TOGGLE,
  DisableKey: TOGGLE,
  CancelKeyDeletion: { Enabled: 'notPendingDeletion', Disabled: 'notPendingDeletion', PendingDeletion: 'ok', PendingImport: 'notPendingDeletion' },
  Encrypt: USE,
  Decrypt: USE,
  ReEncrypt: USE,
  GenerateDataKey: USE,
  GenerateDataKeyWithoutPlaintext: USE,
  GenerateDataKeyPair: USE,
  GenerateDataKeyPairWithoutPlaintext: USE,
  CreateGrant: USE,
  // On a PendingImport key AWS answers UnsupportedOperationException, because such
  // a key has origin EXTERNAL and cannot rotate; that is an origin check, which
  // comes before the state check in the operation. By state alone it is refused.
  EnableKeyRotation: USE,
  DisableKeyRotation: USE,
  RotateKeyOnDemand: USE,
  // A public key is a use of the key: Enabled only (its key-spec check comes after the state's).
  GetPublicKey: USE,
  Sign: USE,
  Verify: USE,
  GenerateMac: USE,
  VerifyMac: USE,
  DeriveSharedSecret: USE,
  GetKeyRotationStatus: MANAGE,
  GetParametersForImport: MANAGE,
  ImportKeyMaterial: MANAGE,
  DeleteImportedKeyMaterial: MANAGE,
  ListKeyRotations: MANAGE,
};

/** Cells where keyledger is known to differ from AWS today (each one a bug to fix). */
const KNOWN_DEVIATIONS = new Set<string>();

function expected(cell: Cell): { code: string; message: string } | undefined {
  switch (cell) {
    case 'ok':
      return undefined;
    case 'disabled':
      return { code: 'DisabledException', message: `${ARN} is disabled.` };
    case 'pendingDeletion':
      return { code: 'KMSInvalidStateException', message: `${ARN} is pending deletion.` };
    case 'pendingImport':
      return { code: 'KMSInvalidStateException', message: `${ARN} is pending import.` };
    case 'notPendingDeletion':
      return { code: 'KMSInvalidStateException', message: `${ARN} is not pending deletion.` };
  }
}

const outcome = (error: KmsError | undefined) => (error ? { code: error.code, message: error.message } : undefined);

describe('checkKeyState follows the AWS key-state table', () => {
  it('the table here covers exactly the operations in OPERATION_RULES', () => {
    expect(Object.keys(AWS_KEY_STATE_TABLE).sort()).toEqual(Object.keys(OPERATION_RULES).sort());
  });

  const cells = Object.keys(OPERATION_RULES).flatMap((operation) =>
    (['Enabled', 'Disabled', 'PendingDeletion', 'PendingImport'] as const).map((state) => ({ operation: operation as KeyOperation, state })),
  );

  for (const { operation, state } of cells) {
    const row = AWS_KEY_STATE_TABLE[operation];
    const cell = row?.[state] ?? 'ok';
    const test = KNOWN_DEVIATIONS.has(`${operation}/${state}`) ? it.fails : it;
    test(`${operation} on a ${state} key: ${cell}`, () => {
      expect(row, `no row for ${operation}`).toBeDefined();
      const error = checkKeyState(operation, keyIn(state));
      if (error) expect(error).toBeInstanceOf(KmsError);
      expect(outcome(error)).toEqual(expected(cell));
    });
  }

  it('refuses cryptographic use in every other state with KMSInvalidStateException naming the state', () => {
    const others = KEY_STATES.filter((s) => !['Enabled', 'Disabled', 'PendingDeletion', 'PendingImport'].includes(s));
    expect(others.sort()).toEqual(['Creating', 'PendingReplicaDeletion', 'Unavailable', 'Updating']);
    const words: Record<string, string> = {
      Creating: 'being created',
      PendingReplicaDeletion: 'pending replica deletion',
      Unavailable: 'unavailable',
      Updating: 'being updated',
    };
    for (const state of others) {
      expect(outcome(checkKeyState('Encrypt', keyIn(state))), state).toEqual({ code: 'KMSInvalidStateException', message: `${ARN} is ${words[state]}.` });
      expect(checkKeyState('DescribeKey', keyIn(state)), state).toBeUndefined();
    }
  });

  it('answers a new error object each time (the service stamps a request id on it)', () => {
    const key = keyIn('Disabled');
    const a = checkKeyState('Encrypt', key);
    const b = checkKeyState('Encrypt', key);
    expect(a).not.toBe(b);
    expect(a?.requestId).toBeUndefined();
  });
});
