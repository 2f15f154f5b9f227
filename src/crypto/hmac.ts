import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { secretKey } from './secret-key.ts';
import type { KeySpec } from './asymmetric.ts';

/**
 * HMAC keys with AWS KMS semantics (GenerateMac, VerifyMac). Pure: no I/O, no
 * state. Expected failures come back as a refusal with a stable `reason`;
 * messages never carry key or message bytes.
 */

/**
 * AWS's HMAC key specs.
 *
 * @example
 * const key = generateHmacKey('HMAC_512' satisfies HmacKeySpec);  // 64 bytes
 */
export type HmacKeySpec = 'HMAC_224' | 'HMAC_256' | 'HMAC_384' | 'HMAC_512';

/**
 * AWS's MacAlgorithmSpec enum.
 *
 * @example
 * generateMac({ keySpec: 'HMAC_224', key, algorithm: 'HMAC_SHA_224' satisfies MacAlgorithmSpec, message });
 */
export type MacAlgorithmSpec = 'HMAC_SHA_224' | 'HMAC_SHA_256' | 'HMAC_SHA_384' | 'HMAC_SHA_512';

/**
 * The MAC algorithm AWS allows per HMAC key spec (KeyUsage
 * GENERATE_VERIFY_MAC): exactly the matching one.
 *
 * @example
 * MAC_ALGORITHMS_BY_SPEC.HMAC_384  // ['HMAC_SHA_384']
 */
export const MAC_ALGORITHMS_BY_SPEC: Readonly<Record<HmacKeySpec, readonly MacAlgorithmSpec[]>> = Object.freeze({
  HMAC_224: Object.freeze(['HMAC_SHA_224'] as const),
  HMAC_256: Object.freeze(['HMAC_SHA_256'] as const),
  HMAC_384: Object.freeze(['HMAC_SHA_384'] as const),
  HMAC_512: Object.freeze(['HMAC_SHA_512'] as const),
});

/**
 * The length of the HMAC keys AWS generates per key spec, in bytes: the
 * digest length.
 *
 * @example
 * HMAC_KEY_BYTES.HMAC_224  // 28
 */
export const HMAC_KEY_BYTES: Readonly<Record<HmacKeySpec, number>> = Object.freeze({ HMAC_224: 28, HMAC_256: 32, HMAC_384: 48, HMAC_512: 64 });

/**
 * The largest message GenerateMac and VerifyMac accept, in bytes (AWS's
 * PlaintextType maximum). A digest is not special: it is MACed as given.
 *
 * @example
 * message.length <= MAX_MAC_MESSAGE_BYTES
 */
export const MAX_MAC_MESSAGE_BYTES = 4096;

const HASH: Readonly<Record<MacAlgorithmSpec, string>> = {
  HMAC_SHA_224: 'sha224',
  HMAC_SHA_256: 'sha256',
  HMAC_SHA_384: 'sha384',
  HMAC_SHA_512: 'sha512',
};

/**
 * Why GenerateMac or VerifyMac is refused. Suggested AWS mapping:
 * ALGORITHM_NOT_ALLOWED → InvalidKeyUsageException; INVALID_MESSAGE_LENGTH →
 * ValidationException.
 *
 * @example
 * if (!r.ok && r.reason === ('ALGORITHM_NOT_ALLOWED' satisfies MacRefusalReason)) throw new KmsError('InvalidKeyUsageException', r.message);
 */
export type MacRefusalReason = 'ALGORITHM_NOT_ALLOWED' | 'INVALID_MESSAGE_LENGTH';

/**
 * A refused MAC request: `reason` is stable, `message` is safe to show and audit.
 *
 * @example
 * const r = generateMac({ keySpec: 'HMAC_256', key, algorithm: 'HMAC_SHA_512', message });
 * if (!r.ok) r.reason  // 'ALGORITHM_NOT_ALLOWED'
 */
export interface MacRefusal {
  readonly ok: false;
  readonly reason: MacRefusalReason;
  readonly message: string;
}

