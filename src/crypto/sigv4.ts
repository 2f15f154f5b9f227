import { createHash, createHmac, type KeyObject } from 'node:crypto';
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
 * The signature (64 hex characters, as bytes) a signer holding `secret` puts on `request`.
 *
 * @example
 * const signature = signRootRequest(secret, { method: 'POST', headers, payloadHash, amzDate: '20261204T120000Z', region: 'us-east-1', service: 'kms' });
 * timingSafeEqual(signature, Buffer.from(given, 'utf8'));
 */
export function signRootRequest(secret: Uint8Array, request: RootRequestToSign): Buffer {
  const shortDate = request.amzDate.slice(0, 8);
  const scope = `${shortDate}/${request.region}/${request.service}/${TERMINATOR}`;
  const stringToSign = `${ALGORITHM}\n${request.amzDate}\n${scope}\n${createHash('sha256').update(canonicalRootRequest(request), 'utf8').digest('hex')}`;
  const first = Buffer.concat([AWS4, secret]);
  let key: KeyObject;
  try {
    key = secretKey(first);
  } finally {
    first.fill(0);
  }
  for (const part of [shortDate, request.region, request.service, TERMINATOR]) {
    const next = createHmac('sha256', key).update(part, 'utf8').digest();
    key = secretKey(next);
    next.fill(0);
  }
  return Buffer.from(createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex'), 'utf8');
}
