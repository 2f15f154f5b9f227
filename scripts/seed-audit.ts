/**
 * `npm run seed:audit`: a realistic audit log, fast, for `npm run bench:audit`.
 *
 * Keys, aliases and their lifecycle events go in through Kysely (tens of
 * thousands of rows). The usage records (millions) are generated here, in Node,
 * and streamed into `events` with COPY ... FROM STDIN (text format) over two
 * connections at once, one transaction per batch. The events table's secondary
 * indexes are dropped before the load and rebuilt after it, two at a time (on
 * two connections, with a large maintenance_work_mem and a parallel worker
 * each), after a VACUUM and before an ANALYZE. Then a replay builds the key and
 * alias projections from the log, and the usage rollups are folded (as a running
 * worker would have).
 *
 * The embedded server the script starts is a throwaway: for the load it runs
 * with wal_level=minimal (so CREATE INDEX writes no WAL), fsync, full-page
 * writes and autovacuum off and checkpoints pushed out; the script puts those
 * back before it stops the server, so bench:audit runs on ordinary settings.
 * A DATABASE_URL's server is never reconfigured.
 *
 * The log: one main account (90% of keys, principals and requests) and a second
 * one; each principal works with ~5 keys from its own /24; each GenerateDataKey
 * makes a data key (id md5('dk' || n), n = row / 5) that is decrypted (mostly by
 * the same principal) a few times in the following days; encryption contexts
 * {tenant, purpose} from a few hundred tenants; ~1.2% AccessDeniedException,
 * ~0.8% other failures.
 *
 * | variable | default | |
 * |---|---|---|
 * | DATABASE_URL | (embedded Postgres in SEED_AUDIT_DIR) | an owner URL of an EMPTY database |
 * | SEED_AUDIT_DIR | $TMPDIR/keyledger-audit-bench | embedded server's home, kept for bench:audit |
 * | SEED_EVENTS | 1000000 | usage records (10,000,000: ~17 minutes on 2 busy shared cores, 24 GB on disk) |
 * | SEED_KEYS | 1000 | |
 * | SEED_PRINCIPALS | 200 | |
 * | SEED_TENANTS | 300 | |
 * | SEED_DAYS | 90 | span, ending now |
 * | SEED_LIFECYCLE_PER_KEY | 20 | lifecycle events per key (tags, descriptions, rotations ...) |
 * | SEED_BATCH | 500000 | records per COPY transaction (two run at once) |
 * | SEED_MAINTENANCE_WORK_MEM | 2GB | per index-building connection (two) |
 *
 * With the embedded server an existing seed is replaced.
 */
