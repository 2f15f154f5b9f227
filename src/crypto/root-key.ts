import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { secretKey } from './secret-key.ts';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * The root key wraps every secret keyledger keeps (key material, access-key
 * secrets). It never enters the database.
 */
export interface RootKey {
  /** Wraps `plaintext` with AES-256-GCM; `aad` binds the blob to its owner. */
  wrap(plaintext: Buffer, aad: string): Buffer;
  /** Unwraps a blob made by `wrap` with the same aad; throws on any mismatch. */
  unwrap(blob: Buffer, aad: string): Buffer;
}

const WRAP_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class RootKeyError extends Error {
  override readonly name = 'RootKeyError';
}

/** A root key held in memory (from the environment or a file). */
export function rootKeyFromBytes(key: Buffer): RootKey {
  if (key.length !== 32) throw new RootKeyError('the root key must be 32 bytes');
  const secret = secretKey(key);
  return {
    wrap(plaintext, aad) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', secret, iv);
      cipher.setAAD(Buffer.from(`keyledger-wrap-v${WRAP_VERSION}|${aad}`));
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return Buffer.concat([Buffer.from([WRAP_VERSION]), iv, body, cipher.getAuthTag()]);
    },
    unwrap(blob, aad) {
      if (blob.length < 1 + IV_BYTES + TAG_BYTES || blob[0] !== WRAP_VERSION) {
        throw new RootKeyError('not a wrapped blob of a known version');
      }
      const iv = blob.subarray(1, 1 + IV_BYTES);
      const tag = blob.subarray(blob.length - TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', secret, iv);
      decipher.setAAD(Buffer.from(`keyledger-wrap-v${WRAP_VERSION}|${aad}`));
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(blob.subarray(1 + IV_BYTES, blob.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new RootKeyError('unwrap failed: wrong root key, or the blob or its binding was altered');
      }
    },
  };
}

/**
 * Loads the root key: from KEYLEDGER_ROOT_KEY (base64) if given, else from the
 * file. With `createIfMissing` (the `dev` command) a missing file is generated
 * with mode 0600.
 *
 * @example
 * const rootKey = await loadRootKey({ base64: config.rootKeyBase64, file: config.rootKeyFile, createIfMissing: true });
 */
export async function loadRootKey(options: { base64?: string | undefined; file: string; createIfMissing?: boolean }): Promise<RootKey> {
  if (options.base64) return rootKeyFromBytes(Buffer.from(options.base64, 'base64'));
  let text: string;
  try {
    text = await readFile(options.file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (!options.createIfMissing) {
      throw new RootKeyError(`no root key: set KEYLEDGER_ROOT_KEY or create ${options.file} (run \`keyledger dev\` once to generate one)`);
    }
    await mkdir(dirname(options.file), { recursive: true, mode: 0o711 });
    text = randomBytes(32).toString('base64');
    await writeFile(options.file, `${text}\n`, { mode: 0o600, flag: 'wx' });
  }
  const bytes = Buffer.from(text.trim(), 'base64');
  if (bytes.length !== 32) throw new RootKeyError(`${options.file} must hold 32 bytes in base64`);
  return rootKeyFromBytes(bytes);
}
