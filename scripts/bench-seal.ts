/**
 * `npm run bench:seal`: the tamper-evident log's figures (issue 16).
 *
 * - sealing: events sealed per second by one LogSealer pass loop, over a log
 *   of SEAL_EVENTS (default 200,000; 0 skips it) ~1 KB audit-like events;
 * - proofs: inclusion and consistency proof latency from the stored subtrees
 *   (two reads), median and p99;
 * - verification: an export file of VERIFY_EVENTS (default 1,000,000)
 *   synthetic records (kept at VERIFY_FILE, with its checkpoint beside it, and
 *   reused by later runs, when that is set) checked as `audit verify --export` does, in the main
 *   thread alone and with a worker thread per core, in events per second
 *   (with the CPU time and the load average: the figure is the machine's);
 * - proofs at scale (PROOF_LEAVES, e.g. 10,000,000): a tree of that many
 *   leaves built in SQL exactly as the sealer stores it (log_seal_leaves and
 *   every perfect subtree in log_seal_nodes, RFC 6962 hashes), then, per
 *   proof, the leaf looked up by event id and the inclusion proof read and
 *   built, as `AuditEvent.proof` does; each proof is checked against the root;
 * - `audit verify --database` over the sealed log: each event
 *   checked where it is read (feedAuditLog), and, for comparison, written
 *   as an export's lines and parsed back (what it did before).
 *
 * DATABASE_URL (a superuser URL) is used if set, else an embedded server.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import pg from 'pg';
import { verifyExportFile } from '../src/cli/audit-verify-file.ts';
import { ExportVerifier } from '../src/domain/audit-verify.ts';
import { canonicalEvent } from '../src/domain/canonical-event.ts';
import { checkpointFromJson, checkpointToJson, signCheckpoint, type Checkpoint } from '../src/domain/checkpoint.ts';
import { consistencyProof, inclusionProof, leafHash, MerkleFrontier, treeRoot, verifyInclusion } from '../src/domain/merkle.ts';
import { sealKeyFromSeed } from '../src/crypto/seal-key.ts';
import { openDatabase, type Db } from '../src/store/database.ts';
import { exportAuditLog, feedAuditLog } from '../src/store/audit-export.ts';
import { leafIndexOf, LogSealer, listCheckpoints, withSubtrees } from '../src/store/log-seal.ts';
import { installPgTypeParsers } from '../src/store/pg-types.ts';
import { migrateToLatest } from '../src/store/migrations.ts';
import { startPostgresServer } from '../test/support/postgres-server.ts';

const SEAL_EVENTS = Number(process.env.SEAL_EVENTS ?? 200_000);
const VERIFY_EVENTS = Number(process.env.VERIFY_EVENTS ?? 1_000_000);
const PROOF_LEAVES = Number(process.env.PROOF_LEAVES ?? 0);
const key = sealKeyFromSeed(Buffer.alloc(32, 3));

function sampleData(i: number): unknown {
  return {
    eventVersion: '1.08',
    eventName: 'Decrypt',
    eventSource: 'kms.amazonaws.com',
    awsRegion: 'us-east-1',
    sourceIp: '10.0.0.7',
    userIdentity: { type: 'IAMUser', principalArn: 'arn:aws:iam::111122223333:user/app', accessKeyId: 'AKIAEXAMPLE' },
    requestParameters: { keyId: `arn:aws:kms:us-east-1:111122223333:key/${randomUUID()}`, encryptionContext: { tenant: `t${i % 100}`, purpose: 'bench' } },
    resources: [{ type: 'AWS::KMS::Key', arn: `arn:aws:kms:us-east-1:111122223333:key/${randomUUID()}` }],
    outcome: 'success',
    readOnly: true,
    requestId: randomUUID(),
    padding: 'x'.repeat(400),
    n: i,
  };
}

const pct = (xs: number[], p: number) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

/** Writes a synthetic export of VERIFY_EVENTS records as the exporter does, and the checkpoint of its whole tree. */
async function writeExport(file: string): Promise<Checkpoint> {
  const frontier = new MerkleFrontier();
  const out = createWriteStream(file);
  out.write(`{"keyledgerAuditExport":1,"treeSize":"${VERIFY_EVENTS}"}\n`);
  const at = '2026-12-05T03:04:05.123456Z';
  for (let i = 0; i < VERIFY_EVENTS; i++) {
    const ev = canonicalEvent({
      eventId: randomUUID(),
      streamId: `request-${i}`,
      streamVersion: 1n,
      type: 'AuditRecord',
      dataJson: JSON.stringify(sampleData(i)),
      metadataJson: '{}',
      recordedAt: at,
    });
    const h = leafHash(ev);
    frontier.append(h);
    if (!out.write(`{"leaf":"${i}","sealedHash":"${h.toString('base64')}","globalPosition":"${i + 1}","event":${ev}}\n`)) await once(out, 'drain');
  }
  await new Promise<void>((resolve) => out.end(resolve));
  return signCheckpoint({ treeSize: VERIFY_EVENTS, rootHash: frontier.root(), signedAt: new Date(), previousHash: null }, key.privateKey);
}

