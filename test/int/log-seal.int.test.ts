import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalEvent } from '../../src/domain/canonical-event.ts';
import { checkpointHash, checkpointSignatureValid } from '../../src/domain/checkpoint.ts';
import { consistencyProof, inclusionProof, verifyConsistency } from '../../src/domain/merkle.ts';
import { sealKeyFromSeed } from '../../src/crypto/seal-key.ts';
import { parseJson } from '../../src/json.ts';
import { appendToStream } from '../../src/store/event-store.ts';
import { latestCheckpoint, leafIndexOf, listCheckpoints, LogSealer, withSubtrees } from '../../src/store/log-seal.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';

const execFileAsync = promisify(execFile);
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

const key = sealKeyFromSeed(Buffer.alloc(32, 7));
let clock = new Date('2026-12-05T00:00:00.000Z');
const now = () => clock;

async function appendMany(n: number, data: (i: number) => unknown = (i) => ({ i })): Promise<void> {
  await db.app.transaction().execute(async (trx) => {
    for (let i = 0; i < n; i++) await appendToStream(trx, `test-${randomUUID()}`, 'no_stream', [{ type: 'Probe', data: data(i) }], new Date());
  });
}

/** An independent minimal RFC 9162 verifier: recursive MTH and the inclusion check, in a few lines. */
const sha = (...p: Buffer[]) => createHash('sha256').update(Buffer.concat(p)).digest();
function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return sha();
  if (leaves.length === 1) return sha(Buffer.from([0]), leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha(Buffer.from([1]), mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}
function minimalVerifyInclusion(index: number, size: number, leaf: Buffer, proof: Buffer[], root: Buffer): boolean {
  let [fn, sn, r] = [index, size - 1, sha(Buffer.from([0]), leaf)];
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = sha(Buffer.from([1]), p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) [fn, sn] = [fn >> 1, sn >> 1];
    } else r = sha(Buffer.from([1]), r, p);
    [fn, sn] = [fn >> 1, sn >> 1];
  }
  return sn === 0 && r.equals(root);
}

/** Every event's canonical bytes in log order, recomputed from the table without the sealer. */
async function canonicalLog(): Promise<{ eventId: string; bytes: Buffer }[]> {
  const { rows } = await sql<{
    event_id: string;
    stream_id: string;
    stream_version: string;
    type: string;
    data: string;
    metadata: string;
    recorded_at: string;
  }>`
    SELECT event_id::text, stream_id, stream_version::text, type, data::text AS data, metadata::text AS metadata,
           to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at
      FROM events ORDER BY transaction_id, global_position`.execute(db.owner);
  return rows.map((r) => ({
    eventId: r.event_id,
    bytes: Buffer.from(
      canonicalEvent({
        eventId: r.event_id,
        streamId: r.stream_id,
        streamVersion: r.stream_version,
        type: r.type,
        dataJson: r.data,
        metadataJson: r.metadata,
        recordedAt: r.recorded_at,
      }),
    ),
  }));
}

