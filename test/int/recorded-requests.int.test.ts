import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { basicAuth, createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { serveOverHttp } from '../support/aws.ts';
import { storedAuditRecords, wire } from '../support/aws-clients.ts';

/**
 * Issue 15, finding 11: the README's rule of which requests are recorded.
 * Every request that reaches authentication is recorded (on the AWS endpoint,
 * a body that is not JSON or names a member twice included); what /graphql
 * refuses before authentication (not JSON, a batch, text/plain, PUT) runs
 * nothing and adds nothing to the log.
 */

let t: TestApp;
let server: RunningServer;
let admin: Principal;

beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('recorded-requests');
  server = await serveOverHttp(t);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

const recordCount = async () => Number((await sql<{ n: string }>`SELECT count(*) AS n FROM events WHERE type = 'AuditRecord'`.execute(t.db.owner)).rows[0]!.n);

describe('the AWS endpoint', () => {
  it.each([
    ['not JSON', '{"KeyId":', 'SerializationException'],
    ['a member named twice', '{"NumberOfBytes":8,"NumberOfBytes":16}', 'ValidationException'],
  ])('records a body that is %s', async (_what, body, code) => {
    const answer = await wire(server, 'GenerateRandom', body, admin);
    expect(answer.json.__type).toBe(code);
    const records = await storedAuditRecords(t, answer.requestId!);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ errorCode: code, accountId: admin.accountId });
  });
});

describe('/graphql', () => {
  it.each([
    ['not JSON', 'POST', 'application/json', '{"query":'],
    ['a batch', 'POST', 'application/json', JSON.stringify([{ query: '{ listKeys(input: {}) { truncated } }' }])],
    ['text/plain', 'POST', 'text/plain', '{ listKeys(input: {}) { truncated } }'],
    ['PUT', 'PUT', 'application/json', JSON.stringify({ query: '{ listKeys(input: {}) { truncated } }' })],
  ])('refuses a request that is %s before authentication, and records nothing', async (_what, method, contentType, body) => {
    const before = await recordCount();
    const response = await fetch(`${server.url}`, { method, headers: { 'content-type': contentType, authorization: basicAuth(admin) }, body });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(await recordCount()).toBe(before);
  });

  it('records a document that reaches authentication, even one that does not validate', async () => {
    const before = await recordCount();
    const r = await t.gql(admin, '{ noSuchField }');
    expect(r.errors?.[0]?.extensions?.code).toBe('ValidationException');
    expect(await recordCount()).toBe(before + 1);
  });
});