async function benchVerify(): Promise<void> {
  // Time `audit verify --export` alone, over an export written first (or kept from an earlier run: VERIFY_FILE).
  const kept = process.env.VERIFY_FILE;
  const dir = kept ? undefined : await mkdtemp(join(tmpdir(), 'keyledger-bench-verify-'));
  const file = kept ?? join(dir!, 'export.jsonl');
  try {
    const stored = kept ? await readFile(`${kept}.checkpoint.json`, 'utf8').catch(() => null) : null;
    let checkpoint = stored === null ? null : checkpointFromJson(JSON.parse(stored));
    if (checkpoint && checkpoint.treeSize !== VERIFY_EVENTS) checkpoint = null;
    if (!checkpoint) {
      checkpoint = await writeExport(file);
      if (kept) await writeFile(`${kept}.checkpoint.json`, JSON.stringify(checkpointToJson(checkpoint)));
    }
    const bytes = (await stat(file)).size;
    for (const threads of [0, availableParallelism()]) {
      const cpu = process.cpuUsage();
      const started = performance.now();
      const v = new ExportVerifier({ checkpointSizes: [checkpoint.treeSize] });
      await verifyExportFile(file, v, { threads });
      const result = v.finish([checkpoint], key.publicKey);
      const seconds = (performance.now() - started) / 1000;
      const used = process.cpuUsage(cpu);
      if (!result.ok) throw new Error('the synthetic export did not verify');
      console.log(
        `verify:   ${VERIFY_EVENTS} events (${(bytes / 1e6).toFixed(0)} MB) from a file, ${threads} ` +
          `worker thread(s): ${seconds.toFixed(2)} s = ${Math.round(VERIFY_EVENTS / seconds)} events/s ` +
          `(${((used.user + used.system) / 1e6).toFixed(1)} CPU s, load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores)`,
      );
    }
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/** A fresh database of the latest schema, on DATABASE_URL's server or an embedded one; `use` gets an owner and an app pool. */
async function withBenchDatabase(use: (owner: Db, app: Db) => Promise<void>): Promise<void> {
  const server = process.env.DATABASE_URL ? undefined : await startPostgresServer();
  const adminUrl = process.env.DATABASE_URL ?? server!.adminUrl;
  const name = `keyledger_bench_seal_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const owner = openDatabase(url.toString(), { as: 'owner', max: 4, applicationName: 'bench-seal' });
  const app = openDatabase(url.toString(), { as: 'app', max: 4, applicationName: 'bench-seal' });
  try {
    await migrateToLatest(owner);
    await use(owner, app);
  } finally {
    await Promise.all([owner.destroy(), app.destroy()]);
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
    await server?.stop();
  }
}

/**
 * Inclusion proofs over a tree of PROOF_LEAVES leaves, stored as the sealer
 * stores it but built in SQL (sealing that many events takes the sealer hours
 * here): leaf i hashes its index, each inner node is SHA-256(0x01 || left ||
 * right) of the level below.
 */
async function benchProofsAtScale(owner: Db, app: Db): Promise<void> {
  const n = PROOF_LEAVES;
  const started = performance.now();
  await sql`INSERT INTO log_seal_leaves (leaf_index, event_id, leaf_hash)
    SELECT i, gen_random_uuid(), sha256('\\x00'::bytea || int8send(i)) FROM generate_series(0, ${n - 1}::bigint) AS i`.execute(owner);
  for (let level = 1; n >> level > 0; level++) {
    const below =
      level === 1
        ? sql`SELECT leaf_index AS idx, leaf_hash AS hash FROM log_seal_leaves`
        : sql`SELECT idx, hash FROM log_seal_nodes WHERE level = ${level - 1}`;
    await sql`INSERT INTO log_seal_nodes (level, idx, hash)
      SELECT ${level}, b.idx / 2, sha256('\\x01'::bytea || string_agg(b.hash, ''::bytea ORDER BY b.idx))
        FROM (${below}) AS b WHERE b.idx < ${(n >> level) * 2}::bigint GROUP BY b.idx / 2`.execute(owner);
  }
  await sql`VACUUM ANALYZE log_seal_leaves, log_seal_nodes`.execute(owner);
  console.log(`proofs:   built a ${n}-leaf tree in SQL in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  const root = await withSubtrees(app, (s) => treeRoot(n, s));
  const latencies: number[] = [];
  // The first 200 (not counted) warm the connection and the upper levels of the tree in Postgres's buffers.
  for (let i = 0; i < 700; i++) {
    const leaf = Math.floor(Math.random() * n);
    const { rows } = await sql<{ event_id: string; leaf_hash: Buffer }>`
      SELECT event_id::text, leaf_hash FROM log_seal_leaves WHERE leaf_index = ${leaf}`.execute(owner);
    const t = performance.now();
    const index = await leafIndexOf(app, rows[0]!.event_id);
    const proof = await withSubtrees(app, (s) => inclusionProof(index!, n, s));
    if (i >= 200) latencies.push(performance.now() - t);
    if (index !== leaf || !verifyInclusion(leaf, n, rows[0]!.leaf_hash, proof, root)) throw new Error(`the proof of leaf ${leaf} does not verify`);
  }
  console.log(
    `proofs:   inclusion by event id at ${n} leaves (500 after 200 to warm up, each verified): median ${pct(latencies, 0.5).toFixed(2)} ms, ` +
      `p99 ${pct(latencies, 0.99).toFixed(2)} ms (load average ${loadavg()[0]!.toFixed(1)})`,
  );
}

async function benchSeal(owner: Db, app: Db): Promise<void> {
  for (let done = 0; done < SEAL_EVENTS; done += 10_000) {
    const n = Math.min(10_000, SEAL_EVENTS - done);
    const datas = Array.from({ length: n }, (_, i) => JSON.stringify(sampleData(done + i)));
    await sql`INSERT INTO events (stream_id, stream_version, event_id, type, data, recorded_at)
         SELECT 'request-' || gen_random_uuid(), 1, gen_random_uuid(), 'AuditRecord', d::jsonb, now() FROM unnest(${datas}::text[]) AS d`.execute(owner);
  }
  const sealer = new LogSealer(app, { privateKey: key.privateKey, now: () => new Date(), checkpointEvery: 50_000 });
  const started = performance.now();
  let pass;
  do pass = await sealer.pass();
  while (!pass.caughtUp);
  await sealer.pass({ force: true });
  const seconds = (performance.now() - started) / 1000;
  console.log(`seal:     ${pass.treeSize} events in ${seconds.toFixed(2)} s = ${Math.round(pass.treeSize / seconds)} events/s (one sealer, batches of 5,000)`);
  const size = pass.treeSize;
  const inclusion: number[] = [];
  const consistency: number[] = [];
  for (let i = 0; i < 300; i++) {
    const leaf = Math.floor(Math.random() * size);
    let t = performance.now();
    await withSubtrees(app, (s) => inclusionProof(leaf, size, s));
    inclusion.push(performance.now() - t);
    t = performance.now();
    await withSubtrees(app, (s) => consistencyProof(1 + leaf, size, s));
    consistency.push(performance.now() - t);
  }
  console.log(
    `proofs:   inclusion at ${size} leaves: median ${pct(inclusion, 0.5).toFixed(2)} ms, p99 ${pct(inclusion, 0.99).toFixed(2)} ms; ` +
      `consistency: median ${pct(consistency, 0.5).toFixed(2)} ms, p99 ${pct(consistency, 0.99).toFixed(2)} ms`,
  );
  const checkpoints = await listCheckpoints(app);
  const ways = [
    ['checked where read', (v: ExportVerifier) => feedAuditLog(app, v)],
    [
      'as export lines parsed back, as before',
      async (v: ExportVerifier) => {
        for await (const line of exportAuditLog(app)) v.line(line);
      },
    ],
  ] as const;
  // Twice each, alternating: the first passes also warm the JIT and Postgres's buffers.
  for (const [how, feed] of [...ways, ...ways]) {
    const v = new ExportVerifier({ checkpointSizes: checkpoints.map((c) => c.treeSize) });
    const cpu = process.cpuUsage();
    const t = performance.now();
    await feed(v);
    const result = v.finish(checkpoints, key.publicKey);
    const seconds = (performance.now() - t) / 1000;
    const used = process.cpuUsage(cpu);
    if (!result.ok) throw new Error('the sealed log did not verify');
    console.log(
      `verify --database (${how}): ${result.records} events in ${seconds.toFixed(2)} s = ${Math.round(result.records / seconds)} events/s ` +
        `(${((used.user + used.system) / 1e6).toFixed(1)} CPU s in this process, load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores)`,
    );
  }
}

installPgTypeParsers();
if (VERIFY_EVENTS > 0) await benchVerify();
if (PROOF_LEAVES > 0) await withBenchDatabase(benchProofsAtScale);
else if (SEAL_EVENTS > 0) await withBenchDatabase(benchSeal);
