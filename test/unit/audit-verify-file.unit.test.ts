/**
 * `audit verify --export` reads the file in chunks, checks records as bytes in
 * worker threads and builds the tree from their perfect subtrees: it must say
 * exactly what the line-by-line verifier says, on clean and tampered exports,
 * whatever the chunk boundaries.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyExportFile } from '../../src/cli/audit-verify-file.ts';
import { ExportVerifier, perfectSubtrees, type Finding } from '../../src/domain/audit-verify.ts';
import { canonicalEvent } from '../../src/domain/canonical-event.ts';
import { signCheckpoint, type Checkpoint } from '../../src/domain/checkpoint.ts';
import { leafHash, MerkleFrontier } from '../../src/domain/merkle.ts';
import { sealKeyFromSeed } from '../../src/crypto/seal-key.ts';

const key = sealKeyFromSeed(Buffer.alloc(32, 4));
const SIZE = 300;
const CHECKPOINT_SIZES = [1, 7, 64, 100, 255, 300];
let dir: string;
let lines: string[];
let checkpoints: Checkpoint[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'keyledger-verify-file-'));
  const frontier = new MerkleFrontier();
  lines = [`{"keyledgerAuditExport":1,"treeSize":"${SIZE}"}`];
  checkpoints = [];
  let previous: Checkpoint | null = null;
  for (let i = 0; i < SIZE; i++) {
    const event = canonicalEvent({
      eventId: randomUUID(),
      streamId: `request-${i}`,
      streamVersion: 1n,
      type: 'AuditRecord',
      dataJson: JSON.stringify({ eventName: 'Decrypt', n: i, note: 'é — ✓ '.repeat(i % 5) }),
      metadataJson: '{}',
      recordedAt: '2026-12-05T03:04:05.123456Z',
    });
    const h = leafHash(event);
    frontier.append(h);
    lines.push(`{"leaf":"${i}","sealedHash":"${h.toString('base64')}","globalPosition":"${i + 1}","event":${event}}`);
    if (CHECKPOINT_SIZES.includes(i + 1)) {
      const c: Checkpoint = signCheckpoint(
        { treeSize: i + 1, rootHash: frontier.root(), signedAt: new Date(Date.UTC(2026, 11, 5, 0, 0, i)), previousHash: null },
        key.privateKey,
      );
      checkpoints.push(c);
      previous = c;
    }
  }
  expect(previous?.treeSize).toBe(SIZE);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function byLines(text: string[]): { ok: boolean; findings: Finding[]; records: number; checked: number[] } {
  const v = new ExportVerifier();
  for (const l of text) v.line(l);
  const r = v.finish(checkpoints, key.publicKey);
  return { ok: r.ok, findings: r.findings, records: r.records, checked: r.checked.map((c) => c.treeSize) };
}

async function byFile(text: string, threads: number, chunkBytes: number): Promise<ReturnType<typeof byLines>> {
  const file = join(dir, `${randomUUID()}.jsonl`);
  await writeFile(file, text);
  const v = new ExportVerifier({ checkpointSizes: checkpoints.map((c) => c.treeSize) });
  await verifyExportFile(file, v, { threads, chunkBytes });
  const r = v.finish(checkpoints, key.publicKey);
  return { ok: r.ok, findings: r.findings, records: r.records, checked: r.checked.map((c) => c.treeSize) };
}

describe('audit verify --export, from a file', () => {
  it('verifies a clean export as the line-by-line verifier does, in any chunking, with and without worker threads', async () => {
    const expected = byLines(lines);
    expect(expected).toMatchObject({ ok: true, records: SIZE, checked: CHECKPOINT_SIZES });
    for (const [threads, chunkBytes] of [
      [0, 4 << 20],
      [0, 1000],
      [2, 777],
      [2, 4 << 20],
    ] as const) {
      expect(await byFile(`${lines.join('\n')}\n`, threads, chunkBytes)).toEqual(expected);
    }
    // Without the last newline, and with CRLF line ends.
    expect(await byFile(lines.join('\n'), 2, 5000)).toEqual(expected);
    expect(await byFile(`${lines.join('\r\n')}\r\n`, 1, 3000)).toEqual(expected);
  });

  it('names the same tampering as the line-by-line verifier', async () => {
    const t = [...lines];
    t[51] = t[51]!.replace('"n":50', '"n":51'); // changed
    t.splice(121, 1); // deleted (leaf 120 gone)
    [t[200], t[201]] = [t[201]!, t[200]!]; // reordered
    t.splice(150, 0, t[150]!.replace(/^\{"leaf":"\d+","sealedHash":"[^"]+"/, '{"leaf":null,"sealedHash":null')); // inserted
    t.splice(90, 0, t[30]!); // duplicated
    t.splice(10, 0, '{"leaf":"x"}'); // malformed
    t.splice(20, 0, ''); // an empty line
    const expected = byLines(t);
    expect(expected.ok).toBe(false);
    expect(new Set(expected.findings.map((f) => f.kind))).toEqual(
      new Set(['changed', 'deleted', 'reordered', 'inserted', 'duplicated', 'malformed', 'root-mismatch']),
    );
    for (const [threads, chunkBytes] of [
      [0, 4 << 20],
      [0, 900],
      [2, 1500],
    ] as const) {
      expect(await byFile(`${t.join('\n')}\n`, threads, chunkBytes)).toEqual(expected);
    }
  });

  it('verifies a range (from leaf 70, mid-subtree) as the line-by-line verifier does, clean and tampered', async () => {
    const first = 70;
    const start = new MerkleFrontier();
    for (const l of lines.slice(1, first + 1)) start.append(Buffer.from(/"sealedHash":"([^"]+)"/.exec(l)![1]!, 'base64'));
    const edge = start
      .edge()
      .map((e) => `"${e.hash.toString('base64')}"`)
      .join(',');
    const range = [`{"keyledgerAuditExport":1,"treeSize":"${SIZE}","range":{"firstLeaf":"${first}","edge":[${edge}]}}`, ...lines.slice(first + 1)];
    const expected = byLines(range);
    expect(expected).toMatchObject({ ok: true, records: SIZE - first, checked: [100, 255, 300] });
    for (const [threads, chunkBytes] of [
      [0, 4 << 20],
      [2, 777],
    ] as const) {
      expect(await byFile(`${range.join('\n')}\n`, threads, chunkBytes)).toEqual(expected);
    }
    const t = [...range];
    t[40] = t[40]!.replace(`"n":${first + 39}`, '"n":0'); // changed
    t.splice(60, 1); // deleted
    const tampered = byLines(t);
    expect(new Set(tampered.findings.map((f) => f.kind))).toEqual(new Set(['changed', 'deleted', 'root-mismatch']));
    expect(await byFile(`${t.join('\n')}\n`, 2, 900)).toEqual(tampered);
  });

  it('refuses a file without the header', async () => {
    await expect(byFile(`${lines.slice(1).join('\n')}\n`, 2, 1000)).rejects.toThrow('not a keyledger audit export');
  });
});

describe('perfectSubtrees and MerkleFrontier.appendSubtree', () => {
  it('build the same tree as appending leaf by leaf, cut at every checkpoint size', () => {
    fc.assert(
      fc.property(fc.nat(70), fc.integer({ min: 1, max: 70 }), fc.uniqueArray(fc.integer({ min: 1, max: 140 }), { maxLength: 5 }), (first, count, cuts) => {
        const leaves = Array.from({ length: first + count }, (_, i) => leafHash(`leaf ${i}`));
        const expected = new MerkleFrontier();
        const roots = new Map<number, string>();
        for (const l of leaves) {
          expected.append(l);
          roots.set(expected.size, expected.root().toString('hex'));
        }
        const built = new MerkleFrontier();
        for (const l of leaves.slice(0, first)) built.append(l);
        const subtrees = perfectSubtrees(first, Buffer.concat(leaves.slice(first)), cuts);
        for (const s of subtrees) {
          built.appendSubtree(s.level, s.hash);
          // Every cut inside the run is a size the frontier passes through.
          if (cuts.includes(built.size)) expect(built.root().toString('hex')).toBe(roots.get(built.size));
        }
        const sizes = subtrees.reduce<number[]>((acc, s) => [...acc, (acc.at(-1) ?? first) + 2 ** s.level], []);
        for (const c of cuts.filter((x) => x > first && x < first + count)) expect(sizes).toContain(c);
        expect(built.size).toBe(first + count);
        expect(built.root().equals(expected.root())).toBe(true);
      }),
    );
    const one = new MerkleFrontier();
    one.append(leafHash('a'));
    expect(() => one.appendSubtree(1, leafHash('b'))).toThrow(RangeError);
  });
});
