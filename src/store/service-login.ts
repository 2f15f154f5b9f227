/**
 * The service's own Postgres login (issue 15, finding 8). The service used to
 * log in as the owner (often a superuser) and run as `keyledger_app` with
 * `SET ROLE`: one `RESET ROLE` and the session had everything back. It now
 * logs in as `keyledger_service`, a login role with no privileges of its own
 * (NOINHERIT) that may only become `keyledger_app`; the owner's login is left
 * to `migrate`. The job queue (pg-boss) logs in as `keyledger_job_queue`,
 * which owns the queue's schema and nothing else: it may create and migrate
 * pg-boss's tables there, and has no privilege on the log or the projections.
 *
 * Each login's password is derived from the owner's (HMAC-SHA256 under the
 * owner's password, labelled with the login and the owner's user name), so every process that is
 * given DATABASE_URL computes the same one and none is stored anywhere; it
 * reveals nothing of the owner's. `migrateToLatest` creates the roles, or sets
 * a password when a login with it fails. Roles are per cluster: installs
 * sharing a cluster with different owners' passwords would keep resetting
 * each other's, so give each its own cluster. A DATABASE_URL without a
 * password (trust, peer, a .pgpass file) keeps the owner's login with
 * `SET ROLE`, as before.
 */
import { createHmac } from 'node:crypto';

/** The service's login role. */
export const SERVICE_LOGIN = 'keyledger_service';

/** The job queue's login role: owner of JOBS_SCHEMA, nothing else. */
export const JOB_QUEUE_LOGIN = 'keyledger_job_queue';

/** pg-boss keeps its tables in a schema of its own, apart from the log and the projections. */
export const JOBS_SCHEMA = 'keyledger_jobs';

/** What each login's password is derived under, with the owner's user name after it. */
const PASSWORD_LABELS: Record<string, string> = {
  [SERVICE_LOGIN]: 'keyledger service login for',
  [JOB_QUEUE_LOGIN]: 'keyledger job queue login for',
};

/**
 * The password of `login` (the service's by default) for the owner URL
 * `ownerUrl`, or null when it carries no password.
 *
 * @example
 * serviceLoginPassword('postgresql://postgres:s3cret@127.0.0.1:5432/keyledger'); // 43 base64url characters
 */
export function serviceLoginPassword(ownerUrl: string, login: string = SERVICE_LOGIN): string | null {
  const label = PASSWORD_LABELS[login];
  if (!label) throw new Error(`${login} is not one of keyledger's logins`);
  const url = new URL(ownerUrl);
  const ownerPassword = decodeURIComponent(url.password);
  if (ownerPassword === '') return null;
  return createHmac('sha256', ownerPassword)
    .update(`${label} ${decodeURIComponent(url.username)}`)
    .digest('base64url');
}

/**
 * `ownerUrl` with the user and password of `login` (the service's by default)
 * in place of the owner's, or null when the owner URL carries no password.
 *
 * @example
 * const url = serviceLoginUrl(process.env.DATABASE_URL!) ?? process.env.DATABASE_URL!;
 */
export function serviceLoginUrl(ownerUrl: string, login: string = SERVICE_LOGIN): string | null {
  const password = serviceLoginPassword(ownerUrl, login);
  if (password === null) return null;
  const url = new URL(ownerUrl);
  if (decodeURIComponent(url.username) === login) return ownerUrl;
  url.username = login;
  url.password = password;
  return url.toString();
}

/**
 * The URL pg-boss connects with: the job queue's login in place of the owner's
 * (see serviceLoginUrl), or the owner's own URL when it carries no password.
 *
 * @example
 * new PgBoss({ connectionString: jobQueueUrl(process.env.DATABASE_URL!), schema: JOBS_SCHEMA });
 */
export function jobQueueUrl(ownerUrl: string): string {
  return serviceLoginUrl(ownerUrl, JOB_QUEUE_LOGIN) ?? ownerUrl;
}

/** The URLs a serving or working process logs in with: the service's (as keyledger_app) and the job queue's (pg-boss). */
export interface ServiceLogins {
  service: string;
  jobQueue: string;
}

/**
 * Both logins of the owner URL `ownerUrl`, what `keyledger migrate
 * --print-logins` prints, or null when it carries no password (there are no
 * such logins; the owner's own is used).
 *
 * @example
 * const logins = serviceLogins(process.env.DATABASE_URL!); // { service: 'postgresql://keyledger_service:…', jobQueue: '…' }
 */
export function serviceLogins(ownerUrl: string): ServiceLogins | null {
  const service = serviceLoginUrl(ownerUrl);
  const jobQueue = serviceLoginUrl(ownerUrl, JOB_QUEUE_LOGIN);
  return service === null || jobQueue === null ? null : { service, jobQueue };
}

/**
 * Whether pg-boss should create its schema when it logs in with `url`: only
 * as the owner (a URL without a password, see jobQueueUrl). The job queue's
 * login owns the schema migrating made, and may not create schemas.
 *
 * @example
 * jobQueueCreatesSchema(jobQueueUrl('postgresql://postgres:s3cret@127.0.0.1:5432/keyledger')) // false: keyledger_job_queue logs in
 * jobQueueCreatesSchema('postgresql://postgres@127.0.0.1:5432/keyledger')                    // true: the owner itself
 */
export function jobQueueCreatesSchema(url: string): boolean {
  return decodeURIComponent(new URL(url).username) !== JOB_QUEUE_LOGIN;
}
