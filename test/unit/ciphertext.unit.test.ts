import { randomBytes, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalEncryptionContext,
  CIPHERTEXT_OVERHEAD,
  decryptBlob,
  encryptBlob,
  InvalidCiphertextError,
  parseBlobHeader,
} from '../../src/crypto/ciphertext.ts';
import { generateKeyMaterial, unwrapKeyMaterial, wrapKeyMaterial } from '../../src/crypto/key-material.ts';
import { rootKeyFromBytes } from '../../src/crypto/root-key.ts';

const keyId = randomUUID();
const { keyMaterialId, material } = generateKeyMaterial();
const context = fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 12 }), { maxKeys: 6 });
const plaintext = fc.uint8Array({ minLength: 1, maxLength: 4096 }).map((a) => Buffer.from(a));

const seal = (p: Buffer, c: Record<string, string>, isDataKey = false) =>
  encryptBlob({ keyId, keyMaterialId, backingKey: material, plaintext: Buffer.from(p), context: c, isDataKey });

describe('ciphertext blob', () => {
  it('round-trips any plaintext under any encryption context', () => {
    fc.assert(
      fc.property(plaintext, context, fc.boolean(), (p, c, isDataKey) => {
        const { blob, header } = seal(p, c, isDataKey);
        expect(blob.length).toBe(p.length + CIPHERTEXT_OVERHEAD);
        expect(parseBlobHeader(blob)).toEqual(header);
        expect(header).toMatchObject({ keyId, keyMaterialId, isDataKey });
        expect(decryptBlob(blob, material, c).equals(p)).toBe(true);
      }),
    );
  });

  it('rejects any single flipped bit anywhere in the blob', () => {
    fc.assert(
      fc.property(plaintext, context, fc.nat(), (p, c, at) => {
        const { blob } = seal(p, c);
        const bit = at % (blob.length * 8);
        const flipped = Buffer.from(blob);
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        expect(() => decryptBlob(flipped, material, c)).toThrow(InvalidCiphertextError);
      }),
      { numRuns: 300 },
    );
  });

  it('ignores the order of the encryption context but not any change to a key or value', () => {
    fc.assert(
      fc.property(
        plaintext,
        context.filter((c) => Object.keys(c).length > 0),
        fc.string({ minLength: 1, maxLength: 4 }),
        (p, c, extra) => {
          const { blob } = seal(p, c);
          const reversed = Object.fromEntries(Object.entries(c).reverse());
          expect(decryptBlob(blob, material, reversed).equals(p)).toBe(true);

          const [firstKey, firstValue] = Object.entries(c)[0]!;
          const changedValue = { ...c, [firstKey]: `${firstValue}${extra}` };
          const renamedKey = Object.fromEntries(Object.entries(c).map(([k, v]) => [k === firstKey ? `${k}${extra}` : k, v]));
          const added = { ...c, [`${firstKey}${extra}`]: 'x' };
          const { [firstKey]: _removed, ...removed } = c;
          for (const wrong of [changedValue, renamedKey, added, removed]) {
            if (JSON.stringify(canonicalEncryptionContext(wrong)) === JSON.stringify(canonicalEncryptionContext(c))) continue;
            expect(() => decryptBlob(blob, material, wrong)).toThrow(InvalidCiphertextError);
          }
        },
      ),
    );
  });

  it('fails under other key material, and uses a fresh ciphertext id, nonce and IV every time', () => {
    const { blob } = seal(Buffer.from('same'), {});
    expect(() => decryptBlob(blob, generateKeyMaterial().material, {})).toThrow(InvalidCiphertextError);
    const sealed = seal(Buffer.from('same'), {});
    const again = sealed.blob;
    // Each of the three random fields (ciphertext id 50-66, HKDF salt 66-98, IV 98-110) is fresh on its own.
    for (const [from, to] of [
      [50, 66],
      [66, 98],
      [98, 110],
    ])
      expect(again.subarray(from, to).equals(blob.subarray(from, to))).toBe(false);
    expect(parseBlobHeader(again).ciphertextId).not.toBe(parseBlobHeader(blob).ciphertextId);
    expect(sealed.header.ciphertextId).toBe(parseBlobHeader(again).ciphertextId);
  });

  it('rejects unknown format versions, unknown flags and short blobs cleanly', () => {
    const { blob } = seal(Buffer.from('v'), {});
    for (const version of [0, 2, 255]) {
      const other = Buffer.from(blob);
      other[0] = version;
      expect(() => parseBlobHeader(other)).toThrow(InvalidCiphertextError);
    }
    const flagged = Buffer.from(blob);
    flagged[1] = 0x80;
    expect(() => parseBlobHeader(flagged)).toThrow(InvalidCiphertextError);
    expect(() => parseBlobHeader(blob.subarray(0, CIPHERTEXT_OVERHEAD - 1))).toThrow(InvalidCiphertextError);
    expect(() => decryptBlob(Buffer.alloc(0), material, {})).toThrow(InvalidCiphertextError);
  });
});

describe('key material wrapping', () => {
  it('unwraps only with the same root key and the same key id and material id', () => {
    const rootKey = rootKeyFromBytes(randomBytes(32));
    const wrapped = wrapKeyMaterial(rootKey, keyId, keyMaterialId, material);
    expect(wrapped.includes(material)).toBe(false);
    expect(unwrapKeyMaterial(rootKey, keyId, keyMaterialId, wrapped).equals(material)).toBe(true);
    expect(() => unwrapKeyMaterial(rootKey, randomUUID(), keyMaterialId, wrapped)).toThrow();
    expect(() => unwrapKeyMaterial(rootKey, keyId, generateKeyMaterial().keyMaterialId, wrapped)).toThrow();
    expect(() => unwrapKeyMaterial(rootKeyFromBytes(randomBytes(32)), keyId, keyMaterialId, wrapped)).toThrow();
  });
});
