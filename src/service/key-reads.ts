import type { Transaction } from 'kysely';
import type { GrantState } from '../domain/grant.ts';
import type { Database, Db } from '../store/database.ts';
import { aliasScope, keyScope, readFence } from '../store/fences.ts';
import { readGrantsFor } from '../store/grant-store.ts';
import { lockKeyShared } from '../store/key-locks.ts';
import { readKeyMaterial } from '../store/key-material-store.ts';
import { readAliasTarget, readKeyAccount, readPublicKey, readUsableKey, type UsableKey } from '../store/projections.ts';
import type { GrantSource } from './authorization.ts';
import type { KeyLookup } from './key-resolver.ts';

/**
 * Everything a cryptographic operation reads to decide: the key it names (by
 * id or alias), the key's row, public key and wrapped material, and the
 * caller's grants on it. Two sources answer it:
 * - `transactionalReads(trx)`: the request's own transaction, under the key's
 *   shared lock (the fallback, and the path without group commit);
 * - `KeyViewCache.reads()`: cached views, each remembering the fence version
 *   it was read at, so that the group-commit batch can refuse a record whose
 *   key or alias moved since (src/store/fences.ts).
 */
export interface KeyReads extends KeyLookup, GrantSource {
  /** Orders this operation with the keys' lifecycle changes (a no-op where the batch takes the locks). */
  lockShared(keyIds: readonly string[]): Promise<void>;
  usableKey(keyId: string): Promise<UsableKey | null>;
  publicKey(keyId: string): Promise<Buffer | null>;
  /** The material wrapped under the root key; the caller unwraps it. */
  material(keyId: string, keyMaterialId: string): Promise<Buffer | undefined>;
}

/** The reads of a request that holds its own transaction. */
export function transactionalReads(trx: Transaction<Database>): KeyReads {
  return {
    lockShared: (keyIds) => lockKeyShared(trx, keyIds),
    keyAccount: (keyId) => readKeyAccount(trx, keyId),
    aliasTarget: (accountId, aliasName) => readAliasTarget(trx, accountId, aliasName),
    usableKey: (keyId) => readUsableKey(trx, keyId),
    publicKey: (keyId) => readPublicKey(trx, keyId),
    grantsFor: (keyId, grantee) => readGrantsFor(trx, keyId, grantee),
    material: (keyId, keyMaterialId) => readKeyMaterial(trx, keyId, keyMaterialId),
  };
}

/** Cached reads of one request: the fence version of every scope it read. */
export interface FencedReads extends KeyReads {
  /** Scope → version its views were read at; undefined when two reads of one scope saw different versions (decide again). */
  fences(): ReadonlyMap<string, bigint> | undefined;
}

interface KeyView {
  key: UsableKey | null;
  publicKey: Buffer | null;
}

/** Everything cached about one key, valid as of one version of its fence. */
interface KeyEntry {
  version: Promise<bigint>;
  view?: Promise<KeyView>;
  grants: Map<string, Promise<GrantState[]>>;
  materials: Map<string, Promise<Buffer | undefined>>;
}

interface AliasEntry {
  version: Promise<bigint>;
  target: Promise<string | undefined>;
}

/** Grantees and materials cached per key: a key with 50,000 grants must not fill the process. */
const PER_KEY_LIMIT = 256;

/**
 * The process's cache of key views for group commit. An entry is read fence
 * first, data second, so the version it carries is never newer than its data;
 * a change that lands in between only makes the batch send the request back.
 * Entries are dropped when their fence is notified as moved (sql/0025's
 * NOTIFY, see `invalidate`), when a batch finds them stale, and oldest first
 * beyond `maxKeys`. Correctness never rests on the cache being fresh: that is
 * the fence's job. Material is cached wrapped, as it is at rest.
 */
export class KeyViewCache {
  readonly #db: Db;
  readonly #maxKeys: number;
  readonly #keys = new Map<string, KeyEntry>();
  readonly #aliases = new Map<string, AliasEntry>();

  constructor(db: Db, options: { maxKeys?: number } = {}) {
    this.#db = db;
    this.#maxKeys = options.maxKeys ?? 10_000;
  }

