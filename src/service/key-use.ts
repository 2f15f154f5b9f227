import { unwrapKeyMaterial } from '../crypto/key-material.ts';
import type { RootKey } from '../crypto/root-key.ts';
import { keyArn } from '../domain/arn.ts';
import { KmsError } from '../domain/errors.ts';
import { checkKeyState, type KeyOperation } from '../domain/key-state-rules.ts';
import type { UsableKey } from '../store/projections.ts';
import { enforce, type Authorizer } from './authorization.ts';
import type { KeyReads } from './key-reads.ts';
import { keyNotFound, type KeyResolver } from './key-resolver.ts';
import type { KeyUseScope } from './operation-scope.ts';

/** What using a key for a cryptographic operation needs from the app. */
export interface KeyUseDeps {
  rootKey: RootKey;
  resolver: KeyResolver;
  region: string;
  authorizer: Authorizer;
}

/** The key row an operation works with, read under the key's shared lock. */
export type UsedKey = UsableKey;

/** One use of a key: the operation (its key-state rule, IAM action and grant operation) and the KeyUsage it needs. */
export interface KeyUse {
  operation: KeyOperation;
  keyUsage: 'GENERATE_VERIFY_MAC' | 'KEY_AGREEMENT' | 'ENCRYPT_DECRYPT' | 'SIGN_VERIFY';
  /** Request condition keys beyond the ones the authorizer derives (e.g. kms:MacAlgorithm). */
  conditions?: Record<string, string | boolean>;
}

/**
 * Resolves the key the caller named, takes its shared lock (concurrent uses
 * never wait for each other; a lifecycle change waits for them), reads it,
 * authorizes `kms:<operation>` (key policy, identity policies, grants), then
 * checks its state and its KeyUsage, in AWS's order: a key the caller may not
 * use answers as missing whatever its state or usage.
 *
 * @example
 * const key = await lockKeyForUse(deps, scope, input.keyId, { operation: 'GenerateMac', keyUsage: 'GENERATE_VERIFY_MAC' });
 */
export async function lockKeyForUse(deps: KeyUseDeps, scope: KeyUseScope, keyIdText: string, use: KeyUse): Promise<UsedKey> {
  const { reads } = scope;
  const accountId = scope.ctx.caller.accountId;
  const { keyId, viaAlias } = await deps.resolver.resolve(reads, accountId, keyIdText, 'keyId', { scope, action: `kms:${use.operation}` });
  await reads.lockShared([keyId]);
  // Read after the lock: under READ COMMITTED this sees every change committed before it.
  const key = await reads.usableKey(keyId);
  if (!key) throw keyNotFound(keyArn(deps.region, accountId, keyId));
  scope.addResource({ arn: key.arn, type: 'AWS::KMS::Key', accountId: key.accountId });
  await enforce(deps.authorizer, scope, {
    action: `kms:${use.operation}`,
    key,
    grantOperation: use.operation,
    conditions: use.conditions ?? {},
    ...(viaAlias ? { requestAlias: viaAlias } : {}),
  });
  const refused = checkKeyState(use.operation, key);
  if (refused) throw refused;
  if (key.keyUsage !== use.keyUsage) throw keyUsageRefusal(key, use.operation);
  return key;
}

/**
 * AWS's InvalidKeyUsageException for a key whose KeyUsage does not allow the operation.
 *
 * @example
 * keyUsageRefusal(key, 'GenerateMac')  // "<arn> key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac."
 */
export function keyUsageRefusal(key: Pick<UsedKey, 'arn' | 'keyUsage'>, operation: string): KmsError {
  return new KmsError('InvalidKeyUsageException', `${key.arn} key usage is ${key.keyUsage} which is not valid for ${operation}.`);
}

/**
 * The key's current material (a symmetric key, an HMAC key, a PKCS#8 private
 * key), unwrapped. The caller zeroes it (`fill(0)`) once used.
 *
 * @example
 * const material = await unwrapCurrentMaterial(deps, reads, key);
 * try { use(material) } finally { material.fill(0) }
 */
export async function unwrapCurrentMaterial(deps: Pick<KeyUseDeps, 'rootKey'>, reads: KeyReads, key: UsedKey): Promise<Buffer> {
  const wrapped = key.currentKeyMaterialId ? await reads.material(key.keyId, key.currentKeyMaterialId) : undefined;
  if (!wrapped || !key.currentKeyMaterialId) throw new KmsError('KMSInvalidStateException', `${key.arn} has no key material.`);
  return unwrapKeyMaterial(deps.rootKey, key.keyId, key.currentKeyMaterialId, wrapped);
}

/** AWS's DryRunOperationException, once everything but the cryptography has been checked. */
export function dryRunStop(dryRun: boolean | null | undefined): void {
  if (dryRun) throw new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
}
