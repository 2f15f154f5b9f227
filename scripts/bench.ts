/**
 * `npm run bench`: throughput and latency of Encrypt, Decrypt and GenerateDataKey
 * over real HTTP, through both transports (GraphQL at /graphql, and the AWS KMS
 * JSON 1.1 protocol at POST / with a real SigV4 signature on every request),
 * next to the raw Postgres ceiling of one durable audit-row INSERT + COMMIT on
 * the same server. Figures, not a test.
 *
 * The service runs in this process (main thread); the load is driven from a
 * worker thread of this same file, so the client's work does not run on the
 * server's event loop (it still shares the machine's CPUs, so it is kept
 * lean: one keep-alive connection per client on a bare socket,
 * scripts/lean-http.ts). The load thread signs each AWS request just before
 * sending it, outside the timed span of the request, with the headers and
 * signature the AWS SDK for JavaScript would send (Node's crypto, the signing
 * key kept per day as the SDK keeps it; each phase's first request is checked
 * against `@smithy/signature-v4`): the signing is not in the latency, and its
 * CPU is the load thread's, not the server's (it is reported as `sign ms`).
 *
 * Phases: three ceilings at each client count, then per operation GraphQL and
 * AWS at each client count, then the PG ceiling again (the machine is shared
 * and noisy: the ratios take the higher of its two passes, so a ceiling
 * measured in a slow moment flatters nothing), then AWS Decrypt without group
 * commit (the baseline of issue 14, in the same run). The ceilings:
 * - PG ceiling: one INSERT + COMMIT of the audit row into a copy of `events`
 *   (its columns and indexes), one per request as without group commit;
 * - batched: BENCH_BATCH_ROWS rows per INSERT + COMMIT into the same copy, at
 *   the same concurrency (rows/s): the physical limit of group commit;
 * - bare: one INSERT + COMMIT into a table with the same columns and only a
 *   primary key, which shows what the read side's indexes cost every request.
 *
 * The service batches the cryptographic operations' records (group commit);
 * `batch` is the mean number of records per committed batch in a phase.
 *
 * | variable | default | |
 * |---|---|---|
 * | DATABASE_URL | (fresh embedded Postgres in a temp dir, reached over a Unix socket) | an owner URL: migrated, then written to |
 * | BENCH_SECONDS | 8 | measured seconds per phase |
 * | BENCH_WARMUP_SECONDS | 2 | unmeasured seconds before each phase |
 * | BENCH_CLIENTS | 1,8,32 | concurrent clients (and ceiling connections) |
 * | BENCH_BATCH_ROWS | 32 | rows per COMMIT in the batched ceiling |
 * | BENCH_NODES | 1 | keyledger processes: with 2, a second one (`keyledger serve`, a child process on the same database) takes every other client |
 * | BENCH_GROUP_COMMIT | on | off: the service commits one transaction per request |
 * | BENCH_IN_FLIGHT | (the service's default) | group commit: batches committing at once (`maxInFlight`) |
 * | BENCH_MIN_OVERLAP | (the service's default) | group commit: records waiting before a batch starts beside a committing one (`minOverlap`) |
 * | BENCH_OPERATIONS | encrypt,decrypt,generateDataKey | the service operations measured |
 * | BENCH_TRANSPORTS | graphql,aws | the transports measured |
 * | BENCH_CEILINGS | on | off: skip the three Postgres ceilings (ratios then print '-') |
 * | BENCH_BASELINE | on | off: skip the no-group-commit AWS Decrypt baseline |
 * | BENCH_SEAL | off | on: the worker's sealer runs here through every phase; prints the sealing window (commit to covering checkpoint) |
 * | BENCH_READ_INDEXES | on | off: drop `events`' forensic read-side indexes after migrating (see below) |
 *
 * BENCH_READ_INDEXES=off measures what the read side's indexes (`events_audit_*`)
 * cost the request path (issue 14, item 7). The ceilings' copy of `events` then
 * lacks them too, so compare ops/s between runs, not ratios. Forensic queries
 * still answer, slowly; it refuses to run with DATABASE_URL.
 *
 * The embedded Postgres runs with max_wal_size=16GB and checkpoint_timeout=1h
 * and checkpoints once before the first phase, so that no checkpoint falls in
 * a phase (the `ckpts` column shows any that did).
 *
 * Every phase also reports this process's resident set size (RSS) at the
 * start and end of its measured window: under sustained load (BENCH_SECONDS=60)
 * it must stay flat.
 *
 * Exits 1 when any request fails (the first error is shown), 130 on Ctrl-C.
 */
import { createHash, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { arch, cpus, loadavg, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { spawn, type ChildProcess } from 'node:child_process';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import pg from 'pg';
import { createKeyledger, type Keyledger } from '../src/app.ts';
import { createAwsHandler } from '../src/api/aws/endpoint.ts';
import { createGraphQLHandler } from '../src/api/graphql/yoga.ts';
import { startHttpServer, type RunningServer } from '../src/api/http-server.ts';
import { systemClock } from '../src/clock.ts';
import { rootKeyFromBytes } from '../src/crypto/root-key.ts';
import { createLogger } from '../src/logger.ts';
import { ADMINISTRATOR_ACCESS } from '../src/service/identity-service.ts';
import { openDatabase } from '../src/store/database.ts';
import { installPgTypeParsers } from '../src/store/pg-types.ts';
import { startEmbeddedOnFreePort } from '../src/store/embedded-postgres.ts';
import { freePort } from '../src/store/free-port.ts';
import { migrateToLatest } from '../src/store/migrations.ts';
import { sealKeyFromSeed } from '../src/crypto/seal-key.ts';
import { amzFormat, deriveSigningKey, signRootRequestWith } from '../src/crypto/sigv4.ts';
import { uuidV7 } from '../src/domain/uuid-v7.ts';
import { KeepAliveClient } from './lean-http.ts';
import { startSealLoop } from '../src/worker/seal-loop.ts';

// ------------------------------------------------------------------ shared

type Operation = 'encrypt' | 'decrypt' | 'generateDataKey';
const OPERATIONS: readonly Operation[] = ['encrypt', 'decrypt', 'generateDataKey'];
/** GraphQL at /graphql, or the AWS KMS JSON 1.1 protocol at POST /. */
type Transport = 'graphql' | 'aws';
const TRANSPORTS: readonly Transport[] = ['graphql', 'aws'];
/** Each operation's AWS name (`X-Amz-Target: TrentService.<name>`). */
const AWS_OPERATION: Record<Operation, string> = { encrypt: 'Encrypt', decrypt: 'Decrypt', generateDataKey: 'GenerateDataKey' };
const AWS_CONTENT_TYPE = 'application/x-amz-json-1.1';
/** The service's region, which the SigV4 credential scope must name. */
const REGION = 'us-east-1';

/** How the load authenticates: a Basic header on GraphQL, a SigV4 signature per request on the AWS endpoint. */
type PhaseAuth = { transport: 'graphql'; authorization: string } | { transport: 'aws'; accessKeyId: string; secretAccessKey: string; region: string };

/** What the worker thread is told to do for one phase. */
interface HttpPhase {
  /** Client i sends to urls[i % urls.length] (one per keyledger process). */
  urls: string[];
  auth: PhaseAuth;
  operation: Operation;
  clients: number;
  warmupMs: number;
  measureMs: number;
  /** One request body per client (client i always sends bodies[i]), in the transport's encoding. */
  bodies: string[];
  /** Decrypt: the base64 plaintext client i must get back. */
  expectedPlaintexts: string[] | null;
}

type WorkerMessage =
  | { type: 'mark'; mark: 'start' | 'end' }
  | { type: 'done'; latencies: Float64Array<ArrayBuffer>; firstError: string | null; cpuMicros: number; wallMs: number; signMs: number | null };

interface DriveResult {
  /** Latency (ms) of every operation that completed inside the measured window. */
  latencies: Float64Array<ArrayBuffer>;
  firstError: string | null;
}

const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Where a request's time goes on the database side, counted in this process by
 * wrapping pg's Client#query and Pool#connect (diagnostics only; the service's
 * code is unchanged). Clients marked UNCOUNTED (the monitor) are left out.
 */
interface PgCounters {
  queries: number;
  /** Wall time from sending a statement to its result, COMMIT excluded. */
  queryMs: number;
  commits: number;
  commitMs: number;
  /** Promise-style Pool#connect (Kysely's checkout): time waiting for a pooled connection. */
  checkouts: number;
  checkoutMs: number;
}

const pgCounters: PgCounters = { queries: 0, queryMs: 0, commits: 0, commitMs: 0, checkouts: 0, checkoutMs: 0 };
/** Milliseconds the main thread spent in garbage-collection pauses since start (PerformanceObserver 'gc' entries). */
let mainGcMs = 0;
const UNCOUNTED = Symbol('keyledger-bench-uncounted');

function instrumentPg(): void {
  type Fn = (...args: unknown[]) => unknown;
  const clientProto = pg.Client.prototype as unknown as Record<string, Fn> & { [UNCOUNTED]?: boolean };
  const query = clientProto['query']!;
  clientProto['query'] = function (this: { [UNCOUNTED]?: boolean }, ...args: unknown[]) {
    if (this[UNCOUNTED]) return query.apply(this, args);
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: unknown } | undefined)?.text;
    const isCommit = typeof text === 'string' && /^\s*commit\s*$/i.test(text);
    const started = performance.now();
    const record = () => {
      const ms = performance.now() - started;
      if (isCommit) {
        pgCounters.commits++;
        pgCounters.commitMs += ms;
      } else {
        pgCounters.queries++;
        pgCounters.queryMs += ms;
      }
    };
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === 'function') {
      args[last] = function (this: unknown, ...result: unknown[]) {
        record();
        return (callback as Fn).apply(this, result);
      };
      return query.apply(this, args);
    }
    const result = query.apply(this, args);
    if (result instanceof Promise) result.then(record, record);
    return result;
  };
  const poolProto = pg.Pool.prototype as unknown as Record<string, Fn>;
  const connect = poolProto['connect']!;
  poolProto['connect'] = function (this: unknown, ...args: unknown[]) {
    const result = connect.apply(this, args);
    if (args.length === 0 && result instanceof Promise) {
      const started = performance.now();
      const record = () => {
        pgCounters.checkouts++;
        pgCounters.checkoutMs += performance.now() - started;
      };
      result.then(record, record);
    }
    return result;
  };
}

