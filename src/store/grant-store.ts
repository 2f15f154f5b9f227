import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { GrantState } from '../domain/grant.ts';
import type { Database } from './database.ts';

type Executor = Kysely<Database> | Transaction<Database>;

/**
 * The `grants` row of a live grant (retired grants have none).
 *
 * @example
 * grantRow(grant) // { grant_id, key_id, …, operations: ['Decrypt'], constraints: '{"encryptionContextSubset":{"tenant":"acme"}}', version: 1n }
 */
export function grantRow(g: GrantState) {
  return {
    grant_id: g.grantId,
    key_id: g.keyId,
    key_account_id: g.keyAccountId,
    name: g.name,
    grantee_principal: g.granteePrincipal,
    retiring_principal: g.retiringPrincipal,
    operations: g.operations,
    constraints: g.constraints === null ? null : JSON.stringify(g.constraints),
    issuing_account: g.issuingAccount,
    grant_token: g.grantToken,
    creation_date: g.creationDate,
    version: g.version,
  };
}

/**
 * Writes a grant's folded state: its row while live, none once retired.
 *
 * @example
 * await writeGrantProjection(trx, grant)                       // inserts its `grants` row (kept as it is if already there)
 * await writeGrantProjection(trx, { ...grant, retired: true }) // deletes the row
 */
export async function writeGrantProjection(db: Executor, grant: GrantState): Promise<void> {
  if (grant.retired) {
    await db.deleteFrom('grants').where('grant_id', '=', grant.grantId).execute();
    return;
  }
  await db
    .insertInto('grants')
    .values(grantRow(grant))
    .onConflict((oc) => oc.column('grant_id').doNothing())
    .execute();
}

export type GrantRow = Selectable<Database['grants']>;

/**
 * A live grant's state from its `grants` row and its key's ARN (the row does not hold the ARN): the
 * inverse of grantRow, retired always false.
 *
 * @example
 * rowToGrant((await readGrantRow(trx, grantId))!, key.arn) // { grantId, keyId, keyArn: key.arn, operations, retired: false, version: 1n, … }
 */
export function rowToGrant(row: GrantRow, keyArn: string): GrantState {
  return {
    grantId: row.grant_id,
    keyId: row.key_id,
    keyArn,
    keyAccountId: row.key_account_id,
    name: row.name,
    granteePrincipal: row.grantee_principal,
    retiringPrincipal: row.retiring_principal,
    operations: row.operations,
    constraints: row.constraints as GrantState['constraints'],
    issuingAccount: row.issuing_account,
    grantToken: row.grant_token,
    creationDate: row.creation_date,
    retired: false,
    version: BigInt(row.version),
  };
}

/**
 * The live grants on a key whose grantee is `grantee`.
 *
 * @example
 * const grants = await readGrantsFor(trx, key.keyId, ctx.caller.principalArn);
 */
export async function readGrantsFor(db: Executor, keyId: string, grantee: string): Promise<GrantState[]> {
  const rows = await db
    .selectFrom('grants as g')
    .innerJoin('keys as k', 'k.key_id', 'g.key_id')
    .selectAll('g')
    .select('k.arn')
    .where('g.key_id', '=', keyId)
    .where('g.grantee_principal', '=', grantee)
    .execute();
  return rows.map((r) => rowToGrant(r, r.arn));
}

/**
 * How many live grants a key has (AWS's grants-per-key quota).
 *
 * @example
 * await countKeyGrants(trx, keyId) // 3: the live grants; retired ones have no row
 */
