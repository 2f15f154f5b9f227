/**
 * Offline verification of an audit export (issue 16): recomputes every
 * record's leaf from its canonical bytes, the tree's roots from the sealed
 * leaf hashes, and checks them against signed, chained checkpoints. It trusts
 * neither the database nor the server: only the checkpoints' public key.
 *
 * An export is JSON Lines. Its first line is a header,
 * `{"keyledgerAuditExport":1,"treeSize":"N"}`: the export covers leaves
 * 0..N-1 of the tree. An export of a range (`audit export --from/--to`)
 * covers leaves F..N-1 only, and its header says so:
 * `{"keyledgerAuditExport":1,"treeSize":"N","range":{"firstLeaf":"F","edge":["<base64>",...]}}`,
 * where `edge` is the tree of the first F leaves as the hashes of its perfect
 * subtrees, largest first (one per bit of F, see MerkleFrontier): the tree
 * grows from there, so the roots of the checkpoints of sizes F..N are
 * recomputed without the leaves before F, and a forged edge reproduces none
 * of them. Every other line is one record, in the order the database gave its
 * events:
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
 *
 * A range is not the whole log: it is not refused as truncated when a newer
 * checkpoint is published, and what happened before its first leaf, or to
 * records inserted before its first event in the database's order, is not
 * in it to check.
 */
import { checkpointHash, checkpointSignatureValid, type Checkpoint } from './checkpoint.ts';
import { HASH_BYTES, MerkleFrontier } from './merkle.ts';
import { hash, type KeyObject } from 'node:crypto';

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

/**
 * What a finding says, for an auditor.
 *
 * @example
 * describeFinding({ kind: 'deleted', leaf: 41, line: 42 }) // 'record deleted: leaf 41 (line 42) has no event'
 * describeFinding({ kind: 'truncated', exported: 40, published: 64 }) // 'log truncated: the export has 40 leaves, a published checkpoint covers 64'
 */
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

/** What one record line of an export says, once parsed and its event hashed (see checkRecord). */
export type RecordCheck =
  | { kind: 'empty' }
  | { kind: 'malformed'; why: string }
  /** A record the tree never sealed ("leaf":null). */
  | { kind: 'inserted'; eventId: string | undefined }
  /** A sealed leaf: its event null (gone), hashing to the sealed hash, or not. */
  | { kind: 'sealed'; leaf: number; sealed: Buffer; event: 'deleted' | 'match' | 'changed'; eventId: string | undefined };

const ascii = (text: string) => Buffer.from(text, 'latin1');
const LEAF = ascii('{"leaf":');
const SEALED = ascii(',"sealedHash":');
const POSITION = ascii(',"globalPosition":"');
const EVENT = ascii(',"event":');
const NULL = ascii('null');
const [QUOTE, DIGIT_0, DIGIT_9, CLOSE] = [0x22, 0x30, 0x39, 0x7d];
const BASE64 = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') BASE64[c.charCodeAt(0)] = 1;

function startsAt(line: Buffer, at: number, literal: Buffer): boolean {
  if (line.length < at + literal.length) return false;
  // A loop, not Buffer.compare: for a few bytes the call costs more than the comparison.
  for (let i = 0; i < literal.length; i++) if (line[at + i] !== literal[i]) return false;
  return true;
}

/** The end of a run of at most `max` (at least one) decimal digits from `at`, or -1. */
function digitsEnd(line: Buffer, at: number, max: number): number {
  let i = at;
  while (i < line.length && i - at < max && line[i]! >= DIGIT_0 && line[i]! <= DIGIT_9) i++;
  return i === at || (i < line.length && line[i]! >= DIGIT_0 && line[i]! <= DIGIT_9) ? -1 : i;
}

/**
 * Parses one record line of an export (UTF-8 bytes, without its newline) and
 * hashes its event where it stands: the leaf is SHA-256(0x00 || the event's
 * bytes as written), so nothing is decoded or re-encoded. It overwrites the
 * byte before the event (the `:` of `"event":`) with 0x00 to hash in place:
 * pass a buffer that is not read again.
 *
 * @example
 * const check = checkRecord(Buffer.from(line), treeSize);
 */
