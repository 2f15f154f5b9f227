import type { Logger } from '../logger.ts';

export interface PeriodicPasses {
  /** Lets a running pass finish and stops. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Runs `pass` over and over until stopped: at once again when it answers true
 * (more work is waiting), else after `intervalMs`. A pass that throws is logged
 * as "<what> pass failed; retrying" and the next one retries. `start` runs once
 * before the first pass. The loops of the worker (usage rollups, log sealing)
 * share this.
 *
 * @example
 * const loop = startPeriodicPasses({ logger, what: 'usage rollup', intervalMs: 2000, pass: async () => false });
 * await loop.stop();
 */
export function startPeriodicPasses(options: {
  logger: Logger;
  what: string;
  intervalMs: number;
  start?: () => Promise<void>;
  pass: () => Promise<boolean>;
}): PeriodicPasses {
  const { logger, what, intervalMs } = options;
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const run = (async () => {
    await options.start?.();
    while (!stopping) {
      let again = false;
      try {
        again = await options.pass();
      } catch (error) {
        logger.warn({ error: error instanceof Error ? error.message : String(error) }, `${what} pass failed; retrying`);
      }
      if (stopping) break;
      if (again) continue;
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
