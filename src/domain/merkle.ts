/**
 * A Merkle tree over the log, as RFC 9162 (Certificate Transparency 2.0, after
 * RFC 6962) defines it: SHA-256, a leaf hashed as `SHA-256(0x00 || bytes)` and
 * an inner node as `SHA-256(0x01 || left || right)` (the prefixes keep a leaf
 * from ever passing for a node), the tree of n leaves split at the largest
 * power of two below n. Inclusion and consistency proofs are RFC 9162's
 * (sections 2.1.3 and 2.1.4), so any verifier written from the RFC checks them.
 *
 * Nothing here reads a database: a proof is built from the hashes of perfect
 * subtrees (2^level leaves starting at index * 2^level), asked of a
 * `SubtreeSource`. A store that keeps every perfect subtree's hash answers any
 * proof with O(log n) reads: `subtreesNeeded` names them first, in one batch.
 *
 * Sizes and indices are JavaScript numbers: exact up to 2^53 leaves.
 */
import { hash } from 'node:crypto';

export const HASH_BYTES = 32;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = 0x01;

/**
 * The hash of a leaf: SHA-256(0x00 || bytes). A string is hashed as its UTF-8 bytes.
 *
 * @example
 * leafHash(Buffer.from('')) // RFC 9162's leaf of the empty string: 6e340b9c...
 */
export function leafHash(bytes: Uint8Array | string): Buffer {
  if (typeof bytes === 'string') return hash('sha256', `\u0000${bytes}`, 'buffer');
  return hash('sha256', Buffer.concat([LEAF_PREFIX, bytes]), 'buffer');
}

/**
 * The hash of an inner node: SHA-256(0x01 || left || right).
 *
 * @example
 * nodeHash(leafHash('a'), leafHash('b')) // the root of the two-leaf tree ['a', 'b'], 32 bytes
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(1 + 2 * HASH_BYTES);
  input[0] = NODE_PREFIX;
  input.set(left, 1);
  input.set(right, 1 + HASH_BYTES);
  return hash('sha256', input, 'buffer');
}

/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Buffer = hash('sha256', Buffer.alloc(0), 'buffer');

/**
 * The largest power of two strictly below n (n >= 2).
 *
 * @example
 * splitPoint(5) // 4
 * splitPoint(8) // 4: strictly below
 * splitPoint(2) // 1
 */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n >= 1 && splitPoint(n + 1) === n;
}

/**
 * The hash of the perfect subtree of 2^level leaves that starts at leaf
 * `index * 2^level` (level 0: the leaf hashes themselves).
 */
export type SubtreeSource = (level: number, index: number) => Uint8Array;

/**
 * MTH(D[start:end]) for a range whose start is a multiple of the largest power
 * of two not above its length (every range a proof asks for is): one perfect
 * subtree per bit of the length.
 *
 * @example
 * rangeHash(4, 7, source) // nodeHash(source(1, 2), source(0, 6)): leaves 4..5, then leaf 6
 * rangeHash(1, 4, source) // throws RangeError 'range 1..3 is not aligned'
 */
export function rangeHash(start: number, end: number, source: SubtreeSource): Uint8Array {
  const size = end - start;
  if (size <= 0) throw new RangeError(`empty range ${start}..${end}`);
  if (isPowerOfTwo(size)) {
    const level = Math.log2(size);
    if (start % size !== 0) throw new RangeError(`range ${start}..${end} is not aligned`);
    return source(level, start / size);
  }
  const k = splitPoint(size);
  return nodeHash(rangeHash(start, start + k, source), rangeHash(start + k, end, source));
}

/**
 * The root of a tree of `size` leaves (RFC 9162 MTH), from its perfect subtrees.
 *
 * @example
 * const root = treeRoot(5, (level, index) => stored.get(`${level}/${index}`)!);
 */
export function treeRoot(size: number, source: SubtreeSource): Uint8Array {
  return size === 0 ? EMPTY_ROOT : rangeHash(0, size, source);
}

/**
 * The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162
 * 2.1.3.1, PATH), the sibling nearest the leaf first.
 *
 * @example
 * const proof = inclusionProof(3, 7, source); // verifyInclusion(3, 7, leaf, proof, root)
 */