export function checkRecord(line: Buffer, treeSize: number): RecordCheck {
  if (line.length === 0) return { kind: 'empty' };
  const malformed: RecordCheck = { kind: 'malformed', why: 'not a record of the export format' };
  if (!startsAt(line, 0, LEAF)) return malformed;
  let at = LEAF.length;
  let leaf: number | null = null;
  if (startsAt(line, at, NULL)) at += NULL.length;
  else {
    if (line[at] !== QUOTE) return malformed;
    const end = digitsEnd(line, at + 1, 15);
    if (end < 0 || line[end] !== QUOTE) return malformed;
    leaf = Number(line.toString('latin1', at + 1, end));
    at = end + 1;
  }
  if (!startsAt(line, at, SEALED)) return malformed;
  at += SEALED.length;
  let sealed: Buffer | null = null;
  if (startsAt(line, at, NULL)) at += NULL.length;
  else {
    if (line[at] !== QUOTE || line[at + 44] !== 0x3d || line[at + 45] !== QUOTE) return malformed;
    for (let i = at + 1; i < at + 44; i++) if (!BASE64[line[i]!]) return malformed;
    sealed = Buffer.from(line.toString('latin1', at + 1, at + 45), 'base64');
    at += 46;
  }
  if (!startsAt(line, at, POSITION)) return malformed;
  const positionEnd = digitsEnd(line, at + POSITION.length, 20);
  if (positionEnd < 0 || line[positionEnd] !== QUOTE || !startsAt(line, positionEnd + 1, EVENT)) return malformed;
  const eventStart = positionEnd + 1 + EVENT.length;
  const eventEnd = line.length - 1;
  if (line[eventEnd] !== CLOSE || eventEnd <= eventStart) return malformed;
  if (leaf === null) return { kind: 'inserted', eventId: eventIdOf(line.toString('utf8', eventStart, eventEnd)) };
  if (leaf >= treeSize || sealed === null) return { kind: 'malformed', why: `leaf ${leaf} is outside the export's ${treeSize} leaves, or has no sealed hash` };
  if (eventEnd - eventStart === NULL.length && startsAt(line, eventStart, NULL)) return { kind: 'sealed', leaf, sealed, event: 'deleted', eventId: undefined };
  line[eventStart - 1] = 0;
  if (hash('sha256', line.subarray(eventStart - 1, eventEnd), 'buffer').equals(sealed))
    return { kind: 'sealed', leaf, sealed, event: 'match', eventId: undefined };
  return { kind: 'sealed', leaf, sealed, event: 'changed', eventId: eventIdOf(line.toString('utf8', eventStart, eventEnd)) };
}

/**
 * Feeds an export's lines, one by one (or checked records, see checkRecord,
 * which worker threads can make), then `finish` with the published
 * checkpoints. Memory: 33 bytes per leaf. Given the checkpoints' tree sizes
 * up front, it computes their roots as the records arrive, not at the end.
 *
 * @example
 * const v = new ExportVerifier(); for await (const line of lines) v.line(line); const report = v.finish(checkpoints, publicKey);
 */
export class ExportVerifier {
  readonly findings: Finding[] = [];
  #lineNo = 0;
  #treeSize = -1;
  /** The first leaf the export covers (0 unless it is a range). */
  #firstLeaf = 0;
  #range = false;
  /** The tree of the leaves before #firstLeaf, from the header's edge. */
  #start = new MerkleFrontier();
  #sealed = Buffer.alloc(0);
  #seen = new Uint8Array(0);
  #lastLeaf = -1;
  #records = 0;
  /** The tree so far over leaves 0..next-1, as far as they have all arrived. */
  #frontier = new MerkleFrontier();
  readonly #rootAt = new Map<number, Buffer>();
  readonly #wanted: ReadonlySet<number>;

  constructor(options: { checkpointSizes?: readonly number[] } = {}) {
    this.#wanted = new Set(options.checkpointSizes ?? []);
  }

  /** The export's tree size, once its header was read (else -1). */
  get treeSize(): number {
    return this.#treeSize;
  }

  /** The export's first leaf: 0, or where its range starts. */
  get firstLeaf(): number {
    return this.#firstLeaf;
  }

