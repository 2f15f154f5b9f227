import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHash,
  MerkleFrontier,
  subtreesNeeded,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
  type SubtreeSource,
} from '../../src/domain/merkle.ts';

/**
 * An independent reference, straight from RFC 6962 section 2.1's recursive
 * definitions (MTH, PATH, PROOF/SUBPROOF) over arrays of leaf data: nothing of
 * src/domain/merkle.ts is used to compute it.
 */
const sha = (...parts: Uint8Array[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
const k2 = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1);
function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return sha();
  if (d.length === 1) return sha(Buffer.from([0]), d[0]!);
  const k = k2(d.length);
  return sha(Buffer.from([1]), mth(d.slice(0, k)), mth(d.slice(k)));
}
function path(m: number, d: Buffer[]): Buffer[] {
  if (d.length === 1) return [];
  const k = k2(d.length);
  return m < k ? [...path(m, d.slice(0, k)), mth(d.slice(k))] : [...path(m - k, d.slice(k)), mth(d.slice(0, k))];
}
function subproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const k = k2(d.length);
  return m <= k ? [...subproof(m, d.slice(0, k), b), mth(d.slice(k))] : [...subproof(m - k, d.slice(k), false), mth(d.slice(0, k))];
}

/** RFC 6962's test leaves and the roots of their first 1..8 (certificate-transparency's reference vectors). */
const VECTOR_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));
const VECTOR_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

/** A store of every perfect subtree, filled by a frontier as a sealer fills the database. */
function build(data: Buffer[]): { frontier: MerkleFrontier; source: SubtreeSource; stored: Map<string, Buffer> } {
  const frontier = new MerkleFrontier();
  const stored = new Map<string, Buffer>();
  for (const d of data) for (const s of frontier.append(leafHash(d))) stored.set(`${s.level}/${s.index}`, s.hash);
  const source: SubtreeSource = (level, index) => {
    const h = stored.get(`${level}/${index}`);
    if (!h) throw new Error(`subtree ${level}/${index} is not stored`);
    return h;
  };
  return { frontier, source, stored };
}

const leaves = (n: number) => Array.from({ length: n }, (_, i) => Buffer.from(`leaf ${i}`));
const hex = (bs: Uint8Array[]) => bs.map((b) => Buffer.from(b).toString('hex'));

describe('merkle tree (RFC 9162)', () => {
  it('computes the reference roots of RFC 6962 test vectors', () => {
    expect(EMPTY_ROOT.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    for (let n = 1; n <= VECTOR_LEAVES.length; n++) {
      const { frontier, source } = build(VECTOR_LEAVES.slice(0, n));
      expect(frontier.root().toString('hex'), `size ${n}`).toBe(VECTOR_ROOTS[n - 1]);
      expect(Buffer.from(treeRoot(n, source)).toString('hex')).toBe(VECTOR_ROOTS[n - 1]);
      expect(mth(VECTOR_LEAVES.slice(0, n)).toString('hex')).toBe(VECTOR_ROOTS[n - 1]);
    }
  });

  it('keeps a leaf from passing for a node (domain separation)', () => {
    const [a, b] = [leafHash(Buffer.from('a')), leafHash(Buffer.from('b'))];
    const forgedLeaf = Buffer.concat([a, b]);
    expect(leafHash(forgedLeaf).equals(build([Buffer.from('a'), Buffer.from('b')]).frontier.root())).toBe(false);
    expect(leafHash('x').equals(leafHash(Buffer.from('x')))).toBe(true);
  });

  it('builds inclusion and consistency proofs equal to the reference and verifies them', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70 }), fc.nat(), fc.nat(), (size, i, j) => {
        const data = leaves(size);
        const { frontier, source } = build(data);
        const root = frontier.root();
        expect(root.equals(mth(data))).toBe(true);
        const index = i % size;
        const proof = inclusionProof(index, size, source);
        expect(hex(proof)).toEqual(hex(path(index, data)));
        expect(verifyInclusion(index, size, leafHash(data[index]!), proof, root)).toBe(true);
        const from = j % (size + 1);
        const cproof = consistencyProof(from, size, source);
        expect(hex(cproof)).toEqual(hex(from === 0 || from === size ? [] : subproof(from, data, true)));
        expect(verifyConsistency(from, size, mth(data.slice(0, from)), root, cproof)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a proof for another leaf, size, root, or with any hash altered, dropped or added', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 40 }), fc.nat(), fc.nat(), fc.nat(), (size, i, j, flip) => {
        const data = leaves(size);
        const { frontier, source } = build(data);
        const root = frontier.root();
        const index = i % size;
        const leaf = leafHash(data[index]!);
        const proof = inclusionProof(index, size, source);
        expect(verifyInclusion(index, size, leafHash(Buffer.from('forged')), proof, root)).toBe(false);
        expect(verifyInclusion((index + 1) % size, size, leaf, proof, root)).toBe(false);
        // (The size itself is bound to the root by the signed checkpoint: a leftmost path reads alike in some larger trees.)
        expect(verifyInclusion(index, size, leaf, proof, mth(data.slice(0, size - 1)))).toBe(false);
        expect(verifyInclusion(index, index, leaf, proof, root)).toBe(false);
        expect(verifyInclusion(index, size, leaf, proof.slice(1), root)).toBe(false);
        expect(verifyInclusion(index, size, leaf, [...proof, root], root)).toBe(false);
        if (proof.length > 0) {
          const altered = proof.map((p) => Buffer.from(p));
          const hashAt = altered[flip % altered.length]!;
          hashAt[flip % 32] = hashAt[flip % 32]! ^ 1;
          expect(verifyInclusion(index, size, leaf, altered, root)).toBe(false);
        }
        const from = 1 + (j % (size - 1));
        const fromRoot = mth(data.slice(0, from));
        const cproof = consistencyProof(from, size, source);
        const forkedRoot = mth([...data.slice(0, from - 1), Buffer.from('forked')]);
        expect(verifyConsistency(from, size, forkedRoot, root, cproof)).toBe(false);
        expect(verifyConsistency(from, size, fromRoot, mth([...data.slice(0, size - 1), Buffer.from('x')]), cproof)).toBe(false);
        if (cproof.length > 0) {
          const altered = cproof.map((p) => Buffer.from(p));
          const hashAt = altered[flip % altered.length]!;
          hashAt[flip % 32] = hashAt[flip % 32]! ^ 1;
          expect(verifyConsistency(from, size, fromRoot, root, altered)).toBe(false);
          expect(verifyConsistency(from, size, fromRoot, root, cproof.slice(0, -1))).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('rebuilds a frontier from stored subtrees and keeps growing the same tree', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 40 }), (size, more) => {
        const data = leaves(size + more);
        const { stored } = build(data.slice(0, size));
        const resumed = MerkleFrontier.fromSource(size, (level, index) => stored.get(`${level}/${index}`)!);
        expect(resumed.root().equals(mth(data.slice(0, size)))).toBe(true);
        for (const d of data.slice(size)) resumed.append(leafHash(d));
        expect(resumed.root().equals(mth(data))).toBe(true);
        expect(MerkleFrontier.edgeOf(size)).toHaveLength(size.toString(2).replace(/0/g, '').length);
      }),
    );
  });

  it('reads O(log n) subtrees for a proof at 10M leaves', () => {
    const n = 10_000_000;
    const inclusion = subtreesNeeded((s) => inclusionProof(7_654_321, n, s));
    const consistency = subtreesNeeded((s) => consistencyProof(3_333_333, n, s));
    expect(inclusion.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(n)));
    expect(consistency.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(n)));
  });
});
