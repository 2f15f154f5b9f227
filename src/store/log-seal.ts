/**
 * The sealer's store (sql/0028): follows the log in the followers' order,
 * below the in-flight horizon (see logHorizon), appends each event's canonical
 * bytes to the Merkle tree, keeps every perfect subtree, and writes signed,
 * chained checkpoints. One sealer at a time across processes: a pass takes a
 * transaction-scoped advisory lock and skips when another holds it.
 */
import { sql, type Transaction } from 'kysely';
import type { KeyObject } from 'node:crypto';
import { canonicalEvent } from '../domain/canonical-event.ts';
import { checkpointHash, signCheckpoint, type Checkpoint } from '../domain/checkpoint.ts';
import { leafHash, MerkleFrontier, subtreesNeeded, type Subtree, type SubtreeRef, type SubtreeSource } from '../domain/merkle.ts';
import { logHorizon } from './event-store.ts';
import type { Database, Db } from './database.ts';

type Executor = Db | Transaction<Database>;

/** The advisory lock key of the sealer (one per database). */
const SEAL_LOCK = sql`hashtext('keyledger.log_seal')`;

/** Events sealed per transaction by default. */
export const SEAL_BATCH = 5_000;

export interface SealOptions {
  /** Signs the checkpoints. */
  privateKey: KeyObject;
  now: () => Date;
  batchSize?: number;
  /** Write a checkpoint once this many events are sealed since the last one... */
  checkpointEvery?: number;
  /** ...or this long after the last one, if anything was sealed since. */
  checkpointIntervalMs?: number;
}

export interface SealPass {
  /** False when another sealer holds the lock: nothing was done. */
  ran: boolean;
  sealed: number;
  treeSize: number;
  /** No event below the horizon is left unsealed. */
  caughtUp: boolean;
  /** The checkpoint written by this pass, if any. */
  checkpoint: Checkpoint | null;
}

/**
 * A sealer: keeps the tree's right edge in memory between passes (reloaded
 * from the stored subtrees when another process sealed meanwhile).
 *
 * @example
 * const sealer = new LogSealer(appDb, { privateKey, now: () => clock.now() });
 * let pass; do pass = await sealer.pass(); while (pass.ran && !pass.caughtUp);
 */
export class LogSealer {
  readonly #db: Db;
  readonly #options: SealOptions;
  #frontier: MerkleFrontier | undefined;

  constructor(db: Db, options: SealOptions) {
    this.#db = db;
    this.#options = options;
  }

