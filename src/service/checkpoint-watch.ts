import { setTimeout as sleep } from 'node:timers/promises';

/** What a wait for a newer checkpoint ended with. */
export type CheckpointWait = 'newer' | 'timeout' | 'aborted';

interface Waiter {
  after: number;
  settle: (outcome: CheckpointWait) => void;
  fail: (error: unknown) => void;
}

/**
 * The newest checkpoint's tree size, read once per `pollMs` for every open
 * checkpoint stream of the process together: one query per interval however
 * many streams wait, and none while none does. Each stream reads the
 * checkpoints themselves only once told there is a newer one.
 *
 * @example
 * const watch = new CheckpointWatch(() => newestTreeSize(db), 1000);
 * if ((await watch.newerThan(last, 30_000, signal)) === 'newer') read(await checkpointsAfter(db, last, 100));
 */
export class CheckpointWatch {
  readonly #readNewest: () => Promise<number>;
  readonly #pollMs: number;
  readonly #waiters = new Set<Waiter>();
  #polling = false;

  constructor(readNewest: () => Promise<number>, pollMs: number) {
    this.#readNewest = readNewest;
    this.#pollMs = pollMs;
  }

  /**
   * Resolves 'newer' once a poll finds a checkpoint of tree size above
   * `after`, 'timeout' after `ms`, 'aborted' when `signal` aborts; rejects
   * with the poll's error when a poll fails (every waiter then gets it).
   */
  newerThan(after: number, ms: number, signal: AbortSignal): Promise<CheckpointWait> {
    if (signal.aborted) return Promise.resolve('aborted');
    return new Promise<CheckpointWait>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#waiters.delete(waiter);
      };
      const waiter: Waiter = {
        after,
        settle: (outcome) => {
          done();
          resolve(outcome);
        },
        fail: (error) => {
          done();
          reject(error);
        },
      };
      const onAbort = () => waiter.settle('aborted');
      const timer = setTimeout(() => waiter.settle('timeout'), ms);
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
      if (!this.#polling) void this.#poll();
    });
  }

  /** How many streams wait now (for tests and metrics). */
  get waiting(): number {
    return this.#waiters.size;
  }

  async #poll(): Promise<void> {
    this.#polling = true;
    try {
      while (this.#waiters.size > 0) {
        // A stream reads what is there before it waits, so the first poll can wait an interval too.
        // Unreferenced: once the last stream has closed, this last interval holds no process open.
        await sleep(this.#pollMs, undefined, { ref: false });
        if (this.#waiters.size === 0) break;
        let newest: number;
        try {
          newest = await this.#readNewest();
        } catch (error) {
          for (const waiter of [...this.#waiters]) waiter.fail(error);
          continue;
        }
        for (const waiter of [...this.#waiters]) if (newest > waiter.after) waiter.settle('newer');
      }
    } finally {
      this.#polling = false;
    }
  }
}
