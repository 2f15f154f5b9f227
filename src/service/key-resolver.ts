import type { Transaction } from 'kysely';
import { aliasArn, keyArn, parseKeyReference } from '../domain/arn.ts';
import { KmsError, Validator } from '../domain/errors.ts';
import type { Database } from '../store/database.ts';

export const keyNotFound = (arnOrText: string): KmsError => new KmsError('NotFoundException', `Key '${arnOrText}' does not exist`);

/**
 * Resolves a KeyId parameter (key id, key ARN, alias name, alias ARN) to a key.
 * Key ids and aliases name keys of the caller's account; another account's key
 * can only be named by its full key ARN (as in AWS), and is then subject to its
 * key policy — the caller's service refuses it as NotFoundException, exactly
 * like a missing key, unless a policy or grant allows.
 */
export class KeyResolver {
  readonly #region: string;

  constructor(region: string) {
    this.#region = region;
  }

  async resolve(trx: Transaction<Database>, accountId: string, text: string, field = 'keyId'): Promise<{ keyId: string; accountId: string; viaAlias?: string }> {
    new Validator().minLength(field, text, 1).maxLength(field, text, 2048).throwIfAny();
    const ref = parseKeyReference(text);
    if (!ref) throw new KmsError('NotFoundException', `Invalid keyId '${text}'`);
    const foreign = 'region' in ref && (ref.region !== this.#region || ref.accountId !== accountId);
    switch (ref.kind) {
      case 'keyId':
      case 'keyArn': {
        if ('region' in ref && ref.region !== this.#region) throw keyNotFound(text);
        const owner = ref.kind === 'keyArn' ? ref.accountId : accountId;
        const row = await trx.selectFrom('keys').select(['key_id', 'account_id']).where('key_id', '=', ref.keyId).where('account_id', '=', owner).executeTakeFirst();
        if (!row) throw keyNotFound(keyArn(this.#region, owner, ref.keyId));
        return { keyId: row.key_id, accountId: row.account_id };
      }
      case 'aliasName':
      case 'aliasArn': {
        const arn = ref.kind === 'aliasArn' ? text : aliasArn(this.#region, accountId, ref.aliasName);
        if (foreign) throw new KmsError('NotFoundException', `Alias ${arn} is not found.`);
        const row = await trx
          .selectFrom('aliases')
          .select('target_key_id')
          .where('account_id', '=', accountId)
          .where('alias_name', '=', ref.aliasName)
          .executeTakeFirst();
        if (!row) throw new KmsError('NotFoundException', `Alias ${arn} is not found.`);
        return { keyId: row.target_key_id, accountId, viaAlias: ref.aliasName };
      }
    }
  }
}
