-- Issue 15: pg-boss no longer connects as the owner. Its schema is created
-- here, and migrating (src/store/migrations.ts, handOverJobsSchema) then gives
-- it and everything in it to the job queue's login, keyledger_job_queue, which
-- has no privilege outside it: pg-boss installs and migrates its own tables
-- there, and a worker's connection cannot touch the log. A worker started
-- against a database not migrated this far is told to migrate first.
CREATE SCHEMA IF NOT EXISTS keyledger_jobs;
