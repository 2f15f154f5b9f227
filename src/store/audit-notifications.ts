import type pg from 'pg';
import type { Logger } from '../logger.ts';
import { dedicatedClient, type Db } from './database.ts';

/**
 * The channel sql/0011_audit_notify.sql notifies (per statement since sql/0034) when a transaction commits
 * audit records. The payload (sql/0030) is
 * `<transaction id>/<accountId>/<recipientAccountId>/<eventName>`, one per
 * distinct value in a transaction; a bare transaction id (0011's) wakes everyone.
 */
export const AUDIT_CHANNEL = 'keyledger_audit';

/** What one notification says a committed transaction holds records about. */
export interface AuditNotice {
  transactionId: bigint | null;
  /** null: unknown (an old-style payload), so anyone may be interested. */
  accountId: string | null;
  recipientAccountId: string | null;
  eventName: string | null;
}

/**
 * Reads a notification's payload (see AUDIT_CHANNEL). Anything it cannot read
 * is a notice about nothing in particular, which wakes every follower.
 *
 * @example
 * parseAuditNotice('7731/111122223333//Encrypt'); // { transactionId: 7731n, accountId: '111122223333', recipientAccountId: null, eventName: 'Encrypt' }
 */
export function parseAuditNotice(payload: string | undefined): AuditNotice {
  const match = /^(\d{1,20})(?:\/([^/]*)\/([^/]*)\/(.*))?$/s.exec(payload ?? '');
  if (!match) return { transactionId: null, accountId: null, recipientAccountId: null, eventName: null };
  const [, xid, account, recipient, eventName] = match;
  if (account === undefined) return { transactionId: BigInt(xid!), accountId: null, recipientAccountId: null, eventName: null };
  return { transactionId: BigInt(xid!), accountId: account, recipientAccountId: recipient || null, eventName: eventName ?? '' };
}

/**
 * Which records wake a follower. A tail reads one account's records (its own
 * requests and those made on its keys), perhaps only some operations: records
 * it can never see must not wake it, so an idle tail costs no query per request.
 */
export interface FollowInterest {
  accountId: string;
  /** Only records of these operations wake it; null or absent: any. */
  eventNames?: readonly string[] | null;
  /**
   * Records of these operations in the account (whatever `eventNames` says)
   * raise an alert: the follower's next wait answers 'alert' (the tail
   * re-checks that its caller may still read the log).
   */
  alertOn?: readonly string[];
}

const RECONNECT_DELAY_MS = 1000;
/** How long published notices gather before one NOTIFY relays them to other processes. */
const RELAY_INTERVAL_MS = 50;
/** Distinct notices waiting for the relay beyond which they fold into one that wakes everyone. */
const RELAY_QUEUE_LIMIT = 1000;

/** The members of an audit record a notice names. */
export interface NoticeSource {
  accountId?: unknown;
  recipientAccountId?: unknown;
  eventName?: unknown;
}

const cut = (value: unknown, codePoints: number) => {
  if (typeof value !== 'string') return '';
  let end = 0;
  for (let n = 0; n < codePoints && end < value.length; n++) end += value.codePointAt(end)! > 0xffff ? 2 : 1;
  return value.slice(0, end);
};

/**
 * The payload sql/0034's trigger sends for a record written by `transactionId`
 * (see AUDIT_CHANNEL), spelled the same way: members cut like SQL's left().
 *
 * @example
 * auditNoticePayload(7731n, { accountId: '111122223333', eventName: 'Encrypt' }); // '7731/111122223333//Encrypt'
 */
export function auditNoticePayload(transactionId: bigint, record: NoticeSource): string {
  return `${transactionId}/${cut(record.accountId, 32)}/${cut(record.recipientAccountId, 32)}/${cut(record.eventName, 128)}`;
}

export type WakeReason = 'notified' | 'alert' | 'timeout' | 'closed';

/** One follower's wake-ups from the shared feed. */
export interface AuditWakeup {
  /**
   * Resolves 'notified' at the first notification of interest since the
   * previous wait (at once if one came meanwhile: none is lost between two
   * waits, several fold into one), 'alert' likewise for an alert (before any
   * 'notified'), 'timeout' after `timeoutMs`, 'closed' when the feed or this
   * wake-up is closed or `signal` aborts.
   */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<WakeReason>;
  /** The highest transaction id notified to this follower (or to everyone); 0n when none. */
  latestNotified(): bigint;
  /** Whether the feed's LISTEN connection is up: while it is, no notification is lost (a reconnect wakes everyone). */
  listening(): boolean;
  close(): void;
}