  /** Seals the next batch, and writes a checkpoint when one is due (or `force`, if the tree grew since the last). */
  async pass(options: { force?: boolean } = {}): Promise<SealPass> {
    const batchSize = this.#options.batchSize ?? SEAL_BATCH;
    const result = await this.#db.transaction().execute(async (trx): Promise<SealPass & { frontier?: MerkleFrontier }> => {
      const { rows: locked } = await sql<{ locked: boolean }>`SELECT pg_try_advisory_xact_lock(${SEAL_LOCK}) AS locked`.execute(trx);
      if (!locked[0]!.locked) return { ran: false, sealed: 0, treeSize: 0, caughtUp: false, checkpoint: null };
      const { rows: states } = await sql<{ tree_size: string; transaction_id: string; global_position: string }>`
        SELECT tree_size::text, transaction_id::text, global_position::text FROM log_seal_state`.execute(trx);
      const state = states[0]!;
      const size = Number(state.tree_size);
      // Its own statement, before the batch is read (see logHorizon).
      const horizon = await logHorizon(trx);
      const { rows } = await sql<EventText>`
        SELECT event_id::text, stream_id, stream_version::text, type, data::text AS data, metadata::text AS metadata,
               to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at,
               transaction_id::text, global_position::text
          FROM events e
         WHERE (e.transaction_id, e.global_position) > (${state.transaction_id}::xid8, ${state.global_position}::bigint)
           AND e.transaction_id < ${horizon.toString()}::xid8
         -- Qualified: the output columns of these names are text.
         ORDER BY e.transaction_id, e.global_position
         LIMIT ${batchSize}`.execute(trx);
      const frontier = this.#frontier?.size === size ? this.#frontier.clone() : await loadFrontier(trx, size);
      const leaves: Subtree[] = [];
      const nodes: Subtree[] = [];
      for (const row of rows) {
        const completed = frontier.append(leafHash(canonicalEventOf(row)));
        leaves.push(completed[0]!);
        for (let i = 1; i < completed.length; i++) nodes.push(completed[i]!);
      }
      if (rows.length > 0) {
        await sql`INSERT INTO log_seal_leaves (leaf_index, event_id, leaf_hash)
          SELECT * FROM unnest(${leaves.map((l) => String(l.index))}::bigint[], ${rows.map((r) => r.event_id)}::uuid[],
                               ${leaves.map((l) => l.hash)}::bytea[])`.execute(trx);
        if (nodes.length > 0) {
          await sql`INSERT INTO log_seal_nodes (level, idx, hash)
            SELECT * FROM unnest(${nodes.map((n) => n.level)}::smallint[], ${nodes.map((n) => String(n.index))}::bigint[],
                                 ${nodes.map((n) => n.hash)}::bytea[])`.execute(trx);
        }
        const last = rows.at(-1)!;
        await sql`UPDATE log_seal_state SET tree_size = ${String(frontier.size)}, transaction_id = ${last.transaction_id}::xid8,
                  global_position = ${last.global_position}::bigint, updated_at = now()`.execute(trx);
      }
      const checkpoint = await this.#checkpointIfDue(trx, frontier, options.force === true);
      return { ran: true, sealed: rows.length, treeSize: frontier.size, caughtUp: rows.length < batchSize, checkpoint, frontier };
    });
    if (result.frontier) this.#frontier = result.frontier;
    const { frontier: _, ...pass } = result;
    return pass;
  }

  async #checkpointIfDue(trx: Transaction<Database>, frontier: MerkleFrontier, force: boolean): Promise<Checkpoint | null> {
    const previous = await latestCheckpoint(trx);
    const grown = frontier.size - (previous?.treeSize ?? 0);
    const now = this.#options.now();
    if (previous && grown === 0) return null;
    if (!previous && frontier.size === 0 && !force) return null;
    const due =
      force ||
      !previous ||
      grown >= (this.#options.checkpointEvery ?? 10_000) ||
      now.getTime() - previous.signedAt.getTime() >= (this.#options.checkpointIntervalMs ?? 5_000);
    if (!due) return null;
    const checkpoint = signCheckpoint(
      { treeSize: frontier.size, rootHash: frontier.root(), signedAt: now, previousHash: previous ? checkpointHash(previous) : null },
      this.#options.privateKey,
    );
    await insertCheckpoint(trx, checkpoint);
    return checkpoint;
  }
}

interface EventText {
  event_id: string;
  stream_id: string;
  stream_version: string;
  type: string;
  data: string;
  metadata: string;
  recorded_at: string;
  transaction_id: string;
  global_position: string;
}

/**
 * The canonical bytes of an event row read as text (jsonb text keeps numbers exact).
 *
 * @example
 * leafHash(canonicalEventOf(row)) // the leaf the event was sealed as, if the row is as it was then
 */
export function canonicalEventOf(row: Pick<EventText, 'event_id' | 'stream_id' | 'stream_version' | 'type' | 'data' | 'metadata' | 'recorded_at'>): string {
  return canonicalEvent({
    eventId: row.event_id,
    streamId: row.stream_id,
    streamVersion: row.stream_version,
    type: row.type,
    dataJson: row.data,
    metadataJson: row.metadata,
    recordedAt: row.recorded_at,
  });
}

async function insertCheckpoint(trx: Executor, c: Checkpoint): Promise<void> {
  await sql`INSERT INTO log_checkpoints (checkpoint_hash, tree_size, root_hash, signed_at, previous_hash, key_id, signature)
    VALUES (${checkpointHash(c)}, ${String(c.treeSize)}, ${c.rootHash}, ${c.signedAt}, ${c.previousHash}, ${c.keyId}, ${c.signature})`.execute(trx);
}