/**
 * Runs `clients` closed loops of `one(i)` for warmup + measure ms. An operation
 * counts when it completes inside the measured window; its latency is the time
 * of `one` alone (`prepare`, run just before it, is not timed). The first error
 * stops every loop.
 */
async function drive(
  clients: number,
  warmupMs: number,
  measureMs: number,
  one: (client: number) => Promise<void>,
  onMark: (mark: 'start' | 'end') => void,
  options: { signal?: AbortSignal; prepare?: (client: number) => Promise<void> } = {},
): Promise<DriveResult> {
  const { signal, prepare } = options;
  const latencies: number[] = [];
  let firstError: string | null = null;
  const t0 = performance.now();
  const measureStart = t0 + warmupMs;
  const end = measureStart + measureMs;
  let endMarked!: () => void;
  const ended = new Promise<void>((resolve) => (endMarked = resolve));
  const timers = [
    setTimeout(() => onMark('start'), warmupMs),
    setTimeout(() => {
      onMark('end');
      endMarked();
    }, warmupMs + measureMs),
  ];
  const loop = async (client: number): Promise<void> => {
    while (firstError === null) {
      if (signal?.aborted) {
        firstError = 'interrupted';
        return;
      }
      if (performance.now() >= end) return;
      let started: number;
      try {
        if (prepare) await prepare(client);
        started = performance.now();
        await one(client);
      } catch (error) {
        firstError ??= `client ${client}: ${error instanceof Error ? error.message : String(error)}`;
        return;
      }
      const finished = performance.now();
      if (finished >= measureStart && finished < end) latencies.push(finished - started);
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, i) => loop(i)));
  if (firstError !== null) for (const t of timers) clearTimeout(t);
  // Report only once the end mark has fired (its timer may trail the loops by a hair).
  else await ended;
  return { latencies: Float64Array.from(latencies), firstError };
}

// ------------------------------------------------------------------ worker thread (the HTTP clients)

async function workerMain(): Promise<void> {
  const phase = workerData as HttpPhase;
  const port = parentPort!;
  const cpu0 = process.threadCpuUsage();
  const wall0 = performance.now();
  const auth = phase.auth;
  const graphqlHeaders =
    auth.transport === 'graphql' ? { 'content-type': 'application/json', authorization: auth.authorization, 'user-agent': 'keyledger-bench' } : null;
  // AWS: each client's next request is signed by `prepare`, at the current time, just before `one` sends it.
  const signers = auth.transport === 'aws' ? phase.urls.map((url) => awsSigner(url, auth)) : null;
  const urlOf = (client: number) => phase.urls[client % phase.urls.length]!;
  const signedHeaders: Record<string, string>[] = [];
  let signMs = 0;
  let signings = 0;
  const prepare = signers
    ? async (client: number): Promise<void> => {
        const t0 = performance.now();
        signedHeaders[client] = await signers[client % signers.length]!(AWS_OPERATION[phase.operation], phase.bodies[client]!);
        signMs += performance.now() - t0;
        signings++;
      }
    : undefined;
  // One keep-alive connection per client on a bare socket (scripts/lean-http.ts):
  // node:http's client cost the shared CPUs about as much as the server's HTTP layer.
  const connections = phase.bodies.map((_, client) => new KeepAliveClient(urlOf(client), REQUEST_TIMEOUT_MS));
  const path = new URL(phase.urls[0]!).pathname;
  const one = async (client: number): Promise<void> => {
    const headers = graphqlHeaders ?? signedHeaders[client]!;
    const response = await connections[client]!.post(path, headers, phase.bodies[client]!);
    const text = response.body;
    if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${text.slice(0, 600)}`);
    const result = graphqlHeaders ? graphqlResult(text, phase.operation) : awsResult(text, response.headers.get('x-amzn-requestid'));
    switch (phase.operation) {
      case 'encrypt':
        if (typeof result.ciphertextBlob !== 'string' || result.ciphertextBlob.length === 0) throw new Error('encrypt returned no ciphertextBlob');
        break;
      case 'decrypt':
        if (result.plaintext !== phase.expectedPlaintexts![client]) throw new Error('decrypt returned a different plaintext');
        break;
      case 'generateDataKey':
        if (typeof result.plaintext !== 'string' || Buffer.from(result.plaintext, 'base64').length !== 32)
          throw new Error('generateDataKey returned no 32-byte plaintext');
        if (typeof result.ciphertextBlob !== 'string') throw new Error('generateDataKey returned no ciphertextBlob');
        break;
    }
  };
  const onMark = (mark: 'start' | 'end') => port.postMessage({ type: 'mark', mark } satisfies WorkerMessage);
  const { latencies, firstError } = await drive(phase.clients, phase.warmupMs, phase.measureMs, one, onMark, prepare ? { prepare } : {});
  for (const connection of connections) connection.close();
  const cpu = process.threadCpuUsage(cpu0);
  const done: WorkerMessage = {
    type: 'done',
    latencies,
    firstError,
    cpuMicros: cpu.user + cpu.system,
    wallMs: performance.now() - wall0,
    signMs: signings === 0 ? null : signMs / signings,
  };
  port.postMessage(done, [latencies.buffer]);
}

/** The members the checks look at, as either transport returns them (blobs in base64). */
interface OperationResult {
  ciphertextBlob: unknown;
  plaintext: unknown;
}

function graphqlResult(text: string, operation: Operation): OperationResult {
  const body = JSON.parse(text) as { data?: Record<string, Record<string, unknown> | null> | null; errors?: unknown[] };
  if (body.errors?.length) throw new Error(`GraphQL error: ${JSON.stringify(body.errors[0]).slice(0, 600)}`);
  const result = body.data?.[operation];
  if (!result) throw new Error(`no data.${operation} in ${text.slice(0, 300)}`);
  return { ciphertextBlob: result['ciphertextBlob'], plaintext: result['plaintext'] };
}

function awsResult(text: string, requestId: string | undefined): OperationResult {
  if (!requestId) throw new Error('AWS response without x-amzn-RequestId');
  const body = JSON.parse(text) as Record<string, unknown> | null;
  if (body === null || typeof body !== 'object' || typeof body['KeyId'] !== 'string') throw new Error(`AWS response without KeyId: ${text.slice(0, 300)}`);
  return { ciphertextBlob: body['CiphertextBlob'], plaintext: body['Plaintext'] };
}

/**
 * Signs AWS KMS requests to `url`, each at the time it is called, with the
 * headers the AWS SDK for JavaScript sends (`@smithy/signature-v4`, service
 * `kms`, the payload hash in x-amz-content-sha256). The signature is computed
 * with Node's crypto (src/crypto/sigv4.ts), the signing key kept per day as
 * the SDK keeps it, because the signer shares the CPUs with the server it
 * measures; the first request is also signed by `@smithy/signature-v4`, and
 * the run stops unless both sign it alike. Returns the headers to send
 * (`host` is added by the client, with the same value).
 */
function awsSigner(
  url: string,
  credentials: { accessKeyId: string; secretAccessKey: string; region: string },
): (operation: string, body: string) => Promise<Record<string, string>> {
  const { host, hostname, pathname } = new URL(url);
  if (pathname !== '/') throw new Error(`the AWS endpoint must be at /, not ${pathname}`);
  const reference = new SignatureV4({
    credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
    region: credentials.region,
    service: 'kms',
    sha256: Hash.bind(null, 'sha256'),
  });
  const secret = Buffer.from(credentials.secretAccessKey, 'utf8');
  let key: { date: string; signingKey: KeyObject } | undefined;
  const bodyHashes = new Map<string, string>();
  let checked = false;
  return async (operation, body) => {
    const now = new Date();
    const amzDate = amzFormat(now);
    const date = amzDate.slice(0, 8);
    if (key?.date !== date) key = { date, signingKey: deriveSigningKey(secret, date, credentials.region, 'kms') };
    let payloadHash = bodyHashes.get(body);
    if (payloadHash === undefined) bodyHashes.set(body, (payloadHash = createHash('sha256').update(body, 'utf8').digest('hex')));
    const headers = new Map([
      ['content-type', AWS_CONTENT_TYPE],
      ['host', host],
      ['x-amz-content-sha256', payloadHash],
      ['x-amz-date', amzDate],
      ['x-amz-target', `TrentService.${operation}`],
    ]);
    const signature = signRootRequestWith(key.signingKey, { method: 'POST', headers, payloadHash, amzDate, region: credentials.region, service: 'kms' });
    const authorization =
      `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${date}/${credentials.region}/kms/aws4_request, ` +
      `SignedHeaders=${[...headers.keys()].join(';')}, Signature=${signature.toString('utf8')}`;
    const { host: _host, ...sent } = Object.fromEntries(headers);
    const signed = { ...sent, authorization, 'user-agent': 'keyledger-bench' };
    if (!checked) {
      const viaSdk = await reference.sign(
        {
          method: 'POST',
          protocol: 'http:',
          hostname,
          path: pathname,
          query: {},
          headers: { host, 'content-type': AWS_CONTENT_TYPE, 'x-amz-target': headers.get('x-amz-target')! },
          body,
        },
        { signingDate: now },
      );
      const { host: _sdkHost, ...sdkHeaders } = viaSdk.headers;
      if (JSON.stringify(Object.entries({ ...sdkHeaders, 'user-agent': 'keyledger-bench' }).sort()) !== JSON.stringify(Object.entries(signed).sort()))
        throw new Error(`the bench's signer and @smithy/signature-v4 disagree: ${JSON.stringify(signed)} against ${JSON.stringify(sdkHeaders)}`);
      checked = true;
    }
    return signed;
  };
}

