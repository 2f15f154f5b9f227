import { accept, KmsError, reject, Validator, type Decision } from './errors.ts';
import type { Recorded } from './key.ts';

/** An alias's state: the fold of its stream (`alias-<accountId>-<aliasName>`). */
export interface AliasState {
  accountId: string;
  aliasName: string;
  targetKeyId: string;
  creationDate: Date;
  lastUpdatedDate: Date;
  /** A deleted alias keeps its stream; creating the name again continues it. */
  deleted: boolean;
  version: bigint;
}

export type AliasEvent =
  | { type: 'AliasCreated'; data: { accountId: string; aliasName: string; targetKeyId: string } }
  | { type: 'AliasUpdated'; data: { targetKeyId: string; previousTargetKeyId: string } }
  | { type: 'AliasDeleted'; data: { targetKeyId: string } };

export const ALIAS_EVENT_TYPES: ReadonlySet<string> = new Set<AliasEvent['type']>(['AliasCreated', 'AliasUpdated', 'AliasDeleted']);

/**
 * The stream an alias's events live in, named by account and alias name: one name, one stream, so a
 * deleted alias created again continues its history.
 *
 * @example
 * aliasStreamId('111122223333', 'alias/orders') // 'alias-111122223333-alias/orders'
 */
export const aliasStreamId = (accountId: string, aliasName: string): string => `alias-${accountId}-${aliasName}`;

export const MAX_ALIASES_PER_KEY = 50;

/**
 * Applies one recorded event to an alias's state (pure, as evolveKey).
 *
 * @example
 * evolveAlias(null, { type: 'AliasCreated', data, recordedAt: now, streamVersion: 1n }) // the alias, version 1
 */
export function evolveAlias(state: AliasState | null, event: Recorded<AliasEvent>): AliasState {
  switch (event.type) {
    case 'AliasCreated':
      return {
        accountId: event.data.accountId,
        aliasName: event.data.aliasName,
        targetKeyId: event.data.targetKeyId,
        creationDate: event.recordedAt,
        lastUpdatedDate: event.recordedAt,
        deleted: false,
        version: event.streamVersion,
      };
    case 'AliasUpdated':
      if (!state) throw new Error('AliasUpdated before AliasCreated');
      return { ...state, targetKeyId: event.data.targetKeyId, lastUpdatedDate: event.recordedAt, version: event.streamVersion };
    case 'AliasDeleted':
      if (!state) throw new Error('AliasDeleted before AliasCreated');
      return { ...state, deleted: true, version: event.streamVersion };
  }
}

/**
 * An alias's state from its stream's events, in order; null for a stream with no events.
 *
 * @example
 * foldAlias([created, deleted]) // { aliasName: 'alias/orders', deleted: true, version: 2n, … }
 * foldAlias([])                 // null
 */
export const foldAlias = (events: readonly Recorded<AliasEvent>[]): AliasState | null => events.reduce<AliasState | null>(evolveAlias, null);

/**
 * The operations whose KeyId may name a key by alias name or alias ARN: the
 * cryptographic operations, DescribeKey and GetPublicKey (AWS's API reference,
 * and the operations kms:RequestAlias governs). Every other operation takes a
 * key id or key ARN only (CreateGrant, DisableKey, GetKeyPolicy,
 * GetKeyLastUsage, ListAliases' KeyId ...), so an alias there names no key and
 * never creates an AWS managed key.
 */
const OPERATIONS_NAMING_KEYS_BY_ALIAS: ReadonlySet<string> = new Set([
  'Encrypt',
  'Decrypt',
  'ReEncrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'Sign',
  'Verify',
  'GenerateMac',
  'VerifyMac',
  'DeriveSharedSecret',
  'DescribeKey',
  'GetPublicKey',
]);

/**
 * Whether `operation`'s KeyId accepts an alias name or alias ARN.
 *
 * @example
 * acceptsAliasKeyId('Encrypt')     // true
 * acceptsAliasKeyId('CreateGrant') // false
 */
export const acceptsAliasKeyId = (operation: string): boolean => OPERATIONS_NAMING_KEYS_BY_ALIAS.has(operation);

const ALIAS_PATTERN = /^[a-zA-Z0-9:/_-]+$/;

/** AWS's words, link included, for an alias name without the `alias/` prefix. */
const ALIAS_PREFIX_REQUIRED = 'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html';

