-- Issue 15: a worker or a server given only the service's and the job queue's
-- logins (KEYLEDGER_SERVICE_DATABASE_URL, KEYLEDGER_JOB_QUEUE_DATABASE_URL),
-- never the owner's, still refuses to run against a database that is not
-- migrated this far. It reads which migrations ran as keyledger_app: the
-- names only, which say nothing a server's own code does not.
GRANT SELECT ON kysely_migration TO keyledger_app;
