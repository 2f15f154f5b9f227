import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KmsError } from '../../src/domain/errors.ts';
import { keyLockName } from '../../src/store/key-locks.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { waitFor } from '../support/concurrency.ts';
import { installTestTrigger } from '../support/database.ts';

/**
 * Issue 14, item 2: the fence orders a grant's revocation (RevokeGrant, and
 * RetireGrant by key and grant id or by grant token) against the group-commit
 * batches of the crypto operations the grant allowed, as it orders DisableKey.
 *
 * Two test-only triggers widen the race's windows; nothing is timed for speed:
 * - the revoking transaction sleeps 0.6 s after its grants row is gone (its
 *   fence already moved, not yet committed);
 * - a successful Decrypt record of the grantee sleeps 1 s in its batch's
 *   INSERT, so that a batch which read the fence before the revocation
 *   committed would commit after it.
 * A Decrypt the grantee starts while the revocation sleeps must not be
 * answered with the plaintext once the revocation has been acknowledged, and
 * in log order no successful Decrypt on the grant comes after the revocation.
 */

let t: TestApp;
let alice: Principal;
let grantee: Principal;
let removeTriggers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  t = await createTestApp();
  alice = await t.newAccount('grant-fence');
  grantee = await t.newUser(alice.accountId, 'grantee');
  removeTriggers = [
    // The revoking transaction's grants row is gone and its fence moved: it stays uncommitted for 0.6 s.
    await installTestTrigger(t.db.owner, 'test_slow_grant_retire', 'AFTER DELETE', 'grants', `PERFORM pg_sleep(0.6); RETURN NULL;`),
    await installTestTrigger(
      t.db.owner,
      'test_slow_grantee_decrypt',
      'BEFORE INSERT',
      'events',
      `IF NEW.type = 'AuditRecord' AND NEW.data ->> 'eventName' = 'Decrypt' AND NEW.data ->> 'outcome' = 'success'
          AND NEW.data -> 'userIdentity' ->> 'principalArn' = '${grantee.principalArn}' THEN
         PERFORM pg_sleep(1);
       END IF;
       RETURN NEW;`,
    ),
  ];
});
afterAll(async () => {
  for (const remove of removeTriggers) await remove();
  await t?.close();
});

type Revocation = 'RevokeGrant' | 'RetireGrant by key and grant id' | 'RetireGrant by grant token';

