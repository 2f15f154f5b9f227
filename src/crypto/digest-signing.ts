import { createECDH, createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { type Curve, type NodeHash } from './key-pairs.ts';

/**
 * Signing and verifying an already-hashed digest (AWS's DIGEST message type).
 *
 * Node has no API to sign or verify an already-hashed digest; this module
 * does it as follows:
 * - RSASSA-PKCS1-v1_5: OpenSSL's RSA private operation with PKCS#1 type 1
 *   padding (`privateEncrypt`) over DigestInfo || digest; verification
 *   recovers and compares the DigestInfo.
 * - RSASSA-PSS: EMSA-PSS encoding (RFC 8017 9.1) done here, then OpenSSL's raw
 *   (blinded, constant-time) RSA private operation.
 * - ECDSA: the nonce and its point k·G come from OpenSSL (a fresh EC key pair);
 *   only the final scalar step s = k⁻¹(e + r·d) mod n is JS BigInt
 *   arithmetic, multiplicatively blinded because BigInt is not constant-time.
 *   Every signature is verified before it is returned. Verification of a
 *   digest is BigInt point arithmetic over public values only. The private
 *   scalar and the nonce exist briefly as BigInts, which cannot be zeroed (the
 *   Buffers they come from are).
 * All of it is checked against `openssl pkeyutl -pkeyopt digest:…` in
 * test/unit/asymmetric.unit.test.ts.
 */

export const HASH_BYTES: Readonly<Record<NodeHash, number>> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/** DER DigestInfo headers (RFC 8017 9.2 note 1): AlgorithmIdentifier with NULL parameters, then the OCTET STRING header. */
export const DIGEST_INFO_PREFIX: Readonly<Record<'sha256' | 'sha384' | 'sha512', Buffer>> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

function mgf1(hash: NodeHash, seed: Buffer, length: number): Buffer {
  const mask = Buffer.alloc(length);
  const counter = Buffer.alloc(4);
  for (let i = 0, offset = 0; offset < length; i++) {
    counter.writeUInt32BE(i);
    offset += createHash(hash).update(seed).update(counter).digest().copy(mask, offset);
  }
  return mask;
}

/**
 * EMSA-PSS-ENCODE (RFC 8017 9.1.1) of an already computed digest, salt length =
 * digest length, left-padded to the modulus length for the raw RSA operation.
 */
export function emsaPssEncode(hash: NodeHash, mHash: Buffer, modBits: number): Buffer {
  const hLen = HASH_BYTES[hash];
  const sLen = hLen;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  if (emLen < hLen + sLen + 2) throw new Error('RSA modulus too short for PSS');
  const salt = randomBytes(sLen);
  const h = createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.alloc(emLen - hLen - 1);
  db[emLen - sLen - hLen - 2] = 0x01;
  salt.copy(db, db.length - sLen);
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i] = db[i]! ^ mask[i]!;
  db[0] = db[0]! & (0xff >> (8 * emLen - emBits));
  const k = Math.ceil(modBits / 8);
  const em = Buffer.alloc(k);
  db.copy(em, k - emLen);
  h.copy(em, k - emLen + db.length);
  em[k - 1] = 0xbc;
  return em;
}

/** EMSA-PSS-VERIFY (RFC 8017 9.1.2), salt length = digest length; `m` is the raw RSA public operation's output, modulus-length. */
export function emsaPssVerify(hash: NodeHash, mHash: Buffer, m: Buffer, modBits: number): boolean {
  const hLen = HASH_BYTES[hash];
  const sLen = hLen;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const k = Math.ceil(modBits / 8);
  if (m.length !== k || emLen < hLen + sLen + 2) return false;
  for (let i = 0; i < k - emLen; i++) if (m[i] !== 0) return false;
  const em = m.subarray(k - emLen);
  if (em[emLen - 1] !== 0xbc) return false;
  const db = Buffer.from(em.subarray(0, emLen - hLen - 1));
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = 0xff >> (8 * emLen - emBits);
  if ((db[0]! & ~topMask) !== 0) return false;
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i] = db[i]! ^ mask[i]!;
  db[0] = db[0]! & topMask;
  const separator = emLen - hLen - sLen - 2;
  for (let i = 0; i < separator; i++) if (db[i] !== 0) return false;
  if (db[separator] !== 0x01) return false;
  const salt = db.subarray(db.length - sLen);
  return createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest().equals(h);
}

// ---------------------------------------------------------------------------
// ECDSA over a digest
// ---------------------------------------------------------------------------

const mod = (a: bigint, m: bigint): bigint => {
  const r = a % m;
  return r < 0n ? r + m : r;
};

