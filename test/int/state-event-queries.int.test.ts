import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALIAS_EVENT_TYPES } from '../../src/domain/alias.ts';
import { GRANT_EVENT_TYPES } from '../../src/domain/grant.ts';
import { KEY_EVENT_TYPES } from '../../src/domain/key.ts';
import { readGrantStreamsOfKey } from '../../src/store/audit-queries.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * sql/0046 dropped events_type_position, which every audit record was written
 * into and no query of audit records read. The queries by a state event's type
 * must still find their events through an index, events_state_position
 * (WHERE type <> 'AuditRecord'), however many audit records surround them.
 */

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  // 5,000 audit records around 40 grants of 4 keys and 20 keys' creations.
  await sql`
    INSERT INTO events (stream_id, stream_version, event_id, type, data, metadata, recorded_at)
    SELECT 'request-state-' || g, 1, gen_random_uuid(), 'AuditRecord', jsonb_build_object('accountId', '111122223333', 'eventName', 'Decrypt'),
           '{}', now() - g * interval '1 second'
      FROM generate_series(1, 5000) AS g`.execute(db.owner);
  await sql`
    INSERT INTO events (stream_id, stream_version, event_id, type, data, metadata, recorded_at)
    SELECT 'grant-state-' || g, 1, gen_random_uuid(), 'GrantCreated', jsonb_build_object('keyId', 'key-' || (g % 4)), '{}'::jsonb, now() - interval '1 hour'
      FROM generate_series(1, 40) AS g
    UNION ALL
    SELECT 'key-state-' || g, 1, gen_random_uuid(), 'KeyCreated', '{}'::jsonb, '{}'::jsonb, now() - interval '1 hour'
      FROM generate_series(1, 20) AS g`.execute(db.owner);
  await sql`ANALYZE events`.execute(db.owner);
});
afterAll(async () => {
  await db?.drop();
});

const planOf = async (query: ReturnType<typeof sql>): Promise<string> => {
  const { rows } = await sql<{ 'QUERY PLAN': string }>`EXPLAIN ${query}`.execute(db.owner);
  return rows.map((r) => r['QUERY PLAN']).join('\n');
};

describe('queries by a state event type', () => {
  it('events_type_position is gone', async () => {
    const { rows } = await sql<{ indexname: string }>`SELECT indexname FROM pg_indexes WHERE tablename = 'events'`.execute(db.owner);
    expect(rows.map((r) => r.indexname)).toContain('events_state_position');
    expect(rows.map((r) => r.indexname)).not.toContain('events_type_position');
  });

  it("the grants of a key as of a time (readGrantStreamsOfKey) read events_state_position, and find the key's grants", async () => {
    const plan = await planOf(
      sql`SELECT DISTINCT stream_id FROM events WHERE type = ${'GrantCreated'} AND data ->> 'keyId' = ${'key-1'} AND recorded_at <= ${new Date()}`,
    );
    expect(plan).toContain('events_state_position');
    expect(plan).not.toContain('Seq Scan');
    expect((await readGrantStreamsOfKey(db.owner, 'key-1', new Date())).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `grant-state-${i * 4 + 1}`).sort(),
    );
  });

  it("replay's count of the state events reads events_state_position", async () => {
    const types = [...KEY_EVENT_TYPES, ...ALIAS_EVENT_TYPES, ...GRANT_EVENT_TYPES];
    const plan = await planOf(sql`SELECT count(*) AS total FROM events WHERE type = ANY(${types}::text[])`);
    expect(plan).toContain('events_state_position');
    expect(plan).not.toContain('Seq Scan');
    const { rows } = await sql<{ total: string }>`SELECT count(*)::text AS total FROM events WHERE type = ANY(${types}::text[])`.execute(db.owner);
    expect(rows[0]!.total).toBe('60');
  });
});
