/**
 * `keyledger audit verify --export FILE`, fast: the file is read in large
 * chunks cut at line ends, each chunk parsed and its events hashed by a pool
 * of worker threads (checkRecord, on the bytes as read: nothing is decoded),
 * and the outcomes fed to the ExportVerifier in line order on the main
 * thread, which builds the tree as they arrive. With `threads: 0` the main
 * thread does it all.
 */
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkRecord, perfectSubtrees, type ExportVerifier, type RecordCheck } from '../domain/audit-verify.ts';

/** Bytes read at a time: each chunk is one message to a worker. */
const CHUNK_BYTES = 4 << 20;

export interface ChunkRequest {
  id: number;
  /** The lines are bytes start..end of it. */
  buffer: ArrayBuffer;
  start: number;
  end: number;
  treeSize: number;
  /** The checkpoint sizes the verifier wants roots at (see perfectSubtrees). */
  cuts: number[];
}

/** One chunk's records: kind per line (see KIND), leaf index, sealed hash, and the rare details. */
export interface EncodedChecks {
  kinds: Uint8Array;
  leaves: Float64Array;
  sealed: Uint8Array;
  details: { line: number; eventId?: string; why?: string }[];
  /** When every line is a record of consecutive leaves from `firstLeaf` whose event hashes to its sealed hash: the tree over them (see perfectSubtrees). */
  run: { firstLeaf: number; levels: Uint8Array; hashes: Uint8Array } | null;
}

const KIND = { empty: 0, malformed: 1, inserted: 2, deleted: 3, match: 4, changed: 5 } as const;

/**
 * Checks every line of `chunk` (whole lines, each ending in \n but perhaps the
 * last; a \r before it is dropped) and encodes the outcomes.
 */
export function encodeChecks(chunk: Buffer, treeSize: number, cuts: readonly number[], check: typeof checkRecord): EncodedChecks {
  const lines: [number, number][] = [];
  for (let start = 0; start < chunk.length;) {
    let end = chunk.indexOf(10, start);
    const next = end < 0 ? chunk.length : end + 1;
    if (end < 0) end = chunk.length;
    lines.push([start, end > start && chunk[end - 1] === 13 ? end - 1 : end]);
    start = next;
  }
  const kinds = new Uint8Array(lines.length);
  const leaves = new Float64Array(lines.length);
  const sealed = new Uint8Array(lines.length * 32);
  const details: EncodedChecks['details'] = [];
  lines.forEach(([start, end], i) => {
    const c = check(chunk.subarray(start, end), treeSize);
    if (c.kind === 'sealed') {
      kinds[i] = KIND[c.event];
      leaves[i] = c.leaf;
      sealed.set(c.sealed, i * 32);
      if (c.eventId !== undefined) details.push({ line: i, eventId: c.eventId });
    } else {
      kinds[i] = KIND[c.kind];
      if (c.kind === 'malformed') details.push({ line: i, why: c.why });
      if (c.kind === 'inserted') details.push({ line: i, ...(c.eventId === undefined ? {} : { eventId: c.eventId }) });
    }
  });
  let clean = lines.length > 0 && cuts.length > 0;
  for (let i = 0; clean && i < lines.length; i++) clean = kinds[i] === KIND.match && leaves[i] === leaves[0]! + i;
  let run: EncodedChecks['run'] = null;
  if (clean) {
    const subtrees = perfectSubtrees(leaves[0]!, sealed, cuts);
    const hashes = new Uint8Array(subtrees.length * 32);
    subtrees.forEach((s, i) => hashes.set(s.hash, i * 32));
    run = { firstLeaf: leaves[0]!, levels: Uint8Array.from(subtrees.map((s) => s.level)), hashes };
  }
  return { kinds, leaves, sealed, details, run };
}

/** Gives a chunk's outcomes to the verifier: a clean run at once, else line by line. */
function applyChecks(verifier: ExportVerifier, e: EncodedChecks): void {
  if (e.run) {
    const { firstLeaf, levels, hashes } = e.run;
    const subtrees = Array.from(levels, (level, i) => ({ level, hash: Buffer.from(hashes.buffer, hashes.byteOffset + i * 32, 32) }));
    verifier.checkedRun({ firstLeaf, count: e.kinds.length, sealed: e.sealed, subtrees });
    return;
  }
  for (const c of decodeChecks(e)) verifier.checked(c);
}

/** The checks of a chunk, decoded, in line order. */
function* decodeChecks(e: EncodedChecks): Generator<RecordCheck> {
  const detail = new Map(e.details.map((d) => [d.line, d]));
  for (let i = 0; i < e.kinds.length; i++) {
    const d = detail.get(i);
    switch (e.kinds[i]) {
      case KIND.empty:
        yield { kind: 'empty' };
        break;
      case KIND.malformed:
        yield { kind: 'malformed', why: d?.why ?? 'not a record of the export format' };
        break;
      case KIND.inserted:
        yield { kind: 'inserted', eventId: d?.eventId };
        break;
      default: {
        const event = e.kinds[i] === KIND.deleted ? 'deleted' : e.kinds[i] === KIND.match ? 'match' : 'changed';
        yield { kind: 'sealed', leaf: e.leaves[i]!, sealed: Buffer.from(e.sealed.buffer, e.sealed.byteOffset + i * 32, 32), event, eventId: d?.eventId };
      }
    }
  }
}

