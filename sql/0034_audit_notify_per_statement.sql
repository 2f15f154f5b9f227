-- One NOTIFY per distinct payload of an INSERT statement, not one trigger call
-- per row (issue 14, item 4).
--
-- 0011/0030 fired a row-level trigger for every audit record: a group commit
-- of N records ran N plpgsql calls and N pg_notify calls, which Postgres then
-- folded into a few notifications at COMMIT. The trigger is now per statement:
-- it reads the statement's rows from a transition table and notifies each
-- distinct `<transaction id>/<accountId>/<recipientAccountId>/<eventName>`
-- once (0030's payload, unchanged, so followers read it as before). A batch
-- of records of one account and operation is one call and one notification.
--
-- State events insert no audit record and notify nothing, as before.
CREATE FUNCTION notify_audit_records() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
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

DROP TRIGGER events_notify_audit ON events;
DROP FUNCTION notify_audit_record();

CREATE TRIGGER events_notify_audit
  AFTER INSERT ON events
  REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT
  EXECUTE FUNCTION notify_audit_records();

REVOKE ALL ON FUNCTION notify_audit_records() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION notify_audit_records() TO keyledger_app;
