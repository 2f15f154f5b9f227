/**
 * `npm run seed:audit`: a realistic audit log, fast, for `npm run bench:audit`.
 *
 * Keys, aliases and their lifecycle events go in through Kysely (tens of
 * thousands of rows); the usage records (millions) are generated inside
 * Postgres with INSERT ... SELECT over generate_series, one transaction per
 * batch, with the events table's secondary indexes dropped first and rebuilt
 * after (as a COPY load would; nothing crosses the wire, and there is no COPY
 * client among the dependencies). Then VACUUM ANALYZE, and a replay builds the
 * key and alias projections from the log.
 *
 * The log: one main account (90% of keys, principals and requests) and a second
 * one; each principal works with ~5 keys from its own /24; each GenerateDataKey
 * makes a data key that is decrypted (mostly by the same principal) a few times
 * in the following days; encryption contexts {tenant, purpose} from a few
 * hundred tenants; ~1.2% AccessDeniedException, ~0.8% other failures.
 *
 * | variable | default | |
 * |---|---|---|
 * | DATABASE_URL | (embedded Postgres in SEED_AUDIT_DIR) | an owner URL of an EMPTY database |
 * | SEED_AUDIT_DIR | $TMPDIR/keyledger-audit-bench | embedded server's home, kept for bench:audit |
 * | SEED_EVENTS | 1000000 | usage records (about 2 minutes on 2 cores) |
 * | SEED_KEYS | 1000 | |
 * | SEED_PRINCIPALS | 200 | |
 * | SEED_TENANTS | 300 | |
 * | SEED_DAYS | 90 | span, ending now |
 * | SEED_LIFECYCLE_PER_KEY | 20 | lifecycle events per key (tags, descriptions, rotations ...) |
 * | SEED_BATCH | 100000 | records per transaction (two run at once) |
 *
 * With the embedded server an existing seed is replaced. SEED_EXPLAIN=1 prints
 * EXPLAIN ANALYZE of each generated batch (to see where the seed spends its time).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import pg from 'pg';
import { keyArn } from '../src/domain/arn.ts';
import { defaultKeyPolicy, keyStreamId } from '../src/domain/key.ts';
import { aliasStreamId } from '../src/domain/alias.ts';
import { openDatabase, type Db } from '../src/store/database.ts';
import { EmbeddedPostgres, embeddedServerUser } from '../src/store/embedded-postgres.ts';
import { freePort } from '../src/store/free-port.ts';
import { migrateToLatest } from '../src/store/migrations.ts';
import { replayProjections } from '../src/store/replay.ts';

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
  seconds: { lifecycle: number; usage: number; indexes: number; vacuum: number; replay: number };
}

export const settingsDir = (): string => process.env['SEED_AUDIT_DIR'] || join(tmpdir(), 'keyledger-audit-bench');

/**
 * The seeded database: DATABASE_URL, or the embedded server in SEED_AUDIT_DIR
 * (started here, stopped by `stop`). `fresh` re-initialises the embedded server.
 */
