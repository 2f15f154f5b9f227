-- Accounts, principals and access keys: the identity side (IAM's role, not KMS's).
-- Mutable tables; every change to them is still recorded as an audit event.

CREATE TABLE accounts (
  account_id char(12) PRIMARY KEY CHECK (account_id ~ '^[0-9]{12}$'),
  name       text        NOT NULL,
  created_at timestamptz NOT NULL
);

CREATE TABLE principals (
  principal_arn  text PRIMARY KEY,
  account_id     char(12)    NOT NULL REFERENCES accounts,
  principal_type text        NOT NULL CHECK (principal_type IN ('root', 'user', 'role')),
  name           text        NOT NULL,
  tags           jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at     timestamptz NOT NULL,
  UNIQUE (account_id, principal_type, name)
);

-- The secret is stored only wrapped under the root key (AES-256-GCM, AAD binds the
-- access key id): a later SigV4 endpoint needs the secret itself, so a hash will not do.
CREATE TABLE access_keys (
  access_key_id  text PRIMARY KEY CHECK (access_key_id ~ '^[A-Z0-9]{16,128}$'),
  principal_arn  text        NOT NULL REFERENCES principals,
  wrapped_secret bytea       NOT NULL,
  status         text        NOT NULL DEFAULT 'Active' CHECK (status IN ('Active', 'Inactive')),
  created_at     timestamptz NOT NULL
);
CREATE INDEX access_keys_principal ON access_keys (principal_arn);

REVOKE ALL ON accounts, principals, access_keys FROM PUBLIC;
GRANT SELECT ON accounts, principals, access_keys TO keyledger_app;
GRANT INSERT ON accounts, principals, access_keys TO keyledger_app;
GRANT UPDATE (status) ON access_keys TO keyledger_app;
