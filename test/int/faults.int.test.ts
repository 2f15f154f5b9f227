import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { ADMINISTRATOR_ACCESS } from '../../src/service/identity-service.ts';
import { basicAuth, createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { serveOverHttp } from '../support/aws.ts';
import { storedAuditRecords, wire } from '../support/aws-clients.ts';

/**
 * Faults must not leave an answered request without its record (issue 15,
 * finding 7): a failure record whose first insert fails is written again, and
 * an authentication that fails unexpectedly is answered with a request id
 * whose record exists.
 */

let t: TestApp;
let server: RunningServer;
let me: Principal;

beforeAll(async () => {
  t = await createTestApp();
  me = await t.newAccount('faults');
  server = await serveOverHttp(t);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

describe('a failure record whose first insert fails', () => {
  it('is written on a second attempt, and the caller gets the real error', async () => {
    // Fails the next audit insert once: a sequence, because a raise rolls back anything transactional.
    await sql`create sequence failpoint_once`.execute(t.db.owner);
    await sql`create function failpoint_once() returns trigger language plpgsql security definer as $$
      begin if nextval('failpoint_once') = 1 then raise exception 'failpoint'; end if; return new; end $$`.execute(t.db.owner);
    await sql`create trigger failpoint_once before insert on events for each row when (new.type = 'AuditRecord') execute function failpoint_once()`.execute(
      t.db.owner,
    );
    try {
      const r = await t.gql(me, `{ describeKey(input: { keyId: "alias/nowhere" }) { keyMetadata { keyId } } }`);
      expect(r.errors![0]!.extensions!.code).toBe('NotFoundException');
      const records = await storedAuditRecords(t, r.errors![0]!.extensions!.requestId!);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ eventName: 'DescribeKey', outcome: 'failure', errorCode: 'NotFoundException' });
      expect(t.logLines.some((l) => l.includes('retrying a failure record'))).toBe(true);
    } finally {
      await sql`drop trigger failpoint_once on events`.execute(t.db.owner);
      await sql`drop function failpoint_once()`.execute(t.db.owner);
      await sql`drop sequence failpoint_once`.execute(t.db.owner);
    }
  });
});

describe('an authentication that fails unexpectedly', () => {
  it('is answered with KMSInternalException and a request id whose record exists, on both transports', async () => {
    // Credentials already in the process's cache are not read again: the key must be one never used before.
    const me = await t.newUser((await t.newAccount('faults-auth')).accountId, 'uncached', ADMINISTRATOR_ACCESS);
    await sql`revoke select on access_keys from keyledger_app`.execute(t.db.owner);
    try {
      const response = await t.yoga.fetch('http://keyledger.test/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: basicAuth(me) },
        body: JSON.stringify({ query: '{ listKeys { truncated } }' }),
      });
      const body = (await response.json()) as { errors: { extensions: { code: string; requestId: string } }[] };
      expect(response.status).toBe(500);
      expect(body.errors[0]!.extensions.code).toBe('KMSInternalException');
      const overGraphql = await storedAuditRecords(t, body.errors[0]!.extensions.requestId);
      expect(overGraphql).toHaveLength(1);
      expect(overGraphql[0]).toMatchObject({ eventName: 'ListKeys', outcome: 'failure', errorCode: 'KMSInternalException' });

      const answer = await wire(server, 'ListKeys', '{}', me);
      expect(answer.status).toBe(500);
      expect(answer.json.__type).toBe('KMSInternalException');
      const overAws = await storedAuditRecords(t, answer.requestId!);
      expect(overAws).toHaveLength(1);
      expect(overAws[0]).toMatchObject({ eventName: 'ListKeys', outcome: 'failure', errorCode: 'KMSInternalException' });
    } finally {
      await sql`grant select on access_keys to keyledger_app`.execute(t.db.owner);
    }
  });
});
