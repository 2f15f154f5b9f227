import type { NoticeSource } from '../store/audit-notifications.ts';
import type { Db } from '../store/database.ts';
import { commitFencedAppends, type CommittedBatch, type FencedAppend } from '../store/fences.ts';

export interface GroupCommitOptions {
  /** Most records in one batch (one INSERT, one COMMIT). */
  maxBatch?: number;
  /** Batches committing at once: while all are busy, new records wait and form the next batch. */
  maxInFlight?: number;
  /**
   * Records that must be waiting before a batch may start beside one already
   * committing. A lone batch leaves at once; an overlapping one costs a
   * transaction of its own, which only pays when it carries several records.
   */
  minOverlap?: number;
  /**
   * Told of every committed batch's records: a batch sends no notification on
   * the audit channel itself (sql/0042), so the live tails learn of its
   * records here (AuditFeed#publish).
   */
  notices?: { publish(transactionId: bigint, records: readonly NoticeSource[]): void };
}

interface Waiting {
  append: FencedAppend;
  resolve: (written: boolean) => void;
  reject: (error: unknown) => void;
}

/** Counters since start, for `npm run bench` and tests. */
export interface GroupCommitStats {
  batches: number;
  records: number;
  /** Records sent back because their fence moved. */
  fenced: number;
  /** Batches that failed (every record in them failed). */
  failedBatches: number;
}

/**
 * The group committer. A record handed to `submit` joins the next batch. When
 * nothing is committing, a batch leaves at once, so a lone request waits for
 * nothing but its own commit; while batches are committing, records pile up
 * and another batch starts beside them (up to `maxInFlight`) only once
 * `minOverlap` records wait, so under load many records share one
 * transaction and one WAL flush.
 * `submit` resolves only after the batch has committed (true: written) or
 * found the record's fence moved (false: decide again); a batch that fails
 * rejects every record in it, and none of them is written.
 *
 * @example
 * const committer = new GroupCommitter(db);
 * if (await committer.submit({ streamId, event, recordedAt, fences })) release(response);
 */
export class GroupCommitter {
  readonly #db: Db;
  readonly #maxBatch: number;
  readonly #maxInFlight: number;
  readonly #minOverlap: number;
  readonly #notices: GroupCommitOptions['notices'];
  #waiting: Waiting[] = [];
  #inFlight = 0;
  #idle: (() => void)[] = [];
  readonly #stats: GroupCommitStats = { batches: 0, records: 0, fenced: 0, failedBatches: 0 };

  constructor(db: Db, options: GroupCommitOptions = {}) {
    this.#db = db;
    this.#maxBatch = options.maxBatch ?? 512;
    this.#maxInFlight = options.maxInFlight ?? 4;
    this.#minOverlap = Math.max(1, Math.min(options.minOverlap ?? 8, this.#maxBatch));
    this.#notices = options.notices;
  }

  submit(append: FencedAppend): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.#waiting.push({ append, resolve, reject });
      this.#pump();
    });
  }

  stats(): GroupCommitStats {
    return { ...this.#stats };
  }

  /** Resolves once every submitted record has been committed or refused. */
  drained(): Promise<void> {
    if (this.#inFlight === 0 && this.#waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #pump(): void {
    while (this.#inFlight < this.#maxInFlight && this.#waiting.length >= (this.#inFlight === 0 ? 1 : this.#minOverlap)) {
      // Records that piled up behind busy slots are shared among the free ones,
      // so a burst is committed by several transactions at once.
      const free = this.#maxInFlight - this.#inFlight;
      const size = Math.min(this.#maxBatch, Math.max(this.#minOverlap, Math.ceil(this.#waiting.length / free)));
      const batch = this.#waiting.splice(0, size);
      this.#inFlight++;
      void this.#flush(batch);
    }
    if (this.#inFlight === 0 && this.#waiting.length === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  async #flush(batch: Waiting[]): Promise<void> {
    let committed: CommittedBatch | undefined;
    try {
      committed = await commitFencedAppends(
        this.#db,
        batch.map((w) => w.append),
      );
      this.#stats.batches++;
      this.#stats.records += batch.length;
      const { written } = committed;
      batch.forEach((w, i) => {
        if (!written[i]) this.#stats.fenced++;
        w.resolve(written[i]!);
      });
    } catch (error) {
      this.#stats.failedBatches++;
      for (const w of batch) w.reject(error);
    } finally {
      this.#inFlight--;
      this.#pump();
    }
    // After the answers: the batch is committed whatever the notices do. A notice
    // that fails to go out only delays the live tails, which re-read the log by polling.
    if (committed?.transactionId != null) {
      try {
        this.#notices?.publish(committed.transactionId, noticeSources(batch, committed.written));
      } catch {
        // Nothing to undo, and no request to fail: see above.
      }
    }
  }
}

/** The audit records a batch wrote, as the notices name them. */
function noticeSources(batch: readonly Waiting[], written: readonly boolean[]): NoticeSource[] {
  const sources: NoticeSource[] = [];
  batch.forEach((w, i) => {
    const data = w.append.event.data;
    if (written[i] && w.append.event.type === 'AuditRecord' && typeof data === 'object' && data !== null) sources.push(data as NoticeSource);
  });
  return sources;
}
