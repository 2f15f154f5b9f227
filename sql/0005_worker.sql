-- What the worker last did, read by `keyledger worker --status`. One row per sweep;
-- the job queue itself lives in pg-boss's own schema (keyledger_jobs).

CREATE TABLE worker_sweeps (
  sweep             text PRIMARY KEY,
  -- The injected clock's time when the sweep ran (tests move it).
  last_swept_at     timestamptz NOT NULL,
  -- Work the sweep found due: keys PendingDeletion whose deletion_date has passed.
  due_key_deletions integer     NOT NULL CHECK (due_key_deletions >= 0),
  sweeps            bigint      NOT NULL DEFAULT 1
);

REVOKE ALL ON worker_sweeps FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON worker_sweeps TO keyledger_app;
