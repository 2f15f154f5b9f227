import { decryptBlob, encryptBlob, InvalidCiphertextError, parseBlobHeader, type CiphertextHeader, type EncryptionContext } from '../crypto/ciphertext.ts';
import {
  ENCRYPTION_ALGORITHMS_BY_SPEC,
  RSA_OAEP_MAX_PLAINTEXT_BYTES,
  type EncryptionAlgorithmSpec,
  type KeySpec,
  type RsaKeySpec,
} from '../crypto/asymmetric.ts';
import { rsaOaepDecrypt, rsaOaepEncrypt } from '../crypto/rsa-oaep.ts';
import { unwrapKeyMaterial } from '../crypto/key-material.ts';
import { keyArn, parseKeyReference } from '../domain/arn.ts';
import { KmsError } from '../domain/errors.ts';
import { checkKeyState, type KeyOperation } from '../domain/key-state-rules.ts';
import type { UsableKey } from '../store/projections.ts';
import { enforce } from './authorization.ts';
import type { KeyReads } from './key-reads.ts';
import { keyNotFound } from './key-resolver.ts';
import type { KeyUseDeps } from './key-use.ts';
import type { KeyUseScope } from './operation-scope.ts';

// Using an ENCRYPT_DECRYPT key, shared by Encrypt, Decrypt, ReEncrypt and the
// data key operations: finding the key a caller named or a blob names,
// authorizing its use (key policy, identity policies, grants, with the
// encryption context), checking its state and usage, and the cryptography
// under it (keyledger's blob format for symmetric keys, RSAES-OAEP for RSA
// keys). Material is unwrapped for one call and zeroed after it.

/** What authorizing one use of a key needs besides the key. */
export interface EncryptionUse {
  operation: KeyOperation;
  action: string;
  grantOperation: string;
  context: EncryptionContext;
  conditions?: Record<string, string | boolean>;
  viaAlias?: string;
}

/** RSAES-OAEP with the key's public key (from the projection: no material is unwrapped), within AWS's plaintext limit. */
export async function rsaEncrypt(reads: KeyReads, key: UsableKey, algorithm: string, plaintext: Buffer): Promise<Buffer> {
  requireRsaPlaintextLimit(key.keySpec, algorithm, plaintext.length);
  const publicKeyDer = await reads.publicKey(key.keyId);
  if (!publicKeyDer) throw new KmsError('KMSInvalidStateException', `${key.arn} has no key material.`);
  const r = rsaOaepEncrypt({ keySpec: key.keySpec as KeySpec, publicKeyDer, algorithm: algorithm as EncryptionAlgorithmSpec, plaintext });
  if (!r.ok) {
    if (r.reason === 'ALGORITHM_NOT_ALLOWED') throw algorithmIncompatible(algorithm, key.keySpec);
    throw new KmsError('ValidationException', r.message);
  }
  return r.ciphertext;
}

/** RSAES-OAEP decryption with the key's private key, unwrapped for this call and zeroed after; anything that does not decrypt is InvalidCiphertextException. */
export async function rsaDecrypt(deps: KeyUseDeps, reads: KeyReads, key: UsableKey, algorithm: string, ciphertext: Buffer): Promise<Buffer> {
  if (!key.currentKeyMaterialId) throw new KmsError('KMSInvalidStateException', `${key.arn} has no key material.`);
  const privateKeyDer = await unwrapMaterial(deps, reads, key, key.currentKeyMaterialId);
  if (!privateKeyDer) throw invalidCiphertext();
  try {
    const r = rsaOaepDecrypt({ keySpec: key.keySpec as KeySpec, privateKeyDer, algorithm: algorithm as EncryptionAlgorithmSpec, ciphertext });
    if (!r.ok) {
      if (r.reason === 'ALGORITHM_NOT_ALLOWED') throw algorithmIncompatible(algorithm, key.keySpec);
      throw invalidCiphertext();
    }
    return r.plaintext;
  } finally {
    privateKeyDer.fill(0);
  }
}

/** Resolves, share-locks and state-checks a key named by the caller. */
export async function useKey(deps: KeyUseDeps, scope: KeyUseScope, keyIdText: string, use: EncryptionUse): Promise<UsableKey> {
  const { keyId, viaAlias } = await deps.resolver.resolve(scope.reads, scope.ctx.caller.accountId, keyIdText, 'keyId', { scope, action: use.action });
  return lockForUse(deps, scope, keyId, viaAlias ? { ...use, viaAlias } : use);
}