/**
 * A new HMAC key for the spec: CSPRNG bytes, {@link HMAC_KEY_BYTES} long. The
 * caller wraps it, then zeroes it (`key.fill(0)`). Throws a RangeError for a
 * spec that is not an HMAC spec.
 *
 * @example
 * const key = generateHmacKey('HMAC_256');  // 32 bytes
 */
export function generateHmacKey(keySpec: HmacKeySpec): Buffer {
  if (!Object.hasOwn(HMAC_KEY_BYTES, keySpec)) throw new RangeError(`key spec ${keySpec} is not an HMAC key spec`);
  return randomBytes(HMAC_KEY_BYTES[keySpec]);
}

/**
 * A GenerateMac request.
 *
 * @example
 * generateMac({ keySpec: 'HMAC_256', key, algorithm: 'HMAC_SHA_256', message } satisfies GenerateMacInput);
 */
export interface GenerateMacInput {
  /** The KMS key's spec; only HMAC_* specs allow a MAC algorithm. */
  keySpec: KeySpec;
  /** The HMAC key; the caller owns it and zeroes it after the call. */
  key: Buffer;
  algorithm: MacAlgorithmSpec;
  message: Buffer;
}

/**
 * A VerifyMac request: a GenerateMac request and the MAC to check.
 *
 * @example
 * verifyMac({ keySpec: 'HMAC_256', key, algorithm: 'HMAC_SHA_256', message, mac } satisfies VerifyMacInput);
 */
export interface VerifyMacInput extends GenerateMacInput {
  mac: Buffer;
}

function macRefusal(keySpec: string, algorithm: string, messageLength: number): MacRefusal | null {
  const allowed: readonly string[] = Object.hasOwn(MAC_ALGORITHMS_BY_SPEC, keySpec) ? MAC_ALGORITHMS_BY_SPEC[keySpec as HmacKeySpec] : [];
  if (!allowed.includes(algorithm)) {
    return { ok: false, reason: 'ALGORITHM_NOT_ALLOWED', message: `MAC algorithm ${algorithm} is not compatible with key spec ${keySpec}.` };
  }
  if (messageLength > MAX_MAC_MESSAGE_BYTES) {
    return { ok: false, reason: 'INVALID_MESSAGE_LENGTH', message: `The message must be at most ${MAX_MAC_MESSAGE_BYTES} bytes long.` };
  }
  return null;
}

/**
 * HMAC (RFC 2104) of the message under the key, as AWS KMS GenerateMac does:
 * the full-length tag (28/32/48/64 bytes), never truncated. Keys of any
 * length are accepted (imported HMAC material need not be the generated
 * length).
 *
 * @example
 * const r = generateMac({ keySpec: 'HMAC_256', key, algorithm: 'HMAC_SHA_256', message: Buffer.from('hello') });
 * if (r.ok) r.mac  // 32 bytes
 */
export function generateMac(input: GenerateMacInput): { ok: true; mac: Buffer } | MacRefusal {
  const { keySpec, key, algorithm, message } = input;
  const refusal = macRefusal(keySpec, algorithm, message.length);
  if (refusal) return refusal;
  return { ok: true, mac: createHmac(HASH[algorithm], secretKey(key)).update(message).digest() };
}

/**
 * Whether `mac` is the HMAC of the message under the key, compared in
 * constant time; a MAC of the wrong length is simply invalid (AWS's
 * KMSInvalidMacException). The recomputed MAC is zeroed before returning.
 *
 * @example
 * const r = verifyMac({ keySpec: 'HMAC_256', key, algorithm: 'HMAC_SHA_256', message, mac });
 * if (r.ok && !r.valid) throw new KmsError('KMSInvalidMacException', '…');
 */
export function verifyMac(input: VerifyMacInput): { ok: true; valid: boolean } | MacRefusal {
  const { keySpec, key, algorithm, message, mac } = input;
  const refusal = macRefusal(keySpec, algorithm, message.length);
  if (refusal) return refusal;
  const expected = createHmac(HASH[algorithm], secretKey(key)).update(message).digest();
  try {
    return { ok: true, valid: expected.length === mac.length && timingSafeEqual(expected, mac) };
  } finally {
    expected.fill(0);
  }
}
