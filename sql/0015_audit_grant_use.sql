-- The compliance report's grants inventory asks, for every grant, whether any
-- request was ever allowed by it (src/store/compliance-queries.ts, readGrantUse):
-- over the whole log up to the report's end, not its window. Without an index
-- that is a scan of every record (5.5 s at 10M records). Requests allowed by a
-- grant are a small part of the log; this partial index holds only them.
--
-- The predicate is the query's conditions to the letter (the planner proves the
-- index usable only from the same expressions and constants).
--
-- Built inside the migrator's transaction (no CONCURRENTLY): on a large existing
-- log, build it by hand with CREATE INDEX CONCURRENTLY first, then migrate.
CREATE INDEX IF NOT EXISTS events_audit_grant_use
  ON events ((data ->> 'accountId'), recorded_at)
  WHERE type = 'AuditRecord'
    AND jsonb_typeof(data -> 'authorization' -> 'allowedBy') = 'array'
    AND (data -> 'authorization' -> 'allowedBy') @> '[{"kind":"grant"}]'::jsonb;
