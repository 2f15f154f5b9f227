-- Only a fold that writes every usage rollup may move the checkpoint (issue 6).
--
-- The rollups hold exactly the records up to the checkpoint. A worker still
-- running the code from before a migration that added a rollup (0016, 0018)
-- would fold into the tables it knows and move the checkpoint past records the
-- new table never got: a gap nothing repairs. So the fold declares which rollups
-- it writes, by the migration that last changed them, in a transaction-local
-- setting (src/store/usage-rollup.ts, USAGE_FOLD_SCHEMA), and the checkpoint
-- refuses any other fold: an old worker's pass rolls back whole, and it logs
-- the error until it is upgraded. A migration that adds or changes a rollup
-- replaces this function with its own name.
--
-- To rebuild the rollups: resetUsageRollups in src/store/usage-rollup.ts.
CREATE FUNCTION audit_usage_fold_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('keyledger.usage_fold', true) IS DISTINCT FROM '0018' THEN
    RAISE EXCEPTION 'the usage rollups'' checkpoint can only be moved by a fold that writes every rollup of migration 0018 (this one declares %): upgrade the worker',
      coalesce(nullif(current_setting('keyledger.usage_fold', true), ''), 'nothing')
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER audit_usage_fold_guard BEFORE UPDATE ON audit_usage_checkpoint
  FOR EACH ROW EXECUTE FUNCTION audit_usage_fold_guard();
