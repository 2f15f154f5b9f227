import { accept, KmsError, reject, Validator, type Decision } from './errors.ts';
import type { Recorded } from './key.ts';

/** Grant operations valid for a symmetric encryption key (AWS's list for that key type). */
export const SYMMETRIC_GRANT_OPERATIONS = [
  'Decrypt',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
  'CreateGrant',
  'RetireGrant',
  'DescribeKey',
] as const;

/** Every GrantOperation AWS defines (others are refused for symmetric keys as ValidationException). */
export const GRANT_OPERATIONS = [...SYMMETRIC_GRANT_OPERATIONS, 'Sign', 'Verify', 'GetPublicKey', 'GenerateMac', 'VerifyMac', 'DeriveSharedSecret'] as const;

/**
 * Grant operations whose requests take an encryption context (an EncryptionContext
 * parameter in AWS's model; ReEncrypt's source and destination contexts): the
 * ones an encryption context constraint applies to.
 */
const CONTEXT_OPERATIONS: ReadonlySet<string> = new Set([
  'Decrypt',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateDataKeyPair',
  'GenerateDataKeyPairWithoutPlaintext',
  'ReEncryptFrom',
  'ReEncryptTo',
]);

/**
 * Operations AWS lets a constrained grant include although they take no
 * encryption context (CreateGrantRequest.Constraints, GrantConstraints): the
 * constraint does not apply to DescribeKey and RetireGrant, and CreateGrant
 * through the grant may only create grants at least as strict (isNoBroaderThan).
 */
const CONSTRAINT_EXEMPT_OPERATIONS: ReadonlySet<string> = new Set(['DescribeKey', 'RetireGrant', 'CreateGrant']);

/** Whether a grant's constraints hold an encryption context constraint (an empty object is none). */
const isConstrained = (c: GrantConstraints | null | undefined): boolean => !!c && (!!c.encryptionContextEquals || !!c.encryptionContextSubset);

export interface GrantConstraints {
  encryptionContextEquals?: Record<string, string>;
  encryptionContextSubset?: Record<string, string>;
}

/** A grant's state: the fold of its stream (`grant-<grantId>`). */
export interface GrantState {
  grantId: string;
  keyId: string;
  keyArn: string;
  keyAccountId: string;
  name: string | null;
  granteePrincipal: string;
  retiringPrincipal: string | null;
  operations: string[];
  constraints: GrantConstraints | null;
  /** The account root of whoever created the grant. */
  issuingAccount: string;
  grantToken: string;
  creationDate: Date;
  retired: boolean;
  version: bigint;
}

export type GrantEvent =
  | {
      type: 'GrantCreated';
      data: Omit<GrantState, 'creationDate' | 'retired' | 'version'>;
    }
  | { type: 'GrantRetired'; data: { by: string; via: 'RetireGrant' | 'RevokeGrant' | 'KeyDeleted' } };

export const GRANT_EVENT_TYPES: ReadonlySet<string> = new Set<GrantEvent['type']>(['GrantCreated', 'GrantRetired']);

/**
 * The stream a grant's events live in: one per grant, named by its id.
 *
 * @example
 * grantStreamId('0c237476b39f8bc44e45212e08498fbe3151305030726c0590dd8d3e9f3d6a60') // 'grant-0c237476b39f…6a60'
 */
export const grantStreamId = (grantId: string): string => `grant-${grantId}`;

export const MAX_GRANTS_PER_KEY = 50_000;
export const MAX_CONSTRAINT_PAIRS = 8;

/**
 * Applies one recorded event to a grant's state (pure, as evolveKey): GrantCreated makes the grant
 * live, GrantRetired marks it retired; the grant keeps its stream and is never removed.
 *
 * @example
 * evolveGrant(null, { type: 'GrantCreated', data, recordedAt: now, streamVersion: 1n }) // the grant, retired: false, version 1n
 * evolveGrant(grant, { type: 'GrantRetired', data: { by, via: 'RevokeGrant' }, recordedAt: now, streamVersion: 2n }) // retired: true, version 2n
 */
export function evolveGrant(state: GrantState | null, event: Recorded<GrantEvent>): GrantState {
  if (event.type === 'GrantCreated') {
    return { ...event.data, creationDate: event.recordedAt, retired: false, version: event.streamVersion };
  }
  if (!state) throw new Error('GrantRetired before GrantCreated');
  return { ...state, retired: true, version: event.streamVersion };
}

/**
 * A grant's state from its stream's events, in order; null for a stream with no events.
 *
 * @example
 * foldGrant([created, retired]) // { grantId, operations: ['Decrypt'], retired: true, version: 2n, … }
 * foldGrant([])                 // null
 */
