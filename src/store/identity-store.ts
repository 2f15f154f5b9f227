/** The identity tables (accounts, principals, access keys, identity policies): their reads and writes. */
import { sql, type Insertable, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { AccessKeysTable, Database, PrincipalPoliciesTable, PrincipalsTable } from './database.ts';

type Executor = Kysely<Database> | Transaction<Database>;

/**
 * Whether the account `accountId` exists.
 *
 * @example
 * await accountExists(db, '111122223333') // true once created (insertAccount); false for an unknown id
 */
export async function accountExists(db: Executor, accountId: string): Promise<boolean> {
  const row = await db.selectFrom('accounts').select('account_id').where('account_id', '=', accountId).executeTakeFirst();
  return row !== undefined;
}

/**
 * Inserts an account; false when one with that id exists already.
 *
 * @example
 * if (!(await insertAccount(trx, { account_id: '111122223333', name: 'payments', created_at: now }))) throw alreadyExists;
 */
export async function insertAccount(db: Executor, account: { account_id: string; name: string; created_at: Date }): Promise<boolean> {
  const inserted = await db
    .insertInto('accounts')
    .values(account)
    .onConflict((oc) => oc.doNothing())
    .returning('account_id')
    .executeTakeFirst();
  return inserted !== undefined;
}

/**
 * Inserts a principal; false when one with that ARN exists already.
 *
 * @example
 * await insertPrincipal(trx, { principal_arn: 'arn:aws:iam::111122223333:user/alice', account_id: '111122223333', principal_type: 'user',
 *   name: 'alice', tags: '{}', created_at: now }) // true; false if alice exists already
 */
export async function insertPrincipal(db: Executor, principal: Insertable<PrincipalsTable>): Promise<boolean> {
  const inserted = await db
    .insertInto('principals')
    .values(principal)
    .onConflict((oc) => oc.doNothing())
    .returning('principal_arn')
    .executeTakeFirst();
  return inserted !== undefined;
}

/**
 * A principal's ARN and account, if it exists.
 *
 * @example
 * await readPrincipal(db, 'arn:aws:iam::111122223333:user/alice') // { principal_arn: 'arn:aws:iam::111122223333:user/alice', account_id: '111122223333' }
 */
export function readPrincipal(db: Executor, principalArn: string): Promise<{ principal_arn: string; account_id: string } | undefined> {
  return db.selectFrom('principals').select(['principal_arn', 'account_id']).where('principal_arn', '=', principalArn).executeTakeFirst();
}

/**
 * Inserts an access key (its secret already wrapped).
 *
 * @example
 * const wrapped_secret = rootKey.wrap(secret, `access-key:${access_key_id}`); // never the secret in clear
 * await insertAccessKey(trx, { access_key_id, principal_arn, wrapped_secret, status: 'Active', created_at: now });
 */
export async function insertAccessKey(db: Executor, accessKey: Insertable<AccessKeysTable>): Promise<void> {
  await db.insertInto('access_keys').values(accessKey).execute();
}

/**
 * The account an access key's principal belongs to, whatever the key's status.
 *
 * @example
 * await readAccessKeyAccount(db, 'AKIA2EXAMPLE7KEY0ID1') // '111122223333', even for an Inactive key; undefined for an unknown one
 */
export async function readAccessKeyAccount(db: Executor, accessKeyId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('access_keys as k')
    .innerJoin('principals as p', 'p.principal_arn', 'k.principal_arn')
    .select('p.account_id')
    .where('k.access_key_id', '=', accessKeyId)
    .executeTakeFirst();
  return row?.account_id;
}

/** What authenticating an access key reads: the key, its principal, the principal's identity policies, and the principal's fence. */
export interface AccessKeyCredentials {
  accessKeyId: string;
  /** The secret wrapped under the root key, as at rest. */
  wrappedSecret: Buffer;
  status: 'Active' | 'Inactive';
  principalArn: string;
  accountId: string;
  principalType: 'root' | 'user' | 'role';
  name: string;
  tags: Record<string, string>;
  identityPolicies: { name: string; document: string }[];
  /**
   * The version of the principal's fence (sql/0033) these rows were read at:
   * read in the same statement, so of the same snapshot as the rows.
   */
  fenceVersion: bigint;
}

/**
 * Everything authentication needs of an access key, in one round trip.
 *
 * @example
 * const credentials = await readAccessKeyCredentials(db, 'AKIA2EXAMPLE7KEY0ID1');
 * if (credentials?.status === 'Active') ... // unwrap credentials.wrappedSecret and check the signature
 */
export async function readAccessKeyCredentials(db: Executor, accessKeyId: string): Promise<AccessKeyCredentials | undefined> {
  const row = await db
    .selectFrom('access_keys as k')
    .innerJoin('principals as p', 'p.principal_arn', 'k.principal_arn')
    .select(['k.access_key_id', 'k.wrapped_secret', 'k.status', 'p.principal_arn', 'p.account_id', 'p.principal_type', 'p.name', 'p.tags'])
    .select((eb) => [
      eb
        .selectFrom('principal_policies as pp')
        .whereRef('pp.principal_arn', '=', 'p.principal_arn')
        .select(
          sql<
            { name: string; document: string }[]
          >`coalesce(json_agg(json_build_object('name', pp.policy_name, 'document', pp.document) ORDER BY pp.policy_name), '[]')`.as('policies'),
        )
        .as('identity_policies'),
      eb
        .selectFrom('fences as f')
        .whereRef('f.scope', '=', sql<string>`'principal:' || p.principal_arn`)
        .select('f.version')
        .as('fence_version'),
    ])
    .where('k.access_key_id', '=', accessKeyId)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    accessKeyId: row.access_key_id,
    wrappedSecret: row.wrapped_secret,
    status: row.status,
    principalArn: row.principal_arn,
    accountId: row.account_id,
    principalType: row.principal_type,
    name: row.name,
    tags: row.tags,
    identityPolicies: row.identity_policies ?? [],
    fenceVersion: BigInt(row.fence_version ?? 0),
  };
}

