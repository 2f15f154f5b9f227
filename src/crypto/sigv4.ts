import { createHmac, hash, type KeyObject } from 'node:crypto';
import { secretKey } from './secret-key.ts';

/**
 * A SigV4 signature over a request to `/` with no query string: the shape of
 * every call of the AWS JSON protocols (KMS, STS's JSON calls), computed the
 * way `@smithy/signature-v4` (the AWS SDK for JavaScript's signer) computes
 * it, with Node's crypto alone: the canonical request, the string to sign, the
 * signing key derived from the secret and the scope, and the hex HMAC. Cheaper
 * than building a `SignatureV4` per request, and the secret stays in bytes
 * (zeroed after use), never a string. A property test checks it against
 * `@smithy/signature-v4`.
 */
export interface RootRequestToSign {
  method: string;
  /** The canonical headers: lower-case names, values as sent (trimmed and folded here). */
  headers: ReadonlyMap<string, string>;
  /** The hex SHA-256 of the body (or the x-amz-content-sha256 the client signed). */
  payloadHash: string;
  /** The signing time, `YYYYMMDDTHHMMSSZ`. */
  amzDate: string;
  region: string;
  service: string;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const TERMINATOR = 'aws4_request';
const AWS4 = Buffer.from('AWS4', 'utf8');

/**
 * A time as SigV4 writes it, `YYYYMMDDTHHMMSSZ` (ISO 8601 basic format, UTC,
 * whole seconds); its first eight characters are the credential scope's date.
 *
 * @example
 * amzFormat(new Date('2026-12-04T12:00:00.123Z')) // '20261204T120000Z'
 */
export const amzFormat = (date: Date): string =>
  date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');

/**
 * The canonical request of `request` (path `/`, empty query).
 *
 * @example
 * canonicalRootRequest({ method: 'POST', headers: new Map([['host', 'kms'], ['x-amz-date', '20261204T120000Z']]), payloadHash, amzDate, region, service })
 * // 'POST\n/\n\nhost:kms\nx-amz-date:20261204T120000Z\n\nhost;x-amz-date\n<payloadHash>'
 */
export function canonicalRootRequest(request: RootRequestToSign): string {
  const names = [...request.headers.keys()].sort();
  let headerLines = '';
  for (const name of names) headerLines += `${name}:${request.headers.get(name)!.trim().replace(/\s+/g, ' ')}\n`;
  return `${request.method}\n/\n\n${headerLines}\n${names.join(';')}\n${request.payloadHash}`;
}

/**
 * The SigV4 signing key of `secret` for one day, region and service: four
 * HMACs from `AWS4` + secret. It signs every request of that scope, so a
 * verifier (or a signer) that keeps it skips the derivation; it is a KeyObject,
 * its bytes outside the JavaScript heap, and the intermediate keys are zeroed.
 *
 * @example
 * const key = deriveSigningKey(secret, '20261204', 'us-east-1', 'kms');
 */
export function deriveSigningKey(secret: Uint8Array, shortDate: string, region: string, service: string): KeyObject {
  const first = Buffer.concat([AWS4, secret]);
  let key: KeyObject;
  try {
    key = secretKey(first);
  } finally {
    first.fill(0);
  }
  for (const part of [shortDate, region, service, TERMINATOR]) {
    const next = createHmac('sha256', key).update(part, 'utf8').digest();
    key = secretKey(next);
    next.fill(0);
  }
  return key;
}

/**
 * The signature (64 hex characters, as bytes) `signingKey` (deriveSigningKey
 * for the request's day, region and service) puts on `request`.
 *
 * @example
 * const signature = signRootRequestWith(deriveSigningKey(secret, '20261204', 'us-east-1', 'kms'), request);
 */
export function signRootRequestWith(signingKey: KeyObject, request: RootRequestToSign): Buffer {
  const scope = `${request.amzDate.slice(0, 8)}/${request.region}/${request.service}/${TERMINATOR}`;
  const stringToSign = `${ALGORITHM}\n${request.amzDate}\n${scope}\n${hash('sha256', canonicalRootRequest(request), 'hex')}`;
  return Buffer.from(createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex'), 'utf8');
}

/**
 * Signing keys by access key and scope, for a verifier: at most `capacity`,
 * the least recently used dropped first. An entry remembers the wrapped secret
 * it was derived from and is derived again if the key's secret is not that
 * one. Whether the access key may still sign is not this cache's business: the
 * caller looks the key up (and checks it is active) before every use.
 *
 * @example
 * const keys = new SigningKeyCache(4096);
 * const key = keys.get(accessKeyId, wrappedSecret, { date, region, service }, () => deriveSigningKey(unwrap(), date, region, service));
 */
export class SigningKeyCache {
  readonly #capacity: number;
  readonly #entries = new Map<string, { wrappedSecret: Uint8Array; key: KeyObject }>();

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  get(accessKeyId: string, wrappedSecret: Uint8Array, scope: { date: string; region: string; service: string }, derive: () => KeyObject): KeyObject {
    const name = `${accessKeyId}/${scope.date}/${scope.region}/${scope.service}`;
    const entry = this.#entries.get(name);
    this.#entries.delete(name);
    if (entry && Buffer.compare(entry.wrappedSecret, wrappedSecret) === 0) {
      this.#entries.set(name, entry);
      return entry.key;
    }
    const key = derive();
    this.#entries.set(name, { wrappedSecret, key });
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value!);
    return key;
  }

  get size(): number {
    return this.#entries.size;
  }
}
