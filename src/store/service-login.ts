/**
 * The service's own Postgres login (issue 15, finding 8). The service used to
 * log in as the owner (often a superuser) and run as `keyledger_app` with
 * `SET ROLE`: one `RESET ROLE` and the session had everything back. It now
 * logs in as `keyledger_service`, a login role with no privileges of its own
 * (NOINHERIT) that may only become `keyledger_app`; the owner's login is left
 * to `migrate` (and to pg-boss's queue schema in the worker).
 *
 * Its password is derived from the owner's (HMAC-SHA256 under the owner's
 * password, labelled with the owner's user name), so every process that is
 * given DATABASE_URL computes the same one and none is stored anywhere; it
 * reveals nothing of the owner's. `migrateToLatest` creates the role, or sets
 * the password when a login with it fails. Roles are per cluster: installs
 * sharing a cluster with different owners' passwords would keep resetting
 * each other's, so give each its own cluster. A DATABASE_URL without a
 * password (trust, peer, a .pgpass file) keeps the owner's login with
 * `SET ROLE`, as before.
 */
import { createHmac } from 'node:crypto';

/** The service's login role. */
export const SERVICE_LOGIN = 'keyledger_service';

/**
 * The service login's password for the owner URL `ownerUrl`, or null when it
 * carries no password.
 *
 * @example
 * serviceLoginPassword('postgresql://postgres:s3cret@127.0.0.1:5432/keyledger'); // 43 base64url characters
 */
export function serviceLoginPassword(ownerUrl: string): string | null {
  const url = new URL(ownerUrl);
  const ownerPassword = decodeURIComponent(url.password);
  if (ownerPassword === '') return null;
  return createHmac('sha256', ownerPassword)
    .update(`keyledger service login for ${decodeURIComponent(url.username)}`)
    .digest('base64url');
}

/**
 * `ownerUrl` with the service login's user and password in place of the
 * owner's, or null when the owner URL carries no password.
 *
 * @example
 * const url = serviceLoginUrl(process.env.DATABASE_URL!) ?? process.env.DATABASE_URL!;
 */
export function serviceLoginUrl(ownerUrl: string): string | null {
  const password = serviceLoginPassword(ownerUrl);
  if (password === null) return null;
  const url = new URL(ownerUrl);
  if (decodeURIComponent(url.username) === SERVICE_LOGIN) return ownerUrl;
  url.username = SERVICE_LOGIN;
  url.password = password;
  return url.toString();
}
