import type { Kysely, Transaction } from 'kysely';
import { aliasArn, keyArn, parseKeyReference, parseMultiRegionKeyReference } from '../domain/arn.ts';
import { KmsError, Validator } from '../domain/errors.ts';
import type { Database } from '../store/database.ts';
import type { KeyUseScope, TransactionScope } from './operation-scope.ts';
import { readAliasTarget, readKeyAccount } from '../store/projections.ts';

/** Where a KeyId parameter is looked up: the request's transaction, or a cryptographic operation's cached reads (src/service/key-reads.ts). */
export interface KeyLookup {
  keyAccount(keyId: string): Promise<string | undefined>;
  aliasTarget(accountId: string, aliasName: string): Promise<string | undefined>;
}

type Executor = Kysely<Database> | Transaction<Database>;

/** The request a KeyId is resolved for, when naming a predefined `alias/aws/` alias may create its AWS managed key. */
export interface ManagedKeyRequest {
  /** The request: its caller, its instant, and the record the authorization of the key's creation goes to. */
  scope: TransactionScope | KeyUseScope;
  /** The action the request takes on the key (e.g. kms:Encrypt): only a caller allowed it creates the key. */
  action: string;
}

/** Creates an account's AWS managed key on the first use of its alias (src/service/aws-managed-keys.ts). */
export interface ManagedKeyProvisioner {
  provision(request: ManagedKeyRequest, accountId: string, aliasName: string): Promise<string | undefined>;
}

const lookupIn = (source: Executor | KeyLookup): KeyLookup =>
  'aliasTarget' in source
    ? source
    : { keyAccount: (keyId) => readKeyAccount(source, keyId), aliasTarget: (accountId, aliasName) => readAliasTarget(source, accountId, aliasName) };

export const keyNotFound = (arnOrText: string): KmsError => new KmsError('NotFoundException', `Key '${arnOrText}' does not exist`);

/** AWS's answer to a KeyId that is no key id or key ARN where one is required. */
const invalidKeyId = (text: string): KmsError => new KmsError('NotFoundException', `Invalid keyId '${text}'`);

/**
 * Resolves a KeyId parameter (key id, key ARN, alias name, alias ARN) to a key.
 * Key ids and aliases name keys of the caller's account; another account's key
 * can only be named by its full key ARN (as in AWS), and is then subject to its
 * key policy — the caller's service refuses it as NotFoundException, exactly
 * like a missing key, unless a policy or grant allows.
 */
export class KeyResolver {
  readonly #region: string;
  readonly #managedKeys: ManagedKeyProvisioner | undefined;

  constructor(region: string, managedKeys?: ManagedKeyProvisioner) {
    this.#region = region;
    this.#managedKeys = managedKeys;
  }

  /**
   * With `request` (the cryptographic operations and DescribeKey), a
   * predefined `alias/aws/<service>` alias that points at nothing yet creates
   * the account's AWS managed key, if the caller may take the request's action.
   */
  async resolve(
    source: Executor | KeyLookup,
    accountId: string,
    text: string,
    field = 'keyId',
    request?: ManagedKeyRequest,
  ): Promise<{ keyId: string; accountId: string; viaAlias?: string }> {
    new Validator().minLength(field, text, 1).maxLength(field, text, 2048).throwIfAny();
    const ref = parseKeyReference(text);
    if (!ref) throw this.#unknownKeyId(text, accountId);
    const foreign = 'region' in ref && (ref.region !== this.#region || ref.accountId !== accountId);
    switch (ref.kind) {
      case 'keyId':
      case 'keyArn': {
        // AWS's words for a key ARN of another Region.
        if ('region' in ref && ref.region !== this.#region) throw new KmsError('NotFoundException', `Invalid arn ${ref.region}`);
        const owner = ref.kind === 'keyArn' ? ref.accountId : accountId;
        if ((await lookupIn(source).keyAccount(ref.keyId)) !== owner) throw keyNotFound(keyArn(this.#region, owner, ref.keyId));
        return { keyId: ref.keyId, accountId: owner };
      }
      case 'aliasName':
      case 'aliasArn': {
        const arn = ref.kind === 'aliasArn' ? text : aliasArn(this.#region, accountId, ref.aliasName);
        if (foreign) throw new KmsError('NotFoundException', `Alias ${arn} is not found.`);
        let target = await lookupIn(source).aliasTarget(accountId, ref.aliasName);
        if (target === undefined && request && this.#managedKeys) target = await this.#managedKeys.provision(request, accountId, ref.aliasName);
        if (target === undefined) throw new KmsError('NotFoundException', `Alias ${arn} is not found.`);
        return { keyId: target, accountId, viaAlias: ref.aliasName };
      }
    }
  }

  /** The refusal of a KeyId that names no key keyledger can have: a multi-Region key's id or ARN does not exist, anything else is malformed. */
  #unknownKeyId(text: string, accountId: string): KmsError {
    const multiRegion = parseMultiRegionKeyReference(text);
    if (!multiRegion) return invalidKeyId(text);
    if (multiRegion.region !== undefined && multiRegion.region !== this.#region) return new KmsError('NotFoundException', `Invalid arn ${multiRegion.region}`);
    return keyNotFound(keyArn(this.#region, multiRegion.accountId ?? accountId, multiRegion.keyId));
  }

  /**
   * Resolves the KeyId of an operation that takes a key id or key ARN only
   * (acceptsAliasKeyId in src/domain/alias.ts): an alias name or alias ARN is
   * no key id there, refused as AWS refuses a malformed one, and never
   * creates an AWS managed key.
   *
   * @example
   * await resolver.resolveKeyOnly(trx, accountId, 'alias/orders'); // throws NotFoundException "Invalid keyId 'alias/orders'"
   */
  async resolveKeyOnly(source: Executor | KeyLookup, accountId: string, text: string, field = 'keyId'): Promise<{ keyId: string; accountId: string }> {
    new Validator().minLength(field, text, 1).maxLength(field, text, 2048).throwIfAny();
    const kind = parseKeyReference(text)?.kind;
    if (kind === 'aliasName' || kind === 'aliasArn') throw invalidKeyId(text);
    return this.resolve(source, accountId, text, field);
  }
}
