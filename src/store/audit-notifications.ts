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

  /** Ends every follower's waits with 'closed' and closes the LISTEN connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
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
      if (message.channel !== AUDIT_CHANNEL) return;
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
