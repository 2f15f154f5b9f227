-- Group-commit batches notify after their commit, not inside it (issue 14).
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
-- processes in one NOTIFY of its own every few milliseconds (AuditFeed#publish).
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