/**
 * Attaches an identity policy to a principal, or replaces the one of that name.
 *
 * @example
 * await upsertPrincipalPolicy(trx, { principal_arn, policy_name: 'decrypt-orders', document, updated_at: now }); // attached, or its document replaced
 */
export async function upsertPrincipalPolicy(db: Executor, policy: Selectable<PrincipalPoliciesTable>): Promise<void> {
  await db
    .insertInto('principal_policies')
    .values(policy)
    .onConflict((oc) => oc.columns(['principal_arn', 'policy_name']).doUpdateSet({ document: policy.document, updated_at: policy.updated_at }))
    .execute();
}

/**
 * Detaches a principal's identity policy; false when no policy of that name was attached.
 *
 * @example
 * await deletePrincipalPolicy(trx, principalArn, 'decrypt-orders') // true; false when no such policy was attached
 */
export async function deletePrincipalPolicy(db: Executor, principalArn: string, policyName: string): Promise<boolean> {
  const deleted = await db.deleteFrom('principal_policies').where('principal_arn', '=', principalArn).where('policy_name', '=', policyName).executeTakeFirst();
  return Number(deleted.numDeletedRows) > 0;
}

/**
 * A principal's identity policies, by name.
 *
 * @example
 * await readPrincipalPolicies(db, principalArn) // [{ principal_arn, policy_name: 'decrypt-orders', document, updated_at }, …], by name
 */
export function readPrincipalPolicies(db: Executor, principalArn: string): Promise<Selectable<PrincipalPoliciesTable>[]> {
  return db.selectFrom('principal_policies').selectAll().where('principal_arn', '=', principalArn).orderBy('policy_name').execute();
}

/**
 * Every identity policy of every principal of `accountId`, by principal then name (access analysis).
 *
 * @example
 * await readAccountIdentityPolicies(db, '111122223333') // [{ principal_arn, policy_name, document }, …] of every principal in the account
 */
export function readAccountIdentityPolicies(db: Executor, accountId: string): Promise<{ principal_arn: string; policy_name: string; document: string }[]> {
  return db
    .selectFrom('principal_policies as pp')
    .innerJoin('principals as p', 'p.principal_arn', 'pp.principal_arn')
    .select(['pp.principal_arn', 'pp.policy_name', 'pp.document'])
    .where('p.account_id', '=', accountId)
    .orderBy('pp.principal_arn')
    .orderBy('pp.policy_name')
    .execute();
}
