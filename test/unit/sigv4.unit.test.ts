import { createHash, createHmac, type KeyObject } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { amzFormat, canonicalRootRequest, deriveSigningKey, SigningKeyCache } from '../../src/crypto/sigv4.ts';
import { computeSignature, parseAuthorization, smithySignature, type SignedRequest } from '../../src/service/authentication.ts';

/**
 * The server's own SigV4 computation for requests to `/` (src/crypto/sigv4.ts)
 * against `@smithy/signature-v4`, which the AWS SDK for JavaScript signs with
 * and which the server used before: the same signature for every request.
 */

const sha256 = (body: Buffer) => createHash('sha256').update(body).digest('hex');

const secretArb = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'), minLength: 1, maxLength: 48 });
const dateArb = fc.integer({ min: Date.UTC(2000, 0, 1) / 1000, max: Date.UTC(2099, 11, 31) / 1000 }).map((s) => new Date(s * 1000));
/** Header values with the whitespace the canonical form folds: runs of spaces and tabs, inside and around, and non-ASCII text. */
const valueArb = fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', '  ', '\t', '/', ':', ';', ',', '=', 'é', '日', '"', '+'), maxLength: 24 });
const nameArb = fc
  .string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-'), minLength: 1, maxLength: 12 })
  .filter((n) => n !== '-' && !n.startsWith('-'));
const requestArb = fc.record({
  secret: secretArb,
  signedAt: dateArb,
  region: fc.constantFrom('us-east-1', 'eu-west-3', 'ap-southeast-2'),
  service: fc.constantFrom('kms', 'sts'),
  host: fc.constantFrom('localhost:4000', '127.0.0.1:4000', 'kms.us-east-1.example'),
  target: fc.constantFrom('TrentService.Decrypt', 'TrentService.Encrypt', 'AWSSecurityTokenServiceV20110615.GetCallerIdentity'),
  extra: fc.dictionary(nameArb, valueArb, { maxKeys: 5 }),
  body: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  applyChecksum: fc.boolean(),
  sessionToken: fc.option(fc.string({ unit: fc.constantFrom(...'ABCdef0123/+='), minLength: 1, maxLength: 40 }), { nil: undefined }),
});

