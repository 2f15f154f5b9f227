-- Event ids from the writer (issue 14).
--
-- append_audit_batch drew each record's event id with gen_random_uuid(): a
-- version 4 UUID, so every record landed on a random leaf of events_event_id_key
-- (387 MB at 10M records). The group committer now sends a time-ordered id per
-- record (`e`, a version 7 UUID: src/domain/uuid-v7.ts), as the event store does
-- for every other append, and the index grows at its right edge. A writer that
-- sends none (one started before this migration) still gets a random one.
CREATE OR REPLACE FUNCTION append_audit_batch(batch jsonb, lock_names text[])
RETURNS TABLE (written_stream_id text, written_transaction_id text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, public AS $$
DECLARE
  lock_name text;
BEGIN
  FOR lock_name IN SELECT n FROM unnest(lock_names) AS n ORDER BY n COLLATE "C" LOOP
    PERFORM pg_advisory_xact_lock_shared(hashtextextended(lock_name, 0));
  END LOOP;
  PERFORM set_config('keyledger.audit_notify', 'relayed', true);
  RETURN QUERY
    WITH written AS (
      INSERT INTO events (stream_id, stream_version, event_id, type, data, metadata, recorded_at)
      SELECT b.s, 1, coalesce(b.e, gen_random_uuid()), b.t, b.d, coalesce(b.m, '{}'::jsonb), b.r
        FROM jsonb_to_recordset(batch) AS b (s text, e uuid, t text, d jsonb, m jsonb, r timestamptz, f jsonb)
       WHERE NOT EXISTS (
         SELECT 1 FROM jsonb_each_text(coalesce(b.f, '{}'::jsonb)) AS fence (scope, version)
          WHERE fence.version::bigint <> coalesce((SELECT c.version FROM fences AS c WHERE c.scope = fence.scope), 0))
      RETURNING events.stream_id, events.transaction_id::text)
    SELECT w.stream_id, w.transaction_id FROM written AS w;
END
$$;
REVOKE ALL ON FUNCTION append_audit_batch(jsonb, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION append_audit_batch(jsonb, text[]) TO keyledger_app;