export const foldGrant = (events: readonly Recorded<GrantEvent>[]): GrantState | null => events.reduce<GrantState | null>(evolveGrant, null);

const GRANT_NAME = /^[a-zA-Z0-9:/_-]+$/;
const PRINCIPAL = /^[\w+=,.@:/-]+$/;

export interface CreateGrantRequest {
  granteePrincipal: string;
  retiringPrincipal?: string | null;
  operations: string[];
  constraints?: GrantConstraints | null;
  name?: string | null;
}

/**
 * Validates a CreateGrant request as AWS does.
 *
 * @example
 * validateCreateGrant({ granteePrincipal: 'arn:aws:iam::111122223333:role/app', operations: ['Decrypt'] }) // undefined
 * validateCreateGrant({ granteePrincipal: 'arn:aws:iam::111122223333:role/app', operations: ['Sign'] })
 * // KmsError ValidationException 'Grant operation Sign is not valid for a symmetric encryption KMS key.'
 */
export function validateCreateGrant(input: CreateGrantRequest, key: GrantKeyType | 'checked-later' = SYMMETRIC_KEY): KmsError | undefined {
  const v = new Validator()
    .minLength('granteePrincipal', input.granteePrincipal, 1)
    .maxLength('granteePrincipal', input.granteePrincipal, 256)
    .pattern('granteePrincipal', input.granteePrincipal, PRINCIPAL, '^[\\w+=,.@:/-]+$')
    .minLength('retiringPrincipal', input.retiringPrincipal, 1)
    .maxLength('retiringPrincipal', input.retiringPrincipal, 256)
    .pattern('retiringPrincipal', input.retiringPrincipal, PRINCIPAL, '^[\\w+=,.@:/-]+$')
    .minLength('name', input.name, 1)
    .maxLength('name', input.name, 256)
    .pattern('name', input.name, GRANT_NAME, '^[a-zA-Z0-9:/_-]+$');
  input.operations.forEach((op, i) => v.oneOf(`operations.${i + 1}.member`, op, GRANT_OPERATIONS));
  const invalid = v.error();
  if (invalid) return invalid;
  if (input.operations.length === 0) return new KmsError('ValidationException', 'A grant must allow at least one operation.');
  const c = input.constraints;
  if (c?.encryptionContextEquals && c.encryptionContextSubset) {
    return new KmsError('ValidationException', 'A grant constraint can have EncryptionContextEquals or EncryptionContextSubset, not both.');
  }
  const pairs = Object.keys(c?.encryptionContextEquals ?? c?.encryptionContextSubset ?? {}).length;
  if (pairs > MAX_CONSTRAINT_PAIRS)
    return new KmsError('ValidationException', `A grant constraint can have at most ${MAX_CONSTRAINT_PAIRS} encryption context pairs.`);
  const unconstrainable = isConstrained(c) ? input.operations.find((op) => !CONTEXT_OPERATIONS.has(op) && !CONSTRAINT_EXEMPT_OPERATIONS.has(op)) : undefined;
  if (unconstrainable) {
    return new KmsError(
      'ValidationException',
      `Grant constraints cannot be used with the ${unconstrainable} operation: ` +
        `only with operations that take an encryption context, and DescribeKey, RetireGrant and CreateGrant.`,
    );
  }
  return key === 'checked-later' ? undefined : grantOperationsRefusal(key, input.operations);
}

/** The type of key a grant is for, as far as its operations go. */
export interface GrantKeyType {
  keySpec: string;
  keyUsage: string;
}

const SYMMETRIC_KEY: GrantKeyType = { keySpec: 'SYMMETRIC_DEFAULT', keyUsage: 'ENCRYPT_DECRYPT' };

/** Grant operations that apply to every key. */
const ANY_KEY_GRANT_OPERATIONS = ['CreateGrant', 'RetireGrant', 'DescribeKey'];

/**
 * The grant operations AWS allows for a key of this type: the symmetric list
 * for symmetric encryption keys, and per usage for the others.
 *
 * @example
 * grantOperationsFor({ keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY' }) // Sign, Verify, GetPublicKey, CreateGrant, RetireGrant, DescribeKey
 */
export function grantOperationsFor(key: GrantKeyType): readonly string[] {
  if (key.keySpec === 'SYMMETRIC_DEFAULT') return SYMMETRIC_GRANT_OPERATIONS;
  switch (key.keyUsage) {
    case 'ENCRYPT_DECRYPT':
      return ['Encrypt', 'Decrypt', 'ReEncryptFrom', 'ReEncryptTo', 'GetPublicKey', ...ANY_KEY_GRANT_OPERATIONS];
    case 'SIGN_VERIFY':
      return ['Sign', 'Verify', 'GetPublicKey', ...ANY_KEY_GRANT_OPERATIONS];
    case 'GENERATE_VERIFY_MAC':
      return ['GenerateMac', 'VerifyMac', ...ANY_KEY_GRANT_OPERATIONS];
    case 'KEY_AGREEMENT':
      return ['DeriveSharedSecret', 'GetPublicKey', ...ANY_KEY_GRANT_OPERATIONS];
    default:
      return ANY_KEY_GRANT_OPERATIONS;
  }
}