// ------------------------------------------------------------------ main thread

interface Settings {
  seconds: number;
  warmupSeconds: number;
  clients: number[];
  databaseUrl: string | undefined;
  batchRows: number;
  nodes: 1 | 2;
  groupCommit: boolean;
  operations: readonly Operation[];
  transports: readonly Transport[];
  ceilings: boolean;
  baseline: boolean;
  seal: boolean;
  readIndexes: boolean;
}

function settings(): Settings {
  const number = (name: string, fallback: number, min: number): number => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number >= ${min}, not '${raw}'`);
    return value;
  };
  const clientsRaw = process.env['BENCH_CLIENTS'] || '1,8,32';
  const clients = clientsRaw.split(',').map((s) => Number(s.trim()));
  if (clients.some((c) => !Number.isInteger(c) || c < 1 || c > 128)) throw new Error(`BENCH_CLIENTS must be integers 1-128, e.g. 1,8,32, not '${clientsRaw}'`);
  const chosen: Settings = {
    seconds: number('BENCH_SECONDS', 8, 0.5),
    warmupSeconds: number('BENCH_WARMUP_SECONDS', 2, 0),
    clients,
    databaseUrl: process.env['DATABASE_URL'] || undefined,
    batchRows: Math.floor(number('BENCH_BATCH_ROWS', 32, 1)),
    nodes: nodes(process.env['BENCH_NODES'] || '1'),
    groupCommit: onOff('BENCH_GROUP_COMMIT', process.env['BENCH_GROUP_COMMIT'] || 'on'),
    operations: subset('BENCH_OPERATIONS', OPERATIONS),
    transports: subset('BENCH_TRANSPORTS', TRANSPORTS),
    ceilings: onOff('BENCH_CEILINGS', process.env['BENCH_CEILINGS'] || 'on'),
    baseline: onOff('BENCH_BASELINE', process.env['BENCH_BASELINE'] || 'on'),
    seal: onOff('BENCH_SEAL', process.env['BENCH_SEAL'] || 'off'),
    readIndexes: onOff('BENCH_READ_INDEXES', process.env['BENCH_READ_INDEXES'] || 'on'),
  };
  if (!chosen.readIndexes && chosen.databaseUrl) {
    throw new Error('BENCH_READ_INDEXES=off drops indexes: it runs only on the embedded throwaway database, not on DATABASE_URL');
  }
  return chosen;
}

/** A comma-separated choice among `all` (all of them when unset), in `all`'s order. */
function subset<T extends string>(name: string, all: readonly T[]): readonly T[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return all;
  const chosen = raw.split(',').map((v) => v.trim());
  const unknown = chosen.filter((v) => !all.includes(v as T));
  if (unknown.length > 0 || chosen.length === 0) throw new Error(`${name} must be a comma-separated subset of ${all.join(',')}, not '${raw}'`);
  return all.filter((v) => chosen.includes(v));
}

/**
 * BENCH_READ_INDEXES=off: drops the forensic read side's indexes of `events`
 * (sql/0004 onwards, all named `events_audit_*`), keeping the ones the service
 * itself reads by (primary key, event id, stream, follow order, state
 * position). Answers the names dropped.
 */
async function dropReadIndexes(monitor: pg.Client): Promise<string[]> {
  const { rows } = await monitor.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = 'events'::regclass AND c.relname LIKE 'events\\_audit\\_%' ORDER BY 1`,
  );
  for (const { name } of rows) await monitor.query(`DROP INDEX ${pg.escapeIdentifier(name)}`);
  return rows.map((r) => r.name);
}

function nodes(raw: string): 1 | 2 {
  if (raw !== '1' && raw !== '2') throw new Error(`BENCH_NODES must be 1 or 2, not '${raw}'`);
  return raw === '1' ? 1 : 2;
}

function onOff(name: string, raw: string): boolean {
  if (raw !== 'on' && raw !== 'off') throw new Error(`${name} must be on or off, not '${raw}'`);
  return raw === 'on';
}

/** Process-wide resource counters at one instant. */
interface Snapshot {
  at: number;
  serverCpuMicros: number;
  /** mainGcMs at this instant. */
  gcMs: number;
  processCpuMicros: number;
  /** Busy and total CPU time of the host, in 1/100 s summed over all CPUs. */
  host: { busy: number; total: number };
  pg: PgCounters;
  pgCpuTicks: Map<number, number> | null;
  xacts: number | null;
  walLsn: bigint | null;
  walFsyncs: number | null;
  /** Checkpoints Postgres has completed (pg_stat_checkpointer, PostgreSQL 17+). */
  checkpoints: number | null;
  /** The in-process committer's counters (null without group commit). */
  batches: { batches: number; records: number } | null;
}

type Ceiling = 'ceiling' | 'batched ceiling' | 'bare ceiling';

interface Row {
  label: string;
  operation: Operation | Ceiling;
  /** Null for the ceilings. */
  transport: Transport | null;
  /** The service's phases: whether it ran with group commit. */
  groupCommit: boolean | null;
  /** Mean records per committed batch (this process's committer), when it batched. */
  batch: number | null;
  clients: number;
  /** This process's resident set size (MiB) at the start and end of the measured window. */
  rssStartMb: number | null;
  rssEndMb: number | null;
  /** RSS every 10 s of the measured window. */
  rssSamplesMb: number[];
  opsPerSecond: number;
  mean: number;
  p50: number;
  p99: number;
  errors: number;
  /** % of one core: the main thread (server), the load thread, the whole node process, postgres, everything else on the host. */
  serverCpu: number | null;
  /** Main-thread garbage-collection pause per operation, ms. */
  gcMs: number | null;
  clientCpu: number | null;
  nodeCpu: number | null;
  pgCpu: number | null;
  otherCpu: number | null;
  /** Per operation, from the instrumented pg driver. */
  checkoutMs: number | null;
  queries: number | null;
  queryMs: number | null;
  commitMs: number | null;
  /** Per operation, from Postgres. */
  xacts: number | null;
  walBytes: number | null;
  fsyncs: number | null;
  /** Checkpoints completed during the measured window: each makes the next write of every page a full-page image. */
  checkpoints: number | null;
  /** AWS: mean ms the load thread spent SigV4-signing a request (outside the latency). */
  signMs: number | null;
  /** The ceilings: measured before the service's phases, or again after them. */
  ceilingPass?: 'start' | 'end';
}

