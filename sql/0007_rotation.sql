-- Rotation state in the key projection, and indexes for the worker's sweep.
ALTER TABLE keys
  ADD COLUMN key_material_ids        text[]      NOT NULL DEFAULT '{}',
  ADD COLUMN rotation_enabled        boolean     NOT NULL DEFAULT false,
  ADD COLUMN rotation_period_in_days integer,
  ADD COLUMN next_rotation_date      timestamptz,
  ADD COLUMN on_demand_rotations     integer     NOT NULL DEFAULT 0;

CREATE INDEX keys_rotation_due ON keys (next_rotation_date) WHERE rotation_enabled AND key_state = 'Enabled';
CREATE INDEX keys_deletion_due ON keys (deletion_date) WHERE key_state = 'PendingDeletion';
