import type { Db } from '../store/database.ts';
import { readFence } from '../store/fences.ts';
import { readAccessKeyCredentials, type AccessKeyCredentials } from '../store/identity-store.ts';
import type { Caller } from './context.ts';

/** The fence of a principal (sql/0033): bumped by every change of its row, its access keys and its identity policies. */
export const principalScope = (principalArn: string) => `principal:${principalArn}`;

const PRINCIPAL_SCOPE_PREFIX = 'principal:';

/** The caller an access key's credentials authenticate, remembering the fence version they were read at. */
export function callerOf(credentials: AccessKeyCredentials): Caller {
  return {
    accountId: credentials.accountId,
    principalArn: credentials.principalArn,
    principalType: credentials.principalType,
    name: credentials.name,
    accessKeyId: credentials.accessKeyId,
    tags: credentials.tags,
    identityPolicies: credentials.identityPolicies,
    credentialsFence: credentials.fenceVersion,
  };
}

/**
 * Whether a caller authenticated from cached credentials (`credentialsFence`
 * set) is still who its credentials say, as of `db` (a request's
 * transaction): when the principal's fence has not moved, it is, and nothing
 * else is read (the caller itself is returned). When it has, the credentials
 * are read again and the caller as they stand now is returned (the runner
 * hands it to the request's scope), or undefined when its access key is no
 * longer active.
 */
export async function recheckCaller(db: Db, caller: Caller): Promise<Caller | undefined> {
  if (caller.credentialsFence === undefined) return caller;
  if ((await readFence(db, principalScope(caller.principalArn))) === caller.credentialsFence) return caller;
  const fresh = await readAccessKeyCredentials(db, caller.accessKeyId);
  if (!fresh || fresh.status !== 'Active') return undefined;
  return callerOf(fresh);
}

/**
 * The caller as its credentials stand now, read afresh (never from the
 * cache): whether its access key is still active, and the caller with its
 * current identity policies, for a stream that outlives the request that
 * opened it (an audit tail, a checkpoint stream) to check it may go on.
 */
export async function callerNow(db: Db, caller: Caller): Promise<{ active: boolean; caller: Caller }> {
  const fresh = await readAccessKeyCredentials(db, caller.accessKeyId);
  // Read just now: nothing for a request made with it to check again.
  const { credentialsFence: _readNow, ...rest } = caller;
  return { active: fresh?.status === 'Active', caller: { ...rest, identityPolicies: fresh?.identityPolicies ?? [] } };
}

/**
 * The process's cache of active access keys' credentials (wrapped, as at
 * rest), so that authenticating a request reads nothing. Each entry carries
 * the principal fence version it was read at (in the same statement as the
 * rows), and so does every caller made from it; a group-commit batch refuses
 * a record whose caller's fence moved, and a request in its own transaction
 * rechecks it (`recheckCaller`): a stale entry costs a retry, never a
 * request answered on revoked credentials or outdated identity policies.
 * Entries are dropped when their principal's fence is notified as moved
 * (see `invalidate`), and oldest first beyond `maxEntries`. Inactive and
 * unknown keys are never cached.
 */
export class CredentialCache {
  readonly #db: Db;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, Promise<AccessKeyCredentials | undefined>>();

  constructor(db: Db, options: { maxEntries?: number } = {}) {
    this.#db = db;
    this.#maxEntries = options.maxEntries ?? 10_000;
  }

  /** The credentials of `accessKeyId`, from the cache or read (and cached when active). */
  async get(accessKeyId: string): Promise<AccessKeyCredentials | undefined> {
    let entry = this.#entries.get(accessKeyId);
    if (!entry) {
      entry = readAccessKeyCredentials(this.#db, accessKeyId);
      if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
      this.#entries.set(accessKeyId, entry);
    }
    const pending = entry;
    try {
      const credentials = await pending;
      if (credentials?.status !== 'Active' && this.#entries.get(accessKeyId) === pending) this.#entries.delete(accessKeyId);
      return credentials;
    } catch (error) {
      if (this.#entries.get(accessKeyId) === pending) this.#entries.delete(accessKeyId);
      throw error;
    }
  }

  /** Drops what a moved fence guarded: a principal's scope, or '*' for everything; other scopes are not this cache's. */
  invalidate(scope: string): void {
    if (scope === '*') {
      this.#entries.clear();
      return;
    }
    if (!scope.startsWith(PRINCIPAL_SCOPE_PREFIX)) return;
    const principalArn = scope.slice(PRINCIPAL_SCOPE_PREFIX.length);
    for (const [accessKeyId, entry] of this.#entries) {
      // Settled entries name their principal; a pending one may be of it: drop it too.
      void entry.then(
        (credentials) => {
          if (credentials?.principalArn === principalArn && this.#entries.get(accessKeyId) === entry) this.#entries.delete(accessKeyId);
        },
        () => {},
      );
    }
  }

  /** How many access keys are cached (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }
}
