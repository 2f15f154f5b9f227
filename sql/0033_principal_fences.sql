-- Fences for cached credentials (issue 14, item 3). A process caches what
-- authenticating an access key reads (the key's status and wrapped secret, its
-- principal, tags and identity policies) with the version of the principal's
-- fence it was read at. A group-commit batch refuses a record whose caller was
-- authenticated on a version that has moved since, and a request running in a
-- transaction of its own re-reads its caller when the version moved: a revoked
-- access key or a changed identity policy takes effect by the next batch.
--
-- The scope is 'principal:<principal arn>', bumped (and NOTIFYed, as in
-- sql/0025) by every change of the rows authentication reads, by any writer.
CREATE FUNCTION bump_principal_fence() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN PERFORM bump_fence('principal:' || OLD.principal_arn); END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.principal_arn IS DISTINCT FROM OLD.principal_arn) THEN
    PERFORM bump_fence('principal:' || NEW.principal_arn);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER principals_fence AFTER INSERT OR UPDATE OR DELETE ON principals FOR EACH ROW EXECUTE FUNCTION bump_principal_fence();
CREATE TRIGGER access_keys_fence AFTER INSERT OR UPDATE OR DELETE ON access_keys FOR EACH ROW EXECUTE FUNCTION bump_principal_fence();
CREATE TRIGGER principal_policies_fence AFTER INSERT OR UPDATE OR DELETE ON principal_policies FOR EACH ROW EXECUTE FUNCTION bump_principal_fence();
CREATE TRIGGER principals_fence_truncate AFTER TRUNCATE ON principals FOR EACH STATEMENT EXECUTE FUNCTION bump_every_fence();
CREATE TRIGGER access_keys_fence_truncate AFTER TRUNCATE ON access_keys FOR EACH STATEMENT EXECUTE FUNCTION bump_every_fence();
CREATE TRIGGER principal_policies_fence_truncate AFTER TRUNCATE ON principal_policies FOR EACH STATEMENT EXECUTE FUNCTION bump_every_fence();

REVOKE ALL ON FUNCTION bump_principal_fence() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bump_principal_fence() TO keyledger_app;