/**
 * Takes the key's shared lock, reads it, authorizes the use (key policy,
 * identity policies, grants), then checks its state: a key the caller may not
 * use answers as missing whatever its state.
 */
export async function lockForUse(deps: KeyUseDeps, scope: KeyUseScope, keyId: string, use: EncryptionUse): Promise<UsableKey> {
  const { reads, ctx } = scope;
  await reads.lockShared([keyId]);
  // Read after the lock: under READ COMMITTED this sees every change committed before it.
  const key = await reads.usableKey(keyId);
  if (!key) throw keyNotFound(keyArn(deps.region, ctx.caller.accountId, keyId));
  scope.addResource({ arn: key.arn, type: 'AWS::KMS::Key', accountId: key.accountId });
  await enforce(deps.authorizer, scope, {
    action: use.action,
    key,
    grantOperation: use.grantOperation,
    encryptionContext: use.context,
    conditions: use.conditions ?? {},
    ...(use.viaAlias ? { requestAlias: use.viaAlias } : {}),
  });
  const operation = use.operation;
  const refused = checkKeyState(operation, key);
  if (refused) throw refused;
  const unusable = symmetricUseRefusal(key, operation, use.conditions?.['kms:EncryptionAlgorithm']);
  if (unusable) throw unusable;
  return key;
}

/**
 * Finds the key a blob was made under (the blob names it), checks an explicit
 * keyId against it, and share-locks it. The blob's ids are recorded before any
 * check can fail, so refused attempts on a data key are in its lineage too;
 * and a keyId refused (IncorrectKeyException, NotFoundException) records the
 * keys the attempt was about (see recordRefusedKeys), so a key's audit trail
 * finds it.
 */
export async function keyOfBlob(
  deps: KeyUseDeps,
  scope: KeyUseScope,
  blob: Buffer,
  keyIdText: string | null | undefined,
  use: EncryptionUse,
): Promise<{ key: UsableKey; header: CiphertextHeader }> {
  const { reads, ctx } = scope;
  let header: CiphertextHeader;
  try {
    header = parseBlobHeader(blob);
  } catch {
    throw invalidCiphertext();
  }
  scope.setAdditionalEventData({
    keyMaterialId: header.keyMaterialId,
    ciphertextId: header.ciphertextId,
    ...(header.isDataKey ? { dataKeyId: header.ciphertextId } : {}),
    encryptionAlgorithm: 'SYMMETRIC_DEFAULT',
  });
  let viaAlias: string | undefined;
  if (keyIdText != null) {
    let named: { keyId: string; accountId: string; viaAlias?: string } | undefined;
    try {
      named = await deps.resolver.resolve(reads, ctx.caller.accountId, keyIdText, use.operation === 'Decrypt' ? 'keyId' : 'sourceKeyId');
      // Another account's key that the blob does not name: answered as missing, so its existence does not show.
      if (named.keyId !== header.keyId && named.accountId !== ctx.caller.accountId) throw keyNotFound(keyIdText);
      if (named.keyId !== header.keyId) {
        throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
      }
      viaAlias = named.viaAlias;
    } catch (error) {
      if (isRefusedKey(error)) await recordRefusedKeys(deps, scope, use, header.keyId, keyIdText, named);
      throw error;
    }
  }
  try {
    // Named by an alias (which is the blob's key, checked above): kms:RequestAlias, and for an alias/aws/ alias kms:ViaService.
    const key = await lockForUse(deps, scope, header.keyId, viaAlias ? { ...use, viaAlias } : use);
    return { key, header };
  } catch (error) {
    // The blob names its key by id alone. Without a keyId, a key the caller cannot
    // find or may not use (none, deleted, or another account's refused as missing)
    // makes the blob one it cannot decrypt: the empty InvalidCiphertextException
    // garbage gets, so the answer tells neither whether the key exists nor whose
    // it is (issue 15, finding 9). A caller's own key keeps its own answers.
    if (keyIdText == null && error instanceof KmsError && error.code === 'NotFoundException') throw invalidCiphertext();
    // Another account's key refused as missing (enforce): it left the resources,
    // but a caller who named it by its ARN is shown that ARN, as for a key that
    // does not exist, so the two answers' records stay alike.
    if (keyIdText != null && isRefusedKey(error)) addKeyResource(scope, namedKeyArn(keyIdText));
    throw error;
  }
}

