import { createCipheriv, createDecipheriv, hkdfSync, randomFillSync } from 'node:crypto';
import { secretKey } from './secret-key.ts';

/**
 * The keyledger ciphertext blob, format version 1. All integers big-endian.
 *
 * | offset | bytes | field |
 * |---|---|---|
 * | 0 | 1 | format version (0x01) |
 * | 1 | 1 | flags: bit 0 set = the plaintext is a data key (GenerateDataKey*) |
 * | 2 | 16 | key id (the KMS key's UUID) |
 * | 18 | 32 | key material id (shown as 64 hex characters) |
 * | 50 | 16 | ciphertext id (random; a data key's identity in the audit log) |
 * | 66 | 32 | nonce: HKDF salt for this message's key |
 * | 98 | 12 | IV |
 * | 110 | n | AES-256-GCM ciphertext |
 * | 110+n | 16 | GCM tag |
 *
 * The message key is HKDF-SHA256(backing key, salt = nonce, info = "keyledger
 * ciphertext v1" || key id || key material id), so no two messages share an
 * AES key and the random-IV bound of one GCM key never comes near. The AAD is
 * the whole header (bytes 0-109) followed by the canonical encryption context,
 * so neither can be altered without the tag failing.
 */
export const CIPHERTEXT_FORMAT_VERSION = 1;
const FLAG_DATA_KEY = 0x01;
const KNOWN_FLAGS = FLAG_DATA_KEY;

const OFFSET = { version: 0, flags: 1, keyId: 2, materialId: 18, ciphertextId: 50, nonce: 66, iv: 98, body: 110 } as const;
export const HEADER_BYTES = OFFSET.body;
const TAG_BYTES = 16;
export const CIPHERTEXT_OVERHEAD = HEADER_BYTES + TAG_BYTES;
const INFO = Buffer.from('keyledger ciphertext v1');

export type EncryptionContext = Record<string, string>;

export interface CiphertextHeader {
  keyId: string;
  /** 64 lowercase hex characters. */
  keyMaterialId: string;
  /** 32 lowercase hex characters. */
  ciphertextId: string;
  isDataKey: boolean;
}

/** Thrown for any blob that is not one of ours, or fails authentication. Carries no detail on purpose. */
export class InvalidCiphertextError extends Error {
  override readonly name = 'InvalidCiphertextError';
  constructor() {
    super('invalid ciphertext');
  }
}

/**
 * The encryption context as the bytes authenticated with every message: pairs
 * sorted by key (UTF-8 byte order), JSON-encoded. Key order in the request
 * therefore never matters, and any change to a key or value does.
 */
export function canonicalEncryptionContext(context: EncryptionContext): Buffer {
  const pairs = Object.entries(context).sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return Buffer.from(JSON.stringify(pairs), 'utf8');
}

/**
 * Encrypts `plaintext` under `backingKey` (one key material version of a KMS key).
 *
 * @example
 * const { blob, header } = encryptBlob({ keyId, keyMaterialId, backingKey, plaintext, context: { tenant: 'acme' } });
 */
export function encryptBlob(input: {
  keyId: string;
  keyMaterialId: string;
  backingKey: Buffer;
  plaintext: Buffer;
  context: EncryptionContext;
  isDataKey?: boolean;
}): { blob: Buffer; header: CiphertextHeader } {
  const header = Buffer.alloc(HEADER_BYTES);
  header[OFFSET.version] = CIPHERTEXT_FORMAT_VERSION;
  header[OFFSET.flags] = input.isDataKey ? FLAG_DATA_KEY : 0;
  uuidToBytes(input.keyId).copy(header, OFFSET.keyId);
  hexToBytes(input.keyMaterialId, 32).copy(header, OFFSET.materialId);
  // The ciphertext id, the HKDF salt and the IV are adjacent: one draw from the CSPRNG fills all three.
  randomFillSync(header, OFFSET.ciphertextId, OFFSET.body - OFFSET.ciphertextId);
  const ciphertextId = header.subarray(OFFSET.ciphertextId, OFFSET.nonce);

  const messageKey = deriveMessageKey(input.backingKey, header);
  try {
    const cipher = createCipheriv('aes-256-gcm', secretKey(messageKey), header.subarray(OFFSET.iv, OFFSET.body));
    cipher.setAAD(Buffer.concat([header, canonicalEncryptionContext(input.context)]));
    const body = Buffer.concat([cipher.update(input.plaintext), cipher.final()]);
    return {
      blob: Buffer.concat([header, body, cipher.getAuthTag()]),
      header: { keyId: input.keyId, keyMaterialId: input.keyMaterialId, ciphertextId: ciphertextId.toString('hex'), isDataKey: !!input.isDataKey },
    };
  } finally {
    messageKey.fill(0);
  }
}

/**
 * Reads the header of a blob without decrypting it (to find the key and
 * material). Throws InvalidCiphertextError for anything that is not a version-1
 * blob; the header is only trustworthy once decryptBlob has verified the tag.
 */
export function parseBlobHeader(blob: Buffer): CiphertextHeader {
  if (blob.length < CIPHERTEXT_OVERHEAD || blob[OFFSET.version] !== CIPHERTEXT_FORMAT_VERSION) throw new InvalidCiphertextError();
  const flags = blob[OFFSET.flags]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new InvalidCiphertextError();
  return {
    keyId: bytesToUuid(blob.subarray(OFFSET.keyId, OFFSET.materialId)),
    keyMaterialId: blob.subarray(OFFSET.materialId, OFFSET.ciphertextId).toString('hex'),
    ciphertextId: blob.subarray(OFFSET.ciphertextId, OFFSET.nonce).toString('hex'),
    isDataKey: (flags & FLAG_DATA_KEY) !== 0,
  };
}

/** Decrypts and authenticates a blob; any mismatch is InvalidCiphertextError. */
export function decryptBlob(blob: Buffer, backingKey: Buffer, context: EncryptionContext): Buffer {
  parseBlobHeader(blob);
  const header = blob.subarray(0, HEADER_BYTES);
  const messageKey = deriveMessageKey(backingKey, header);
  try {
    const decipher = createDecipheriv('aes-256-gcm', secretKey(messageKey), header.subarray(OFFSET.iv, OFFSET.body));
    decipher.setAAD(Buffer.concat([header, canonicalEncryptionContext(context)]));
    decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
    return Buffer.concat([decipher.update(blob.subarray(HEADER_BYTES, blob.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new InvalidCiphertextError();
  } finally {
    messageKey.fill(0);
  }
}

function deriveMessageKey(backingKey: Buffer, header: Buffer): Buffer {
  const info = Buffer.concat([INFO, header.subarray(OFFSET.keyId, OFFSET.ciphertextId)]);
  return Buffer.from(hkdfSync('sha256', secretKey(backingKey), header.subarray(OFFSET.nonce, OFFSET.iv), info, 32));
}

function uuidToBytes(uuid: string): Buffer {
  return hexToBytes(uuid.replaceAll('-', ''), 16);
}

function bytesToUuid(bytes: Buffer): string {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const LOWERCASE_HEX = /^[0-9a-f]*$/;

function hexToBytes(hex: string, length: number): Buffer {
  if (hex.length !== length * 2 || !LOWERCASE_HEX.test(hex)) throw new RangeError(`expected ${length} bytes of lowercase hex`);
  return Buffer.from(hex, 'hex');
}
