import { describe, expect, it } from 'vitest';
import {
  acceptsAliasKeyId,
  aliasStreamId,
  decideCreateAlias,
  decideDeleteAlias,
  decideUpdateAlias,
  evolveAlias,
  foldAlias,
  MAX_ALIASES_PER_KEY,
  validateAliasName,
  type AliasEvent,
  type AliasState,
} from '../../src/domain/alias.ts';
import { KmsError, type Decision } from '../../src/domain/errors.ts';
import type { Recorded } from '../../src/domain/key.ts';
import { AWS_KMS_OPERATION_NAMES, operationShapes, shape } from '../../src/service/model/kms-model.ts';

const ACCOUNT = '111122223333';
const K1 = '11111111-1111-4111-8111-111111111111';
const K2 = '22222222-2222-4222-8222-222222222222';
const NAME = 'alias/app';
const ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:${NAME}`;
const T0 = new Date('2026-03-01T09:00:00.000Z');
const T1 = new Date('2026-03-02T09:00:00.000Z');
const T2 = new Date('2026-03-03T09:00:00.000Z');

const recorded = (event: AliasEvent, v: number, at: Date): Recorded<AliasEvent> =>
  ({ ...event, streamVersion: BigInt(v), recordedAt: at }) as Recorded<AliasEvent>;

const live = (over: Partial<AliasState> = {}): AliasState => ({
  accountId: ACCOUNT,
  aliasName: NAME,
  targetKeyId: K1,
  creationDate: T0,
  lastUpdatedDate: T0,
  deleted: false,
  version: 1n,
  ...over,
});

const createInput = (aliasesOnTarget = 0) => ({ accountId: ACCOUNT, aliasName: NAME, aliasArn: ARN, targetKeyId: K1, aliasesOnTarget });

function refusal(decision: Decision<AliasEvent>) {
  if (decision.ok) throw new Error(`expected a refusal, got ${JSON.stringify(decision.events)}`);
  expect(decision.error).toBeInstanceOf(KmsError);
  return { code: decision.error.code, message: decision.error.message };
}

function eventsOf(decision: Decision<AliasEvent>): AliasEvent[] {
  if (!decision.ok) throw new Error(`expected events, got ${decision.error.code}: ${decision.error.message}`);
  return decision.events;
}

const outcome = (error: KmsError | undefined) => (error ? { code: error.code, message: error.message } : undefined);

describe('validateAliasName', () => {
  it.each(['alias/a', 'alias/My_Key-1', 'alias/team/app/prod', 'alias/aws', 'alias/awsome', 'alias/AWS-like', `alias/${'x'.repeat(250)}`])(
    'accepts %s',
    (name) => {
      expect(validateAliasName(name)).toBeUndefined();
    },
  );

  it('refuses an empty name with both violations, in AWS wording', () => {
    expect(outcome(validateAliasName(''))).toEqual({
      code: 'ValidationException',
      message:
        "2 validation errors detected: Value '' at 'aliasName' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
        "Value '' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    });
  });

  it('refuses a name longer than 256 characters', () => {
    const name = `alias/${'x'.repeat(251)}`;
    expect(name).toHaveLength(257);
    expect(outcome(validateAliasName(name))).toEqual({
      code: 'ValidationException',
      message: `1 validation error detected: Value '${name}' at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256`,
    });
  });

  it.each(['alias/has space', 'alias/ümlaut', 'alias/a.b', 'alias/a*', 'alias/tab\t'])('refuses characters outside [a-zA-Z0-9:/_-] in %j', (name) => {
    expect(outcome(validateAliasName(name))).toEqual({
      code: 'ValidationException',
      message:
        `1 validation error detected: Value '${name}' at 'aliasName' failed to satisfy constraint: ` +
        `Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$`,
    });
  });

  it.each(['app', 'alias', 'alias/', 'Alias/app', 'aliases/app', '/alias/app'])('refuses %j: no "alias/" prefix followed by a name', (name) => {
    expect(outcome(validateAliasName(name))).toEqual({
      code: 'ValidationException',
      message: 'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
    });
  });

  it('refuses a colon, which the character pattern allows', () => {
    expect(outcome(validateAliasName('alias/a:b'))).toEqual({ code: 'ValidationException', message: 'alias/a:b contains invalid characters for an alias' });
  });

  it.each(['alias/aws/s3', 'alias/aws/', 'alias/aws/x/y'])('refuses the reserved prefix in %s with NotAuthorizedException', (name) => {
    expect(outcome(validateAliasName(name))).toEqual({
      code: 'NotAuthorizedException',
      message: 'Aliases that begin with alias/aws/ are reserved for AWS managed keys.',
    });
  });
});

describe('decideCreateAlias', () => {
  it('creates a new name', () => {
    expect(eventsOf(decideCreateAlias(null, createInput()))).toEqual([
      { type: 'AliasCreated', data: { accountId: ACCOUNT, aliasName: NAME, targetKeyId: K1 } },
    ]);
  });

  it('refuses a name that exists, whatever key it points to', () => {
    expect(refusal(decideCreateAlias(live({ targetKeyId: K2 }), createInput()))).toEqual({
      code: 'AlreadyExistsException',
      message: `An alias with the name ${ARN} already exists`,
    });
  });

  it('creates the name again after it was deleted', () => {
    expect(eventsOf(decideCreateAlias(live({ deleted: true, version: 2n }), createInput()))).toEqual([
      { type: 'AliasCreated', data: { accountId: ACCOUNT, aliasName: NAME, targetKeyId: K1 } },
    ]);
  });

  it(`allows ${MAX_ALIASES_PER_KEY} aliases per key and refuses the next`, () => {
    expect(MAX_ALIASES_PER_KEY).toBe(50);
    expect(eventsOf(decideCreateAlias(null, createInput(49)))).toHaveLength(1);
    const limit = { code: 'LimitExceededException', message: 'A KMS key can have at most 50 aliases.' };
    expect(refusal(decideCreateAlias(null, createInput(50)))).toEqual(limit);
    expect(refusal(decideCreateAlias(live({ deleted: true }), createInput(50)))).toEqual(limit);
  });

  it('says AlreadyExists before LimitExceeded', () => {
    expect(refusal(decideCreateAlias(live(), createInput(50))).code).toBe('AlreadyExistsException');
  });
});

describe('decideUpdateAlias', () => {
  const notFound = { code: 'NotFoundException', message: `Alias ${ARN} is not found.` };

  it('moves the alias to another key, recording where it pointed', () => {
    expect(eventsOf(decideUpdateAlias(live(), { aliasArn: ARN, targetKeyId: K2, aliasesOnTarget: 3 }))).toEqual([
      { type: 'AliasUpdated', data: { targetKeyId: K2, previousTargetKeyId: K1 } },
    ]);
  });

  it('produces no event when the alias already points there (even if that key is full)', () => {
    expect(eventsOf(decideUpdateAlias(live(), { aliasArn: ARN, targetKeyId: K1, aliasesOnTarget: 50 }))).toEqual([]);
  });

  it('refuses a name that never existed or was deleted', () => {
    expect(refusal(decideUpdateAlias(null, { aliasArn: ARN, targetKeyId: K2, aliasesOnTarget: 0 }))).toEqual(notFound);
    expect(refusal(decideUpdateAlias(live({ deleted: true }), { aliasArn: ARN, targetKeyId: K2, aliasesOnTarget: 0 }))).toEqual(notFound);
  });

  it('refuses to move onto a key that already has 50 aliases', () => {
    expect(eventsOf(decideUpdateAlias(live(), { aliasArn: ARN, targetKeyId: K2, aliasesOnTarget: 49 }))).toHaveLength(1);
    expect(refusal(decideUpdateAlias(live(), { aliasArn: ARN, targetKeyId: K2, aliasesOnTarget: 50 }))).toEqual({
      code: 'LimitExceededException',
      message: 'A KMS key can have at most 50 aliases.',
    });
  });
});

describe('decideDeleteAlias', () => {
  it('deletes, recording the key it pointed to', () => {
    expect(eventsOf(decideDeleteAlias(live({ targetKeyId: K2 }), ARN))).toEqual([{ type: 'AliasDeleted', data: { targetKeyId: K2 } }]);
  });

  it('refuses a name that never existed or is already deleted', () => {
    const notFound = { code: 'NotFoundException', message: `Alias ${ARN} is not found.` };
    expect(refusal(decideDeleteAlias(null, ARN))).toEqual(notFound);
    expect(refusal(decideDeleteAlias(live({ deleted: true }), ARN))).toEqual(notFound);
  });
});

describe('evolveAlias / foldAlias', () => {
  it('folds create, update, delete and re-create of one name', () => {
    const created = recorded({ type: 'AliasCreated', data: { accountId: ACCOUNT, aliasName: NAME, targetKeyId: K1 } }, 1, T0);
    const updated = recorded({ type: 'AliasUpdated', data: { targetKeyId: K2, previousTargetKeyId: K1 } }, 2, T1);
    const deleted = recorded({ type: 'AliasDeleted', data: { targetKeyId: K2 } }, 3, T1);
    const again = recorded({ type: 'AliasCreated', data: { accountId: ACCOUNT, aliasName: NAME, targetKeyId: K1 } }, 4, T2);

    expect(foldAlias([])).toBeNull();
    expect(foldAlias([created])).toEqual(live());
    expect(foldAlias([created, updated])).toEqual(live({ targetKeyId: K2, lastUpdatedDate: T1, version: 2n }));
    expect(foldAlias([created, updated, deleted])).toEqual(live({ targetKeyId: K2, lastUpdatedDate: T1, deleted: true, version: 3n }));
    // A re-created alias is a new alias: its dates start over; its stream continues.
    expect(foldAlias([created, updated, deleted, again])).toEqual(live({ creationDate: T2, lastUpdatedDate: T2, version: 4n }));
  });

  it('refuses an update or delete before the alias was created', () => {
    expect(() => evolveAlias(null, recorded({ type: 'AliasUpdated', data: { targetKeyId: K2, previousTargetKeyId: K1 } }, 1, T0))).toThrow(
      'AliasUpdated before AliasCreated',
    );
    expect(() => evolveAlias(null, recorded({ type: 'AliasDeleted', data: { targetKeyId: K1 } }, 1, T0))).toThrow('AliasDeleted before AliasCreated');
  });

  it('each decision, applied, gives the state the next decision sees', () => {
    let state: AliasState | null = null;
    let version = 0;
    const apply = (d: Decision<AliasEvent>, at: Date) => {
      for (const e of eventsOf(d)) state = evolveAlias(state, recorded(e, ++version, at));
    };
    apply(decideCreateAlias(state, createInput()), T0);
    expect(refusal(decideCreateAlias(state, createInput())).code).toBe('AlreadyExistsException');
    apply(decideUpdateAlias(state, { aliasArn: ARN, targetKeyId: K2, aliasesOnTarget: 0 }), T1);
    apply(decideDeleteAlias(state, ARN), T1);
    expect(refusal(decideDeleteAlias(state, ARN)).code).toBe('NotFoundException');
    expect(refusal(decideUpdateAlias(state, { aliasArn: ARN, targetKeyId: K1, aliasesOnTarget: 0 })).code).toBe('NotFoundException');
    apply(decideCreateAlias(state, createInput()), T2);
    expect(state).toEqual(live({ creationDate: T2, lastUpdatedDate: T2, version: 4n }));
  });

  it('names the stream by account and alias name', () => {
    expect(aliasStreamId(ACCOUNT, NAME)).toBe(`alias-${ACCOUNT}-alias/app`);
    expect(aliasStreamId('444455556666', NAME)).not.toBe(aliasStreamId(ACCOUNT, NAME));
  });
});

describe('acceptsAliasKeyId', () => {
  /** The operations of AWS's model whose request names a key (a member of KeyIdType). */
  const withKeyId = AWS_KMS_OPERATION_NAMES.filter((operation) => {
    const input = operationShapes(operation)?.input;
    return input !== undefined && Object.values(shape(input).members ?? {}).some((m) => m.shape === 'KeyIdType');
  });

  it('names keys by alias in the cryptographic operations, DescribeKey and GetPublicKey only, as AWS documents', () => {
    expect(withKeyId.filter(acceptsAliasKeyId).sort()).toEqual([
      'Decrypt',
      'DeriveSharedSecret',
      'DescribeKey',
      'Encrypt',
      'GenerateDataKey',
      'GenerateDataKeyPair',
      'GenerateDataKeyPairWithoutPlaintext',
      'GenerateDataKeyWithoutPlaintext',
      'GenerateMac',
      'GetPublicKey',
      'ReEncrypt',
      'Sign',
      'Verify',
      'VerifyMac',
    ]);
  });

  it('takes a key id or key ARN only everywhere else, CreateGrant, GetKeyLastUsage and ListAliases included', () => {
    for (const operation of [
      'CreateGrant',
      'ListGrants',
      'RevokeGrant',
      'DisableKey',
      'GetKeyPolicy',
      'GetKeyLastUsage',
      'ListAliases',
      'ScheduleKeyDeletion',
    ]) {
      expect(withKeyId).toContain(operation);
      expect(acceptsAliasKeyId(operation), operation).toBe(false);
    }
  });
});