/**
 * What a refused keyId records as resources, blob's key first:
 * - the key the blob names, when it exists and the caller may see it: a key
 *   of the caller's account, or another account's that the caller may use
 *   for this operation (the caller could learn its ARN from a success);
 *   otherwise nothing, so the record does not show another account's key;
 * - the key the caller named: resolved in the caller's account, that key;
 *   otherwise (another account's key, or none) the key ARN the caller wrote,
 *   whether or not it exists, so the record tells no more than the caller
 *   said; an alias or key id that resolves to nothing records nothing.
 * The authorization of the blob's key is only looked at, not recorded: the
 * request was refused before any key was authorized.
 */
async function recordRefusedKeys(
  deps: KeyUseDeps,
  scope: KeyUseScope,
  use: EncryptionUse,
  blobKeyId: string,
  keyIdText: string,
  named: { keyId: string; accountId: string } | undefined,
): Promise<void> {
  const { reads, ctx, now } = scope;
  const row = await reads.usableKey(blobKeyId);
  if (row) {
    let visible = row.accountId === ctx.caller.accountId;
    if (!visible) {
      const evidence = await deps.authorizer.authorize(reads, {
        caller: ctx.caller,
        sourceIp: ctx.sourceIp,
        now,
        action: use.action,
        key: row,
        grantOperation: use.grantOperation,
        encryptionContext: use.context,
        conditions: use.conditions ?? {},
      });
      visible = evidence.decision === 'allow';
    }
    if (visible) addKeyResource(scope, { arn: row.arn, accountId: row.accountId });
  }
  if (named && named.accountId === ctx.caller.accountId)
    addKeyResource(scope, { arn: keyArn(deps.region, named.accountId, named.keyId), accountId: named.accountId });
  else addKeyResource(scope, namedKeyArn(keyIdText));
}

export async function encryptUnder(deps: KeyUseDeps, reads: KeyReads, key: UsableKey, plaintext: Buffer, context: EncryptionContext, isDataKey: boolean) {
  if (!key.currentKeyMaterialId) throw new KmsError('KMSInvalidStateException', `${key.arn} has no key material.`);
  const material = await unwrapMaterial(deps, reads, key, key.currentKeyMaterialId);
  if (!material) throw new KmsError('KMSInvalidStateException', `${key.arn} has no key material.`);
  try {
    return encryptBlob({ keyId: key.keyId, keyMaterialId: key.currentKeyMaterialId, backingKey: material, plaintext, context, isDataKey });
  } finally {
    material.fill(0);
  }
}

export async function decryptWith(
  deps: KeyUseDeps,
  reads: KeyReads,
  key: UsableKey,
  header: CiphertextHeader,
  blob: Buffer,
  context: EncryptionContext,
): Promise<Buffer> {
  const material = await unwrapMaterial(deps, reads, key, header.keyMaterialId);
  if (!material) throw invalidCiphertext();
  try {
    return decryptBlob(blob, material, context);
  } catch (error) {
    if (error instanceof InvalidCiphertextError) throw invalidCiphertext();
    throw error;
  } finally {
    material.fill(0);
  }
}

async function unwrapMaterial(deps: KeyUseDeps, reads: KeyReads, key: UsableKey, keyMaterialId: string): Promise<Buffer | undefined> {
  const wrapped = await reads.material(key.keyId, keyMaterialId);
  return wrapped && unwrapKeyMaterial(deps.rootKey, key.keyId, keyMaterialId, wrapped);
}

/** The key a blob names, when it parses at all (the full check comes later). */
export function blobKeyId(blob: Buffer): string | undefined {
  try {
    return parseBlobHeader(blob).keyId;
  } catch {
    return undefined;
  }
}

/** The refusals of a keyId whose records name the keys involved (see recordRefusedKeys). */
const isRefusedKey = (error: unknown): boolean => error instanceof KmsError && (error.code === 'NotFoundException' || error.code === 'IncorrectKeyException');

/** The key ARN a caller wrote as a KeyId, exactly as written; undefined for a key id or an alias. */
function namedKeyArn(text: string): { arn: string; accountId: string } | undefined {
  const ref = parseKeyReference(text);
  return ref?.kind === 'keyArn' ? { arn: text, accountId: ref.accountId } : undefined;
}

/** Adds a key to the record's resources, once. */
function addKeyResource(scope: KeyUseScope, key: { arn: string; accountId: string } | undefined): void {
  if (key) scope.addResourceOnce({ arn: key.arn, type: 'AWS::KMS::Key', accountId: key.accountId });
}

