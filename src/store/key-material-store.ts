import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './database.ts';

type Executor = Kysely<Database> | Transaction<Database>;

/**
 * The mutable store of wrapped key material (outside the immutable log).
 * Deleting rows here is crypto-shredding: without the material, ciphertext
 * under it can never be decrypted again, while the events stay intact.
 */
export async function insertKeyMaterial(db: Executor, row: { keyId: string; keyMaterialId: string; wrapped: Buffer; createdAt: Date }): Promise<void> {
  await db
    .insertInto('key_materials')
    .values({ key_id: row.keyId, key_material_id: row.keyMaterialId, wrapped: row.wrapped, created_at: row.createdAt })
    .execute();
}

/** The wrapped material, or undefined when it never existed or was destroyed. */
export async function readKeyMaterial(db: Executor, keyId: string, keyMaterialId: string): Promise<Buffer | undefined> {
  const row = await db
    .selectFrom('key_materials')
    .select('wrapped')
    .where('key_id', '=', keyId)
    .where('key_material_id', '=', keyMaterialId)
    .executeTakeFirst();
  return row?.wrapped;
}

/** Destroys one material version, or every version of the key; returns how many rows went. */
export async function destroyKeyMaterial(db: Executor, keyId: string, keyMaterialId?: string): Promise<number> {
  let query = db.deleteFrom('key_materials').where('key_id', '=', keyId);
  if (keyMaterialId) query = query.where('key_material_id', '=', keyMaterialId);
  const result = await query.executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Whether anything in the database is wrapped under a root key (access-key secrets, key material). */
export async function holdsWrappedSecrets(db: Executor): Promise<boolean> {
  const { rows } = await sql<{ n: string }>`SELECT (SELECT count(*) FROM access_keys) + (SELECT count(*) FROM key_materials) AS n`.execute(db);
  return Number(rows[0]?.n ?? 0) > 0;
}
