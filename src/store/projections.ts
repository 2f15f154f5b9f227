import { sql, type Kysely, type Transaction } from 'kysely';
import type { AliasState } from '../domain/alias.ts';
import type { KeyState, KeyStateName } from '../domain/key.ts';
import type { Database } from './database.ts';

type Executor = Kysely<Database> | Transaction<Database>;

/**
 * The `keys` row of a key's state.
 *
 * @example
 * keyRow(key) // { key_id, account_id, arn, key_state: 'Enabled', enabled: true, …, public_key: null, imported_materials: '[]', version: 1n }
 */
export function keyRow(key: KeyState) {
  return {
    key_id: key.keyId,
    account_id: key.accountId,
    arn: key.arn,
    description: key.description,
    key_state: key.keyState,
    enabled: key.keyState === 'Enabled',
    key_usage: key.keyUsage,
    key_spec: key.keySpec,
    origin: key.origin,
    key_manager: key.keyManager,
    multi_region: key.multiRegion,
    policy: key.policy,
    creation_date: key.creationDate,
    deletion_date: key.deletionDate,
    pending_deletion_window_in_days: key.pendingDeletionWindowInDays,
    current_key_material_id: key.currentKeyMaterialId,
    key_material_ids: key.keyMaterialIds,
    rotation_enabled: key.rotationEnabled,
    rotation_period_in_days: key.rotationPeriodInDays,
    next_rotation_date: key.nextRotationDate,
    on_demand_rotations: key.onDemandRotations,
    public_key: key.publicKey === null ? null : Buffer.from(key.publicKey, 'base64'),
    imported_materials: JSON.stringify(key.importedMaterials),
    version: key.version,
  };
}

/**
 * The `key_tags` rows of a key's state.
 *
 * @example
 * tagRows(key) // [{ key_id: key.keyId, tag_key: 'team', tag_value: 'payments' }]
 */
export const tagRows = (key: KeyState) => key.tags.map((t) => ({ key_id: key.keyId, tag_key: t.tagKey, tag_value: t.tagValue }));

/**
 * The `aliases` row of an alias's state (none once deleted).
 *
 * @example
 * aliasRow(alias) // { account_id, alias_name: 'alias/orders', target_key_id, creation_date, last_updated_date, version: 1n }
 */
export function aliasRow(alias: AliasState) {
  return {
    account_id: alias.accountId,
    alias_name: alias.aliasName,
    target_key_id: alias.targetKeyId,
    creation_date: alias.creationDate,
    last_updated_date: alias.lastUpdatedDate,
    version: alias.version,
  };
}

/**
 * Writes a key's folded state as its projection rows (key + tags); a deleted key has none.
 *
 * @example
 * await writeKeyProjection(trx, next); // after appending the events `next` was folded from
 */
export async function writeKeyProjection(db: Executor, key: KeyState): Promise<void> {
  if (key.deleted) {
    await db.deleteFrom('key_tags').where('key_id', '=', key.keyId).execute();
    await db.deleteFrom('keys').where('key_id', '=', key.keyId).execute();
    return;
  }
  const row = keyRow(key);
  const { key_id: _, ...changes } = row;
  await db
    .insertInto('keys')
    .values(row)
    .onConflict((oc) => oc.column('key_id').doUpdateSet(changes))
    .execute();
  await db.deleteFrom('key_tags').where('key_id', '=', key.keyId).execute();
  if (key.tags.length > 0) await db.insertInto('key_tags').values(tagRows(key)).execute();
}

/**
 * Writes an alias's folded state: its row, or no row once deleted.
 *
 * @example
 * await writeAliasProjection(trx, alias)                       // inserts or updates its `aliases` row
 * await writeAliasProjection(trx, { ...alias, deleted: true }) // deletes the row
 */
export async function writeAliasProjection(db: Executor, alias: AliasState): Promise<void> {
  if (alias.deleted) {
    await db.deleteFrom('aliases').where('account_id', '=', alias.accountId).where('alias_name', '=', alias.aliasName).execute();
    return;
  }
  const row = aliasRow(alias);
  await db
    .insertInto('aliases')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['account_id', 'alias_name']).doUpdateSet({
        target_key_id: row.target_key_id,
        creation_date: row.creation_date,
        last_updated_date: row.last_updated_date,
        version: row.version,
      }),
    )
    .execute();
}

/**
 * Reads a key's state from its projection (fast path for reads; lifecycle changes fold the stream).
 *
 * @example
 * const key = await readKeyProjection(trx, keyId); // null when there is no such key
 */