/** AWS gives no detail for a ciphertext it cannot use, and neither do we. */
export const invalidCiphertext = () => new KmsError('InvalidCiphertextException', '');

/** A use of a key by a crypto operation, with its IAM action, grant operation and condition keys. */
export function encryptionUse(
  operation: KeyOperation,
  context: EncryptionContext,
  algorithm: string | null | undefined,
  conditions: Record<string, string | boolean> = {},
): EncryptionUse {
  return {
    operation,
    action: `kms:${operation}`,
    grantOperation: operation,
    context,
    conditions: { 'kms:EncryptionAlgorithm': algorithm ?? 'SYMMETRIC_DEFAULT', ...conditions },
  };
}

/**
 * These operations use a symmetric encryption key. AWS answers
 * InvalidKeyUsageException for a key of another usage (SIGN_VERIFY,
 * GENERATE_VERIFY_MAC, KEY_AGREEMENT), and for an RSA ENCRYPT_DECRYPT key
 * used with SYMMETRIC_DEFAULT (Encrypt without an algorithm, GenerateDataKey),
 * or with an algorithm its spec does not allow. Encrypt, Decrypt and ReEncrypt
 * with RSAES_OAEP_* under an RSA key go on (rsaEncrypt, rsaDecrypt).
 */
function symmetricUseRefusal(key: UsableKey, operation: KeyOperation, algorithm: string | boolean | undefined): KmsError | undefined {
  if (key.keyUsage !== 'ENCRYPT_DECRYPT') {
    return new KmsError('InvalidKeyUsageException', `${key.arn} key usage is ${key.keyUsage} which is not valid for ${operation}.`);
  }
  if (key.keySpec === 'SYMMETRIC_DEFAULT') return undefined;
  if (algorithm === undefined || algorithm === 'SYMMETRIC_DEFAULT') {
    return algorithmIncompatible('SYMMETRIC_DEFAULT', key.keySpec);
  }
  const allowed: readonly string[] = Object.hasOwn(ENCRYPTION_ALGORITHMS_BY_SPEC, key.keySpec) ? ENCRYPTION_ALGORITHMS_BY_SPEC[key.keySpec as RsaKeySpec] : [];
  if (!allowed.includes(String(algorithm))) return algorithmIncompatible(String(algorithm), key.keySpec);
  if (operation === 'Encrypt' || operation === 'Decrypt' || operation === 'ReEncrypt') return undefined;
  return new KmsError('UnsupportedOperationException', `keyledger does not offer ${operation} with ${String(algorithm)} under ${key.keySpec} keys yet.`);
}

/** AWS's InvalidKeyUsageException for an algorithm the key spec does not allow. */
const algorithmIncompatible = (algorithm: string, keySpec: string) =>
  new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${keySpec}.`);

export const isSymmetricAlgorithm = (algorithm: string | null | undefined): boolean => algorithm == null || algorithm === 'SYMMETRIC_DEFAULT';

/** AWS's plaintext limit for an RSA key spec and OAEP algorithm (RSA_2048 with RSAES_OAEP_SHA_256: 190 bytes), as a ValidationException. */
export function requireRsaPlaintextLimit(keySpec: string, algorithm: string, length: number): void {
  const bySpec = Object.hasOwn(RSA_OAEP_MAX_PLAINTEXT_BYTES, keySpec) ? RSA_OAEP_MAX_PLAINTEXT_BYTES[keySpec as RsaKeySpec] : undefined;
  const max = bySpec && Object.hasOwn(bySpec, algorithm) ? bySpec[algorithm as keyof typeof bySpec] : undefined;
  if (max !== undefined && length > max) {
    throw new KmsError('ValidationException', `Algorithm ${algorithm} and key spec ${keySpec} cannot encrypt data larger than ${max} bytes.`);
  }
}

/** An encryption context cannot be bound to an RSA ciphertext, so AWS refuses one with an asymmetric key. */
export function refuseAsymmetricContext(context: EncryptionContext): void {
  if (Object.keys(context).length > 0) {
    throw new KmsError('ValidationException', 'EncryptionContext is not supported with asymmetric KMS keys.');
  }
}

export function requireSymmetricAlgorithm(algorithm: string | null | undefined): void {
  if (algorithm != null && algorithm !== 'SYMMETRIC_DEFAULT') {
    throw new KmsError('InvalidKeyUsageException', `The encryption algorithm ${algorithm} is not valid for a symmetric encryption KMS key.`);
  }
}
