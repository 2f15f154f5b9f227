-- Authorization: identity policies attached to principals (IAM's side, mutable
-- like the rest of the identity tables; every change is an audited request),
-- and the grants projection (grants are event-sourced on grant-<id> streams).

CREATE TABLE principal_policies (
  principal_arn text        NOT NULL REFERENCES principals,
  policy_name   text        NOT NULL CHECK (policy_name ~ '^[\w+=,.@-]{1,128}$'),
  document      text        NOT NULL,
  updated_at    timestamptz NOT NULL,
  PRIMARY KEY (principal_arn, policy_name)
);

REVOKE ALL ON principal_policies FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON principal_policies TO keyledger_app;

CREATE TABLE grants (
  grant_id           text        PRIMARY KEY,
  key_id             uuid        NOT NULL,
  key_account_id     char(12)    NOT NULL,
  name               text,
  grantee_principal  text        NOT NULL,
  retiring_principal text,
  operations         text[]      NOT NULL,
  constraints        jsonb,
  issuing_account    text        NOT NULL,
  grant_token        text        NOT NULL UNIQUE,
  creation_date      timestamptz NOT NULL,
  version            bigint      NOT NULL
);
CREATE INDEX grants_key ON grants (key_id, creation_date, grant_id);
CREATE INDEX grants_grantee ON grants (grantee_principal, key_id);
CREATE INDEX grants_retiring ON grants (retiring_principal);

REVOKE ALL ON grants FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON grants TO keyledger_app;

-- The account that owns the resource of a request (CloudTrail's recipientAccountId):
-- a key's owner sees requests made on its keys from other accounts, denied ones too.
CREATE INDEX events_audit_by_recipient
  ON events ((data ->> 'recipientAccountId'), global_position DESC)
  WHERE type = 'AuditRecord' AND data ? 'recipientAccountId';