  /** A fresh set of reads for one request. */
  reads(): FencedReads {
    const seen = new Map<string, bigint>();
    let torn = false;
    const note = async (scope: string, version: Promise<bigint>): Promise<void> => {
      const v = await version;
      const before = seen.get(scope);
      if (before !== undefined && before !== v) torn = true;
      seen.set(scope, v);
    };
    const withKey = async <T>(keyId: string, read: (entry: KeyEntry) => Promise<T>): Promise<T> => {
      const entry = this.#keyEntry(keyId);
      const value = await read(entry);
      await note(keyScope(keyId), entry.version);
      return value;
    };
    return {
      fences: () => (torn ? undefined : seen),
      lockShared: async () => {},
      keyAccount: (keyId) => withKey(keyId, async (e) => (await this.#view(keyId, e)).key?.accountId),
      usableKey: (keyId) => withKey(keyId, async (e) => (await this.#view(keyId, e)).key),
      publicKey: (keyId) => withKey(keyId, async (e) => (await this.#view(keyId, e)).publicKey),
      grantsFor: (keyId, grantee) => withKey(keyId, (e) => this.#cached(e, e.grants, grantee, () => readGrantsFor(this.#db, keyId, grantee))),
      material: (keyId, keyMaterialId) =>
        withKey(keyId, (e) => this.#cached(e, e.materials, keyMaterialId, () => readKeyMaterial(this.#db, keyId, keyMaterialId))),
      aliasTarget: async (accountId, aliasName) => {
        const scope = aliasScope(accountId, aliasName);
        let entry = this.#aliases.get(scope);
        if (!entry) {
          const version = readFence(this.#db, scope);
          entry = { version, target: version.then(() => readAliasTarget(this.#db, accountId, aliasName)) };
          this.#remember(this.#aliases, scope, entry);
        }
        const target = await this.#settled(this.#aliases, scope, entry, entry.target);
        await note(scope, entry.version);
        return target;
      },
    };
  }

  /** Drops what a moved fence guarded: a scope from sql/0025_fences.sql, or '*' for everything. */
  invalidate(scope: string): void {
    if (scope === '*') {
      this.#keys.clear();
      this.#aliases.clear();
    } else if (scope.startsWith('key:')) {
      this.#keys.delete(scope.slice('key:'.length));
    } else {
      this.#aliases.delete(scope);
    }
  }

  /** Whether a view of the key is cached (for tests). */
  holds(keyId: string): boolean {
    return this.#keys.has(keyId);
  }

  /** How many keys and aliases are cached (for tests and metrics). */
  get size(): { keys: number; aliases: number } {
    return { keys: this.#keys.size, aliases: this.#aliases.size };
  }

  #keyEntry(keyId: string): KeyEntry {
    let entry = this.#keys.get(keyId);
    if (!entry) {
      entry = { version: readFence(this.#db, keyScope(keyId)), grants: new Map(), materials: new Map() };
      this.#remember(this.#keys, keyId, entry);
      // A failed fence read must not stay cached.
      entry.version.catch(() => this.#drop(this.#keys, keyId, entry!));
    }
    return entry;
  }

  #view(keyId: string, entry: KeyEntry): Promise<KeyView> {
    entry.view ??= entry.version.then(async () => ({ key: await readUsableKey(this.#db, keyId), publicKey: await readPublicKey(this.#db, keyId) }));
    return this.#settled(this.#keys, keyId, entry, entry.view);
  }

  /** A per-key value, read after the key's fence (so never older than it); bounded per key. */
  #cached<T>(entry: KeyEntry, map: Map<string, Promise<T>>, name: string, read: () => Promise<T>): Promise<T> {
    let value = map.get(name);
    if (!value) {
      if (map.size >= PER_KEY_LIMIT) map.delete(map.keys().next().value!);
      value = entry.version.then(read);
      map.set(name, value);
      value.catch(() => {
        if (map.get(name) === value) map.delete(name);
      });
    }
    return value;
  }

  /** Awaits a cached read; a failed one is dropped so that the next request reads again. */
  async #settled<K, E, T>(map: Map<K, E>, key: K, entry: E, value: Promise<T>): Promise<T> {
    try {
      return await value;
    } catch (error) {
      this.#drop(map, key, entry);
      throw error;
    }
  }

  #remember<K, E>(map: Map<K, E>, key: K, entry: E): void {
    if (map.size >= this.#maxKeys) map.delete(map.keys().next().value!);
    map.set(key, entry);
  }

  #drop<K, E>(map: Map<K, E>, key: K, entry: E): void {
    if (map.get(key) === entry) map.delete(key);
  }
}
