-- Backing key material, one row per key material version. Mutable on purpose:
-- deleting a row is crypto-shredding. The log never holds material; its events
-- name it only by key_material_id. `wrapped` is AES-256-GCM under the root key,
-- with the key id and key material id bound as AAD.
CREATE TABLE key_materials (
  key_id          uuid        NOT NULL,
  key_material_id char(64)    NOT NULL CHECK (key_material_id ~ '^[0-9a-f]{64}$'),
  wrapped         bytea       NOT NULL,
  created_at      timestamptz NOT NULL,
  PRIMARY KEY (key_id, key_material_id)
);

REVOKE ALL ON key_materials FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON key_materials TO keyledger_app;

ALTER TABLE keys ADD COLUMN current_key_material_id char(64);

-- Who used which data key: one indexed lookup from a data key to every request on it.
CREATE INDEX events_audit_data_key
  ON events ((data -> 'additionalEventData' ->> 'dataKeyId'), global_position)
  WHERE type = 'AuditRecord' AND data -> 'additionalEventData' ? 'dataKeyId';
