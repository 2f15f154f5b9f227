-- A fourth usage rollup: what principalActivity reports, per day and principal
-- (issue 6). Over 30 days a busy principal has tens of thousands of records,
-- each read from the heap by the principal index: 260-575 ms at 10M records,
-- depending on the page cache. Here one principal-day is a few hundred rows, read
-- in order from one covering index.
--
-- A record counts once under each of its dimensions: its operation, its source
-- IP, its access key, and each distinct key it names (none, one, or two for a
-- ReEncrypt). Records with no principal are not kept: principalActivity always
-- names one. Scope as in 0013: accountId, and recipientAccountId when another
-- account used one of our keys.
--
-- Folded by the same transaction as the other three (src/store/usage-rollup.ts),
-- so it holds exactly the records up to the checkpoint.
CREATE TABLE audit_usage_principal_daily (
  scope_account text        NOT NULL,
  principal_arn text        NOT NULL,
  day           timestamptz NOT NULL,
  dimension     text        NOT NULL CHECK (dimension IN ('operation', 'sourceIp', 'accessKey', 'key')),
  value         text,
  outcome       text,
  error_code    text,
  count         bigint      NOT NULL CHECK (count > 0),
  first_at      timestamptz NOT NULL,
  last_at       timestamptz NOT NULL
);
-- The measures are included so a principal's range is an index-only scan once
-- (auto)vacuum has marked the pages all-visible.
CREATE UNIQUE INDEX audit_usage_principal_daily_group
  ON audit_usage_principal_daily (scope_account, principal_arn, day, dimension, value, outcome, error_code)
  INCLUDE (count, first_at, last_at) NULLS NOT DISTINCT;

REVOKE ALL ON audit_usage_principal_daily FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON audit_usage_principal_daily TO keyledger_app;

-- Filled from the log, up to the checkpoint: the other rollups do not keep source
-- IPs, access keys, or a group's first record. The checkpoint's row lock keeps
-- every fold out until the migration commits. One pass over the audit records:
-- 7 minutes at 10M records on 2 cores, while the service keeps answering (the
-- fold waits; usage questions read what it has not folded from the log). A
-- worker of the previous version left running cannot fold past it (0019).
SELECT 1 FROM audit_usage_checkpoint FOR UPDATE;
SET LOCAL work_mem = '256MB';
INSERT INTO audit_usage_principal_daily (scope_account, principal_arn, day, dimension, value, outcome, error_code, count, first_at, last_at)
SELECT s.scope, b.data -> 'userIdentity' ->> 'principalArn', date_trunc('day', b.recorded_at, 'UTC'), d.dimension, d.value,
       b.data ->> 'outcome', b.data ->> 'errorCode', count(*), min(b.recorded_at), max(b.recorded_at)
  FROM events b
 CROSS JOIN LATERAL (
   SELECT b.data ->> 'accountId' AS scope WHERE (b.data ->> 'accountId') IS NOT NULL
   UNION ALL
   SELECT b.data ->> 'recipientAccountId'
    WHERE b.data ? 'recipientAccountId' AND (b.data ->> 'recipientAccountId') IS DISTINCT FROM (b.data ->> 'accountId')
 ) AS s
 CROSS JOIN LATERAL (
   SELECT 'operation' AS dimension, b.data ->> 'eventName' AS value
   UNION ALL SELECT 'sourceIp', b.data ->> 'sourceIp'
   UNION ALL SELECT 'accessKey', b.data -> 'userIdentity' ->> 'accessKeyId'
   UNION ALL SELECT DISTINCT 'key', e ->> 'arn'
      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(b.data -> 'resources') = 'array' THEN b.data -> 'resources' ELSE '[]'::jsonb END) AS e
     WHERE e ->> 'type' = 'AWS::KMS::Key'
 ) AS d
 WHERE b.type = 'AuditRecord'
   AND (b.data -> 'userIdentity' ->> 'principalArn') IS NOT NULL
   AND (b.transaction_id, b.global_position) <= (SELECT c.transaction_id, c.global_position FROM audit_usage_checkpoint c)
 GROUP BY 1, 2, 3, 4, 5, 6, 7;

ANALYZE audit_usage_principal_daily;