export function inclusionProof(index: number, size: number, source: SubtreeSource): Uint8Array[] {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
  const path: Uint8Array[] = [];
  let start = 0;
  let end = size;
  // Top-down, then reversed: RFC 9162 lists the proof bottom-up.
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (index < start + k) {
      path.push(rangeHash(start + k, end, source));
      end = start + k;
    } else {
      path.push(rangeHash(start, start + k, source));
      start += k;
    }
  }
  return path.reverse();
}

/**
 * The consistency proof between the trees of `from` and `to` leaves (RFC 9162
 * 2.1.4.1, PROOF(m, D[n])): it shows the first tree is a prefix of the second.
 * Empty when the sizes are equal or `from` is 0.
 *
 * @example
 * const proof = consistencyProof(4, 9, source); // verifyConsistency(4, 9, root4, root9, proof)
 */
export function consistencyProof(from: number, to: number, source: SubtreeSource): Uint8Array[] {
  if (!(from >= 0 && from <= to)) throw new RangeError(`no consistency proof from ${from} to ${to}`);
  if (from === 0 || from === to) return [];
  const proof: Uint8Array[] = [];
  // SUBPROOF(m, D[start:end], b), iteratively: each level adds one hash, the deepest first at the end.
  const tail: Uint8Array[] = [];
  let m = from;
  let start = 0;
  let end = to;
  let complete = true;
  for (;;) {
    const n = end - start;
    if (m === n) {
      if (!complete) proof.push(rangeHash(start, end, source));
      break;
    }
    const k = splitPoint(n);
    if (m <= k) {
      tail.push(rangeHash(start + k, end, source));
      end = start + k;
    } else {
      tail.push(rangeHash(start, start + k, source));
      m -= k;
      start += k;
      complete = false;
    }
  }
  return proof.concat(tail.reverse());
}

const bit = (n: number) => n % 2 === 1;
const half = (n: number) => Math.floor(n / 2);

/**
 * Checks an inclusion proof (RFC 9162 2.1.3.2).
 *
 * @example
 * verifyInclusion(3, 7, leafHash(bytes), proof, root) // true
 */
