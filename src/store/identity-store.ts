/** Reads of the identity tables (accounts, principals, access keys): for the operator's commands, and for authentication. */
import { sql } from 'kysely';
import type { Db } from './database.ts';

/** Whether the account `accountId` exists. */
export async function accountExists(db: Db, accountId: string): Promise<boolean> {
  const row = await db.selectFrom('accounts').select('account_id').where('account_id', '=', accountId).executeTakeFirst();
  return row !== undefined;
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
export async function readAccessKeyCredentials(db: Db, accessKeyId: string): Promise<AccessKeyCredentials | undefined> {
  const row = await db
    .selectFrom('access_keys as k')
    .innerJoin('principals as p', 'p.principal_arn', 'k.principal_arn')
    .select(['k.access_key_id', 'k.wrapped_secret', 'k.status', 'p.principal_arn', 'p.account_id', 'p.principal_type', 'p.name', 'p.tags'])
    .select((eb) => [
      eb
        .selectFrom('principal_policies as pp')
        .whereRef('pp.principal_arn', '=', 'p.principal_arn')
        .select(sql<{ name: string; document: string }[]>`coalesce(json_agg(json_build_object('name', pp.policy_name, 'document', pp.document) ORDER BY pp.policy_name), '[]')`.as('policies'))
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