export async function readKeyProjection(db: Executor, keyId: string): Promise<KeyState | null> {
  const row = await db.selectFrom('keys').selectAll().where('key_id', '=', keyId).executeTakeFirst();
  if (!row) return null;
  const tags = await db.selectFrom('key_tags').select(['tag_key', 'tag_value']).where('key_id', '=', keyId).orderBy('tag_key').execute();
  return {
    keyId: row.key_id,
    accountId: row.account_id,
    arn: row.arn,
    description: row.description,
    keyState: row.key_state as KeyStateName,
    keyUsage: row.key_usage,
    keySpec: row.key_spec,
    origin: row.origin,
    keyManager: row.key_manager as KeyState['keyManager'],
    multiRegion: row.multi_region,
    policy: row.policy,
    creationDate: row.creation_date,
    deletionDate: row.deletion_date,
    pendingDeletionWindowInDays: row.pending_deletion_window_in_days,
    currentKeyMaterialId: row.current_key_material_id,
    keyMaterialIds: row.key_material_ids,
    rotationEnabled: row.rotation_enabled,
    rotationPeriodInDays: row.rotation_period_in_days,
    nextRotationDate: row.next_rotation_date,
    onDemandRotations: row.on_demand_rotations,
    publicKey: row.public_key === null ? null : row.public_key.toString('base64'),
    deleted: false,
    importedMaterials: row.imported_materials,
    tags: tags.map((t) => ({ tagKey: t.tag_key, tagValue: t.tag_value })),
    version: BigInt(row.version),
  };
}

/**
 * What a cryptographic operation needs of a key: the columns of its row that
 * authorization, the key-state rules and the crypto read, without its tags.
 */
export interface UsableKey {
  keyId: string;
  arn: string;
  accountId: string;
  keyState: KeyStateName;
  keyUsage: string;
  keySpec: string;
  origin: string;
  policy: string;
  currentKeyMaterialId: string | null;
}

/**
 * The account owning a key, if the key exists (resolving a KeyId parameter).
 *
 * @example
 * await readKeyAccount(db, keyId) // '111122223333'; undefined for no such key (or a deleted one)
 */
export async function readKeyAccount(db: Executor, keyId: string): Promise<string | undefined> {
  const row = await db.selectFrom('keys').select('account_id').where('key_id', '=', keyId).executeTakeFirst();
  return row?.account_id;
}

/**
 * The key an alias of `accountId` points at, if the alias exists.
 *
 * @example
 * await readAliasTarget(db, '111122223333', 'alias/orders') // the key id it points at, or undefined
 */
export async function readAliasTarget(db: Executor, accountId: string, aliasName: string): Promise<string | undefined> {
  const row = await db.selectFrom('aliases').select('target_key_id').where('account_id', '=', accountId).where('alias_name', '=', aliasName).executeTakeFirst();
  return row?.target_key_id;
}

/**
 * A key's public key (DER SubjectPublicKeyInfo), null for symmetric and HMAC keys.
 *
 * @example
 * (await readPublicKey(db, keyId))?.toString('base64') // 'MFkwEwYHKoZIzj0CAQ…' for an ECC_NIST_P256 key; null for a symmetric key
 */
export async function readPublicKey(db: Executor, keyId: string): Promise<Buffer | null> {
  const row = await db.selectFrom('keys').select('public_key').where('key_id', '=', keyId).executeTakeFirst();
  return row?.public_key ?? null;
}

/**
 * Reads the key a request is about to use (call it under the key's lock).
 *
 * @example
 * const key = await readUsableKey(trx, keyId); // null when there is no such key
 */
export async function readUsableKey(db: Executor, keyId: string): Promise<UsableKey | null> {
  const row = await db
    .selectFrom('keys')
    .select(['key_id', 'arn', 'account_id', 'key_state', 'key_usage', 'key_spec', 'origin', 'policy', 'current_key_material_id'])
    .where('key_id', '=', keyId)
    .executeTakeFirst();
  if (!row) return null;
  return {
    keyId: row.key_id,
    arn: row.arn,
    accountId: row.account_id,
    keyState: row.key_state as KeyStateName,
    keyUsage: row.key_usage,
    keySpec: row.key_spec,
    origin: row.origin,
    policy: row.policy,
    currentKeyMaterialId: row.current_key_material_id,
  };
}

