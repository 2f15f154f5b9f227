-- A third usage rollup: per day and key, without the principal (issue 6). The
-- daily rollup of 0013 keeps principal x key x operation, about one row per six
-- records at the seed's spread, so "last use of every key" in the compliance
-- report read 1.2M rows at 10M records (1.4 s). Without the principal a key has
-- a row per day, operation and outcome.
--
-- Filled from audit_usage_daily, which holds exactly the records up to the
-- checkpoint: the same fold (src/store/usage-rollup.ts) keeps all three in step.
CREATE TABLE audit_usage_key_daily (
  scope_account text        NOT NULL,
  day           timestamptz NOT NULL,
  key_arn       text,
  key_rank      smallint    NOT NULL,
  event_name    text,
  read_only     boolean,
  outcome       text,
  error_code    text,
  count         bigint      NOT NULL CHECK (count > 0),
  last_at       timestamptz NOT NULL,
  last_position bigint      NOT NULL
);
CREATE UNIQUE INDEX audit_usage_key_daily_group
  ON audit_usage_key_daily (scope_account, day, key_arn, key_rank, event_name, read_only, outcome, error_code) NULLS NOT DISTINCT;
CREATE INDEX audit_usage_key_daily_key ON audit_usage_key_daily (scope_account, key_arn, day);

-- The fold holds the checkpoint's row lock while it writes: take it, so no fold
-- runs between this copy and the migration's commit.
SELECT 1 FROM audit_usage_checkpoint FOR UPDATE;
INSERT INTO audit_usage_key_daily (scope_account, day, key_arn, key_rank, event_name, read_only, outcome, error_code, count, last_at, last_position)
SELECT scope_account, day, key_arn, key_rank, event_name, read_only, outcome, error_code, sum(count), max(last_at), max(last_position)
  FROM audit_usage_daily
 GROUP BY scope_account, day, key_arn, key_rank, event_name, read_only, outcome, error_code;

REVOKE ALL ON audit_usage_key_daily FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON audit_usage_key_daily TO keyledger_app;

-- Statistics now, not at autovacuum's leisure: the report reads the whole table.
ANALYZE audit_usage_key_daily;
