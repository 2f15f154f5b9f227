-- The live tail's wake-up (issue 6): every transaction that commits audit
-- records sends one NOTIFY on channel keyledger_audit, delivered at commit.
--
-- A trigger rather than a NOTIFY sent by the request runner after commit:
-- - it covers every writer of audit records (the runner, the worker, other
--   processes and servers on the same database, scripts), not only one code path;
-- - NOTIFY inside the transaction is delivered exactly when the records become
--   visible, and not at all when it rolls back: no window where a listener is
--   woken before the rows can be read, nothing to forget after commit.
--
-- The payload is the writer's transaction id. Postgres folds identical
-- notifications of one transaction into one, so a transaction appending many
-- records notifies once. It is a wake-up only: listeners re-read the log from
-- their cursor below the in-flight horizon, and poll as a fallback, so a lost
-- notification delays the tail but never drops a record.
CREATE FUNCTION notify_audit_record() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('keyledger_audit', pg_current_xact_id()::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER events_notify_audit
  AFTER INSERT ON events
  FOR EACH ROW WHEN (NEW.type = 'AuditRecord')
  EXECUTE FUNCTION notify_audit_record();

-- Trigger functions run as the inserting role (keyledger_app); LISTEN needs no grant.
REVOKE ALL ON FUNCTION notify_audit_record() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION notify_audit_record() TO keyledger_app;
