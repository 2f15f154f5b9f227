import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Clock } from '../clock.ts';
import { KmsError } from '../domain/errors.ts';
import {
  DEFAULT_REQUEST_QUOTAS,
  keyledgerOperationQuota,
  keyQuotaKind,
  quotaDependsOnKey,
  quotaOf,
  shareOf,
  THROTTLING_MESSAGE,
  TokenBucket,
  UNAUTHENTICATED_QUOTA,
  type KeyQuotaKind,
  type QuotaName,
} from '../domain/quotas.ts';
import type { Logger } from '../logger.ts';
import type { Db } from '../store/database.ts';
import { readKeySpec } from '../store/projections.ts';
import { heartbeatQuotaPeer, leaveQuotaPeers } from '../store/quota-peers.ts';
import type { AuditRecord } from './audit.ts';
import type { RequestContext } from './context.ts';
import type { KeyResolver } from './key-resolver.ts';
import { identityOf, type OperationSpec, type RequestRunner } from './request-runner.ts';
import { uuidV7 } from '../domain/uuid-v7.ts';

/** Requests refused before any operation ran (unknown operations, bodies that are not JSON, documents that do not validate), per account. */
export const REFUSED_REQUEST_QUOTA = 'Requests refused before any operation';

/** How request quotas are enforced; see `quotaSettingsFrom` for the environment variables. */
export interface QuotaSettings {
  /** Requests per second of each quota, per account (UNAUTHENTICATED_QUOTA: per source IP). */
  rates: Readonly<Record<QuotaName, number>>;
  /** Throttled requests are recorded once per source, quota and window of this many seconds. */
  windowSeconds: number;
  /** How often a process announces itself and recounts the processes sharing the quotas. */
  heartbeatSeconds: number;
}

export const DEFAULT_QUOTA_SETTINGS: QuotaSettings = {
  rates: { ...DEFAULT_REQUEST_QUOTAS, [REFUSED_REQUEST_QUOTA]: 10 },
  windowSeconds: 60,
  heartbeatSeconds: 5,
};

/** Who a throttled request came from, as its audit record names it. */
type Who = Pick<AuditRecord, 'requestId' | 'accountId' | 'userIdentity' | 'sourceIp' | 'userAgent'>;

/** The throttled requests of one source and quota in one window: recorded once when it opens, tallied when it closes. */
interface Window {
  endsAtMs: number;
  /** The request id of the window's record: every throttled answer of the window carries it. */
  recorded: Promise<KmsError>;
  count: number;
  who: Who;
  spec: OperationSpec;
  quota: QuotaName;
  openedAt: Date;
}

/** Key kinds of KeyId texts, for the shared cryptographic quotas: a key's spec never changes, an alias may move. */
const KEY_KIND_TTL_MS = 60_000;
const KEY_KIND_CACHE_SIZE = 10_000;

/**
 * AWS KMS request quotas (issue 15): a token bucket per account and quota
 * (src/domain/quotas.ts), and one per source IP address for requests that
 * fail authentication. A request over its quota is answered with AWS's
 * ThrottlingException (HTTP 400) and is recorded in aggregate: the first
 * throttled request of a source (principal, or IP address when
 * unauthenticated) and quota opens a window whose one record is committed
 * before that answer, every throttled request of the window answers with that
 * record's request id, and a second record tallies how many there were when
 * the window closes. So a flood adds at most two records per source, quota
 * and window to the log.
 *
 * With N processes serving one database, each process enforces 1/N of every
 * quota: the processes count each other through the `quota_peers` table
 * (a heartbeat every few seconds), so no request pays a database round trip
 * for its quota. Until its first heartbeat a process assumes it is alone.
 *
 * @example
 * const throttled = await quotas.admit(ctx, 'Encrypt', input);
 * if (throttled) throw await quotas.throttle(ctx, spec, throttled);
 */
export class RequestQuotas {
  readonly #db: Db;
  readonly #runner: RequestRunner;
  readonly #resolver: KeyResolver;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #settings: QuotaSettings;
  readonly #monotonicMs: () => number;
  readonly #processId = randomUUID();
  #processes = 1;
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #windows = new Map<string, Window>();
  readonly #keyKinds = new Map<string, { kind: KeyQuotaKind; atMs: number }>();
  readonly #tallies = new Set<Promise<void>>();
  #timers: NodeJS.Timeout[] = [];