/** a^e mod m by square-and-multiply; `e` is always public here (m − 2). */
function modPow(base: bigint, exponent: bigint, m: bigint): bigint {
  let result = 1n;
  let b = mod(base, m);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
  }
  return result;
}

/** Inverse modulo a prime (Fermat). */
const modInverse = (a: bigint, p: bigint): bigint => modPow(a, p - 2n, p);

const toBigInt = (bytes: Buffer): bigint => (bytes.length === 0 ? 0n : BigInt(`0x${bytes.toString('hex')}`));

const bitLength = (x: bigint): number => x.toString(2).length;

/** FIPS 186-5 6.4.1: the leftmost min(bitlen(n), 8·len) bits of the digest as an integer. */
function bitsToInt(digest: Buffer, n: bigint): bigint {
  const excess = digest.length * 8 - bitLength(n);
  const e = toBigInt(digest);
  return excess > 0 ? e >> BigInt(excess) : e;
}

/** A point in Jacobian coordinates (x = X/Z², y = Y/Z³); Z = 0 is the point at infinity. */
interface Jacobian {
  x: bigint;
  y: bigint;
  z: bigint;
}
const INFINITY: Jacobian = { x: 1n, y: 1n, z: 0n };

function pointDouble(c: Curve, q: Jacobian): Jacobian {
  if (q.z === 0n || q.y === 0n) return INFINITY;
  const { p } = c;
  const yy = mod(q.y * q.y, p);
  const zz = mod(q.z * q.z, p);
  const s = mod(4n * q.x * yy, p);
  const m = mod(3n * q.x * q.x + c.a * zz * zz, p);
  const x = mod(m * m - 2n * s, p);
  const y = mod(m * (s - x) - 8n * yy * yy, p);
  const z = mod(2n * q.y * q.z, p);
  return { x, y, z };
}

function pointAdd(c: Curve, a: Jacobian, b: Jacobian): Jacobian {
  if (a.z === 0n) return b;
  if (b.z === 0n) return a;
  const { p } = c;
  const z1z1 = mod(a.z * a.z, p);
  const z2z2 = mod(b.z * b.z, p);
  const u1 = mod(a.x * z2z2, p);
  const u2 = mod(b.x * z1z1, p);
  const s1 = mod(a.y * b.z * z2z2, p);
  const s2 = mod(b.y * a.z * z1z1, p);
  if (u1 === u2) return s1 === s2 ? pointDouble(c, a) : INFINITY;
  const h = mod(u2 - u1, p);
  const r = mod(s2 - s1, p);
  const hh = mod(h * h, p);
  const hhh = mod(h * hh, p);
  const v = mod(u1 * hh, p);
  const x = mod(r * r - hhh - 2n * v, p);
  const y = mod(r * (v - x) - s1 * hhh, p);
  const z = mod(a.z * b.z * h, p);
  return { x, y, z };
}

/** k·Q by double-and-add. Not constant-time: only ever called with public scalars (verification). */
function pointMultiply(c: Curve, k: bigint, q: Jacobian): Jacobian {
  let result = INFINITY;
  let addend = q;
  for (let e = k; e > 0n; e >>= 1n) {
    if (e & 1n) result = pointAdd(c, result, addend);
    addend = pointDouble(c, addend);
  }
  return result;
}

/** The affine x coordinate, or undefined for the point at infinity. */
function affineX(c: Curve, q: Jacobian): bigint | undefined {
  if (q.z === 0n) return undefined;
  const zInv = modInverse(q.z, c.p);
  return mod(q.x * zInv * zInv, c.p);
}

/** The public point of an EC public key (validated on the curve by OpenSSL when it was parsed). */
export function publicPoint(key: KeyObject): Jacobian {
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw new Error('not an EC public key');
  return { x: toBigInt(Buffer.from(jwk.x, 'base64url')), y: toBigInt(Buffer.from(jwk.y, 'base64url')), z: 1n };
}

/** ECDSA verification (FIPS 186-5 6.4.2) of a DER signature over a digest. Public inputs only. */
export function ecdsaVerifyDigest(c: Curve, q: Jacobian, digest: Buffer, signature: Buffer): boolean {
  const rs = parseDerSignature(signature);
  if (rs === undefined) return false;
  const { r, s } = rs;
  if (r < 1n || r >= c.n || s < 1n || s >= c.n) return false;
  const e = bitsToInt(digest, c.n);
  const w = modInverse(s, c.n);
  const u1 = mod(e * w, c.n);
  const u2 = mod(r * w, c.n);
  const point = pointAdd(c, pointMultiply(c, u1, { x: c.gx, y: c.gy, z: 1n }), pointMultiply(c, u2, q));
  const x = affineX(c, point);
  return x !== undefined && mod(x, c.n) === r;
}

