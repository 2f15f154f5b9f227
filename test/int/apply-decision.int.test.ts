import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KmsError } from '../../src/domain/errors.ts';
import { keyStreamId, type KeyState } from '../../src/domain/key.ts';
import { decideCreateKey, decideDisableKey, decideEnableKey, type CreateKeyCommand } from '../../src/domain/key-decisions.ts';
import { applyDecision, keyStream } from '../../src/store/apply-decision.ts';
import { readStream, StreamVersionConflictError } from '../../src/store/event-store.ts';
import { readKeyProjection } from '../../src/store/projections.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const T0 = new Date('2026-03-01T09:00:00.000Z');
const T1 = new Date('2026-03-01T10:00:00.000Z');

/** CreateKey's command for a symmetric key `keyId`. */
const commandFor = (keyId: string): CreateKeyCommand => ({
  keyId,
  accountId: '111122223333',
  arn: `arn:aws:kms:us-east-1:111122223333:key/${keyId}`,
  description: '',
  keyUsage: 'ENCRYPT_DECRYPT',
  keySpec: 'SYMMETRIC_DEFAULT',
  origin: 'AWS_KMS',
  policy: '{}',
  tags: [],
  keyMaterialId: 'ab'.repeat(32),
});

/** A new key through applyDecision, in a transaction of its own. */
async function createKey(): Promise<KeyState> {
  const keyId = randomUUID();
  const command = commandFor(keyId);
  const key = await db.app.transaction().execute((trx) => applyDecision(trx, keyStream(keyId), null, decideCreateKey(null, command), T0));
  if (!key) throw new Error('CreateKey recorded nothing');
  return key;
}

describe('applyDecision', () => {
  it('appends a new stream at version 1, folds it and projects the state it returns', async () => {
    const key = await createKey();
    expect(key).toMatchObject({ keyState: 'Enabled', version: 1n, creationDate: T0 });
    expect(await readKeyProjection(db.app, key.keyId)).toEqual(key);
    expect((await readStream(db.app, keyStreamId(key.keyId))).map((e) => [e.streamVersion, e.type])).toEqual([[1n, 'KeyCreated']]);
  });

  it('appends with the version the decision was made on: a decision on a state another change has passed is a conflict, and writes nothing', async () => {
    const created = await createKey();
    const disabled = await db.app.transaction().execute((trx) => applyDecision(trx, keyStream(created.keyId), created, decideDisableKey(created), T1));
    expect(disabled).toMatchObject({ keyState: 'Disabled', version: 2n });
    await expect(
      db.app.transaction().execute((trx) => applyDecision(trx, keyStream(created.keyId), created, decideDisableKey(created), T1)),
    ).rejects.toBeInstanceOf(StreamVersionConflictError);
    expect(await readKeyProjection(db.app, created.keyId)).toEqual(disabled);
    expect(await readStream(db.app, keyStreamId(created.keyId))).toHaveLength(2);
  });

  it('throws a refusal as its KmsError, and returns the state unchanged for a decision without events, appending nothing', async () => {
    const created = await createKey();
    const again = decideCreateKey(created, commandFor(created.keyId));
    await expect(db.app.transaction().execute((trx) => applyDecision(trx, keyStream(created.keyId), created, again, T1))).rejects.toBeInstanceOf(KmsError);
    const same = await db.app.transaction().execute((trx) => applyDecision(trx, keyStream(created.keyId), created, decideEnableKey(created), T1));
    expect(same).toBe(created);
    expect(await readStream(db.app, keyStreamId(created.keyId))).toHaveLength(1);
  });
});