  constructor(deps: {
    db: Db;
    runner: RequestRunner;
    resolver: KeyResolver;
    clock: Clock;
    logger: Logger;
    settings?: QuotaSettings;
    monotonicMs?: () => number;
  }) {
    this.#db = deps.db;
    this.#runner = deps.runner;
    this.#resolver = deps.resolver;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#settings = deps.settings ?? DEFAULT_QUOTA_SETTINGS;
    this.#monotonicMs = deps.monotonicMs ?? (() => performance.now());
  }

  /** The settings in force. */
  get settings(): QuotaSettings {
    return this.#settings;
  }

  /** How many processes share the quotas, as of the last heartbeat. */
  get processes(): number {
    return this.#processes;
  }

  /** Announces this process, and keeps doing so, so the quotas are split between the processes serving. */
  async start(): Promise<void> {
    await this.heartbeat();
    const heartbeat = setInterval(() => void this.heartbeat(), this.#settings.heartbeatSeconds * 1000);
    const sweep = setInterval(() => this.#sweep(), 1000);
    heartbeat.unref();
    sweep.unref();
    this.#timers = [heartbeat, sweep];
  }

  /** One heartbeat: announces this process and recounts the processes sharing the quotas. */
  async heartbeat(): Promise<void> {
    try {
      const processes = await heartbeatQuotaPeer(this.#db, this.#processId);
      if (processes !== this.#processes) {
        this.#processes = processes;
        this.#buckets.clear(); // every bucket's rate changed
      }
    } catch (error) {
      this.#logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'quota heartbeat failed; keeping the last process count');
    }
  }

  /** Stops the timers, records the tallies of the open windows, and withdraws this process. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    for (const [key, window] of this.#windows) this.#closeWindow(key, window);
    await Promise.all(this.#tallies);
    await leaveQuotaPeers(this.#db, this.#processId).catch(() => undefined);
  }

  /**
   * Takes one request of `operation` from the caller's account's quota;
   * returns the quota's name when it is exhausted (the request must be
   * throttled), undefined when admitted.
   */
  async admit(ctx: RequestContext, operation: string, input: Record<string, unknown>): Promise<QuotaName | undefined> {
    const kind = quotaDependsOnKey(operation) ? await this.#keyKind(ctx.caller.accountId, keyIdOf(operation, input)) : undefined;
    const quota = quotaOf(operation, input, kind) ?? REFUSED_REQUEST_QUOTA;
    return this.#take(`${quota}\u0000${ctx.caller.accountId}`, quota) ? undefined : quota;
  }

  /**
   * Takes one request of one of keyledger's own operations (the audit read
   * side, checkpoints and proofs, the compliance report, identity policies:
   * keyledgerOperationQuota) from the caller's account's quota; the quota's
   * name when it is exhausted, undefined when admitted or when `eventName` is
   * none of them (a KMS operation is admitted by `admit`, in the registry).
   */
  admitOperation(ctx: RequestContext, eventName: string): QuotaName | undefined {
    const quota = keyledgerOperationQuota(eventName);
    if (quota === undefined) return undefined;
    return this.#take(`${quota}\u0000${ctx.caller.accountId}`, quota) ? undefined : quota;
  }

  /** Takes one refused-before-any-operation request from the account's quota for them; the quota's name when exhausted. */
  admitRefused(ctx: RequestContext): QuotaName | undefined {
    return this.#take(`${REFUSED_REQUEST_QUOTA}\u0000${ctx.caller.accountId}`, REFUSED_REQUEST_QUOTA) ? undefined : REFUSED_REQUEST_QUOTA;
  }

  /** Whether requests from `sourceIp` that fail authentication are over their quota (they are then throttled unchecked). */
  unauthenticatedExhausted(sourceIp: string | null): boolean {
    const bucket = this.#bucket(`${UNAUTHENTICATED_QUOTA}\u0000${sourceIp ?? ''}`, UNAUTHENTICATED_QUOTA);
    return !bucket.available(this.#monotonicMs());
  }

  /** Counts a request from `sourceIp` that failed authentication. */
  failedAuthentication(sourceIp: string | null): void {
    this.#take(`${UNAUTHENTICATED_QUOTA}\u0000${sourceIp ?? ''}`, UNAUTHENTICATED_QUOTA);
  }

  /**
   * The ThrottlingException for an authenticated request over `quota`,
   * recorded in aggregate (see the class).
   */
  throttle(ctx: RequestContext, spec: OperationSpec, quota: QuotaName): Promise<KmsError> {
    const who: Who = {
      requestId: ctx.requestId,
      accountId: ctx.caller.accountId,
      userIdentity: identityOf(ctx.caller),
      sourceIp: ctx.sourceIp,
      userAgent: ctx.userAgent,
    };
    return this.#throttled(`principal:${ctx.caller.principalArn}`, who, spec, quota);
  }

  /** The ThrottlingException for an unauthenticated request from an address over its quota, recorded in aggregate. */
  throttleUnauthenticated(who: Who, spec: OperationSpec): Promise<KmsError> {
    return this.#throttled(`ip:${who.sourceIp ?? ''}`, who, spec, UNAUTHENTICATED_QUOTA);
  }

  async #throttled(source: string, who: Who, spec: OperationSpec, quota: QuotaName): Promise<KmsError> {
    const nowMs = this.#monotonicMs();
    const key = `${quota}\u0000${source}`;
    let window = this.#windows.get(key);
    if (window && nowMs >= window.endsAtMs) {
      this.#closeWindow(key, window);
      window = undefined;
    }
    if (!window) {
      const opened: Window = {
        endsAtMs: nowMs + this.#settings.windowSeconds * 1000,
        recorded: this.#recordOpening(who, spec, quota),
        count: 0,
        who,
        spec,
        quota,
        openedAt: this.#clock.now(),
      };
      this.#windows.set(key, opened);
      window = opened;
    }
    window.count += 1;
    const recorded = await window.recorded;
    if (recorded.code !== 'ThrottlingException') {
      // Not recorded: this answer is an internal error, and the next throttled request tries again.
      if (this.#windows.get(key) === window) this.#windows.delete(key);
      return recorded;
    }
    const error = new KmsError('ThrottlingException', THROTTLING_MESSAGE);
    error.requestId = recorded.requestId;
    return error;
  }

  async #recordOpening(who: Who, spec: OperationSpec, quota: QuotaName): Promise<KmsError> {
    const error = new KmsError('ThrottlingException', THROTTLING_MESSAGE);
    error.requestId = who.requestId;
    try {
      await this.#runner.recordRejected(who, spec, error, {
        throttling: {
          quota,
          windowSeconds: this.#settings.windowSeconds,
          aggregated: 'this record stands for every throttled request of its source and quota in the window; a tally record follows when more were',
        },
      });
      return error;
    } catch (failure) {
      this.#logger.error(
        { requestId: who.requestId, error: failure instanceof Error ? failure.message : String(failure) },
        'could not record a throttled request',
      );
      const internal = new KmsError('KMSInternalException', 'An internal error occurred. The request was not completed.');
      internal.requestId = who.requestId;
      return internal;
    }
  }

