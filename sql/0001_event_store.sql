-- The one append-only log. Every KMS request and every state change is a row here.
--
-- Readers that follow the log read in (transaction_id, global_position) order and
-- only below the horizon of transactions still in flight in this database
-- (logHorizon in src/store/event-store.ts, read from pg_locks; not
-- pg_snapshot_xmin, which is cluster-wide): global_position is assigned at INSERT
-- time, so a long transaction can commit a lower position after a reader has
-- passed it; transaction ids below the horizon are all finished.

-- Roles are cluster-wide; several keyledger databases (one per test file) may run
-- this concurrently, hence the tolerant DO blocks.
DO $$
BEGIN
  CREATE ROLE keyledger_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

DO $$
BEGIN
  EXECUTE format('GRANT keyledger_app TO %I', current_user);
EXCEPTION WHEN OTHERS THEN NULL; -- already a member, or a superuser (who may SET ROLE anyway)
END $$;

CREATE TABLE streams (
  stream_id text PRIMARY KEY,
  version   bigint NOT NULL CHECK (version >= 1)
);

CREATE TABLE events (
  global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
  stream_id       text        NOT NULL,
  stream_version  bigint      NOT NULL CHECK (stream_version >= 1),
  event_id        uuid        NOT NULL UNIQUE,
  type            text        NOT NULL,
  data            jsonb       NOT NULL,
  metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
  recorded_at     timestamptz NOT NULL,
  UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_follow_order ON events (transaction_id, global_position);
CREATE INDEX events_type_position ON events (type, global_position);

CREATE FUNCTION refuse_event_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the event log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;

-- Statement-level, so it fires even when no row matches (and for TRUNCATE).
CREATE TRIGGER events_append_only
  BEFORE UPDATE OR DELETE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_mutation();
CREATE TRIGGER events_no_truncate
  BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_mutation();
-- ALWAYS: by default triggers do not fire under session_replication_role =
-- replica, which a superuser (or a restore tool) may set in any session.
ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only;
ALTER TABLE events ENABLE ALWAYS TRIGGER events_no_truncate;

REVOKE ALL ON events, streams FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO keyledger_app;
GRANT SELECT, INSERT ON events TO keyledger_app;
GRANT SELECT, INSERT, UPDATE ON streams TO keyledger_app;