export function verifyInclusion(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (p.length !== HASH_BYTES || sn === 0) return false;
    if (bit(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!bit(fn)) {
        do {
          fn = half(fn);
          sn = half(sn);
        } while (!bit(fn) && fn !== 0);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && Buffer.from(r).equals(root);
}

/**
 * Checks a consistency proof (RFC 9162 2.1.4.2): the tree of `from` leaves
 * with root `fromRoot` is a prefix of the tree of `to` leaves with `toRoot`.
 *
 * @example
 * verifyConsistency(4, 9, root4, root9, proof) // true
 */
export function verifyConsistency(from: number, to: number, fromRoot: Uint8Array, toRoot: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from >= 0 && from <= to)) return false;
  if (from === to) return proof.length === 0 && Buffer.from(fromRoot).equals(toRoot);
  if (from === 0) return proof.length === 0 && Buffer.from(fromRoot).equals(EMPTY_ROOT);
  if (proof.some((p) => p.length !== HASH_BYTES)) return false;
  const path = isPowerOfTwo(from) ? [fromRoot, ...proof] : [...proof];
  if (path.length === 0) return false;
  let fn = from - 1;
  let sn = to - 1;
  while (bit(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (bit(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!bit(fn)) {
        do {
          fn = half(fn);
          sn = half(sn);
        } while (!bit(fn) && fn !== 0);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && Buffer.from(fr).equals(fromRoot) && Buffer.from(sr).equals(toRoot);
}

/** A perfect subtree: 2^level leaves from leaf index * 2^level. */
export interface SubtreeRef {
  level: number;
  index: number;
}

/**
 * The perfect subtrees that `compute` asks its source for, without their
 * hashes: run it once to learn what to read (in one query), then again with
 * the answers. What a proof reads depends only on sizes and indices.
 *
 * @example
 * const needed = subtreesNeeded((source) => inclusionProof(3, 7, source));
 */
export function subtreesNeeded(compute: (source: SubtreeSource) => unknown): SubtreeRef[] {
  const seen = new Map<string, SubtreeRef>();
  const placeholder = Buffer.alloc(HASH_BYTES);
  compute((level, index) => {
    seen.set(`${level}/${index}`, { level, index });
    return placeholder;
  });
  return [...seen.values()];
}

/** A perfect subtree and its hash, as the frontier completes it. */
export interface Subtree extends SubtreeRef {
  hash: Buffer;
}

/**
 * The right edge of a growing tree: the roots of the perfect subtrees that
 * make up its `size` leaves (one per bit of size, largest first). Appending a
 * leaf merges equal neighbours and reports each perfect subtree completed, so a
 * store keeps every one of them; the root is a fold of the edge.
 *
 * @example
 * const frontier = new MerkleFrontier();
 * const completed = frontier.append(leafHash(bytes)); // store these
 * frontier.root();
 */
export class MerkleFrontier {
  #size = 0;
  /** Roots of the edge's perfect subtrees, largest (leftmost) first. */
  readonly #edge: Subtree[] = [];

  /** The frontier of a tree of `size` leaves, from its stored perfect subtrees. */
  static fromSource(size: number, source: SubtreeSource): MerkleFrontier {
    const frontier = new MerkleFrontier();
    frontier.#size = size;
    let start = 0;
    for (let level = 52; level >= 0; level--) {
      const width = 2 ** level;
      if (size - start >= width) {
        const index = start / width;
        frontier.#edge.push({ level, index, hash: Buffer.from(source(level, index)) });
        start += width;
      }
    }
    return frontier;
  }

  /** The perfect subtrees `fromSource(size, ...)` reads. */
  static edgeOf(size: number): SubtreeRef[] {
    return subtreesNeeded((source) => MerkleFrontier.fromSource(size, source));
  }

  /** An independent copy: grow it, and keep it only if what it grew commits. */
  clone(): MerkleFrontier {
    const copy = new MerkleFrontier();
    copy.#size = this.#size;
    copy.#edge.push(...this.edge());
    return copy;
  }

  get size(): number {
    return this.#size;
  }

  /** Appends a leaf hash; returns every perfect subtree it completes, the leaf itself first. */
  append(leaf: Buffer): Subtree[] {
    const completed: Subtree[] = [{ level: 0, index: this.#size, hash: leaf }];
    let top: Subtree = completed[0]!;
    for (;;) {
      const left = this.#edge.at(-1);
      if (!left || left.level !== top.level) break;
      this.#edge.pop();
      top = { level: top.level + 1, index: left.index / 2, hash: nodeHash(left.hash, top.hash) };
      completed.push(top);
    }
    this.#edge.push(top);
    this.#size++;
    return completed;
  }

  /**
   * Appends a whole perfect subtree of 2^level leaves, by its hash: the same
   * tree as appending its leaves one by one. The tree's size must be a
   * multiple of 2^level (the subtree is aligned).
   *
   * @example
   * frontier.appendSubtree(10, rootOf1024Leaves);
   */
  appendSubtree(level: number, hash: Buffer): void {
    const width = 2 ** level;
    if (!(Number.isInteger(level) && level >= 0 && this.#size % width === 0))
      throw new RangeError(`a subtree of 2^${level} leaves is not aligned at ${this.#size}`);
    let top: Subtree = { level, index: this.#size / width, hash };
    for (;;) {
      const left = this.#edge.at(-1);
      if (!left || left.level !== top.level) break;
      this.#edge.pop();
      top = { level: top.level + 1, index: left.index / 2, hash: nodeHash(left.hash, top.hash) };
    }
    this.#edge.push(top);
    this.#size += width;
  }

  /** The root of the tree so far (RFC 9162 MTH). */
  root(): Buffer {
    if (this.#edge.length === 0) return EMPTY_ROOT;
    let r = this.#edge.at(-1)!.hash;
    for (let i = this.#edge.length - 2; i >= 0; i--) r = nodeHash(this.#edge[i]!.hash, r);
    return r;
  }

  /** The edge's subtrees, largest first (a copy). */
  edge(): Subtree[] {
    return this.#edge.map((s) => ({ ...s }));
  }
}
