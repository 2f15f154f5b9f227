-- The minimal audit read side: an account's records, newest first.
CREATE INDEX events_audit_by_account
  ON events ((data ->> 'accountId'), global_position DESC)
  WHERE type = 'AuditRecord';
