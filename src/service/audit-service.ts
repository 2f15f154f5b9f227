import { isIP } from 'node:net';
import { keyArn, parseKeyReference } from '../domain/arn.ts';
import { KmsError, Validator } from '../domain/errors.ts';
import { isEnabled, type KeyState } from '../domain/key.ts';
import {
  auditRecordExistsBeyond,
  countDataKeyRecords,
  DENIED_ERROR_CODES,
  readAuditPage,
  readDataKeyRecords,
  readNewestRecords,
  readReEncryptionsInto,
  type AuditPosition,
  type AuditQueryFilter,
  type AuditRow,
  type KeyMatch,
} from '../store/audit-queries.ts';
import { logHorizon } from '../store/event-store.ts';
import { readPrincipalActivity, type ActivityBucket } from '../store/principal-activity.ts';
import { readUsageStatistics, USAGE_DIMENSIONS, type UsageDimension, type UsageGroup } from '../store/usage-statistics.ts';
import type { AuditFeed, AuditWakeup } from '../store/audit-notifications.ts';
import type { Database, Db } from '../store/database.ts';
import type { Transaction } from 'kysely';
import type { GrantState } from '../domain/grant.ts';
import type { AuditRecord } from './audit.ts';
import { toListEntry, type GrantListEntry } from './grant-service.ts';
import type { RequestContext } from './context.ts';
import { aliasTargetsOverTime, keyAsOf, keyHistory, type KeyHistoryEntry } from './forensics-time-travel.ts';
import { toKeyMetadata, type KeyMetadata } from './kms-service.ts';
import { enforce, type Authorizer } from './authorization.ts';
import type { RequestRunner } from './request-runner.ts';

// usageStatistics' dimensions and groups, as the transports name them.
export { USAGE_DIMENSIONS, type UsageDimension, type UsageGroup } from '../store/usage-statistics.ts';

/** The IAM action that allows reading the audit log, as CloudTrail's own. */
export const AUDIT_READ_ACTION = 'cloudtrail:LookupEvents';

type Trx = Transaction<Database>;

export interface AuditEventView extends AuditRecord {
  eventId: string;
}

export interface AuditEventEdge {
  cursor: string;
  node: AuditEventView;
}

export interface PageInfo {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}

export interface AuditEventConnection {
  edges: AuditEventEdge[];
  pageInfo: PageInfo;
}

/** auditEvents' filter as callers give it: every field optional, all combined with AND. */
export interface AuditEventFilter {
  /** Inclusive. */
  from?: Date | null;
  /** Exclusive. */
  to?: Date | null;
  eventNames?: string[] | null;
  principalArn?: string | null;
  principalArnPrefix?: string | null;
  accessKeyId?: string | null;
  /** Key id, key ARN, alias name or alias ARN; an alias means the key it pointed at when each request was made. */
  key?: string | null;
  outcome?: 'success' | 'failure' | null;
  errorCodes?: string[] | null;
  /** An address or CIDR block, IPv4 or IPv6. */
  sourceIp?: string | null;
  requestId?: string | null;
  dataKeyId?: string | null;
  /** Pairs all present in one of the request's encryption contexts (ReEncrypt: source or destination). */
  encryptionContext?: Record<string, string> | null;
  /** Keys all present in the request's encryption contexts. */
  encryptionContextKeys?: string[] | null;
  readOnly?: boolean | null;
}

/** The live tail's input: an auditEvents filter and, to resume, the cursor of the last record received. */
export interface AuditTailInput {
  filter?: AuditEventFilter | null;
  after?: string | null;
}

export type AuditEventOrder = 'NEWEST_FIRST' | 'OLDEST_FIRST';

