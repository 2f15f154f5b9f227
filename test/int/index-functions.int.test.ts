import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * sql/0043 rewrote the functions in events' index expressions in PL/pgSQL, so
 * that an INSERT no longer has the planner parse their bodies, and sql/0044
 * rewrote audit_encryption_context_keys again without a query inside. The
 * indexes were not rebuilt: that is only right if each function still returns
 * exactly what its SQL-language body returned (sql/0010, sql/0014), for every
 * input. And the forensic queries must still find the indexes through the same
 * expressions.
 */

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

// The former bodies, as expressions over d (data) and r (recorded_at).
const CONTEXTS = `'[]'::jsonb
  || coalesce(d -> 'requestParameters' -> 'encryptionContext', '[]'::jsonb)
  || coalesce(d -> 'requestParameters' -> 'sourceEncryptionContext', '[]'::jsonb)
  || coalesce(d -> 'requestParameters' -> 'destinationEncryptionContext', '[]'::jsonb)`;
const FORMER_BY_DAY = `(SELECT CASE WHEN c = '[]'::jsonb THEN c
    ELSE c || jsonb_build_array(jsonb_build_object('@day', floor(extract(epoch FROM r) / 86400)::integer)) END
  FROM (SELECT ${CONTEXTS} AS c) AS s)`;
const FORMER_KEYS = `(SELECT coalesce(array_agg(DISTINCT k ORDER BY k), '{}')
  FROM jsonb_array_elements(${CONTEXTS}) AS c,
       jsonb_object_keys(CASE WHEN jsonb_typeof(c) = 'object' THEN c ELSE '{}'::jsonb END) AS k)`;
const FORMER_SOURCE_IP = `CASE WHEN pg_input_is_valid(d ->> 'sourceIp', 'inet') THEN (d ->> 'sourceIp')::inet END`;

const text = fc.oneof(fc.constantFrom('tenant', 'purpose', 'Tenant', 'a', '', 'é', '@day'), fc.string({ maxLength: 6 }));
const scalar = fc.oneof(text, fc.integer(), fc.boolean(), fc.constant(null));
const context = fc.oneof(
  { weight: 4, arbitrary: fc.dictionary(text, text, { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.array(fc.oneof(fc.dictionary(text, text, { maxKeys: 3 }), scalar), { maxLength: 3 }) },
  { weight: 1, arbitrary: scalar },
);
const sourceIp = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.constantFrom('10.0.0.0/8', '::1', '300.1.1.1', 'not an ip', '', ' 10.0.0.1', '2001:db8::/32'),
  fc.integer(),
  fc.constant(null),
);
const requestParameters = fc.record(
  { encryptionContext: context, sourceEncryptionContext: context, destinationEncryptionContext: context, keyId: text },
  { requiredKeys: [] },
);
const record = fc.record(
  {
    data: fc.oneof(
      { weight: 8, arbitrary: fc.record({ requestParameters: fc.oneof(requestParameters, scalar), sourceIp }, { requiredKeys: [] }) },
      { weight: 1, arbitrary: scalar },
    ),
    recordedAt: fc.option(fc.date({ min: new Date('1969-12-30T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }), { nil: null }),
  },
  { requiredKeys: ['data', 'recordedAt'] },
);

describe('the PL/pgSQL index functions', () => {
  it('return exactly what their former SQL bodies returned, for any record', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 60 }), async (records) => {
        const rows = records.map((r) => ({ d: r.data, r: r.recordedAt?.toISOString() ?? null }));
        const { rows: mismatches } = await sql<{ i: number; what: string; now: unknown; before: unknown }>`
          SELECT i, what, now, before FROM (
            SELECT x.i,
                   audit_encryption_contexts_by_day(x.d, x.r)::text AS by_day_now, ${sql.raw(FORMER_BY_DAY)}::text AS by_day_before,
                   audit_encryption_context_keys(x.d)::text AS keys_now, ${sql.raw(FORMER_KEYS)}::text AS keys_before,
                   audit_source_ip(x.d)::text AS ip_now, (${sql.raw(FORMER_SOURCE_IP)})::text AS ip_before
              FROM (SELECT (e.ordinality - 1)::int AS i, e.value -> 'd' AS d, (e.value ->> 'r')::timestamptz AS r
                      FROM jsonb_array_elements(${JSON.stringify(rows)}::jsonb) WITH ORDINALITY AS e) AS x
          ) AS compared,
          LATERAL (VALUES ('by_day', by_day_now, by_day_before), ('keys', keys_now, keys_before), ('ip', ip_now, ip_before)) AS c (what, now, before)
          WHERE now IS DISTINCT FROM before`.execute(db.owner);
        expect(mismatches.map((m) => ({ ...m, record: rows[m.i] }))).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  it('are PL/pgSQL, IMMUTABLE and PARALLEL SAFE, as an index expression needs', async () => {
    const { rows } = await sql<{ proname: string; lanname: string; provolatile: string; proparallel: string }>`
      SELECT p.proname, l.lanname, p.provolatile, p.proparallel FROM pg_proc AS p JOIN pg_language AS l ON l.oid = p.prolang
       WHERE p.proname IN ('audit_encryption_contexts_by_day', 'audit_encryption_context_keys', 'audit_source_ip') ORDER BY 1`.execute(db.owner);
    expect(rows).toEqual([
      { proname: 'audit_encryption_context_keys', lanname: 'plpgsql', provolatile: 'i', proparallel: 's' },
      { proname: 'audit_encryption_contexts_by_day', lanname: 'plpgsql', provolatile: 'i', proparallel: 's' },
      { proname: 'audit_source_ip', lanname: 'plpgsql', provolatile: 'i', proparallel: 's' },
    ]);
  });

  it('still lead the forensic predicates to their indexes', async () => {
    // 5,000 records, 500 distinct context keys, none from 10.0.0.0/8: each predicate below picks few of them.
    await sql`
      INSERT INTO events (stream_id, stream_version, event_id, type, data, metadata, recorded_at)
      SELECT 'request-plan-' || g, 1, gen_random_uuid(), 'AuditRecord',
             jsonb_build_object('accountId', '111122223333', 'sourceIp', '192.168.' || (g % 200) || '.1',
                                'requestParameters', jsonb_build_object('encryptionContext', jsonb_build_object('k' || (g % 500), 'v' || g))),
             '{}', now() - g * interval '1 minute'
        FROM generate_series(1, 5000) AS g`.execute(db.owner);
    await sql`ANALYZE events`.execute(db.owner);
    // A plan without the index would mean the query's expression no longer matches the index's.
    const plan = async (predicate: string): Promise<string> =>
      db.owner.transaction().execute(async (trx) => {
        const { rows } = await sql<{
          'QUERY PLAN': string;
        }>`EXPLAIN SELECT global_position FROM events WHERE type = 'AuditRecord' AND ${sql.raw(predicate)}`.execute(trx);
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
    expect(await plan(`audit_encryption_context_keys(data) @> ARRAY['k7']::text[]`)).toContain('events_audit_encryption_context_keys');
    expect(await plan(`audit_encryption_contexts_by_day(data, recorded_at) @> '[{"k7": "v7"}]'::jsonb`)).toContain('events_audit_encryption_context_by_day');
    expect(await plan(`(data ->> 'accountId') = '111122223333' AND audit_source_ip(data) <<= '10.0.0.0/8'::inet`)).toContain('events_audit_source_ip');
  });
});