class Cleanup {
  readonly #steps: { name: string; run: () => Promise<unknown> }[] = [];

  add(name: string, run: () => Promise<unknown>): void {
    this.#steps.push({ name, run });
  }

  /** Runs the steps newest first, each bounded; a failing step does not stop the rest. */
  async run(): Promise<void> {
    for (const step of this.#steps.splice(0).reverse()) {
      try {
        await withTimeout(step.run(), 20_000, `cleanup: ${step.name}`);
      } catch (error) {
        console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const progress = (line: string): void => {
  process.stderr.write(`bench: ${line}\n`);
};

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupt.signal.aborted) {
      console.error(`bench: second ${signal}, exiting without cleanup`);
      process.exit(130);
    }
    console.error(`bench: ${signal}, stopping and cleaning up`);
    interrupt.abort(new Error(`interrupted by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let exitCode = 0;
  try {
    await bench(settings(), cleanup, interrupt.signal);
  } catch (error) {
    exitCode = interrupt.signal.aborted ? 130 : 1;
    console.error(`bench: FAILED: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    await cleanup.run();
  }
  process.exit(exitCode);
}

async function bench(s: Settings, cleanup: Cleanup, signal: AbortSignal): Promise<void> {
  const startedAt = performance.now();

  // 1. The database: DATABASE_URL, or a fresh embedded server in a temp dir.
  let ownerUrl: string;
  let dbKind: string;
  if (s.databaseUrl) {
    ownerUrl = s.databaseUrl;
    dbKind = 'external (DATABASE_URL)';
  } else {
    progress('starting embedded Postgres');
    const dir = await mkdtemp(join(tmpdir(), 'keyledger-bench-'));
    cleanup.add(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
    // As root, Postgres runs as `postgres`, which must traverse the 0700 mkdtemp dir.
    await chmod(dir, 0o755);
    const server = await startEmbeddedOnFreePort({
      dataDir: join(dir, 'data'),
      logFile: join(dir, 'postgres.log'),
      password: randomBytes(18).toString('base64url'),
      // As a service beside its database would connect: the ceilings and the service alike.
      socketDir: join(dir, 'sock'),
    });
    cleanup.add('stop embedded Postgres', () => server.stop());
    const admin = new pg.Client({ connectionString: server.url('postgres') });
    await admin.connect();
    try {
      // No checkpoint inside the run: a checkpoint makes the next write of every page a full-page image, which
      // lands on whichever phase comes next (a phase paid 111 KB of WAL per Decrypt once). Both settings are
      // reloadable; the setup below ends with a CHECKPOINT, so every phase starts after the same one.
      await admin.query(`ALTER SYSTEM SET max_wal_size = '16GB'`);
      await admin.query(`ALTER SYSTEM SET checkpoint_timeout = '1h'`);
      await admin.query('SELECT pg_reload_conf()');
      await admin.query('CREATE DATABASE keyledger_bench');
    } finally {
      await admin.end();
    }
    ownerUrl = server.url('keyledger_bench');
    dbKind = `embedded, over ${server.transport === 'tcp' ? 'loopback TCP' : 'a Unix socket'}`;
  }
  signal.throwIfAborted();

  // 2. Migrate as the owner; open the app pool as the app role.
  const owner = openDatabase(ownerUrl, { as: 'owner', max: 2, applicationName: 'keyledger-bench-migrate' });
  cleanup.add('close owner pool', () => owner.destroy());
  progress('migrating');
  await migrateToLatest(owner);
  const monitor = new pg.Client({ connectionString: ownerUrl, application_name: 'keyledger-bench-monitor' });
  monitor.on('error', () => {});
  (monitor as unknown as { [UNCOUNTED]: boolean })[UNCOUNTED] = true;
  await monitor.connect();
  cleanup.add('close monitor connection', () => monitor.end());
  const droppedIndexes = s.readIndexes ? [] : await dropReadIndexes(monitor);

  const maxClients = Math.max(...s.clients);
  const appDb = openDatabase(ownerUrl, { as: 'app', max: Math.max(40, maxClients + 8), applicationName: 'keyledger-bench' });
  cleanup.add('close app pool', () => appDb.destroy());
  const rootKeyBytes = randomBytes(32);
  const groupCommitOptions = {
    ...(process.env['BENCH_IN_FLIGHT'] ? { maxInFlight: Number(process.env['BENCH_IN_FLIGHT']) } : {}),
    ...(process.env['BENCH_MIN_OVERLAP'] ? { minOverlap: Number(process.env['BENCH_MIN_OVERLAP']) } : {}),
  };
  const newApp = (groupCommit: boolean): Keyledger =>
    createKeyledger({
      db: appDb,
      rootKey: rootKeyFromBytes(rootKeyBytes),
      clock: systemClock,
      logger: createLogger('silent'),
      region: REGION,
      groupCommit: groupCommit ? groupCommitOptions : false,
    });
  const app = newApp(s.groupCommit);

  // 3. A caller: account, user, access key.
  const operator = () => ({ requestId: randomUUID(), invokedBy: 'keyledger-bench' });
  const { accountId } = await app.identity.createAccount(operator(), { name: `bench-${Date.now()}` });
  const { principalArn } = await app.identity.createPrincipal(operator(), { accountId, type: 'user', name: 'bench' });
  // The default key policy delegates to identity policies: the bench user may do everything.
  await app.identity.putPrincipalPolicy(operator(), { principalArn, policyName: 'AdministratorAccess', policyDocument: ADMINISTRATOR_ACCESS });
  const accessKey = await app.identity.createAccessKey(operator(), { principalArn });
  const authorization = `Basic ${Buffer.from(`${accessKey.accessKeyId}:${accessKey.secretAccessKey}`).toString('base64')}`;
  const awsAuth = { transport: 'aws', accessKeyId: accessKey.accessKeyId, secretAccessKey: accessKey.secretAccessKey, region: REGION } as const;
  const auth: Record<Transport, PhaseAuth> = { graphql: { transport: 'graphql', authorization }, aws: awsAuth };

  // The worker's sealer, as `keyledger worker` runs it (checkpoints every 10,000 events or 5 s), publishing to a scratch directory.
  const sealing = s.seal
    ? startSealLoop(appDb, createLogger('silent'), {
        privateKey: sealKeyFromSeed(randomBytes(32)).privateKey,
        checkpointDir: await mkdtemp(join(tmpdir(), 'keyledger-bench-checkpoints-')),
        now: () => new Date(),
      })
    : null;
  let sealingStopped = false;
  if (sealing) cleanup.add('stop the sealer', () => (sealingStopped ? Promise.resolve() : sealing.stop()));

  // 4. The HTTP server on loopback: GraphQL at /graphql, the AWS endpoint at /.
  const http = await startServer({ graphql: createGraphQLHandler(app), aws: createAwsHandler(app) });
  cleanup.add('stop HTTP server', () => http.close());
  const loopback = (address: string): string => {
    const endpoint = new URL(address);
    endpoint.hostname = '127.0.0.1';
    return endpoint.toString();
  };
  const urls: Record<Transport, string[]> = { graphql: [loopback(http.url)], aws: [loopback(http.awsUrl)] };
  const url = urls.graphql[0]!;
  // The baseline: the same service without group commit, on its own port, for AWS Decrypt.
  const baseline = s.groupCommit && s.baseline && s.operations.includes('decrypt') && s.transports.includes('aws') ? newApp(false) : null;
  const baselineHttp = baseline ? await startServer({ graphql: createGraphQLHandler(baseline), aws: createAwsHandler(baseline) }) : null;
  if (baselineHttp) cleanup.add('stop baseline HTTP server', () => baselineHttp.close());
  if (s.nodes === 2) {
    const second = await startSecondNode(ownerUrl, rootKeyBytes, s.groupCommit, cleanup);
    urls.graphql.push(`${second}graphql`);
    urls.aws.push(second);
  }
  signal.throwIfAborted();

  const gql = async <T>(query: string, variables: Record<string, unknown>): Promise<T> => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization, 'user-agent': 'keyledger-bench' },
      body: JSON.stringify({ query, variables }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    const body = JSON.parse(text) as { data?: T; errors?: unknown[] };
    if (response.status !== 200 || body.errors?.length || !body.data) throw new Error(`setup request failed: HTTP ${response.status}: ${text.slice(0, 600)}`);
    return body.data;
  };

  // 5. One symmetric key, and per client: a context, a 1 KiB plaintext, its ciphertext.
  const created = await gql<{ createKey: { keyMetadata: { keyId: string } } }>(
    `mutation { createKey(input: { description: "keyledger bench" }) { keyMetadata { keyId } } }`,
    {},
  );
  const keyId = created.createKey.keyMetadata.keyId;
  const contexts = Array.from({ length: maxClients }, (_, i) => ({ tenant: `acme-${i}`, purpose: 'bench' }));
  const plaintexts = contexts.map(() => randomBytes(1024).toString('base64'));
  const ciphertexts: string[] = [];
  for (let i = 0; i < maxClients; i++) {
    const e = await gql<{ encrypt: { ciphertextBlob: string } }>(ENCRYPT, { input: { keyId, plaintext: plaintexts[i], encryptionContext: contexts[i] } });
    ciphertexts.push(e.encrypt.ciphertextBlob);
  }
  const check = await gql<{ decrypt: { plaintext: string } }>(DECRYPT, { input: { keyId, ciphertextBlob: ciphertexts[0], encryptionContext: contexts[0] } });
  if (check.decrypt.plaintext !== plaintexts[0]) throw new Error('setup: decrypt did not round-trip');
  const bodies: Record<Transport, Record<Operation, string[]>> = {
    graphql: {
      encrypt: contexts.map((c, i) => JSON.stringify({ query: ENCRYPT, variables: { input: { keyId, plaintext: plaintexts[i], encryptionContext: c } } })),
      decrypt: contexts.map((c, i) =>
        JSON.stringify({ query: DECRYPT, variables: { input: { keyId, ciphertextBlob: ciphertexts[i], encryptionContext: c } } }),
      ),
      generateDataKey: contexts.map((c) =>
        JSON.stringify({ query: GENERATE_DATA_KEY, variables: { input: { keyId, keySpec: 'AES_256', encryptionContext: c } } }),
      ),
    },
    aws: {
      encrypt: contexts.map((c, i) => JSON.stringify({ KeyId: keyId, Plaintext: plaintexts[i], EncryptionContext: c })),
      decrypt: contexts.map((c, i) => JSON.stringify({ KeyId: keyId, CiphertextBlob: ciphertexts[i], EncryptionContext: c })),
      generateDataKey: contexts.map((c) => JSON.stringify({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: c })),
    },
  };
  // The AWS endpoint answers a signed Decrypt of a GraphQL ciphertext with its plaintext.
  const awsHeaders = await awsSigner(urls.aws[0]!, awsAuth)('Decrypt', bodies.aws.decrypt[0]!);
  const awsCheck = await fetch(urls.aws[0]!, {
    method: 'POST',
    headers: awsHeaders,
    body: bodies.aws.decrypt[0]!,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const awsCheckText = await awsCheck.text();
  if (awsCheck.status !== 200) throw new Error(`setup: AWS Decrypt failed: HTTP ${awsCheck.status}: ${awsCheckText.slice(0, 600)}`);
  if ((JSON.parse(awsCheckText) as { Plaintext?: unknown }).Plaintext !== plaintexts[0]) throw new Error('setup: AWS Decrypt did not round-trip');

  // 6. The ceiling's row: a real Decrypt audit record, read back from the log.
  const sample = await monitor.query<{ data: string; metadata: string; json_bytes: number; stored_bytes: number; row_bytes: number }>(
    `SELECT data::text AS data, metadata::text AS metadata, octet_length(data::text) AS json_bytes,
            pg_column_size(data) AS stored_bytes, pg_column_size(e.*) AS row_bytes
       FROM events e
      WHERE type = 'AuditRecord' AND data->>'eventName' = 'Decrypt' AND data->>'outcome' = 'success'
      ORDER BY global_position DESC LIMIT 1`,
  );
  const auditRow = sample.rows[0];
  if (!auditRow) throw new Error('setup: no Decrypt audit record found in events');
  const auditRecord = JSON.parse(auditRow.data) as Record<string, unknown>;
  const scratch = `keyledger_bench_scratch_${randomBytes(4).toString('hex')}`;
  // LIKE copies columns, defaults, identity, constraints and indexes, never triggers.
  await monitor.query(`CREATE TABLE ${scratch} (LIKE events INCLUDING ALL)`);
  cleanup.add(`drop ${scratch}`, () => monitor.query(`DROP TABLE IF EXISTS ${scratch}`));

  // 7. The environment.
  const settingsRow = (
    await monitor.query<{
      version: string;
      fsync: string;
      synchronous_commit: string;
      wal_sync_method: string;
      max_wal_size: string;
      checkpoint_timeout: string;
    }>(
      `SELECT current_setting('server_version') AS version, current_setting('fsync') AS fsync,
              current_setting('max_wal_size') AS max_wal_size, current_setting('checkpoint_timeout') AS checkpoint_timeout,
              current_setting('synchronous_commit') AS synchronous_commit, current_setting('wal_sync_method') AS wal_sync_method`,
    )
  ).rows[0]!;
  const cpuList = cpus();
  const environment =
    `environment: node ${process.version} ${platform()}-${arch()} · ${cpuList.length} CPUs (${cpuList[0]?.model.trim() ?? 'unknown'}) · ` +
    `PostgreSQL ${settingsRow.version}, ${dbKind} (fsync=${settingsRow.fsync}, synchronous_commit=${settingsRow.synchronous_commit}, ` +
    `wal_sync_method=${settingsRow.wal_sync_method}, max_wal_size=${settingsRow.max_wal_size}, ` +
    `checkpoint_timeout=${settingsRow.checkpoint_timeout}) · server and load in one process (load in a worker thread) · ` +
    `load average at start ${loadavg()[0]!.toFixed(2)}`;
  progress(environment);
  progress(
    `audit row: a real Decrypt record, ${auditRow.json_bytes} bytes of JSON (${auditRow.stored_bytes} bytes as jsonb, ${auditRow.row_bytes}-byte row); ` +
      `${s.warmupSeconds} s warm-up + ${s.seconds} s measured per phase`,
  );

  // The server's postmaster, when it runs on this host: the parent of our backend.
  const backend = (await monitor.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const postmaster = (await procStat(backend))?.ppid ?? null;
  const snapshot = (): Promise<Snapshot> => takeSnapshot(monitor, postmaster, app);
  const rows: Row[] = [];

  // Every phase after the same checkpoint (where this role may ask for one): see the settings at start.
  await monitor.query('CHECKPOINT').catch(() => {});

  // 8. The Postgres ceilings: one row per INSERT + COMMIT (autocommit), into the copy of `events` and
  // into a bare table (same columns, primary key only); and batchRows rows per INSERT + COMMIT into the copy.
  const bare = `keyledger_bench_bare_${randomBytes(4).toString('hex')}`;
  await monitor.query(`CREATE TABLE ${bare} (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY)`);
  await monitor.query(`ALTER TABLE ${bare} ADD PRIMARY KEY (global_position)`);
  cleanup.add(`drop ${bare}`, () => monitor.query(`DROP TABLE IF EXISTS ${bare}`));
  const columns = '(stream_id, stream_version, event_id, type, data, metadata, recorded_at)';
  const insertRows = (table: string, n: number) =>
    `INSERT INTO ${table} ${columns} VALUES ` +
    Array.from({ length: n }, (_, i) => `($${i * 4 + 1}, 1, $${i * 4 + 2}, 'AuditRecord', $${i * 4 + 3}, $${i * 4 + 4}, now())`).join(', ');
  const ceilings: { kind: Ceiling; table: string; rows: number }[] = [
    { kind: 'ceiling', table: scratch, rows: 1 },
    { kind: 'batched ceiling', table: scratch, rows: s.batchRows },
    { kind: 'bare ceiling', table: bare, rows: 1 },
  ];
  const runCeiling = async (ceiling: (typeof ceilings)[number], pass: 'start' | 'end'): Promise<void> => {
    const insert = insertRows(ceiling.table, ceiling.rows);
    for (const clients of s.clients) {
      signal.throwIfAborted();
      const pool = new pg.Pool({ connectionString: ownerUrl, max: clients, application_name: 'keyledger-bench-ceiling' });
      pool.on('error', () => {});
      try {
        const one = async (): Promise<void> => {
          const parameters: unknown[] = [];
          for (let i = 0; i < ceiling.rows; i++) {
            // Ids as the service makes them (time-ordered: src/domain/uuid-v7.ts).
            const requestId = uuidV7();
            parameters.push(
              `request-${requestId}`,
              uuidV7(),
              JSON.stringify({ ...auditRecord, requestId, eventTime: new Date().toISOString() }),
              auditRow.metadata,
            );
          }
          await pool.query(insert, parameters);
        };
        const row = await measure(
          `${ceiling.kind} ${clients}${pass === 'end' ? ' (again)' : ''}`,
          ceiling.kind,
          null,
          clients,
          s,
          snapshot,
          signal,
          async (onMark) => {
            const r = await drive(clients, s.warmupSeconds * 1000, s.seconds * 1000, one, onMark, { signal });
            return { ...r, clientCpuMicros: null, wallMs: null, signMs: null };
          },
          { rowsPerOp: ceiling.rows },
        );
        rows.push({ ...row, ceilingPass: pass });
      } finally {
        await withTimeout(pool.end(), 10_000, 'closing the ceiling pool').catch(() => {});
      }
    }
  };
  for (const ceiling of s.ceilings ? ceilings : []) await runCeiling(ceiling, 'start');
  // Emptied, so that autovacuum's pass over the ceilings' rows cannot fall into the service's first phase.
  if (s.ceilings) await monitor.query(`TRUNCATE ${scratch}, ${bare}`);

  // 9. The service over HTTP: per operation, GraphQL then the AWS endpoint (close in time, as the log grows).
  for (const operation of s.operations) {
    for (const transport of s.transports) {
      for (const clients of s.clients) {
        signal.throwIfAborted();
        const phase: HttpPhase = {
          urls: urls[transport],
          auth: auth[transport],
          operation,
          clients,
          warmupMs: s.warmupSeconds * 1000,
          measureMs: s.seconds * 1000,
          bodies: bodies[transport][operation].slice(0, clients),
          expectedPlaintexts: operation === 'decrypt' ? plaintexts.slice(0, clients) : null,
        };
        const label = `${transport} ${transport === 'aws' ? AWS_OPERATION[operation] : operation} ${clients}`;
        rows.push(
          await measure(label, operation, transport, clients, s, snapshot, signal, (onMark) => runWorker(phase, onMark, signal), {
            groupCommit: s.groupCommit,
          }),
        );
      }
    }
  }
  // 10. The plain ceiling again, after the service's phases: a ceiling measured while the machine was
  // busier than usual would flatter every ratio, so the ratios take the higher of the two passes.
  if (s.ceilings) await runCeiling(ceilings[0]!, 'end');
  // 11. The baseline in the same run: AWS Decrypt, one transaction per request (this process only).
  if (baselineHttp) {
    for (const clients of s.clients) {
      signal.throwIfAborted();
      const phase: HttpPhase = {
        urls: [loopback(baselineHttp.awsUrl)],
        auth: auth.aws,
        operation: 'decrypt',
        clients,
        warmupMs: s.warmupSeconds * 1000,
        measureMs: s.seconds * 1000,
        bodies: bodies.aws.decrypt.slice(0, clients),
        expectedPlaintexts: plaintexts.slice(0, clients),
      };
      rows.push(
        await measure(
          `aws Decrypt ${clients} (no group commit)`,
          'decrypt',
          'aws',
          clients,
          s,
          snapshot,
          signal,
          (onMark) => runWorker(phase, onMark, signal),
          { groupCommit: false },
        ),
      );
    }
  }

  const sealWindow = sealing ? await sealingWindow(monitor, () => ((sealingStopped = true), sealing.stop())) : null;

  console.log('');
  console.log(environment);
  console.log(
    `ceiling: one INSERT + COMMIT (autocommit, one round trip) of a ${auditRow.json_bytes}-byte Decrypt audit record into a copy of \`events\` ` +
      `(same columns and indexes, no triggers), 1 connection per client; measured before the service's phases and again after them, ` +
      `and 'vs PG ceiling' divides by the higher of the two`,
  );
  console.log(
    `batched ceiling: ${s.batchRows} such rows per INSERT + COMMIT, rows/s; bare ceiling: ` +
      `one row per INSERT + COMMIT into a table with the same columns and only a primary key`,
  );
  console.log(
    `service: group commit ${s.groupCommit ? 'on' : 'off'}; ` +
      (s.readIndexes ? '' : `read-side indexes dropped (BENCH_READ_INDEXES=off: ${droppedIndexes.length} of events' indexes, the ceilings' copy too); `) +
      (s.nodes === 2
        ? 'two keyledger processes (this one and a `keyledger serve` child), clients alternating between them; ' +
          'the batch column and the CPU columns are this process only'
        : 'one keyledger process'),
  );
  console.log(
    `phases: ${s.warmupSeconds} s warm-up + ${s.seconds} s measured; encrypt = 1 KiB plaintext, ` +
      `generateDataKey = AES_256; every request with a 2-key encryption context`,
  );
  console.log(
    `transports: GraphQL at /graphql (Basic access-key header); AWS = the KMS JSON 1.1 protocol at POST / (X-Amz-Target: TrentService.<Op>), ` +
      `each request SigV4-signed (kms, ${REGION}) in the load thread just before it is sent, as @smithy/signature-v4 signs it (checked on each phase's first ` +
      `request), and verified by the server. Load: one keep-alive HTTP/1.1 connection per client on a bare socket (scripts/lean-http.ts). ` +
      `The signing is outside the latency, but it runs in this process (the load worker thread) on the same CPUs as the server: see sign ms`,
  );
  console.log('');
  printTable(rows);
  console.log('');
  console.log(
    'pool wait, queries, query ms, commit ms: calls of the pg driver by the app pool, timed in this process (commit = the durable WAL flush ' +
      'and its round trip); rest ms = mean - those (HTTP, GraphQL or AWS JSON, auth incl. SigV4 verification, crypto, JSON, event-loop queueing). ' +
      'sign ms = mean wall time of SigV4-signing one AWS request in the load thread (its event-loop waits included): not in the latency, but in the ' +
      'closed loop (a client signs, then sends), so ops/s include it. srv / pg CPU ms = CPU time per operation ' +
      "of the main thread (HTTP + GraphQL or AWS endpoint + services) / of the Postgres server. GC ms = the main thread's garbage-collection " +
      'pauses per operation (part of its CPU). ' +
      'CPU %: srv = main thread, node = whole process (incl. the load thread, GC, libuv), ' +
      'pg = this Postgres server, other = the rest of the host. xacts ≈ committed transactions (Postgres stats lag ~1 s); WAL B exact; ' +
      'WAL fsyncs from pg_stat_io. ckpts = checkpoints completed in the measured window (after one, every page written pays a ' +
      'full-page image in the WAL).',
  );
  if (sealWindow) console.log(sealWindow);
  console.log(`total run time ${((performance.now() - startedAt) / 1000).toFixed(0)} s`);
}

/**
 * Once the sealer has caught up with the run (a checkpoint covers every event),
 * stops it and describes, over every sealed audit record, the time from its
 * commit (recorded_at) to the signing of the first checkpoint covering it: the
 * window in which it could have been altered without a trace.
 */
async function sealingWindow(monitor: pg.Client, stop: () => Promise<void>): Promise<string> {
  const started = performance.now();
  // Sealed and checkpointed: the newest checkpoint's tree holds every event.
  const behind = async () =>
    Number(
      (await monitor.query<{ n: string }>(`SELECT ((SELECT count(*) FROM events) - coalesce((SELECT max(tree_size) FROM log_checkpoints), 0))::text AS n`))
        .rows[0]!.n,
    );
  let left = await behind();
  while (left > 0 && performance.now() - started < 60_000) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    left = await behind();
  }
  await stop();
  const { rows } = await monitor.query<{ p50: number; p99: number; max: number; n: string }>(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY w) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY w) AS p99, max(w) AS max, count(*)::text AS n
       FROM (SELECT extract(epoch FROM c.signed_at - e.recorded_at)::float8 AS w
               FROM log_seal_leaves s JOIN events e ON e.event_id = s.event_id
               CROSS JOIN LATERAL (SELECT signed_at FROM log_checkpoints c WHERE c.tree_size > s.leaf_index ORDER BY c.tree_size LIMIT 1) c
              WHERE e.type = 'AuditRecord') AS windows`,
  );
  const r = rows[0]!;
  return (
    `sealing window under load (the worker's sealer in this process through every phase): ${r.n} audit records, from commit to the checkpoint covering them ` +
    `p50 ${r.p50.toFixed(2)} s, p99 ${r.p99.toFixed(2)} s, max ${r.max.toFixed(2)} s${left > 0 ? `; ${left} events still unsealed after 60 s` : ''}`
  );
}

const ENCRYPT = `mutation Encrypt($input: EncryptInput!) { encrypt(input: $input) { ciphertextBlob keyId } }`;
const DECRYPT = `mutation Decrypt($input: DecryptInput!) { decrypt(input: $input) { plaintext keyId } }`;
const GENERATE_DATA_KEY = `mutation GenerateDataKey($input: GenerateDataKeyInput!) { generateDataKey(input: $input) { plaintext ciphertextBlob keyId } }`;

async function startServer(handlers: Parameters<typeof startHttpServer>[0]): Promise<RunningServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startHttpServer(handlers, { host: '127.0.0.1', port: await freePort() });
    } catch (error) {
      if (attempt === 3 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    }
  }
}

type Load = (
  onMark: (mark: 'start' | 'end') => void,
) => Promise<DriveResult & { clientCpuMicros: number | null; wallMs: number | null; signMs: number | null }>;

/** Runs one phase, snapshotting the resource counters at the edges of its measured window. */
async function measure(
  label: string,
  operation: Row['operation'],
  transport: Row['transport'],
  clients: number,
  s: Settings,
  snapshot: () => Promise<Snapshot>,
  signal: AbortSignal,
  load: Load,
  options: { rowsPerOp?: number; groupCommit?: boolean } = {},
): Promise<Row> {
  const rowsPerOp = options.rowsPerOp ?? 1;
  progress(`${label.padEnd(26)} running ${s.warmupSeconds + s.seconds} s`);
  const marks: Partial<Record<'start' | 'end', Promise<Snapshot>>> = {};
  const rss: Partial<Record<'start' | 'end', number>> = {};
  // RSS every 10 s of the measured window too: flat, or still climbing at its end?
  const rssSamples: number[] = [];
  let sampler: NodeJS.Timeout | undefined;
  const result = await withTimeout(
    load((mark) => {
      rss[mark] = process.memoryUsage().rss / 2 ** 20;
      clearInterval(sampler);
      if (mark === 'start') sampler = setInterval(() => rssSamples.push(process.memoryUsage().rss / 2 ** 20), 10_000);
      marks[mark] = snapshot();
      marks[mark].catch(() => {});
    }),
    (s.warmupSeconds + s.seconds) * 1000 + 60_000,
    `phase ${label}`,
  );
  signal.throwIfAborted();
  if (result.firstError !== null) throw new Error(`${label}: a request failed, aborting. First error: ${result.firstError}`);
  const [a, b] = await Promise.all([marks.start, marks.end]);
  const sorted = result.latencies.sort();
  const count = sorted.length;
  const window = a && b ? (b.at - a.at) / 1000 : s.seconds;
  const perOp = (delta: number | null) => (delta === null || count === 0 ? null : delta / count);
  const diff = (f: (x: Snapshot) => number | null) => {
    if (!a || !b) return null;
    const [x, y] = [f(a), f(b)];
    return x === null || y === null ? null : y - x;
  };
  const corePercent = (ticks: number | null) => (ticks === null ? null : ticks / window);
  const hostBusy = diff((x) => x.host.busy);
  const nodeCpu = diff((x) => x.processCpuMicros / 10_000);
  const pgCpu = a && b ? ticksBetween(a.pgCpuTicks, b.pgCpuTicks) : null;
  const batches = diff((x) => x.batches?.batches ?? null);
  const batched = diff((x) => x.batches?.records ?? null);
  const row: Row = {
    label,
    operation,
    transport,
    groupCommit: options.groupCommit ?? null,
    batch: options.groupCommit && batches ? (batched ?? 0) / batches : null,
    clients,
    rssStartMb: rss.start ?? null,
    rssEndMb: rss.end ?? null,
    rssSamplesMb: rssSamples,
    opsPerSecond: (count * rowsPerOp) / s.seconds,
    mean: count === 0 ? Number.NaN : sorted.reduce((t, v) => t + v, 0) / count,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    errors: 0,
    serverCpu: corePercent(diff((x) => x.serverCpuMicros / 10_000)),
    gcMs: perOp(diff((x) => x.gcMs)),
    clientCpu: result.clientCpuMicros !== null && result.wallMs ? (result.clientCpuMicros / 1000 / result.wallMs) * 100 : null,
    nodeCpu: corePercent(nodeCpu),
    pgCpu: corePercent(pgCpu),
    otherCpu: hostBusy === null || nodeCpu === null ? null : corePercent(Math.max(0, hostBusy - nodeCpu - (pgCpu ?? 0))),
    checkoutMs: perOp(diff((x) => x.pg.checkoutMs)),
    queries: perOp(diff((x) => x.pg.queries)),
    queryMs: perOp(diff((x) => x.pg.queryMs)),
    commitMs: perOp(diff((x) => x.pg.commitMs)),
    xacts: perOp(diff((x) => x.xacts)),
    walBytes: perOp(diff((x) => (x.walLsn === null ? null : Number(x.walLsn)))),
    fsyncs: perOp(diff((x) => x.walFsyncs)),
    checkpoints: diff((x) => x.checkpoints),
    signMs: result.signMs,
  };
  progress(
    `${label.padEnd(26)} ${row.opsPerSecond.toFixed(0)} ops/s, p50 ${row.p50.toFixed(2)} ms, p99 ${row.p99.toFixed(2)} ms` +
      (row.batch === null ? '' : `, ${row.batch.toFixed(1)} records per batch`) +
      (row.clientCpu === null ? '' : `; load thread ${row.clientCpu.toFixed(0)}% of a core`) +
      (row.signMs === null ? '' : `, signing ${row.signMs.toFixed(3)} ms/request`) +
      (row.rssStartMb === null || row.rssEndMb === null ? '' : `; RSS ${row.rssStartMb.toFixed(0)} -> ${row.rssEndMb.toFixed(0)} MiB`) +
      (row.rssSamplesMb.length > 1 ? ` (every 10 s: ${row.rssSamplesMb.map((m) => m.toFixed(0)).join(', ')})` : ''),
  );
  return row;
}

function runWorker(phase: HttpPhase, onMark: (mark: 'start' | 'end') => void, signal: AbortSignal): ReturnType<Load> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: phase });
    let settled = false;
    const onAbort = () => {
      void worker.terminate();
      finish(() => reject(signal.reason));
    };
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      f();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'mark') onMark(message.mark);
      else {
        // Its keep-alive sockets would hold it open a few seconds more.
        void worker.terminate();
        finish(() =>
          resolve({
            latencies: message.latencies,
            firstError: message.firstError,
            clientCpuMicros: message.cpuMicros,
            wallMs: message.wallMs,
            signMs: message.signMs,
          }),
        );
      }
    });
    worker.once('error', (error) => finish(() => reject(error)));
    worker.once('exit', (code) => finish(() => reject(new Error(`load worker exited with code ${code} before reporting`))));
  });
}

