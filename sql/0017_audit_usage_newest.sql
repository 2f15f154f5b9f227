-- The newest recorded_at among the records the usage rollups hold (issue 6).
-- A usage question whose range ends after it ("up to now") can take its last,
-- partial bucket from the rollups too: every folded record of that bucket is
-- before the end. Without it, the records of the current day were read from the
-- log (a hundred thousand at 10M records over 90 days).
ALTER TABLE audit_usage_checkpoint ADD COLUMN newest_recorded_at timestamptz;
UPDATE audit_usage_checkpoint SET newest_recorded_at = (SELECT max(last_at) FROM audit_usage_hourly);