describe('the log sealer', () => {
  it('seals every event in log order, in signed chained checkpoints whose proofs an independent verifier accepts', async () => {
    await appendMany(37, (i) => ({ i, big: 12345678901234567890n.toString(), exact: i === 3 ? 1.5 : i }));
    const sealer = new LogSealer(db.app, { privateKey: key.privateKey, now, batchSize: 10, checkpointEvery: 15 });
    let pass;
    do pass = await sealer.pass();
    while (!pass.caughtUp);
    clock = new Date(clock.getTime() + 60_000);
    await appendMany(5);
    await sealer.pass({ force: true });

    const log = await canonicalLog();
    const checkpoints = await listCheckpoints(db.app);
    expect(checkpoints.length).toBeGreaterThanOrEqual(3);
    const latest = (await latestCheckpoint(db.app))!;
    expect(latest.treeSize).toBe(log.length);
    expect(mth(log.map((e) => e.bytes)).equals(latest.rootHash)).toBe(true);
    for (const [i, c] of checkpoints.entries()) {
      expect(checkpointSignatureValid(c, key.publicKey)).toBe(true);
      expect(c.previousHash ? c.previousHash.equals(checkpointHash(checkpoints[i - 1]!)) : i === 0).toBe(true);
      expect(mth(log.slice(0, c.treeSize).map((e) => e.bytes)).equals(c.rootHash)).toBe(true);
    }
    const other = generateKeyPairSync('ed25519').publicKey;
    expect(checkpointSignatureValid(latest, other)).toBe(false);
    expect(checkpointSignatureValid({ ...latest, treeSize: latest.treeSize - 1 }, key.publicKey)).toBe(false);

    for (const [i, e] of log.entries()) {
      expect(await leafIndexOf(db.app, e.eventId)).toBe(i);
      const proof = (await withSubtrees(db.app, (s) => inclusionProof(i, latest.treeSize, s))).map((p) => Buffer.from(p));
      expect(minimalVerifyInclusion(i, latest.treeSize, e.bytes, proof, latest.rootHash)).toBe(true);
    }
    const first = checkpoints[0]!;
    const cproof = await withSubtrees(db.app, (s) => consistencyProof(first.treeSize, latest.treeSize, s));
    expect(verifyConsistency(first.treeSize, latest.treeSize, first.rootHash, latest.rootHash, cproof)).toBe(true);
  });

  it('lets one sealer at a time seal, and a second picks up where the first stopped', async () => {
    await appendMany(20);
    const a = new LogSealer(db.app, { privateKey: key.privateKey, now, batchSize: 7 });
    const b = new LogSealer(db.app, { privateKey: key.privateKey, now, batchSize: 7 });
    const passes = await Promise.all([a.pass(), b.pass(), a.pass(), b.pass(), a.pass(), b.pass(), a.pass(), b.pass()]);
    expect(passes.some((p) => p.ran)).toBe(true);
    let pass;
    do pass = await b.pass({ force: true });
    while (!pass.ran || !pass.caughtUp);
    const log = await canonicalLog();
    const latest = (await latestCheckpoint(db.app))!;
    expect(latest.treeSize).toBe(log.length);
    expect(mth(log.map((e) => e.bytes)).equals(latest.rootHash)).toBe(true);
  });
  it('two processes sealing at once build one tree and one linear chain of checkpoints', async () => {
    const script = fileURLToPath(new URL('../support/seal-process.ts', import.meta.url));
    const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
    const run = () => execFileAsync(node, [script, db.url, '4000'], { timeout: 30_000 });
    const writer = (async () => {
      for (let i = 0; i < 20; i++) {
        await appendMany(25);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const [a, b] = await Promise.all([run(), run(), writer]);
    const counts = [parseJson(a.stdout), parseJson(b.stdout)] as { ran: number; skipped: number }[];
    expect(counts.every((c) => c.ran > 0)).toBe(true);
    // Whatever the last pass left: one more, then the tree is the log.
    let pass;
    do pass = await new LogSealer(db.app, { privateKey: sealKeyFromSeed(Buffer.alloc(32, 5)).privateKey, now, batchSize: 1000 }).pass({ force: true });
    while (!pass.ran || !pass.caughtUp);
    const log = await canonicalLog();
    expect(pass.treeSize).toBe(log.length);
    expect(mth(log.map((e) => e.bytes)).equals((await latestCheckpoint(db.app))!.rootHash)).toBe(true);
    const { rows } = await sql<{
      leaves: string;
      distinct_events: string;
    }>`SELECT count(*)::text AS leaves, count(DISTINCT event_id)::text AS distinct_events FROM log_seal_leaves`.execute(db.owner);
    expect(rows[0]).toEqual({ leaves: String(log.length), distinct_events: String(log.length) });
    // The chain: each checkpoint names the one before it, and no two name the same one (sql/0028's UNIQUE).
    const checkpoints = await listCheckpoints(db.app);
    for (let i = 1; i < checkpoints.length; i++) expect(checkpoints[i]!.previousHash!.equals(checkpointHash(checkpoints[i - 1]!))).toBe(true);
  }, 60_000);
});