async function takeSnapshot(monitor: pg.Client, postmaster: number | null, app: Keyledger): Promise<Snapshot> {
  // The local counters first, at the instant of the mark; the database's after.
  const at = performance.now();
  const serverCpu = process.threadCpuUsage();
  const processCpu = process.cpuUsage();
  const pgNow = { ...pgCounters };
  const committed = app.groupCommit?.committer.stats();
  const batches = committed ? { batches: committed.batches, records: committed.records } : null;
  const host = await hostCpuTicks();
  const pgCpuTicks = await postgresCpuTicks(postmaster);
  let xacts: number | null = null;
  let walLsn: bigint | null = null;
  let walFsyncs: number | null = null;
  try {
    const r = await monitor.query<{ xacts: string; lsn: string }>(
      `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::text AS xacts, pg_current_wal_lsn()::text AS lsn`,
    );
    xacts = Number(r.rows[0]!.xacts);
    const [hi, lo] = r.rows[0]!.lsn.split('/');
    walLsn = (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
  } catch {
    // not readable by this role: leave the columns empty
  }
  try {
    const r = await monitor.query<{ fsyncs: string | null }>(`SELECT sum(fsyncs)::text AS fsyncs FROM pg_stat_io WHERE object = 'wal'`);
    walFsyncs = r.rows[0]?.fsyncs == null ? null : Number(r.rows[0].fsyncs);
  } catch {
    // pg_stat_io has no WAL rows before PostgreSQL 18
  }
  let checkpoints: number | null = null;
  try {
    const r = await monitor.query<{ done: string }>(`SELECT num_done::text AS done FROM pg_stat_checkpointer`);
    checkpoints = r.rows[0] ? Number(r.rows[0].done) : null;
  } catch {
    // pg_stat_checkpointer came with PostgreSQL 17
  }
  return {
    at,
    serverCpuMicros: serverCpu.user + serverCpu.system,
    gcMs: mainGcMs,
    processCpuMicros: processCpu.user + processCpu.system,
    host,
    pg: pgNow,
    pgCpuTicks,
    xacts,
    walLsn,
    walFsyncs,
    checkpoints,
    batches,
  };
}

/**
 * The host's CPU time from /proc/stat (iowait counts as idle), in 1/100 s;
 * os.cpus() where there is no /proc (it drops iowait and steal).
 */
async function hostCpuTicks(): Promise<{ busy: number; total: number }> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9).map(Number) as number[];
    const busy = user! + nice! + system! + irq! + softirq! + steal!;
    return { busy, total: busy + idle! + iowait! };
  } catch {
    return cpus().reduce(
      (acc, c) => {
        const { user, nice, sys, irq, idle } = c.times;
        return { busy: acc.busy + (user + nice + sys + irq) / 10, total: acc.total + (user + nice + sys + irq + idle) / 10 };
      },
      { busy: 0, total: 0 },
    );
  }
}

