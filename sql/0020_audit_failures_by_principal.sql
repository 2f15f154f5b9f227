-- principalActivity's denied attempts (issue 6): the newest failed requests of
-- one principal with a denial code. events_audit_failures (0010) is by account
-- and error code, so one principal's denials were picked out of every
-- principal's: 35,000 heap rows read for 100 at 10M records (90 ms, far more
-- with a cold cache). Failures are a few percent of the log; this index holds
-- only them, by principal and time: the newest first, the error code checked in
-- the index (for any number of codes), a few hundred entries for a busy month.
--
-- Built inside the migrator's transaction (no CONCURRENTLY): on a large existing
-- log, build it by hand with CREATE INDEX CONCURRENTLY first, then migrate.
CREATE INDEX IF NOT EXISTS events_audit_failures_principal
  ON events ((data ->> 'accountId'), (data -> 'userIdentity' ->> 'principalArn'), recorded_at, (data ->> 'errorCode'))
  WHERE type = 'AuditRecord' AND (data ->> 'outcome') = 'failure';
