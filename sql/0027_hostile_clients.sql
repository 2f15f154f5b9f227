-- Request quotas shared between keyledger processes (issue 15). An account's
-- quota (AWS's requests per second) is split evenly between the processes
-- serving it: each takes 1/N, where N is the number of processes that
-- announced themselves here within the last 15 seconds. Each serving process
-- upserts its row every 5 seconds and deletes rows silent for a minute. Not
-- part of the log: nothing is replayed from it, and a lost row only makes the
-- other processes' shares larger until the next heartbeat.
CREATE TABLE quota_peers (
  process_id uuid        PRIMARY KEY,
  started_at timestamptz NOT NULL DEFAULT now(),
  seen_at    timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE, DELETE ON quota_peers TO keyledger_app;