/**
 * CPU time (in 1/100 s) per process of the Postgres server: the postmaster and
 * its children, from /proc. Null when the server is not on this host (or there
 * is no /proc).
 */
async function postgresCpuTicks(postmaster: number | null): Promise<Map<number, number> | null> {
  if (postmaster === null) return null;
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return null;
  }
  const ticks = new Map<number, number>();
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (pid) => {
        const stat = await procStat(Number(pid));
        if (stat && (stat.pid === postmaster || stat.ppid === postmaster)) ticks.set(stat.pid, stat.ticks);
      }),
  );
  return ticks.size > 0 ? ticks : null;
}

async function procStat(pid: number): Promise<{ pid: number; ppid: number; ticks: number } | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name start at field 3 (state).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** CPU used between two per-process samples; processes that exited in between are lost. */
function ticksBetween(a: Map<number, number> | null, b: Map<number, number> | null): number | null {
  if (!a || !b) return null;
  let total = 0;
  for (const [pid, t] of b) total += t - (a.get(pid) ?? 0);
  return total;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

function printTable(rows: Row[]): void {
  // Per client count, the higher of a ceiling's passes (the plain one runs again at the end).
  const ceilingOf = (kind: Ceiling) => {
    const best = new Map<number, number>();
    for (const r of rows) if (r.operation === kind) best.set(r.clients, Math.max(best.get(r.clients) ?? 0, r.opsPerSecond));
    return best;
  };
  const [ceiling, batchedCeiling] = [ceilingOf('ceiling'), ceilingOf('batched ceiling')];
  const isCeiling = (r: Row): r is Row & { operation: Ceiling } => r.transport === null;
  const CEILINGS: readonly string[] = ['ceiling', 'batched ceiling', 'bare ceiling'] satisfies Ceiling[];
  const CEILING_NAMES: Record<Ceiling, string> = {
    ceiling: 'PG ceiling (INSERT+COMMIT)',
    'batched ceiling': 'PG batched ceiling (N rows/COMMIT)',
    'bare ceiling': 'PG bare ceiling (PK only)',
  };
  const name = (r: Row): string => {
    const op = r.operation;
    if (CEILINGS.includes(op)) return `${CEILING_NAMES[op as Ceiling]}${r.ceilingPass === 'end' ? ', again' : ''}`;
    const operation = op as Operation;
    return `${r.transport === 'aws' ? `AWS ${AWS_OPERATION[operation]}` : `GraphQL ${operation}`}${r.groupCommit === false ? ' (no group commit)' : ''}`;
  };
  const ratio = (r: Row, base: Map<number, number>) => {
    const c = base.get(r.clients);
    return c ? `${(r.opsPerSecond / c).toFixed(2)}x` : '-';
  };
  const fmt = (v: number | null, digits: number, suffix = ''): string => (v === null || !Number.isFinite(v) ? '-' : `${v.toFixed(digits)}${suffix}`);
  table(
    ['operation', 'clients', 'ops/s', 'p50 ms', 'p99 ms', 'errors', 'batch', 'vs PG ceiling', 'vs batched', 'RSS MiB'],
    rows.map((r) => [
      name(r),
      String(r.clients),
      r.opsPerSecond.toFixed(0),
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      String(r.errors),
      fmt(r.batch, 1),
      ratio(r, ceiling),
      ratio(r, batchedCeiling),
      r.rssStartMb === null || r.rssEndMb === null ? '-' : `${r.rssStartMb.toFixed(0)}->${r.rssEndMb.toFixed(0)}`,
    ]),
  );
  console.log('');
  console.log('where the time goes (per operation, except CPU % = share of one core over the measured window):');
  table(
    [
      'operation',
      'clients',
      'mean ms',
      'pool wait',
      'queries',
      'query ms',
      'commit ms',
      'rest ms',
      'sign ms',
      'srv CPU ms',
      'GC ms',
      'pg CPU ms',
      'srv CPU',
      'node CPU',
      'pg CPU',
      'other CPU',
      'xacts',
      'WAL B',
      'WAL fsyncs',
      'ckpts',
    ],
    rows.map((r) => {
      const db = isCeiling(r) || r.queryMs === null ? null : (r.checkoutMs ?? 0) + r.queryMs + (r.commitMs ?? 0);
      return [
        name(r),
        String(r.clients),
        fmt(r.mean, 2),
        isCeiling(r) ? '-' : fmt(r.checkoutMs, 2),
        fmt(r.queries, 2),
        fmt(r.queryMs, 2),
        isCeiling(r) ? '(in query)' : fmt(r.commitMs, 2),
        db === null ? '-' : fmt(r.mean - db, 2),
        fmt(r.signMs, 3),
        fmt(r.serverCpu === null ? null : (r.serverCpu * 10) / r.opsPerSecond, 2),
        fmt(r.gcMs, 3),
        fmt(r.pgCpu === null ? null : (r.pgCpu * 10) / r.opsPerSecond, 2),
        fmt(r.serverCpu, 0, '%'),
        fmt(r.nodeCpu, 0, '%'),
        fmt(r.pgCpu, 0, '%'),
        fmt(r.otherCpu, 0, '%'),
        fmt(r.xacts, 2),
        fmt(r.walBytes, 0),
        fmt(r.fsyncs, 2),
        fmt(r.checkpoints, 0),
      ];
    }),
  );
}

function table(header: string[], body: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
}

/**
 * BENCH_NODES=2: a second keyledger process (`keyledger serve`, the CLI, in a
 * child process) on the same database and root key; answers its base URL once
 * it is healthy. Its own CPU and driver calls are not in the table's columns.
 */
async function startSecondNode(ownerUrl: string, rootKeyBytes: Buffer, groupCommit: boolean, cleanup: Cleanup): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keyledger-bench-node2-'));
  cleanup.add(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  // The young generation's size this process runs with (npm run bench sets it, as npm start does).
  const heapFlags = process.execArgv.filter((a) => a.startsWith('--max-semi-space-size'));
  const child: ChildProcess = spawn(process.execPath, [...heapFlags, new URL('../src/cli/main.ts', import.meta.url).pathname, 'serve'], {
    env: {
      ...process.env,
      DATABASE_URL: ownerUrl,
      KEYLEDGER_ROOT_KEY: rootKeyBytes.toString('base64'),
      KEYLEDGER_DATA_DIR: dir,
      KEYLEDGER_HOST: '127.0.0.1',
      KEYLEDGER_PORT: String(port),
      KEYLEDGER_LOG_LEVEL: 'error',
      KEYLEDGER_GROUP_COMMIT: groupCommit ? 'on' : 'off',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  cleanup.add('stop the second keyledger', async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  });
  const base = `http://127.0.0.1:${port}/`;
  const deadline = performance.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the second keyledger exited with code ${child.exitCode}`);
    const healthy = await fetch(`${base}healthz`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (healthy) return base;
    if (performance.now() > deadline) throw new Error('the second keyledger did not become healthy in 60 s');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

if (isMainThread) {
  installPgTypeParsers();
  instrumentPg();
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) mainGcMs += entry.duration;
  }).observe({ entryTypes: ['gc'] });
  await main();
} else await workerMain();
