/**
 * `npm run bench:audit`: latency of the forensic queries on the log
 * `npm run seed:audit` made, through the services (each query is a recorded
 * request, as in production), replay throughput, and the usage rollups' check. Figures, not a test.
 *
 * | variable | default | |
 * |---|---|---|
 * | DATABASE_URL | (the embedded server in SEED_AUDIT_DIR) | an owner URL of a seeded database |
 * | SEED_AUDIT_DIR | $TMPDIR/keyledger-audit-bench | |
 * | BENCH_RUNS | 30 | measured runs per query (usage over 90 days, replay: fewer) |
 * | BENCH_EXPLAIN | 1 | also write EXPLAIN (ANALYZE, BUFFERS) of one run of each query to SEED_AUDIT_DIR/explain.txt |
 * | BENCH_ONLY | | comma-separated: `replay`, `rollups`, and/or words of query names (`keyAsOf,report`); only those run |
 * | BENCH_REFOLD | 0 | 1: empty the usage rollups first, so the fold's figure is a rebuild over the whole log |
 *
 * `replay` times the key, alias and grant projections' replays; `rollups`, one
 * `replay --verify` with the usage rollups' check (it folds every audit record again).
 *
 * Each run picks other parameters (data key, tenant and day, principal), so the
 * figures are not one cached plan and page; the first two runs are warm-up.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { createKeyledger, type Keyledger } from '../src/app.ts';
import { systemClock } from '../src/clock.ts';
import { rootKeyFromBytes } from '../src/crypto/root-key.ts';
import { createLogger } from '../src/logger.ts';
import type { RequestContext } from '../src/service/context.ts';
import { ADMINISTRATOR_ACCESS } from '../src/service/identity-service.ts';
import { APP_ROLE, openDatabase, type Database, type Db } from '../src/store/database.ts';
import { installPgTypeParsers } from '../src/store/pg-types.ts';
import { replayProjections, type ReplayTimings } from '../src/store/replay.ts';
import { catchUpUsageRollup, resetUsageRollups } from '../src/store/usage-rollup.ts';
import { migrateToLatest } from '../src/store/migrations.ts';
import { auditBenchDatabase, MAIN_ACCOUNT, percentile, seedPrincipalArn, seedTenant, settingsDir, type SeedInfo } from './seed-audit.ts';

const log = (text: string) => console.log(`bench:audit ${text}`);

interface Figures {
  name: string;
  runs: number;
  p50: number;
  p95: number;
  max: number;
  note: string;
}

async function measure(name: string, runs: number, note: (last: unknown) => string, run: (i: number) => Promise<unknown>): Promise<Figures> {
  const times: number[] = [];
  let last: unknown;
  for (let i = 0; i < runs + 2; i++) {
    const t0 = performance.now();
    last = await run(i);
    if (i >= 2) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const f = { name, runs, p50: percentile(times, 50), p95: percentile(times, 95), max: times.at(-1)!, note: note(last) };
  log(`${name.padEnd(48)} p50 ${f.p50.toFixed(1).padStart(8)} ms  p95 ${f.p95.toFixed(1).padStart(8)} ms  ${f.note}`);
  return f;
}

/** A deterministic pseudo-random sequence, so two bench runs ask the same questions. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

async function main(): Promise<void> {
  installPgTypeParsers();
  const info = JSON.parse(await readFile(join(settingsDir(), 'seed.json'), 'utf8')) as SeedInfo;
  const runs = Number(process.env['BENCH_RUNS'] ?? 30);
  const only = (process.env['BENCH_ONLY'] ?? '')
    .split(',')
    .map((w) => w.trim().toLowerCase())
    .filter(Boolean);
  const wantedQuery = (name: string) => only.length === 0 || only.some((w) => w !== 'replay' && w !== 'rollups' && name.toLowerCase().includes(w));
  const anyQuery = only.length === 0 || only.some((w) => w !== 'replay' && w !== 'rollups');
  const wantReplay = only.length === 0 || only.includes('replay');
  const wantRollupCheck = only.length === 0 || only.includes('rollups');
  const explain = anyQuery && (process.env['BENCH_EXPLAIN'] ?? '1') === '1';
  const { url, stop } = await auditBenchDatabase(false);
  const owner = openDatabase(url, { as: 'owner', max: 2, applicationName: 'keyledger-bench-audit-owner' });
  const appDb = openDatabase(url, { as: 'app', max: 4, applicationName: 'keyledger-bench-audit' });
  const plans: string[] = [];
  const explainPool = new pg.Pool({
    connectionString: url,
    max: 1,
    // auto_explain as notices to this client: the plans of the service's own statements.
    options:
      `-c role=${APP_ROLE} -c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 -c ` +
      `auto_explain.log_analyze=on -c auto_explain.log_buffers=on -c auto_explain.log_level=notice -c client_min_messages=notice`,
  });
  explainPool.on('error', () => {});
  explainPool.on('connect', (client) => client.on('notice', (n) => plans.push(n.message ?? '')));
  const explainDb: Db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: explainPool }) });
  try {
    // A log seeded by an older checkout: the migrations since (timed: some fill a rollup from the log).
    const m0 = performance.now();
    const applied = await migrateToLatest(owner);
    if (applied.length > 0) log(`migrated: ${applied.join(', ')} in ${((performance.now() - m0) / 1000).toFixed(1)} s`);
    const { rows: sizes } = await sql<{ records: string; size: string; indexes: string }>`
      SELECT (SELECT count(*) FROM events WHERE type = 'AuditRecord') AS records,
             pg_size_pretty(pg_table_size('events')) AS size, pg_size_pretty(pg_indexes_size('events')) AS indexes`.execute(owner);
    log(
      `log: ${Number(sizes[0]!.records).toLocaleString('en')} audit records (seeded ${info.events.toLocaleString('en')} over ${info.days} days, ` +
        `${info.keys} keys, ${info.principals} principals, ${info.tenants} tenants); events ${sizes[0]!.size} + indexes ${sizes[0]!.indexes}`,
    );
    log(`machine: ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}`);
    if (anyQuery || wantRollupCheck) {
      // What the worker does continuously: fold the records not yet in the usage rollups (all of
      // them after a fresh seed). Timed, as the rollups' fold throughput.
      if (process.env['BENCH_REFOLD'] === '1') await resetUsageRollups(owner);
      const t0 = performance.now();
      const folded = await catchUpUsageRollup(appDb, { batchSize: 200_000 });
      const seconds = (performance.now() - t0) / 1000;
      log(
        `usage rollups: folded ${folded.toLocaleString('en')} audit records ` +
          `in ${seconds.toFixed(1)} s${folded ? ` (${Math.round(folded / seconds).toLocaleString('en')} records/s)` : ''}`,
      );
    }

    const make = (db: Db): Keyledger =>
      createKeyledger({ db, rootKey: rootKeyFromBytes(randomBytes(32)), clock: systemClock, logger: createLogger('silent'), region: 'us-east-1' });
    type Query = { name: string; runs: number; note: (last: unknown) => string; run: (a: Keyledger) => Promise<unknown> };
    const queries: Query[] = [];
    const figures: Figures[] = [];
    if (anyQuery) {
      const app = make(appDb);
      // An investigator in the main account, with real credentials.
      const op = () => ({ requestId: randomUUID(), invokedBy: 'keyledger-bench-audit' });
      const { principalArn } = await app.identity.createPrincipal(op(), { accountId: MAIN_ACCOUNT, type: 'user', name: `investigator-${Date.now()}` });
      await app.identity.putPrincipalPolicy(op(), { principalArn, policyName: 'admin', policyDocument: ADMINISTRATOR_ACCESS });
      const key = await app.identity.createAccessKey(op(), { principalArn });
      const auth = await app.identity.authenticate(key.accessKeyId, key.secretAccessKey);
      if (!auth.ok) throw new Error('cannot authenticate the investigator');
      const ctx = (): RequestContext => ({ requestId: randomUUID(), caller: auth.caller, sourceIp: '127.0.0.1', userAgent: 'keyledger-bench-audit' });

      const start = new Date(info.start).getTime();
      const end = new Date(info.end).getTime();
      const DAY = 86_400_000;
      const dataKeys = Math.floor(info.events / 5);
      const random = rng(42);
      const pick = (n: number) => Math.floor(random() * n);
      const mainPrincipal = () => seedPrincipalArn(pick(info.mainPrincipals), info.mainPrincipals);

      queries.push(
        {
          name: 'dataKey lineage',
          runs,
          note: (l) => `${(l as { useCount?: number } | null)?.useCount ?? 0} uses (last run)`,
          run: async (a) => {
            // A data key of the main account (the generator's principal hash decides the account: retry).
            for (;;) {
              const d = pick(dataKeys);
              const id = (await import('node:crypto')).createHash('md5').update(`dk${d}`).digest('hex');
              const lineage = await a.audit.dataKey(ctx(), { dataKeyId: id });
              if (lineage) return lineage;
            }
          },
        },
        {
          name: 'auditEvents first page, context pair, one day',
          runs,
          note: (p) => `${(p as { edges: unknown[] }).edges.length} records on the page`,
          run: (a) => {
            const day = start + (1 + pick(info.days - 2)) * DAY;
            return a.audit.auditEvents(ctx(), {
              filter: { encryptionContext: { tenant: seedTenant(pick(info.tenants)) }, from: new Date(day), to: new Date(day + DAY) },
              first: 50,
            });
          },
        },
        {
          name: 'auditEvents first page, no filter',
          runs,
          note: (p) => `${(p as { edges: unknown[] }).edges.length} records`,
          run: (a) => a.audit.auditEvents(ctx(), { first: 50 }),
        },
        {
          name: 'auditEvents first page, key + Decrypt',
          runs,
          note: (p) => `${(p as { edges: unknown[] }).edges.length} records`,
          run: (a) => a.audit.auditEvents(ctx(), { filter: { key: 'alias/seed-' + pick(30), eventNames: ['Decrypt'] }, first: 50 }),
        },
        {
          name: 'principalActivity, 30 days',
          runs,
          note: (p) => `${(p as { total: number }).total.toLocaleString('en')} requests`,
          run: (a) => {
            const to = end - pick(info.days - 30) * DAY;
            return a.audit.principalActivity(ctx(), { principalArn: mainPrincipal(), from: new Date(to - 30 * DAY), to: new Date(to) });
          },
        },
        {
          name: 'keyAsOf (policy, aliases, grants) 30 days ago',
          runs,
          note: (k) => `${(k as { aliases: unknown[] }).aliases.length} aliases (last run)`,
          run: (a) => a.audit.keyAsOf(ctx(), { keyId: 'alias/seed-' + pick(30), asOf: new Date(end - 30 * DAY) }),
        },
        {
          name: 'keyHistory',
          runs,
          note: (h) => `${(h as { entries: unknown[] }).entries.length} lifecycle events (last run)`,
          run: (a) => a.audit.keyHistory(ctx(), { keyId: 'alias/seed-' + pick(30) }),
        },
        {
          name: 'complianceReport, 30 days',
          runs: Math.max(3, Math.floor(runs / 6)),
          note: (r) => `${(r as { findings: unknown[] }).findings.length} findings, ${(r as { keys: unknown[] }).keys.length} keys`,
          // Up to now, as an auditor asks for it (the seed's log ends when the seed ran).
          run: (a) => a.reports.complianceReport(ctx(), { from: new Date(end - 30 * DAY), to: new Date() }),
        },
        {
          name: 'usageStatistics by DAY, 90 days',
          runs: Math.max(3, Math.floor(runs / 6)),
          note: (u) => `${(u as { groups: unknown[] }).groups.length} groups`,
          run: (a) => a.audit.usageStatistics(ctx(), { groupBy: ['DAY'], filter: { from: new Date(start), to: new Date(end + DAY) } }),
        },
        {
          name: 'usageStatistics by KEY x OPERATION, 1 UTC day',
          runs: Math.max(3, Math.floor(runs / 3)),
          note: (u) => `${(u as { groups: unknown[] }).groups.length} groups`,
          run: (a) => {
            // A calendar day, as a person asks it: whole days come from the daily rollup
            // (a 24-hour window across two days would read its two partial days from the log).
            const day = Math.floor(start / DAY) * DAY + (1 + pick(info.days - 2)) * DAY;
            return a.audit.usageStatistics(ctx(), { groupBy: ['KEY', 'OPERATION'], filter: { from: new Date(day), to: new Date(day + DAY) } });
          },
        },
      );

      queries.splice(0, queries.length, ...queries.filter((q) => wantedQuery(q.name)));
      for (const q of queries) figures.push(await measure(q.name, q.runs, q.note, () => q.run(app)));
    }

    if (wantReplay) {
      // Replay in one REPEATABLE READ transaction: comparing (verify); rebuilding
      // where nothing differs; and rebuilding into emptied projections, as after
      // restoring only the log (the emptying is not timed). The split is the p50 run's.
      const modes = [
        { mode: 'verify', verify: true, empty: false },
        { mode: 'rebuild', verify: false, empty: false },
        { mode: 'rebuild from empty', verify: false, empty: true },
      ];
      for (const { mode, verify, empty } of modes) {
        let replayed = 0;
        const splits: { ms: number; timings: ReplayTimings }[] = [];
        const replay = await measure(
          `replay (${mode})`,
          Math.max(3, Math.floor(runs / 10)),
          () => `${replayed.toLocaleString('en')} events`,
          async () => {
            if (empty) await sql`DELETE FROM key_tags; DELETE FROM keys; DELETE FROM aliases; DELETE FROM grants`.execute(owner);
            const t0 = performance.now();
            const r = await replayProjections(owner, { verify, rollups: false });
            splits.push({ ms: performance.now() - t0, timings: r.timings });
            if (r.differences.length > 0 && !empty) throw new Error(`replay differs: ${r.differences[0]}`);
            replayed = r.events;
            return r;
          },
        );
        figures.push(replay);
        const measured = splits.slice(2).sort((a, b) => a.ms - b.ms);
        const p50 = measured[Math.ceil(measured.length / 2) - 1]!;
        const { fold, write, compare } = p50.timings;
        const other = p50.ms - fold - write - compare;
        log(
          `replay (${mode}) throughput: ${Math.round(replayed / (p50.ms / 1000)).toLocaleString('en')} key events folded/s at p50, ` +
            `${p50.ms.toFixed(1)} ms in all (${replayed.toLocaleString('en')} key, alias and grant events folded; audit records are not read)`,
        );
        log(
          `replay (${mode}) split (p50 run): read and fold ${fold.toFixed(1)} ms, compare ${compare.toFixed(1)} ms, ` +
            `write ${write.toFixed(1)} ms, other (connection, begin, commit) ${other.toFixed(1)} ms`,
        );
      }
    }

    if (wantRollupCheck) {
      // Once, not p50 of runs: it folds every audit record again (minutes at 10M records).
      const t0 = performance.now();
      const r = await replayProjections(owner, { verify: true });
      const ms = performance.now() - t0;
      if (r.differences.length > 0) throw new Error(`replay --verify differs: ${r.differences[0]}`);
      log(
        `replay --verify with the usage rollups' check: ${(ms / 1000).toFixed(1)} s in all, of which the check ${(r.timings.rollups / 1000).toFixed(1)} s ` +
          `(${r.auditRecords.toLocaleString('en')} audit records, ${Math.round(r.auditRecords / (r.timings.rollups / 1000)).toLocaleString('en')} records/s)`,
      );
    }

    if (explain) {
      const explained = make(explainDb);
      const sections: string[] = [];
      for (const q of queries) {
        plans.length = 0;
        await q.run(explained);
        sections.push(
          `==== ${q.name}\n` +
            plans
              .filter(
                (p) => !/pg_locks|INSERT INTO "?events|insert into "events"|"streams"|select "principal|from "access_keys"|from "principal_policies"/i.test(p),
              )
              .join('\n\n'),
        );
      }
      const file = join(settingsDir(), 'explain.txt');
      await writeFile(file, sections.join('\n\n'));
      log(`EXPLAIN (ANALYZE, BUFFERS) of one run of each query: ${file}`);
    }
    console.log('\n| query | runs | p50 ms | p95 ms | |\n|---|---|---|---|---|');
    for (const f of figures) console.log(`| ${f.name} | ${f.runs} | ${f.p50.toFixed(1)} | ${f.p95.toFixed(1)} | ${f.note} |`);
  } finally {
    await explainDb.destroy();
    await appDb.destroy();
    await owner.destroy();
    await stop();
  }
}

main().catch((error: unknown) => {
  console.error(`bench:audit FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
