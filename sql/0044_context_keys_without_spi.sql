-- audit_encryption_context_keys without a query inside (issue 14).
--
-- sql/0043's body was one SELECT (jsonb_array_elements, jsonb_object_keys,
-- array_agg DISTINCT ORDER BY). PL/pgSQL runs such a statement through SPI, with
-- an executor, a sort and a tuplestore per call: about 16 µs a record, 11% of a
-- backend's CPU while it inserted audit records (perf). Here every statement is
-- a plain expression, which PL/pgSQL evaluates without SPI: a jsonpath gathers
-- the keys of the contexts that are objects, and an insertion sort (under the
-- same default collation as ORDER BY k) keeps them sorted and distinct. About
-- 7 µs a record with two keys.
--
-- It returns exactly what the former bodies returned, for every input, so the
-- index's entries stay right and nothing is rebuilt
-- (test/int/index-functions.int.test.ts holds it to sql/0010's body).

CREATE OR REPLACE FUNCTION audit_encryption_context_keys(data jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  found jsonb := jsonb_path_query_array('[]'::jsonb
    || coalesce(data -> 'requestParameters' -> 'encryptionContext', '[]'::jsonb)
    || coalesce(data -> 'requestParameters' -> 'sourceEncryptionContext', '[]'::jsonb)
    || coalesce(data -> 'requestParameters' -> 'destinationEncryptionContext', '[]'::jsonb),
    'strict $[*] ? (@.type() == "object").keyvalue().key');
  keys text[] := '{}';
  k text;
  n integer;
  p integer;
BEGIN
  FOR i IN 0 .. jsonb_array_length(found) - 1 LOOP
    k := found ->> i;
    n := cardinality(keys);
    p := 1;
    WHILE p <= n AND keys[p] < k LOOP
      p := p + 1;
    END LOOP;
    IF p > n OR keys[p] <> k THEN
      keys := keys[1:p - 1] || k || keys[p:n];
    END IF;
  END LOOP;
  RETURN keys;
END
$$;
