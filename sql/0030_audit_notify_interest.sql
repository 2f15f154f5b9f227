-- Live tails woken only by records they may want (issue 15, finding 6).
--
-- 0011's notification carried the writer's transaction id only, so every
-- transaction that committed audit records woke every open tail of every
-- account, and each re-read the log: 100 idle tails turned one Encrypt into
-- 100 queries. The payload now also names what the record is about:
--
--   <transaction id>/<accountId>/<recipientAccountId>/<eventName>
--
-- (empty text for a member the record lacks). A process's feed wakes a tail
-- only when the account it reads and its eventNames filter can match, and ends
-- or re-checks a tail when its account's identity policies change. Postgres
-- still folds identical notifications of one transaction into one, so a group
-- commit of many records of a few accounts and operations sends a few.
-- The payload stays far below NOTIFY's 8000 bytes: account ids are 12 digits
-- and event names are the service's own, cut at 128 characters regardless.
CREATE OR REPLACE FUNCTION notify_audit_record() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('keyledger_audit', concat_ws('/',
    pg_current_xact_id()::text,
    coalesce(left(NEW.data ->> 'accountId', 32), ''),
    coalesce(left(NEW.data ->> 'recipientAccountId', 32), ''),
    coalesce(left(NEW.data ->> 'eventName', 128), '')));
  RETURN NULL;
END
$$;
