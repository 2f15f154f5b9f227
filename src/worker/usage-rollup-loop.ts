import type { Logger } from '../logger.ts';
import type { Db } from '../store/database.ts';
import { catchUpUsageRollup } from '../store/usage-rollup.ts';

/** How often the worker folds new audit records into the usage rollups. */
export const USAGE_ROLLUP_INTERVAL_MS = 2_000;

export interface UsageRollupLoop {
  /** Lets a running pass finish and stops. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Keeps the usage rollups close behind the log: a catch-up pass every
 * `intervalMs`. Several workers may run one each; a pass finding the checkpoint
 * held by another skips (see advanceUsageRollup). A failed pass is logged and
 * the next one retries: the rollups are only ever a shortcut, since readers add
 * whatever the fold has not reached.
 *
 * @example
 * const loop = startUsageRollupLoop(appDb, logger);
 * await loop.stop();
 */
export function startUsageRollupLoop(db: Db, logger: Logger, intervalMs: number = USAGE_ROLLUP_INTERVAL_MS): UsageRollupLoop {
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const run = (async () => {
    while (!stopping) {
      try {
        const records = await catchUpUsageRollup(db);
        if (records > 0) logger.debug({ records }, 'folded audit records into the usage rollups');
      } catch (error) {
        logger.warn({ error: error instanceof Error ? error.message : String(error) }, 'usage rollup pass failed; retrying');
      }
      if (stopping) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, intervalMs);
      });
    }
  })();
  let stopped: Promise<void> | undefined;
  return {
    stop: () => {
      stopped ??= (async () => {
        stopping = true;
        clearTimeout(timer);
        wake?.();
        await run;
      })();
      return stopped;
    },
  };
}
