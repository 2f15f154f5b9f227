-- Fences for group commit (issue 14). A cryptographic operation decides on a
-- cached view of its key (row, material, the caller's grants) and of the alias
-- it named; its audit record then joins a batch that commits many records in
-- one transaction. The batch, holding the keys' shared locks, compares the
-- fence versions each record was decided on with the current ones here, and
-- sends any request whose view moved back to be decided again.
--
-- The versions are bumped by triggers on the tables a decision reads, not by
-- the services: every writer (the API, the worker, the CLI, replay, another
-- process) bumps them, and none can forget to. A scope is 'key:<key id>' or
-- 'alias:<account id>:<alias name>'. A missing row is version 0.
--
-- Not a projection of the log: replay need not rebuild it, and it only grows.
-- Every bump also NOTIFYs its scope on keyledger_fence, at commit, so caches in
-- every process drop the view without waiting for a batch to find it stale.
CREATE TABLE fences (
  scope   text   PRIMARY KEY,
  version bigint NOT NULL
);

CREATE FUNCTION bump_fence(fence_scope text) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO fences AS f (scope, version) VALUES (fence_scope, 1)
  ON CONFLICT (scope) DO UPDATE SET version = f.version + 1;
  SELECT pg_notify('keyledger_fence', fence_scope);
$$;

CREATE FUNCTION bump_key_fence() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM bump_fence('key:' || OLD.key_id); END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT' OR NEW.key_id IS DISTINCT FROM OLD.key_id) THEN
    PERFORM bump_fence('key:' || NEW.key_id);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION bump_alias_fence() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM bump_fence('alias:' || OLD.account_id || ':' || OLD.alias_name); END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND (NEW.account_id, NEW.alias_name) IS DISTINCT FROM (OLD.account_id, OLD.alias_name)) THEN
    PERFORM bump_fence('alias:' || NEW.account_id || ':' || NEW.alias_name);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER keys_fence AFTER INSERT OR UPDATE OR DELETE ON keys FOR EACH ROW EXECUTE FUNCTION bump_key_fence();
CREATE TRIGGER key_materials_fence AFTER INSERT OR UPDATE OR DELETE ON key_materials FOR EACH ROW EXECUTE FUNCTION bump_key_fence();
CREATE TRIGGER grants_fence AFTER INSERT OR UPDATE OR DELETE ON grants FOR EACH ROW EXECUTE FUNCTION bump_key_fence();
CREATE TRIGGER aliases_fence AFTER INSERT OR UPDATE OR DELETE ON aliases FOR EACH ROW EXECUTE FUNCTION bump_alias_fence();
-- TRUNCATE (replay rebuilding the projections) fires no row trigger: it moves every fence.
CREATE FUNCTION bump_every_fence() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE fences SET version = version + 1;
  PERFORM pg_notify('keyledger_fence', '*');
  RETURN NULL;
END $$;
CREATE TRIGGER keys_fence_truncate AFTER TRUNCATE ON keys FOR EACH STATEMENT EXECUTE FUNCTION bump_every_fence();
CREATE TRIGGER key_materials_fence_truncate AFTER TRUNCATE ON key_materials FOR EACH STATEMENT EXECUTE FUNCTION bump_every_fence();
CREATE TRIGGER grants_fence_truncate AFTER TRUNCATE ON grants FOR EACH STATEMENT EXECUTE FUNCTION bump_every_fence();
CREATE TRIGGER aliases_fence_truncate AFTER TRUNCATE ON aliases FOR EACH STATEMENT EXECUTE FUNCTION bump_every_fence();

REVOKE ALL ON fences FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON fences TO keyledger_app;
REVOKE ALL ON FUNCTION bump_fence(text), bump_key_fence(), bump_alias_fence(), bump_every_fence() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bump_fence(text), bump_key_fence(), bump_alias_fence(), bump_every_fence() TO keyledger_app;