/**
 * ECDSA signing (FIPS 186-5 6.4.1) of an already computed digest. The
 * secret-dependent point multiplication k·G is OpenSSL's (a fresh key pair
 * from createECDH: k uniform in [1, n−1], constant-time scalar
 * multiplication). The scalar step s = k⁻¹(e + r·d) mod n runs on BigInt,
 * which is not constant-time, so it is blinded by a random b:
 * s = (k·b)⁻¹ · (b·e + r·(b·d)) mod n, and the inversion only ever sees the
 * uniformly random k·b. The result is verified before it is returned.
 */
export function ecdsaSignDigest(c: Curve, key: KeyObject, digest: Buffer): Buffer {
  const d = ecPrivateScalar(key);
  const q = publicPoint(createPublicKey(key));
  const e = bitsToInt(digest, c.n);
  for (;;) {
    const ephemeral = createECDH(c.name);
    const kG = ephemeral.generateKeys();
    const kBytes = ephemeral.getPrivateKey();
    const k = toBigInt(kBytes);
    kBytes.fill(0);
    const r = mod(toBigInt(kG.subarray(1, 1 + c.bytes)), c.n);
    if (r === 0n) continue;
    const blindBytes = randomBytes(c.bytes + 16);
    const b = mod(toBigInt(blindBytes), c.n - 1n) + 1n;
    blindBytes.fill(0);
    const kbInverse = modInverse(mod(k * b, c.n), c.n);
    const s = mod(kbInverse * mod(b * e + r * mod(b * d, c.n), c.n), c.n);
    if (s === 0n) continue;
    const signature = encodeDerSignature(r, s);
    if (!ecdsaVerifyDigest(c, q, digest, signature)) throw new Error('ECDSA signature failed its own verification');
    return signature;
  }
}

/** The private scalar d of an EC private key, read from its SEC 1 ECPrivateKey encoding (RFC 5915). */
function ecPrivateScalar(key: KeyObject): bigint {
  const sec1 = key.export({ format: 'der', type: 'sec1' });
  try {
    const outer = readDer(sec1, 0, 0x30);
    const version = readDer(sec1, outer.start, 0x02);
    const octets = readDer(sec1, version.end, 0x04);
    return toBigInt(sec1.subarray(octets.start, octets.end));
  } finally {
    sec1.fill(0);
  }
}

// ---------------------------------------------------------------------------
// Minimal DER
// ---------------------------------------------------------------------------

/** One TLV at `offset` with the expected tag: content bounds, strict (minimal) lengths only. */
function readDer(buf: Buffer, offset: number, tag: number): { start: number; end: number } {
  if (buf[offset] !== tag) throw new Error('unexpected DER tag');
  let length = buf[offset + 1];
  let start = offset + 2;
  if (length === undefined) throw new Error('truncated DER');
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 2) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < count; i++) {
      const byte = buf[start + i];
      if (byte === undefined || (i === 0 && byte === 0)) throw new Error('bad DER length');
      length = (length << 8) | byte;
    }
    if (length < 0x80) throw new Error('non-minimal DER length');
    start += count;
  }
  const end = start + length;
  if (end > buf.length) throw new Error('truncated DER');
  return { start, end };
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  if (length < 0x100) return Buffer.from([0x81, length]);
  return Buffer.from([0x82, length >> 8, length & 0xff]);
}

function derInteger(x: bigint): Buffer {
  let h = x.toString(16);
  if (h.length % 2) h = `0${h}`;
  let bytes = Buffer.from(h, 'hex');
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Buffer.concat([Buffer.from([0x02]), derLength(bytes.length), bytes]);
}

function encodeDerSignature(r: bigint, s: bigint): Buffer {
  const body = Buffer.concat([derInteger(r), derInteger(s)]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/** A canonical DER ECDSA signature (what OpenSSL accepts), or undefined. */
function parseDerSignature(signature: Buffer): { r: bigint; s: bigint } | undefined {
  try {
    const outer = readDer(signature, 0, 0x30);
    if (outer.end !== signature.length) return undefined;
    const values: bigint[] = [];
    let offset = outer.start;
    for (let i = 0; i < 2; i++) {
      const int = readDer(signature, offset, 0x02);
      const bytes = signature.subarray(int.start, int.end);
      if (bytes.length === 0 || bytes[0]! & 0x80) return undefined;
      if (bytes.length > 1 && bytes[0] === 0 && !(bytes[1]! & 0x80)) return undefined;
      values.push(toBigInt(bytes));
      offset = int.end;
    }
    if (offset !== outer.end) return undefined;
    return { r: values[0]!, s: values[1]! };
  } catch {
    return undefined;
  }
}