export async function auditBenchDatabase(fresh: boolean): Promise<{ url: string; stop: () => Promise<void>; logFile: string | null }> {
  const fromEnv = process.env['DATABASE_URL'];
  if (fromEnv) return { url: fromEnv, stop: async () => {}, logFile: null };
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
  for (let attempt = 1; ; attempt++) {
    const server = new EmbeddedPostgres({ dataDir: join(dir, 'data'), logFile, password, port: await freePort() });
    if (!(await server.initialised)) await server.initialise();
    try {
      await server.start();
      if (fresh) {
        const admin = new pg.Client({ connectionString: server.url('postgres') });
        await admin.connect();
        try {
          // Bulk settings for a bench box; the durability of a seed does not matter.
          await admin.query(`ALTER SYSTEM SET shared_buffers = '1GB'`);
          await admin.query(`ALTER SYSTEM SET synchronous_commit = off`);
          await admin.query(`ALTER SYSTEM SET max_wal_size = '8GB'`);
          await admin.query(`CREATE DATABASE ${DATABASE}`);
        } finally {
          await admin.end();
        }
        // shared_buffers needs a restart.
        await server.stop();
        await server.start();
      }
      return { url: server.url(DATABASE), stop: () => server.stop(), logFile };
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

function settings() {
  const int = (name: string, fallback: number) => {
    const v = process.env[name];
    const n = v ? Number(v) : fallback;
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
    return n;
  };
  return {
    events: int('SEED_EVENTS', 1_000_000),
    keys: int('SEED_KEYS', 1000),
    principals: int('SEED_PRINCIPALS', 200),
    tenants: int('SEED_TENANTS', 300),
    days: int('SEED_DAYS', 90),
    lifecyclePerKey: int('SEED_LIFECYCLE_PER_KEY', 20),
    batch: int('SEED_BATCH', 100_000),
  };
}

const log = (text: string) => console.log(`seed:audit ${text}`);
const hex = (bytes: number) => randomBytes(bytes).toString('hex');

/** The deterministic ids the generator gives things, shared with the bench. */
export const seedKeyId = (i: number): string => {
  const h = Buffer.from(`${String(i).padStart(12, '0')}`).toString('hex').padStart(32, '0').slice(-32);
  return `5eed0000-0000-4000-8000-${h.slice(-12)}`;
};
export const seedPrincipalArn = (p: number, mainPrincipals: number): string =>
  `arn:aws:iam::${p < mainPrincipals ? MAIN_ACCOUNT : SECOND_ACCOUNT}:user/svc-${String(p).padStart(3, '0')}`;
export const seedTenant = (n: number): string => `tenant-${String(n).padStart(3, '0')}`;

async function seed(): Promise<void> {
  const s = settings();
  const started = performance.now();
  const { url, stop } = await auditBenchDatabase(!process.env['DATABASE_URL']);
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
    const salt = hex(8);
    // Two batches at a time: generation is CPU-bound in Postgres, one core each.
    const starts: number[] = [];
    for (let from = 0; from < s.events; from += s.batch) starts.push(from);
    let done = 0;
    const worker = async () => {
      for (let from = starts.shift(); from !== undefined; from = starts.shift()) {
        const n = Math.min(s.batch, s.events - from);
        await insertUsage(owner, { ...s, salt, from, n, mainKeys, mainPrincipals, start, end, keyArns: materials.arns, keyMaterials: materials.ids });
        done += n;
        const rate = done / ((performance.now() - t) / 1000);
        log(`usage ${done.toLocaleString('en')} / ${s.events.toLocaleString('en')} (${Math.round(rate).toLocaleString('en')} rows/s)`);
      }
    };
    await Promise.all([worker(), worker()]);
    const usageSeconds = (performance.now() - t) / 1000;

    t = performance.now();
    await sql`SET maintenance_work_mem = '1GB'`.execute(owner);
    await owner.connection().execute(async (c) => {
      await sql`SET maintenance_work_mem = '1GB'`.execute(c);
      await sql`SET max_parallel_maintenance_workers = 2`.execute(c);
      for (const i of indexes) {
        const t0 = performance.now();
        await sql.raw(i.indexdef).execute(c);
        log(`index ${i.indexname} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      }
    });
    const indexSeconds = (performance.now() - t) / 1000;

    t = performance.now();
    await sql`VACUUM (ANALYZE) events`.execute(owner);
    const vacuumSeconds = (performance.now() - t) / 1000;

    t = performance.now();
    const replay = await replayProjections(owner, { verify: false });
    const replaySeconds = (performance.now() - t) / 1000;
    log(`replay built ${replay.keys} keys, ${replay.aliases} aliases from ${replay.events} events in ${replaySeconds.toFixed(2)} s`);

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
      seconds: { lifecycle: lifecycleSeconds, usage: usageSeconds, indexes: indexSeconds, vacuum: vacuumSeconds, replay: replaySeconds },
    };
    await mkdir(settingsDir(), { recursive: true });
    await writeFile(join(settingsDir(), 'seed.json'), JSON.stringify(info, null, 2));
    const { rows: size } = await sql<{ size: string; total: string }>`
      SELECT pg_size_pretty(pg_table_size('events')) AS size, pg_size_pretty(pg_total_relation_size('events')) AS total`.execute(owner);
    log(
      `done in ${((performance.now() - started) / 1000).toFixed(0)} s: ${s.events.toLocaleString('en')} records ` +
        `(insert ${usageSeconds.toFixed(0)} s, indexes ${indexSeconds.toFixed(0)} s, vacuum ${vacuumSeconds.toFixed(0)} s); ` +
        `events table ${size[0]!.size}, with indexes ${size[0]!.total}`,
    );
  } finally {
    await owner.destroy();
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
      rows.push({ stream_id: streamId, stream_version: version, event_id: randomUUID(), type, data: JSON.stringify(data), metadata: '{}', recorded_at: new Date(at) });
    };
    push('KeyCreated', {
      keyId, accountId, arn, description: `seed key ${i}`, keyUsage: 'ENCRYPT_DECRYPT', keySpec: 'SYMMETRIC_DEFAULT', origin: 'AWS_KMS',
      keyManager: 'CUSTOMER', multiRegion: false, policy: defaultKeyPolicy(accountId), tags: [{ tagKey: 'owner', tagValue: `team-${i % 17}` }], keyMaterialId,
    });
    for (let j = 1; j < s.lifecyclePerKey; j++) {
      at += Math.floor(span / s.lifecyclePerKey);
      switch (j % 6) {
        case 0: push('KeyDescriptionUpdated', { description: `seed key ${i} rev ${j}` }); break;
        case 1: push('KeyTagged', { tags: [{ tagKey: `t${j % 5}`, tagValue: `v${j}` }] }); break;
        case 2: push('KeyUntagged', { tagKeys: [`t${(j + 3) % 5}`] }); break;
        case 3: push('KeyRotationEnabled', { rotationPeriodInDays: 90 + (j % 5), nextRotationDate: new Date(at + 90 * 86_400_000).toISOString() }); break;
        case 4: push('KeyRotated', { keyMaterialId: hex(32), rotationType: 'ON_DEMAND', nextRotationDate: new Date(at + 90 * 86_400_000).toISOString() }); break;
        case 5: push(j % 12 === 5 ? 'KeyDisabled' : 'KeyEnabled', {}); break;
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
    rows.push({ stream_id: streamId, stream_version: 1n, event_id: randomUUID(), type: 'AliasCreated', data: JSON.stringify({ accountId: MAIN_ACCOUNT, aliasName, targetKeyId: target }), metadata: '{}', recorded_at: new Date(created) });
    let version = 1n;
    if (a % 3 === 0) {
      const moved = seedKeyId((a + 7) % mainKeys);
      version = 2n;
      rows.push({ stream_id: streamId, stream_version: 2n, event_id: randomUUID(), type: 'AliasUpdated', data: JSON.stringify({ targetKeyId: moved, previousTargetKeyId: target }), metadata: '{}', recorded_at: new Date(start.getTime() + span / 2 + a * 1000) });
    }
    streams.push({ stream_id: streamId, version });
  }
  // In recorded order, so that global_position follows time as it does live.
  rows.sort((x, y) => x.recorded_at.getTime() - y.recorded_at.getTime());
  for (let i = 0; i < rows.length; i += 2000) {
    await db.insertInto('events').values(rows.slice(i, i + 2000)).execute();
  }
  for (let i = 0; i < streams.length; i += 2000) {
    await db.insertInto('streams').values(streams.slice(i, i + 2000)).execute();
  }
  return { arns, ids, events: rows.length };
}

/**
 * One batch of usage records, generated in Postgres. Row i's time is
 * start + i/N of the span (so log order follows time); a GenerateDataKey every
 * 5th row makes data key d = i/5 (id md5('dk' || d)); Decrypt and ReEncrypt rows
 * pick a data key of the last ~3 days and take its key, tenant and (80%) its principal.
 */
export async function insertUsage(
  db: Db,
  p: ReturnType<typeof settings> & { salt: string; from: number; n: number; mainKeys: number; mainPrincipals: number; start: Date; end: Date; keyArns: string[]; keyMaterials: string[] },
): Promise<void> {
  // Ids from md5 of a per-seed salt: gen_random_uuid() costs a strong-random read per call.
  const salt = p.salt;
  const window = Math.max(1, Math.round((p.events / 5 / p.days) * 3)); // data keys made in ~3 days
  const secondKeys = Math.max(1, p.keys - p.mainKeys);
  const secondPrincipals = Math.max(1, p.principals - p.mainPrincipals);
  await db.transaction().execute(async (trx) => {
    await sql`SET LOCAL synchronous_commit = off`.execute(trx);
    await sql`SET LOCAL work_mem = '256MB'`.execute(trx);
    const explain = process.env['SEED_EXPLAIN'] === '1';
    const result = await sql<Record<string, string>>`${explain ? sql`EXPLAIN (ANALYZE, COSTS OFF) ` : sql``}
      WITH g AS (
        SELECT i, random() AS u_op, random() AS u_fail, random() AS u_peer, random() AS u_ip, random() AS u_key,
               ${p.start}::timestamptz + ((i::float8 / ${sql.lit(p.events)}) * ${sql.lit(p.end.getTime() - p.start.getTime())}) * interval '1 millisecond' AS at,
               md5(${sql.lit(salt)} || i)::uuid AS request_id
          FROM generate_series(${p.from}::bigint, ${p.from + p.n - 1}::bigint) AS i
      ), o AS (
        SELECT g.*,
               CASE WHEN i % 5 = 0 THEN 'GenerateDataKey'
                    WHEN u_op < 0.55 THEN 'Decrypt'
                    WHEN u_op < 0.80 THEN 'Encrypt'
                    WHEN u_op < 0.85 THEN 'ReEncrypt'
                    WHEN u_op < 0.96 THEN 'DescribeKey'
                    ELSE 'ListKeys' END AS op
          FROM g
      ), d AS (
        SELECT o.*, o.op IN ('GenerateDataKey', 'Decrypt', 'ReEncrypt') AS uses_data_key,
               CASE WHEN o.op = 'GenerateDataKey' THEN i / 5 ELSE greatest(0, i / 5 - 1 - floor(u_key * ${sql.lit(window)})::bigint) END AS dk
          FROM o
      ), p AS (
        SELECT d.*,
               -- The principal that made the data key (or makes this request).
               CASE WHEN uses_data_key THEN (hashint8(dk) & 2147483647) % ${sql.lit(p.principals)}
                    ELSE floor(random() * ${sql.lit(p.principals)})::int END AS p0,
               CASE WHEN uses_data_key THEN (hashint8extended(dk, 7) & 2147483647) % 5 ELSE floor(u_key * 5)::int END AS slot,
               CASE WHEN uses_data_key THEN (hashint8extended(dk, 11) & 2147483647) % ${sql.lit(p.tenants)} ELSE floor(random() * ${sql.lit(p.tenants)})::int END AS tenant
          FROM d
      ), k AS (
        SELECT p.*,
               p0 < ${sql.lit(p.mainPrincipals)} AS main,
               CASE WHEN p0 < ${sql.lit(p.mainPrincipals)} THEN (p0 * 5 + slot) % ${sql.lit(p.mainKeys)} ELSE ${sql.lit(p.mainKeys)} + ((p0 - ${sql.lit(p.mainPrincipals)}) * 5 + slot) % ${sql.lit(secondKeys)} END AS key_ix,
               -- 20% of uses by a peer in the same account.
               CASE WHEN op IN ('Decrypt', 'ReEncrypt') AND u_peer < 0.2 THEN
                      CASE WHEN p0 < ${sql.lit(p.mainPrincipals)} THEN (p0 + 1 + floor(u_peer * 250)::int) % ${sql.lit(p.mainPrincipals)}
                           ELSE ${sql.lit(p.mainPrincipals)} + (p0 - ${sql.lit(p.mainPrincipals)} + 1) % ${sql.lit(secondPrincipals)} END
                    ELSE p0 END AS pr
          FROM p
      ), ks AS (
        -- A table, not array subscripts: indexing a text[] walks it element by element.
        SELECT (ord - 1)::int AS ix, arn, material FROM unnest(${p.keyArns}::text[], ${p.keyMaterials}::text[]) WITH ORDINALITY AS u(arn, material, ord)
      ), r AS (
        SELECT k.*,
               CASE WHEN main THEN ${sql.lit(MAIN_ACCOUNT)} ELSE ${sql.lit(SECOND_ACCOUNT)} END AS account,
               src.arn AS key_arn, src.material, dst.arn AS dest_arn, dst.material AS dest_material,
               'arn:aws:iam::' || CASE WHEN pr < ${sql.lit(p.mainPrincipals)} THEN ${sql.lit(MAIN_ACCOUNT)} ELSE ${sql.lit(SECOND_ACCOUNT)} END || ':user/svc-' || lpad(pr::text, 3, '0') AS principal,
               'AKIASEED' || lpad(pr::text, 12, '0') AS access_key,
               CASE WHEN u_ip < 0.01 THEN '203.0.113.' || (1 + floor(u_ip * 25000)::int % 250)
                    ELSE '10.' || (pr / 256) || '.' || (pr % 256) || '.' || (1 + (hashint8(i) & 127)) END AS ip,
               jsonb_build_object('tenant', 'tenant-' || lpad(tenant::text, 3, '0'), 'purpose', (ARRAY['orders', 'invoices', 'profiles', 'backups'])[1 + tenant % 4]) AS ctx,
               CASE WHEN u_fail < 0.012 THEN 'AccessDeniedException'
                    WHEN u_fail < 0.02 THEN CASE WHEN op IN ('Decrypt', 'ReEncrypt') THEN 'InvalidCiphertextException' WHEN op = 'ListKeys' THEN 'ValidationException' ELSE 'DisabledException' END
                    END AS error_code,
               md5('dk' || dk) AS data_key_id
          FROM k
          JOIN ks AS src ON src.ix = k.key_ix
          JOIN ks AS dst ON dst.ix = CASE WHEN k.main THEN (k.key_ix + 1) % ${sql.lit(p.mainKeys)} ELSE k.key_ix END
      )
      INSERT INTO events (stream_id, stream_version, event_id, type, data, metadata, recorded_at)
      SELECT 'request-' || request_id, 1, md5(${sql.lit(salt)} || 'e' || i)::uuid, 'AuditRecord',
             jsonb_strip_nulls(jsonb_build_object(
               'eventVersion', '1.0', 'eventSource', 'kms', 'eventName', op,
               'eventTime', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
               'requestId', request_id, 'awsRegion', ${sql.lit(REGION)}, 'accountId', account,
               'userIdentity', jsonb_build_object('type', 'IAMUser', 'principalArn', principal, 'accountId', account, 'accessKeyId', access_key),
               'sourceIp', ip, 'userAgent', 'aws-sdk-go-v2/1.30 seed',
               'requestParameters', CASE op
                  WHEN 'Encrypt' THEN jsonb_build_object('keyId', key_arn, 'encryptionContext', ctx)
                  WHEN 'Decrypt' THEN jsonb_build_object('encryptionContext', ctx)
                  WHEN 'GenerateDataKey' THEN jsonb_build_object('keyId', key_arn, 'encryptionContext', ctx, 'keySpec', 'AES_256')
                  WHEN 'ReEncrypt' THEN jsonb_build_object('destinationKeyId', dest_arn, 'sourceEncryptionContext', ctx, 'destinationEncryptionContext', ctx)
                  WHEN 'DescribeKey' THEN jsonb_build_object('keyId', key_arn)
                  ELSE jsonb_build_object('limit', 100) END,
               'responseElements', CASE WHEN error_code IS NULL AND op = 'DescribeKey' THEN jsonb_build_object('keyMetadata', jsonb_build_object('arn', key_arn)) END,
               'resources', CASE op
                  WHEN 'ListKeys' THEN '[]'::jsonb
                  WHEN 'ReEncrypt' THEN jsonb_build_array(jsonb_build_object('arn', key_arn, 'type', 'AWS::KMS::Key', 'accountId', account),
                                                          jsonb_build_object('arn', dest_arn, 'type', 'AWS::KMS::Key', 'accountId', account))
                  ELSE jsonb_build_array(jsonb_build_object('arn', key_arn, 'type', 'AWS::KMS::Key', 'accountId', account)) END,
               'additionalEventData', CASE op
                  WHEN 'GenerateDataKey' THEN jsonb_build_object('keyMaterialId', material, 'ciphertextId', data_key_id, 'dataKeyId', data_key_id, 'keySpec', 'AES_256')
                  WHEN 'Decrypt' THEN jsonb_build_object('keyMaterialId', material, 'ciphertextId', data_key_id, 'dataKeyId', data_key_id, 'encryptionAlgorithm', 'SYMMETRIC_DEFAULT')
                  WHEN 'ReEncrypt' THEN jsonb_build_object('keyMaterialId', material, 'ciphertextId', data_key_id, 'dataKeyId', data_key_id,
                                                           'destinationKeyMaterialId', dest_material, 'destinationCiphertextId', md5('re' || i))
                  WHEN 'Encrypt' THEN jsonb_build_object('keyMaterialId', material, 'ciphertextId', md5('ct' || i), 'encryptionAlgorithm', 'SYMMETRIC_DEFAULT')
                  END,
               'readOnly', op IN ('DescribeKey', 'ListKeys'),
               'outcome', CASE WHEN error_code IS NULL THEN 'success' ELSE 'failure' END,
               'errorCode', error_code,
               'errorMessage', CASE WHEN error_code IS NOT NULL THEN 'seeded failure' END
             )),
             '{}'::jsonb, at
        FROM r
       ORDER BY i`.execute(trx);
    if (explain) console.log(result.rows.map((r) => Object.values(r)[0]).join('\n'));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  seed().catch((error: unknown) => {
    console.error(`seed:audit FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  });
}
