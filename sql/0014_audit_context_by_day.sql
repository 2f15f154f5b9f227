-- "Every decrypt for tenant acme last Tuesday": the encryption-context index
-- learns the day (issue 6, context filter at 10M records).
--
-- 0010's index answered `contexts @> [{"tenant":"acme"}]` for all time: at ten
-- million records a tenant has tens of thousands, and the first page of one day
-- visited every one of them on the heap (the planner would not add a BitmapAnd
-- with the time index). Here each record that has an encryption context also
-- indexes its UTC day, as one more element {"@day": <days since 1970-01-01>}.
-- jsonb_path_ops keeps one entry per path and value, so
-- `@> [{"tenant":"acme"}, {"@day": 20510}]` intersects two posting lists inside
-- the index and the heap sees only that tenant's records of that day. A range of
-- days is one such arm per day (a BitmapOr); the plain containment still works.
--
-- "@day" is a number and context values are strings: no context can match it.
-- Records without a context index nothing, as before.
--
-- The function spells everything out (index builds run with search_path =
-- pg_catalog). IMMUTABLE: the epoch of a timestamptz does not depend on TimeZone.
CREATE FUNCTION audit_encryption_contexts_by_day(data jsonb, recorded_at timestamptz) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN c = '[]'::jsonb THEN c
              ELSE c || jsonb_build_array(jsonb_build_object('@day', floor(extract(epoch FROM recorded_at) / 86400)::integer)) END
    FROM (SELECT '[]'::jsonb
            || coalesce(data -> 'requestParameters' -> 'encryptionContext', '[]'::jsonb)
            || coalesce(data -> 'requestParameters' -> 'sourceEncryptionContext', '[]'::jsonb)
            || coalesce(data -> 'requestParameters' -> 'destinationEncryptionContext', '[]'::jsonb) AS c) AS s
$$;
GRANT EXECUTE ON FUNCTION audit_encryption_contexts_by_day(jsonb, timestamptz) TO keyledger_app;

-- Built inside the migrator's transaction (no CONCURRENTLY): on a large existing
-- log, build it by hand with CREATE INDEX CONCURRENTLY first, then migrate.
CREATE INDEX IF NOT EXISTS events_audit_encryption_context_by_day
  ON events USING gin (audit_encryption_contexts_by_day(data, recorded_at) jsonb_path_ops)
  WHERE type = 'AuditRecord';
DROP INDEX events_audit_encryption_context;

DROP STATISTICS events_audit_encryption_context_stats;
CREATE STATISTICS events_audit_encryption_context_by_day_stats ON (audit_encryption_contexts_by_day(data, recorded_at)) FROM events;