describe('SigV4 for requests to /', () => {
  it('verifies exactly what @smithy/signature-v4 signs, whatever the headers, whitespace, dates, body and session token', async () => {
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => {
        const signer = new SignatureV4({
          credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: r.secret, ...(r.sessionToken ? { sessionToken: r.sessionToken } : {}) },
          region: r.region,
          service: r.service,
          sha256: Hash.bind(null, 'sha256'),
          applyChecksum: r.applyChecksum,
        });
        const signed = await signer.sign(
          {
            method: 'POST',
            protocol: 'http:',
            hostname: r.host,
            path: '/',
            query: {},
            headers: { ...r.extra, host: r.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': r.target },
            body: r.body,
          },
          { signingDate: r.signedAt },
        );
        const headers = Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
        const parsed = parseAuthorization(headers['authorization']!);
        if (!parsed.ok) throw new Error(parsed.message);
        const request: SignedRequest = { method: 'POST', path: '/', query: '', headers, body: r.body };
        const computed = await computeSignature(request, {
          accessKeyId: 'AKIAEXAMPLE',
          secret: Buffer.from(r.secret, 'utf8'),
          signedHeaders: parsed.signedHeaders,
          signedAt: r.signedAt,
          region: r.region,
          service: r.service,
          payloadHash: sha256(r.body),
        });
        expect(computed.toString('utf8')).toBe(parsed.signature);
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with @smithy/signature-v4 on any list of signed headers (date, authorization, x-amz-date left out, repeats, absent)', async () => {
    const listArb = fc.array(
      fc.constantFrom('host', 'x-amz-date', 'date', 'authorization', 'content-type', 'x-amz-target', 'x-absent', 'x-amz-security-token'),
      {
        minLength: 1,
        maxLength: 9,
      },
    );
    await fc.assert(
      fc.asyncProperty(requestArb, listArb, async (r, signedHeaders) => {
        const headers: Record<string, string> = {
          ...r.extra,
          host: r.host,
          date: 'Fri, 04 Dec 2026 12:00:00 GMT',
          authorization: 'AWS4-HMAC-SHA256 whatever',
          'content-type': ' application/x-amz-json-1.1 ',
          'x-amz-target': r.target,
          'x-amz-date': amzFormat(r.signedAt),
          ...(r.sessionToken ? { 'x-amz-security-token': r.sessionToken } : {}),
        };
        const request: SignedRequest = { method: 'POST', path: '/', query: '', headers, body: r.body };
        const p = {
          accessKeyId: 'AKIAEXAMPLE',
          secret: Buffer.from(r.secret, 'utf8'),
          signedHeaders,
          signedAt: r.signedAt,
          region: r.region,
          service: r.service,
        };
        const fast = await computeSignature(request, { ...p, payloadHash: sha256(r.body) });
        expect(fast.toString('utf8')).toBe((await smithySignature(request, p)).toString('utf8'));
      }),
      { numRuns: 300 },
    );
  });

  it('signs any other path or query through @smithy/signature-v4', async () => {
    const request: SignedRequest = {
      method: 'GET',
      path: '/a b/../c',
      query: 'b=2&a=1',
      headers: { host: 'h', 'x-amz-date': '20261204T120000Z' },
      body: Buffer.alloc(0),
    };
    const p = {
      accessKeyId: 'AKIAEXAMPLE',
      secret: Buffer.from('s3cret'),
      signedHeaders: ['host', 'x-amz-date'],
      signedAt: new Date(Date.UTC(2026, 11, 4, 12)),
      region: 'us-east-1',
      service: 'kms',
    };
    const viaSmithy = await smithySignature(request, p);
    expect((await computeSignature(request, { ...p, payloadHash: sha256(Buffer.alloc(0)) })).equals(viaSmithy)).toBe(true);
    expect((await computeSignature({ ...request, path: '/', query: '' }, { ...p, payloadHash: sha256(Buffer.alloc(0)) })).equals(viaSmithy)).toBe(false);
  });

  it('folds header whitespace and sorts headers as the canonical request requires', () => {
    const canonical = canonicalRootRequest({
      method: 'POST',
      headers: new Map([
        ['x-amz-target', '  TrentService.Decrypt\t '],
        ['host', 'a   b'],
        ['x-amz-date', '20261204T120000Z'],
      ]),
      payloadHash: 'e3b0',
      amzDate: '20261204T120000Z',
      region: 'us-east-1',
      service: 'kms',
    });
    expect(canonical).toBe('POST\n/\n\nhost:a b\nx-amz-date:20261204T120000Z\nx-amz-target:TrentService.Decrypt\n\nhost;x-amz-date;x-amz-target\ne3b0');
  });
});

describe('signing keys', () => {
  it('deriveSigningKey is the SigV4 derivation: HMACs of date, region, service and aws4_request from AWS4 + secret', () => {
    fc.assert(
      fc.property(secretArb, dateArb, (secret, date) => {
        const shortDate = amzFormat(date).slice(0, 8);
        let expected: Buffer = Buffer.from(`AWS4${secret}`, 'utf8');
        for (const part of [shortDate, 'eu-west-1', 'kms', 'aws4_request']) expected = createHmac('sha256', expected).update(part).digest();
        const derived = deriveSigningKey(Buffer.from(secret, 'utf8'), shortDate, 'eu-west-1', 'kms');
        expect(derived.export().equals(expected)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('the cache derives once per access key and scope, again for another secret, and forgets the least recently used', () => {
    const cache = new SigningKeyCache(2);
    let derived = 0;
    const derive = (): KeyObject => {
      derived++;
      return deriveSigningKey(Buffer.from(`secret-${derived}`), '20261204', 'us-east-1', 'kms');
    };
    const scope = { date: '20261204', region: 'us-east-1', service: 'kms' };
    const wrappedA = Buffer.from('wrapped-a');
    const first = cache.get('AKIAAAAAAAAAAAAAAAAA', wrappedA, scope, derive);
    expect(cache.get('AKIAAAAAAAAAAAAAAAAA', Buffer.from('wrapped-a'), scope, derive)).toBe(first);
    expect(derived).toBe(1);
    // Another day, another service: a key of its own.
    cache.get('AKIAAAAAAAAAAAAAAAAA', wrappedA, { ...scope, date: '20261205' }, derive);
    expect(derived).toBe(2);
    // The same access key id with another wrapped secret: derived again, never the old key.
    const replaced = cache.get('AKIAAAAAAAAAAAAAAAAA', Buffer.from('wrapped-b'), scope, derive);
    expect(derived).toBe(3);
    expect(replaced).not.toBe(first);
    // Capacity 2: the 20261205 entry is the least recently used and goes first.
    cache.get('AKIABBBBBBBBBBBBBBBB', wrappedA, scope, derive);
    expect(cache.size).toBe(2);
    cache.get('AKIAAAAAAAAAAAAAAAAA', wrappedA, { ...scope, date: '20261205' }, derive);
    expect(derived).toBe(5);
    cache.get('AKIABBBBBBBBBBBBBBBB', wrappedA, scope, derive);
    expect(derived).toBe(5);
  });
});