interface Follower {
  interest: { accountId: string; eventNames: ReadonlySet<string> | null; alertOn: ReadonlySet<string> } | null;
  pending: boolean;
  alert: boolean;
  latest: bigint;
  closed: boolean;
  wake: ((reason: WakeReason) => void) | null;
}

/**
 * One LISTEN connection per process, fanned out to the live tails a
 * notification may concern (see FollowInterest). A notification is only a
 * wake-up: followers re-read the log from their own cursor, so a lost one
 * (connection dropped, reconnecting) costs latency, not records; on reconnect
 * every follower is woken in case it missed one.
 *
 * @example
 * const feed = new AuditFeed(db, logger);
 * const wakeup = await feed.follow();
 * while ((await wakeup.wait(2000)) !== 'closed') readMore();
 * await feed.close();
 */
export class AuditFeed {
  readonly #db: Db;
  readonly #logger: Logger;
  readonly #followers = new Set<Follower>();
  #client: pg.Client | null = null;
  #connecting: Promise<void> | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  /** The highest transaction id of a notification that woke everyone (an old-style payload). */
  #latestToAll = 0n;
  #wakeups = 0;
  #closed = false;
  /** Notices published here, waiting to be relayed to other processes. */
  #relayQueue = new Set<string>();
  #relayTimer: NodeJS.Timeout | null = null;
  #relaying: Promise<void> | null = null;
  #relayClient: pg.Client | null = null;
  /** The relay connection's backend: its notifications were dispatched here already. */
  #relayPid: number | null = null;

  constructor(db: Db, logger: Logger) {
    this.#db = db;
    this.#logger = logger;
  }

  /**
   * Starts listening (on first use) and registers a follower, woken by the
   * records `interest` describes (by every record without it). Never fails for
   * want of the connection: followers then poll.
   */
  async follow(interest?: FollowInterest): Promise<AuditWakeup> {
    if (this.#closed) throw new Error('the audit feed is closed');
    const follower: Follower = {
      interest: interest
        ? { accountId: interest.accountId, eventNames: interest.eventNames ? new Set(interest.eventNames) : null, alertOn: new Set(interest.alertOn ?? []) }
        : null,
      pending: false,
      alert: false,
      latest: 0n,
      closed: false,
      wake: null,
    };
    this.#followers.add(follower);
    await this.#listen();
    return {
      wait: (timeoutMs, signal) => this.#wait(follower, timeoutMs, signal),
      latestNotified: () => (follower.latest > this.#latestToAll ? follower.latest : this.#latestToAll),
      listening: () => this.#client !== null,
      close: () => {
        follower.closed = true;
        this.#followers.delete(follower);
        follower.wake?.('closed');
      },
    };
  }

  /** How many follow() wake-ups are open (for tests and metrics). */
  get followers(): number {
    return this.#followers.size;
  }

  /** How many times a follower was woken by a notification since the feed started (for tests and metrics). */
  get wakeups(): number {
    return this.#wakeups;
  }

  /** Whether the LISTEN connection is up. */
  get listening(): boolean {
    return this.#client !== null;
  }

  /**
   * Publishes the notices of audit records that `transactionId` committed
   * without notifying (a group-commit batch, sql/0042): this process's
   * followers are woken at once, and the notices are relayed to the other
   * processes by one NOTIFY, on a connection of its own, at most every
   * RELAY_INTERVAL_MS. Call it only after the commit: a follower woken
   * earlier would read the log before the records are there.
   */
  publish(transactionId: bigint, records: readonly NoticeSource[]): void {
    if (this.#closed) return;
    const payloads = new Set(records.map((r) => auditNoticePayload(transactionId, r)));
    for (const payload of payloads) {
      this.#dispatch(parseAuditNotice(payload));
      this.#relayQueue.add(payload);
    }
    if (this.#relayQueue.size > RELAY_QUEUE_LIMIT) {
      // The relay is far behind (its connection is failing): one bare transaction id wakes every follower everywhere.
      this.#relayQueue.clear();
      this.#relayQueue.add(String(transactionId));
    }
    this.#scheduleRelay();
  }

  #scheduleRelay(): void {
    if (this.#relayTimer || this.#relaying || this.#relayQueue.size === 0) return;
    this.#relayTimer = setTimeout(() => {
      this.#relayTimer = null;
      this.#relaying = this.#relay().finally(() => {
        this.#relaying = null;
        if (!this.#closed) this.#scheduleRelay();
      });
    }, RELAY_INTERVAL_MS);
  }

