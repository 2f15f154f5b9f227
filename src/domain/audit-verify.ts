/**
 * Offline verification of an audit export (issue 16): recomputes every
 * record's leaf from its canonical bytes, the tree's roots from the sealed
 * leaf hashes, and checks them against signed, chained checkpoints. It trusts
 * neither the database nor the server: only the checkpoints' public key.
 *
 * An export is JSON Lines. Its first line is a header,
 * `{"keyledgerAuditExport":1,"treeSize":"N"}`: the export covers leaves
 * 0..N-1 of the tree. Every other line is one record, in the order the
 * database gave its events:
 *
 * ```
 * {"leaf":"<index>","sealedHash":"<base64>","globalPosition":"<p>","event":<canonical event>}
 * ```
 *
 * `event` is the event's canonical text (src/domain/canonical-event.ts),
 * written verbatim, so its leaf is SHA-256(0x00 || those bytes) and no JSON
 * parser's reading matters. A record the database holds but the tree never
 * sealed has `"leaf":null`; a sealed leaf whose event the database no longer
 * holds has `"event":null`. `sealedHash` and `globalPosition` are not trusted:
 * the sealed hashes must reproduce the checkpoints' roots, and only then are
 * they used to name what changed.
 */
import { checkpointHash, checkpointSignatureValid, type Checkpoint } from './checkpoint.ts';
import { HASH_BYTES, leafHash, MerkleFrontier } from './merkle.ts';
import type { KeyObject } from 'node:crypto';

export type Finding =
  | { kind: 'changed'; leaf: number; line: number; eventId: string | undefined }
  | { kind: 'deleted'; leaf: number; line: number | undefined }
  | { kind: 'inserted'; line: number; eventId: string | undefined }
  | { kind: 'reordered'; leaf: number; line: number; after: number }
  | { kind: 'duplicated'; leaf: number; line: number }
  | { kind: 'root-mismatch'; checkpoint: number; from: number; to: number }
  | { kind: 'forged-checkpoint'; checkpoint: number; why: string }
  | { kind: 'fork'; checkpoint: number; other: number }
  | { kind: 'truncated'; exported: number; published: number }
  | { kind: 'malformed'; line: number; why: string };

/** What a finding says, for an auditor. */
export function describeFinding(f: Finding): string {
  switch (f.kind) {
    case 'changed':
      return `record changed: leaf ${f.leaf} (line ${f.line}${f.eventId ? `, event ${f.eventId}` : ''}) does not hash to the sealed leaf`;
    case 'deleted':
      return `record deleted: leaf ${f.leaf}${f.line ? ` (line ${f.line})` : ''} has no event`;
    case 'inserted':
      return `record inserted: line ${f.line}${f.eventId ? ` (event ${f.eventId})` : ''} was never sealed`;
    case 'reordered':
      return `records reordered: leaf ${f.leaf} (line ${f.line}) comes after leaf ${f.after}`;
    case 'duplicated':
      return `record duplicated: leaf ${f.leaf} appears again at line ${f.line}`;
    case 'root-mismatch':
      return `the sealed hashes do not reproduce checkpoint ${f.checkpoint}'s root: leaves ${f.from}..${f.to - 1} were tampered with`;
    case 'forged-checkpoint':
      return `checkpoint forged: tree size ${f.checkpoint}: ${f.why}`;
    case 'fork':
      return `fork: checkpoints of tree size ${f.checkpoint} and ${f.other} are not consistent`;
    case 'truncated':
      return `log truncated: the export has ${f.exported} leaves, a published checkpoint covers ${f.published}`;
    case 'malformed':
      return `line ${f.line}: ${f.why}`;
  }
}

