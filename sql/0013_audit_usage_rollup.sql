-- Usage rollups (issue 6): request counts per hour and per day, so usageStatistics
-- over months and the compliance report's "last use of each key" read thousands
-- of rows instead of every audit record.
--
-- They are an asynchronous projection of the AuditRecord events, folded by the
-- worker (src/store/usage-rollup.ts) in the followers' order, (transaction_id,
-- global_position), and only below the in-flight horizon. A record is in a rollup
-- if and only if its position is at or before the checkpoint; queries add the
-- records after it from the log, so an answer never depends on how far behind the
-- worker is. Derived data like the key projections: mutable, rebuildable
-- (empty both tables and reset the checkpoint), never the source of truth.
--
-- Scope: a record counts for its accountId and, when another account made a
-- request on one of our keys, for recipientAccountId too: the two branches of
-- audit-queries.ts' `scoped`.

-- Where the fold has got to; one row.
CREATE TABLE audit_usage_checkpoint (
  id             boolean PRIMARY KEY DEFAULT true CHECK (id),
  transaction_id xid8    NOT NULL,
  global_position bigint NOT NULL,
  records        bigint  NOT NULL DEFAULT 0,
  updated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO audit_usage_checkpoint (transaction_id, global_position) VALUES ('0'::xid8, 0);

-- Coarse: counts per hour, operation and outcome (no key, no principal). A record
-- counts once. Serves DAY, HOUR and OPERATION groupings over any range.
CREATE TABLE audit_usage_hourly (
  scope_account text        NOT NULL,
  hour          timestamptz NOT NULL,
  event_name    text,
  read_only     boolean,
  outcome       text,
  error_code    text,
  count         bigint      NOT NULL CHECK (count > 0),
  -- The newest record of the group.
  last_at       timestamptz NOT NULL,
  last_position bigint      NOT NULL
);
CREATE UNIQUE INDEX audit_usage_hourly_group
  ON audit_usage_hourly (scope_account, hour, event_name, read_only, outcome, error_code) NULLS NOT DISTINCT;

-- Fine: counts per day, principal, key, operation and outcome. A record on two keys
-- (ReEncrypt) has a row per key: key_rank 0 for the first (in arn order) or for no
-- key, 1 for the second, so counts that are not by key take key_rank = 0 only.
CREATE TABLE audit_usage_daily (
  scope_account text        NOT NULL,
  day           timestamptz NOT NULL,
  principal_arn text,
  key_arn       text,
  key_rank      smallint    NOT NULL,
  event_name    text,
  read_only     boolean,
  outcome       text,
  error_code    text,
  count         bigint      NOT NULL CHECK (count > 0),
  -- The newest record of the group: last use, and its event as evidence.
  last_at       timestamptz NOT NULL,
  last_position bigint      NOT NULL
);
CREATE UNIQUE INDEX audit_usage_daily_group
  ON audit_usage_daily (scope_account, day, principal_arn, key_arn, key_rank, event_name, read_only, outcome, error_code) NULLS NOT DISTINCT;
CREATE INDEX audit_usage_daily_key ON audit_usage_daily (scope_account, key_arn, day);
CREATE INDEX audit_usage_daily_principal ON audit_usage_daily (scope_account, principal_arn text_pattern_ops, day);

REVOKE ALL ON audit_usage_checkpoint, audit_usage_hourly, audit_usage_daily FROM PUBLIC;
GRANT SELECT, UPDATE ON audit_usage_checkpoint TO keyledger_app;
GRANT SELECT, INSERT, UPDATE ON audit_usage_hourly, audit_usage_daily TO keyledger_app;
