-- Projections of the key and alias streams, updated inline in the transaction that
-- appends their events, and rebuilt from the log by `keyledger replay`.

CREATE TABLE keys (
  key_id                          uuid PRIMARY KEY,
  account_id                      char(12)    NOT NULL,
  arn                             text        NOT NULL UNIQUE,
  description                     text        NOT NULL,
  key_state                       text        NOT NULL,
  enabled                         boolean     NOT NULL,
  key_usage                       text        NOT NULL,
  key_spec                        text        NOT NULL,
  origin                          text        NOT NULL,
  key_manager                     text        NOT NULL,
  multi_region                    boolean     NOT NULL,
  policy                          text        NOT NULL,
  creation_date                   timestamptz NOT NULL,
  deletion_date                   timestamptz,
  pending_deletion_window_in_days integer,
  version                         bigint      NOT NULL
);
CREATE INDEX keys_account ON keys (account_id, key_id);

CREATE TABLE key_tags (
  key_id    uuid NOT NULL REFERENCES keys ON DELETE CASCADE,
  tag_key   text NOT NULL,
  tag_value text NOT NULL,
  PRIMARY KEY (key_id, tag_key)
);

CREATE TABLE aliases (
  account_id        char(12)    NOT NULL,
  alias_name        text        NOT NULL,
  target_key_id     uuid        NOT NULL,
  creation_date     timestamptz NOT NULL,
  last_updated_date timestamptz NOT NULL,
  version           bigint      NOT NULL,
  PRIMARY KEY (account_id, alias_name)
);
CREATE INDEX aliases_target ON aliases (target_key_id);

REVOKE ALL ON keys, key_tags, aliases FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON keys, key_tags, aliases TO keyledger_app;