/**
 * ValidationException for the first operation the key's type does not allow in a grant.
 *
 * @example
 * grantOperationsRefusal({ keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' }, ['GenerateMac', 'Encrypt'])
 * // KmsError ValidationException 'Grant operation Encrypt is not valid for an HMAC KMS key.'
 */
export function grantOperationsRefusal(key: GrantKeyType, operations: readonly string[]): KmsError | undefined {
  const allowed = grantOperationsFor(key);
  const unsupported = operations.find((op) => !allowed.includes(op));
  if (!unsupported) return undefined;
  const kind =
    key.keySpec === 'SYMMETRIC_DEFAULT'
      ? 'a symmetric encryption KMS key'
      : key.keyUsage === 'GENERATE_VERIFY_MAC'
        ? 'an HMAC KMS key'
        : `an asymmetric KMS key with key usage ${key.keyUsage}`;
  return new KmsError('ValidationException', `Grant operation ${unsupported} is not valid for ${kind}.`);
}

/**
 * The grant's operation that a KMS request needs, e.g. ReEncrypt on the source key needs ReEncryptFrom.
 *
 * @example
 * grantOperationFor('kms:ReEncrypt', 'destination') // 'ReEncryptTo'
 * grantOperationFor('kms:Decrypt')                   // 'Decrypt'
 * grantOperationFor('kms:ListAliases')               // undefined: no grant allows it
 */
export function grantOperationFor(action: string, role: 'source' | 'destination' | 'only' = 'only'): string | undefined {
  const name = action.replace(/^kms:/, '');
  if (name === 'ReEncrypt') return role === 'destination' ? 'ReEncryptTo' : 'ReEncryptFrom';
  return (GRANT_OPERATIONS as readonly string[]).includes(name) ? name : undefined;
}

/**
 * Whether a grant allows `operation` for `caller` with this request's encryption
 * context: the caller is the grantee, the grant is live, it lists the operation,
 * and its constraint holds (Equals: the same pairs exactly; Subset: the
 * constraint's pairs all present in the request). Keys and values compare
 * case-sensitively; pair order never matters. (AWS documents a constraint's
 * keys as case-insensitive; here a key in another case does not match, which
 * is only ever stricter.)
 *
 * As in AWS, the constraint applies only to operations that take an encryption
 * context: DescribeKey and RetireGrant are allowed whatever the context. A
 * CreateGrant is allowed only for the grant it would create (`requested`),
 * when that one is no broader than this grant (isNoBroaderThan); without it,
 * never.
 *
 * @example
 * // grant: grantee role/app, operations ['Decrypt'], constraints { encryptionContextSubset: { tenant: 'acme' } }
 * grantAllows(grant, 'arn:aws:iam::111122223333:role/app', 'Decrypt', { tenant: 'acme', order: '42' }) // true
 * grantAllows(grant, 'arn:aws:iam::111122223333:role/app', 'Decrypt', { tenant: 'other' })             // false
 */
export function grantAllows(
  grant: GrantState,
  callerArn: string,
  operation: string,
  context: Record<string, string> | undefined,
  requested?: CreateGrantRequest,
): boolean {
  if (grant.retired || grant.granteePrincipal !== callerArn || !grant.operations.includes(operation)) return false;
  if (operation === 'CreateGrant') return requested !== undefined && isNoBroaderThan(requested, grant);
  const c = grant.constraints;
  if (!c || !isConstrained(c)) return true;
  if (!CONTEXT_OPERATIONS.has(operation)) return CONSTRAINT_EXEMPT_OPERATIONS.has(operation);
  if (context === undefined) return false;
  if (c.encryptionContextEquals) {
    const want = Object.entries(c.encryptionContextEquals);
    return want.length === Object.keys(context).length && want.every(([k, v]) => context[k] === v);
  }
  return Object.entries(c.encryptionContextSubset!).every(([k, v]) => context[k] === v);
}

