import { createHmac, randomBytes } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rootKeyFromBytes } from '../../src/crypto/root-key.ts';
import { KeyObjectSha256, secretKey } from '../../src/crypto/secret-key.ts';

/**
 * The KeyObject path (src/crypto/secret-key.ts) is a speed-up only: every
 * digest, HMAC and signature must be byte for byte what the Buffer path gives.
 */

const digestOf = async (hash: { update(d: any): void; digest(): Promise<Uint8Array> }, parts: (string | Uint8Array | ArrayBuffer)[]) => {
  for (const part of parts) hash.update(part);
  return Buffer.from(await hash.digest()).toString('hex');
};

const part = fc.oneof(
  fc.string(),
  fc.uint8Array({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 64 }).map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer),
);

describe('KeyObjectSha256', () => {
  it('digests and HMACs exactly as @smithy/hash-node does, for strings, views and ArrayBuffers, with or without a secret', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.oneof(fc.string(), fc.uint8Array({ maxLength: 80 })), { nil: undefined }),
        fc.array(part, { maxLength: 4 }),
        async (secret, parts) => {
          const ours = await digestOf(new KeyObjectSha256(secret), parts);
          const theirs = await digestOf(new Hash('sha256', secret), parts);
          expect(ours).toBe(theirs);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('starts over after reset()', async () => {
    const hash = new KeyObjectSha256('key');
    hash.update('discarded');
    hash.reset();
    hash.update('kept');
    expect(Buffer.from(await hash.digest()).toString('hex')).toBe(createHmac('sha256', 'key').update('kept').digest('hex'));
  });

  it('signs a SigV4 request to the same signature as the AWS SDK’s hash', async () => {
    const request = {
      method: 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1:4000',
      path: '/',
      headers: { host: '127.0.0.1:4000', 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.Decrypt' },
      body: JSON.stringify({ CiphertextBlob: randomBytes(120).toString('base64') }),
    };
    const signer = (sha256: any) =>
      new SignatureV4({ credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: randomSecret }, region: 'us-east-1', service: 'kms', sha256 });
    const randomSecret = randomBytes(30).toString('base64');
    const signingDate = new Date('2026-12-05T12:00:00Z');
    const ours = await signer(KeyObjectSha256).sign(request, { signingDate });
    const theirs = await signer(Hash.bind(null, 'sha256')).sign(request, { signingDate });
    expect(ours.headers['authorization']).toBe(theirs.headers['authorization']);
  });
});

describe('secretKey', () => {
  it('the root key wraps and unwraps as before: a blob from one instance opens in another, and a wrong aad is refused', () => {
    const bytes = randomBytes(32);
    const blob = rootKeyFromBytes(bytes).wrap(Buffer.from('material'), 'key:1');
    expect(rootKeyFromBytes(Buffer.from(bytes)).unwrap(blob, 'key:1').toString()).toBe('material');
    expect(() => rootKeyFromBytes(bytes).unwrap(blob, 'key:2')).toThrow(/unwrap failed/);
  });

  it('holds its own copy: zeroing the Buffer afterwards changes nothing', () => {
    const bytes = randomBytes(32);
    const expected = createHmac('sha256', bytes).update('m').digest('hex');
    const key = secretKey(bytes);
    bytes.fill(0);
    expect(createHmac('sha256', key).update('m').digest('hex')).toBe(expected);
  });
});