  async #relay(): Promise<void> {
    const payloads = [...this.#relayQueue];
    this.#relayQueue.clear();
    if (payloads.length === 0) return;
    try {
      if (!this.#relayClient) {
        const client = dedicatedClient(this.#db, 'keyledger-audit-relay');
        client.on('error', () => {
          if (this.#relayClient === client) this.#relayClient = null;
        });
        await client.connect();
        this.#relayClient = client;
        this.#relayPid = (client as unknown as { processID: number | null }).processID;
      }
      await this.#relayClient.query(`SELECT count(pg_notify('${AUDIT_CHANNEL}', p)) FROM unnest($1::text[]) AS p`, [payloads]);
    } catch (error) {
      // Followers elsewhere poll: a lost relay delays them, it loses no record.
      this.#logger.warn({ error: error instanceof Error ? error.message : String(error), notices: payloads.length }, 'cannot relay audit notices');
      const client = this.#relayClient;
      this.#relayClient = null;
      await client?.end().catch(() => {});
    }
  }

  /** Ends every follower's waits with 'closed', relays what was published and closes the connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#relayTimer) clearTimeout(this.#relayTimer);
    this.#relayTimer = null;
    await this.#relaying;
    await this.#relay();
    await this.#relayClient?.end().catch(() => {});
    this.#relayClient = null;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    for (const f of this.#followers) {
      f.closed = true;
      f.wake?.('closed');
    }
    this.#followers.clear();
    await this.#connecting?.catch(() => {});
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
  }

  #wait(f: Follower, timeoutMs: number, signal?: AbortSignal): Promise<WakeReason> {
    if (f.closed || this.#closed || signal?.aborted) return Promise.resolve('closed');
    if (f.alert) {
      f.alert = false;
      return Promise.resolve('alert');
    }
    if (f.pending) {
      f.pending = false;
      return Promise.resolve('notified');
    }
    return new Promise<WakeReason>((resolve) => {
      const done = (reason: WakeReason) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        f.wake = null;
        if (reason === 'notified') f.pending = false;
        if (reason === 'alert') f.alert = false;
        resolve(reason);
      };
      const onAbort = () => done('closed');
      const timer = setTimeout(() => done('timeout'), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      f.wake = done;
    });
  }

  #notifyAll(): void {
    for (const f of this.#followers) {
      f.pending = true;
      this.#wakeups++;
      f.wake?.('notified');
    }
  }

  /** Wakes the followers `notice` may concern; the others are not even looked at beyond their interest. */
  #dispatch(notice: AuditNotice): void {
    if (notice.accountId === null) {
      if (notice.transactionId !== null && notice.transactionId > this.#latestToAll) this.#latestToAll = notice.transactionId;
      this.#notifyAll();
      return;
    }
    for (const f of this.#followers) {
      const interest = f.interest;
      if (interest) {
        const own = notice.accountId === interest.accountId;
        if (!own && notice.recipientAccountId !== interest.accountId) continue;
        if (own && notice.eventName !== null && interest.alertOn.has(notice.eventName)) {
          f.alert = true;
          f.wake?.('alert');
        }
        if (interest.eventNames && !interest.eventNames.has(notice.eventName ?? '')) continue;
      }
      if (notice.transactionId !== null && notice.transactionId > f.latest) f.latest = notice.transactionId;
      f.pending = true;
      this.#wakeups++;
      f.wake?.('notified');
    }
  }

  #listen(): Promise<void> {
    if (this.#client || this.#closed) return Promise.resolve();
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  async #connect(): Promise<void> {
    const client = dedicatedClient(this.#db, 'keyledger-audit-listen');
    const lost = (error?: Error) => {
      if (this.#client !== client) return;
      this.#client = null;
      if (!this.#closed) {
        this.#logger.warn({ error: error?.message ?? 'connection ended' }, 'audit LISTEN connection lost; reconnecting');
        this.#scheduleReconnect();
      }
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (message) => {
      if (message.channel !== AUDIT_CHANNEL || message.processId === this.#relayPid) return;
      this.#dispatch(parseAuditNotice(message.payload));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${AUDIT_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => {});
      if (!this.#closed) {
        this.#logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'cannot LISTEN for audit records; live tails poll until it can');
        this.#scheduleReconnect();
      }
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    // Records committed while nobody listened (first start, or a reconnect) notified no one.
    this.#notifyAll();
  }

  #scheduleReconnect(): void {
    if (this.#reconnectTimer || this.#closed || this.#followers.size === 0) return;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      void this.#listen();
    }, RECONNECT_DELAY_MS);
    this.#reconnectTimer.unref();
  }
}