export interface AuditEventsInput {
  filter?: AuditEventFilter | null;
  order?: AuditEventOrder | null;
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export interface DataKeyLineage {
  dataKeyId: string;
  /** The GenerateDataKey(WithoutPlaintext) request that made it, if it is in your records. */
  generatedBy: AuditEventView | null;
  /** The ReEncrypt that produced this ciphertext, when the data key is a re-encrypted copy. */
  derivedFrom: AuditEventView | null;
  keyArn: string | null;
  keyMaterialId: string | null;
  encryptionContext: Record<string, string> | null;
  /** Every other request naming the data key (Decrypt, ReEncrypt, refused ones too), oldest first, at most `limit`. */
  uses: AuditEventView[];
  usesTruncated: boolean;
  useCount: number;
  failedUseCount: number;
  deniedUseCount: number;
  reEncryptedInto: { ciphertextId: string; keyArn: string | null; keyMaterialId: string | null; event: AuditEventView }[];
}

export interface KeyAsOfView {
  asOf: Date;
  keyMetadata: KeyMetadata;
  deleted: boolean;
  aliases: string[];
  policy: string;
  tags: { tagKey: string; tagValue: string }[];
  rotation: {
    enabled: boolean;
    periodInDays: number | null;
    nextRotationDate: Date | null;
    onDemandRotations: number;
    keyMaterialIds: string[];
  };
  version: bigint;
  lastChangedAt: Date;
  /** Grants live on the key then (their tokens are never shown). */
  grants: GrantListEntry[];
}

export interface PrincipalActivity {
  principalArn: string;
  from: Date;
  to: Date;
  total: number;
  failures: number;
  denied: number;
  firstSeen: Date | null;
  lastSeen: Date | null;
  operations: ActivityCount[];
  keys: ActivityCount[];
  sourceIps: ActivityCount[];
  accessKeys: ActivityCount[];
  /** The newest denied attempts (at most 100). */
  deniedAttempts: AuditEventView[];
}

/** One value of a dimension of principalActivity (an operation, a key, a source IP, an access key). */
export type ActivityCount = Omit<ActivityBucket, 'dimension'>;

const CURSOR_VERSION = 'a1';
const MAX_PAGE = 1000;
const DEFAULT_PAGE = 50;
const MAX_LINEAGE_USES = 1000;
const MAX_DENIED_LISTED = 100;
const MAX_USAGE_GROUPS = 10_000;
/** The live tail reads at most this many records per query. */
/** How often a running tail re-checks that its caller may still read the audit log. */
const TAIL_RECHECK_MS = 30_000;
const TAIL_BATCH = 200;
/** Fallback poll of the live tail, in case a notification was lost. */
const TAIL_POLL_MS = 2000;
/** Re-read delay when a committed record waits behind an older transaction still in flight. */
const TAIL_BEHIND_HORIZON_MS = 100;

/** Cursors are opaque: base64url of a version and a (transaction id, log position). */
export const encodeCursor = (p: AuditPosition): string =>
  Buffer.from(`${CURSOR_VERSION}:${p.transactionId}:${p.globalPosition}`).toString('base64url');

export function decodeCursor(cursor: string, field: string): AuditPosition {
  const m = /^a1:(\d{1,20}):(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m || cursor.length > 200) throw new KmsError('ValidationException', `Invalid cursor in '${field}'.`);
  return { transactionId: BigInt(m[1]!), globalPosition: BigInt(m[2]!) };
}

/**
 * A record as `viewer` (an account id) may see it. A request that another
 * account's key refused as missing is in both accounts' logs; the caller's copy
 * must not tell it more than the answer did, so the key's account and the
 * authorization evidence are only shown to the key's owner.
 */
function view(r: AuditRow, viewer: string): AuditEventView {
  const record: AuditEventView = { ...r.data, eventId: r.eventId };
  if (record.recipientAccountId && record.recipientAccountId !== viewer && record.outcome === 'failure') {
    const { recipientAccountId: _hidden, authorization: _evidence, ...shown } = record;
    return shown;
  }
  return record;
}
const edge = (r: AuditRow, viewer: string): AuditEventEdge => ({ cursor: encodeCursor(r), node: view(r, viewer) });

/**
 * The forensic read side: the caller's account's audit records (and records of
 * other accounts' requests on its keys), filtered and paged; data key lineage;
 * keys as they were at any instant; activity and usage statistics. Reading the
 * audit log is itself a recorded (read-only) request.
 */
export class AuditService {
  readonly #runner: RequestRunner;
  readonly #region: string;
  readonly #authorizer: Authorizer;