export async function countKeyGrants(db: Executor, keyId: string): Promise<number> {
  const row = await db
    .selectFrom('grants')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('key_id', '=', keyId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/**
 * The ids of a key's live grants.
 *
 * @example
 * await readKeyGrantIds(trx, keyId) // ['0c23…', '9f1e…']: the grants to retire when the key is deleted
 */
export async function readKeyGrantIds(db: Executor, keyId: string): Promise<string[]> {
  const rows = await db.selectFrom('grants').select('grant_id').where('key_id', '=', keyId).execute();
  return rows.map((r) => r.grant_id);
}

/**
 * The live grants on a key named `name` (CreateGrant's idempotence by name).
 *
 * @example
 * await readNamedGrants(trx, keyId, 'orders-app') // [the live GrantRow with that name], or []
 */
export function readNamedGrants(db: Executor, keyId: string, name: string): Promise<GrantRow[]> {
  return db.selectFrom('grants').selectAll().where('key_id', '=', keyId).where('name', '=', name).execute();
}

/**
 * A live grant by its id, wherever its key.
 *
 * @example
 * await readGrantRow(trx, grantId) // the GrantRow, or undefined once retired (or never created)
 */
export function readGrantRow(db: Executor, grantId: string): Promise<GrantRow | undefined> {
  return db.selectFrom('grants').selectAll().where('grant_id', '=', grantId).executeTakeFirst();
}

/**
 * A live grant of `keyId` by its id.
 *
 * @example
 * await readKeyGrantRow(trx, keyId, grantId) // the GrantRow; undefined when the grant is on another key
 */
export function readKeyGrantRow(db: Executor, keyId: string, grantId: string): Promise<GrantRow | undefined> {
  return db.selectFrom('grants').selectAll().where('key_id', '=', keyId).where('grant_id', '=', grantId).executeTakeFirst();
}

/**
 * A live grant by its grant token.
 *
 * @example
 * await readGrantRowByToken(db, grantToken) // the GrantRow the token was issued with, or undefined
 */
export function readGrantRowByToken(db: Executor, grantToken: string): Promise<GrantRow | undefined> {
  return db.selectFrom('grants').selectAll().where('grant_token', '=', grantToken).executeTakeFirst();
}

/**
 * A key's live grants that allow the grant operation `operation` (e.g. `Decrypt`), in grant-id order.
 *
 * @example
 * await readGrantsAllowing(db, keyId, 'Decrypt') // the key's GrantRows whose operations include 'Decrypt', by grant id
 */
export function readGrantsAllowing(db: Executor, keyId: string, operation: string): Promise<GrantRow[]> {
  return db
    .selectFrom('grants')
    .selectAll()
    .where('key_id', '=', keyId)
    .where(sql<boolean>`${operation} = ANY(operations)`)
    .orderBy('grant_id')
    .execute();
}

/**
 * One page of ListGrants: a key's live grants after `after` in grant-id order, optionally only one grant id or one grantee.
 *
 * @example
 * const rows = await readGrantsPage(trx, key.keyId, { granteePrincipal: 'arn:aws:iam::111122223333:role/app', after: undefined, limit: 51 });
 */
export function readGrantsPage(
  db: Executor,
  keyId: string,
  page: { grantId?: string | null; granteePrincipal?: string | null; after: string | undefined; limit: number },
): Promise<GrantRow[]> {
  let query = db.selectFrom('grants').selectAll().where('key_id', '=', keyId);
  if (page.grantId) query = query.where('grant_id', '=', page.grantId);
  if (page.granteePrincipal) query = query.where('grantee_principal', '=', page.granteePrincipal);
  if (page.after !== undefined) query = query.where('grant_id', '>', page.after);
  return query.orderBy('grant_id').limit(page.limit).execute();
}

/**
 * One page of ListRetirableGrants: the live grants whose retiring principal is `retiringPrincipal`, with their key's ARN,
 * after `after` in grant-id order; only grants on `keyAccountId`'s keys when it is given.
 *
 * @example
 * await readRetirableGrantsPage(db, 'arn:aws:iam::111122223333:role/ops', { after: undefined, limit: 51 })
 * // up to 51 GrantRows, each with its key's arn, in grant-id order
 */
export function readRetirableGrantsPage(
  db: Executor,
  retiringPrincipal: string,
  page: { keyAccountId?: string; after: string | undefined; limit: number },
): Promise<(GrantRow & { arn: string })[]> {
  let query = db
    .selectFrom('grants as g')
    .innerJoin('keys as k', 'k.key_id', 'g.key_id')
    .selectAll('g')
    .select('k.arn')
    .where('g.retiring_principal', '=', retiringPrincipal);
  if (page.keyAccountId !== undefined) query = query.where('k.account_id', '=', page.keyAccountId);
  if (page.after !== undefined) query = query.where('g.grant_id', '>', page.after);
  return query.orderBy('g.grant_id').limit(page.limit).execute();
}