  /** Ends a window: when it throttled more than the request it recorded, one tally record says how many. */
  #closeWindow(key: string, window: Window): void {
    this.#windows.delete(key);
    if (window.count <= 1) return;
    const tally = (async () => {
      const recorded = await window.recorded;
      if (recorded.code !== 'ThrottlingException') return;
      const error = new KmsError('ThrottlingException', THROTTLING_MESSAGE);
      await this.#runner.recordRejected({ ...window.who, requestId: uuidV7() }, window.spec, error, {
        throttling: {
          quota: window.quota,
          windowSeconds: this.#settings.windowSeconds,
          windowStart: window.openedAt.toISOString(),
          windowRequestId: recorded.requestId,
          throttledRequests: window.count,
        },
      });
    })()
      .catch((failure: unknown) =>
        this.#logger.error({ error: failure instanceof Error ? failure.message : String(failure) }, 'could not record a throttling tally'),
      )
      .finally(() => this.#tallies.delete(tally));
    this.#tallies.add(tally);
  }

  /** Closes ended windows and forgets full buckets (a full bucket answers as a new one would). */
  #sweep(): void {
    const nowMs = this.#monotonicMs();
    for (const [key, window] of this.#windows) if (nowMs >= window.endsAtMs) this.#closeWindow(key, window);
    for (const [key, bucket] of this.#buckets) if (bucket.full(nowMs)) this.#buckets.delete(key);
    for (const [key, entry] of this.#keyKinds) if (nowMs - entry.atMs > KEY_KIND_TTL_MS) this.#keyKinds.delete(key);
  }

  #take(key: string, quota: QuotaName): boolean {
    return this.#bucket(key, quota).take(this.#monotonicMs());
  }

  #bucket(key: string, quota: QuotaName): TokenBucket {
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      const rate = this.#settings.rates[quota] ?? DEFAULT_REQUEST_QUOTAS[quota] ?? 1;
      const { ratePerSecond, capacity } = shareOf(rate, this.#processes);
      bucket = new TokenBucket(ratePerSecond, capacity, this.#monotonicMs());
      this.#buckets.set(key, bucket);
    }
    return bucket;
  }

  /** The kind of key a KeyId text names, for its shared quota; a key that cannot be found counts as symmetric. */
  async #keyKind(accountId: string, text: string | undefined): Promise<KeyQuotaKind> {
    if (text === undefined || text.length === 0 || text.length > 2048) return 'symmetric';
    const cacheKey = `${accountId}\u0000${text}`;
    const nowMs = this.#monotonicMs();
    const cached = this.#keyKinds.get(cacheKey);
    if (cached && nowMs - cached.atMs <= KEY_KIND_TTL_MS) return cached.kind;
    let kind: KeyQuotaKind = 'symmetric';
    try {
      const { keyId } = await this.#resolver.resolve(this.#db, accountId, text);
      const spec = await readKeySpec(this.#db, keyId);
      if (spec) kind = keyQuotaKind(spec);
    } catch (error) {
      if (!(error instanceof KmsError)) throw error;
    }
    if (this.#keyKinds.size >= KEY_KIND_CACHE_SIZE) this.#keyKinds.clear();
    this.#keyKinds.set(cacheKey, { kind, atMs: nowMs });
    return kind;
  }
}

/** The KeyId member that decides a cryptographic request's quota: ReEncrypt's destination key. */
function keyIdOf(operation: string, input: Record<string, unknown>): string | undefined {
  const value = operation === 'ReEncrypt' ? input['destinationKeyId'] : input['keyId'];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Quota settings from the environment: `KEYLEDGER_QUOTAS=off` turns request
 * quotas off; `KEYLEDGER_QUOTA_<NAME>` sets one quota's requests per second,
 * NAME being the quota's name in upper snake case (`KEYLEDGER_QUOTA_CREATE_KEY`,
 * `KEYLEDGER_QUOTA_CRYPTOGRAPHIC_OPERATIONS_SYMMETRIC`,
 * `KEYLEDGER_QUOTA_GENERATE_DATA_KEY_PAIR_RSA_2048`,
 * `KEYLEDGER_QUOTA_UNAUTHENTICATED_REQUESTS_PER_SOURCE_IP` ...);
 * `KEYLEDGER_QUOTA_WINDOW_SECONDS` the aggregation window. Pushes a problem
 * for each bad value; undefined when quotas are off.
 *
 * @example
 * quotaSettingsFrom({ KEYLEDGER_QUOTA_CREATE_KEY: '20' }, problems).rates.CreateKey  // 20
 */
export function quotaSettingsFrom(env: NodeJS.ProcessEnv, problems: string[]): QuotaSettings | undefined {
  const switchText = env['KEYLEDGER_QUOTAS'] ?? 'on';
  if (switchText !== 'on' && switchText !== 'off') problems.push(`KEYLEDGER_QUOTAS must be 'on' or 'off', got '${switchText}'`);
  const rates: Record<QuotaName, number> = { ...DEFAULT_QUOTA_SETTINGS.rates };
  const known = new Map(Object.keys(rates).map((name) => [quotaVariable(name), name]));
  let windowSeconds = DEFAULT_QUOTA_SETTINGS.windowSeconds;
  for (const [variable, text] of Object.entries(env)) {
    if (!variable.startsWith('KEYLEDGER_QUOTA_') || text === undefined) continue;
    const value = Number(text);
    if (variable === 'KEYLEDGER_QUOTA_WINDOW_SECONDS') {
      if (!/^\d+$/.test(text) || value < 1 || value > 3600) problems.push(`${variable} must be a whole number of seconds from 1 to 3600, got '${text}'`);
      else windowSeconds = value;
      continue;
    }
    const name = known.get(variable);
    if (name === undefined) {
      problems.push(`${variable} names no quota (known: ${[...known.keys()].slice(0, 5).join(', ')} ...; see the README's "Limits and quotas")`);
    } else if (!/^\d+(\.\d+)?$/.test(text) || value <= 0) {
      problems.push(`${variable} must be a positive number of requests per second, got '${text}'`);
    } else {
      rates[name] = value;
    }
  }
  return switchText === 'off' ? undefined : { ...DEFAULT_QUOTA_SETTINGS, rates, windowSeconds };
}

/**
 * The environment variable that sets a quota.
 *
 * @example
 * quotaVariable('GenerateDataKeyPair (RSA_2048)')  // 'KEYLEDGER_QUOTA_GENERATE_DATA_KEY_PAIR_RSA_2048'
 */
export function quotaVariable(name: QuotaName): string {
  const snake = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_|_$/g, '')
    .toUpperCase();
  return `KEYLEDGER_QUOTA_${snake}`;
}