type CheckpointRow = { tree_size: string; root_hash: Buffer; signed_at: Date; previous_hash: Buffer | null; key_id: string; signature: Buffer };
const toCheckpoint = (r: CheckpointRow): Checkpoint => ({
  treeSize: Number(r.tree_size),
  rootHash: r.root_hash,
  signedAt: r.signed_at,
  previousHash: r.previous_hash,
  keyId: r.key_id,
  signature: r.signature,
});

/**
 * The newest checkpoint, or null before the first.
 *
 * @example
 * await latestCheckpoint(db) // { treeSize: 4096, rootHash, signedAt, previousHash, keyId, signature }, or null before the first seal
 */
export async function latestCheckpoint(db: Executor): Promise<Checkpoint | null> {
  const { rows } = await sql<CheckpointRow>`
    SELECT c.tree_size::text, c.root_hash, c.signed_at, c.previous_hash, c.key_id, c.signature FROM log_checkpoints c
     -- Qualified: the output column tree_size is text, which would order 95 after 100.
     ORDER BY c.tree_size DESC, c.signed_at DESC LIMIT 1`.execute(db);
  return rows[0] ? toCheckpoint(rows[0]) : null;
}

/** The newest checkpoint's tree size, -1 before the first: what checkpoint streams poll (CheckpointWatch). */
export async function newestTreeSize(db: Executor): Promise<number> {
  const { rows } = await sql<{ size: string | null }>`SELECT max(tree_size)::text AS size FROM log_checkpoints`.execute(db);
  return rows[0]?.size == null ? -1 : Number(rows[0].size);
}

/**
 * Every checkpoint, oldest first.
 *
 * @example
 * await listCheckpoints(db) // [the first checkpoint (previousHash: null), …, the newest]
 */
export async function listCheckpoints(db: Executor): Promise<Checkpoint[]> {
  const { rows } = await sql<CheckpointRow>`
    SELECT c.tree_size::text, c.root_hash, c.signed_at, c.previous_hash, c.key_id, c.signature FROM log_checkpoints c
     ORDER BY c.tree_size, c.signed_at`.execute(db);
  return rows.map(toCheckpoint);
}

/**
 * The stored hashes of the given perfect subtrees, in one statement.
 *
 * @example
 * const source = await readSubtrees(db, [{ level: 2, index: 0 }, { level: 0, index: 4 }]);
 * source(2, 0) // the stored hash of leaves 0..3; asking for a subtree not listed (or not stored) throws
 */
export async function readSubtrees(db: Executor, refs: readonly SubtreeRef[]): Promise<SubtreeSource> {
  const leaves = refs.filter((r) => r.level === 0).map((r) => String(r.index));
  const inner = refs.filter((r) => r.level > 0);
  const { rows } = await sql<{ level: number; idx: string; hash: Buffer }>`
    SELECT 0 AS level, leaf_index::text AS idx, leaf_hash AS hash FROM log_seal_leaves WHERE leaf_index = ANY(${leaves}::bigint[])
    UNION ALL
    SELECT n.level, n.idx::text, n.hash FROM log_seal_nodes n
      JOIN unnest(${inner.map((r) => r.level)}::smallint[], ${inner.map((r) => String(r.index))}::bigint[]) AS w(level, idx)
        ON n.level = w.level AND n.idx = w.idx`.execute(db);
  const found = new Map(rows.map((r) => [`${r.level}/${r.idx}`, r.hash]));
  return (level, index) => {
    const h = found.get(`${level}/${index}`);
    if (!h) throw new Error(`the sealed subtree ${level}/${index} is missing from the database`);
    return h;
  };
}

/**
 * Runs a computation over stored subtrees (a proof, a root) with two reads at
 * most: what it needs is known from sizes alone (see subtreesNeeded).
 *
 * @example
 * const proof = await withSubtrees(db, (s) => inclusionProof(leaf, size, s));
 */
