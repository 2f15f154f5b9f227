/**
 * `npm run bench:writes`: audit writes into a large log (issue 14, write
 * amplification), after `npm run seed:audit` (SEED_EVENTS=10000000 for the
 * figures in the README).
 *
 * The group committer's statement, `append_audit_batch`, with BENCH_BATCH
 * records per call (one INSERT, one COMMIT, synchronous_commit on) from
 * BENCH_CLIENTS connections for BENCH_SECONDS, in two kinds of phase,
 * alternated BENCH_ROUNDS times in one run:
 * - random ids: request ids and event ids are version 4 UUIDs (what every
 *   writer used before src/domain/uuid-v7.ts), so the two unique indexes on
 *   them take each record on a random leaf;
 * - time-ordered ids: version 7 UUIDs, as the service makes them now.
 *
 * Each phase starts after a CHECKPOINT, so each pays for the same full-page
 * images. Printed per phase: records/s, p50/p99 of a call, WAL bytes and
 * full-page images per record (pg_stat_wal), and the indexes that read pages
 * from outside shared buffers (pg_statio_user_indexes), per record.
 *
 * The records are a Decrypt record of the seed's, each with its own request id,
 * time and data key id (so the data key index takes them at random, as real
 * Decrypts of many data keys do), with the seed's account replaced everywhere
 * in it (its ARNs too) by an account of their own (BENCH_ACCOUNT), so that
 * bench:audit's questions about the seed's accounts and keys keep their answers.
 * They stay in the log: the seed is a bench's throwaway.
 *
 * | variable | default | |
 * |---|---|---|
 * | DATABASE_URL | (the embedded server in SEED_AUDIT_DIR) | an owner URL of a seeded database |
 * | BENCH_CLIENTS | 8 | connections writing at once |
 * | BENCH_BATCH | 8 | records per call (the committer's mean batch at 8 to 32 clients) |
 * | BENCH_SECONDS | 60 | per phase |
 * | BENCH_ROUNDS | 2 | pairs of phases |
 * | BENCH_ACCOUNT | 999988887777 | the records' accountId |
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { uuidV7 } from '../src/domain/uuid-v7.ts';
import { auditBenchDatabase, percentile, positiveIntSetting } from './seed-audit.ts';

type Ids = 'random ids' | 'time-ordered ids';

interface WalCounters {
  bytes: number;
  fpi: number;
  indexReads: Map<string, number>;
}

interface Phase {
  ids: Ids;
  records: number;
  seconds: number;
  p50: number;
  p99: number;
  walBytes: number;
  fpi: number;
  indexReads: [string, number][];
}

async function counters(monitor: pg.Client): Promise<WalCounters> {
  const wal = (await monitor.query<{ bytes: string; fpi: string }>('SELECT wal_bytes::bigint::text AS bytes, wal_fpi::text AS fpi FROM pg_stat_wal')).rows[0]!;
  const reads = await monitor.query<{ name: string; reads: string }>(
    `SELECT indexrelname AS name, idx_blks_read::text AS reads FROM pg_statio_user_indexes WHERE relname = 'events'`,
  );
  return { bytes: Number(wal.bytes), fpi: Number(wal.fpi), indexReads: new Map(reads.rows.map((r) => [r.name, Number(r.reads)])) };
}

async function main(): Promise<void> {
  const clients = positiveIntSetting('BENCH_CLIENTS', 8);
  const batchSize = positiveIntSetting('BENCH_BATCH', 8);
  const seconds = positiveIntSetting('BENCH_SECONDS', 60);
  const rounds = positiveIntSetting('BENCH_ROUNDS', 2);
  const account = process.env['BENCH_ACCOUNT'] || '999988887777';
  if (!/^\d{12}$/.test(account)) throw new Error('BENCH_ACCOUNT must be 12 digits');

  const { url, stop } = await auditBenchDatabase(false);
  const monitor = new pg.Client({ connectionString: url });
  await monitor.connect();
  const pool = new pg.Pool({ connectionString: url, max: clients, application_name: 'keyledger-bench-writes' });
  try {
    const sample = (
      await monitor.query<{ data: Record<string, unknown>; records: string; size: string; buffers: string }>(
        `SELECT replace(data::text, data ->> 'accountId', $1)::jsonb AS data,
                (SELECT n_live_tup::text FROM pg_stat_user_tables WHERE relname = 'events') AS records,
                pg_size_pretty(pg_total_relation_size('events')) AS size, current_setting('shared_buffers') AS buffers
           FROM events WHERE type = 'AuditRecord' AND data ->> 'eventName' = 'Decrypt' AND data ->> 'accountId' ~ '^[0-9]{12}$' LIMIT 1`,
        [account],
      )
    ).rows[0];
    if (!sample) throw new Error('no Decrypt record in the log: run `npm run seed:audit` first');
    console.log(
      `bench:writes: a log of ~${Number(sample.records).toLocaleString('en-US')} events (${sample.size} with indexes), shared_buffers ${sample.buffers}; ` +
        `${clients} clients × ${batchSize} records per append_audit_batch call, synchronous_commit on, ${seconds} s per phase after a CHECKPOINT; ` +
        `load average at start ${loadavg()[0]!.toFixed(2)}`,
    );
    const additional =
      typeof sample.data['additionalEventData'] === 'object' && sample.data['additionalEventData'] !== null ? sample.data['additionalEventData'] : {};
    const batchOf = (ids: Ids) =>
      Array.from({ length: batchSize }, () => {
        const requestId = ids === 'random ids' ? randomUUID() : uuidV7();
        const record = {
          ...sample.data,
          requestId,
          eventTime: new Date().toISOString(),
          additionalEventData: { ...additional, dataKeyId: randomUUID() },
        };
        // No `e`: append_audit_batch draws a version 4 event id, as it did for every record before sql/0045.
        return { s: `request-${requestId}`, ...(ids === 'random ids' ? {} : { e: uuidV7() }), t: 'AuditRecord', d: record, r: record.eventTime, f: {} };
      });

    const phases: Phase[] = [];
    const runPhase = async (ids: Ids): Promise<Phase> => {
      await monitor.query('CHECKPOINT');
      const before = await counters(monitor);
      const latencies: number[] = [];
      let records = 0;
      const started = performance.now();
      const deadline = started + seconds * 1000;
      await Promise.all(
        Array.from({ length: clients }, async () => {
          const client = await pool.connect();
          try {
            await client.query('SET synchronous_commit = on');
            while (performance.now() < deadline) {
              const t0 = performance.now();
              await client.query({
                name: 'bench-writes-append',
                text: `SELECT count(*) FROM append_audit_batch($1::jsonb, '{}'::text[])`,
                values: [JSON.stringify(batchOf(ids))],
              });
              latencies.push(performance.now() - t0);
              records += batchSize;
            }
          } finally {
            client.release();
          }
        }),
      );
      const elapsed = (performance.now() - started) / 1000;
      const after = await counters(monitor);
      latencies.sort((a, b) => a - b);
      const indexReads = [...after.indexReads]
        .map(([name, reads]): [string, number] => [name, (reads - (before.indexReads.get(name) ?? 0)) / records])
        .filter(([, perRecord]) => perRecord >= 0.001)
        .sort((a, b) => b[1] - a[1]);
      const phase = {
        ids,
        records,
        seconds: elapsed,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        walBytes: (after.bytes - before.bytes) / records,
        fpi: (after.fpi - before.fpi) / records,
        indexReads,
      };
      console.log(
        `${ids.padEnd(17)} ${(records / elapsed).toFixed(0).padStart(6)} records/s  p50 ${phase.p50.toFixed(1)} ms  p99 ${phase.p99.toFixed(1)} ms  ` +
          `WAL ${phase.walBytes.toFixed(0)} B/record  ${phase.fpi.toFixed(2)} full-page images/record  ` +
          `index pages read/record: ${indexReads.map(([n, r]) => `${n} ${r.toFixed(2)}`).join(', ') || 'none'}`,
      );
      return phase;
    };
    for (let round = 0; round < rounds; round++) {
      phases.push(await runPhase('random ids'));
      phases.push(await runPhase('time-ordered ids'));
    }
    const rate = (ids: Ids) => {
      const of = phases.filter((p) => p.ids === ids);
      return of.reduce((sum, p) => sum + p.records, 0) / of.reduce((sum, p) => sum + p.seconds, 0);
    };
    const mean = (ids: Ids, f: (p: Phase) => number) => {
      const of = phases.filter((p) => p.ids === ids);
      return of.reduce((sum, p) => sum + f(p), 0) / of.length;
    };
    console.log(
      `time-ordered against random ids, over ${rounds} round(s): ${(rate('time-ordered ids') / rate('random ids')).toFixed(2)}× the records/s, ` +
        `${(mean('time-ordered ids', (p) => p.walBytes) / mean('random ids', (p) => p.walBytes)).toFixed(2)}× the WAL per record, ` +
        `${(mean('time-ordered ids', (p) => p.fpi) / mean('random ids', (p) => p.fpi)).toFixed(2)}× the full-page images`,
    );
  } finally {
    await pool.end();
    await monitor.end();
    await stop();
  }
}

await main();
