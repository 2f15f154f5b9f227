/**
 * Signed checkpoints of the log's Merkle tree (src/domain/merkle.ts), in the
 * spirit of Certificate Transparency's signed tree heads and CloudTrail's
 * chained digest files: a tree size, its root, the time, and the hash of the
 * checkpoint before, signed with Ed25519.
 *
 * The signed bytes are a short text, one field per line (UTF-8, `\n` after
 * each), so any verifier rebuilds them from a checkpoint's fields:
 *
 * ```
 * keyledger checkpoint v1
 * <tree size, decimal>
 * <root hash, base64>
 * <time, ISO 8601 UTC with milliseconds>
 * <previous checkpoint's hash, base64, or - for the first>
 * <key id>
 * ```
 *
 * A checkpoint's hash is SHA-256 of those bytes followed by the signature, so
 * the chain also pins which signature was published. The key id is the first
 * 16 bytes of SHA-256 of the public key's SPKI DER, in hex.
 */
import { createPublicKey, hash, sign, verify, type KeyObject } from 'node:crypto';

export interface Checkpoint {
  treeSize: number;
  rootHash: Buffer;
  signedAt: Date;
  previousHash: Buffer | null;
  keyId: string;
  signature: Buffer;
}

const HEADER = 'keyledger checkpoint v1';

/**
 * The bytes a checkpoint's signature covers.
 *
 * @example
 * checkpointBody({ treeSize: 9, rootHash, signedAt: new Date('2026-01-01T00:00:00Z'), previousHash: null, keyId }).toString()
 * // 'keyledger checkpoint v1\n9\n<root, base64>\n2026-01-01T00:00:00.000Z\n-\n<key id>\n'
 */
export function checkpointBody(c: Omit<Checkpoint, 'signature'>): Buffer {
  return Buffer.from(
    `${HEADER}\n${c.treeSize}\n${c.rootHash.toString('base64')}\n${c.signedAt.toISOString()}\n` +
      `${c.previousHash ? c.previousHash.toString('base64') : '-'}\n${c.keyId}\n`,
  );
}

/**
 * The checkpoint's identity in the chain: SHA-256(body || signature).
 *
 * @example
 * checkpointHash(cp) // a 32-byte Buffer; the next checkpoint's previousHash
 */
export function checkpointHash(c: Checkpoint): Buffer {
  return hash('sha256', Buffer.concat([checkpointBody(c), c.signature]), 'buffer');
}

/**
 * The key id of an Ed25519 public key.
 *
 * @example
 * sealKeyId(createPublicKey(privateKey)) // 32 hex characters, e.g. '3f9c…'
 */
export function sealKeyId(publicKey: KeyObject): string {
  return hash('sha256', publicKey.export({ type: 'spki', format: 'der' }), 'hex').slice(0, 32);
}

/**
 * Signs a checkpoint with an Ed25519 private key.
 *
 * @example
 * const cp = signCheckpoint({ treeSize: 9, rootHash, signedAt: clock.now(), previousHash: null }, privateKey);
 */
export function signCheckpoint(c: Omit<Checkpoint, 'signature' | 'keyId'>, privateKey: KeyObject): Checkpoint {
  const unsigned = { ...c, keyId: sealKeyId(createPublicKey(privateKey)) };
  return { ...unsigned, signature: sign(null, checkpointBody(unsigned), privateKey) };
}

/**
 * Whether `publicKey` signed this checkpoint (and the key id names that key).
 *
 * @example
 * checkpointSignatureValid(signCheckpoint(unsigned, privateKey), createPublicKey(privateKey)) // true
 * checkpointSignatureValid(cp, someOtherPublicKey)                                         // false (the key id differs)
 */
export function checkpointSignatureValid(c: Checkpoint, publicKey: KeyObject): boolean {
  if (c.keyId !== sealKeyId(publicKey)) return false;
  try {
    return verify(null, checkpointBody(c), publicKey, c.signature);
  } catch {
    return false;
  }
}

/** The JSON form of a checkpoint, as published in files, exports and GraphQL. */
export interface CheckpointJson {
  treeSize: string;
  rootHash: string;
  signedAt: string;
  previousHash: string | null;
  keyId: string;
  signature: string;
  checkpointHash: string;
}

/**
 * The JSON form of a checkpoint (see CheckpointJson): byte fields in base64, the tree size as a decimal
 * string, and the checkpoint's own hash added so a reader can follow the chain without recomputing it.
 *
 * @example
 * checkpointToJson(cp) // { treeSize: '9', rootHash: '…=', signedAt: '2026-01-01T00:00:00.000Z', previousHash: null, keyId, signature, checkpointHash }
 */
export function checkpointToJson(c: Checkpoint): CheckpointJson {
  return {
    treeSize: String(c.treeSize),
    rootHash: c.rootHash.toString('base64'),
    signedAt: c.signedAt.toISOString(),
    previousHash: c.previousHash ? c.previousHash.toString('base64') : null,
    keyId: c.keyId,
    signature: c.signature.toString('base64'),
    checkpointHash: checkpointHash(c).toString('base64'),
  };
}

/**
 * Reads a checkpoint's JSON form; null when a field is missing or malformed.
 *
 * @example
 * checkpointFromJson(checkpointToJson(cp)) // a Checkpoint equal to cp
 * checkpointFromJson({ treeSize: 9 })      // null (treeSize must be a decimal string, and the other fields are missing)
 */
export function checkpointFromJson(v: unknown): Checkpoint | null {
  if (v === null || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  const b64 = (x: unknown) => (typeof x === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(x) ? Buffer.from(x, 'base64') : null);
  const root = b64(o.rootHash);
  const signature = b64(o.signature);
  const previous = o.previousHash === null ? null : b64(o.previousHash);
  const signedAt = typeof o.signedAt === 'string' ? new Date(o.signedAt) : null;
  if (typeof o.treeSize !== 'string' || !/^\d{1,15}$/.test(o.treeSize) || !root || root.length !== 32 || !signature) return null;
  if ((o.previousHash !== null && (!previous || previous.length !== 32)) || !signedAt || Number.isNaN(signedAt.getTime()) || typeof o.keyId !== 'string')
    return null;
  return { treeSize: Number(o.treeSize), rootHash: root, signedAt, previousHash: previous, keyId: o.keyId, signature };
}