/**
 * A key's KeySpec, if the key exists.
 *
 * @example
 * await readKeySpec(db, keyId) // 'RSA_2048'; undefined for no such key
 */
export async function readKeySpec(db: Executor, keyId: string): Promise<string | undefined> {
  const row = await db.selectFrom('keys').select('key_spec').where('key_id', '=', keyId).executeTakeFirst();
  return row?.key_spec;
}

/**
 * How many customer managed KMS keys `accountId` has, pending deletion
 * included (they count against the account's key quota until deleted). AWS
 * managed keys do not count, as in AWS.
 *
 * @example
 * await countAccountKeys(trx, '111122223333') // 12, checked against MAX_KEYS_PER_ACCOUNT by CreateKey
 */
export async function countAccountKeys(db: Executor, accountId: string): Promise<number> {
  const row = await db
    .selectFrom('keys')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('account_id', '=', accountId)
    .where('key_manager', '=', 'CUSTOMER')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * One page of ListKeys: `accountId`'s keys after `after` in key-id text order, `limit` of them at most.
 *
 * @example
 * const rows = await readAccountKeysPage(trx, accountId, undefined, 101); // ask one more than the page to know it is truncated
 */
export function readAccountKeysPage(db: Executor, accountId: string, after: string | undefined, limit: number): Promise<{ key_id: string; arn: string }[]> {
  let query = db.selectFrom('keys').select(['key_id', 'arn']).where('account_id', '=', accountId);
  if (after !== undefined) query = query.where(sql<boolean>`key_id::text > ${after}`);
  return query
    .orderBy(sql`key_id::text`)
    .limit(limit)
    .execute();
}

/** One entry of ListAliases: a predefined alias no key stands behind yet has no target and no dates. */
export interface AliasPageRow {
  alias_name: string;
  target_key_id: string | null;
  creation_date: Date | null;
  last_updated_date: Date | null;
}

/**
 * One page of ListAliases: `accountId`'s aliases after `after` in name order,
 * `limit` at most, merged in the database (so in its collation, as the marker
 * compares) with the `predefined` names no alias row holds yet. Given
 * `targetKeyId`, only that key's aliases: a predefined alias points at no key.
 *
 * @example
 * const rows = await readAliasesPage(trx, accountId, { after: undefined, limit: 51, predefined: ['alias/aws/s3'] });
 */
export async function readAliasesPage(
  db: Executor,
  accountId: string,
  page: { targetKeyId?: string; after: string | undefined; limit: number; predefined?: readonly string[] },
): Promise<AliasPageRow[]> {
  const after = (column: string) => (page.after === undefined ? sql`` : sql`AND ${sql.ref(column)} > ${page.after}`);
  const stored = sql`
    SELECT alias_name, target_key_id, creation_date, last_updated_date FROM aliases
    WHERE account_id = ${accountId} ${page.targetKeyId === undefined ? sql`` : sql`AND target_key_id = ${page.targetKeyId}`} ${after('alias_name')}`;
  const predefined = page.targetKeyId === undefined ? (page.predefined ?? []) : [];
  const query =
    predefined.length === 0
      ? sql<AliasPageRow>`${stored} ORDER BY alias_name LIMIT ${page.limit}`
      : sql<AliasPageRow>`
          ${stored}
          UNION ALL
          SELECT p.alias_name, NULL, NULL, NULL FROM unnest(${[...predefined]}::text[]) AS p (alias_name)
          WHERE NOT EXISTS (SELECT 1 FROM aliases a WHERE a.account_id = ${accountId} AND a.alias_name = p.alias_name) ${after('p.alias_name')}
          ORDER BY alias_name LIMIT ${page.limit}`;
  return (await query.execute(db)).rows;
}

/**
 * How many aliases point at `keyId` (AWS's aliases-per-key quota).
 *
 * @example
 * await countKeyAliases(trx, keyId) // 2, checked against MAX_ALIASES_PER_KEY
 */
export async function countKeyAliases(db: Executor, keyId: string): Promise<number> {
  const row = await db
    .selectFrom('aliases')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('target_key_id', '=', keyId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * The aliases (in whatever account) that point at `keyId`.
 *
 * @example
 * await readKeyAliases(trx, keyId) // [{ account_id: '111122223333', alias_name: 'alias/orders' }]
 */
export function readKeyAliases(db: Executor, keyId: string): Promise<{ account_id: string; alias_name: string }[]> {
  return db.selectFrom('aliases').select(['account_id', 'alias_name']).where('target_key_id', '=', keyId).execute();
}
