import type pg from 'pg';
import type { Logger } from '../logger.ts';
import { dedicatedClient, type Db } from './database.ts';

/** The channel sql/0011_audit_notify.sql notifies when a transaction commits audit records; the payload is its transaction id. */
export const AUDIT_CHANNEL = 'keyledger_audit';

const RECONNECT_DELAY_MS = 1000;

export type WakeReason = 'notified' | 'timeout' | 'closed';

/** One follower's wake-ups from the shared feed. */
export interface AuditWakeup {
  /**
   * Resolves 'notified' at the first notification since the previous wait (at
   * once if one came meanwhile: none is lost between two waits, several fold
   * into one), 'timeout' after `timeoutMs`, 'closed' when the feed or this
   * wake-up is closed or `signal` aborts.
   */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<WakeReason>;
  /** The highest transaction id notified since this process started listening; 0n when none. */
  latestNotified(): bigint;
  close(): void;
}

interface Follower {
  pending: boolean;
  closed: boolean;
  wake: ((reason: WakeReason) => void) | null;
}

/**
 * One LISTEN connection per process, fanned out to every live tail. A
 * notification is only a wake-up: followers re-read the log from their own
 * cursor, so a lost one (connection dropped, reconnecting) costs latency, not
 * records; on reconnect every follower is woken in case it missed one.
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
  #latest = 0n;
  #closed = false;

  constructor(db: Db, logger: Logger) {
    this.#db = db;
    this.#logger = logger;
  }

  /** Starts listening (on first use) and registers a follower. Never fails for want of the connection: followers then poll. */
  async follow(): Promise<AuditWakeup> {
    if (this.#closed) throw new Error('the audit feed is closed');
    const follower: Follower = { pending: false, closed: false, wake: null };
    this.#followers.add(follower);
    await this.#listen();
    return {
      wait: (timeoutMs, signal) => this.#wait(follower, timeoutMs, signal),
      latestNotified: () => this.#latest,
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
      if (message.payload && /^\d{1,20}$/.test(message.payload)) {
        const xid = BigInt(message.payload);
        if (xid > this.#latest) this.#latest = xid;
      }
      this.#notifyAll();
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