  line(text: string): void {
    if (this.#treeSize < 0) {
      this.#lineNo++;
      const m = new RegExp(
        String.raw`^\{"keyledgerAuditExport":1,"treeSize":"(\d{1,15})"(?:,"range":\{"firstLeaf":"(\d{1,15})",` +
          String.raw`"edge":\[((?:"[A-Za-z0-9+/]{43}="(?:,"[A-Za-z0-9+/]{43}=")*)?)\]\})?\}$`,
      ).exec(text);
      if (!m) throw new SyntaxError('not a keyledger audit export: the first line is not its header');
      const treeSize = Number(m[1]);
      if (m[2] !== undefined) {
        const firstLeaf = Number(m[2]);
        const edge = [...m[3]!.matchAll(/"([^"]+)"/g)].map((e) => Buffer.from(e[1]!, 'base64'));
        if (firstLeaf > treeSize || edge.length !== MerkleFrontier.edgeOf(firstLeaf).length)
          throw new SyntaxError(`not a keyledger audit export: its range's edge is not the tree of ${firstLeaf} leaves`);
        let next = 0;
        this.#start = MerkleFrontier.fromSource(firstLeaf, () => edge[next++]!);
        this.#frontier = this.#start.clone();
        this.#firstLeaf = firstLeaf;
        this.#lastLeaf = firstLeaf - 1;
        this.#range = true;
      }
      this.#treeSize = treeSize;
      this.#sealed = Buffer.alloc((treeSize - this.#firstLeaf) * HASH_BYTES);
      this.#seen = new Uint8Array(treeSize - this.#firstLeaf);
      if (this.#wanted.has(this.#firstLeaf)) this.#rootAt.set(this.#firstLeaf, this.#frontier.root());
      return;
    }
    this.checked(checkRecord(Buffer.from(text, 'utf8'), this.#treeSize));
  }

  /** The next line, already parsed and hashed by checkRecord (after the header, given to `line`). */
  checked(check: RecordCheck): void {
    if (this.#treeSize < 0) throw new SyntaxError('not a keyledger audit export: the first line is not its header');
    const lineNo = ++this.#lineNo;
    switch (check.kind) {
      case 'empty':
        return;
      case 'malformed':
        this.findings.push({ kind: 'malformed', line: lineNo, why: check.why });
        return;
      case 'inserted':
        this.findings.push({ kind: 'inserted', line: lineNo, eventId: check.eventId });
        return;
    }
    const { leaf } = check;
    const at = leaf - this.#firstLeaf;
    if (at < 0) {
      // A sealed leaf before the range, found among its events: the database moved it.
      this.findings.push({ kind: 'reordered', leaf, line: lineNo, after: this.#lastLeaf });
      return;
    }
    if (this.#seen[at]) {
      this.findings.push({ kind: 'duplicated', leaf, line: lineNo });
      return;
    }
    this.#seen[at] = 1;
    this.#records++;
    check.sealed.copy(this.#sealed, at * HASH_BYTES);
    this.#grow();
    if (check.event === 'deleted') {
      this.findings.push({ kind: 'deleted', leaf, line: lineNo });
      return;
    }
    if (leaf < this.#lastLeaf) this.findings.push({ kind: 'reordered', leaf, line: lineNo, after: this.#lastLeaf });
    else this.#lastLeaf = leaf;
    if (check.event === 'changed') this.findings.push({ kind: 'changed', leaf, line: lineNo, eventId: check.eventId });
  }

  /** The checkpoint sizes whose roots it computes as records arrive (sorted). */
  get checkpointSizes(): number[] {
    return [...this.#wanted].sort((a, b) => a - b);
  }

  /**
   * The next `count` lines at once, when they are records of the consecutive
   * leaves `firstLeaf`.. whose events all hash to their sealed hashes
   * (`sealed`: their hashes, 32 bytes each), with the tree over them as
   * aligned perfect subtrees (`subtrees`, in order, split at every checkpoint
   * size: see perfectSubtrees). The same as giving each to `checked`, which
   * it does when they do not follow the leaves so far.
   */
  checkedRun(run: { firstLeaf: number; count: number; sealed: Uint8Array; subtrees: readonly { level: number; hash: Buffer }[] }): void {
    const { firstLeaf, count, sealed } = run;
    const end = firstLeaf + count;
    const follows =
      this.#treeSize >= 0 &&
      firstLeaf === this.#frontier.size &&
      this.#lastLeaf === firstLeaf - 1 &&
      end <= this.#treeSize &&
      this.#seen.subarray(firstLeaf - this.#firstLeaf, end - this.#firstLeaf).indexOf(1) === -1;
    if (!follows || this.#wanted.size === 0) {
      for (let i = 0; i < count; i++) {
        this.checked({
          kind: 'sealed',
          leaf: firstLeaf + i,
          sealed: Buffer.from(sealed.buffer, sealed.byteOffset + i * HASH_BYTES, HASH_BYTES),
          event: 'match',
          eventId: undefined,
        });
      }
      return;
    }
    this.#lineNo += count;
    this.#records += count;
    this.#seen.fill(1, firstLeaf - this.#firstLeaf, end - this.#firstLeaf);
    this.#sealed.set(sealed.subarray(0, count * HASH_BYTES), (firstLeaf - this.#firstLeaf) * HASH_BYTES);
    this.#lastLeaf = end - 1;
    for (const s of run.subtrees) {
      this.#frontier.appendSubtree(s.level, s.hash);
      if (this.#wanted.has(this.#frontier.size)) this.#rootAt.set(this.#frontier.size, this.#frontier.root());
    }
    if (this.#frontier.size !== end) throw new RangeError(`the subtrees of leaves ${firstLeaf}..${end - 1} end at ${this.#frontier.size}`);
    this.#grow();
  }

  /** Appends every leaf that has arrived without a gap before it, keeping the roots at the wanted sizes. */
  #grow(): void {
    if (this.#wanted.size === 0) return;
    const first = this.#firstLeaf;
    let next = this.#frontier.size;
    while (next < this.#treeSize && this.#seen[next - first]) {
      this.#frontier.append(this.#sealed.subarray((next - first) * HASH_BYTES, (++next - first) * HASH_BYTES));
      if (this.#wanted.has(next)) this.#rootAt.set(next, this.#frontier.root());
    }
  }

  /**
   * Checks the checkpoints (signature, chain, consistency with each other and
   * with the export's leaves) and returns every finding.
   */
  finish(
    checkpoints: readonly Checkpoint[],
    publicKey: KeyObject,
  ): { ok: boolean; records: number; treeSize: number; firstLeaf: number; range: boolean; checked: Checkpoint[]; findings: Finding[] } {
    if (this.#treeSize < 0) throw new SyntaxError('an empty export');
    const first = this.#firstLeaf;
    for (let leaf = first; leaf < this.#treeSize; leaf++) if (!this.#seen[leaf - first]) this.findings.push({ kind: 'deleted', leaf, line: undefined });

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
    if (latest && latest.treeSize > this.#treeSize && !this.#range)
      this.findings.push({ kind: 'truncated', exported: this.#treeSize, published: latest.treeSize });

    // One pass over the sealed hashes: the root at every checkpoint's size (those before a range's first leaf cannot be recomputed).
    const frontier = this.#start.clone();
    const checked: Checkpoint[] = [];
    const covered = genuine.filter((c) => c.treeSize >= first && c.treeSize <= this.#treeSize);
    let next = first;
    let previousSize = first;
    // The roots computed as the records arrived, where no leaf before them was missing.
    const rootAt = new Map(this.#rootAt);
    for (const c of covered) {
      let root = rootAt.get(c.treeSize);
      if (!root) {
        while (frontier.size < c.treeSize) frontier.append(this.#sealed.subarray((next - first) * HASH_BYTES, (++next - first) * HASH_BYTES));
        root = frontier.root();
        rootAt.set(c.treeSize, root);
      }
      if (root.equals(c.rootHash)) checked.push(c);
      else {
        const other = covered.find((o) => o.treeSize === c.treeSize && o !== c && o.rootHash.equals(root));
        if (other) this.findings.push({ kind: 'fork', checkpoint: c.treeSize, other: other.treeSize });
        else this.findings.push({ kind: 'root-mismatch', checkpoint: c.treeSize, from: previousSize, to: c.treeSize });
      }
      previousSize = c.treeSize;
    }
    if (covered.length === 0) this.findings.push({ kind: 'forged-checkpoint', checkpoint: this.#treeSize, why: 'no genuine checkpoint covers the export' });
    return {
      ok: this.findings.length === 0,
      records: this.#records,
      treeSize: this.#treeSize,
      firstLeaf: first,
      range: this.#range,
      checked,
      findings: this.findings,
    };
  }
}

/**
 * The tree over leaves `first`.. (their hashes, 32 bytes each) as aligned
 * perfect subtrees, largest possible first, split at each of `cuts` (tree
 * sizes): what ExportVerifier.checkedRun appends. A worker thread computes
 * them, so the verifier's thread hashes no inner node of a clean run.
 *
 * @example
 * perfectSubtrees(5, hashes, [8]) // leaves 5..: [5], [6,7], then from 8 on
 */
export function perfectSubtrees(first: number, hashes: Uint8Array, cuts: readonly number[]): { level: number; hash: Buffer }[] {
  const end = first + hashes.length / HASH_BYTES;
  const leaf = (i: number) => Buffer.from(hashes.buffer, hashes.byteOffset + (i - first) * HASH_BYTES, HASH_BYTES);
  const out: { level: number; hash: Buffer }[] = [];
  let at = first;
  while (at < end) {
    const cut = cuts.reduce((nearest, c) => (c > at && c < nearest ? c : nearest), end);
    let level = 0;
    while (at % 2 ** (level + 1) === 0 && at + 2 ** (level + 1) <= cut) level++;
    const frontier = new MerkleFrontier();
    for (let i = at; i < at + 2 ** level; i++) frontier.append(leaf(i));
    out.push({ level, hash: frontier.root() });
    at += 2 ** level;
  }
  return out;
}

function eventIdOf(canonical: string): string | undefined {
  return /"eventId":"([0-9a-f-]{36})","metadata":/.exec(canonical)?.[1];
}