export async function withSubtrees<T>(db: Executor, compute: (source: SubtreeSource) => T): Promise<T> {
  return compute(await readSubtrees(db, subtreesNeeded(compute)));
}

async function loadFrontier(db: Executor, size: number): Promise<MerkleFrontier> {
  return MerkleFrontier.fromSource(size, await readSubtrees(db, MerkleFrontier.edgeOf(size)));
}

/**
 * The tree of the first `size` sealed leaves as the hashes of its perfect
 * subtrees, largest first: where an export of a range starts its tree.
 *
 * @example
 * const edge = await frontierEdge(db, 1000); // 6 hashes (1000 = 512 + 256 + 128 + 64 + 32 + 8)
 */
export async function frontierEdge(db: Executor, size: number): Promise<Buffer[]> {
  return (await loadFrontier(db, size)).edge().map((s) => s.hash);
}

/**
 * A sealed event's leaf index, by event id; null when it is not (yet) sealed.
 *
 * @example
 * await leafIndexOf(db, eventId) // 41, or null until the sealer has sealed the event
 */
export async function leafIndexOf(db: Executor, eventId: string): Promise<number | null> {
  const { rows } = await sql<{ leaf_index: string }>`SELECT leaf_index::text FROM log_seal_leaves WHERE event_id = ${eventId}::uuid`.execute(db);
  return rows[0] ? Number(rows[0].leaf_index) : null;
}

/**
 * The checkpoint whose hash (SHA-256 of its body and signature) is `hash`; null
 * when none in the database has it.
 *
 * @example
 * await checkpointByHash(db, checkpointHash(cp)) // cp as stored; null for a hash no stored checkpoint has
 */
export async function checkpointByHash(db: Executor, hash: Buffer): Promise<Checkpoint | null> {
  const { rows } = await sql<CheckpointRow>`
    SELECT tree_size::text, root_hash, signed_at, previous_hash, key_id, signature FROM log_checkpoints WHERE checkpoint_hash = ${hash}`.execute(db);
  return rows[0] ? toCheckpoint(rows[0]) : null;
}

/**
 * The (newest signed) checkpoint of tree size `treeSize`; null when no checkpoint has that size.
 *
 * @example
 * await checkpointOfSize(db, 4096) // the checkpoint of the tree of 4096 leaves (the newest signed, if re-signed), or null
 */
export async function checkpointOfSize(db: Executor, treeSize: number): Promise<Checkpoint | null> {
  const { rows } = await sql<CheckpointRow>`
    SELECT c.tree_size::text, c.root_hash, c.signed_at, c.previous_hash, c.key_id, c.signature FROM log_checkpoints c
     WHERE c.tree_size = ${String(treeSize)}::bigint ORDER BY c.signed_at DESC LIMIT 1`.execute(db);
  return rows[0] ? toCheckpoint(rows[0]) : null;
}

/**
 * Up to `limit` checkpoints of tree size above `afterTreeSize`, oldest first.
 *
 * @example
 * await checkpointsAfter(db, 4096, 10) // up to 10 checkpoints of sizes above 4096, oldest first
 */
export async function checkpointsAfter(db: Executor, afterTreeSize: number, limit: number): Promise<Checkpoint[]> {
  const { rows } = await sql<CheckpointRow>`
    SELECT c.tree_size::text, c.root_hash, c.signed_at, c.previous_hash, c.key_id, c.signature FROM log_checkpoints c
     WHERE c.tree_size > ${String(afterTreeSize)}::bigint ORDER BY c.tree_size, c.signed_at LIMIT ${limit}`.execute(db);
  return rows.map(toCheckpoint);
}

/** A sealed event: its leaf index, the hash sealed, and its canonical text as the database holds it now. */
export interface SealedEvent {
  leafIndex: number;
  sealedHash: Buffer;
  /** Recomputed from the row today: if the row was altered after sealing, it no longer hashes to `sealedHash`. */
  canonical: string;
  /** The jsonb text of the event's data, as the database holds it now. */
  dataJson: string;
}

