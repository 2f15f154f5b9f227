import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './database.ts';

type Executor = Kysely<Database> | Transaction<Database>;

/**
 * The mutable store of wrapped key material (outside the immutable log).
 * Deleting rows here is crypto-shredding: without the material, ciphertext
 * under it can never be decrypted again, while the events stay intact.
 *
 * @example
 * await insertKeyMaterial(trx, { keyId, keyMaterialId, wrapped: wrapKeyMaterial(rootKey, keyId, keyMaterialId, material), createdAt: now });
 */
export async function insertKeyMaterial(db: Executor, row: { keyId: string; keyMaterialId: string; wrapped: Buffer; createdAt: Date }): Promise<void> {
  await db
    .insertInto('key_materials')
    .values({ key_id: row.keyId, key_material_id: row.keyMaterialId, wrapped: row.wrapped, created_at: row.createdAt })
    .execute();
}

/**
 * The wrapped material, or undefined when it never existed or was destroyed.
 *
 * @example
 * const wrapped = await readKeyMaterial(trx, key.keyId, key.currentKeyMaterialId); // unwrap with the root key, zero after use
 */
export async function readKeyMaterial(db: Executor, keyId: string, keyMaterialId: string): Promise<Buffer | undefined> {
  const row = await db
    .selectFrom('key_materials')
    .select('wrapped')
    .where('key_id', '=', keyId)
    .where('key_material_id', '=', keyMaterialId)
    .executeTakeFirst();
  return row?.wrapped;
}

/**
 * Destroys one material version, or every version of the key; returns how many rows went.
 *
 * @example
 * const destroyed = await destroyKeyMaterial(trx, keyId); // every version: the key's deletion
 */
export async function destroyKeyMaterial(db: Executor, keyId: string, keyMaterialId?: string): Promise<number> {
  let query = db.deleteFrom('key_materials').where('key_id', '=', keyId);
  if (keyMaterialId) query = query.where('key_material_id', '=', keyMaterialId);
  const result = await query.executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** GetParametersForImport's wrapping key, its private key wrapped under the root key. */
export interface ImportParametersRow {
  importTokenId: string;
  keyId: string;
  wrappingAlgorithm: string;
  wrappingKeySpec: string;
  wrappedPrivateKey: Buffer;
  validTo: Date;
  createdAt: Date;
}

/**
 * Keeps GetParametersForImport's wrapping key until its import token expires: ImportKeyMaterial finds
 * it by token id to unwrap the material. The private key is stored wrapped under the root key only.
 *
 * @example
 * await insertImportParameters(trx, { importTokenId, keyId, wrappingAlgorithm: 'RSAES_OAEP_SHA_256', wrappingKeySpec: 'RSA_2048',
 *   wrappedPrivateKey, validTo: new Date(now.getTime() + 86_400_000), createdAt: now });
 */
export async function insertImportParameters(db: Executor, row: ImportParametersRow): Promise<void> {
  await db
    .insertInto('import_parameters')
    .values({
      import_token_id: row.importTokenId,
      key_id: row.keyId,
      wrapping_algorithm: row.wrappingAlgorithm,
      wrapping_key_spec: row.wrappingKeySpec,
      wrapped_private_key: row.wrappedPrivateKey,
      valid_to: row.validTo,
      created_at: row.createdAt,
    })
    .execute();
}

/**
 * The import parameters of a token, or undefined when they never existed or were dropped.
 *
 * @example
 * await readImportParameters(trx, importTokenId) // { importTokenId, keyId, wrappingAlgorithm, wrappingKeySpec, wrappedPrivateKey, validTo, createdAt }
 */
export async function readImportParameters(db: Executor, importTokenId: string): Promise<ImportParametersRow | undefined> {
  const row = await db.selectFrom('import_parameters').selectAll().where('import_token_id', '=', importTokenId).executeTakeFirst();
  return (
    row && {
      importTokenId: row.import_token_id,
      keyId: row.key_id,
      wrappingAlgorithm: row.wrapping_algorithm,
      wrappingKeySpec: row.wrapping_key_spec,
      wrappedPrivateKey: row.wrapped_private_key,
      validTo: row.valid_to,
      createdAt: row.created_at,
    }
  );
}

/**
 * Drops a key's import parameters: those expired before `before`, or all of them (the key is deleted).
 *
 * @example
 * await dropImportParameters(trx, keyId, now) // 2: the key's expired import parameters dropped
 * await dropImportParameters(trx, keyId)      // every one of the key's, on its deletion
 */
export async function dropImportParameters(db: Executor, keyId: string, before?: Date): Promise<number> {
  let query = db.deleteFrom('import_parameters').where('key_id', '=', keyId);
  if (before) query = query.where('valid_to', '<', before);
  return Number((await query.executeTakeFirst()).numDeletedRows);
}

/**
 * Drops every account's import parameters that expired before `before`: an
 * ImportKeyMaterial refuses them, and a wrapping private key kept past its
 * use could still unwrap a copy of the EncryptedKeyMaterial sent with it.
 *
 * @example
 * await dropExpiredImportParameters(db, sweptAt) // 3: the wrapping keys and tokens no longer valid at sweptAt
 */
export async function dropExpiredImportParameters(db: Executor, before: Date): Promise<number> {
  return Number((await db.deleteFrom('import_parameters').where('valid_to', '<', before).executeTakeFirst()).numDeletedRows);
}

/**
 * Whether anything in the database is wrapped under a root key (access-key secrets, key material, import wrapping keys).
 *
 * @example
 * await holdsWrappedSecrets(db) // false on a fresh database; true once any access key, key material or import parameters exist
 */
export async function holdsWrappedSecrets(db: Executor): Promise<boolean> {
  const { rows } = await sql<{
    n: string;
  }>`SELECT (SELECT count(*) FROM access_keys) + (SELECT count(*) FROM key_materials) + (SELECT count(*) FROM import_parameters) AS n`.execute(db);
  return Number(rows[0]?.n ?? 0) > 0;
}