/**
 * Checks an AliasName as AWS does for CreateAlias, UpdateAlias and DeleteAlias:
 * 1–256 characters of `[a-zA-Z0-9:/_-]`, the `alias/` prefix, no colon, and the
 * reserved `alias/aws/` prefix refused.
 *
 * @example
 * validateAliasName('alias/orders')  // undefined
 * validateAliasName('alias/aws/ebs') // KmsError NotAuthorizedException 'Aliases that begin with alias/aws/ are reserved for AWS managed keys.'
 */
export function validateAliasName(aliasName: string): KmsError | undefined {
  const v = new Validator()
    .minLength('aliasName', aliasName, 1)
    .maxLength('aliasName', aliasName, 256)
    .pattern('aliasName', aliasName, ALIAS_PATTERN, '^[a-zA-Z0-9:/_-]+$');
  const invalid = v.error();
  if (invalid) return invalid;
  if (!aliasName.startsWith('alias/') || aliasName.length === 'alias/'.length) {
    return new KmsError('ValidationException', ALIAS_PREFIX_REQUIRED);
  }
  if (aliasName.includes(':')) {
    return new KmsError('ValidationException', `${aliasName} contains invalid characters for an alias`);
  }
  if (aliasName.startsWith('alias/aws/')) {
    return new KmsError('NotAuthorizedException', 'Aliases that begin with alias/aws/ are reserved for AWS managed keys.');
  }
  return undefined;
}

const exists = (alias: AliasState | null): alias is AliasState => alias !== null && !alias.deleted;

/**
 * CreateAlias: refused when the name is taken (a deleted alias's name is free again) or the target has MAX_ALIASES_PER_KEY aliases.
 *
 * @example
 * decideCreateAlias(null, { accountId, aliasName: 'alias/orders', aliasArn, targetKeyId, aliasesOnTarget: 0 }) // accepts AliasCreated
 */
export function decideCreateAlias(
  current: AliasState | null,
  input: { accountId: string; aliasName: string; aliasArn: string; targetKeyId: string; aliasesOnTarget: number },
): Decision<AliasEvent> {
  if (exists(current)) return reject('AlreadyExistsException', `An alias with the name ${input.aliasArn} already exists`);
  if (input.aliasesOnTarget >= MAX_ALIASES_PER_KEY) {
    return reject('LimitExceededException', `A KMS key can have at most ${MAX_ALIASES_PER_KEY} aliases.`);
  }
  return accept({
    type: 'AliasCreated',
    data: { accountId: input.accountId, aliasName: input.aliasName, targetKeyId: input.targetKeyId },
  });
}

/**
 * UpdateAlias: refused when the alias does not exist or the new target already has MAX_ALIASES_PER_KEY
 * aliases; pointing it at the key it already names accepts with no event.
 *
 * @example
 * decideUpdateAlias(current, { aliasArn, targetKeyId: current.targetKeyId, aliasesOnTarget: 1 }) // accepts, no events
 * decideUpdateAlias(null, { aliasArn, targetKeyId, aliasesOnTarget: 0 }) // rejects NotFoundException 'Alias arn:…:alias/orders is not found.'
 */
export function decideUpdateAlias(current: AliasState | null, input: { aliasArn: string; targetKeyId: string; aliasesOnTarget: number }): Decision<AliasEvent> {
  if (!exists(current)) return reject('NotFoundException', `Alias ${input.aliasArn} is not found.`);
  if (current.targetKeyId === input.targetKeyId) return accept();
  if (input.aliasesOnTarget >= MAX_ALIASES_PER_KEY) {
    return reject('LimitExceededException', `A KMS key can have at most ${MAX_ALIASES_PER_KEY} aliases.`);
  }
  return accept({ type: 'AliasUpdated', data: { targetKeyId: input.targetKeyId, previousTargetKeyId: current.targetKeyId } });
}

/**
 * DeleteAlias: refused when the alias does not exist (or is already deleted). The event keeps the
 * target it named, so the key's history shows the alias leaving it.
 *
 * @example
 * decideDeleteAlias(current, aliasArn) // accepts AliasDeleted { targetKeyId: current.targetKeyId }
 */
export function decideDeleteAlias(current: AliasState | null, aliasArn: string): Decision<AliasEvent> {
  if (!exists(current)) return reject('NotFoundException', `Alias ${aliasArn} is not found.`);
  return accept({ type: 'AliasDeleted', data: { targetKeyId: current.targetKeyId } });
}