/** A pool of worker threads answering chunks; each answer in the order asked. */
class CheckPool {
  readonly #workers: Worker[];
  readonly #waiting = new Map<number, { resolve: (e: EncodedChecks) => void; reject: (error: unknown) => void }>();
  #next = 0;

  constructor(threads: number) {
    this.#workers = Array.from({ length: threads }, () => {
      const worker = new Worker(new URL('./audit-verify-worker.ts', import.meta.url));
      worker.on('message', (m: EncodedChecks & { id: number }) => {
        this.#waiting.get(m.id)?.resolve(m);
        this.#waiting.delete(m.id);
      });
      worker.on('error', (error) => {
        for (const w of this.#waiting.values()) w.reject(error);
        this.#waiting.clear();
      });
      return worker;
    });
  }

  /** Checks the lines in bytes start..end of `buffer`, which is transferred to the worker (unusable here after). */
  check(buffer: ArrayBuffer, start: number, end: number, treeSize: number, cuts: number[]): Promise<EncodedChecks> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#workers[id % this.#workers.length]!.postMessage({ id, buffer, start, end, treeSize, cuts } satisfies ChunkRequest, [buffer]);
    });
  }

  get size(): number {
    return this.#workers.length;
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

/**
 * Feeds an export file to `verifier`: its header, then every record, checked
 * by `threads` worker threads (default: one per core for a file over four
 * chunks, else none), `chunkBytes` (4 MiB by default) at a time.
 *
 * @example
 * const verifier = new ExportVerifier({ checkpointSizes: checkpoints.map((c) => c.treeSize) });
 * await verifyExportFile('log.jsonl', verifier);
 * const result = verifier.finish(checkpoints, publicKey);
 */
export async function verifyExportFile(path: string, verifier: ExportVerifier, options: { threads?: number; chunkBytes?: number } = {}): Promise<void> {
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
  const file = await open(path, 'r');
  // Starting a worker costs more than checking a small file.
  const threads = options.threads ?? ((await file.stat()).size > 4 * chunkBytes ? availableParallelism() : 0);
  const pool = threads > 0 ? new CheckPool(threads) : null;
  const pending: Promise<EncodedChecks>[] = [];
  const cuts = verifier.checkpointSizes;
  const apply = (e: EncodedChecks) => applyChecks(verifier, e);
  const submit = async (buffer: ArrayBuffer, start: number, end: number) => {
    if (!pool) return apply(encodeChecks(Buffer.from(buffer, start, end - start), verifier.treeSize, cuts, checkRecord));
    pending.push(pool.check(buffer, start, end, verifier.treeSize, cuts));
    // Two chunks in flight per worker: enough to keep them busy, bounded in memory.
    while (pending.length >= 2 * pool.size) apply(await pending.shift()!);
  };
  // Each chunk is read into an ArrayBuffer of its own, after the partial line
  // the last one ended with, and handed to a worker whole (transferred, not
  // copied); the next read is under way while it is checked.
  const read = async (carry: Buffer) => {
    const buffer = new ArrayBuffer(carry.length + chunkBytes);
    const data = Buffer.from(buffer);
    carry.copy(data);
    const { bytesRead } = await file.read(data, carry.length, chunkBytes, null);
    return { buffer, data, bytesRead, filled: carry.length + bytesRead };
  };
  let next = read(Buffer.alloc(0));
  try {
    for (;;) {
      const chunk = await next;
      const { buffer, data, bytesRead } = chunk;
      let filled = chunk.filled;
      let start = 0;
      if (verifier.treeSize < 0) {
        const end = data.subarray(0, filled).indexOf(10);
        if (end < 0 && bytesRead > 0) {
          next = read(Buffer.from(data.subarray(0, filled)));
          continue;
        }
        const header = end < 0 ? filled : end;
        verifier.line(data.toString('utf8', 0, header > 0 && data[header - 1] === 13 ? header - 1 : header));
        start = end < 0 ? filled : end + 1;
      }
      if (bytesRead === 0) {
        if (filled > start) await submit(buffer, start, filled);
        break;
      }
      const last = data.subarray(start, filled).lastIndexOf(10);
      const carry = Buffer.from(data.subarray(last < 0 ? start : start + last + 1, filled));
      filled = last < 0 ? start : start + last + 1;
      next = read(carry);
      if (filled > start) await submit(buffer, start, filled);
    }
    while (pending.length > 0) apply(await pending.shift()!);
  } finally {
    // A read may still be under way when a check failed.
    await next.catch(() => undefined);
    await file.close();
    await pool?.close();
  }
}