  readonly #db: Db;
  readonly #feed: AuditFeed;
  readonly #tailPollMs: number;
  readonly #tailRecheckMs: number;

  constructor(deps: { runner: RequestRunner; region: string; authorizer: Authorizer; db: Db; feed: AuditFeed; tailPollMs?: number; tailRecheckMs?: number }) {
    this.#tailRecheckMs = deps.tailRecheckMs ?? TAIL_RECHECK_MS;
    this.#db = deps.db;
    this.#feed = deps.feed;
    this.#tailPollMs = deps.tailPollMs ?? TAIL_POLL_MS;
    this.#authorizer = deps.authorizer;
    this.#runner = deps.runner;
    this.#region = deps.region;
  }

  /**
   * auditEvents: a Relay connection over the records, newest first by default.
   *
   * Order is (transaction id, log position), and only records of transactions
   * below the in-flight horizon are returned (see logHorizon): a record
   * committed after a page was read therefore never lands between pages already
   * read, so paging never skips or repeats one. Newest-first, the records that
   * arrive later are above the first page: fetch them with `last`/`before:
   * startCursor`.
   *
   * @example
   * await audit.auditEvents(ctx, { filter: { encryptionContext: { tenant: 'acme' }, eventNames: ['Decrypt'] }, first: 50 });
   */
  auditEvents(ctx: RequestContext, input: AuditEventsInput): Promise<AuditEventConnection> {
    const requestParameters = {
      filter: input.filter ?? undefined,
      order: input.order ?? undefined,
      first: input.first ?? undefined,
      after: input.after ?? undefined,
      last: input.last ?? undefined,
      before: input.before ?? undefined,
    };
    return this.#runner.run(ctx, { eventName: 'ListAuditEvents', readOnly: true, requestParameters }, async (trx, draft, now) => {
      await enforce(this.#authorizer, trx, ctx, draft, now, { action: AUDIT_READ_ACTION });
      const v = new Validator().range('first', input.first, 1, MAX_PAGE).range('last', input.last, 1, MAX_PAGE);
      v.maxLength('after', input.after, 200).maxLength('before', input.before, 200).throwIfAny();
      if (input.first != null && input.last != null) throw new KmsError('ValidationException', 'Give first or last, not both.');
      const after = input.after != null ? decodeCursor(input.after, 'after') : null;
      const before = input.before != null ? decodeCursor(input.before, 'before') : null;
      const filter = await this.#resolveFilter(trx, ctx.caller.accountId, input.filter ?? {});
      const direction = (input.order ?? 'NEWEST_FIRST') === 'NEWEST_FIRST' ? 'desc' : 'asc';
      const fromEnd = input.last != null;
      const size = input.last ?? input.first ?? DEFAULT_PAGE;
      const account = ctx.caller.accountId;

      const horizon = await logHorizon(trx);
      const rows = await readAuditPage(trx, account, { filter, direction, after, before, limit: size + 1, fromEnd, horizon });
      const more = rows.length > size;
      const page = more ? (fromEnd ? rows.slice(1) : rows.slice(0, size)) : rows;
      // The side a page was not taken from: is there anything beyond the cursor given for it?
      const beyondAfter = after !== null && (await auditRecordExistsBeyond(trx, account, filter, after, direction === 'desc' ? 'asc' : 'desc', horizon));
      const beyondBefore = before !== null && (await auditRecordExistsBeyond(trx, account, filter, before, direction, horizon));
      const edges = page.map((r) => edge(r, ctx.caller.accountId));
      return {
        edges,
        pageInfo: {
          hasNextPage: fromEnd ? beyondBefore : more,
          hasPreviousPage: fromEnd ? more : beyondAfter,
          startCursor: edges[0]?.cursor ?? null,
          endCursor: edges.at(-1)?.cursor ?? null,
        },
      };
    });
  }

