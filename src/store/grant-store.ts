import type { Kysely, Selectable, Transaction } from 'kysely';
import type { GrantState } from '../domain/grant.ts';
import type { Database } from './database.ts';

type Executor = Kysely<Database> | Transaction<Database>;

/** The `grants` row of a live grant (retired grants have none). */
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

/** Writes a grant's folded state: its row while live, none once retired. */
export async function writeGrantProjection(db: Executor, grant: GrantState): Promise<void> {
  if (grant.retired) {
    await db.deleteFrom('grants').where('grant_id', '=', grant.grantId).execute();
    return;
  }
  await db.insertInto('grants').values(grantRow(grant)).onConflict((oc) => oc.column('grant_id').doNothing()).execute();
}

type GrantRow = Selectable<Database['grants']>;

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

/** The live grants on a key whose grantee is `grantee`. */
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
