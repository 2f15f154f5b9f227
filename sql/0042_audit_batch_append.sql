-- A group-commit batch in one statement, notified after its commit (issue 14).
--
-- 1. The notification.
--
-- A transaction that NOTIFYs takes a database-wide lock at commit and holds it
-- through its WAL flush, so that notifications queue in commit order. Every
-- batch of the group committer notified (sql/0034), so concurrent batches
-- committed one after another and could not share a flush: measured with
-- 8 connections committing 4-record batches, 2,655 rows/s with the
-- notification against 3,197 without.
--
-- A batch now says, with SET LOCAL keyledger.audit_notify = 'relayed', that its
-- writer publishes the notices itself once the batch has committed: the
-- process wakes its own live tails at once, and relays the notices to the other
-- processes in one NOTIFY of its own every 50 ms (AuditFeed#publish).
-- Every other writer of audit records (state changes, refusals, the worker,
-- scripts) is notified by this trigger as before. A relay lost to a crash
-- between the commit and the NOTIFY delays other processes' tails until their
-- next poll; it never loses a record (tails re-read the log from their cursor).
CREATE OR REPLACE FUNCTION notify_audit_records() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('keyledger.audit_notify', true) = 'relayed' THEN
    RETURN NULL;
  END IF;
  PERFORM pg_notify('keyledger_audit', payload)
  FROM (
    SELECT DISTINCT concat_ws('/',
      pg_current_xact_id()::text,
      coalesce(left(data ->> 'accountId', 32), ''),
      coalesce(left(data ->> 'recipientAccountId', 32), ''),
      coalesce(left(data ->> 'eventName', 128), '')) AS payload
    FROM inserted
    WHERE type = 'AuditRecord'
  ) AS notices;
  RETURN NULL;
END
$$;

-- 2. The batch in one statement.
--
-- A batch was sent as one simple-protocol query of five statements (BEGIN, the
-- locks, SET LOCAL, the INSERT, COMMIT), every value a dollar-quoted literal:
-- each statement parsed and planned anew, about 0.25 ms of Postgres CPU per
-- batch more than a bare INSERT. It is now one call, prepared once per
-- connection, in a transaction of its own (autocommit), with the records as
-- one jsonb parameter: [{s: stream id, t: type, d: data, m: metadata,
-- r: recorded at, f: {scope: version}}]. Inside, as before:
-- - the shared lock of every key the batch decided on, taken in the global
--   order (names sorted, C collation);
-- - then, in a statement of its own (a volatile function's statement takes its
--   snapshot when it starts, after the locks), the INSERT of the records whose
--   fences have not moved, returning the streams written and the transaction.
CREATE FUNCTION append_audit_batch(batch jsonb, lock_names text[])
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
      SELECT b.s, 1, gen_random_uuid(), b.t, b.d, coalesce(b.m, '{}'::jsonb), b.r
        FROM jsonb_to_recordset(batch) AS b (s text, t text, d jsonb, m jsonb, r timestamptz, f jsonb)
       WHERE NOT EXISTS (
         SELECT 1 FROM jsonb_each_text(coalesce(b.f, '{}'::jsonb)) AS fence (scope, version)
          WHERE fence.version::bigint <> coalesce((SELECT c.version FROM fences AS c WHERE c.scope = fence.scope), 0))
      RETURNING events.stream_id, events.transaction_id::text)
    SELECT w.stream_id, w.transaction_id FROM written AS w;
END
$$;
REVOKE ALL ON FUNCTION append_audit_batch(jsonb, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION append_audit_batch(jsonb, text[]) TO keyledger_app;
