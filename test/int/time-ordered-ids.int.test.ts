import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/api/http-server.ts';
import { createTestApp, type Principal, type TestApp } from '../support/app.ts';
import { serveOverHttp } from '../support/aws.ts';
import { wire } from '../support/aws-clients.ts';

/**
 * The log's unique indexes on ids (events_event_id_key, and the request's
 * stream `request-<requestId>` in events_stream_id_stream_version_key) only grow
 * at their right edge if the ids are time-ordered: with random ids, every
 * record at 10M was a random page read and, after each checkpoint, a full-page
 * image in the WAL (issue 14). Every writer's ids must be version 7 UUIDs of
 * the wall clock: the group committer's (Encrypt), a state change's (CreateKey)
 * and a refusal's.
 */

let t: TestApp;
let server: RunningServer;
let admin: Principal;

beforeAll(async () => {
  t = await createTestApp();
  admin = await t.newAccount('time-ordered-ids');
  server = await serveOverHttp(t);
});
afterAll(async () => {
  await server?.close();
  await t?.close();
});

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const timeOf = (id: string) => Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);
const call = (operation: string, body: unknown) => wire(server, operation, JSON.stringify(body), admin, { signingDate: t.clock.now() });

describe('ids of what the log records', () => {
  it('are version 7 UUIDs of the wall clock, in the order the requests were made', async () => {
    const before = Date.now();
    const { position } = (await sql<{ position: string }>`SELECT coalesce(max(global_position), 0) AS position FROM events`.execute(t.db.owner)).rows[0]!;
    const requestIds: string[] = [];
    const created = await call('CreateKey', {});
    expect(created.status).toBe(200);
    requestIds.push(created.requestId!);
    for (let i = 0; i < 5; i++) {
      // A millisecond apart at least, so each request's id has a later time than the one before.
      await sleep(2);
      const encrypted = await call('Encrypt', { KeyId: created.json.KeyMetadata.KeyId, Plaintext: Buffer.from(`p${i}`).toString('base64') });
      expect(encrypted.status).toBe(200);
      requestIds.push(encrypted.requestId!);
    }
    await sleep(2);
    const refused = await call('Encrypt', { KeyId: '00000000-0000-4000-8000-000000000000', Plaintext: 'AA==' });
    expect(refused.errorType).toBe('NotFoundException');
    requestIds.push(refused.requestId!);
    const after = Date.now();

    // Request ids: sent in x-amzn-RequestId, in the order the requests were made.
    for (const id of requestIds) expect(id).toMatch(V7);
    expect([...requestIds].sort()).toEqual(requestIds);
    for (const id of requestIds) expect(timeOf(id)).toBeGreaterThanOrEqual(before);
    expect(timeOf(requestIds.at(-1)!)).toBeLessThanOrEqual(after);

    // Every event this test wrote (the key's own events, and an audit record per request): its event id, and the
    // request stream's id, are version 7 UUIDs of the wall clock (the records' own times are the test's clock, in 2026-03).
    const { rows } = await sql<{ event_id: string; stream_id: string; type: string }>`
      SELECT event_id::text, stream_id, type FROM events WHERE global_position > ${position} ORDER BY global_position`.execute(t.db.owner);
    expect(rows.filter((r) => r.type === 'AuditRecord').map((r) => r.stream_id)).toEqual(requestIds.map((id) => `request-${id}`));
    expect(rows.filter((r) => r.type !== 'AuditRecord').length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.event_id).toMatch(V7);
      expect(timeOf(row.event_id)).toBeGreaterThanOrEqual(before);
      expect(timeOf(row.event_id)).toBeLessThanOrEqual(after);
    }
    // The Encrypt records went through the group committer, a batch each: their event ids follow the log's order.
    const encrypts = rows
      .filter((r) => r.type === 'AuditRecord')
      .slice(1, 6)
      .map((r) => r.event_id);
    expect([...encrypts].sort()).toEqual(encrypts);
  });
});