const RECORD = /^\{"leaf":(?:"(\d{1,15})"|null),"sealedHash":(?:"([A-Za-z0-9+/]{43}=)"|null),"globalPosition":"\d{1,20}","event":/;

/**
 * Feeds an export's lines, one by one, then `finish` with the published
 * checkpoints. Memory: 32 bytes per leaf.
 *
 * @example
 * const v = new ExportVerifier(); for await (const line of lines) v.line(line); const report = v.finish(checkpoints, publicKey);
 */
export class ExportVerifier {
  readonly findings: Finding[] = [];
  #lineNo = 0;
  #treeSize = -1;
  #sealed = Buffer.alloc(0);
  #seen = new Uint8Array(0);
  #lastLeaf = -1;
  #records = 0;

  line(text: string): void {
    this.#lineNo++;
    if (this.#treeSize < 0) {
      const m = /^\{"keyledgerAuditExport":1,"treeSize":"(\d{1,15})"\}$/.exec(text);
      if (!m) throw new SyntaxError('not a keyledger audit export: the first line is not its header');
      this.#treeSize = Number(m[1]);
      this.#sealed = Buffer.alloc(this.#treeSize * HASH_BYTES);
      this.#seen = new Uint8Array(this.#treeSize);
      return;
    }
    if (text === '') return;
    const m = RECORD.exec(text);
    if (!m || !text.endsWith('}')) {
      this.findings.push({ kind: 'malformed', line: this.#lineNo, why: 'not a record of the export format' });
      return;
    }
    const event = text.slice(m[0].length, -1);
    if (m[1] === undefined) {
      this.findings.push({ kind: 'inserted', line: this.#lineNo, eventId: eventIdOf(event) });
      return;
    }
    const leaf = Number(m[1]);
    if (leaf >= this.#treeSize || m[2] === undefined) {
      this.findings.push({ kind: 'malformed', line: this.#lineNo, why: `leaf ${leaf} is outside the export's ${this.#treeSize} leaves, or has no sealed hash` });
      return;
    }
    if (this.#seen[leaf]) {
      this.findings.push({ kind: 'duplicated', leaf, line: this.#lineNo });
      return;
    }
    this.#seen[leaf] = 1;
    this.#records++;
    const sealed = Buffer.from(m[2], 'base64');
    sealed.copy(this.#sealed, leaf * HASH_BYTES);
    if (event === 'null') {
      this.findings.push({ kind: 'deleted', leaf, line: this.#lineNo });
      return;
    }
    if (leaf < this.#lastLeaf) this.findings.push({ kind: 'reordered', leaf, line: this.#lineNo, after: this.#lastLeaf });
    else this.#lastLeaf = leaf;
    if (!leafHash(event).equals(sealed)) this.findings.push({ kind: 'changed', leaf, line: this.#lineNo, eventId: eventIdOf(event) });
  }

  /**
   * Checks the checkpoints (signature, chain, consistency with each other and
   * with the export's leaves) and returns every finding.
   */
  finish(checkpoints: readonly Checkpoint[], publicKey: KeyObject): { ok: boolean; records: number; treeSize: number; checked: Checkpoint[]; findings: Finding[] } {
    if (this.#treeSize < 0) throw new SyntaxError('an empty export');
    for (let leaf = 0; leaf < this.#treeSize; leaf++) if (!this.#seen[leaf]) this.findings.push({ kind: 'deleted', leaf, line: undefined });

    const genuine: Checkpoint[] = [];
    for (const c of checkpoints) {
      if (checkpointSignatureValid(c, publicKey)) genuine.push(c);
      else this.findings.push({ kind: 'forged-checkpoint', checkpoint: c.treeSize, why: 'its signature does not verify with the public key' });
    }
    genuine.sort((a, b) => a.treeSize - b.treeSize || a.signedAt.getTime() - b.signedAt.getTime());
    const byHash = new Map(genuine.map((c) => [checkpointHash(c).toString('base64'), c]));
    for (const c of genuine) {
      if (c.previousHash && !byHash.has(c.previousHash.toString('base64')) && c !== genuine[0]) {
        this.findings.push({ kind: 'forged-checkpoint', checkpoint: c.treeSize, why: 'the checkpoint it chains to is not among the published ones' });
      }
      const previous = c.previousHash && byHash.get(c.previousHash.toString('base64'));
      if (previous && previous.treeSize > c.treeSize) this.findings.push({ kind: 'fork', checkpoint: previous.treeSize, other: c.treeSize });
    }
    const latest = genuine.at(-1);
    if (latest && latest.treeSize > this.#treeSize) this.findings.push({ kind: 'truncated', exported: this.#treeSize, published: latest.treeSize });

    // One pass over the sealed hashes: the root at every checkpoint's size.
    const frontier = new MerkleFrontier();
    const checked: Checkpoint[] = [];
    const covered = genuine.filter((c) => c.treeSize <= this.#treeSize);
    let next = 0;
    let previousSize = 0;
    const rootAt = new Map<number, Buffer>();
    for (const c of covered) {
      while (frontier.size < c.treeSize) frontier.append(this.#sealed.subarray(next * HASH_BYTES, ++next * HASH_BYTES));
      const root = rootAt.get(c.treeSize) ?? frontier.root();
      rootAt.set(c.treeSize, root);
      if (root.equals(c.rootHash)) checked.push(c);
      else {
        const other = covered.find((o) => o.treeSize === c.treeSize && o !== c && o.rootHash.equals(root));
        if (other) this.findings.push({ kind: 'fork', checkpoint: c.treeSize, other: other.treeSize });
        else this.findings.push({ kind: 'root-mismatch', checkpoint: c.treeSize, from: previousSize, to: c.treeSize });
      }
      previousSize = c.treeSize;
    }
    if (covered.length === 0) this.findings.push({ kind: 'forged-checkpoint', checkpoint: this.#treeSize, why: 'no genuine checkpoint covers the export' });
    return { ok: this.findings.length === 0, records: this.#records, treeSize: this.#treeSize, checked, findings: this.findings };
  }
}

function eventIdOf(canonical: string): string | undefined {
  return /"eventId":"([0-9a-f-]{36})","metadata":/.exec(canonical)?.[1];
}