/**
 * A grant created by the power of another grant (CreateGrant in its operations)
 * may be no broader: its operations a subset, and its constraint at least as
 * strict (the parent's pairs all required, an Equals parent only by the same
 * Equals) — whatever its operations, DescribeKey or RetireGrant alone included:
 * AWS requires any grant created with a constrained grant's CreateGrant
 * permission to have "an equally strict or stricter encryption context
 * constraint". A Subset parent's child may add pairs, or turn it into an
 * Equals holding all of them; never the reverse.
 *
 * @example
 * // parent: operations ['Decrypt', 'CreateGrant'], constraints { encryptionContextSubset: { tenant: 'acme' } }
 * isNoBroaderThan({ granteePrincipal, operations: ['Decrypt'], constraints: { encryptionContextEquals: { tenant: 'acme' } } }, parent) // true
 * isNoBroaderThan({ granteePrincipal, operations: ['Decrypt'] }, parent) // false: the child drops the constraint
 */
export function isNoBroaderThan(child: CreateGrantRequest, parent: GrantState): boolean {
  if (!child.operations.every((op) => parent.operations.includes(op))) return false;
  const p = parent.constraints;
  if (!p || !isConstrained(p)) return true;
  const c = child.constraints ?? {};
  if (p.encryptionContextEquals) {
    const mine = c.encryptionContextEquals;
    return (
      !!mine &&
      Object.keys(mine).length === Object.keys(p.encryptionContextEquals).length &&
      Object.entries(p.encryptionContextEquals).every(([k, v]) => mine[k] === v)
    );
  }
  const required = Object.entries(p.encryptionContextSubset!);
  const mine = c.encryptionContextEquals ?? c.encryptionContextSubset;
  return !!mine && required.every(([k, v]) => mine[k] === v);
}

/**
 * On what ground a caller may retire a grant (AWS): as its retiring principal,
 * as its grantee when RetireGrant is among its operations, or as a principal of
 * the issuing account (who also needs kms:RetireGrant from an identity policy,
 * checked by the service). Undefined when on none.
 *
 * @example
 * retireRight(grant, { principalArn: grant.retiringPrincipal!, accountId: '444455556666' }) // 'retiringPrincipal'
 * retireRight(grant, { principalArn: 'arn:aws:iam::444455556666:user/mallory', accountId: '444455556666' }) // undefined
 */
export function retireRight(
  grant: GrantState,
  caller: { principalArn: string; accountId: string },
): 'retiringPrincipal' | 'grantee' | 'issuingAccount' | undefined {
  if (grant.retiringPrincipal === caller.principalArn) return 'retiringPrincipal';
  if (grant.granteePrincipal === caller.principalArn && grant.operations.includes('RetireGrant')) return 'grantee';
  if (grant.issuingAccount === `arn:aws:iam::${caller.accountId}:root`) return 'issuingAccount';
  return undefined;
}

/**
 * Whether a caller may retire a grant on any of the grounds of retireRight.
 *
 * @example
 * mayRetire(grant, { principalArn: 'arn:aws:iam::111122223333:user/admin', accountId: '111122223333' }) // true when the grant was issued by 111122223333
 */
export const mayRetire = (grant: GrantState, caller: { principalArn: string; accountId: string }): boolean => retireRight(grant, caller) !== undefined;

/** CreateGrant's command: the grant as it is created (its id and token already drawn by the service). */
export type CreateGrantCommand = Extract<GrantEvent, { type: 'GrantCreated' }>['data'];

/**
 * CreateGrant, given how many live grants the key has (AWS's quota of
 * MAX_GRANTS_PER_KEY per key).
 *
 * @example
 * decideCreateGrant(0, { grantId, keyId, keyArn, keyAccountId, name: null, granteePrincipal, retiringPrincipal: null,
 *   operations: ['Decrypt'], constraints: null, issuingAccount: 'arn:aws:iam::111122223333:root', grantToken }) // accepts one GrantCreated
 */
export function decideCreateGrant(grantsOnKey: number, command: CreateGrantCommand): Decision<GrantEvent> {
  if (grantsOnKey >= MAX_GRANTS_PER_KEY) return reject('LimitExceededException', `A KMS key can have at most ${MAX_GRANTS_PER_KEY} grants.`);
  return accept({ type: 'GrantCreated', data: { ...command, operations: [...command.operations] } });
}

/**
 * Retires a live grant (RetireGrant, RevokeGrant, or its key's deletion); a retired or unknown grant is NotFoundException.
 *
 * @example
 * decideRetireGrant(grant, callerArn, 'RetireGrant') // accepts GrantRetired
 * decideRetireGrant(null, callerArn, 'RevokeGrant') // refuses: NotFoundException
 */
export const decideRetireGrant = (grant: GrantState | null, by: string, via: 'RetireGrant' | 'RevokeGrant' | 'KeyDeleted'): Decision<GrantEvent> => {
  if (!grant || grant.retired) return reject('NotFoundException', 'Grant not found.');
  return accept({ type: 'GrantRetired', data: { by, via } });
};