/** Whether the revoking transaction is inside the test trigger's sleep (its grants row deleted, not committed). */
async function revocationSleeping(): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event = 'PgSleep' AND query NOT ILIKE '%append_audit_batch%'`.execute(t.db.owner);
  return rows[0]!.n > 0;
}

describe.each<Revocation>(['RevokeGrant', 'RetireGrant by key and grant id', 'RetireGrant by grant token'])('%s racing a batch', (revocation) => {
  it('never answers a Decrypt on the grant once the revocation is acknowledged, and the log shows none after it', async () => {
    const keyId = (await t.gql(alice, `mutation { createKey(input: { description: "grant fence" }) { keyMetadata { keyId } } }`)).data.createKey.keyMetadata
      .keyId as string;
    const created = await t.app.grants.createGrant(await t.ctx(alice), {
      keyId,
      granteePrincipal: grantee.principalArn,
      retiringPrincipal: alice.principalArn,
      operations: ['Decrypt'],
    });
    const plaintext = randomBytes(32);
    const context = { purpose: `grant-fence-${keyId}` };
    const { ciphertextBlob } = await t.app.crypto.encrypt(await t.ctx(alice), { keyId, plaintext: Buffer.from(plaintext), encryptionContext: context });
    const decrypt = async () => t.app.crypto.decrypt({ ...(await t.ctx(grantee)), requestId: randomUUID() }, { ciphertextBlob, encryptionContext: context });
    // Allowed by the grant, and the key's view (with its grants) is now cached.
    expect((await decrypt()).plaintext.equals(plaintext)).toBe(true);

    const ctx = { ...(await t.ctx(alice)), requestId: randomUUID() };
    const revoking =
      revocation === 'RevokeGrant'
        ? t.app.grants.revokeGrant(ctx, { keyId, grantId: created.grantId })
        : revocation === 'RetireGrant by key and grant id'
          ? t.app.grants.retireGrant(ctx, { keyId, grantId: created.grantId })
          : t.app.grants.retireGrant(ctx, { grantToken: created.grantToken });
    let acknowledgedAt = Number.POSITIVE_INFINITY;
    const revoked = revoking.then(() => (acknowledgedAt = performance.now()));
    await waitFor(revocationSleeping, 'the revocation inside its uncommitted window');

    const raced = await decrypt().then(
      (out) => ({ ok: true as const, at: performance.now(), plaintext: out.plaintext }),
      (error: unknown) => ({ ok: false as const, at: performance.now(), error }),
    );
    await revoked;
    if (raced.ok) {
      // Answered: only before the revocation was acknowledged.
      expect(raced.at).toBeLessThan(acknowledgedAt);
    } else {
      expect(raced.error).toBeInstanceOf(KmsError);
      expect((raced.error as KmsError).code).toBe('AccessDeniedException');
    }
    await expect(decrypt()).rejects.toMatchObject({ code: 'AccessDeniedException' });

    // In log order, the revocation comes after every successful Decrypt the grant allowed.
    const { rows } = await sql<{ request_id: string; name: string; outcome: string | null }>`
      SELECT data ->> 'requestId' AS request_id, data ->> 'eventName' AS name, data ->> 'outcome' AS outcome
        FROM events
       WHERE type = 'AuditRecord'
         AND (data ->> 'requestId' = ${ctx.requestId}
              OR (data ->> 'eventName' = 'Decrypt' AND data -> 'userIdentity' ->> 'principalArn' = ${grantee.principalArn}
                  AND data -> 'resources' @> ${JSON.stringify([{ arn: `arn:aws:kms:${t.app.region}:${alice.accountId}:key/${keyId}` }])}::jsonb))
       ORDER BY transaction_id, global_position`.execute(t.db.owner);
    const revokedAt = rows.findIndex((r) => r.request_id === ctx.requestId);
    expect(rows[revokedAt]).toMatchObject({ name: revocation.split(' ')[0], outcome: 'success' });
    expect(rows.slice(0, revokedAt).filter((r) => r.outcome === 'success').length).toBeGreaterThan(0);
    expect(rows.slice(revokedAt + 1).filter((r) => r.outcome === 'success')).toEqual([]);
  });
});

describe('retiring takes the key exclusive only after the right to', () => {
  it('a caller without kms:RevokeGrant is refused at once while crypto holds the key; one with it waits for them, then revokes', async () => {
    const keyId = (await t.gql(alice, `mutation { createKey(input: { description: "grant lock order" }) { keyMetadata { keyId } } }`)).data.createKey
      .keyMetadata.keyId as string;
    const created = await t.app.grants.createGrant(await t.ctx(alice), { keyId, granteePrincipal: grantee.principalArn, operations: ['Decrypt'] });
    // A crypto operation in flight on the key, as far as the lock is concerned: its shared lock held in an open transaction.
    const holder = new pg.Client({ connectionString: t.db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))`, [keyLockName(keyId)]);
      const settledWithin = <T>(p: Promise<T>, ms: number) =>
        Promise.race([
          p.then(
            () => 'settled' as const,
            () => 'settled' as const,
          ),
          new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms)),
        ]);

      const refused = t.app.grants.revokeGrant({ ...(await t.ctx(grantee)), requestId: randomUUID() }, { keyId, grantId: created.grantId });
      expect(await settledWithin(refused, 5_000)).toBe('settled');
      await expect(refused).rejects.toMatchObject({ code: 'AccessDeniedException' });

      const revoking = t.app.grants.revokeGrant({ ...(await t.ctx(alice)), requestId: randomUUID() }, { keyId, grantId: created.grantId });
      expect(await settledWithin(revoking, 500)).toBe('pending');
      await holder.query('COMMIT');
      await revoking;
    } finally {
      await holder.end();
    }
    expect((await t.app.grants.listGrants(await t.ctx(alice), { keyId })).grants).toEqual([]);
  });
});
