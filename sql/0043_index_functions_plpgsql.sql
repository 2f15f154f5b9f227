-- The functions in events' index expressions, in PL/pgSQL (issue 14).
--
-- Every INSERT into events prepares the expressions of its indexes anew, and
-- preparing an expression asks the planner to inline each SQL-language function
-- in it: Postgres parses and analyses the function's body, then finds it cannot
-- be inlined (a FROM clause, or a STABLE call inside an IMMUTABLE function) and
-- calls it as before. Measured with perf on a backend writing one-record
-- batches: 15% of its CPU went to that (parse 5%, analysis 10%), about 0.1 ms a
-- statement; a body stored pre-parsed (BEGIN ATOMIC) only traded the parse for
-- as costly a deserialisation. The planner never tries to inline a PL/pgSQL
-- function, which compiles once per session; at eight records a statement it
-- costs no more per row.
--
-- Each function computes exactly what it computed before, for every input, so
-- the entries already in the indexes stay right and nothing is rebuilt
-- (test/int/index-functions.int.test.ts holds the new bodies to the old ones).
-- Queries name the functions as the indexes do (src/store/audit-queries.ts), and
-- the planner matches them as before. The bodies still name only pg_catalog's
-- functions: index builds run with search_path = pg_catalog.

CREATE OR REPLACE FUNCTION audit_encryption_contexts_by_day(data jsonb, recorded_at timestamptz) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  contexts jsonb := '[]'::jsonb
    || coalesce(data -> 'requestParameters' -> 'encryptionContext', '[]'::jsonb)
    || coalesce(data -> 'requestParameters' -> 'sourceEncryptionContext', '[]'::jsonb)
    || coalesce(data -> 'requestParameters' -> 'destinationEncryptionContext', '[]'::jsonb);
BEGIN
  IF contexts = '[]'::jsonb THEN
    RETURN contexts;
  END IF;
  RETURN contexts || jsonb_build_array(jsonb_build_object('@day', floor(extract(epoch FROM recorded_at) / 86400)::integer));
END
$$;

CREATE OR REPLACE FUNCTION audit_encryption_context_keys(data jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN (
    SELECT coalesce(array_agg(DISTINCT k ORDER BY k), '{}')
      FROM jsonb_array_elements('[]'::jsonb
             || coalesce(data -> 'requestParameters' -> 'encryptionContext', '[]'::jsonb)
             || coalesce(data -> 'requestParameters' -> 'sourceEncryptionContext', '[]'::jsonb)
             || coalesce(data -> 'requestParameters' -> 'destinationEncryptionContext', '[]'::jsonb)) AS c,
           jsonb_object_keys(CASE WHEN jsonb_typeof(c) = 'object' THEN c ELSE '{}'::jsonb END) AS k);
END
$$;

-- IMMUTABLE although pg_input_is_valid is STABLE: inet's input reads no setting.
CREATE OR REPLACE FUNCTION audit_source_ip(data jsonb) RETURNS inet
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN CASE WHEN pg_input_is_valid(data ->> 'sourceIp', 'inet') THEN (data ->> 'sourceIp')::inet END;
END
$$;