import { hash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { keyArn } from '../src/domain/arn.ts';
import { defaultKeyPolicy, keyStreamId } from '../src/domain/key.ts';
import { aliasStreamId } from '../src/domain/alias.ts';
import { copyText } from '../src/store/postgres-text.ts';
import { openDatabase, type Db } from '../src/store/database.ts';
import { installPgTypeParsers } from '../src/store/pg-types.ts';
import { EmbeddedPostgres, embeddedServerUser } from '../src/store/embedded-postgres.ts';
import { freePort } from '../src/store/free-port.ts';
import { migrateToLatest } from '../src/store/migrations.ts';
import { replayProjections } from '../src/store/replay.ts';
import { catchUpUsageRollup } from '../src/store/usage-rollup.ts';

export const MAIN_ACCOUNT = '111122223333';
export const SECOND_ACCOUNT = '444455556666';
export const REGION = 'us-east-1';
const DATABASE = 'keyledger_audit';

/** What the seed wrote, for the bench (seed.json beside the embedded server, or in SEED_AUDIT_DIR). */
export interface SeedInfo {
  events: number;
  keys: number;
  principals: number;
  mainPrincipals: number;
  tenants: number;
  days: number;
  start: string;
  end: string;
  lifecycleEvents: number;
  seconds: { lifecycle: number; usage: number; indexes: number; vacuum: number; replay: number; rollup?: number };
  /** Usage records per second of the COPY load. */
  usageRowsPerSecond?: number;
  /** Seconds each rebuilt index took (two were built at a time). */
  indexSeconds?: Record<string, number>;
}

export const settingsDir = (): string => process.env['SEED_AUDIT_DIR'] || join(tmpdir(), 'keyledger-audit-bench');

/** The embedded server's settings for a bench box (the seed's durability does not matter). */
const BENCH_SETTINGS: Record<string, string> = {
  shared_buffers: '1GB',
  synchronous_commit: 'off',
  max_wal_size: '8GB',
};

/**
 * Server settings for the load only, on the embedded server: the seed's
 * durability does not matter (a crash means seeding again). wal_level=minimal
 * lets CREATE INDEX skip WAL; max_wal_size bounds the WAL kept on disk (a
 * 10M seed writes ~15 GB of it), and without full-page writes a checkpoint
 * costs little (data checksums still log a page image when VACUUM first sets
 * hint bits on a page written before the last checkpoint). Put back to
 * BENCH_SETTINGS (or the defaults) before the server stops, so the bench runs
 * on those.
 */
const BULK_LOAD_SETTINGS: Record<string, string> = {
  wal_level: 'minimal',
  max_wal_senders: '0',
  fsync: 'off',
  full_page_writes: 'off',
  max_wal_size: '6GB',
  checkpoint_timeout: '1d',
  autovacuum: 'off',
  shared_buffers: '4GB',
  wal_buffers: '64MB',
};

/**
 * The seeded database: DATABASE_URL, or the embedded server in SEED_AUDIT_DIR
 * (started here, stopped by `stop`). `fresh` re-initialises the embedded server;
 * with `bulkLoad` it also runs with BULK_LOAD_SETTINGS until `endBulkLoad`.
 */
export async function auditBenchDatabase(
  fresh: boolean,
  options: { bulkLoad?: boolean } = {},
): Promise<{ url: string; stop: () => Promise<void>; logFile: string | null; endBulkLoad: () => Promise<void> }> {
  const fromEnv = process.env['DATABASE_URL'];
  if (fromEnv) return { url: fromEnv, stop: async () => {}, logFile: null, endBulkLoad: async () => {} };
  const dir = settingsDir();
  if (fresh) await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const secretFile = join(dir, 'password');
  let password: string;
  try {
    password = (await readFile(secretFile, 'utf8')).trim();
  } catch {
    password = randomBytes(18).toString('base64url');
    await writeFile(secretFile, password, { mode: 0o600 });
  }
  const logFile = join(dir, 'postgres.log');
  const owner = await embeddedServerUser();
  if (owner) await import('node:fs/promises').then((fs) => fs.chown(dir, owner.uid, owner.gid).catch(() => {}));
  const bulkLoad = fresh && options.bulkLoad === true;
  for (let attempt = 1; ; attempt++) {
    const server = new EmbeddedPostgres({ dataDir: join(dir, 'data'), logFile, password, port: await freePort() });
    if (!(await server.initialised)) await server.initialise();
    try {
      await server.start();
      if (fresh) {
        const admin = new pg.Client({ connectionString: server.url('postgres') });
        await admin.connect();
        try {
          const settings = bulkLoad ? { ...BENCH_SETTINGS, ...BULK_LOAD_SETTINGS } : BENCH_SETTINGS;
          for (const [name, value] of Object.entries(settings)) await admin.query(`ALTER SYSTEM SET ${name} = '${value}'`);
          await admin.query(`CREATE DATABASE ${DATABASE}`);
        } finally {
          await admin.end();
        }
        // shared_buffers and wal_level need a restart.
        await server.stop();
        await server.start();
      }
      const endBulkLoad = async () => {
        if (!bulkLoad) return;
        const admin = new pg.Client({ connectionString: server.url('postgres') });
        await admin.connect();
        try {
          // Back to the bench settings, from the next start on.
          for (const name of Object.keys(BULK_LOAD_SETTINGS)) {
            const value = BENCH_SETTINGS[name];
            await admin.query(value === undefined ? `ALTER SYSTEM RESET ${name}` : `ALTER SYSTEM SET ${name} = '${value}'`);
          }
        } finally {
          await admin.end();
        }
      };
      return { url: server.url(DATABASE), stop: () => server.stop(), logFile, endBulkLoad };
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

/** A positive integer from the environment variable `name`, else `fallback`. */
export function positiveIntSetting(name: string, fallback: number): number {
  const v = process.env[name];
  const n = v ? Number(v) : fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}

/** The nearest-rank `p`th percentile (0–100) of ascending `sorted`; NaN when it is empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function settings() {
  const int = positiveIntSetting;
  const maintenanceWorkMem = process.env['SEED_MAINTENANCE_WORK_MEM'] || '2GB';
  if (!/^\d+\s*(kB|MB|GB)$/.test(maintenanceWorkMem)) throw new Error('SEED_MAINTENANCE_WORK_MEM must be like 2GB or 512MB');
  return {
    events: int('SEED_EVENTS', 1_000_000),
    keys: int('SEED_KEYS', 1000),
    principals: int('SEED_PRINCIPALS', 200),
    tenants: int('SEED_TENANTS', 300),
    days: int('SEED_DAYS', 90),
    lifecyclePerKey: int('SEED_LIFECYCLE_PER_KEY', 20),
    batch: int('SEED_BATCH', 500_000),
    maintenanceWorkMem,
  };
}

const log = (text: string) => console.log(`seed:audit ${text}`);
const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const count = (n: number) => Math.round(n).toLocaleString('en');

/** The deterministic ids the generator gives things, shared with the bench. */
export const seedKeyId = (i: number): string => {
  const h = Buffer.from(`${String(i).padStart(12, '0')}`)
    .toString('hex')
    .padStart(32, '0')
    .slice(-32);
  return `5eed0000-0000-4000-8000-${h.slice(-12)}`;
};
export const seedPrincipalArn = (p: number, mainPrincipals: number): string =>
  `arn:aws:iam::${p < mainPrincipals ? MAIN_ACCOUNT : SECOND_ACCOUNT}:user/svc-${String(p).padStart(3, '0')}`;
export const seedTenant = (n: number): string => `tenant-${String(n).padStart(3, '0')}`;
/** A data key's id: md5('dk' || n) in hex, n = (usage row) / 5 of the GenerateDataKey that made it. */
export const seedDataKeyId = (n: number): string => hash('md5', `dk${n}`, 'hex');

async function seed(): Promise<void> {
  const s = settings();
  const started = performance.now();
  const embedded = !process.env['DATABASE_URL'];
  const { url, stop, endBulkLoad } = await auditBenchDatabase(embedded, { bulkLoad: true });
  const owner = openDatabase(url, { as: 'owner', max: 4, applicationName: 'keyledger-seed-audit' });
  try {
    log('migrating');
    await migrateToLatest(owner);
    const mainKeys = Math.max(1, Math.round(s.keys * 0.9));
    const mainPrincipals = Math.max(1, Math.round(s.principals * 0.9));
    const end = new Date();
    const start = new Date(end.getTime() - s.days * 86_400_000);

    let t = performance.now();
    await owner
      .insertInto('accounts')
      .values([
        { account_id: MAIN_ACCOUNT, name: 'seed-main', created_at: start },
        { account_id: SECOND_ACCOUNT, name: 'seed-second', created_at: start },
      ])
      .onConflict((oc) => oc.doNothing())
      .execute();
    const materials = await seedKeys(owner, s, mainKeys, start, end);
    const lifecycleSeconds = (performance.now() - t) / 1000;
    log(`${materials.events} key and alias events in ${lifecycleSeconds.toFixed(1)} s`);

    // Drop the events table's secondary indexes; rebuild after the load.
    const { rows: indexes } = await sql<{ indexname: string; indexdef: string }>`
      SELECT i.indexname, i.indexdef FROM pg_indexes i
       WHERE i.tablename = 'events' AND i.schemaname = current_schema()
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`.execute(owner);
    for (const i of indexes) await sql`DROP INDEX ${sql.id(i.indexname)}`.execute(owner);

    t = performance.now();
    const plan: UsagePlan = { ...s, mainKeys, mainPrincipals, start, end, keyArns: materials.arns, keyMaterials: materials.ids };
    const usageSeconds = await loadUsage(url, plan, s.batch);
    const usageRate = s.events / usageSeconds;
    log(`usage: ${count(s.events)} records in ${usageSeconds.toFixed(1)} s (${count(usageRate)} rows/s)`);

    // VACUUM before the index builds: it sets the hint bits and the visibility
    // map while only the three unique btrees exist (no index cleanup scans of
    // the GIN indexes); ANALYZE after, as it also samples index expressions.
    t = performance.now();
    await sql`VACUUM events`.execute(owner);
    let vacuumSeconds = (performance.now() - t) / 1000;
    log(`vacuum ${vacuumSeconds.toFixed(1)} s`);

    t = performance.now();
    const indexSeconds = await buildIndexes(url, indexes, s.maintenanceWorkMem);
    const indexesSeconds = (performance.now() - t) / 1000;
    log(`indexes: ${indexes.length} in ${indexesSeconds.toFixed(1)} s`);

    t = performance.now();
    await sql`ANALYZE events`.execute(owner);
    const analyzeSeconds = (performance.now() - t) / 1000;
    vacuumSeconds += analyzeSeconds;
    log(`analyze ${analyzeSeconds.toFixed(1)} s`);

    t = performance.now();
    const replay = await replayProjections(owner, { verify: false });
    const replaySeconds = (performance.now() - t) / 1000;
    log(`replay built ${replay.keys} keys, ${replay.aliases} aliases from ${replay.events} events in ${replaySeconds.toFixed(2)} s`);

    // What a running worker would have done: fold the records into the usage rollups.
    t = performance.now();
    const folded = await catchUpUsageRollup(owner, { batchSize: 200_000 });
    const rollupSeconds = (performance.now() - t) / 1000;
    log(`usage rollups folded ${count(folded)} records in ${rollupSeconds.toFixed(1)} s`);

    const info: SeedInfo = {
      events: s.events,
      keys: s.keys,
      principals: s.principals,
      mainPrincipals,
      tenants: s.tenants,
      days: s.days,
      start: start.toISOString(),
      end: end.toISOString(),
      lifecycleEvents: materials.events,
      seconds: {
        lifecycle: lifecycleSeconds,
        usage: usageSeconds,
        indexes: indexesSeconds,
        vacuum: vacuumSeconds,
        replay: replaySeconds,
        rollup: rollupSeconds,
      },
      usageRowsPerSecond: Math.round(usageRate),
      indexSeconds,
    };
    await mkdir(settingsDir(), { recursive: true });
    await writeFile(join(settingsDir(), 'seed.json'), JSON.stringify(info, null, 2));
    const { rows: size } = await sql<{ size: string; total: string }>`
      SELECT pg_size_pretty(pg_table_size('events')) AS size, pg_size_pretty(pg_total_relation_size('events')) AS total`.execute(owner);
    log(
      `done in ${((performance.now() - started) / 1000).toFixed(0)} s: ${count(s.events)} records ` +
        `(copy ${usageSeconds.toFixed(0)} s, indexes ${indexesSeconds.toFixed(0)} s, vacuum and analyze ${vacuumSeconds.toFixed(0)} s); ` +
        `events table ${size[0]!.size}, with indexes ${size[0]!.total}`,
    );
  } finally {
    await owner.destroy();
    await endBulkLoad().catch((error: unknown) => log(`could not reset the bulk-load settings: ${String(error)}`));
    await stop();
  }
}

/** Keys (KeyCreated + lifecycle churn) and aliases (some moved), through the event store's tables. */
async function seedKeys(
  db: Db,
  s: ReturnType<typeof settings>,
  mainKeys: number,
  start: Date,
  end: Date,
): Promise<{ arns: string[]; ids: string[]; events: number }> {
  const span = end.getTime() - start.getTime();
  const rows: { stream_id: string; stream_version: bigint; event_id: string; type: string; data: string; metadata: string; recorded_at: Date }[] = [];
  const streams: { stream_id: string; version: bigint }[] = [];
  const arns: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < s.keys; i++) {
    const accountId = i < mainKeys ? MAIN_ACCOUNT : SECOND_ACCOUNT;
    const keyId = seedKeyId(i);
    const arn = keyArn(REGION, accountId, keyId);
    const keyMaterialId = hex(32);
    arns.push(arn);
    ids.push(keyMaterialId);
    const streamId = keyStreamId(keyId);
    let version = 0n;
    // Created before the window, so every usage record's key exists.
    let at = start.getTime() - 86_400_000 + i * 1000;
    const push = (type: string, data: unknown) => {
      version += 1n;
      rows.push({
        stream_id: streamId,
        stream_version: version,
        event_id: randomUUID(),
        type,
        data: JSON.stringify(data),
        metadata: '{}',
        recorded_at: new Date(at),
      });
    };
    push('KeyCreated', {
      keyId,
      accountId,
      arn,
      description: `seed key ${i}`,
      keyUsage: 'ENCRYPT_DECRYPT',
      keySpec: 'SYMMETRIC_DEFAULT',
      origin: 'AWS_KMS',
      keyManager: 'CUSTOMER',
      multiRegion: false,
      policy: defaultKeyPolicy(accountId),
      tags: [{ tagKey: 'owner', tagValue: `team-${i % 17}` }],
      keyMaterialId,
    });
    for (let j = 1; j < s.lifecyclePerKey; j++) {
      at += Math.floor(span / s.lifecyclePerKey);
      switch (j % 6) {
        case 0:
          push('KeyDescriptionUpdated', { description: `seed key ${i} rev ${j}` });
          break;
        case 1:
          push('KeyTagged', { tags: [{ tagKey: `t${j % 5}`, tagValue: `v${j}` }] });
          break;
        case 2:
          push('KeyUntagged', { tagKeys: [`t${(j + 3) % 5}`] });
          break;
        case 3:
          push('KeyRotationEnabled', { rotationPeriodInDays: 90 + (j % 5), nextRotationDate: new Date(at + 90 * 86_400_000).toISOString() });
          break;
        case 4:
          push('KeyRotated', { keyMaterialId: hex(32), rotationType: 'ON_DEMAND', nextRotationDate: new Date(at + 90 * 86_400_000).toISOString() });
          break;
        case 5:
          push(j % 12 === 5 ? 'KeyDisabled' : 'KeyEnabled', {});
          break;
      }
    }
    // Leave every key Enabled at the end, whatever the churn did.
    push('KeyEnabled', {});
    streams.push({ stream_id: streamId, version });
  }
  // Aliases: ~0.3 per key in the main account, a third of them moved once.
  const aliasCount = Math.max(1, Math.round(mainKeys * 0.3));
  for (let a = 0; a < aliasCount; a++) {
    const aliasName = `alias/seed-${a}`;
    const streamId = aliasStreamId(MAIN_ACCOUNT, aliasName);
    const target = seedKeyId(a % mainKeys);
    const created = start.getTime() - 3_600_000 + a * 1000;
    rows.push({
      stream_id: streamId,
      stream_version: 1n,
      event_id: randomUUID(),
      type: 'AliasCreated',
      data: JSON.stringify({ accountId: MAIN_ACCOUNT, aliasName, targetKeyId: target }),
      metadata: '{}',
      recorded_at: new Date(created),
    });
    let version = 1n;
    if (a % 3 === 0) {
      const moved = seedKeyId((a + 7) % mainKeys);
      version = 2n;
      rows.push({
        stream_id: streamId,
        stream_version: 2n,
        event_id: randomUUID(),
        type: 'AliasUpdated',
        data: JSON.stringify({ targetKeyId: moved, previousTargetKeyId: target }),
        metadata: '{}',
        recorded_at: new Date(start.getTime() + span / 2 + a * 1000),
      });
    }
    streams.push({ stream_id: streamId, version });
  }
  // In recorded order, so that global_position follows time as it does live.
  rows.sort((x, y) => x.recorded_at.getTime() - y.recorded_at.getTime());
  for (let i = 0; i < rows.length; i += 2000) {
    await db
      .insertInto('events')
      .values(rows.slice(i, i + 2000))
      .execute();
  }
  for (let i = 0; i < streams.length; i += 2000) {
    await db
      .insertInto('streams')
      .values(streams.slice(i, i + 2000))
      .execute();
  }
  return { arns, ids, events: rows.length };
}

/** What the usage generator needs: the settings, the accounts' split and the keys made by seedKeys. */
interface UsagePlan {
  events: number;
  keys: number;
  principals: number;
  tenants: number;
  days: number;
  mainKeys: number;
  mainPrincipals: number;
  start: Date;
  end: Date;
  keyArns: string[];
  keyMaterials: string[];
}

const COPY_USAGE = 'COPY events (stream_id, stream_version, event_id, type, data, metadata, recorded_at) FROM STDIN';

/**
 * Loads plan.events usage records in batches of `batch` rows, each a COPY in
 * its own transaction, two at a time on two connections. Returns the seconds.
 */
async function loadUsage(url: string, plan: UsagePlan, batch: number): Promise<number> {
  const t = performance.now();
  const starts: number[] = [];
  for (let from = 0; from < plan.events; from += batch) starts.push(from);
  let generated = 0;
  let committed = 0;
  const progress = setInterval(() => {
    const seconds = (performance.now() - t) / 1000;
    log(`usage ${count(generated)} / ${count(plan.events)} sent, ${count(committed)} committed (${count(generated / seconds)} rows/s)`);
  }, 10_000);
  const line = usageLine(plan);
  const worker = async (): Promise<void> => {
    const client = new pg.Client({ connectionString: url, application_name: 'keyledger-seed-audit-copy' });
    await client.connect();
    try {
      // The seed's durability does not matter; on the embedded server it is already off.
      await client.query('SET synchronous_commit = off');
      // Skips the per-row AFTER INSERT trigger that NOTIFYs audit listeners (no
      // one listens to a seed): a superuser setting, so only where we may.
      await client.query('SET session_replication_role = replica').catch(() => log('(not a superuser: the audit NOTIFY trigger fires for every row)'));
      for (let from = starts.shift(); from !== undefined; from = starts.shift()) {
        const n = Math.min(batch, plan.events - from);
        await client.query('BEGIN');
        try {
          const rows = function* (): Generator<string> {
            // ~1 MB chunks; pipeline() waits whenever the socket is full.
            for (let i = from, to = from + n; i < to;) {
              let chunk = '';
              const stop = Math.min(to, i + 1000);
              generated += stop - i;
              for (; i < stop; i++) chunk += line(i);
              yield chunk;
            }
          };
          await pipeline(Readable.from(rows()), client.query(copyFrom(COPY_USAGE)));
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw error;
        }
        committed += n;
        const seconds = (performance.now() - t) / 1000;
        log(`usage ${count(committed)} / ${count(plan.events)} committed (${count(committed / seconds)} rows/s)`);
      }
    } finally {
      await client.end();
    }
  };
  try {
    await Promise.all([worker(), worker()]);
  } finally {
    clearInterval(progress);
  }
  return (performance.now() - t) / 1000;
}

/**
 * Postgres's hashint8(v) (seed 0) and the low 32 bits of hashint8extended(v, seed)
 * (Bob Jenkins' lookup3 final mix over the folded 64-bit value), as signed
 * 32-bit integers: `hashint8(v) & 2147483647` is `pgHashInt8(v) & 0x7fffffff`.
 * The generator's per-data-key choices were made with these in SQL; they stay
 * the same functions, so a seed made with either generator has the same shape.
 */
export function pgHashInt8(v: number, seed = 0): number {
  const lo = (v % 0x1_0000_0000) >>> 0;
  const hi = Math.floor(v / 0x1_0000_0000) >>> 0;
  const k = (lo ^ hi) >>> 0;
  let a = (0x9e3779b9 + 4 + 3923095) | 0;
  let b = a;
  let c = a;
  const rot = (x: number, r: number) => (x << r) | (x >>> (32 - r));
  if (seed !== 0) {
    a = (a + Math.floor(seed / 0x1_0000_0000)) | 0;
    b = (b + (seed >>> 0)) | 0;
    // mix(a, b, c)
    a = (a - c) | 0;
    a ^= rot(c, 4);
    c = (c + b) | 0;
    b = (b - a) | 0;
    b ^= rot(a, 6);
    a = (a + c) | 0;
    c = (c - b) | 0;
    c ^= rot(b, 8);
    b = (b + a) | 0;
    a = (a - c) | 0;
    a ^= rot(c, 16);
    c = (c + b) | 0;
    b = (b - a) | 0;
    b ^= rot(a, 19);
    a = (a + c) | 0;
    c = (c - b) | 0;
    c ^= rot(b, 4);
    b = (b + a) | 0;
  }
  a = (a + k) | 0;
  // final(a, b, c)
  c ^= b;
  c = (c - rot(b, 14)) | 0;
  a ^= c;
  a = (a - rot(c, 11)) | 0;
  b ^= a;
  b = (b - rot(a, 25)) | 0;
  c ^= b;
  c = (c - rot(b, 16)) | 0;
  a ^= c;
  a = (a - rot(c, 4)) | 0;
  b ^= a;
  b = (b - rot(a, 14)) | 0;
  c ^= b;
  c = (c - rot(b, 24)) | 0;
  return c;
}

/**
 * The usage record i (0 <= i < plan.events) as one COPY text line. Row i's
 * time is start + i/N of the span (so log order follows time); a GenerateDataKey
 * every 5th row makes data key d = i/5 (id md5('dk' || d)); Decrypt and ReEncrypt
 * rows pick a data key of the last ~3 days and take its key, tenant and (80%)
 * its principal. The records have the fields src/service/audit.ts writes for
 * these operations (nulls left out).
 */
function usageLine(plan: UsagePlan): (i: number) => string {
  const { events, principals, tenants, mainKeys, mainPrincipals, keyArns, keyMaterials } = plan;
  const window = Math.max(1, Math.round((events / 5 / plan.days) * 3)); // data keys made in ~3 days
  const secondKeys = Math.max(1, plan.keys - mainKeys);
  const secondPrincipals = Math.max(1, principals - mainPrincipals);
  const startMs = plan.start.getTime();
  const span = plan.end.getTime() - startMs;
  // Per principal and per tenant, made once.
  const principalArn: string[] = [];
  const accessKey: string[] = [];
  const ipPrefix: string[] = [];
  for (let p = 0; p < principals; p++) {
    principalArn.push(seedPrincipalArn(p, mainPrincipals));
    accessKey.push(`AKIASEED${String(p).padStart(12, '0')}`);
    ipPrefix.push(`10.${Math.floor(p / 256)}.${p % 256}.`);
  }
  const purposes = ['orders', 'invoices', 'profiles', 'backups'];
  const contexts = Array.from({ length: tenants }, (_, n) => ({ tenant: seedTenant(n), purpose: purposes[n % 4]! }));
  const keyResource = (arn: string, accountId: string) => ({ arn, type: 'AWS::KMS::Key', accountId });

  return (i: number): string => {
    const uOp = Math.random();
    const uFail = Math.random();
    const uPeer = Math.random();
    const uIp = Math.random();
    const uKey = Math.random();
    const at = new Date(startMs + Math.floor((i / events) * span)).toISOString();
    const requestId = randomUUID();
    const q = Math.floor(i / 5);
    const op =
      i % 5 === 0 ? 'GenerateDataKey' : uOp < 0.55 ? 'Decrypt' : uOp < 0.8 ? 'Encrypt' : uOp < 0.85 ? 'ReEncrypt' : uOp < 0.96 ? 'DescribeKey' : 'ListKeys';
    const usesDataKey = op === 'GenerateDataKey' || op === 'Decrypt' || op === 'ReEncrypt';
    const dk = op === 'GenerateDataKey' ? q : Math.max(0, q - 1 - Math.floor(uKey * window));
    // The principal that made the data key (or makes this request), its key slot, the tenant.
    const p0 = usesDataKey ? (pgHashInt8(dk) & 0x7fffffff) % principals : Math.floor(Math.random() * principals);
    const slot = usesDataKey ? (pgHashInt8(dk, 7) & 0x7fffffff) % 5 : Math.floor(uKey * 5);
    const tenant = usesDataKey ? (pgHashInt8(dk, 11) & 0x7fffffff) % tenants : Math.floor(Math.random() * tenants);
    const main = p0 < mainPrincipals;
    const keyIx = (main ? (p0 * 5 + slot) % mainKeys : mainKeys + (((p0 - mainPrincipals) * 5 + slot) % secondKeys)) % keyArns.length;
    const destIx = main ? (keyIx + 1) % mainKeys : keyIx;
    // 20% of uses by a peer in the same account.
    const pr =
      (op === 'Decrypt' || op === 'ReEncrypt') && uPeer < 0.2
        ? main
          ? (p0 + 1 + Math.floor(uPeer * 250)) % mainPrincipals
          : mainPrincipals + ((p0 - mainPrincipals + 1) % secondPrincipals)
        : p0;
    const account = main ? MAIN_ACCOUNT : SECOND_ACCOUNT;
    const arn = keyArns[keyIx]!;
    const material = keyMaterials[keyIx]!;
    const ctx = contexts[tenant]!;
    const errorCode =
      uFail < 0.012
        ? 'AccessDeniedException'
        : uFail < 0.02
          ? op === 'Decrypt' || op === 'ReEncrypt'
            ? 'InvalidCiphertextException'
            : op === 'ListKeys'
              ? 'ValidationException'
              : 'DisabledException'
          : undefined;
    const dataKeyId = usesDataKey ? seedDataKeyId(dk) : '';
    let requestParameters: object;
    let resources: object[] = [keyResource(arn, account)];
    let additionalEventData: object | undefined;
    switch (op) {
      case 'GenerateDataKey':
        requestParameters = { keyId: arn, encryptionContext: ctx, keySpec: 'AES_256' };
        additionalEventData = { keyMaterialId: material, ciphertextId: dataKeyId, dataKeyId, keySpec: 'AES_256' };
        break;
      case 'Decrypt':
        requestParameters = { encryptionContext: ctx };
        additionalEventData = { keyMaterialId: material, ciphertextId: dataKeyId, dataKeyId, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
        break;
      case 'Encrypt':
        requestParameters = { keyId: arn, encryptionContext: ctx };
        additionalEventData = { keyMaterialId: material, ciphertextId: hash('md5', `ct${i}`, 'hex'), encryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
        break;
      case 'ReEncrypt':
        requestParameters = { destinationKeyId: keyArns[destIx]!, sourceEncryptionContext: ctx, destinationEncryptionContext: ctx };
        resources = [keyResource(arn, account), keyResource(keyArns[destIx]!, account)];
        additionalEventData = {
          keyMaterialId: material,
          ciphertextId: dataKeyId,
          dataKeyId,
          destinationKeyMaterialId: keyMaterials[destIx]!,
          destinationCiphertextId: hash('md5', `re${i}`, 'hex'),
        };
        break;
      case 'DescribeKey':
        requestParameters = { keyId: arn };
        break;
      default:
        requestParameters = { limit: 100 };
        resources = [];
    }
    const data = JSON.stringify({
      eventVersion: '1.0',
      eventSource: 'kms',
      eventName: op,
      eventTime: at,
      requestId,
      awsRegion: REGION,
      accountId: account,
      userIdentity: { type: 'IAMUser', principalArn: principalArn[pr]!, accountId: account, accessKeyId: accessKey[pr]! },
      sourceIp: uIp < 0.01 ? `203.0.113.${1 + (Math.floor(uIp * 25000) % 250)}` : `${ipPrefix[pr]!}${1 + (pgHashInt8(i) & 127)}`,
      userAgent: 'aws-sdk-go-v2/1.30 seed',
      requestParameters,
      responseElements: errorCode === undefined && op === 'DescribeKey' ? { keyMetadata: { arn } } : undefined,
      additionalEventData,
      resources,
      readOnly: op === 'DescribeKey' || op === 'ListKeys',
      outcome: errorCode === undefined ? 'success' : 'failure',
      errorCode,
      errorMessage: errorCode === undefined ? undefined : 'seeded failure',
    });
    return `request-${requestId}\t1\t${randomUUID()}\tAuditRecord\t${copyText(data)}\t{}\t${at}\n`;
  };
}

/**
 * Runs the index definitions on two connections at once (the GIN indexes,
 * the slowest, first), each with maintenance_work_mem and one parallel worker.
 * Returns each index's seconds.
 */
async function buildIndexes(url: string, indexes: { indexname: string; indexdef: string }[], maintenanceWorkMem: string): Promise<Record<string, number>> {
  const cost = (def: string) => (/ USING gin /i.test(def) ? 2 : 0) + (/audit_/.test(def.replace(/^CREATE INDEX \S+/, '')) ? 1 : 0);
  const queue = [...indexes].sort((x, y) => cost(y.indexdef) - cost(x.indexdef));
  const seconds: Record<string, number> = {};
  const builder = async (): Promise<void> => {
    const client = new pg.Client({ connectionString: url, application_name: 'keyledger-seed-audit-index' });
    await client.connect();
    try {
      await client.query(`SET maintenance_work_mem = '${maintenanceWorkMem}'`);
      await client.query('SET max_parallel_maintenance_workers = 1');
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        const t0 = performance.now();
        await client.query(i.indexdef);
        seconds[i.indexname] = Math.round((performance.now() - t0) / 100) / 10;
        log(`index ${i.indexname} ${seconds[i.indexname]!.toFixed(1)} s`);
      }
    } finally {
      await client.end();
    }
  };
  await Promise.all([builder(), builder()]);
  return seconds;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  installPgTypeParsers();
  seed().catch((error: unknown) => {
    console.error(`seed:audit FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  });
}
