import type pg from 'pg';
import type { Logger } from '../logger.ts';
import { dedicatedClient, type Db } from './database.ts';
import { FENCE_CHANNEL } from './fences.ts';

const RECONNECT_DELAY_MS = 1000;

/**
 * One LISTEN connection per process on the fences' channel: each moved fence
 * (any process, the worker, the CLI) is handed to `onMoved` at its commit, and
 * '*' when the connection is (re)established, since moves made while nobody
 * listened were missed. A cache that drops what it is told stays close to
 * fresh; the fence check at commit keeps it correct when a notification is late.
 *
 * @example
 * const feed = new FenceFeed(db, logger, (scope) => cache.invalidate(scope));
 * await feed.start();
 * await feed.close();
 */
export class FenceFeed {
  readonly #db: Db;
  readonly #logger: Logger;
  readonly #onMoved: (scope: string) => void;
  #client: pg.Client | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(db: Db, logger: Logger, onMoved: (scope: string) => void) {
    this.#db = db;
    this.#logger = logger;
    this.#onMoved = onMoved;
  }

  async start(): Promise<void> {
    if (this.#closed || this.#client) return;
    const client = dedicatedClient(this.#db, 'keyledger-fence-listen');
    const lost = (error?: Error) => {
      if (this.#client !== client) return;
      this.#client = null;
      this.#onMoved('*');
      if (!this.#closed) {
        this.#logger.warn({ error: error?.message ?? 'connection ended' }, 'fence LISTEN connection lost; reconnecting');
        this.#retry();
      }
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (message) => {
      if (message.channel === FENCE_CHANNEL && message.payload) this.#onMoved(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${FENCE_CHANNEL}`);
    } catch (error) {
      await client.end().catch(() => {});
      if (!this.#closed) {
        this.#logger.warn(
          { error: error instanceof Error ? error.message : String(error) },
          'cannot LISTEN for fences; caches go stale until a batch finds them so',
        );
        this.#retry();
      }
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#onMoved('*');
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
  }

  #retry(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.start();
    }, RECONNECT_DELAY_MS);
    this.#timer.unref();
  }
}