/**
 * The sealed leaf of an event (by event id) and its canonical text; null when it is not sealed yet.
 *
 * @example
 * const sealed = await sealedEvent(db, eventId);
 * leafHash(sealed!.canonical).equals(sealed!.sealedHash) // true unless the row was altered after sealing
 */
export async function sealedEvent(db: Executor, eventId: string): Promise<SealedEvent | null> {
  const { rows } = await sql<Omit<EventText, 'transaction_id' | 'global_position'> & { leaf_index: string; leaf_hash: Buffer }>`
    SELECT e.event_id::text, e.stream_id, e.stream_version::text, e.type, e.data::text AS data, e.metadata::text AS metadata,
           to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at,
           l.leaf_index::text AS leaf_index, l.leaf_hash
      FROM log_seal_leaves l JOIN events e ON e.event_id = l.event_id
     WHERE l.event_id = ${eventId}::uuid`.execute(db);
  const r = rows[0];
  return r ? { leafIndex: Number(r.leaf_index), sealedHash: r.leaf_hash, canonical: canonicalEventOf(r), dataJson: r.data } : null;
}

/** At most this many unsealed events are counted (the status says "more than"). */
export const SEAL_WAITING_CAP = 100_000;

/** How far the sealer has come, for `worker --status`: the window in which an event could still be altered unseen. */
export interface SealStatus {
  /** Events sealed into the tree, and when the sealer last moved. */
  sealed: number;
  updatedAt: Date;
  /** Events committed but not yet sealed (counted up to SEAL_WAITING_CAP). */
  waiting: number;
  waitingCapped: boolean;
  /** The newest signed checkpoint: its tree size and when it was signed. */
  checkpoint: { treeSize: number; signedAt: Date } | null;
  /** When the oldest event no checkpoint covers yet was recorded; null when every event is covered. */
  oldestUncoveredAt: Date | null;
}

/**
 * The sealer's progress: sealed, waiting, the newest checkpoint, and the
 * oldest event no checkpoint covers yet (the open end of the window).
 *
 * @example
 * await readSealStatus(db) // { sealed: 5000, waiting: 12, checkpoint: { treeSize: 4990, signedAt }, oldestUncoveredAt, … }
 */
export async function readSealStatus(db: Db): Promise<SealStatus> {
  const state = (
    await sql<{ tree_size: string; transaction_id: string; global_position: string; updated_at: Date }>`
      SELECT tree_size::text, transaction_id::text, global_position::text, updated_at FROM log_seal_state`.execute(db)
  ).rows[0]!;
  const after = sql`(transaction_id, global_position) > (${state.transaction_id}::xid8, ${state.global_position}::bigint)`;
  const waiting = Number(
    (await sql<{ n: string }>`SELECT count(*)::text AS n FROM (SELECT 1 FROM events WHERE ${after} LIMIT ${SEAL_WAITING_CAP + 1}) AS w`.execute(db)).rows[0]!.n,
  );
  const latest = await latestCheckpoint(db);
  const covered = latest?.treeSize ?? 0;
  // The first leaf past the checkpoint if it is sealed, else the first event not sealed at all.
  const firstUncovered = await sql<{ recorded_at: Date }>`
    SELECT recorded_at FROM (
      SELECT 1 AS o, e.recorded_at FROM log_seal_leaves l JOIN events e ON e.event_id = l.event_id WHERE l.leaf_index = ${String(covered)}::bigint
      UNION ALL
      (SELECT 2 AS o, recorded_at FROM events WHERE ${after} ORDER BY transaction_id, global_position LIMIT 1)) AS u
    ORDER BY o LIMIT 1`.execute(db);
  return {
    sealed: Number(state.tree_size),
    updatedAt: state.updated_at,
    waiting: Math.min(waiting, SEAL_WAITING_CAP),
    waitingCapped: waiting > SEAL_WAITING_CAP,
    checkpoint: latest ? { treeSize: latest.treeSize, signedAt: latest.signedAt } : null,
    oldestUncoveredAt: firstUncovered.rows[0]?.recorded_at ?? null,
  };
}