  /**
   * The live tail of auditEvents: the records matching `filter`, oldest first,
   * as they commit, each with its cursor. Starting is one recorded read-only
   * request (SubscribeAuditEvents); the records it then delivers are not
   * requests and record nothing.
   *
   * With `after` (any auditEvents cursor, or the last one this tail delivered),
   * it delivers every record after it exactly once, then follows: a client that
   * reconnects with its last cursor, after a disconnect or a server restart,
   * misses nothing and receives nothing twice. Without it, it starts where
   * auditEvents ends at that moment (the horizon). Each read is auditEvents'
   * horizon-safe query, woken by the shared LISTEN (sql/0011_audit_notify.sql)
   * and by a fallback poll. The key filter is resolved once, when it starts.
   *
   * @example
   * const tail = await audit.followAuditEvents(ctx, { filter: { eventNames: ['Decrypt'] }, after: lastCursor });
   * for await (const { cursor, node } of tail) save(cursor, node);
   */
  async followAuditEvents(ctx: RequestContext, input: AuditTailInput): Promise<AsyncIterableIterator<AuditEventEdge>> {
    const requestParameters = { filter: input.filter ?? undefined, after: input.after ?? undefined };
    const account = ctx.caller.accountId;
    const start = await this.#runner.run(ctx, { eventName: 'SubscribeAuditEvents', readOnly: true, requestParameters }, async (trx, draft, now) => {
      await enforce(this.#authorizer, trx, ctx, draft, now, { action: AUDIT_READ_ACTION });
      new Validator().maxLength('after', input.after, 200).throwIfAny();
      const after = input.after != null ? decodeCursor(input.after, 'after') : null;
      const filter = await this.#resolveFilter(trx, account, input.filter ?? {});
      // (horizon, 0) as an exclusive lower bound: every record of a transaction at or above the horizon.
      const from: AuditPosition = after ?? { transactionId: await logHorizon(trx), globalPosition: 0n };
      return { filter, from };
    });
    const wakeup = await this.#feed.follow();
    const controller = new AbortController();
    const records = this.#follow(ctx, start.filter, start.from, wakeup, controller.signal);
    const stop = () => {
      controller.abort();
      wakeup.close();
    };
    // A generator suspended in a read or a wait only sees return() once it
    // yields again: abort first so that ending a tail is prompt.
    const tail: AsyncIterableIterator<AuditEventEdge> = {
      next: () => records.next(),
      return: (value?: unknown) => {
        stop();
        return records.return(value as undefined);
      },
      throw: (error?: unknown) => {
        stop();
        return records.throw(error);
      },
      [Symbol.asyncIterator]: () => tail,
    };
    return tail;
  }

  async *#follow(ctx: RequestContext, filter: AuditQueryFilter, from: AuditPosition, wakeup: AuditWakeup, signal: AbortSignal): AsyncGenerator<AuditEventEdge, undefined> {
    const account = ctx.caller.accountId;
    let cursor = from;
    let checkedAt = Date.now();
    try {
      while (!signal.aborted) {
        // A tail outlives the request that opened it: it ends once its access key is no longer active or the
        // caller's identity policies no longer allow reading the audit log.
        if (Date.now() - checkedAt >= this.#tailRecheckMs) {
          if (!(await this.#stillAllowed(ctx))) break;
          checkedAt = Date.now();
        }
        const horizon = await logHorizon(this.#db);
        const rows = await readAuditPage(this.#db, account, { filter, direction: 'asc', after: cursor, before: null, limit: TAIL_BATCH, fromEnd: false, horizon });
        for (const r of rows) {
          cursor = { transactionId: r.transactionId, globalPosition: r.globalPosition };
          yield edge(r, account);
        }
        if (rows.length === TAIL_BATCH) continue;
        // A transaction that committed at or above the horizon waits behind an
        // older one still in flight, whose commit may notify nobody (rolled back).
        const delay = wakeup.latestNotified() >= horizon ? TAIL_BEHIND_HORIZON_MS : this.#tailPollMs;
        if ((await wakeup.wait(delay, signal)) === 'closed') break;
      }
    } finally {
      wakeup.close();
    }
    return undefined;
  }

  /** Whether the caller that opened a tail may still read the audit log (access key active, policies allowing). */
  async #stillAllowed(ctx: RequestContext): Promise<boolean> {
    const key = await this.#db.selectFrom('access_keys').select('status').where('access_key_id', '=', ctx.caller.accessKeyId).executeTakeFirst();
    if (key?.status !== 'Active') return false;
    const policies = await this.#db.selectFrom('principal_policies').select(['policy_name', 'document']).where('principal_arn', '=', ctx.caller.principalArn).execute();
    const caller = { ...ctx.caller, identityPolicies: policies.map((p) => ({ name: p.policy_name, document: p.document })) };
    const evidence = await this.#db.transaction().execute((trx) => this.#authorizer.authorize(trx, { caller, sourceIp: ctx.sourceIp, now: new Date(), action: AUDIT_READ_ACTION }));
    return evidence.decision === 'allow';
  }

  /**
   * dataKey: the lineage of one data key (the ciphertext id of a
   * GenerateDataKey result): who generated it under which key, material and
   * encryption context; every Decrypt and ReEncrypt of it, refused ones
   * included; and the ciphertexts it was re-encrypted into (each a data key
   * with a lineage of its own). Null when no record you can see names it.
   */
  dataKey(ctx: RequestContext, input: { dataKeyId: string; limit?: number | null }): Promise<DataKeyLineage | null> {
    const requestParameters = { dataKeyId: input.dataKeyId, limit: input.limit ?? undefined };
    return this.#runner.run(ctx, { eventName: 'GetDataKeyLineage', readOnly: true, requestParameters }, async (trx, draft, now) => {
      await enforce(this.#authorizer, trx, ctx, draft, now, { action: AUDIT_READ_ACTION });
      new Validator()
        .minLength('dataKeyId', input.dataKeyId, 1)
        .maxLength('dataKeyId', input.dataKeyId, 256)
        .range('limit', input.limit, 1, MAX_LINEAGE_USES)
        .throwIfAny();
      const limit = input.limit ?? MAX_LINEAGE_USES;
      const account = ctx.caller.accountId;
      const [records, origins] = await Promise.all([
        readDataKeyRecords(trx, account, input.dataKeyId, limit + 2),
        readReEncryptionsInto(trx, account, input.dataKeyId),
      ]);
      if (records.length === 0 && origins.length === 0) return null;
      const isGeneration = (r: AuditRow) => r.data.eventName.startsWith('GenerateDataKey') && r.data.outcome === 'success';
      const generation = records.find(isGeneration) ?? null;
      const usesRead = records.filter((r) => r !== generation);
      const truncated = usesRead.length > limit;
      const uses = usesRead.slice(0, limit);
      const counts = truncated
        ? await countDataKeyRecords(trx, account, input.dataKeyId).then((c) => (generation ? { ...c, total: c.total - 1 } : c))
        : {
            total: uses.length,
            failures: uses.filter((r) => r.data.outcome === 'failure').length,
            denied: uses.filter((r) => (DENIED_ERROR_CODES as readonly string[]).includes(r.data.errorCode ?? '')).length,
          };
      const derivedFrom = origins.find((r) => r.data.outcome === 'success') ?? origins[0] ?? null;
      const first = generation ?? derivedFrom ?? uses[0]!;
      const extra = (r: AuditRow) => r.data.additionalEventData ?? {};
      const contextOf = (r: AuditRow): Record<string, string> | null => {
        const p = r.data.requestParameters ?? {};
        if (r === derivedFrom) return (p['destinationEncryptionContext'] as Record<string, string> | undefined) ?? null;
        return ((p['encryptionContext'] ?? p['sourceEncryptionContext']) as Record<string, string> | undefined) ?? null;
      };
      const keyArnOf = (r: AuditRow): string | null =>
        (r === derivedFrom ? r.data.resources.at(-1)?.arn : r.data.resources[0]?.arn) ?? null;
      const materialOf = (r: AuditRow): string | null =>
        ((r === derivedFrom ? extra(r)['destinationKeyMaterialId'] : extra(r)['keyMaterialId']) as string | undefined) ?? null;
      return {
        dataKeyId: input.dataKeyId,
        generatedBy: generation ? view(generation, ctx.caller.accountId) : null,
        derivedFrom: derivedFrom ? view(derivedFrom, ctx.caller.accountId) : null,
        keyArn: keyArnOf(first),
        keyMaterialId: materialOf(first),
        encryptionContext: contextOf(first),
        uses: uses.map((r) => view(r, ctx.caller.accountId)),
        usesTruncated: truncated,
        useCount: counts.total,
        failedUseCount: counts.failures,
        deniedUseCount: counts.denied,
        reEncryptedInto: uses
          .filter((r) => r.data.eventName === 'ReEncrypt' && r.data.outcome === 'success' && typeof extra(r)['destinationCiphertextId'] === 'string')
          .map((r) => ({
            ciphertextId: extra(r)['destinationCiphertextId'] as string,
            keyArn: r.data.resources.at(-1)?.arn ?? null,
            keyMaterialId: (extra(r)['destinationKeyMaterialId'] as string | undefined) ?? null,
            event: view(r, ctx.caller.accountId),
          })),
      };
    });
  }

  /**
   * keyAsOf: the key's metadata, aliases, policy, tags and rotation status as
   * they were at `asOf`, folded from its stream (deleted keys too). An alias is
   * resolved as it was at `asOf`.
   */
  keyAsOf(ctx: RequestContext, input: { keyId: string; asOf: Date }): Promise<KeyAsOfView> {
    const requestParameters = { keyId: input.keyId, asOf: input.asOf.toISOString() };
    return this.#runner.run(ctx, { eventName: 'DescribeKeyAsOf', readOnly: true, requestParameters }, async (trx, draft, now) => {
      await enforce(this.#authorizer, trx, ctx, draft, now, { action: AUDIT_READ_ACTION });
      const at = await keyAsOf(trx, this.#region, ctx.caller.accountId, input.keyId, input.asOf);
      draft.resources.push({ arn: at.state.arn, type: 'AWS::KMS::Key', accountId: at.state.accountId });
      return keyAsOfView(at.asOf, at.state, at.aliases, at.lastChangedAt, at.grants);
    });
  }

  /** keyHistory: the key's lifecycle events, oldest first, with alias moves and the request behind each. */
  keyHistory(ctx: RequestContext, input: { keyId: string }): Promise<{ keyId: string; arn: string; entries: KeyHistoryEntry[] }> {
    return this.#runner.run(ctx, { eventName: 'ListKeyHistory', readOnly: true, requestParameters: { keyId: input.keyId } }, async (trx, draft, now) => {
      await enforce(this.#authorizer, trx, ctx, draft, now, { action: AUDIT_READ_ACTION });
      const history = await keyHistory(trx, this.#region, ctx.caller.accountId, input.keyId);
      draft.resources.push({ arn: history.arn, type: 'AWS::KMS::Key', accountId: ctx.caller.accountId });
      return history;
    });
  }

  /** principalActivity: what one principal did in [from, to): keys, operations, denied attempts, source IPs, access keys. */
  principalActivity(ctx: RequestContext, input: { principalArn: string; from: Date; to: Date }): Promise<PrincipalActivity> {
    const requestParameters = { principalArn: input.principalArn, from: input.from.toISOString(), to: input.to.toISOString() };
    return this.#runner.run(ctx, { eventName: 'GetPrincipalActivity', readOnly: true, requestParameters }, async (trx, draft, now) => {
      await enforce(this.#authorizer, trx, ctx, draft, now, { action: AUDIT_READ_ACTION });
      new Validator().minLength('principalArn', input.principalArn, 1).maxLength('principalArn', input.principalArn, 2048).throwIfAny();
      checkRange(input.from, input.to);
      const account = ctx.caller.accountId;
      const query = { principalArn: input.principalArn, from: input.from, to: input.to };
      const [buckets, denied] = await Promise.all([
        readPrincipalActivity(trx, account, query),
        readNewestRecords(trx, account, { ...query, outcome: 'failure', errorCodes: [...DENIED_ERROR_CODES] }, MAX_DENIED_LISTED),
      ]);
      const of = (dimension: string): ActivityCount[] =>
        buckets
          .filter((b) => b.dimension === dimension)
          .map(({ value, count, failures, denied: d, first, last }) => ({ value, count, failures, denied: d, first, last }))
          .sort((a, b) => b.count - a.count || String(a.value).localeCompare(String(b.value)));
      const total = buckets.find((b) => b.dimension === 'total');
      return {
        principalArn: input.principalArn,
        from: input.from,
        to: input.to,
        total: total?.count ?? 0,
        failures: total?.failures ?? 0,
        denied: total?.denied ?? 0,
        firstSeen: total?.first ?? null,
        lastSeen: total?.last ?? null,
        operations: of('operation'),
        keys: of('key'),
        sourceIps: of('sourceIp'),
        accessKeys: of('accessKey'),
        deniedAttempts: denied.map((r) => view(r, ctx.caller.accountId)),
      };
    });
  }

  /** usageStatistics: request counts grouped by any of KEY, PRINCIPAL, OPERATION, DAY, HOUR (UTC), over a filter. */
  usageStatistics(
    ctx: RequestContext,
    input: { groupBy: UsageDimension[]; filter?: AuditEventFilter | null; limit?: number | null },
  ): Promise<{ groups: UsageGroup[]; truncated: boolean }> {
    const requestParameters = { groupBy: input.groupBy, filter: input.filter ?? undefined, limit: input.limit ?? undefined };
    return this.#runner.run(ctx, { eventName: 'GetUsageStatistics', readOnly: true, requestParameters }, async (trx, draft, now) => {
      await enforce(this.#authorizer, trx, ctx, draft, now, { action: AUDIT_READ_ACTION });
      const v = new Validator().range('limit', input.limit, 1, MAX_USAGE_GROUPS);
      for (const d of input.groupBy) v.oneOf('groupBy', d, USAGE_DIMENSIONS);
      v.throwIfAny();
      const filter = await this.#resolveFilter(trx, ctx.caller.accountId, input.filter ?? {});
      const limit = input.limit ?? 1000;
      const groups = await readUsageStatistics(trx, ctx.caller.accountId, filter, input.groupBy, limit + 1);
      return { groups: groups.slice(0, limit), truncated: groups.length > limit };
    });
  }

  /** Validates a filter and resolves its references (key and alias) for the caller's account. */
  async #resolveFilter(trx: Trx, accountId: string, f: AuditEventFilter): Promise<AuditQueryFilter> {
    const v = new Validator()
      .maxLength('principalArn', f.principalArn, 2048)
      .minLength('principalArnPrefix', f.principalArnPrefix, 1)
      .maxLength('principalArnPrefix', f.principalArnPrefix, 2048)
      .maxLength('accessKeyId', f.accessKeyId, 128)
      .maxLength('key', f.key, 2048)
      .maxLength('requestId', f.requestId, 128)
      .maxLength('dataKeyId', f.dataKeyId, 256)
      .maxLength('sourceIp', f.sourceIp, 64);
    for (const [field, list] of [['eventNames', f.eventNames], ['errorCodes', f.errorCodes], ['encryptionContextKeys', f.encryptionContextKeys]] as const) {
      if (list && list.length > 50) v.add({ field, constraint: 'Member must have at most 50 items' });
      for (const item of list ?? []) v.maxLength(field, item, 256);
    }
    if (f.encryptionContext && Object.keys(f.encryptionContext).length > 16) {
      v.add({ field: 'encryptionContext', constraint: 'Member must have at most 16 pairs' });
    }
    if (f.sourceIp != null && !isAddressOrCidr(f.sourceIp)) {
      v.add({ field: 'sourceIp', value: f.sourceIp, constraint: 'Member must be an IP address or a CIDR block' });
    }
    v.throwIfAny();
    if (f.from && f.to) checkRange(f.from, f.to);
    return {
      from: f.from ?? null,
      to: f.to ?? null,
      eventNames: f.eventNames ?? null,
      principalArn: f.principalArn ?? null,
      principalArnPrefix: f.principalArnPrefix ?? null,
      accessKeyId: f.accessKeyId ?? null,
      keys: f.key != null ? await this.#keyMatches(trx, accountId, f.key) : null,
      outcome: f.outcome ?? null,
      errorCodes: f.errorCodes ?? null,
      sourceIp: f.sourceIp ?? null,
      requestId: f.requestId ?? null,
      dataKeyId: f.dataKeyId ?? null,
      encryptionContext: f.encryptionContext ?? null,
      encryptionContextKeys: f.encryptionContextKeys ?? null,
      readOnly: f.readOnly ?? null,
    };
  }

  /**
   * The keys a `key` filter means: a key id or ARN is itself; an alias is every
   * key it pointed at, each only for the stretch of the log it pointed there.
   * Another account's alias matches nothing (its streams are not read).
   */
  async #keyMatches(trx: Trx, accountId: string, text: string): Promise<KeyMatch[]> {
    const ref = parseKeyReference(text);
    if (!ref) throw new KmsError('ValidationException', `key must be a key id, key ARN, alias name or alias ARN: '${text}'`);
    switch (ref.kind) {
      case 'keyId':
        return [{ arn: keyArn(this.#region, accountId, ref.keyId) }];
      case 'keyArn':
        // Another account's key ARN too: your records of requests you made on it.
        return [{ arn: text }];
      case 'aliasArn':
        if (ref.region !== this.#region || ref.accountId !== accountId) return [];
        return aliasTargetsOverTime(trx, this.#region, accountId, ref.aliasName);
      case 'aliasName':
        return aliasTargetsOverTime(trx, this.#region, accountId, ref.aliasName);
    }
  }
}

function keyAsOfView(asOf: Date, state: KeyState, aliases: string[], lastChangedAt: Date, grants: GrantState[]): KeyAsOfView {
  const metadata = toKeyMetadata(state);
  return {
    asOf,
    keyMetadata: { ...metadata, enabled: isEnabled(state) && !state.deleted },
    deleted: state.deleted,
    aliases,
    policy: state.policy,
    tags: state.tags,
    rotation: {
      enabled: state.rotationEnabled,
      periodInDays: state.rotationPeriodInDays,
      nextRotationDate: state.nextRotationDate,
      onDemandRotations: state.onDemandRotations,
      keyMaterialIds: state.keyMaterialIds,
    },
    version: state.version,
    grants: grants.map(toListEntry),
    lastChangedAt,
  };
}

function checkRange(from: Date, to: Date): void {
  if (from.getTime() >= to.getTime()) throw new KmsError('ValidationException', 'from must be before to.');
}

/** `a.b.c.d`, `a.b.c.d/n`, an IPv6 address, or one with `/n`. */
export function isAddressOrCidr(text: string): boolean {
  const [address, bits, ...rest] = text.split('/');
  if (rest.length > 0 || address === undefined) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}
