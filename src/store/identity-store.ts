/** Reads of the identity tables (accounts, principals, access keys) for the operator's commands. */
import type { Db } from './database.ts';

/** Whether the account `accountId` exists. */
export async function accountExists(db: Db, accountId: string): Promise<boolean> {
  const row = await db.selectFrom('accounts').select('account_id').where('account_id', '=', accountId).executeTakeFirst();
  return row !== undefined;
}
