-- The forensic read side of the audit log (issue 6): indexes for auditEvents'
-- filters, data key lineage, principalActivity and usageStatistics.
--
-- Every index is partial on type = 'AuditRecord' and its expressions are exactly
-- the ones src/store/audit-queries.ts writes; change both together. The plans
-- they were chosen for are noted in audit-queries.ts (EXPLAIN notes).
--
-- Built inside the migrator's transaction (no CONCURRENTLY): on a large existing
-- log, build them by hand with CREATE INDEX CONCURRENTLY first, then migrate.

-- The encryption contexts of a request as one jsonb array: [encryptionContext]
-- for Encrypt/Decrypt/GenerateDataKey*, [source, destination] for ReEncrypt.
-- Containment of {"tenant":"acme"} in any of them is `@> '[{"tenant":"acme"}]'`.
-- Absent contexts add nothing ('[]' || '[]'), so rows without one index no entry.
CREATE FUNCTION audit_encryption_contexts(data jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT '[]'::jsonb
    || coalesce(data -> 'requestParameters' -> 'encryptionContext', '[]'::jsonb)
    || coalesce(data -> 'requestParameters' -> 'sourceEncryptionContext', '[]'::jsonb)
    || coalesce(data -> 'requestParameters' -> 'destinationEncryptionContext', '[]'::jsonb)
$$;

-- The keys of those contexts (jsonb_path_ops cannot answer "has key k"). The array
-- is spelled out, not audit_encryption_contexts(data): index builds run with
-- search_path = pg_catalog, so a function body may only name pg_catalog's functions.
-- Never raises: a non-object context (a refused request may record odd input) has no keys.
CREATE FUNCTION audit_encryption_context_keys(data jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT k ORDER BY k), '{}')
  FROM jsonb_array_elements('[]'::jsonb
         || coalesce(data -> 'requestParameters' -> 'encryptionContext', '[]'::jsonb)
         || coalesce(data -> 'requestParameters' -> 'sourceEncryptionContext', '[]'::jsonb)
         || coalesce(data -> 'requestParameters' -> 'destinationEncryptionContext', '[]'::jsonb)) AS c,
       jsonb_object_keys(CASE WHEN jsonb_typeof(c) = 'object' THEN c ELSE '{}'::jsonb END) AS k
$$;

-- The caller's address as inet, NULL when absent or not an address: an index
-- expression must never raise, or the audit write (and so the request) would fail.
-- IMMUTABLE although pg_input_is_valid is STABLE: inet's input reads no setting.
CREATE FUNCTION audit_source_ip(data jsonb) RETURNS inet
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN pg_input_is_valid(data ->> 'sourceIp', 'inet') THEN (data ->> 'sourceIp')::inet END
$$;

-- Page order: (transaction_id, global_position), the order followers use, so a
-- cursor below the in-flight horizon never skips or repeats (see audit-queries.ts).
-- Supersedes 0004's (accountId, global_position DESC).
CREATE INDEX events_audit_account_order
  ON events ((data ->> 'accountId'), transaction_id, global_position)
  WHERE type = 'AuditRecord';
DROP INDEX events_audit_by_account;

-- Time ranges (recorded_at is the record's eventTime).
CREATE INDEX events_audit_time
  ON events ((data ->> 'accountId'), recorded_at)
  WHERE type = 'AuditRecord';

-- eventName filter; usageStatistics by OPERATION.
CREATE INDEX events_audit_event_name
  ON events ((data ->> 'accountId'), (data ->> 'eventName'), recorded_at)
  WHERE type = 'AuditRecord';

-- Principal ARN, exact or prefix (text_pattern_ops: LIKE 'prefix%' in any collation);
-- principalActivity over a time range.
CREATE INDEX events_audit_principal
  ON events ((data ->> 'accountId'), (data -> 'userIdentity' ->> 'principalArn') text_pattern_ops, recorded_at)
  WHERE type = 'AuditRecord';

-- "What did this (leaked) access key do?"
CREATE INDEX events_audit_access_key
  ON events ((data -> 'userIdentity' ->> 'accessKeyId'), recorded_at)
  WHERE type = 'AuditRecord' AND (data -> 'userIdentity' ->> 'accessKeyId') IS NOT NULL;

-- Key filter: resources @> '[{"arn": "..."}]'.
CREATE INDEX events_audit_resources
  ON events USING gin ((data -> 'resources') jsonb_path_ops)
  WHERE type = 'AuditRecord';

-- Encryption context containment, and presence of a context key.
CREATE INDEX events_audit_encryption_context
  ON events USING gin (audit_encryption_contexts(data) jsonb_path_ops)
  WHERE type = 'AuditRecord';
CREATE INDEX events_audit_encryption_context_keys
  ON events USING gin (audit_encryption_context_keys(data))
  WHERE type = 'AuditRecord';

-- sourceIp <<= CIDR: btree on inet answers it as a range (network_subset's planner support).
CREATE INDEX events_audit_source_ip
  ON events ((data ->> 'accountId'), audit_source_ip(data))
  WHERE type = 'AuditRecord';

-- Failures are a few percent of requests: denied attempts by principal, key, code.
CREATE INDEX events_audit_failures
  ON events ((data ->> 'accountId'), (data ->> 'errorCode'), recorded_at)
  WHERE type = 'AuditRecord' AND (data ->> 'outcome') = 'failure';

-- Lineage, backwards: the ReEncrypt that produced a ciphertext (0006 has dataKeyId).
CREATE INDEX events_audit_destination_ciphertext
  ON events ((data -> 'additionalEventData' ->> 'destinationCiphertextId'))
  WHERE type = 'AuditRecord' AND data -> 'additionalEventData' ? 'destinationCiphertextId';

GRANT EXECUTE ON FUNCTION audit_encryption_contexts(jsonb), audit_encryption_context_keys(jsonb), audit_source_ip(jsonb) TO keyledger_app;

-- Statistics for the expressions above. ANALYZE keeps none for the expressions of
-- PARTIAL indexes, and without them the planner guesses 0.5% for "accountId = x"
-- (the whole log, for a single-tenant deployment) and picks absurd plans (a full
-- walk of the source-ip index for the first page). Extended statistics on the
-- expressions give it real frequencies.
CREATE STATISTICS events_audit_account_stats ON ((data ->> 'accountId')) FROM events;
CREATE STATISTICS events_audit_event_name_stats ON ((data ->> 'eventName')) FROM events;
CREATE STATISTICS events_audit_principal_stats ON ((data -> 'userIdentity' ->> 'principalArn')) FROM events;
CREATE STATISTICS events_audit_access_key_stats ON ((data -> 'userIdentity' ->> 'accessKeyId')) FROM events;
CREATE STATISTICS events_audit_outcome_stats ON ((data ->> 'outcome')) FROM events;
CREATE STATISTICS events_audit_error_code_stats ON ((data ->> 'errorCode')) FROM events;
CREATE STATISTICS events_audit_source_ip_stats ON (audit_source_ip(data)) FROM events;
CREATE STATISTICS events_audit_encryption_context_stats ON (audit_encryption_contexts(data)) FROM events;
CREATE STATISTICS events_audit_resources_stats ON ((data -> 'resources')) FROM events;
