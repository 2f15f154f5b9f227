import type { Logger } from '../logger.ts';
import type { Db } from '../store/database.ts';
import { catchUpUsageRollup } from '../store/usage-rollup.ts';
import { startPeriodicPasses, type PeriodicPasses } from './periodic-passes.ts';

/** How often the worker folds new audit records into the usage rollups. */
export const USAGE_ROLLUP_INTERVAL_MS = 2_000;

export type UsageRollupLoop = PeriodicPasses;

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
  return startPeriodicPasses({
    logger,
    what: 'usage rollup',
    intervalMs,
    pass: async () => {
      const records = await catchUpUsageRollup(db);
      if (records > 0) logger.debug({ records }, 'folded audit records into the usage rollups');
      return false;
    },
  });
}
