/**
 * `keyledger dev`'s first start: an account, its user `admin` with every
 * permission, and an access key, written to the credentials file (0600). The
 * file's presence means "done": nothing is created twice.
 *
 * Safe to run from two `dev` processes on one database at once (a session
 * advisory lock: the second waits, then finds the file), and after a crash half
 * way: the account id is chosen and written to `<file>.pending` before anything
 * is created, so the next start finishes that account instead of making another.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Keyledger } from '../app.ts';
import { principalArn } from '../domain/arn.ts';
import { KmsError } from '../domain/errors.ts';
import type { Logger } from '../logger.ts';
import { ADMINISTRATOR_ACCESS, randomAccountId } from '../service/identity-service.ts';
import { withSessionAdvisoryLock, type Db } from '../store/database.ts';
import { readOptional } from '../store/embedded-postgres.ts';
import { operatorContext } from './runtime.ts';

export interface AdminCredentials {
  accountId: string;
  principalArn: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The advisory lock key of the bootstrap: "kldevbst" in ASCII, as a bigint. */
const BOOTSTRAP_LOCK = '7740672246483678068';

/**
 * Creates the admin unless `file` exists. Returns the account created (or
 * finished), undefined when there was nothing to do.
 *
 * @example
 * const created = await bootstrapAdmin(app, db, adminCredentialsFile(dataDir), logger);
 */
export async function bootstrapAdmin(app: Keyledger, db: Db, file: string, logger: Logger): Promise<{ accountId: string } | undefined> {
  if ((await readOptional(file)) !== undefined) return undefined;
  return withSessionAdvisoryLock(db, BOOTSTRAP_LOCK, () => bootstrapLocked(app, file, logger));
}

async function bootstrapLocked(app: Keyledger, file: string, logger: Logger): Promise<{ accountId: string } | undefined> {
  // Another process may have finished while this one waited for the lock.
  if ((await readOptional(file)) !== undefined) return undefined;
  const pendingFile = `${file}.pending`;
  const pending = (await readOptional(pendingFile))?.trim();
  const resuming = pending !== undefined && /^[0-9]{12}$/.test(pending);
  const accountId = resuming ? pending : randomAccountId();
  await mkdir(dirname(file), { recursive: true, mode: 0o711 });
  if (!resuming) {
    // A new file ('wx': never through a link planted in its place).
    await rm(pendingFile, { force: true });
    await writeFile(pendingFile, `${accountId}\n`, { mode: 0o600, flag: 'wx' });
  } else {
    logger.warn({ accountId }, 'finishing the admin bootstrap a previous start left half done');
  }

  // Resuming: what the previous start created is kept (only its own account, named in the pending file).
  const created = <T>(step: Promise<T>): Promise<T | undefined> =>
    step.catch((error: unknown) => {
      if (resuming && error instanceof KmsError && error.code === 'AlreadyExistsException') return undefined;
      throw error;
    });
  await created(app.identity.createAccount(operatorContext(), { accountId, name: 'default' })).catch(async (error: unknown) => {
    // A fresh id that could not be made an account (taken, say) is not ours: never resume it.
    if (!resuming) await rm(pendingFile, { force: true });
    throw error;
  });
  const admin = principalArn(accountId, 'user', 'admin');
  await created(app.identity.createPrincipal(operatorContext(), { accountId, type: 'user', name: 'admin' }));
  // Every permission, as AWS's AdministratorAccess: the default key policy delegates to the account's identity policies.
  await app.identity.putPrincipalPolicy(operatorContext(), { principalArn: admin, policyName: 'AdministratorAccess', policyDocument: ADMINISTRATOR_ACCESS });
  const key = await app.identity.createAccessKey(operatorContext(), { principalArn: admin });
  const credentials: AdminCredentials = { accountId, principalArn: admin, accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
  // Whole or not at all: written beside it, then renamed over.
  const partial = `${file}.${process.pid}.tmp`;
  await rm(partial, { force: true });
  try {
    await writeFile(partial, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await rename(partial, file);
  } finally {
    // Only left when the rename failed: it holds the secret.
    await rm(partial, { force: true });
  }
  await rm(pendingFile, { force: true });
  logger.info({ accountId, principalArn: admin, accessKeyId: key.accessKeyId }, 'created the admin user');
  // Not the credentials: nothing downstream should hold the secret.
  return { accountId };
}
